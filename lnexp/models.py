"""The tutorial's SimpleModel: Linear(in, out) then a norm, returning both activations."""

from __future__ import annotations

import torch
from torch import nn

from lnexp import norms
from lnexp.config import ModelConfig


class SimpleModel(nn.Module):
    """`linear` (optional) then `norm`; `forward` returns (pre_norm, post_norm).

    Attribute order matches the tutorial (Linear is built first, so it consumes the same random
    draws for its initial weights); norms consume no random numbers at construction.
    """

    def __init__(self, cfg: ModelConfig):
        super().__init__()
        features = cfg.out_features if cfg.linear else cfg.in_features
        self.linear: nn.Module = (
            nn.Linear(cfg.in_features, cfg.out_features) if cfg.linear else nn.Identity()
        )
        self.norm = norms.create(cfg.norm, features, eps=cfg.eps, affine=cfg.affine,
                                 groups=cfg.groups)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pre = self.linear(x)
        return pre, self.norm(pre)


def build_model(cfg: ModelConfig) -> SimpleModel:
    """Build the model in the configured mode (train or eval)."""
    model = SimpleModel(cfg)
    model.train(cfg.mode == "train")
    return model
