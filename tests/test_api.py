"""The Python API (issue 20): `import lnexp` stays cheap, the API writes the same documents as
the CLI, prints nothing, installs no signal handler, never exits, and raises the CLI's errors."""

from __future__ import annotations

import gc
import json
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

import lnexp
from lnexp import presets
from tests.conftest import CONFIGS, ROOT, TINY_SWEEP

SMALL = ("data.n_samples=8", "output.figures=false")


def _cli_folder(invoke: Any, *args: str) -> Path:
    result = invoke(*args, "--quiet")
    assert result.exit_code == 0, result.output
    return Path(result.stdout.strip().splitlines()[-1])


def _masked(path: Path) -> bytes:
    """The document's bytes with what legitimately differs between the two folders masked:
    their paths (config.output.dir, the out_dir each was given; comparison.json's per-norm
    run_dir). Nothing else: no timestamp or argv is in these documents."""
    text = path.read_text(encoding="utf-8")
    for parent in (path.parents[2], path.parents[1]):
        text = text.replace(str(parent), "<out>")
    return text.encode()


def _run(invoke: Any, tmp: Path, cfg: Path) -> tuple[Path, Path]:
    cli = _cli_folder(invoke, "run", str(cfg), *SMALL, "-o", str(tmp / "cli"))
    api = lnexp.run(cfg, *SMALL, out_dir=tmp / "api").folder
    return cli / "metrics.json", api / "metrics.json"


def _compare(invoke: Any, tmp: Path, cfg: Path) -> tuple[Path, Path]:
    cli = _cli_folder(invoke, "compare", "ln", "rms", "bn", "--config", str(cfg), *SMALL,
                      "-o", str(tmp / "cli"))
    api = lnexp.compare(["ln", "rms", "bn"], cfg, *SMALL, out_dir=tmp / "api").folder
    return cli / "comparison.json", api / "comparison.json"


def _sweep(invoke: Any, tmp: Path, cfg: Path) -> tuple[Path, Path]:
    cli = _cli_folder(invoke, "sweep", str(cfg), "--grid", "model.norm=ln,rms", "--seeds",
                      "2", "-j", "2", "-o", str(tmp / "cli"))
    api = lnexp.sweep(cfg, {"model.norm": ["ln", "rms"]}, seeds=2, jobs=2,
                      out_dir=tmp / "api").folder
    return cli / "summary.csv", api / "summary.csv"


@pytest.mark.parametrize("command", [_run, _compare, pytest.param(_sweep, marks=pytest.mark.slow)],
                         ids=["run", "compare", "sweep"])
def test_cli_and_api_write_byte_identical_documents(command: Any, invoke: Any,
                                                    tmp_path: Path) -> None:
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(TINY_SWEEP)
    cli, api = command(invoke, tmp_path, cfg)
    assert cli.parent != api.parent
    assert _masked(cli) == _masked(api)
    assert len(cli.read_bytes()) > 200


@pytest.mark.slow
def test_import_lnexp_is_cheap_and_loads_no_heavy_module() -> None:
    code = ("import sys, lnexp; heavy = [m for m in ('torch', 'matplotlib', 'pydantic', "
            "'numpy', 'typer', 'rich') if m in sys.modules]; print(heavy)")
    out = subprocess.run([sys.executable, "-X", "importtime", "-c", code], capture_output=True,
                         text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "[]"
    cumulative = [int(line.split("|")[1]) for line in out.stderr.splitlines()
                  if line.rstrip().endswith("| lnexp")]
    assert cumulative and cumulative[0] < 100_000, out.stderr[-500:]  # microseconds: < 0.1 s


def test_public_names_are_exported_typed_and_documented() -> None:
    assert (ROOT / "lnexp" / "py.typed").is_file()
    for name in lnexp.__all__:
        obj = getattr(lnexp, name)
        if callable(obj) and name[0].islower():
            assert ">>> import lnexp" in (obj.__doc__ or ""), name


def test_shadowed_names_are_both_the_api_function_and_the_module() -> None:
    from lnexp import compare as cmp_mod
    from lnexp.compare import norm_configs
    from lnexp.sweep import runner

    assert cmp_mod.norm_configs is norm_configs  # the module's attribute
    assert lnexp.sweep.runner is runner
    assert "Run several norms" in (lnexp.compare.__doc__ or "")
    out = lnexp.compare(["ln"], None, *SMALL)  # and the API function
    assert [r["norm"] for r in out.table()] == ["ln"]


def test_api_prints_nothing_installs_no_handler_and_keeps_the_tutorial_numbers(
        capfd: pytest.CaptureFixture[str]) -> None:
    before = (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM))
    out = lnexp.run("tutorial", progress=lambda done, total, note="": None)
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == before
    captured = capfd.readouterr()
    assert captured.out == "" and captured.err == ""
    s = out.metrics["sample"]  # the tutorial's sample 0, as tests/test_cli.py checks the CLI's
    assert out.metrics["norm"]["name"] == "ln"
    assert s["pre_norm"]["mean"] == pytest.approx(-0.06453948, abs=1e-8)
    assert s["pre_norm"]["var_unbiased"] == pytest.approx(0.37890887, abs=1e-7)
    assert s["post_norm"]["var_unbiased"] == pytest.approx(1.02038061, abs=1e-7)
    rows = out.table()
    assert {"stage", "axis", "index", "mean", "var_unbiased"} <= set(rows[0])
    assert out.verdict.startswith("LayerNorm (ln)")
    assert set(out.figures) >= {"overview", "heatmap"}
    fig = out.figure("overview")
    assert fig.axes and type(fig).__name__ == "Figure"
    html = out._repr_html_()
    assert html.startswith("<iframe srcdoc=") and "data:image/png;base64" in html


def test_out_dir_none_lives_as_long_as_the_outcome() -> None:
    out = lnexp.run(None, *SMALL)
    folder = out.folder
    assert (folder / "metrics.json").is_file()
    del out
    gc.collect()
    assert not folder.exists()


def test_load_reads_every_kind_back(tmp_path: Path) -> None:
    run = lnexp.run(None, *SMALL, out_dir=tmp_path)
    again = lnexp.load(run.folder)
    assert type(again) is lnexp.RunOutcome and again.metrics == run.metrics
    assert again.config.model.norm == "ln" and again.passed
    assert again.figure  # a loaded folder has no in-memory result: PNGs are shown as images
    cmp = lnexp.compare(["ln", "rms"], None, *SMALL, out_dir=tmp_path)
    assert type(lnexp.load(cmp.folder / "comparison.json")) is lnexp.CompareOutcome
    assert sorted(lnexp.load(cmp.folder).runs) == ["ln", "rms"]
    listed = lnexp.runs(tmp_path)
    assert [r["kind"] for r in listed] == ["compare", "run"]
    assert [r["path"] for r in lnexp.runs(tmp_path, kind="run")] == [str(run.folder)]
    with pytest.raises(lnexp.RunFolderError, match="not an lnexp folder"):
        lnexp.load(tmp_path)


def test_loaded_png_figure_is_the_saved_image(tmp_path: Path) -> None:
    run = lnexp.run(None, "data.n_samples=8", out_dir=tmp_path)
    fig = lnexp.load(run.folder).figure("overview")
    from matplotlib.image import imread

    assert fig.axes[0].images[0].get_array().shape == imread(run.figures["overview"]).shape
    with pytest.raises(KeyError, match="no such figure"):
        run.figure("nope")


def test_errors_are_the_cli_messages(invoke: Any, tmp_path: Path) -> None:
    with pytest.raises(lnexp.ConfigError) as api_err:
        lnexp.load_config(CONFIGS / "default.yaml", "model.norm=nope")
    cli = invoke("validate", str(CONFIGS / "default.yaml"), "model.norm=nope")
    assert cli.exit_code == 2
    assert api_err.value.problems[0].split(" (")[0] in cli.stderr
    with pytest.raises(lnexp.ConfigError, match="KEY=VALUE"):
        lnexp.run(None, "model.norm")
    with pytest.raises(SystemExit):  # never: guard that the API raises, not exits
        raise SystemExit(0)


def test_load_config_from_preset_mapping_config_and_keywords() -> None:
    from lnexp.config import load_config, to_dict

    tutorial = lnexp.load_config("tutorial")
    assert to_dict(tutorial) == to_dict(load_config(CONFIGS / "default.yaml"))
    assert to_dict(lnexp.load_config()) == to_dict(tutorial)  # the built-in defaults
    cfg = lnexp.load_config("tutorial", "model.norm=bn", seed=3, data__n_samples=8)
    assert (cfg.model.norm, cfg.seed, cfg.data.n_samples) == ("bn", 3, 8)
    assert lnexp.load_config(cfg).seed == 3
    assert lnexp.load_config({"seed": 5}).seed == 5
    with pytest.raises(lnexp.ConfigError):
        lnexp.load_config("no-such-preset")


def test_presets_are_the_configs_folder() -> None:
    assert presets.FOLDER.resolve() == CONFIGS.resolve()
    assert presets.names() == sorted(p.stem for p in CONFIGS.glob("*.yaml"))
    assert presets.path("tutorial") == presets.FOLDER / "default.yaml"
    assert presets.path("../configs/default") is None


def test_cli_runs_presets_from_an_empty_folder(invoke: Any, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    result = invoke("run", "tutorial", "--json", *SMALL)
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["config"]["name"] == "default"
    result = invoke("compare", "--config", "images", "ln", "--quiet", "data.n_samples=2",
                    "output.figures=false")
    assert result.exit_code == 0, result.output
    listed = invoke("config", "list")
    assert listed.exit_code == 0
    assert re.search(r"^default\s+The tutorial's experiment.*\(also: tutorial\)$",
                     listed.stdout, re.M)
    assert json.loads(invoke("config", "list", "--json").stdout)["presets"][0]["name"] == \
        "batch_size"


@pytest.mark.slow
def test_readme_python_example_runs(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    [block] = re.findall(r"```python\n(.*?)```", readme, re.S)
    monkeypatch.chdir(tmp_path)
    scope: dict[str, Any] = {}
    exec(compile(block, "README.md", "exec"), scope)
    assert scope["run"].metrics["config"]["model"]["norm"] == "bn"
    assert scope["sweep"].status == "completed"
    assert not list(tmp_path.iterdir())  # every folder in a temporary directory


@pytest.mark.slow
def test_docstring_examples_run(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import doctest

    from lnexp import api

    monkeypatch.chdir(tmp_path)
    result = doctest.testmod(api, optionflags=doctest.ELLIPSIS)
    assert result.attempted >= 20 and result.failed == 0
