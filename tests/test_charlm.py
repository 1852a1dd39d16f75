"""train.task: charlm: a causal transformer on Shakespeare, held-out bits per character."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import pytest
import torch

from lnexp import norms, registry, text
from lnexp.config import ModelConfig
from lnexp.models import build_model
from lnexp.models.charlm import CharLM
from tests.conftest import run_json

CUT = """\
name: charlm-cut
data: {layout: sequence, tokens: 32, source: text, n_samples: 4}
model: {block: transformer, in_features: 32, out_features: 32, depth: 2, heads: 4,
        placement: pre_residual, activation: gelu, ffn_width: 64}
train: {task: charlm, steps: 150, batch_size: 16, n_train: 2400, n_heldout: 64, lr: 3.0e-3,
        eval_every: 75}
output: {figures: false}
"""


@pytest.fixture
def cut(tmp_path: Path) -> Path:
    path = tmp_path / "charlm.yaml"
    path.write_text(CUT)
    return path


def _history(doc: dict) -> list[dict[str, str]]:
    folder = Path(doc["run_dir"]) if "run_dir" in doc else None
    assert folder is not None
    with open(folder / "history.csv", newline="") as f:
        return list(csv.DictReader(f))


@pytest.mark.slow  # 150 training steps: seconds; the matrix below keeps charlm in the fast loop
def test_bits_per_char_starts_at_log2_vocab_and_falls(invoke, tmp_path, cut):
    doc = run_json(invoke, tmp_path, cut)
    vocab = text.corpus("shakespeare", 32).vocab_size
    evals = doc["training"]["evals"]
    first, last = evals[0]["bits_per_char"], evals[-1]["bits_per_char"]
    assert [e["step"] for e in evals] == [0, 75, 150]
    assert abs(first - math.log2(vocab)) <= 0.1 * math.log2(vocab), (first, vocab)
    assert last < 0.75 * math.log2(vocab), (first, last)
    assert evals[0]["eval_mode"]["loss"] / math.log(2) == pytest.approx(first)
    rows = _history(doc)
    bpc = {int(r["step"]): r["heldout_bits_per_char"] for r in rows if r["heldout_bits_per_char"]}
    assert sorted(bpc) == [0, 75, 150]
    assert float(bpc[150]) == pytest.approx(last)
    assert not doc["training"]["diverged"]


def test_attention_is_causal():
    """Changing the characters after position t leaves the logits at positions <= t alone."""
    cfg = ModelConfig(block="transformer", in_features=16, out_features=16, depth=2, heads=2,
                      placement="pre_residual")
    torch.manual_seed(0)
    net = CharLM(build_model(cfg, "sequence"), vocab=10, context=12, width=16).double()
    idx = torch.randint(10, (3, 12))
    other = idx.clone()
    other[:, 7:] = (other[:, 7:] + 1) % 10
    a, b = net(idx), net(other)
    assert torch.allclose(a[:, :7], b[:, :7], atol=1e-12, rtol=0)
    assert not torch.allclose(a[:, 7:], b[:, 7:])


TRANSFORMER_PLACEMENTS = [p for p, spec in registry.PLACEMENTS.items() if spec.residual]


@pytest.mark.parametrize("placement", TRANSFORMER_PLACEMENTS)
@pytest.mark.parametrize("norm", [n for n in norms.names()
                                  if not norms.get(n).not_defined_on("sequence")])
def test_every_norm_and_placement_trains(invoke, tmp_path, cut, norm, placement):
    doc = run_json(invoke, tmp_path, cut, f"model.norm={norm}", f"model.placement={placement}",
                   "train.steps=3", "train.eval_every=3", "data.tokens=8",
                   # a held-out set of 64 windows costs 4x the whole case; 8 shows finiteness
                   "train.n_heldout=8", "train.batch_size=4")
    evals = doc["training"]["evals"]
    assert [e["step"] for e in evals] == [0, 3]
    assert all(math.isfinite(e["bits_per_char"]) for e in evals), json.dumps(evals)


def test_causal_attention_logit_probe_sees_only_the_pairs_used():
    """lnexp.models.probes' largest attention logit, under the causal mask: the largest
    |q·k|/sqrt(d) over pairs (t, s <= t), recomputed here; the future pairs do not count."""
    from lnexp.models import probes

    cfg = ModelConfig(block="transformer", in_features=8, out_features=8, depth=1, heads=1,
                      placement="post_residual", norm="none")
    used = torch.tril(torch.ones(6, 6, dtype=torch.bool))
    future_larger = []
    for seed in range(8):
        torch.manual_seed(seed)
        net = CharLM(build_model(cfg, "sequence"), vocab=5, context=6, width=8).double()
        idx = torch.randint(5, (4, 6))
        got = probes.block_diagnostics(net, idx)[1]["attn_logit_max"]
        attn = net.body.blocks[0].attn
        with torch.no_grad():
            x = net.embed(idx) + net.position
            scores = (attn.q(x) @ attn.k(x).transpose(-1, -2)) / math.sqrt(8)
        assert got == pytest.approx(float(scores[:, used].abs().max()), rel=1e-9)
        future_larger.append(float(scores.abs().max()) > got)
    assert any(future_larger)  # the case this test is about happens
