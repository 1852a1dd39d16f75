"""Transformer blocks on sequences (N, T, C): self-attention then a 2-layer FFN, each a residual
branch with its own norm, as in Xiong et al. (2020), "On Layer Normalization in the Transformer
Architecture":

- post_residual (Post-LN, the original Transformer): h = Norm1(x + Attn(x));
                                                     y = Norm2(h + FFN(h))
- pre_residual  (Pre-LN):  h = x + Attn(Norm1(x)); y = h + FFN(Norm2(h)); one final Norm after
                           the last block (lnexp.models.mlp.Model adds it). With
                           model.ln_scaling each Norm's output is times 1/sqrt(l) at block l
                           (LayerNorm Scaling, "The Curse of Depth", 2025)
- peri_residual (Peri-LN, Gemma 2/3, OLMo 2): h = x + Norm1o(Attn(Norm1(x)));
                           y = h + Norm2o(FFN(Norm2(h))); one final Norm
- deepnorm_residual (DeepNorm, Wang et al. 2022, encoder form): h = Norm1(alpha·x + Attn(x));
                           y = Norm2(alpha·h + FFN(h)), alpha = (2N)^(1/4) for N blocks; the
                           value, output and FFN Linears are scaled by (8N)^(-1/4) at init

Attention is bidirectional (no mask), `model.heads` heads over the width C, with its own
q, k, v and output Linear layers (so every weight is an nn.Linear, initialized by model.init
like the MLP's); FFN is lnexp.models.layers.FFN2 (width model.ffn_width, model.activation).
model.qk_norm (ln or rms) normalizes each head's queries and keys over the head dim d before
q·k/sqrt(d) (Dehghani et al. 2023; Gemma 3). The scaled logits pass through `self.logits`, an
identity module, so lnexp.models.probes can hook them without a second forward.
With `SelfAttention.causal` set (the char-LM, lnexp/models/charlm.py) position t attends to
positions <= t only; the hook then sees 0 in place of the masked (future) logits.

The blocks run on data.layout: sequence, (N, T, C) with T = data.tokens, and their norms are
that layout's (lnexp.norms): ln per token over C, bn per channel over N·T, group per (sample,
group) over C/G·T, instance per (sample, channel) over T - so the snapshot reports the same
axes as any other sequence run.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lnexp import norms
from lnexp.config import ModelConfig
from lnexp.models.layers import (
    FFN2,
    deepnorm_init,
    linear,
    ln_scale,
    norm,
    residual,
    residual_alpha,
)


def _qk_norm(d: int, cfg: ModelConfig) -> nn.Module | None:
    """model.qk_norm over a head's d values, or None."""
    if cfg.qk_norm == "none":
        return None
    return norms.create(cfg.qk_norm, d, eps=cfg.eps, affine=cfg.affine)


class SelfAttention(nn.Module):
    """Multi-head scaled dot-product self-attention over T positions."""

    causal = False  # True: position t sees positions <= t only (set by the char-LM)

    def __init__(self, width: int, cfg: ModelConfig):
        super().__init__()
        self.heads = cfg.heads
        self.q = linear(width, width, cfg)
        self.k = linear(width, width, cfg)
        self.v = linear(width, width, cfg)
        self.o = linear(width, width, cfg)
        # Per head over its d values (the last dim of (N, H, T, d)); built after the Linears
        # (norms draw no random numbers).
        self.q_norm = _qk_norm(width // cfg.heads, cfg)
        self.k_norm = _qk_norm(width // cfg.heads, cfg)
        self.logits = nn.Identity()  # the scaled logits q·k/sqrt(d), (N, H, T, T): a hook point

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        h, d = self.heads, c // self.heads

        def split(z: torch.Tensor) -> torch.Tensor:  # (N, T, C) -> (N, H, T, d)
            return z.reshape(n, t, h, d).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        if self.q_norm is not None and self.k_norm is not None:
            q, k = self.q_norm(q), self.k_norm(k)
        logits = q @ k.transpose(-1, -2) / math.sqrt(d)
        future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1) if self.causal \
            else None
        if future is not None:
            logits = logits.masked_fill(future, 0.0)  # the probe sees only the pairs used
        logits = self.logits(logits)
        if future is not None:
            logits = logits.masked_fill(future, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        return self.o((weights @ v).transpose(1, 2).reshape(n, t, c))


class TransformerBlock(nn.Module):
    """Attention + FFN, each a residual sub-layer wired by model.placement (see the module
    doc); `forward` returns (output, norm1 input, norm1 output) like the MLP's Block. `index`
    is the block's place in the stack, 1-based (LayerNorm Scaling's l)."""

    def __init__(self, width: int, cfg: ModelConfig, index: int = 1):
        super().__init__()
        self.placement = cfg.placement
        self.alpha = residual_alpha(cfg)
        self.scale = ln_scale(cfg, index)
        self.attn = SelfAttention(width, cfg)
        self.ffn = FFN2(width, width, cfg)
        deepnorm_init([self.attn.v, self.attn.o, self.ffn.fc1, self.ffn.fc2], cfg)
        # Built after both branches' Linears; norms draw no random numbers.
        self.norm1 = norm(width, cfg, "sequence")
        self.norm2 = norm(width, cfg, "sequence")
        peri = cfg.placement == "peri_residual"
        self.norm1_out = norm(width, cfg, "sequence") if peri else None
        self.norm2_out = norm(width, cfg, "sequence") if peri else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        opts = {"alpha": self.alpha, "scale": self.scale}
        h, pre, post = residual(self.placement, x, self.attn, self.norm1, self.norm1_out, **opts)
        y = residual(self.placement, h, self.ffn, self.norm2, self.norm2_out, **opts)[0]
        return y, pre, post

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.modules() if isinstance(m, nn.Linear)]


class LastToken(nn.Module):
    """(N, T, C) -> (N, C): the last position, where a sequence task reads its answer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]
