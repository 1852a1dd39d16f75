"""Figure rendering: in-process, in late-forked workers and in the early figure pool."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import matplotlib.image as mpimg
import pytest

from lnexp import plots
from lnexp.config import from_mapping
from lnexp.experiment import run
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


@pytest.mark.parametrize("mode", ["late fork", "pool"])
def test_a_failing_figure_fails_the_render(tmp_path: Path, mode: str,
                                           monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(result):
        raise RuntimeError("figure exploded")

    monkeypatch.setitem(plots.FIGURES, "heatmap", broken)
    jobs = _jobs(tmp_path)
    with pytest.raises(RuntimeError, match=r"worker process|figure exploded"):  # either side
        if mode == "pool":
            with figures.figure_pool(SimpleNamespace(figures=True, workers=2), 2) as pool:
                figures.render_figures(jobs, pool=pool)
        else:
            figures.render_figures(jobs, 2)
    assert (tmp_path / "overview.png").exists() and not (tmp_path / "heatmap.png").exists()


def test_no_pool_when_figures_are_off_or_one_worker() -> None:
    for output in (SimpleNamespace(figures=False, workers=None),
                   SimpleNamespace(figures=True, workers=1)):
        with figures.figure_pool(output, 4) as pool:
            assert pool is None
