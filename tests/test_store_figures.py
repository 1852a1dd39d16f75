"""Figure rendering: in-process, in late-forked workers and in the early figure pool."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.image as mpimg
import pytest

from lnexp.config import from_mapping
from lnexp.errors import OutputError
from lnexp.experiment import run
from lnexp.figures import FIGURES
from lnexp.store import figures


def _jobs(tmp_path: Path) -> list[figures.FigureJob]:
    result = run(from_mapping({"data": {"n_samples": 30}}))
    return [figures.FigureJob(name, result, tmp_path / f"{name}.png", 40)
            for name in ("overview", "heatmap")]


@pytest.mark.parametrize("mode", ["in-process", "late fork", "pool"])
def test_every_mode_writes_every_figure(tmp_path: Path, mode: str) -> None:
    jobs = _jobs(tmp_path)
    if mode == "pool":
        with figures.figure_pool(SimpleNamespace(figures=True, workers=2), len(jobs)) as pool:
            assert pool is not None
            figures.render_figures(jobs, pool=pool)
    else:
        figures.render_figures(jobs, 1 if mode == "in-process" else 2)
    for job in jobs:
        assert mpimg.imread(job.path).shape[1] >= 600


def _render(jobs: list[figures.FigureJob], mode: str) -> None:
    if mode == "pool":
        with figures.figure_pool(SimpleNamespace(figures=True, workers=2), 2) as pool:
            figures.render_figures(jobs, pool=pool)
    else:
        figures.render_figures(jobs, {"in-process": 1, "late fork": 2}[mode])


@pytest.mark.parametrize("mode", ["in-process", "late fork", "pool"])
def test_a_figure_that_cannot_be_drawn_is_skipped_with_one_warning(
        tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch,
        capfd: pytest.CaptureFixture[str]) -> None:
    def broken(result):
        raise ValueError("Too many bins for data range.\nsecond line")

    monkeypatch.setitem(FIGURES, "heatmap", broken)
    _render(_jobs(tmp_path), mode)  # does not raise: the run goes on to metrics.json
    assert (tmp_path / "overview.png").exists() and not (tmp_path / "heatmap.png").exists()
    lines = capfd.readouterr().err.splitlines()
    assert lines == [f"warning: {tmp_path.name}/heatmap.png not drawn (ValueError: Too many "
                     f"bins for data range.); the run's metrics are written"]


@pytest.mark.parametrize("mode", ["late fork", "pool"])
def test_a_figure_that_cannot_be_written_fails_the_render(
        tmp_path: Path, mode: str, monkeypatch: pytest.MonkeyPatch) -> None:
    def unwritable(path, data):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(figures, "write_atomic", unwritable)
    # An OS refusal in a worker reaches the parent as OutputError (exit 2), not a bug (70).
    with pytest.raises(OutputError, match="No space left on device"):
        _render(_jobs(tmp_path), mode)


def test_no_pool_when_figures_are_off_or_one_worker() -> None:
    for output in (SimpleNamespace(figures=False, workers=None),
                   SimpleNamespace(figures=True, workers=1)):
        with figures.figure_pool(output, 4) as pool:
            assert pool is None
