"""Bring your own norm (issue 21): `model.norm: file.py:Name`, `package.module:Name` or an
`lnexp.norms` entry point, through run, compare, sweep and training; its axes are measured;
every bad input is one `error:` line naming the spec, exit 2 (3 for a run-time refusal inside
compare), and leaves no folder. The CLI contract is checked in real subprocesses."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from lnexp import norms
from lnexp.norms import user

ROOT = Path(__file__).resolve().parent.parent
EXAMPLE = f"{ROOT}/examples/my_norm.py:SampleNorm"
SMALL = ["data.n_samples=8", "model.in_features=6", "model.out_features=4"]

PER_FEATURE = '''
import torch
from torch import nn


class FeatureNorm(nn.Module):
    """Each channel standardized over the batch and the positions (what BatchNorm does)."""

    def __init__(self, channels, layout):
        super().__init__()
        self.layout = layout

    def forward(self, x):
        c = 1 if self.layout == "image" else x.dim() - 1
        dims = tuple(d for d in range(x.dim()) if d != c)
        var, mean = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
        return (x - mean) / torch.sqrt(var + 1e-5)


def lying(channels, layout):
    m = FeatureNorm(channels, layout)
    return m


lying.axes = "per_sample"  # declared, but it standardizes features
'''

BAD = '''
import torch
from torch import nn

NOT_CALLABLE = 3


def raises(channels, layout):
    raise ValueError("no norm for you")


def not_a_module(channels, layout):
    return "norm"


class Shrinks(nn.Module):
    def __init__(self, channels, layout):
        super().__init__()

    def forward(self, x):
        return x[:, :1]


class Nan(nn.Module):
    def __init__(self, channels, layout):
        super().__init__()

    def forward(self, x):
        return x / 0.0 * 0.0


class BigBatches(nn.Module):
    """Fine on the probe batch (4 samples), refuses any larger one at run time."""

    def __init__(self, channels, layout):
        super().__init__()

    def forward(self, x):
        if x.shape[0] > 4:
            raise RuntimeError("too many samples")
        return x
'''


@pytest.fixture
def files(tmp_path: Path) -> Path:
    (tmp_path / "feature_norm.py").write_text(PER_FEATURE, encoding="utf-8")
    (tmp_path / "bad.py").write_text(BAD, encoding="utf-8")
    return tmp_path


def lnexp(*args: str, cwd: Path, env: dict[str, str] | None = None
          ) -> subprocess.CompletedProcess[str]:
    full = {**os.environ, "PYTHONPATH": str(ROOT), **(env or {})}
    return subprocess.run([sys.executable, "-m", "lnexp", *args], cwd=cwd, env=full,
                          capture_output=True, text=True, timeout=240)


@pytest.mark.parametrize("layout", ["features", "image", "sequence"])
def test_per_sample_and_per_feature_examples_measure_their_axes(files: Path, layout: str):
    sample = norms.resolve(EXAMPLE, layout, 6)
    feature = norms.resolve(f"{files}/feature_norm.py:FeatureNorm", layout, 6)
    assert sample.standardizes_axis == "per_sample" and sample.user
    assert feature.standardizes_axis == "per_feature"
    assert sample.mismatch is None  # SampleNorm declares per_sample: it agrees


def test_measurement_tells_every_builtin_axis_apart():
    """The same perturbation on the built-ins finds their registry axis (rms and frn share
    statistics per sample / per (sample, channel) without standardizing them)."""
    expect = {("ln", "sequence"): "per_token", ("ln_pixel", "image"): "per_pixel",
              ("instance", "image"): "per_instance", ("bn", "image"): "per_feature",
              ("group", "sequence"): "per_group", ("ln", "image"): "per_sample",
              ("frn", "image"): "per_instance", ("dyt", "image"): "neither",
              ("rms", "features"): "per_sample", ("batch_renorm", "features"): "per_feature"}
    for (name, layout), axis in expect.items():
        # batch_renorm with r = 1, d = 0 (rmax 1, dmax 0); at its defaults and initial running
        # statistics (0, 1) it returns its input unchanged (within the clipping): 'neither'.
        module = norms.create(name, 6, groups=3, layout=layout, renorm_rmax=1.0,
                              renorm_dmax=0.0).double()
        shape = {"features": (4, 6), "image": (4, 6, 3, 3), "sequence": (4, 5, 6)}[layout]
        x = torch.randn(shape, dtype=torch.float64, generator=torch.Generator().manual_seed(1))
        assert user.measure(module, x, layout) == (axis, 3 if axis == "per_group" else None), \
            (name, layout)
    x = torch.randn(4, 6, dtype=torch.float64)
    assert user.measure(norms.create("batch_renorm", 6).double(), x, "features")[0] == "neither"


def test_a_declared_axis_that_disagrees_is_reported(files: Path):
    spec = norms.resolve(f"{files}/feature_norm.py:lying", "features", 6)
    assert spec.standardizes_axis == "per_feature"
    assert "declares axes 'per_sample'" in spec.mismatch and "uses the measurement" in \
        spec.mismatch


@pytest.mark.slow
def test_run_compare_sweep_and_training_take_a_user_norm(files: Path):
    out = files / "out"
    run = lnexp("run", "tutorial", f"model.norm={EXAMPLE}", *SMALL, "output.figures=false",
                f"output.dir={out}", "--json", cwd=files)
    assert run.returncode == 0, run.stderr
    doc = json.loads(run.stdout)
    assert doc["norm"]["name"] == EXAMPLE and doc["expected_axis"] == "per_sample"
    assert doc["verdict"]["per_sample"]["standardized"]
    # figures off: test_image_compare_draws_the_user_norm_in_norm_axes draws a user norm's
    cmp = lnexp("compare", "bn", "ln", "feature_norm.py:FeatureNorm", *SMALL,
                "output.figures=false", "-o", str(out), "--json", cwd=files)
    assert cmp.returncode == 0, cmp.stderr
    entry = json.loads(cmp.stdout)["norms"][2]
    assert entry["standardizes"] == "features" and entry["run_dir"] == \
        "feature_norm.py_FeatureNorm"
    assert (Path(json.loads(cmp.stdout)["compare_dir"]) / entry["run_dir"] / "metrics.json"
            ).is_file()
    sweep = lnexp("sweep", "tutorial", "--grid", f"model.norm=ln,{EXAMPLE}", "--seeds", "1",
                  "--set", "data.n_samples=8", "--set", "output.figures=false", "-o", str(out),
                  cwd=files)
    assert sweep.returncode == 0, sweep.stderr
    assert "2 of 2 trials completed" in sweep.stdout
    trained = lnexp("run", "tutorial", f"model.norm={EXAMPLE}", "train.steps=5",
                    "train.eval_every=5", "output.figures=false", f"output.dir={out}",
                    cwd=files)
    assert trained.returncode == 0, trained.stderr
    assert "Held-out accuracy at step 5" in trained.stdout


@pytest.mark.slow
def test_image_compare_draws_the_user_norm_in_norm_axes(files: Path):
    out = files / "out"
    res = lnexp("compare", "ln", "feature_norm.py:FeatureNorm", "--config", "image_axes",
                "-o", str(out), "--json", cwd=files)
    assert res.returncode == 0, res.stderr
    folder = Path(json.loads(res.stdout)["compare_dir"])
    assert (folder / "norm_axes.png").stat().st_size > 10_000
    import matplotlib.image

    assert matplotlib.image.imread(folder / "norm_axes.png").shape[1] >= 900


@pytest.mark.slow
@pytest.mark.parametrize(("spec", "words"), [
    ("missing.py:Norm", "no such file"),
    ("bad.py:Absent", "has no attribute 'Absent'"),
    ("bad.py:NOT_CALLABLE", "int is not callable"),
    ("bad.py:raises", "raised ValueError: no norm for you"),
    ("bad.py:not_a_module", "returned str, not a torch nn.Module"),
    ("bad.py:Shrinks", "it changes the shape"),
    ("bad.py:Nan", "non-finite values"),
    ("no_such_pkg.mod:Norm", "no module named 'no_such_pkg'"),
], ids=["missing", "attribute", "not-callable", "raises", "non-module", "shape", "nan",
        "module"])
def test_bad_user_norms_are_refused_by_run(files: Path, spec: str, words: str):
    test_bad_user_norms_are_one_error_line_exit_2_and_leave_nothing(files, spec, words, "run")


@pytest.mark.parametrize(("spec", "words"), [("missing.py:Norm", "no such file"),
                                             ("bad.py:Shrinks", "it changes the shape")],
                         ids=["missing", "shape"])
@pytest.mark.slow
@pytest.mark.parametrize("command", ["compare", "validate", "dry-run"])
def test_bad_user_norms_are_one_error_line_exit_2_and_leave_nothing(files: Path, spec: str,
                                                                    words: str,
                                                                    command: str):
    out = files / "out"
    args = {"run": ["run", "tutorial", f"model.norm={spec}", f"output.dir={out}"],
            "compare": ["compare", "ln", spec, "-o", str(out)],
            "validate": ["validate", "tutorial", f"model.norm={spec}"],
            "dry-run": ["sweep", "tutorial", "--grid", f"model.norm=ln,{spec}",
                        "--dry-run", "-o", str(out)]}[command]
    res = lnexp(*args, cwd=files)
    assert res.returncode == 2, res.stderr
    errors = [ln for ln in res.stderr.splitlines() if ln.startswith("error:")]
    # a sweep says which trial, then how many are invalid (its contract): the first line
    assert len(errors) == (2 if command == "dry-run" else 1), res.stderr
    assert spec in errors[0] and words in errors[0], res.stderr
    assert "Traceback" not in res.stderr
    assert not out.exists()


@pytest.mark.slow
def test_a_run_time_refusal_inside_compare_exits_3(files: Path):
    out = files / "out"
    res = lnexp("compare", "ln", "bad.py:BigBatches", "-o", str(out), cwd=files)
    assert res.returncode == 3, res.stderr
    assert "bad.py:BigBatches" in res.stdout + res.stderr and "too many samples" in \
        res.stdout + res.stderr
    assert "Traceback" not in res.stderr


@pytest.mark.slow
def test_an_entry_point_registers_a_name(files: Path):
    """An installed package's `lnexp.norms` entry point: a dist-info on sys.path, as pip
    writes it, registering `featurenorm` = feature_norm:FeatureNorm."""
    dist = files / "featurenorm-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: featurenorm\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text("[lnexp.norms]\nfeaturenorm = "
                                           "feature_norm:FeatureNorm\n")
    env = {"PYTHONPATH": f"{ROOT}{os.pathsep}{files}"}
    res = lnexp("run", "tutorial", "model.norm=featurenorm", *SMALL, "output.figures=false",
                f"output.dir={files / 'out'}", "--json", cwd=files, env=env)
    assert res.returncode == 0, res.stderr
    assert json.loads(res.stdout)["expected_axis"] == "per_feature"
    typo = lnexp("validate", "tutorial", "model.norm=featurenorn", cwd=files, env=env)
    assert typo.returncode == 2 and "did you mean 'featurenorm'" in typo.stderr
