"""lnexp compare: the core (lnexp/compare.py), its renderers and files, and the CLI command."""

from __future__ import annotations

import csv
import io
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from rich.console import Console
from typer.testing import CliRunner

from lnexp import compare as cmp_mod
from lnexp import config, experiment, explain, figures, norms, tables
from lnexp.cli import app
from lnexp.errors import EXIT_PARTIAL, EXIT_USAGE, ConfigError, NormError
from lnexp.models import build_model
from lnexp.store.documents import metrics
from lnexp.store.figures import save_figure

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
DEFAULT = CONFIGS / "default.yaml"
SINGLE = CONFIGS / "single_sample.yaml"
NO_FIGURES = ["--set", "output.figures=false"]


def small(**model: object) -> config.Config:
    """A fast config: 64 samples x 16 features, no figures."""
    return config.from_mapping({"data": {"n_samples": 64},
                                "model": {"in_features": 32, "out_features": 16, **model},
                                "output": {"figures": False}})


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def only_dir(parent: Path) -> Path:
    (child,) = [p for p in parent.iterdir() if p.is_dir()]
    return child


# --------------------------------------------------------------------------- same inputs

def test_every_norm_sees_identical_linear_weights_and_inputs() -> None:
    cfg = small()
    assert cmp_mod.select(None) == norms.compare_default("features")  # the classic five
    every = norms.defined_on("features")  # the 2017-2025 norms too: none draws at build time
    per_norm = cmp_mod.norm_configs(cfg, every)
    assert list(per_norm) == every  # instance needs images/sequences
    assert "instance" not in per_norm and "dyt" in per_norm
    weights = []
    for norm_cfg in per_norm.values():
        torch.manual_seed(norm_cfg.seed)
        weights.append(build_model(norm_cfg.model).blocks[0].linear.weight.detach().clone())
    assert all(torch.equal(weights[0], w) for w in weights[1:])

    result = cmp_mod.compare(cfg, every)
    first = result.outcomes[0].result
    for o in result.outcomes[1:]:
        assert np.array_equal(first.inputs, o.result.inputs), o.name
        assert np.array_equal(first.pre, o.result.pre), o.name


def test_core_results_equal_separate_runs_of_the_same_config() -> None:
    cfg = config.load_config(DEFAULT, ["data.n_samples=40", "output.figures=false"])
    result = cmp_mod.compare(cfg, None, source=str(DEFAULT))
    for o in result.outcomes:
        alone_cfg = config.load_config(DEFAULT, ["data.n_samples=40", "output.figures=false",
                                                 f"model.norm={o.name}"])
        assert config.to_dict(o.config) == config.to_dict(alone_cfg)
        alone = experiment.run(alone_cfg)
        assert np.array_equal(o.result.post, alone.post), o.name
        assert (metrics(o.result, explain.lines(o.result))
                == metrics(alone, explain.lines(alone))), o.name


def test_cli_compare_metrics_equal_cli_runs(tmp_path: Path) -> None:
    names = norms.defined_on("features")
    res = invoke("compare", *names, "--config", str(DEFAULT), *NO_FIGURES,
                 "-o", str(tmp_path), "--json")
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)  # --json prints only the document
    compare_dir = Path(doc["compare_dir"])
    assert [e["name"] for e in doc["norms"]] == names
    for entry in doc["norms"]:
        name = entry["name"]
        ran = invoke("run", str(DEFAULT), "--set", f"model.norm={name}", *NO_FIGURES,
                     "-o", str(tmp_path), "--json")
        assert ran.exit_code == 0, ran.output
        alone = json.loads(ran.stdout)
        inside = json.loads((compare_dir / entry["run_dir"] / "metrics.json").read_text())
        for key in ("config", "stages", "sample", "verdict", "explanation", "norm"):
            assert inside[key] == alone[key], (name, key)
        post = alone["stages"]["post_norm"]
        for axis in ("per_feature", "per_sample"):
            for stat in ("mean", "var", "var_unbiased"):
                summary = post[axis]["summary"][stat]
                assert entry[axis][stat]["min"] == summary["min"], (name, axis, stat)
                assert entry[axis][stat]["max"] == summary["max"], (name, axis, stat)
        assert entry["global"]["rms"] == post["global"]["rms"]


# --------------------------------------------------------------------------- verdicts

@pytest.mark.parametrize(("name", "options", "expected"), [
    ("bn", {}, "features"),
    ("ln", {}, "samples"),
    ("group", {"groups": 1}, "groups and samples"),  # one group: the sample
    # 4 groups of 4: every group, hence the sample. With the default eps=1e-5 a 4-value group
    # of variance ~4e-3 ends at var 0.9975, outside the 1e-3 tolerance: eps, not the axis.
    ("group", {"eps": 1e-9}, "groups and samples"),
    ("rms", {}, "neither"),
    ("none", {}, "neither"),
])
def test_axis_verdicts(name: str, options: dict, expected: str) -> None:
    (o,) = cmp_mod.compare(small(**options), [name]).outcomes
    assert o.standardizes == expected
    # the registry's claim matches what the numbers show: its axis comes first
    assert expected.split(" and ")[0].split(",")[0] == o.spec.axis
    if name == "rms":
        ps = o.result.verdicts["per_sample"]
        assert not ps.centred  # RMSNorm does not subtract the mean
        rms = np.sqrt(o.result.post_stats.per_sample.mean ** 2
                      + o.result.post_stats.per_sample.var)
        np.testing.assert_allclose(rms, 1.0, atol=1e-4)  # ... but each sample has RMS 1
        assert abs(o.result.post_stats.global_.mean) > 1e-3


def test_table_shows_each_norms_axis_and_rms_mean() -> None:
    result = cmp_mod.compare(small(), ["bn", "ln", "rms"])
    console = Console(width=120, record=True)
    console.print(tables.compare_table(result))
    text = console.export_text()
    row = next(line for line in text.splitlines() if line.strip().startswith("standardizes"))
    assert row.split()[-3:] == ["features", "samples", "neither"]
    assert "var (biased)" in text and "var (unbiased)" in text
    mean_row = next(line for line in text.splitlines() if line.strip().startswith("output mean"))
    rms_mean = float(mean_row.split()[-1])
    assert rms_mean == pytest.approx(result.outcomes[2].result.post_stats.global_.mean,
                                     rel=1e-2)
    assert abs(rms_mean) > 1e-3


def test_plain_language_lines_name_each_axis() -> None:
    result = cmp_mod.compare(small(), ["bn", "ln"])
    (bn, bn_lines), (ln, ln_lines) = explain.compare_lines(result)
    assert (bn, ln) == ("bn", "ln")
    assert "every feature has mean 0, variance 1 over the 64 samples" in bn_lines[0]
    assert "every sample has mean 0, variance 1 over its 16 features" in ln_lines[0]


def test_bn_two_samples_and_eval_mode_are_explained() -> None:
    two = config.from_mapping({"data": {"n_samples": 2}, "output": {"figures": False}})
    (o,) = cmp_mod.compare(two, ["bn"]).outcomes
    np.testing.assert_allclose(np.abs(o.result.post), 1.0, atol=1e-2)
    assert any("exactly ±1" in line for line in explain.compare_lines(cmp_mod.compare(
        two, ["bn"]))[0][1])
    (e,) = cmp_mod.compare(small(mode="eval"), ["bn"]).outcomes
    np.testing.assert_allclose(e.result.post, e.result.pre / np.sqrt(1 + 1e-5), rtol=1e-6)
    assert any("almost an identity" in line for line in explain.compare_lines(
        cmp_mod.compare(small(mode="eval"), ["bn"]))[0][1])


# --------------------------------------------------------------------------- edge cases

def test_bn_batch_of_one_exits_3_and_writes_the_other_norms(tmp_path: Path) -> None:
    res = invoke("compare", "--config", str(SINGLE), *NO_FIGURES, "-o", str(tmp_path))
    assert res.exit_code == EXIT_PARTIAL == 3, res.output
    words = " ".join(res.stdout.split())  # the table column and the bullet line wrap
    assert "not computed - not defined for a batch of 1 in train mode — use" in words
    assert "partly done (exit 3)" in res.stderr
    compare_dir = only_dir(tmp_path / "single_sample-compare")
    written = sorted(p.name for p in compare_dir.iterdir() if p.is_dir())
    assert written == sorted(["ln", "rms", "group", "none"])
    for name in written:
        assert json.loads((compare_dir / name / "metrics.json").read_text())["kind"] == "run"
    doc = json.loads((compare_dir / "comparison.json").read_text())
    assert doc["status"] == "partial"
    bn = doc["norms"][0]
    assert (bn["name"], bn["status"], bn["run_dir"]) == ("bn", "not_defined", None)
    assert "use model.mode: eval or more samples" in bn["reason"]
    assert json.loads((compare_dir / "run.json").read_text())["status"] == "partial"
    rows = list(csv.DictReader(io.StringIO((compare_dir / "comparison.csv").read_text())))
    assert [r["norm"] for r in rows] == norms.compare_default("features")
    assert rows[0]["status"] == "not_defined" and rows[0]["per_sample_var_min"] == ""


def test_compare_shows_progress_like_run_and_sweep(tmp_path: Path) -> None:
    # issue 19 #6: compare printed nothing for ~20 s. Not a terminal: a few plain lines on
    # stderr, one per norm and one for the figures; silent with -q.
    res = invoke("compare", "bn", "ln", "-o", str(tmp_path / "a"))
    assert res.exit_code == 0, res.output
    lines = res.stderr.splitlines()
    assert lines == ["compare 0/3  running bn", "compare 1/3  running ln",
                     "compare 2/3  drawing figures, writing files", "compare 3/3  done"]
    quiet = invoke("compare", "bn", "ln", "-q", *NO_FIGURES, "-o", str(tmp_path / "b"))
    assert quiet.exit_code == 0 and quiet.stderr == ""


def test_compare_progress_is_a_transient_bar_on_a_terminal(tmp_path: Path) -> None:
    from lnexp import core, progress

    cfg = config.from_mapping({"data": {"n_samples": 8}, "output": {"figures": False}})
    configs = cmp_mod.norm_configs(cfg, ["bn", "ln"])
    out = io.StringIO()
    console = Console(file=out, force_terminal=True, width=80)
    with progress.steps("compare", console=console) as update:
        core.compare(cfg, configs, tmp_path, ["lnexp", "compare"], None, update)
    text = out.getvalue()
    # a bar (rich redraws on a timer, so only its final state is certain), not plain lines
    assert "━" in text and "3/3" in text and "done" in text
    assert "compare 3/3  done" not in text


def test_groups_not_dividing_is_a_config_error_before_anything_runs(tmp_path: Path) -> None:
    res = invoke("compare", "--set", "model.groups=7", *NO_FIGURES, "-o", str(tmp_path))
    assert res.exit_code == EXIT_USAGE, res.output
    assert "7 groups do not divide 50 features" in res.stderr
    assert "model.norm=group" in res.stderr
    assert list(tmp_path.iterdir()) == []  # no folder was created
    # Without group in the list the same override is irrelevant and the compare runs.
    res = invoke("compare", "bn", "ln", "--set", "model.groups=7", *NO_FIGURES,
                 "-o", str(tmp_path), "--quiet")
    assert res.exit_code == 0, res.output
    assert sorted(p.name for p in Path(res.stdout.strip()).iterdir() if p.is_dir()) == [
        "bn", "ln"]


def test_names_selection() -> None:
    assert cmp_mod.select(None) == cmp_mod.select([]) == ["bn", "ln", "rms", "group", "none"]
    assert cmp_mod.select(None, "image") == list(norms.COMPARE_DEFAULT)  # instance on images
    assert cmp_mod.select(["ln", "bn"]) == ["ln", "bn"]
    with pytest.raises(NormError, match="more than once"):
        cmp_mod.select(["bn", "bn"])
    with pytest.raises(NormError, match="expected one of"):
        cmp_mod.select(["batchnorm"])
    with pytest.raises(ConfigError, match="7 groups do not divide 16 features"):
        cmp_mod.norm_configs(small(groups=None).model_copy(
            update={"model": small().model.model_copy(update={"groups": 7})}), ["group"])


def test_cli_rejects_unknown_and_repeated_names(tmp_path: Path) -> None:
    assert invoke("compare", "bn", "layernorm", "-o", str(tmp_path)).exit_code == EXIT_USAGE
    res = invoke("compare", "bn", "bn", "-o", str(tmp_path))
    assert res.exit_code == EXIT_USAGE and "more than once" in res.stderr
    assert list(tmp_path.iterdir()) == []


# --------------------------------------------------------------------------- figure, config

def test_comparison_png_has_the_expected_size_and_is_not_blank(tmp_path: Path) -> None:
    from matplotlib.image import imread

    cfg = config.from_mapping({"data": {"values": [[2.0, 3.0, 5.0, 1.0, 4.0]]},
                               "model": {"linear": False}})
    result = cmp_mod.compare(cfg)  # six columns, bn not computed (batch of 1)
    fig = figures.FIGURES["comparison"](result)
    save_figure(fig, tmp_path / "comparison.png", dpi=50)
    img = imread(tmp_path / "comparison.png")
    width, height = fig.get_size_inches() * 50
    assert img.shape[:2] == (round(height), round(width))
    rgb = img[..., :3]
    assert (rgb.min(axis=2) < 0.9).mean() > 0.05  # a real share of non-white pixels
    assert len(np.unique(rgb.reshape(-1, 3), axis=0)) > 50  # colours, not one flat fill


def test_compare_yaml_validates_and_says_how_to_run_it() -> None:
    text = (CONFIGS / "compare.yaml").read_text()
    assert text.startswith("#")
    assert "# Run: lnexp compare --config configs/compare.yaml" in text
    cfg = config.load_config(CONFIGS / "compare.yaml")
    assert cmp_mod.norm_configs(cfg, None)["group"].model.groups == 4


@pytest.mark.slow  # starts real processes
def test_real_subprocess_json_prints_only_the_document(tmp_path: Path) -> None:
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-m", "lnexp", "compare", "bn", "ln", "--config",
                          str(DEFAULT), *NO_FIGURES, "-o", str(tmp_path), "--json"],
                         capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert out.stderr == ""
    doc = json.loads(out.stdout)
    assert (doc["schema_version"], doc["kind"], doc["norm_order"]) == (1, "compare", ["bn", "ln"])
    assert [e["standardizes"] for e in doc["norms"]] == ["features", "samples"]
    assert (Path(doc["compare_dir"]) / "comparison.csv").is_file()


def test_compare_on_a_deep_model_draws_one_gradient_line_per_norm(tmp_path: Path) -> None:
    import matplotlib.image as mpimg

    cfg = config.load_config(CONFIGS / "deep_tanh.yaml", ["output.figures=false"])
    result = cmp_mod.compare(cfg, ["bn", "ln", "none"], source="deep_tanh.yaml")
    ratios = {o.name: o.result.layers.first_over_last for o in result.outcomes}
    assert ratios["none"] < 1e-2 and ratios["bn"] > 1e-1 and ratios["ln"] > 1e-1
    fig = figures.FIGURES["compare_layers"](result)
    _, labels = fig.axes[1].get_legend_handles_labels()
    assert labels == ["bn", "ln", "none"]  # one gradient-norm line per norm
    save_figure(fig, tmp_path / "layers.png", dpi=80)
    img = mpimg.imread(tmp_path / "layers.png")[..., :3]
    assert img.shape[1] >= 1000 and (~(img > 0.97).all(axis=2)).mean() > 0.05
    table = Console(width=140, record=True)
    table.print(tables.compare_table(result))
    assert "grad norm, first / last block" in table.export_text()


def test_comparison_figure_of_a_batch_larger_than_the_rows_kept(tmp_path: Path) -> None:
    cfg = config.load_config(DEFAULT, ["data.n_samples=3000", "output.figures=false"])
    result = cmp_mod.compare(cfg, ["bn", "ln"], source=str(DEFAULT))
    assert all(o.result.rows_kept == 2000 for o in result.outcomes)
    fig = figures.FIGURES["comparison"](result)
    assert "first 2,000 of 3,000" in fig.axes[2].get_ylabel()
    assert fig.axes[2].get_ylim()[0] > 1999  # y in sample indices, not thinned positions
    save_figure(fig, tmp_path / "c.png", dpi=50)


def test_compare_stops_when_a_norm_s_training_was_interrupted(monkeypatch) -> None:
    """Training swallows Ctrl-C to save what it recorded; compare must not go on as if done."""
    from types import SimpleNamespace

    stopped = SimpleNamespace(training=SimpleNamespace(interrupted=True))
    monkeypatch.setattr(experiment, "run", lambda cfg: stopped)
    with pytest.raises(KeyboardInterrupt):
        cmp_mod.compare(config.load_config(DEFAULT), ["bn", "ln"])


def test_compare_without_config_uses_the_built_in_defaults_from_any_folder(
        invoke, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)  # no configs/ here
    result = invoke("compare", "ln", "rms", "--json", "--set", "output.figures=false")
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    expected = config.to_dict(config.load_config(CONFIGS / "default.yaml"))
    assert {k: v for k, v in doc["config"].items() if k != "output"} == \
        {k: v for k, v in expected.items() if k != "output"}
