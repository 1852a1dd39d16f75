"""The layers every block kind is built from: the activation, the Linear (re-initialized for
xavier/kaiming), the configured norm and the two-Linear feed-forward branch. The MLP stack
(mlp.py) and the transformer block (transformer.py) both build on these.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lnexp import norms
from lnexp.config import ModelConfig
from lnexp.registry import ACTIVATIONS


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
