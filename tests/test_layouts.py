"""Images and sequences: every norm on its real axes, checked against plain tensor ops.

For each norm x layout the experiment's statistics are recomputed here from the same
activations with plain torch reductions in float64 (rtol 1e-10), and the norm's output is
checked to have mean 0 / variance 1 on its own axes (within eps). The draw order is checked
against a hand-written script: seed -> first layer -> data -> forward.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from lnexp import norms
from lnexp.config import from_mapping
from lnexp.experiment import run

N, C_IN, C, H, W, T = 3, 2, 6, 4, 5, 7
GROUPS = 3


def cfg_for(layout: str, norm: str, **model: object):
    data = {"n_samples": N, "layout": layout}
    data.update({"image": {"height": H, "width": W}, "sequence": {"tokens": T}}.get(layout, {}))
    return from_mapping({"seed": 5, "data": data,
                         "model": {"in_features": C_IN, "out_features": C, "norm": norm,
                                   "groups": GROUPS if norm == "group" else None, **model},
                         "output": {"figures": False}})


def reference(layout: str, norm: str) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The draw order written out: seed -> first layer -> data -> forward."""
    torch.manual_seed(5)
    if layout == "image":
        layer: nn.Module = nn.Conv2d(C_IN, C, kernel_size=3, padding=1)
        x = torch.randn(N, C_IN, H, W)
    else:
        layer = nn.Linear(C_IN, C)
        x = torch.randn(N, T, C_IN) if layout == "sequence" else torch.randn(N, C_IN)
    with torch.no_grad():
        pre = layer(x)
        post = norms.create(norm, C, groups=GROUPS, layout=layout)(pre)
    return x, pre, post


def plain_axes(t: torch.Tensor, layout: str) -> dict[str, torch.Tensor]:
    """Every axis as (units, values) rows, written with plain permutes and reshapes."""
    t = t.double()
    if layout == "features":
        return {"per_feature": t.T, "per_sample": t, "per_group": t.reshape(N * GROUPS, -1)}
    if layout == "image":  # (N, C, H, W)
        return {"per_feature": t.permute(1, 0, 2, 3).reshape(C, -1),
                "per_sample": t.reshape(N, -1),
                "per_instance": t.reshape(N * C, H * W),
                "per_group": t.reshape(N, GROUPS, C // GROUPS, H, W).reshape(N * GROUPS, -1),
                "per_pixel": t.permute(0, 2, 3, 1).reshape(N * H * W, C)}
    # (N, T, C)
    return {"per_feature": t.permute(2, 0, 1).reshape(C, -1),
            "per_sample": t.reshape(N, -1),
            "per_token": t.reshape(N * T, C),
            "per_instance": t.permute(0, 2, 1).reshape(N * C, T),
            "per_group": t.permute(0, 2, 1).reshape(N, GROUPS, C // GROUPS, T)
                          .reshape(N * GROUPS, -1)}


CASES = [(layout, norm) for layout in ("features", "image", "sequence")
         for norm in norms.defined_on(layout)]


@pytest.mark.parametrize(("layout", "norm"), CASES)
def test_statistics_equal_plain_tensor_ops(layout: str, norm: str) -> None:
    r = run(cfg_for(layout, norm))
    x, pre, post = reference(layout, norm)
    np.testing.assert_array_equal(r.inputs, x.numpy())  # same draw order, bit for bit
    np.testing.assert_array_equal(r.pre, pre.numpy())
    np.testing.assert_allclose(r.post, post.numpy(), rtol=0, atol=1e-6)
    for stage, ref in ((r.pre_stats, pre), (r.post_stats, torch.from_numpy(r.post))):
        plain = plain_axes(ref, layout)
        own = {"group": "per_group", "ln_pixel": "per_pixel"}.get(norm)
        assert set(stage.axes) == {a for a in plain
                                   if a not in ("per_group", "per_pixel") or a == own}
        for axis, a in stage.axes.items():
            var, mean = torch.var_mean(plain[axis], dim=1, correction=0)
            var_u = torch.var(plain[axis], dim=1, correction=1)
            assert a.count == plain[axis].shape[1], axis
            np.testing.assert_allclose(a.mean, mean.numpy(), rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(a.var, var.numpy(), rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(a.var_unbiased, var_u.numpy(), rtol=1e-10, atol=1e-13)


@pytest.mark.parametrize(("layout", "norm"), CASES)
def test_each_norm_standardizes_its_own_axis(layout: str, norm: str) -> None:
    # batch_renorm pins its axis only when r = 1 and d = 0: its running statistics at
    # initialization (0, 1) pull the output back to the input otherwise (rmax 1, dmax 0 = bn).
    clip = {"renorm_rmax": 1.0, "renorm_dmax": 0.0} if norm == "batch_renorm" else {}
    r = run(cfg_for(layout, norm, eps=1e-10, **clip))  # bn refuses eps 0 in training
    own = r.norm.standardizes_axis
    if own == "neither":
        assert r.standardized_axes == []
        return
    plain = plain_axes(torch.from_numpy(r.post), layout)[own]
    var, mean = torch.var_mean(plain, dim=1, correction=0)
    np.testing.assert_allclose(mean.numpy(), 0.0, atol=1e-5)
    np.testing.assert_allclose(var.numpy(), 1.0, atol=1e-4)
    assert own in r.standardized_axes
    assert r.standardizes.startswith({"per_feature": "features", "per_sample": "samples",
                                      "per_token": "tokens", "per_instance": "instances",
                                      "per_group": "groups", "per_pixel": "pixels"}[own])


TRANSFORMER = {"block": "transformer", "in_features": C, "heads": 2, "depth": 2}


@pytest.mark.parametrize("placement", ["pre_residual", "post_residual"])
@pytest.mark.parametrize("norm", norms.defined_on("sequence"))
def test_transformer_statistics_are_the_sequence_layouts(norm: str, placement: str) -> None:
    """A transformer run reports its first norm on the sequence axes (per_token, per_feature
    over N·T, per_sample over T·C, per_instance over T), recomputed here with plain ops, and
    that norm standardizes its own axis (ln: every token)."""
    clip = {"renorm_rmax": 1.0, "renorm_dmax": 0.0} if norm == "batch_renorm" else {}
    r = run(cfg_for("sequence", norm, eps=1e-10, placement=placement, **TRANSFORMER, **clip))
    assert r.pre.shape == r.post.shape == (N, T, C) and r.layers is not None
    for stage, t in ((r.pre_stats, r.pre), (r.post_stats, r.post)):
        plain = plain_axes(torch.from_numpy(t), "sequence")
        own = {"group": "per_group", "ln_pixel": "per_pixel"}.get(norm)
        assert set(stage.axes) == {a for a in plain
                                   if a not in ("per_group", "per_pixel") or a == own}
        for axis, a in stage.axes.items():
            var, mean = torch.var_mean(plain[axis], dim=1, correction=0)
            np.testing.assert_allclose(a.mean, mean.numpy(), rtol=1e-10, atol=1e-13)
            np.testing.assert_allclose(a.var, var.numpy(), rtol=1e-10, atol=1e-13)
    own = r.norm.standardizes_axis
    if own != "neither":
        assert own in r.standardized_axes
    if norm == "ln":
        assert own == "per_token" and r.norm.title == "LayerNorm per token"


def test_bn_on_two_images_is_not_degenerate() -> None:
    """On (2, C, H, W) BatchNorm2d has N·H·W values per channel: not the ±1 of (2, C)."""
    cfg = from_mapping({"data": {"n_samples": 2, "layout": "image"},
                        "model": {"in_features": 3, "out_features": 32, "norm": "bn"},
                        "output": {"figures": False}})
    r = run(cfg)
    assert len(np.unique(np.round(r.post, 6))) > 1000
    assert r.standardized_axes == ["per_feature"]


@pytest.mark.parametrize(("layout", "norm", "expected"), [
    ("image", "bn", (slice(None), 0, slice(None))),       # channel 0 of every sample
    ("image", "ln", (0, slice(None), slice(None))),       # all of sample 0
    ("image", "instance", (0, 0, slice(None))),           # channel 0 of sample 0
    ("image", "group", (0, slice(0, 2), slice(None))),    # group 0 = channels 0, 1
    ("sequence", "ln", (0, slice(None), 0)),              # token 0 of sample 0
    ("sequence", "instance", (0, 0, slice(None))),        # channel 0 over the tokens
    ("image", "none", (0, 0, 0)),                         # only itself
])
def test_measured_sharing_is_the_norms_set(layout: str, norm: str, expected: tuple) -> None:
    r = run(cfg_for(layout, norm))
    want = np.zeros_like(r.sharing)
    want[expected] = True
    np.testing.assert_array_equal(r.sharing, want)


def test_bn_in_eval_mode_shares_nothing() -> None:
    r = run(cfg_for("image", "bn", mode="eval"))
    assert r.sharing.sum() == 1  # running statistics: every value normalized alone


def test_features_layout_is_the_tutorial() -> None:
    """The default layout's run is unchanged: the tutorial's numbers, bit for bit."""
    r = run(from_mapping({}))
    assert r.sample_post.var_unbiased == pytest.approx(1.02038061, abs=1e-7)
    assert r.sharing is None and list(r.post_stats.axes) == ["per_feature", "per_sample"]


# --------------------------------------------------------------------------- figures

def _png(tmp_path, name: str, arg) -> np.ndarray:
    import matplotlib.image as mpimg

    from lnexp import figures
    from lnexp.store.figures import save_figure

    path = tmp_path / f"{name}.png"
    save_figure(figures.FIGURES[name](arg), path, dpi=60)
    img = mpimg.imread(path)[..., :3]
    assert (~(img > 0.97).all(axis=2)).mean() > 0.05, f"{name} is not blank"
    return img


def _blue_share(img: np.ndarray) -> float:
    from matplotlib.colors import to_rgb

    from lnexp.figures.layouts import SHARED

    return float((np.abs(img - np.array(to_rgb(SHARED))).max(axis=2) < 0.08).mean())


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
@pytest.mark.parametrize("layout", ["image", "sequence"])
def test_compare_figures_show_the_shared_sets(tmp_path, layout: str) -> None:
    from lnexp import compare

    cfg = cfg_for(layout, "ln")
    cmp = compare.compare(cfg, ["bn", "ln", "instance", "none"])
    img = _png(tmp_path, "norm_axes", cmp)
    assert img.shape[1] > img.shape[0] > 300
    assert _blue_share(img) > 0.003, "the shared sets are drawn in blue"
    _png(tmp_path, "comparison", cmp)
    ln_only = compare.compare(cfg, ["none"])
    assert _blue_share(_png(tmp_path, "norm_axes", ln_only)) < _blue_share(img)


@pytest.mark.parametrize(("layout", "name"), [("image", "feature_maps"),
                                              ("sequence", "token_heatmap"),
                                              ("image", "overview"), ("sequence", "overview")])
def test_run_figures_of_images_and_sequences(tmp_path, layout: str, name: str) -> None:
    r = run(cfg_for(layout, "instance"))
    img = _png(tmp_path, name, r)
    assert img.shape[1] > 500
