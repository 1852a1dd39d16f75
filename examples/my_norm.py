"""A user norm: `lnexp run tutorial model.norm=examples/my_norm.py:SampleNorm` (docs/norms.md)."""
import torch
from torch import nn


class SampleNorm(nn.Module):
    """Each sample standardized over all its values, no affine (lnexp measures the axes)."""

    axes = "per_sample"  # optional: lnexp checks it against what it measures

    def __init__(self, channels: int, layout: str):
        super().__init__()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        dims = tuple(range(1, x.dim()))
        var, mean = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
        return (x - mean) / torch.sqrt(var + 1e-5)
