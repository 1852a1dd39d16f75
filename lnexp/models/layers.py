"""The layers every block kind is built from: the activation, the Linear (re-initialized for
xavier/kaiming), the configured norm, the two-Linear feed-forward branch, and `residual`, the
one place a residual placement wires a branch to its norm(s). The MLP stack (mlp.py) and the
transformer block (transformer.py) both build on these.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import nn

from lnexp import norms
from lnexp.config import ModelConfig
from lnexp.registry import ACTIVATIONS, deepnorm_alpha, deepnorm_beta


def activation(name: str) -> nn.Module:
    return getattr(nn, ACTIVATIONS[name])()


def linear(d_in: int, d_out: int, cfg: ModelConfig) -> nn.Linear:
    """nn.Linear (torch's default init draws first), then re-initialized for xavier/kaiming."""
    layer = _linear_class(cfg)(d_in, d_out)
    if cfg.init != "default":
        with torch.no_grad():
            if cfg.init == "xavier":
                nn.init.xavier_uniform_(layer.weight, gain=cfg.gain)
            else:  # kaiming: N(0, gain^2 / fan_in)
                layer.weight.normal_(0.0, cfg.gain / math.sqrt(d_in))
            layer.bias.zero_()
    return layer


def _linear_class(cfg: ModelConfig) -> type[nn.Linear]:
    """nn.Linear, or its weight-standardized form (model.weight_standardization)."""
    from lnexp.norms.layers import WSLinear

    return WSLinear if cfg.weight_standardization else nn.Linear


def norm(width: int, cfg: ModelConfig, layout: str = "features") -> nn.Module:
    """The configured norm for `width` channels of a `layout` tensor."""
    return norms.create(cfg.norm, width, eps=cfg.eps, affine=cfg.affine, groups=cfg.groups,
                        layout=layout, dyt_alpha=cfg.dyt_alpha, renorm_rmax=cfg.renorm_rmax,
                        renorm_dmax=cfg.renorm_dmax)


class FFN2(nn.Module):
    """Linear(d_in -> inner) -> Act -> Linear(inner -> d_out): the feed-forward branch."""

    def __init__(self, d_in: int, d_out: int, cfg: ModelConfig):
        super().__init__()
        inner = cfg.ffn_width or d_out
        self.fc1 = linear(d_in, inner, cfg)
        self.act = activation(cfg.activation)
        self.fc2 = linear(inner, d_out, cfg)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.act(self.fc1(x)))


def ln_scale(cfg: ModelConfig, index: int) -> float:
    """LayerNorm Scaling's factor at block `index` (1-based): 1/sqrt(index), or 1 when off."""
    return 1.0 / math.sqrt(index) if cfg.ln_scaling else 1.0


def residual_alpha(cfg: ModelConfig) -> float:
    """The weight of the residual stream x in x·alpha + F(x): DeepNorm's (2N)^(1/4), else 1."""
    return deepnorm_alpha(cfg.depth) if cfg.placement == "deepnorm_residual" else 1.0


def deepnorm_init(layers: list[nn.Linear], cfg: ModelConfig) -> None:
    """DeepNorm's init: the weights and biases of `layers` (the FFN, value and output
    projections) times beta = (8N)^(-1/4) after their usual init, as torchscale does (it
    divides them by (8N)^(1/4)). Nothing for the other placements."""
    if cfg.placement != "deepnorm_residual":
        return
    beta = deepnorm_beta(cfg.depth)
    with torch.no_grad():
        for lin in layers:
            lin.weight.mul_(beta)
            lin.bias.mul_(beta)


Branch = Callable[[torch.Tensor], torch.Tensor]


def residual(placement: str, x: torch.Tensor, branch: Branch, norm_in: nn.Module,
             norm_out: nn.Module | None = None, *, alpha: float = 1.0, scale: float = 1.0
             ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """One residual sub-layer wired by `placement`; returns (output, norm_in's input, its
    output) so a block can report its first norm.

    - pre_residual:      x + F(s·Norm(x))     (s: LayerNorm Scaling's 1/sqrt(l), else 1)
    - post_residual:     Norm(x + F(x))
    - peri_residual:     x + Norm_out(F(Norm(x)))
    - deepnorm_residual: Norm(alpha·x + F(x))
    """
    if placement == "pre_residual":
        post = norm_in(x)
        if scale != 1.0:
            post = post * scale
        return x + branch(post), x, post
    if placement == "peri_residual":
        assert norm_out is not None
        post = norm_in(x)
        return x + norm_out(branch(post)), x, post
    pre = (x * alpha if alpha != 1.0 else x) + branch(x)  # post_residual, deepnorm_residual
    post = norm_in(pre)
    return post, pre, post
