"""What each norm layer does in its block (its `role`), and the scale it really applies.

Roles are read from where a norm sits, by the names the common model libraries use:

- `pre-attention`: `input_layernorm` (LLaMA, Gemma), `ln_1` (GPT-2), `attention_norm`.
- `post-attention`: `post_attention_layernorm` when the block also has a
  `pre_feedforward_layernorm` (Gemma's sandwich: it normalizes the attention's output before
  the residual add); BERT's `attention.output.LayerNorm` (Post-LN: after the residual add).
- `pre-FFN`: `pre_feedforward_layernorm`, `ln_2`, `ffn_norm`; LLaMA's
  `post_attention_layernorm` (named after what precedes it, it normalizes the FFN's input).
- `post-FFN`: `post_feedforward_layernorm` (Gemma); BERT's `output.LayerNorm` (Post-LN).
- `q`, `k`: `q_norm`, `k_norm` (QK-norm: per head, on queries and keys).
- `embedding`: `embeddings.LayerNorm` (BERT).
- `final`: `norm`, `ln_f`, `final_layernorm`, `final_layer_norm` outside the numbered blocks.
- `conv-BN`: a BatchNorm right after a convolution in its parent module.

Anything else has no role (`null`). `layout` names the arrangement from the roles: Pre-LN,
Post-LN, sandwich (both), with "+ QK-norm" when q/k norms are there.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from lnexp.inspect.discover import NormLayer

_PRE_ATTN = {"input_layernorm", "ln_1", "attention_norm", "ln_attn", "attn_norm"}
_PRE_FFN = {"pre_feedforward_layernorm", "ln_2", "ffn_norm", "ln_mlp", "mlp_norm"}
_POST_FFN = {"post_feedforward_layernorm"}
_FINAL = {"norm", "ln_f", "final_layernorm", "final_layer_norm", "norm_f", "final_norm"}
_Q = {"q_norm", "q_layernorm", "query_layernorm"}
_K = {"k_norm", "k_layernorm", "key_layernorm"}


def _children(model: nn.Module, parent: str) -> list[tuple[str, nn.Module]]:
    try:
        mod = model.get_submodule(parent) if parent else model
    except AttributeError:
        return []
    return list(mod.named_children())


def role_of(model: nn.Module, layer: NormLayer) -> str | None:
    parts = layer.name.split(".")
    last, parent = parts[-1], ".".join(parts[:-1])
    siblings = _children(model, parent)
    names = {n for n, _ in siblings}
    if last in _Q:
        return "q"
    if last in _K:
        return "k"
    if last in _PRE_ATTN:
        return "pre-attention"
    if last == "post_attention_layernorm":
        return "post-attention" if names & _PRE_FFN else "pre-FFN"
    if last in _PRE_FFN:
        return "pre-FFN"
    if last in _POST_FFN:
        return "post-FFN"
    if last == "LayerNorm" and len(parts) >= 2:  # BERT-style Post-LN
        if parts[-2] == "embeddings":
            return "embedding"
        if parts[-2] == "output":
            return "post-attention" if len(parts) >= 3 and parts[-3] == "attention" \
                else "post-FFN"
    if last in _FINAL and not any(p.isdigit() for p in parts):
        return "final"
    if layer.is_batchnorm:
        before = None
        for n, m in siblings:
            if n == last:
                break
            before = m
        if isinstance(before, nn.modules.conv._ConvNd):
            return "conv-BN"
    return None


def assign(model: nn.Module, layers: list[NormLayer]) -> dict[str, str | None]:
    """Layer name -> role (None where it cannot be told)."""
    return {layer.name: role_of(model, layer) for layer in layers}


def layout(roles: list[str | None]) -> str | None:
    """Pre-LN, Post-LN or sandwich, + QK-norm, from the layers' roles (None: no block roles)."""
    have = set(roles)
    pre = bool(have & {"pre-attention", "pre-FFN"})
    post = bool(have & {"post-attention", "post-FFN"})
    base = "sandwich" if pre and post else "Pre-LN" if pre else "Post-LN" if post else None
    if base and have & {"q", "k"}:
        return base + " + QK-norm"
    return base


def weight_form(module: nn.Module) -> str:
    """How the module applies its weight: "w" (x̂·w, as torch's LayerNorm/RMSNorm) or "1+w"
    (x̂·(1+w), Gemma's RMSNorm). Told by running it once on a fixed input: the output's
    ratio to x̂ is compared with w and with 1+w (x̂ as RMSNorm or LayerNorm would make it)."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor) or w.dim() != 1 or w.numel() < 2 \
            or isinstance(module, (nn.LayerNorm, nn.RMSNorm, nn.modules.batchnorm._BatchNorm,
                                   nn.GroupNorm)):
        return "w"
    n = w.numel()
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, n, generator=gen).to(w.dtype) + 0.5
    try:
        with torch.inference_mode():
            y = module(x)
    except Exception:  # a norm with another calling convention: keep the raw weight
        return "w"
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        return "w"
    xd, yd, wd = x.double(), y.double(), w.detach().double()
    b = getattr(module, "bias", None)
    if isinstance(b, torch.Tensor) and b.shape == w.shape:
        yd = yd - b.detach().double()
    rms = xd / xd.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    centred = xd - xd.mean(-1, keepdim=True)
    ln = centred / centred.pow(2).mean(-1, keepdim=True).add(1e-6).sqrt()
    for xhat in (rms, ln):
        err_w = float((yd - xhat * wd).abs().max())
        err_1w = float((yd - xhat * (1 + wd)).abs().max())
        tol = 1e-3 * float(yd.abs().max()) + 1e-6
        if err_1w < tol and err_w > 10 * err_1w:
            return "1+w"
        if err_w < tol:
            return "w"
    return "w"


def effective_weight(module: nn.Module, form: str) -> Any:
    """The scale the module multiplies x̂ by: its weight, or 1 + weight for "1+w"."""
    w = getattr(module, "weight", None)
    if not isinstance(w, torch.Tensor):
        return w
    return 1 + w.detach() if form == "1+w" else w.detach()
