"""The finding configs reproduce their claims: asserted on the measured run, not hard-coded."""

from __future__ import annotations

import pytest

from lnexp.config import load_config
from lnexp.experiment import run
from tests.conftest import CONFIGS


def _layers(config: str, *sets: str):
    return run(load_config(CONFIGS / config, list(sets))).layers


def test_deep_tanh_without_a_norm_the_first_layer_gradient_vanishes():
    assert _layers("deep_tanh.yaml").first_over_last < 1e-2


@pytest.mark.parametrize("norm", ["bn", "ln", "rms"])
def test_deep_tanh_with_a_norm_gradients_stay_within_about_10x(norm):
    r = _layers("deep_tanh.yaml", f"model.norm={norm}").first_over_last
    assert 1e-1 < r < 10


def test_deep_sigmoid_bn_rescues_it():
    assert _layers("deep_sigmoid.yaml").first_over_last > 1e-1  # the config's norm is bn


@pytest.mark.parametrize("norm", ["ln", "rms", "none"])
def test_deep_sigmoid_ln_and_rms_do_not(norm):
    lay = _layers("deep_sigmoid.yaml", f"model.norm={norm}")
    assert lay.first_over_last < 1e-6 and lay.grad_norm[0] < 1e-7


def test_post_ln_last_layer_gradient_grows_relative_to_pre_ln_with_depth():
    ratios = []
    for depth in (2, 8, 32):
        last = {p: _layers("pre_vs_post_ln.yaml", f"model.depth={depth}",
                           f"model.placement={p}").grad_norm[-1]
                for p in ("pre_residual", "post_residual")}
        ratios.append(last["post_residual"] / last["pre_residual"])
    assert ratios == sorted(ratios) and ratios[-1] > 2 * ratios[0], ratios


def _heldout_accuracy(*sets: str) -> float:
    tr = run(load_config(CONFIGS / "batch_size.yaml", ["train.eval_every=1000", *sets]))
    return tr.training.evals[-1].acc_eval_mode


def test_batch_size_2_collapses_bn_but_not_ln():
    bn2 = _heldout_accuracy()  # the config: bn, batch size 2
    bn32 = _heldout_accuracy("train.batch_size=32")
    ln2 = _heldout_accuracy("model.norm=ln")
    assert bn2 < 0.5 < 0.85 < min(bn32, ln2), (bn2, bn32, ln2)


def test_batch_size_sweep_shows_bn_collapse_in_summary_csv(tmp_path):
    """`lnexp sweep configs/batch_size.yaml`, cut to 2 norms x 2 batch sizes x 1 seed."""
    import csv
    import json

    from typer.testing import CliRunner

    from lnexp.cli import app

    res = CliRunner().invoke(app, [
        "sweep", str(CONFIGS / "batch_size.yaml"), "--grid", "model.norm=bn,ln",
        "--grid", "train.batch_size=2,32", "--seeds", "1", "-j", "2", "-o", str(tmp_path),
        "--no-figure", "--json"])
    assert res.exit_code == 0, res.output
    doc = json.loads(res.stdout)
    with open(doc["sweep_dir"] + "/summary.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    col = next(k for k in rows[0] if k.startswith("training.heldout.eval_mode.accuracy")
               and k.endswith("mean"))
    acc = {(r["model.norm"], r["train.batch_size"]): float(r[col]) for r in rows}
    assert acc[("bn", "2")] < acc[("bn", "32")] - 0.3  # BN collapses at batch size 2 ...
    assert acc[("ln", "2")] > 0.8  # ... LayerNorm does not
