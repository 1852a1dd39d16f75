"""experiment.run against the tutorial's own numbers and an independent torch computation."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lnexp import norms
from lnexp.config import from_mapping, load_config
from lnexp.errors import NotDefinedError
from lnexp.experiment import run
from lnexp.models import build_model
from tests.conftest import CONFIGS


def tutorial_reference(seed: int = 0, n: int = 100, d_in: int = 100, d_out: int = 50,
                       norm: nn.Module | None = None):
    """The tutorial's script, as written there: seed -> Linear -> norm -> torch.randn."""
    torch.manual_seed(seed)
    linear = nn.Linear(d_in, d_out)
    layer = norm if norm is not None else nn.LayerNorm(d_out)
    x = torch.randn(n, d_in, requires_grad=True)
    pre = linear(x).detach()
    post = layer(linear(x)).detach()
    return x.detach(), pre, post


def test_default_config_reproduces_the_tutorial_exactly():
    r = run(load_config(CONFIGS / "default.yaml"))
    # Numbers printed by the tutorial's script (float32, torch.var unbiased).
    assert r.sample_pre.mean == pytest.approx(-0.06453948, abs=1e-8)
    assert r.sample_pre.var_unbiased == pytest.approx(0.37890887, abs=1e-7)
    assert r.sample_post.var_unbiased == pytest.approx(1.02038061, abs=1e-7)
    assert r.post_stats.per_feature.var_unbiased.min() == pytest.approx(0.59384686, abs=1e-7)
    assert r.post_stats.per_feature.var_unbiased.max() == pytest.approx(1.31177449, abs=1e-7)
    # And bit for bit the same activations as the script.
    _, pre, post = tutorial_reference()
    np.testing.assert_array_equal(r.pre, pre.numpy())
    np.testing.assert_array_equal(r.post, post.numpy())


@pytest.mark.parametrize("norm", norms.defined_on("features"))
@pytest.mark.parametrize(("seed", "n", "d_in", "d_out"), [(3, 17, 8, 12), (7, 64, 30, 20)])
def test_stats_match_an_independent_torch_computation(norm, seed, n, d_in, d_out):
    cfg = from_mapping({"seed": seed, "data": {"n_samples": n},
                        "model": {"in_features": d_in, "out_features": d_out, "norm": norm,
                                  "groups": 2 if norm == "group" else None}})
    r = run(cfg)
    torch.manual_seed(seed)
    linear = nn.Linear(d_in, d_out)
    layer = norms.create(norm, d_out, groups=2)
    x = torch.randn(n, d_in)
    with torch.no_grad():
        pre = linear(x)
        post = layer(pre)
    np.testing.assert_allclose(r.post, post.numpy(), rtol=0, atol=0)
    for stage, ref in ((r.pre_stats, pre), (r.post_stats, post)):
        ref64 = ref.double()
        for dim, axis in ((0, stage.per_feature), (1, stage.per_sample)):
            var_b, mean = torch.var_mean(ref64, dim=dim, correction=0)
            var_u = torch.var(ref64, dim=dim, correction=1)
            np.testing.assert_allclose(axis.mean, mean.numpy(), rtol=1e-12, atol=1e-12)
            np.testing.assert_allclose(axis.var, var_b.numpy(), rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(axis.var_unbiased, var_u.numpy(), rtol=1e-10, atol=1e-14)
            np.testing.assert_allclose(axis.std, var_b.sqrt().numpy(), rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(("norm", "features", "samples"), [
    ("bn", True, False), ("ln", False, True), ("group", False, True),
    ("rms", False, False), ("none", False, False),
])
def test_axis_verdicts(norm, features, samples):
    r = run(from_mapping({"model": {"norm": norm}}))
    assert r.verdicts["per_feature"].standardized is features
    assert r.verdicts["per_sample"].standardized is samples


def test_rms_rescales_without_centring():
    r = run(from_mapping({"model": {"norm": "rms"}}))
    ps = r.post_stats.per_sample
    np.testing.assert_allclose(ps.mean**2 + ps.var, 1.0, atol=1e-4)  # mean square is 1
    assert np.abs(ps.mean).max() > 0.05  # ... but the mean is not 0


def test_single_sample_demo_matches_the_tutorial():
    r = run(load_config(CONFIGS / "single_sample.yaml"))
    np.testing.assert_allclose(r.sample_post.values,
                               [-0.7071, 0.0, 1.4142, -1.4142, 0.7071], atol=1e-4)
    assert r.sample_post.var == pytest.approx(1.0, abs=1e-5) and r.sample_post.var < 1.0
    assert r.sample_post.var_unbiased == pytest.approx(1.25, abs=1e-4)
    # One sample: a per-feature unbiased variance does not exist.
    assert np.isnan(r.post_stats.per_feature.var_unbiased).all()


def test_draw_order_is_seed_model_data():
    """Changing the model's width changes the data only through the RNG stream position."""
    a = run(from_mapping({"seed": 5}))
    torch.manual_seed(5)
    nn.Linear(100, 50)
    np.testing.assert_array_equal(a.inputs, torch.randn(100, 100).numpy())


@pytest.mark.parametrize("dist", ["normal", "uniform", "laplace", "student_t"])
def test_distributions_have_the_configured_mean_and_std(dist):
    cfg = from_mapping({"data": {"n_samples": 4000, "distribution": dist, "loc": 3.0,
                                 "scale": 2.0, "df": 6.0},
                        "model": {"in_features": 50, "out_features": 50, "linear": False}})
    x = run(cfg).inputs.astype(np.float64)
    assert x.mean() == pytest.approx(3.0, abs=0.05)
    assert x.std() == pytest.approx(2.0, rel=0.03)


def test_bn_batch_of_one_in_train_mode_is_not_defined():
    from lnexp import plan

    cfg = from_mapping({"data": {"n_samples": 1}, "model": {"norm": "bn"}})
    assert "batch of 1 in train mode" in plan.not_defined_reason(cfg)
    with pytest.raises(NotDefinedError, match="PyTorch refused"):  # run trusts its caller
        run(cfg)


def test_bn_eval_mode_with_fresh_running_stats_is_nearly_identity():
    r = run(from_mapping({"model": {"norm": "bn", "mode": "eval"}}))
    np.testing.assert_allclose(r.post, r.pre / np.sqrt(1 + 1e-5), rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------- streaming

def _close(a, b, rtol, atol):
    for stage_a, stage_b in ((a.pre_stats, b.pre_stats), (a.post_stats, b.post_stats)):
        for axis in ("per_feature", "per_sample"):
            for stat in ("mean", "var", "var_unbiased"):
                np.testing.assert_allclose(getattr(getattr(stage_a, axis), stat),
                                           getattr(getattr(stage_b, axis), stat),
                                           rtol=rtol, atol=atol)


def test_batch_renorm_and_user_norms_see_the_whole_batch():
    """batch_renorm moves its running statistics batch by batch: a chunk is not the batch."""
    from lnexp import plan

    assert not plan.streams(from_mapping({"model": {"norm": "batch_renorm"}}))
    assert plan.streams(from_mapping({"model": {"norm": "dyt"}}))


@pytest.mark.parametrize("norm", [n for n in norms.defined_on("features") if n != "batch_renorm"])
@pytest.mark.parametrize("dist", ["normal", "uniform", "laplace"])
def test_streamed_run_equals_the_one_chunk_run(norm, dist):
    cfg = from_mapping({"seed": 2, "sample_index": 777,
                        "data": {"n_samples": 1000, "distribution": dist, "loc": 0.5},
                        "model": {"in_features": 20, "out_features": 12, "norm": norm,
                                  "groups": 3 if norm == "group" else None}})
    whole = run(cfg)
    streamed = run(cfg, rows_per_chunk=96)
    assert (whole.chunks, streamed.chunks) == (1, 11)
    # Same random draws chunk by chunk, so the same inputs and pre-norm activations ...
    np.testing.assert_array_equal(streamed.inputs, whole.inputs)
    np.testing.assert_array_equal(streamed.pre, whole.pre)
    if norm == "bn":  # float32 batch statistics inside BatchNorm vs lnexp's float64 ones
        _close(streamed, whole, rtol=1e-5, atol=1e-6)
    else:
        _close(streamed, whole, rtol=1e-9, atol=1e-12)
    assert streamed.sample_post.mean == pytest.approx(whole.sample_post.mean, abs=1e-6)
    assert streamed.verdicts["per_feature"].standardized == \
        whole.verdicts["per_feature"].standardized


def test_student_t_is_drawn_in_one_chunk():
    from lnexp.plan import chunk_rows

    cfg = from_mapping({"data": {"n_samples": 50_000, "distribution": "student_t"}})
    assert chunk_rows(cfg, 64) == 50_000


def test_chunk_rows_keep_randn_blocks_whole():
    cfg = from_mapping({"data": {"n_samples": 10_000}, "model": {"in_features": 100}})
    from lnexp.plan import chunk_rows

    rows = chunk_rows(cfg, 50)
    assert rows * 100 % 16 == 0


def test_streamed_runs_report_progress_per_chunk():
    calls: list[tuple[int, int, str]] = []
    small = {"data": {"n_samples": 64}, "model": {"in_features": 16, "out_features": 8}}
    run(from_mapping({**small, "model": {**small["model"], "norm": "ln"}}),
        lambda *a: calls.append(a), rows_per_chunk=16)
    assert calls == [(16, 64, ""), (32, 64, ""), (48, 64, ""), (64, 64, "")]
    calls.clear()
    run(from_mapping({**small, "model": {**small["model"], "norm": "bn"}}),
        lambda *a: calls.append(a), rows_per_chunk=32)
    assert calls == [(32, 128, "pass 1/2"), (64, 128, "pass 1/2"), (96, 128, "pass 2/2"),
                     (128, 128, "pass 2/2")]


def test_precision_block_compares_the_run_with_float64_on_the_same_weights_and_inputs():
    r = run(from_mapping({}))  # the tutorial, float32
    assert r.precision is not None and r.precision.dtype == "float32"
    assert 0 < r.precision.post_norm[0] < 1e-5 and r.precision.input_error == (0.0, 0.0)
    h = run(from_mapping({"model": {"dtype": "bfloat16"}}))
    assert h.precision.dtype == "bfloat16" and h.precision.post_norm[0] > 1e-3
    # Statistics stay float64 and describe the same Linear weights and inputs.
    assert h.pre_stats.per_feature.mean.dtype == np.float64
    np.testing.assert_allclose(h.pre_stats.per_feature.mean, r.pre_stats.per_feature.mean,
                               atol=0.05)


@pytest.mark.parametrize(("block", "layout"), [("ffn2", "features"), ("ffn2", "sequence"),
                                               ("transformer", "sequence")])
def test_ffn2_and_transformer_runs_report_per_block_gradients_over_all_their_weights(block,
                                                                                     layout):
    cfg = {"model": {"depth": 3, "in_features": 16, "hidden": 16, "out_features": 16,
                     "placement": "post_residual", "activation": "relu", "init": "xavier",
                     "block": block},
           "data": {"n_samples": 8, "layout": layout}}
    if layout == "sequence":
        cfg["data"]["tokens"] = 4
    lay = run(from_mapping(cfg)).layers
    assert len(lay.grad_norm) == 3 and np.all(lay.grad_norm > 0)
    assert np.all(np.isfinite(lay.cosine)) and np.all(lay.spread > 0)


def test_transformer_gradients_follow_the_draw_order_seed_blocks_data_target():
    """seed -> blocks -> data (N, T, C_in) -> target (N, T, C_out), then one backward of the
    MSE: the per-block gradient norms equal this script's bit for bit (and the data equals the
    N*T-row draw the transformer used before data.layout: sequence existed)."""
    cfg = from_mapping({"seed": 4, "data": {"n_samples": 5, "layout": "sequence", "tokens": 3},
                        "model": {"depth": 2, "in_features": 8, "hidden": 8, "out_features": 8,
                                  "placement": "pre_residual", "block": "transformer",
                                  "heads": 2, "init": "xavier"},
                        "output": {"figures": False}})
    r = run(cfg)
    torch.manual_seed(4)
    model = build_model(cfg.model, "sequence")
    x = torch.randn(5 * 3, 8).reshape(5, 3, 8)
    target = torch.randn(5, 3, 8)
    torch.mean((model(x) - target) ** 2).backward()
    np.testing.assert_array_equal(r.inputs, x.numpy())
    grads = [float(torch.stack([lin.weight.grad.double().norm() for lin in lins]).norm())
             for lins in model.block_linears()]
    assert r.layers.grad_norm.tolist() == grads
