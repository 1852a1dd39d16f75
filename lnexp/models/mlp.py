"""MLP blocks: a stack of `depth` Linear + norm blocks. Depth 1 with the defaults is the
tutorial's SimpleModel.

Block layouts (`model.placement`), with Act the configured activation (`none` = identity):

- post:          Linear -> Norm -> Act                 (the tutorial: Linear then the norm)
- pre:           Norm -> Linear -> Act                 (no residual)
- pre_residual:  x + Act(Linear(Norm(x))), and one final Norm after the last block (Pre-LN)
- post_residual: Norm(x + Act(Linear(x)))                                           (Post-LN)

Every Linear is built (and re-initialized, for xavier/kaiming) before the next block, and norms
draw no random numbers, so with depth 1 and the default init the global RNG is consumed exactly
as in the tutorial's script.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from lnexp import norms
from lnexp.config import ModelConfig
from lnexp.registry import ACTIVATIONS, PLACEMENTS


def _activation(name: str) -> nn.Module:
    return getattr(nn, ACTIVATIONS[name])()


def _linear(d_in: int, d_out: int, cfg: ModelConfig) -> nn.Linear:
    """nn.Linear (torch's default init draws first), then re-initialized for xavier/kaiming."""
    layer = nn.Linear(d_in, d_out)
    if cfg.init != "default":
        with torch.no_grad():
            if cfg.init == "xavier":
                nn.init.xavier_uniform_(layer.weight, gain=cfg.gain)
            else:  # kaiming: N(0, gain^2 / fan_in)
                layer.weight.normal_(0.0, cfg.gain / math.sqrt(d_in))
            layer.bias.zero_()
    return layer


@dataclass
class Trace:
    """One forward pass: the final output, the first norm's input/output, every block's output."""

    output: torch.Tensor
    pre: torch.Tensor  # entering the first norm
    post: torch.Tensor  # leaving the first norm
    blocks: list[torch.Tensor]  # each block's output, first block first


class Block(nn.Module):
    """One block; `forward` returns (output, norm input, norm output)."""

    def __init__(self, d_in: int, d_out: int, cfg: ModelConfig):
        super().__init__()
        self.placement = cfg.placement
        normed = d_in if PLACEMENTS[cfg.placement].norm_first else d_out
        # The Linear is built first (the tutorial's order); norms consume no random numbers.
        self.linear: nn.Module = _linear(d_in, d_out, cfg) if cfg.linear else nn.Identity()
        self.norm = norms.create(cfg.norm, normed, eps=cfg.eps, affine=cfg.affine,
                                 groups=cfg.groups)
        self.act = _activation(cfg.activation)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        p = self.placement
        if p == "post":
            pre = self.linear(x)
            post = self.norm(pre)
            return self.act(post), pre, post
        if p == "pre":
            post = self.norm(x)
            return self.act(self.linear(post)), x, post
        if p == "pre_residual":
            post = self.norm(x)
            return x + self.act(self.linear(post)), x, post
        pre = x + self.act(self.linear(x))  # post_residual
        post = self.norm(pre)
        return post, pre, post


class Model(nn.Module):
    """`depth` blocks (plus a final norm for pre_residual). `forward` returns the output;
    `trace` returns the activations the experiment measures."""

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        w = cfg.widths()
        self.blocks = nn.ModuleList(Block(w[i], w[i + 1], cfg) for i in range(len(w) - 1))
        self.final_norm: nn.Module = (
            norms.create(cfg.norm, w[-1], eps=cfg.eps, affine=cfg.affine, groups=cfg.groups)
            if PLACEMENTS[cfg.placement].final_norm else nn.Identity())

    def trace(self, x: torch.Tensor) -> Trace:
        outs: list[torch.Tensor] = []
        first: tuple[torch.Tensor, torch.Tensor] | None = None
        for block in self.blocks:
            x, pre, post = block(x)
            first = first or (pre, post)
            outs.append(x)
        assert first is not None
        return Trace(output=self.final_norm(x), pre=first[0], post=first[1], blocks=outs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for block in self.blocks:
            x = block(x)[0]
        return self.final_norm(x)

    def linears(self) -> list[nn.Linear]:
        """The Linear layer of every block, first block first (empty when linear is off)."""
        return [b.linear for b in self.blocks if isinstance(b.linear, nn.Linear)]


def build_model(cfg: ModelConfig) -> Model:
    """Build the model in the configured mode (train or eval)."""
    model = Model(cfg)
    model.train(cfg.mode == "train")
    return model

