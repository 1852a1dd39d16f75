"""The residual-growth and QK-norm findings (docs/findings.md) reproduce their claims on one
seed, measured from a fresh run, not hard-coded."""

from __future__ import annotations

import math

import pytest

from lnexp.config import load_config
from lnexp.experiment import run
from tests.conftest import CONFIGS


def _rms(*sets: str, depth: int = 16) -> list[float]:
    lay = run(load_config(CONFIGS / "residual_growth.yaml", [f"model.depth={depth}", *sets])).layers
    return [float(v) for v in lay.hidden_rms]


def test_residual_growth_pre_ln_grows_ln_scaling_slows_it_and_peri_ln_grows_like_sqrt_2l():
    """configs/residual_growth.yaml at depth 16, seed 0 (the sweep: depth 8-64, 5 seeds)."""
    pre = _rms()
    scaled = _rms("model.ln_scaling=true")
    peri = _rms("model.placement=peri_residual")
    assert pre[-1] > 2 * pre[0], pre  # Pre-LN's stream grows with depth
    assert scaled[-1] < 0.6 * pre[-1], (scaled, pre)  # LayerNorm Scaling slows it
    # Peri-LN adds one unit-RMS (normalized) branch per sub-layer, two per block: at
    # initialization its stream grows like sqrt(1 + 2l), more than Pre-LN's, not bounded
    assert peri[-1] > pre[-1], (peri, pre)
    assert peri[-1] == pytest.approx(math.sqrt(1 + 2 * 16), rel=0.15)


@pytest.mark.parametrize("placement", ["post_residual", "deepnorm_residual"])
def test_residual_growth_post_ln_and_deepnorm_end_each_block_with_a_norm(placement):
    # a norm ends every block at any depth; 4 blocks show it (depth 16 costs 4x the time)
    rms = _rms(f"model.placement={placement}", depth=4)
    assert len(rms) == 4 and max(abs(r - 1) for r in rms) < 1e-3, rms


def _qk(*sets: str):
    return run(load_config(CONFIGS / "qk_norm.yaml", ["train.eval_every=1000", *sets])).training


@pytest.mark.slow  # two 150-step 2-block transformer trainings, a few s on a quiet machine
def test_qk_norm_trains_at_a_learning_rate_where_plain_attention_fails():
    """configs/qk_norm.yaml at lr 0.2, seed 0 (the sweep: plain 0.213 (0.121-0.512), ln 1.00
    (0.869-1.00) over 5 seeds)."""
    plain = _qk("train.lr=0.2")
    normed = _qk("train.lr=0.2", "model.qk_norm=ln")
    assert plain.evals[-1].acc_eval_mode < 0.5 < 0.9 < normed.evals[-1].acc_eval_mode
    # and the plain model's attention logits ran away, far beyond the normed model's
    assert max(plain.final_blocks["attn_logit_max"]) > 10 * max(
        normed.final_blocks["attn_logit_max"])
