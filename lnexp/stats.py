"""Statistics of an activation matrix (N samples x C features), accumulated in float64.

Axis names, used everywhere (tables, metrics.json, stats.csv):

- per_feature: one value per feature, computed over the samples (dim 0) - what BatchNorm pins;
- per_sample:  one value per sample, computed over its features (dim 1) - what LayerNorm pins.

`var` is the *biased* variance (divide by n), the one the norm layers use; `var_unbiased`
divides by n - 1 (torch.var's default, what the tutorial printed) and is NaN where n < 2;
`std` is sqrt(var), the biased standard deviation. Variances use two passes (mean first, then
mean squared deviation) in float64, so a large common offset does not cancel digits away.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

# An axis counts as standardized when every mean is within TOL of 0 and every biased variance
# within TOL of 1. Generous next to float32 rounding (~1e-7), tight next to what eps does to a
# variance of ~1e-2 (eps=1e-5 moves it by 1e-3).
STANDARDIZED_TOL = 1e-3


@dataclass(frozen=True)
class AxisStats:
    """Per-feature or per-sample statistics: arrays of one value per feature / sample."""

    count: int  # how many values each statistic is taken over
    mean: np.ndarray
    var: np.ndarray  # biased (/ n)
    var_unbiased: np.ndarray  # / (n - 1); NaN where n < 2
    std: np.ndarray  # sqrt(var)


@dataclass(frozen=True)
class GlobalStats:
    """Statistics over every value of the matrix at once."""

    count: int
    mean: float
    var: float
    var_unbiased: float
    std: float
    rms: float
    min: float
    max: float
    nonfinite: int  # NaN or +-Inf values (then the statistics above are NaN)


@dataclass(frozen=True)
class StageStats:
    """All statistics of one stage (pre_norm or post_norm)."""

    per_feature: AxisStats
    per_sample: AxisStats
    global_: GlobalStats


@dataclass(frozen=True)
class Verdict:
    """Whether an axis is centred (|mean| <= tol) and has unit biased variance (|var-1| <= tol)."""

    centred: bool
    unit_variance: bool
    mean_abs_max: float
    var_min: float
    var_max: float
    tolerance: float

    @property
    def standardized(self) -> bool:
        return self.centred and self.unit_variance


def _moments(x: torch.Tensor, dim: int | None) -> tuple[int, torch.Tensor, torch.Tensor]:
    """(n, mean, M2) along `dim` (all values when None), float64, two-pass."""
    x = x.to(torch.float64)
    n = x.numel() if dim is None else x.shape[dim]
    mean = x.mean() if dim is None else x.mean(dim=dim)
    centred = x - (mean if dim is None else mean.unsqueeze(dim))
    m2 = (centred * centred).sum() if dim is None else (centred * centred).sum(dim=dim)
    return n, mean, m2


def _variances(n: int, m2: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
    var = (m2 / n).numpy()
    var_u = (m2 / (n - 1)).numpy() if n > 1 else np.full_like(var, np.nan)
    return var, var_u


def axis_stats(x: torch.Tensor, dim: int) -> AxisStats:
    """Statistics of a 2-D tensor reduced over `dim` (0: per feature, 1: per sample)."""
    n, mean, m2 = _moments(x, dim)
    var, var_u = _variances(n, m2)
    return AxisStats(count=n, mean=mean.numpy(), var=var, var_unbiased=var_u, std=np.sqrt(var))


def global_stats(x: torch.Tensor) -> GlobalStats:
    """Statistics over all values of `x`."""
    n, mean, m2 = _moments(x, None)
    var, var_u = _variances(n, m2.reshape(1))
    x64 = x.to(torch.float64)
    return GlobalStats(
        count=n,
        mean=float(mean),
        var=float(var[0]),
        var_unbiased=float(var_u[0]),
        std=float(np.sqrt(var[0])),
        rms=float(torch.sqrt((x64 * x64).mean())),
        min=float(x64.min()),
        max=float(x64.max()),
        nonfinite=int((~torch.isfinite(x)).sum()),
    )


def stage_stats(x: torch.Tensor) -> StageStats:
    """Per-feature, per-sample and global statistics of an (N, C) activation matrix."""
    x = x.detach()
    return StageStats(per_feature=axis_stats(x, 0), per_sample=axis_stats(x, 1),
                      global_=global_stats(x))


def verdict(axis: AxisStats, tol: float = STANDARDIZED_TOL) -> Verdict:
    """Is this axis standardized (every mean ~ 0 and every biased variance ~ 1)?"""
    with np.errstate(invalid="ignore"):
        mean_abs_max = float(np.max(np.abs(axis.mean)))
        var_min, var_max = float(np.min(axis.var)), float(np.max(axis.var))
    return Verdict(
        centred=bool(mean_abs_max <= tol),
        unit_variance=bool(abs(var_min - 1) <= tol and abs(var_max - 1) <= tol),
        mean_abs_max=mean_abs_max,
        var_min=var_min,
        var_max=var_max,
        tolerance=tol,
    )


@dataclass(frozen=True)
class SampleStats:
    """One sample's values and their statistics across features."""

    values: np.ndarray
    mean: float
    var: float
    var_unbiased: float
    std: float


def sample_stats(x: torch.Tensor, index: int) -> SampleStats:
    """Statistics of row `index` across its features."""
    row = x.detach()[index : index + 1]
    s = axis_stats(row, 1)
    return SampleStats(values=row[0].to(torch.float64).numpy(), mean=float(s.mean[0]),
                       var=float(s.var[0]), var_unbiased=float(s.var_unbiased[0]),
                       std=float(s.std[0]))


def nonfinite_counts(a: np.ndarray) -> dict[str, int]:
    """How many values of `a` are NaN and how many are +-Inf."""
    nan = int(np.count_nonzero(np.isnan(a)))
    inf = int(np.count_nonzero(np.isinf(a)))
    return {"nan": nan, "inf": inf, "nonfinite": nan + inf}
