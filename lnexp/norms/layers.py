"""The torch modules behind the registry's norms that torch.nn does not have (imported by the
factories in lnexp.norms only when a model is built, so `import lnexp` stays torch-free).

Every module takes the channel count first and maps a tensor of its layout ((N, C),
(N, C, H, W) or (N, T, C)) to the same shape; the formulas are in docs/norms.md.
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F


def channel_dim(layout: str) -> int:
    """Where the channels are: dim 1 on images (N, C, H, W), the last dim otherwise."""
    return 1 if layout == "image" else -1


def per_channel(p: torch.Tensor, x: torch.Tensor, layout: str) -> torch.Tensor:
    """A (C,) parameter shaped to broadcast over `x`'s channel dim."""
    if layout == "image":
        return p.view(1, -1, *([1] * (x.dim() - 2)))
    return p


class ChannelsLast(nn.Module):
    """Runs a channels-first norm (BatchNorm1d, GroupNorm, InstanceNorm1d: (N, C, T)) on a
    (N, T, C) sequence: transpose, normalize, transpose back."""

    def __init__(self, inner: nn.Module):
        super().__init__()
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.transpose(1, 2)).transpose(1, 2)


class SampleRMSNorm(nn.Module):
    """x / sqrt(mean over (C, H, W) of x^2 + eps), then a per-channel scale: RMSNorm on the GN
    paper's LayerNorm axes. nn.RMSNorm would need H, W for its scale."""

    def __init__(self, num_features: int, eps: float, affine: bool):
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        ms = x.pow(2).mean(dim=tuple(range(1, x.dim())), keepdim=True)
        y = x * torch.rsqrt(ms + self.eps)
        if self.weight is not None:
            y = y * self.weight.view(1, -1, *([1] * (x.dim() - 2)))
        return y


class DyT(nn.Module):
    """Dynamic Tanh (Zhu et al., CVPR 2025): y = gamma * tanh(alpha * x) + beta, alpha one
    learnable scalar (initialised to model.dyt_alpha), gamma / beta per channel. No statistic:
    each value is mapped on its own."""

    def __init__(self, num_features: int, alpha: float, affine: bool, layout: str):
        super().__init__()
        self.layout = layout
        self.alpha = nn.Parameter(torch.full((), float(alpha)))
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = torch.tanh(self.alpha * x)
        if self.weight is not None and self.bias is not None:
            y = y * per_channel(self.weight, x, self.layout) + per_channel(self.bias, x,
                                                                           self.layout)
        return y


class PixelLayerNorm(nn.Module):
    """ConvNeXt's LayerNorm (timm LayerNorm2d): each pixel (n, h, w) of an image standardized
    over its C channels, affine per channel."""

    def __init__(self, num_features: int, eps: float, affine: bool):
        super().__init__()
        self.inner = nn.LayerNorm(num_features, eps=eps, elementwise_affine=affine)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner(x.permute(0, 2, 3, 1)).permute(0, 3, 1, 2)


class BatchRenorm(nn.Module):
    """Batch Renormalization (Ioffe 2017), Algorithm 1. Train mode:
        x_hat = (x - mu_B) / sigma_B * r + d,  sigma_B = sqrt(var_B + eps) (biased var_B),
        r = clip(sigma_B / sigma, 1/rmax, rmax),  d = clip((mu_B - mu) / sigma, -dmax, dmax),
    r and d held constant in the backward pass (stop-gradient), then gamma * x_hat + beta; the
    running mu and sigma move towards mu_B and sigma_B by `momentum`. Eval mode:
    (x - mu) / sigma. Statistics per channel over every other axis (as BatchNorm)."""

    def __init__(self, num_features: int, eps: float, affine: bool, layout: str,
                 rmax: float, dmax: float, momentum: float = 0.1):
        super().__init__()
        self.eps, self.layout, self.rmax, self.dmax = eps, layout, rmax, dmax
        self.momentum = momentum
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.register_buffer("running_mean", torch.zeros(num_features))
        self.register_buffer("running_std", torch.ones(num_features))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c = channel_dim(self.layout) % x.dim()
        dims = tuple(d for d in range(x.dim()) if d != c)
        mu, sigma = (per_channel(self.running_mean, x, self.layout),
                     per_channel(self.running_std, x, self.layout))
        if self.training:
            var_b, mu_b = torch.var_mean(x, dim=dims, keepdim=True, correction=0)
            sigma_b = torch.sqrt(var_b + self.eps)
            with torch.no_grad():
                r = (sigma_b / sigma).clamp(1 / self.rmax, self.rmax)
                d = ((mu_b - mu) / sigma).clamp(-self.dmax, self.dmax)
                self.running_mean += self.momentum * (mu_b.reshape(-1) - self.running_mean)
                self.running_std += self.momentum * (sigma_b.reshape(-1) - self.running_std)
            y = (x - mu_b) / sigma_b * r + d
        else:
            y = (x - mu) / sigma
        if self.weight is not None and self.bias is not None:
            y = y * per_channel(self.weight, x, self.layout) + per_channel(self.bias, x,
                                                                           self.layout)
        return y


class FRN(nn.Module):
    """Filter Response Normalization with its Thresholded Linear Unit (Singh & Krishnan,
    CVPR 2020): nu2 = mean of x^2 over each (sample, channel)'s positions (H·W pixels or T
    tokens), y = gamma * x / sqrt(nu2 + eps) + beta, z = max(y, tau) with tau learnable per
    channel (init 0). No mean is subtracted. On (N, C) features each channel has one value
    (the paper's 1×1 case, where a fixed eps makes FRN a sign function), so eps is learned
    there, as the paper prescribes: eps + |eps_l|, eps_l a learnable scalar (init 1e-4: at 0
    |.| has no gradient)."""

    def __init__(self, num_features: int, eps: float, affine: bool, layout: str):
        super().__init__()
        self.eps, self.layout = eps, layout
        self.weight = nn.Parameter(torch.ones(num_features)) if affine else None
        self.bias = nn.Parameter(torch.zeros(num_features)) if affine else None
        self.tau = nn.Parameter(torch.zeros(num_features))
        self.eps_l = nn.Parameter(torch.full((), 1e-4)) if layout == "features" else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        positions = {"image": (2, 3), "sequence": (1,)}.get(self.layout)
        nu2 = x.pow(2) if positions is None else x.pow(2).mean(dim=positions, keepdim=True)
        eps = self.eps if self.eps_l is None else self.eps + self.eps_l.abs()
        y = x * torch.rsqrt(nu2 + eps)
        if self.weight is not None and self.bias is not None:
            y = y * per_channel(self.weight, x, self.layout) + per_channel(self.bias, x,
                                                                           self.layout)
        return torch.maximum(y, per_channel(self.tau, x, self.layout))


def standardized(w: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Weight Standardization (Qiao et al. 2019): each output unit's weights (a row of a
    Linear, a filter of a Conv2d) over its fan-in, (W - mean) / sqrt(var + eps), biased var."""
    flat = w.reshape(w.shape[0], -1)
    var, mean = torch.var_mean(flat, dim=1, keepdim=True, correction=0)
    return ((flat - mean) / torch.sqrt(var + eps)).reshape(w.shape)


class WSLinear(nn.Linear):
    """nn.Linear whose forward uses the standardized weight (model.weight_standardization);
    `.weight` stays the raw parameter (its gradient and norm are what the diagnostics read)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.linear(x, standardized(self.weight), self.bias)


class WSConv2d(nn.Conv2d):
    """nn.Conv2d with the standardized weight in its forward (model.weight_standardization)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self._conv_forward(x, standardized(self.weight), self.bias)


class UserNorm(nn.Module):
    """A user norm (lnexp.norms.user) in a frame that names it: whatever its forward raises at
    run time, or a changed shape, becomes a RuntimeError naming the spec (a run-time refusal,
    which compare records as the norm's reason)."""

    def __init__(self, spec: str, inner: nn.Module):
        super().__init__()
        self.spec = spec
        self.inner = inner

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        try:
            y = self.inner(x)
        except Exception as exc:  # the user's code: any failure is a refusal of this input
            raise RuntimeError(f"user norm '{self.spec}' raised {type(exc).__name__}: "
                               f"{exc}") from None
        if not isinstance(y, torch.Tensor) or y.shape != x.shape:
            got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
            raise RuntimeError(f"user norm '{self.spec}' changed the shape: {tuple(x.shape)} "
                               f"in, {got} out")
        return y
