"""The finding configs reproduce their claims: asserted on the measured run, not hard-coded."""

from __future__ import annotations

import functools

import pytest
import yaml

from lnexp.config import load_config
from lnexp.experiment import run
from tests.conftest import CONFIGS


@functools.cache  # a seeded run is deterministic: tests that read the same run share it
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


def test_deep_tanh_vanishing_without_a_norm_is_the_default_init_not_tanh():
    """configs/depth_scan.yaml: with xavier init, none keeps first/last near 1 at depth 20."""
    assert 0.5 < _layers("depth_scan.yaml", "model.init=xavier").first_over_last < 2


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
@pytest.mark.parametrize("norm", ["bn", "ln"])
def test_deep_tanh_with_a_norm_gradients_explode_with_depth(norm):
    """configs/depth_scan.yaml: "within 10x" holds at depth 20, not at 50 (Yang et al. 2019)."""
    r20 = _layers("depth_scan.yaml", f"model.norm={norm}").first_over_last
    r50 = _layers("depth_scan.yaml", f"model.norm={norm}", "model.depth=50").first_over_last
    assert r20 < 10 < r50, (r20, r50)


def test_deep_tanh_without_a_norm_every_sample_becomes_the_same_vector():
    lay = _layers("depth_scan.yaml")  # none, default init, depth 20
    assert lay.cosine[-1] > 0.999 and lay.cosine[0] < 0.9


@pytest.mark.parametrize("norm", ["ln", "rms"])
def test_deep_sigmoid_ln_and_rms_map_every_sample_to_the_same_vector(norm):
    lay = _layers("deep_sigmoid.yaml", f"model.norm={norm}")
    assert lay.spread[0] > 0.1 and lay.spread[-1] < 1e-6 and lay.cosine[-1] > 0.999999
    assert lay.std[-1] > 0.1  # the old panel: every value's std looks healthy


def test_deep_sigmoid_runs_in_float64_below_the_float32_floor():
    """The shipped finding is in float64: ln's last-block spread (~3e-9) is below float32's
    rounding floor of sigmoid outputs near 0.5 (~3e-8), which float32 cannot go under."""
    assert load_config(CONFIGS / "deep_sigmoid.yaml").model.dtype == "float64"
    f64 = _layers("deep_sigmoid.yaml", "model.norm=ln").spread[-1]
    f32 = _layers("deep_sigmoid.yaml", "model.norm=ln", "model.dtype=float32").spread[-1]
    assert f64 < 1e-8 < 2e-8 < f32, (f64, f32)


def test_deep_sigmoid_bn_keeps_the_samples_apart():
    lay = _layers("deep_sigmoid.yaml")  # bn
    assert lay.spread[-1] > 0.1 and lay.cosine[-1] < 0.9


def _post_over_pre(depth: int, *sets: str) -> tuple[float, float, float]:
    """(post/pre last-block gradient, post's first/last, pre's first/last)."""
    lay = {p: _layers("pre_vs_post_ln.yaml", f"model.depth={depth}", f"model.placement={p}",
                      *sets) for p in ("pre_residual", "post_residual")}
    return (lay["post_residual"].grad_norm[-1] / lay["pre_residual"].grad_norm[-1],
            lay["post_residual"].first_over_last, lay["pre_residual"].first_over_last)


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
@pytest.mark.parametrize("block", ["linear", "ffn2"])
def test_post_ln_last_layer_gradient_grows_relative_to_pre_ln_with_depth(block):
    ratios = [_post_over_pre(d, f"model.block={block}")[0] for d in (2, 8, 32)]
    assert ratios == sorted(ratios) and ratios[-1] > 2 * ratios[0], ratios


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
def test_post_ln_profile_is_skewed_with_one_linear_and_flat_with_the_ffn_branch():
    """One Linear per block: Post-LN's first block gets >10x its last's gradient at depth 64
    (the opposite of Xiong et al.); with Linear-ReLU-Linear it is within 3x."""
    def post(*sets: str) -> float:
        return _layers("pre_vs_post_ln.yaml", "model.depth=64", "model.placement=post_residual",
                       *sets).first_over_last

    assert post() > 10
    assert 1 / 3 < post("model.block=ffn2") < 3


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
def test_transformer_post_ln_last_layer_gradient_grows_relative_to_pre_ln_with_depth():
    sets = ("model.block=transformer", "data.layout=sequence", "data.tokens=8",
            "data.n_samples=16")
    shallow, deep = (_post_over_pre(d, *sets)[0] for d in (2, 16))
    assert deep > 1.8 * shallow, (shallow, deep)


def test_half_precision_inputs_lose_the_rows_while_the_norm_arithmetic_stays_accurate():
    """configs/precision.yaml: at loc 1e4 each fp16/bf16 row holds one distinct value."""
    for dtype in ("float16", "bfloat16"):
        p = run(load_config(CONFIGS / "precision.yaml", [f"model.dtype={dtype}"])).precision
        assert p.input_distinct_per_row == 1 and p.post_norm[0] > 1, p
        assert p.post_norm_same_inputs[0] < 0.2, p
    p = run(load_config(CONFIGS / "precision.yaml", ["model.dtype=float32"])).precision
    assert p.input_distinct_per_row > 90 and p.post_norm[0] < 1e-2, p


def _heldout_accuracy(*sets: str) -> float:
    tr = run(load_config(CONFIGS / "batch_size.yaml", ["train.eval_every=1000", *sets]))
    return tr.training.evals[-1].acc_eval_mode


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
def test_batch_size_2_collapses_bn_but_not_ln():
    bn2 = _heldout_accuracy()  # the config: bn, batch size 2
    bn32 = _heldout_accuracy("train.batch_size=32")
    ln2 = _heldout_accuracy("model.norm=ln")
    assert bn2 < 0.5 < 0.85 < min(bn32, ln2), (bn2, bn32, ln2)


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
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


def _final_accuracy(*sets: str) -> float:
    tr = run(load_config(CONFIGS / "warmup.yaml", ["train.eval_every=1000", *sets])).training
    return tr.evals[-1].acc_eval_mode


@pytest.mark.slow  # three 300-step transformer trainings, ~10 s in all on a quiet machine
def test_post_ln_without_warmup_fails_at_a_rate_where_pre_ln_and_warmed_up_post_ln_train():
    """configs/warmup.yaml at lr 3e-2, seed 0 (the sweep: 5 of 5 seeds)."""
    post = _final_accuracy()  # the config: post_residual, lr 3e-2, no warm-up
    post_warm = _final_accuracy("train.warmup_steps=100")
    pre = _final_accuracy("model.placement=pre_residual")
    assert post < 0.3 < 0.9 < min(post_warm, pre), (post, post_warm, pre)


@pytest.mark.slow  # two 300-step transformer trainings, ~7 s in all on a quiet machine
def test_at_lr_1e_1_post_ln_fails_even_with_warmup_and_only_pre_ln_with_warmup_trains():
    """configs/warmup.yaml's grid reaches lr 1e-1, where warm-up no longer saves Post-LN
    (seed 0; the sweep: 5 of 5 seeds): warm-up raises the stable learning rate, it does not
    remove the limit."""
    grid = yaml.safe_load((CONFIGS / "warmup.yaml").read_text())["sweep"]["grid"]["train.lr"]
    assert 2e-2 in grid and 1e-1 in grid, grid
    post_warm = _final_accuracy("train.lr=0.1", "train.warmup_steps=100")
    pre_warm = _final_accuracy("train.lr=0.1", "train.warmup_steps=100",
                               "model.placement=pre_residual")
    assert post_warm < 0.3 < 0.9 < pre_warm, (post_warm, pre_warm)
