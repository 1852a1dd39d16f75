"""lnexp inspect on tiny models built here, checked against statistics computed by hand:
plain float64 tensor operations on the norm's input and output captured without hooks."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from lnexp.inspect.core import measure
from lnexp.inspect.discover import find_norms
from lnexp.inspect.inputs import Batch, RandomSource, Source, TensorSource
from lnexp.inspect.models import LoadedModel
from lnexp.inspect.options import InspectOptions
from lnexp.inspect.outcome import document

RTOL = 1e-10


def loaded(module: nn.Module, tokenizer=None) -> LoadedModel:
    return LoadedModel(module, tokenizer, "tiny", "tiny", "built in the test")


def ref_stage(rows: torch.Tensor) -> dict[str, np.ndarray]:
    """Statistics of a (tokens, dims) matrix, float64, computed in one piece."""
    x = rows.double()
    return {"dim_mean": x.mean(0).numpy(), "dim_var": ((x - x.mean(0)) ** 2).mean(0).numpy(),
            "dim_absmax": x.abs().max(0).values.numpy(),
            "tok_mean": x.mean(1).numpy(), "tok_var": ((x - x.mean(1, keepdim=True)) ** 2)
            .mean(1).numpy()}


def ref_sqnr(chunks: list[torch.Tensor]) -> tuple[float, float]:
    """int8 SQNR in dB: one scale per chunk (per tensor) and one per row (per token)."""
    sig = err_t = err_r = 0.0
    for c in chunks:
        x = c.double()
        sig += float((x ** 2).sum())
        s = x.abs().max() / 127
        err_t += float(((x - torch.round(x / s).clamp(-127, 127) * s) ** 2).sum())
        s = x.abs().max(1, keepdim=True).values / 127
        err_r += float(((x - torch.round(x / s).clamp(-127, 127) * s) ** 2).sum())
    return 10 * math.log10(sig / err_t), 10 * math.log10(sig / err_r)


def check_stage(stage, ref: dict[str, np.ndarray]) -> None:
    np.testing.assert_allclose(stage.per_dim.mean, ref["dim_mean"], rtol=RTOL, atol=1e-15)
    np.testing.assert_allclose(stage.per_dim.var, ref["dim_var"], rtol=RTOL)
    np.testing.assert_array_equal(stage.per_dim.absmax, ref["dim_absmax"])
    t = stage.per_token
    assert t.count == ref["tok_mean"].size
    assert t.mean_min == pytest.approx(ref["tok_mean"].min(), rel=RTOL, abs=1e-15)
    assert t.mean_max == pytest.approx(ref["tok_mean"].max(), rel=RTOL, abs=1e-15)
    assert t.mean_mean == pytest.approx(ref["tok_mean"].mean(), rel=RTOL, abs=1e-15)
    assert t.var_min == pytest.approx(ref["tok_var"].min(), rel=RTOL)
    assert t.var_max == pytest.approx(ref["tok_var"].max(), rel=RTOL)
    assert t.var_mean == pytest.approx(ref["tok_var"].mean(), rel=RTOL)
    # quantiles come from a log histogram with 0.005-decade bins: within 1.2%
    for q in (0.25, 0.5, 0.75):
        exact = np.quantile(ref["tok_var"], q, method="inverted_cdf")
        assert t.var_quantiles[f"p{round(q * 100)}"] == pytest.approx(exact, rel=0.012)
    assert t.largest_var[0].value == pytest.approx(ref["tok_var"].max(), rel=RTOL)
    # outliers: top dims by absmax, ratio to the median dim's absmax
    order = np.argsort(-ref["dim_absmax"], kind="stable")
    median = np.median(ref["dim_absmax"])
    assert [o.dim for o in stage.outliers] == order[:len(stage.outliers)].tolist()
    for o in stage.outliers:
        assert o.ratio == pytest.approx(ref["dim_absmax"][o.dim] / median, rel=RTOL)
        assert abs(o.tokens[0].value) == ref["dim_absmax"][o.dim]


class Tiny(nn.Module):
    """Linear -> LayerNorm -> ReLU -> Linear -> RMSNorm -> head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.lin1 = nn.Linear(6, 8)
        self.ln = nn.LayerNorm(8)
        self.lin2 = nn.Linear(8, 8)
        self.rms = nn.RMSNorm(8, eps=1e-6)
        with torch.no_grad():  # learned-looking affine parameters
            self.ln.weight.copy_(torch.linspace(-2, 3, 8))
            self.ln.bias.copy_(torch.linspace(1, -1, 8))
            self.rms.weight.copy_(torch.tensor([1, 2, 3, 1e-9, 5, 6, 7, 8.0]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.rms(self.lin2(torch.relu(self.ln(self.lin1(x)))))


def test_layernorm_and_rmsnorm_match_hand_computation() -> None:
    model = Tiny()
    x = torch.randn(10, 3, 6, generator=torch.Generator().manual_seed(1)) * 3 + 0.5
    out = measure(loaded(model), TensorSource(x, "test"), InspectOptions(batch_size=4, top_k=3))
    assert [r.name for r in out.layers] == ["ln", "rms"]
    with torch.no_grad():  # batch by batch, as measured (float32 matmuls depend on shape)
        a = torch.cat([model.lin1(x[i:i + 4]) for i in range(0, 10, 4)])
        b = model.ln(a)
        c = torch.cat([model.lin2(torch.relu(b[i:i + 4])) for i in range(0, 10, 4)])
        d = model.rms(c)
    ln, rms = out.layers
    for report, pre, post in ((ln, a, b), (rms, c, d)):
        check_stage(report.pre, ref_stage(pre.reshape(-1, 8)))
        check_stage(report.post, ref_stage(post.reshape(-1, 8)))
        # batches of 4, 4, 2 inputs: per tensor = one scale per call
        want = ref_sqnr([pre[i:i + 4].reshape(-1, 8) for i in range(0, 10, 4)])
        assert report.quant.per_tensor_sqnr_db == pytest.approx(want[0], rel=RTOL)
        assert report.quant.per_token_sqnr_db == pytest.approx(want[1], rel=RTOL)
        assert report.calls == 3
    assert (ln.type, ln.normalized_shape, ln.eps, ln.axis) == ("LayerNorm", (8,), 1e-5, "last")
    assert (rms.type, rms.eps) == ("RMSNorm", 1e-6)
    # rows located back to (input, position): row r of the (10, 3) leading axes
    top = ln.pre.outliers[0]
    tok = top.tokens[0]
    assert a[tok.input, tok.position, top.dim].item() == tok.value
    # weight extremes by |value|, and the weight at the outlier dims with its rank
    w = rms.weight
    assert [(e.dim, e.value) for e in w.largest[:2]] == [(7, 8.0), (6, 7.0)]
    assert (w.smallest_abs[0].dim, w.smallest_abs[0].value) == (3, pytest.approx(1e-9))
    wv = model.rms.weight.detach().abs()
    assert w.at_outliers and all(e.rank == 1 + int((wv > wv[e.dim]).sum()) and
                                 e.value == model.rms.weight[e.dim].item() for e in w.at_outliers)
    assert ln.bias is not None and ln.bias.largest[0].value in (1.0, -1.0)


class ChannelNet(nn.Module):
    """Conv -> BatchNorm2d -> custom *Norm -> pooled classifier head."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 3)
        self.bn = nn.BatchNorm2d(4)
        self.scale = ScaleNorm(4)
        self.head = nn.Linear(4, 3)
        with torch.no_grad():  # running statistics unlike any batch's: train != eval
            self.bn.running_mean.copy_(torch.tensor([0.5, -0.5, 1.0, 0.0]))
            self.bn.running_var.copy_(torch.tensor([0.25, 4.0, 1.0, 9.0]))
            self.bn.weight.copy_(torch.tensor([1.0, 2.0, -1.0, 0.5]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        h = self.scale(self.bn(self.conv(x)))
        return self.head(h.mean((2, 3)))


class ScaleNorm(nn.Module):
    """A user's norm, found only by its name: x * g / ||x|| over the channels (dim 1)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.full((channels,), 2.0))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight[:, None, None] / x.norm(dim=1, keepdim=True)


def channel_rows(t: torch.Tensor) -> torch.Tensor:
    return t.movedim(1, -1).reshape(-1, t.shape[1])


def test_batchnorm2d_and_custom_norm_match_hand_computation() -> None:
    model = ChannelNet().eval()
    before = {k: v.clone() for k, v in model.bn.named_buffers()}
    src = RandomSource((6, 3, 5, 5), seed=2)
    out = measure(loaded(model), src, InspectOptions(batch_size=2))
    x = torch.cat([b.args[0] for b in src.batches(2)])
    with torch.no_grad():
        a = torch.cat([model.conv(x[i:i + 2]) for i in range(0, 6, 2)])
        b = model.bn(a)
        c = model.scale(b)
    bn, scale = out.layers
    assert (bn.name, bn.type, bn.axis, bn.normalized_shape, bn.found_by) == \
        ("bn", "BatchNorm2d", "channel", (4,), "type")
    assert (scale.name, scale.found_by, scale.normalized_shape) == ("scale", "name", (4,))
    check_stage(bn.pre, ref_stage(channel_rows(a)))  # rows: N x 3 x 3 positions, dims: 4
    check_stage(bn.post, ref_stage(channel_rows(b)))
    check_stage(scale.post, ref_stage(channel_rows(c)))
    # train mode (batch statistics) vs eval mode, per batch of 2 images
    d2 = r2 = 0.0
    with torch.no_grad():
        for i in range(0, 6, 2):
            ab = a[i:i + 2].double()
            yt = F.batch_norm(ab, None, None, model.bn.weight.double(), model.bn.bias.double(),
                              True, 0.0, model.bn.eps)
            d2 += float(((yt - b[i:i + 2].double()) ** 2).sum())
            r2 += float((b[i:i + 2].double() ** 2).sum())
    assert bn.batchnorm is not None and bn.batchnorm.batches == 3
    assert bn.batchnorm.rel_rms_diff == pytest.approx(math.sqrt(d2 / r2), rel=RTOL)
    # the whole model with BN in train mode: predictions compared with eval mode
    train = copy.deepcopy(model).train()
    with torch.no_grad():
        changed = sum(int((model(x[i:i + 2]).argmax(1) != train(x[i:i + 2]).argmax(1)).sum())
                      for i in range(0, 6, 2))
    m = out.batchnorm_model
    assert m is not None and (m.predictions, m.predictions_changed) == (6, changed)
    assert m.output_rel_rms_diff is not None and m.output_rel_rms_diff > 0
    for k, v in model.bn.named_buffers():  # running statistics untouched
        assert torch.equal(v, before[k]), k
    assert not model.training


def test_batch_of_one_skips_batchnorm_train_mode() -> None:
    model = nn.Sequential(nn.Linear(4, 3), nn.BatchNorm1d(3), nn.Linear(3, 2))
    out = measure(loaded(model), RandomSource((3, 4), 0), InspectOptions(batch_size=1))
    assert out.layers[0].batchnorm.skipped == 3 and out.layers[0].batchnorm.rel_rms_diff is None
    assert out.batchnorm_model.skipped == 3


class PreNorm(nn.Module):
    """A *Norm-named wrapper (a block, not a norm): its inner LayerNorm is what counts."""

    def __init__(self) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(4)
        self.fn = nn.Linear(4, 4)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self.norm(x))


class Unused(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.block = PreNorm()
        self.spare = nn.GroupNorm(2, 4)  # never called

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x)


def test_discovery_skips_wrappers_and_reports_unused() -> None:
    model = Unused()
    assert [n.name for n in find_norms(model)] == ["block.norm", "spare"]
    out = measure(loaded(model), RandomSource((2, 4), 0), InspectOptions())
    assert [r.name for r in out.layers] == ["block.norm"]
    assert out.unused == ["spare"]


def test_forward_order_not_registration_order() -> None:
    class Backwards(nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.second = nn.LayerNorm(4)
            self.first = nn.LayerNorm(4)

        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return self.second(self.first(x))

    out = measure(loaded(Backwards()), RandomSource((2, 4), 0), InspectOptions())
    assert [r.name for r in out.layers] == ["first", "second"]


class FakeTokenizer:
    """Whitespace tokens; id = len(word); 0 is padding."""

    def __call__(self, texts, padding, truncation, max_length, return_tensors):
        ids = [[len(w) for w in t.split()] for t in texts]
        width = max(len(r) for r in ids)
        input_ids = torch.tensor([r + [0] * (width - len(r)) for r in ids])
        return {"input_ids": input_ids, "attention_mask": (input_ids > 0).long()}

    def convert_ids_to_tokens(self, i: int) -> str:
        return f"len{i}"


class TextNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.emb = nn.Embedding(20, 6)
        with torch.no_grad():
            self.emb.weight[0] = 1000.0  # padding rows would dominate every statistic
        self.ln = nn.LayerNorm(6)
        self.pool = nn.LayerNorm(6)  # on (B, 6): rows are inputs, no mask applies

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        h = self.ln(self.emb(input_ids))
        return self.pool(h[:, 0])


def test_padding_is_masked_out_of_every_statistic() -> None:
    from lnexp.inspect.inputs import TextSource

    texts = ["a bb ccc dddd eeeee", "ff", "ggg hh", "iiiiiii j kk lll"]
    model = TextNet()
    src = TextSource(texts, FakeTokenizer(), "test")
    out = measure(loaded(model, FakeTokenizer()), src, InspectOptions(batch_size=3))
    real = torch.tensor([len(w) for t in texts for w in t.split()])
    with torch.no_grad():
        a = model.emb(real)
        first = model.ln(model.emb(torch.tensor([len(t.split()[0]) for t in texts])))
    ln, pool = out.layers
    assert out.inputs["tokens"] == real.numel() == ln.pre.per_token.count
    check_stage(ln.pre, ref_stage(a))
    check_stage(pool.pre, ref_stage(first))
    want = ref_sqnr([model.emb(real[:8]).detach(), model.emb(real[8:]).detach()])  # 3 + 1 texts
    assert ln.quant.per_tensor_sqnr_db == pytest.approx(want[0], rel=RTOL)
    top = ln.pre.outliers[0].tokens[0]  # located back to its sentence, position and token
    assert texts[top.input].split()[top.position] and top.token == f"len{real_len(texts, top)}"
    assert pool.pre.outliers[0].tokens[0].position is None


def real_len(texts: list[str], t) -> int:
    return len(texts[t.input].split()[t.position])


def test_document_is_strict_json_with_the_contract_keys() -> None:
    out = measure(loaded(ChannelNet()), RandomSource((4, 3, 5, 5), 0), InspectOptions())
    doc = json.loads(json.dumps(document(out), allow_nan=False))
    assert doc["schema_version"] == 1 and doc["kind"] == "inspect"
    layer = doc["layers"][0]
    assert {"name", "type", "normalized_shape", "eps", "pre", "post", "weight", "bias",
            "quant"} <= set(layer)
    for stage in ("pre", "post"):
        assert set(layer[stage]) >= {"per_token", "per_dim", "outliers"}
        assert {"mean", "var"} <= set(layer[stage]["per_token"])
        assert {"mean", "var", "absmax"} <= set(layer[stage]["per_dim"])
        assert set(layer[stage]["outliers"][0]) >= {"dim", "absmax", "ratio"}
        ab = [o["absmax"] for o in layer[stage]["outliers"]]
        assert ab == sorted(ab, reverse=True)
    assert set(layer["weight"]) >= {"largest", "smallest_abs"}
    assert set(layer["quant"]) >= {"per_tensor_sqnr_db", "per_token_sqnr_db"}
    assert len(layer["pre"]["per_dim"]["absmax"]) == 4


@pytest.mark.slow  # among the slowest of `-m "not slow"` (issue 25); runs in make test
def test_many_inputs_in_bounded_memory() -> None:
    """5,000 inputs in 200 batches: results hold per-dim arrays only."""

    class Counting(Source):
        count = 5000
        description = "counting"

        def batches(self, batch_size: int):
            gen = torch.Generator().manual_seed(0)
            for start in range(0, self.count, batch_size):
                yield Batch(args=(torch.randn(batch_size, 7, 16, generator=gen) * 5 + 3,),
                            kwargs={}, offset=start, size=batch_size)

    model = nn.Sequential(nn.LayerNorm(16))
    out = measure(loaded(model), Counting(), InspectOptions(batch_size=25))
    pre = out.layers[0].pre
    assert pre.per_token.count == 5000 * 7 and pre.per_dim.mean.shape == (16,)
    whole = torch.cat([b.args[0] for b in Counting().batches(25)]).reshape(-1, 16)
    check_stage(pre, ref_stage(whole))  # Chan's merge over 200 batches = one pass


def test_a_failure_in_our_hook_is_not_blamed_on_the_input(monkeypatch: pytest.MonkeyPatch) -> None:
    from lnexp.inspect import core
    from lnexp.inspect.errors import InspectError

    def boom(self, xd, locate):
        raise RuntimeError("bug")

    monkeypatch.setattr(core.StageAccumulator, "update", boom)
    with pytest.raises(core.HookError, match=r"measuring 0 \(LayerNorm, input \(2, 6\)\)"):
        measure(loaded(nn.Sequential(nn.LayerNorm(6))), RandomSource((2, 6), 0),
                InspectOptions())
    assert not issubclass(core.HookError, InspectError)
