"""Norm roles (lnexp.inspect.roles) on small real modules named as the model libraries name
them, Gemma's x̂·(1+w) told from x̂·w, and the GGUF header reader on real and broken files."""

from __future__ import annotations

import struct
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from lnexp.inspect import gguf_fast, roles
from lnexp.inspect.discover import find_norms
from lnexp.inspect.errors import InspectError


class OnePlusRMSNorm(nn.Module):
    """Gemma's RMSNorm: x̂ · (1 + w), w initialised at 0."""

    def __init__(self, dim: int):
        super().__init__()
        self.eps = 1e-6
        self.weight = nn.Parameter(torch.zeros(dim))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps)
        return x * (1.0 + self.weight)


class PlainRMSNorm(OnePlusRMSNorm):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps) * self.weight


def _block(names: list[str], cls: type[nn.Module] = PlainRMSNorm) -> nn.Module:
    b = nn.Module()
    attn = nn.Module()
    for n in names:
        if n in ("q_norm", "k_norm"):
            attn.add_module(n, cls(8))
        else:
            b.add_module(n, cls(8))
    b.add_module("self_attn", attn)
    return b


def _decoder(names: list[str], cls: type[nn.Module] = PlainRMSNorm) -> nn.Module:
    m = nn.Module()
    m.model = nn.Module()
    m.model.layers = nn.ModuleList([_block(names, cls) for _ in range(2)])
    m.model.norm = cls(8)
    return m


def _roles(model: nn.Module) -> dict[str, str | None]:
    return roles.assign(model, find_norms(model))


def test_llama_post_attention_layernorm_is_the_pre_ffn_norm() -> None:
    r = _roles(_decoder(["input_layernorm", "post_attention_layernorm"]))
    assert r["model.layers.0.input_layernorm"] == "pre-attention"
    assert r["model.layers.1.post_attention_layernorm"] == "pre-FFN"
    assert r["model.norm"] == "final"
    assert roles.layout(list(r.values())) == "Pre-LN"


def test_gemma_sandwich_and_qk_norm() -> None:
    names = ["input_layernorm", "post_attention_layernorm", "pre_feedforward_layernorm",
             "post_feedforward_layernorm", "q_norm", "k_norm"]
    r = _roles(_decoder(names))
    assert [r[f"model.layers.0.{n}"] for n in names[:4]] == \
        ["pre-attention", "post-attention", "pre-FFN", "post-FFN"]
    assert r["model.layers.1.self_attn.q_norm"] == "q"
    assert r["model.layers.1.self_attn.k_norm"] == "k"
    assert roles.layout(list(r.values())) == "sandwich + QK-norm"


def test_bert_post_ln_names() -> None:
    m = nn.Module()
    m.embeddings = nn.Module()
    m.embeddings.LayerNorm = nn.LayerNorm(8)
    layer = nn.Module()
    layer.attention = nn.Module()
    layer.attention.output = nn.Module()
    layer.attention.output.LayerNorm = nn.LayerNorm(8)
    layer.output = nn.Module()
    layer.output.LayerNorm = nn.LayerNorm(8)
    m.encoder = nn.Module()
    m.encoder.layer = nn.ModuleList([layer])
    r = _roles(m)
    assert r == {"embeddings.LayerNorm": "embedding",
                 "encoder.layer.0.attention.output.LayerNorm": "post-attention",
                 "encoder.layer.0.output.LayerNorm": "post-FFN"}
    assert roles.layout(list(r.values())) == "Post-LN"


def test_conv_bn_and_a_bn_after_a_linear() -> None:
    m = nn.Sequential(nn.Conv2d(3, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten(),
                      nn.Linear(4, 4), nn.BatchNorm1d(4))
    assert _roles(m) == {"1": "conv-BN", "5": None}


def test_one_plus_w_is_told_from_w_and_reported_as_applied() -> None:
    gemma, plain = OnePlusRMSNorm(8), PlainRMSNorm(8)
    with torch.no_grad():
        for mod in (gemma, plain):
            mod.weight.copy_(torch.linspace(-0.5, 0.5, 8))
    assert roles.weight_form(gemma) == "1+w"
    assert roles.weight_form(plain) == "w"
    assert roles.weight_form(nn.LayerNorm(8)) == "w"
    eff = roles.effective_weight(gemma, "1+w")
    x = torch.randn(3, 8)
    xhat = x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + 1e-6)
    torch.testing.assert_close(gemma(x), xhat * eff)


def _gguf(path: Path, tensors: dict[str, np.ndarray], arch: str = "llama",
          eps: float = 1e-5) -> None:
    """A minimal GGUF v3 file: the architecture, an eps, a string array, float32 tensors."""
    def s(text: str) -> bytes:
        raw = text.encode()
        return struct.pack("<Q", len(raw)) + raw

    kv = [s("general.architecture") + struct.pack("<I", 8) + s(arch),
          s(f"{arch}.attention.layer_norm_rms_epsilon") + struct.pack("<If", 6, eps),
          s("tokenizer.ggml.tokens") + struct.pack("<IIQ", 9, 8, 2) + s("a") + s("b")]
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kv)) + b"".join(kv)
    offset, infos, blobs = 0, [], []
    for name, v in tensors.items():
        infos.append(s(name) + struct.pack("<IQIQ", 1, v.size, 0, offset))
        blob = v.astype("<f4").tobytes()
        blob += b"\0" * (-len(blob) % 32)
        blobs.append(blob)
        offset += len(blob)
    head += b"".join(infos)
    head += b"\0" * (-len(head) % 32)
    path.write_bytes(head + b"".join(blobs))


def test_gguf_listing_reads_norm_tensors_names_roles_eps(tmp_path: Path) -> None:
    w = np.linspace(-1, 2, 16)
    _gguf(tmp_path / "m.gguf", {"blk.0.attn_norm.weight": w, "blk.0.ffn_norm.weight": w * 2,
                                "output_norm.weight": w + 1})
    doc = gguf_fast.norm_weights(tmp_path / "m.gguf")
    assert [(x["name"], x["role"]) for x in doc["layers"]] == [
        ("model.layers.0.input_layernorm", "pre-attention"),
        ("model.layers.0.post_attention_layernorm", "pre-FFN"), ("model.norm", "final")]
    assert doc["eps"] == pytest.approx(1e-5)
    assert doc["layers"][1]["scale"]["max"] == pytest.approx(4.0)
    assert doc["layers"][1]["scale"]["largest"] == {"dim": 15, "value": pytest.approx(4.0)}


@pytest.mark.parametrize("cut", [3, 40, -8])
def test_truncated_or_foreign_gguf_is_one_error(tmp_path: Path, cut: int) -> None:
    _gguf(tmp_path / "m.gguf", {"blk.0.attn_norm.weight": np.ones(64)})
    raw = (tmp_path / "m.gguf").read_bytes()
    (tmp_path / "m.gguf").write_bytes(raw[:cut])
    with pytest.raises(InspectError, match=r"GGUF|truncated"):
        gguf_fast.norm_weights(tmp_path / "m.gguf")


class LongNamedDecoder(nn.Module):
    """LLaMA-named norms with long names, in a real forward: x + f(norm(x)) per block."""

    def __init__(self, blocks: int = 12, dim: int = 8):
        super().__init__()
        self.model = _decoder(["input_layernorm", "post_attention_layernorm"]).model
        self.model.layers = nn.ModuleList(
            [_block(["input_layernorm", "post_attention_layernorm"]) for _ in range(blocks)])
        for b in self.model.layers:
            b.proj = nn.Linear(dim, dim)
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, PlainRMSNorm):
                    m.weight.fill_(1.0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for b in self.model.layers:
            x = x + b.proj(b.input_layernorm(x))
            x = x + b.proj(b.post_attention_layernorm(x))
        return self.model.norm(x)


def test_roles_in_json_table_and_figure_labels_that_fit() -> None:
    from rich.console import Console

    from lnexp.inspect import figures
    from lnexp.inspect.core import measure
    from lnexp.inspect.inputs import RandomSource
    from lnexp.inspect.options import InspectOptions
    from lnexp.inspect.outcome import document
    from lnexp.inspect.table import render
    from tests.test_inspect_core import loaded

    o = measure(loaded(LongNamedDecoder().eval()), RandomSource((3, 4, 8), 0),
                InspectOptions(batch_size=3))
    doc = document(o)
    assert doc["model"]["norm_layout"] == "Pre-LN"
    assert [x["role"] for x in doc["layers"][:3]] == ["pre-attention", "pre-FFN",
                                                      "pre-attention"]
    assert doc["layers"][-1]["role"] == "final" and doc["layers"][0]["weight_form"] == "w"
    console = Console(record=True, width=160)
    render(console, o)
    text = console.export_text()
    assert "Pre-LN" in text and "pre-FFN" in text
    for make in (figures.token_variance, figures.absmax_heatmap):
        fig = make(o)
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        for ax in fig.axes[:1]:
            labels = [t for t in ax.get_yticklabels() if t.get_text()]
            assert labels[1].get_text() == "model.layers.0.post_attention_layernorm [pre-FFN]"
            assert min(t.get_window_extent(renderer).x0 for t in labels) >= 0, make.__name__
