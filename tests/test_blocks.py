"""Placements and block options (peri_residual, deepnorm_residual, ln_scaling, qk_norm) against
an independent plain-PyTorch re-implementation: float64, the model's weights copied in (norm
scales and shifts randomized so they count), tight tolerance."""

from __future__ import annotations

import math

import pytest
import torch

from lnexp.config import from_mapping
from lnexp.errors import ConfigError
from lnexp.models import build_model

W = 16
PLACEMENTS = ["pre_residual", "post_residual", "peri_residual", "deepnorm_residual"]


def _cfg(layout: str, **model):
    base = {"in_features": W, "hidden": W, "out_features": W, "init": "xavier",
            "activation": "gelu"}
    return from_mapping({"data": {"layout": layout}, "model": {**base, **model}}).model


def _build(layout: str, **model):
    torch.manual_seed(0)
    m = build_model(_cfg(layout, **model), layout).double()
    g = torch.Generator().manual_seed(1)
    with torch.no_grad():  # non-trivial norm scales and shifts, so the reference must use them
        for name, p in m.named_parameters():
            if "norm" in name:
                p.copy_(1 + 0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64)
                        if name.endswith("weight") else
                        0.3 * torch.randn(p.shape, generator=g, dtype=torch.float64))
    return m


# ------------------------------------------------------------------ the reference, by hand

def ref_norm(kind: str, mod, x: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """LayerNorm / RMSNorm over the last dim with the module's scale (and shift)."""
    if kind == "ln":
        mu = x.mean(-1, keepdim=True)
        y = (x - mu) / torch.sqrt(((x - mu) ** 2).mean(-1, keepdim=True) + eps)
        return y * mod.weight + mod.bias
    return x / torch.sqrt((x ** 2).mean(-1, keepdim=True) + eps) * mod.weight


def ref_lin(mod, x: torch.Tensor) -> torch.Tensor:
    return x @ mod.weight.T + mod.bias


def ref_ffn(ffn, x: torch.Tensor) -> torch.Tensor:
    return ref_lin(ffn.fc2, torch.nn.functional.gelu(ref_lin(ffn.fc1, x)))


def ref_attn(attn, x: torch.Tensor, heads: int, qk: str) -> torch.Tensor:
    d = x.shape[-1] // heads
    out = torch.zeros_like(x)
    q_all, k_all, v_all = ref_lin(attn.q, x), ref_lin(attn.k, x), ref_lin(attn.v, x)
    for h in range(heads):  # one head at a time, explicit softmax
        sl = slice(h * d, (h + 1) * d)
        q, k, v = q_all[..., sl], k_all[..., sl], v_all[..., sl]
        if qk != "none":
            q, k = ref_norm(qk, attn.q_norm, q), ref_norm(qk, attn.k_norm, k)
        s = torch.einsum("ntd,nsd->nts", q, k) / math.sqrt(d)
        e = torch.exp(s - s.max(-1, keepdim=True).values)
        out[..., sl] = torch.einsum("nts,nsd->ntd", e / e.sum(-1, keepdim=True), v)
    return ref_lin(attn.o, out)


def ref_sublayer(placement: str, x, branch, n_in, n_out, kind: str, alpha: float, s: float):
    if placement == "pre_residual":
        return x + branch(s * ref_norm(kind, n_in, x))
    if placement == "peri_residual":
        return x + ref_norm(kind, n_out, branch(ref_norm(kind, n_in, x)))
    if placement == "deepnorm_residual":
        return ref_norm(kind, n_in, alpha * x + branch(x))
    return ref_norm(kind, n_in, x + branch(x))


def ref_model(m, x, placement: str, kind: str, block: str, depth: int, scaling: bool = False,
              qk: str = "none", heads: int = 4) -> torch.Tensor:
    alpha = (2 * depth) ** 0.25 if placement == "deepnorm_residual" else 1.0
    for ell, b in enumerate(m.blocks, start=1):
        s = 1 / math.sqrt(ell) if scaling else 1.0
        if block == "ffn2":
            x = ref_sublayer(placement, x, lambda z, b=b: ref_ffn(b.linear, z), b.norm,
                             b.norm_out, kind, alpha, s)
        else:
            x = ref_sublayer(placement, x, lambda z, b=b: ref_attn(b.attn, z, heads, qk),
                             b.norm1, b.norm1_out, kind, alpha, s)
            x = ref_sublayer(placement, x, lambda z, b=b: ref_ffn(b.ffn, z), b.norm2,
                             b.norm2_out, kind, alpha, s)
    if placement in ("pre_residual", "peri_residual"):
        x = ref_norm(kind, m.final_norm, x)
    return x


# ------------------------------------------------------------------ the tests

@pytest.mark.parametrize("norm", ["ln", "rms"])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_ffn2_stack_matches_the_reference(placement, norm):
    m = _build("features", depth=3, block="ffn2", ffn_width=24, placement=placement, norm=norm)
    x = torch.randn(7, W, dtype=torch.float64)
    with torch.no_grad():
        want = ref_model(m, x, placement, norm, "ffn2", 3)
        torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("qk", ["none", "ln", "rms"])
@pytest.mark.parametrize("placement", PLACEMENTS)
def test_transformer_stack_matches_the_reference(placement, qk):
    m = _build("sequence", depth=3, block="transformer", heads=4, placement=placement,
               norm="ln", qk_norm=qk)
    x = 2 * torch.randn(3, 5, W, dtype=torch.float64)
    with torch.no_grad():
        want = ref_model(m, x, placement, "ln", "transformer", 3, qk=qk)
        torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize(("layout", "block"), [("features", "ffn2"),
                                               ("sequence", "transformer")])
def test_ln_scaling_multiplies_each_norm_output_by_one_over_sqrt_block(layout, block):
    m = _build(layout, depth=4, block=block, placement="pre_residual", norm="rms",
               ln_scaling=True)
    x = torch.randn(3, 5, W, dtype=torch.float64) if layout == "sequence" else \
        torch.randn(6, W, dtype=torch.float64)
    with torch.no_grad():
        want = ref_model(m, x, "pre_residual", "rms", block, 4, scaling=True)
        torch.testing.assert_close(m(x), want, rtol=1e-12, atol=1e-12)
        # and it changes the output (the reference without scaling differs)
        assert not torch.allclose(m(x), ref_model(m, x, "pre_residual", "rms", block, 4))


@pytest.mark.parametrize("depth", [2, 6])
def test_deepnorm_scales_value_output_and_ffn_weights_by_beta_and_leaves_q_k(depth):
    plain = _build("sequence", depth=depth, block="transformer", placement="post_residual")
    deep = _build("sequence", depth=depth, block="transformer", placement="deepnorm_residual")
    beta = (8 * depth) ** -0.25
    for bp, bd in zip(plain.blocks, deep.blocks, strict=True):
        for name in ("attn.q", "attn.k", "attn.v", "attn.o", "ffn.fc1", "ffn.fc2"):
            lp, ld = bp.get_submodule(name), bd.get_submodule(name)
            factor = 1.0 if name in ("attn.q", "attn.k") else beta
            # scaled in float32 before the float64 copy: one float32 rounding
            torch.testing.assert_close(ld.weight, factor * lp.weight, rtol=1.2e-7, atol=0)
            torch.testing.assert_close(ld.bias, factor * lp.bias, rtol=1.2e-7, atol=0)
    assert deep.blocks[0].alpha == pytest.approx((2 * depth) ** 0.25)


def test_peri_residual_has_two_norms_per_sublayer_and_a_final_norm():
    m = _build("sequence", depth=2, block="transformer", placement="peri_residual")
    kinds = [type(mod).__name__ for n, mod in m.named_modules() if "norm" in n.split(".")[-1]]
    assert kinds.count("LayerNorm") == 2 * 4 + 1


@pytest.mark.parametrize(("model", "key"), [
    ({"placement": "peri_residual", "block": "linear"}, "model.placement"),
    ({"placement": "deepnorm_residual", "block": "linear"}, "model.placement"),
    ({"placement": "post_residual", "block": "ffn2", "ln_scaling": True}, "model.ln_scaling"),
    ({"placement": "peri_residual", "block": "ffn2", "ln_scaling": True}, "model.ln_scaling"),
    ({"placement": "pre_residual", "block": "ffn2", "qk_norm": "ln"}, "model.qk_norm"),
    ({"placement": "pre_residual", "block": "transformer", "qk_norm": "bn"}, "qk_norm"),
    ({"placement": "post", "block": "transformer"}, "model.placement must be a residual"),
])
def test_combinations_that_make_no_sense_are_refused_naming_the_key(model, key):
    layout = "sequence" if model.get("block") == "transformer" or "qk_norm" in model \
        else "features"
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        from_mapping({"data": {"layout": layout},
                      "model": {"in_features": W, "hidden": W, "out_features": W, **model}})


def test_validate_refuses_a_nonsense_combination_with_one_error_line_and_exit_2(invoke):
    from pathlib import Path

    cfg = Path(__file__).resolve().parent.parent / "configs" / "pre_vs_post_ln.yaml"
    bad = invoke("validate", str(cfg), "--set", "model.qk_norm=rms")
    assert bad.exit_code == 2 and "Traceback" not in bad.output
    assert "model.qk_norm" in bad.stderr and "model.block: transformer" in bad.stderr
    ok = invoke("validate", str(cfg), "--set", "model.block=ffn2",
                "--set", "model.placement=deepnorm_residual")
    assert ok.exit_code == 0, ok.output
