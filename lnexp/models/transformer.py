"""Transformer blocks on sequences (N, T, C): self-attention then a 2-layer FFN, each a residual
branch with its own norm, as in Xiong et al. (2020), "On Layer Normalization in the Transformer
Architecture":

- post_residual (Post-LN, the original Transformer): h = Norm1(x + Attn(x));
                                                     y = Norm2(h + FFN(h))
- pre_residual  (Pre-LN):  h = x + Attn(Norm1(x)); y = h + FFN(Norm2(h)); one final Norm after
                           the last block (lnexp.models.mlp.Model adds it)

Attention is bidirectional (no mask), `model.heads` heads over the width C, with its own
q, k, v and output Linear layers (so every weight is an nn.Linear, initialized by model.init
like the MLP's); FFN is lnexp.models.layers.FFN2 (width model.ffn_width, model.activation).
With `SelfAttention.causal` set (the char-LM, lnexp/models/charlm.py) position t attends to
positions <= t only.

The blocks run on data.layout: sequence, (N, T, C) with T = data.tokens, and their norms are
that layout's (lnexp.norms): ln per token over C, bn per channel over N·T, group per (sample,
group) over C/G·T, instance per (sample, channel) over T - so the snapshot reports the same
axes as any other sequence run.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lnexp.config import ModelConfig
from lnexp.models.layers import FFN2, linear, norm


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

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, t, c = x.shape
        h, d = self.heads, c // self.heads

        def split(z: torch.Tensor) -> torch.Tensor:  # (N, T, C) -> (N, H, T, d)
            return z.reshape(n, t, h, d).transpose(1, 2)

        q, k, v = split(self.q(x)), split(self.k(x)), split(self.v(x))
        logits = q @ k.transpose(-1, -2) / math.sqrt(d)
        if self.causal:
            future = torch.ones(t, t, dtype=torch.bool, device=x.device).triu(1)
            logits = logits.masked_fill(future, float("-inf"))
        weights = torch.softmax(logits, dim=-1)
        return self.o((weights @ v).transpose(1, 2).reshape(n, t, c))


class TransformerBlock(nn.Module):
    """Attention + FFN, Post-LN or Pre-LN; `forward` returns (output, norm1 input, norm1
    output) like the MLP's Block."""

    def __init__(self, width: int, cfg: ModelConfig):
        super().__init__()
        self.pre_ln = cfg.placement == "pre_residual"
        self.attn = SelfAttention(width, cfg)
        self.ffn = FFN2(width, width, cfg)
        # Built after both branches' Linears; norms draw no random numbers.
        self.norm1 = norm(width, cfg, "sequence")
        self.norm2 = norm(width, cfg, "sequence")

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        if self.pre_ln:
            post = self.norm1(x)
            h = x + self.attn(post)
            return h + self.ffn(self.norm2(h)), x, post
        pre = x + self.attn(x)
        h = self.norm1(pre)
        return self.norm2(h + self.ffn(h)), pre, h

    def linears(self) -> list[nn.Linear]:
        return [m for m in self.modules() if isinstance(m, nn.Linear)]


class LastToken(nn.Module):
    """(N, T, C) -> (N, C): the last position, where a sequence task reads its answer."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x[:, -1]
