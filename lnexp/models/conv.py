"""Conv blocks for data.layout: image: Conv2d(in, out, kernel_size, padding=kernel_size // 2)
in place of the Linear layer, so every block keeps H and W, and the norm sees (N, C, H, W).

The block order and the placements are the MLP's (lnexp/models/mlp.py builds the stack and
asks `layer` for each block's layer); a depth-`depth` stack followed by `GlobalAveragePool` and
a Linear head is the classifier `train.task: digits` trains on images.

Draw order: as for Linear, each Conv2d draws its weights (torch's default init, then xavier /
kaiming when asked) before the next block is built; norms draw nothing.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from lnexp.config import ModelConfig


def conv2d(d_in: int, d_out: int, cfg: ModelConfig) -> nn.Conv2d:
    """nn.Conv2d with 'same' padding (torch's default init draws first), then re-initialized
    for xavier/kaiming (kaiming: N(0, gain^2 / fan_in), fan_in = d_in x k x k)."""
    k = int(cfg.kernel_size or 3)
    from lnexp.norms.layers import WSConv2d

    layer = (WSConv2d if cfg.weight_standardization else nn.Conv2d)(d_in, d_out, kernel_size=k,
                                                                   padding=k // 2)
    if cfg.init != "default":
        with torch.no_grad():
            if cfg.init == "xavier":
                nn.init.xavier_uniform_(layer.weight, gain=cfg.gain)
            else:
                layer.weight.normal_(0.0, cfg.gain / math.sqrt(d_in * k * k))
            layer.bias.zero_()
    return layer


class GlobalAveragePool(nn.Module):
    """(N, C, H, W) -> (N, C): the mean over the positions, in front of the Linear head."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=(2, 3))
