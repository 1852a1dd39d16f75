"""lnexp.models.probes: per-block hidden-state RMS and largest attention logit, by hooks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from lnexp.config import from_mapping
from lnexp.models import build_model
from lnexp.models.probes import as_lists, block_diagnostics, recording


def _model(layout: str = "features", **model):
    return build_model(from_mapping({"data": {"layout": layout}, "model": model}).model, layout)


def _transformer(**extra):
    torch.manual_seed(0)
    return _model("sequence", depth=3, in_features=16, hidden=16, out_features=16,
                  placement="pre_residual", block="transformer", heads=4, init="xavier",
                  **extra)


def _logit_max(attn, x: torch.Tensor) -> float:
    """Independent: max |q·k| / sqrt(d) from the attention's own q, k Linears."""
    n, t, c = x.shape
    h = attn.heads
    d = c // h
    q = attn.q(x).reshape(n, t, h, d).transpose(1, 2).double()
    k = attn.k(x).reshape(n, t, h, d).transpose(1, 2).double()
    if attn.q_norm is not None:  # rms at init (scale 1): over each head's d values
        q, k = (z / (z.pow(2).mean(-1, keepdim=True) + 1e-5).sqrt() for z in (q, k))
    return float((torch.einsum("nhtd,nhsd->nhts", q, k) / math.sqrt(d)).abs().max())


@pytest.mark.parametrize("qk_norm", ["none", "rms"])
def test_transformer_diagnostics_match_an_independent_computation(qk_norm):
    m = _transformer(qk_norm=qk_norm)
    x = torch.randn(4, 6, 16) * 3
    diag = block_diagnostics(m, x)
    assert sorted(diag) == [1, 2, 3]
    h = x
    with torch.no_grad():
        for i, block in enumerate(m.blocks, start=1):
            want = _logit_max(block.attn, block.norm1(h))  # pre_residual: attn sees Norm1(h)
            h = block(h)[0]
            assert diag[i]["attn_logit_max"] == pytest.approx(want, rel=1e-5)
            assert diag[i]["hidden_rms"] == pytest.approx(
                float(h.double().pow(2).mean().sqrt()), rel=1e-6)


def test_mlp_blocks_report_hidden_rms_only_and_a_head_around_the_model_is_fine():
    torch.manual_seed(0)
    m = _model(depth=4, in_features=8, hidden=8, out_features=8, placement="pre_residual",
               block="ffn2")
    net = nn.Sequential(m, nn.Linear(8, 3))
    x = torch.randn(10, 8)
    diag = block_diagnostics(net, x)
    with torch.no_grad():
        tr = m.trace(x)
    assert [set(d) for d in diag.values()] == [{"hidden_rms"}] * 4
    for i, b in enumerate(tr.blocks, start=1):
        assert diag[i]["hidden_rms"] == pytest.approx(float(b.double().pow(2).mean().sqrt()))
    assert list(as_lists(diag)) == ["hidden_rms"]


def test_block_diagnostics_leaves_batchnorm_running_statistics_alone():
    torch.manual_seed(0)
    m = _model(depth=3, in_features=8, hidden=8, out_features=8, norm="bn")
    before = {k: v.clone() for k, v in m.state_dict().items()}
    block_diagnostics(m, torch.randn(16, 8) + 5)
    for k, v in m.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_recording_pools_forwards_and_removes_its_hooks():
    m = _transformer()
    x1, x2 = torch.randn(2, 6, 16), 10 * torch.randn(2, 6, 16)
    with torch.no_grad(), recording(m) as rec:
        m(x1)
        m(x2)
    pooled = rec.result()
    one, two = block_diagnostics(m, x1), block_diagnostics(m, x2)
    for i in pooled:
        assert pooled[i]["attn_logit_max"] == max(one[i]["attn_logit_max"],
                                                  two[i]["attn_logit_max"])
        rms = math.sqrt((one[i]["hidden_rms"] ** 2 + two[i]["hidden_rms"] ** 2) / 2)
        assert pooled[i]["hidden_rms"] == pytest.approx(rms, rel=1e-9)
    assert all(not b._forward_hooks and not b.attn.logits._forward_hooks for b in m.blocks)
