"""Statistics of an activation matrix (N samples x C features), accumulated in float64.

Axis names, used everywhere (tables, metrics.json, stats.csv):

- per_feature: one value per feature, computed over the samples (dim 0) - what BatchNorm pins;
- per_sample:  one value per sample, computed over its features (dim 1) - what LayerNorm pins.

`var` is the *biased* variance (divide by n), the one the norm layers use; `var_unbiased`
divides by n - 1 (torch.var's default, what the tutorial printed) and is NaN where n < 2;
`std` is sqrt(var), the biased standard deviation. Everything is accumulated in float64, chunk
by chunk (see StreamingStats), so a large common offset does not cancel digits away and memory
stays bounded for any number of samples.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from lnexp import plan
from lnexp.results import (  # noqa: F401  (re-exported: the result types live there)
    STANDARDIZED_TOL,
    AxisStats,
    GlobalStats,
    SampleStats,
    StageStats,
    Verdict,
    verdict,
)


class StreamingStats:
    """Per-feature, per-sample and global statistics of an (N, C) matrix fed in row chunks.

    Each chunk is reduced in float64 with torch.var_mean (a stable one-pass Welford kernel);
    per-feature moments of successive chunks are merged with Chan et al.'s pairwise update
    (n, mean, M2), per-sample moments need no merge (a row is never split), and the global
    moments are merged from the per-feature ones at the end. Equal to a float64 two-pass
    computation on the whole matrix to ~1e-12 relative (tests check 1e-9).
    """

    def __init__(self, rows: int) -> None:
        """`rows`: how many rows will be fed in all (per-sample results are preallocated:
        keeping one small tensor per chunk instead fragments the heap so badly that a
        million-row run grew to 20+ GiB)."""
        self.n = 0
        self._mean: torch.Tensor | None = None  # per feature, float64
        self._m2: torch.Tensor | None = None
        self._row_mean = np.empty(rows, dtype=np.float64)
        self._row_var = np.empty(rows, dtype=np.float64)
        self._min = math.inf
        self._max = -math.inf
        self._nan = 0
        self._inf = 0

    def update(self, chunk: torch.Tensor) -> None:
        """Add the rows of `chunk` (k, C)."""
        x = chunk.detach().to(torch.float64)
        k = x.shape[0]
        if k == 0:
            return
        var_r, mean_r = torch.var_mean(x, dim=1, correction=0)
        self._row_mean[self.n:self.n + k] = mean_r.numpy()
        self._row_var[self.n:self.n + k] = var_r.numpy()
        var_c, mean_c = torch.var_mean(x, dim=0, correction=0)
        m2_c = var_c * k
        if self._mean is None or self._m2 is None:
            self._mean, self._m2 = mean_c, m2_c
        else:  # Chan, Golub & LeVeque (1979): merge (n_a, mean_a, M2_a) with (k, mean_c, M2_c)
            n = self.n + k
            delta = mean_c - self._mean
            self._mean = self._mean + delta * (k / n)
            self._m2 = self._m2 + m2_c + delta * delta * (self.n * k / n)
        self.n += k
        # A row holding NaN or +-Inf has a non-finite mean, so the full scan for them (and
        # for finite extremes) runs only when some row mean is not finite.
        if bool(torch.isfinite(mean_r).all()):
            lo, hi = torch.aminmax(chunk.detach())
            self._min = min(self._min, float(lo))
            self._max = max(self._max, float(hi))
            return
        nan = int(torch.isnan(x).sum())
        inf = int(torch.isinf(x).sum())
        self._nan += nan
        self._inf += inf
        if nan + inf < x.numel():
            finite = x[torch.isfinite(x)]
            self._min = min(self._min, float(finite.min()))
            self._max = max(self._max, float(finite.max()))

    @property
    def nonfinite(self) -> dict[str, int]:
        """NaN and +-Inf counts of every value fed so far."""
        return {"nan": self._nan, "inf": self._inf, "nonfinite": self._nan + self._inf}

    def result(self) -> StageStats:
        """The statistics of all rows fed so far."""
        assert self._mean is not None and self._m2 is not None, "no rows were fed"
        n, c = self.n, self._mean.numel()
        per_feature = _axis(n, self._mean.numpy(), (self._m2 / n).numpy())
        per_sample = _axis(c, self._row_mean[:n], self._row_var[:n])
        # Global moments from the per-feature ones (equal counts per feature).
        mean = self._mean.mean()
        m2 = self._m2.sum() + n * ((self._mean - mean) ** 2).sum()
        count = n * c
        var = float(m2 / count)
        nonfinite = self._nan + self._inf
        glob = GlobalStats(
            count=count,
            mean=float(mean),
            var=var,
            var_unbiased=float(m2 / (count - 1)) if count > 1 else math.nan,
            std=math.sqrt(var) if var >= 0 else math.nan,
            rms=math.sqrt(var + float(mean) ** 2) if var >= 0 else math.nan,
            min=self._min if nonfinite == 0 else math.nan,
            max=self._max if nonfinite == 0 else math.nan,
            nonfinite=nonfinite,
        )
        return StageStats(per_feature=per_feature, per_sample=per_sample, global_=glob)

    @classmethod
    def over(cls, x: torch.Tensor, chunk_rows: int | None = None) -> StreamingStats:
        """An accumulator fed a whole (N, C) tensor, chunk by chunk."""
        acc = cls(x.shape[0])
        rows = chunk_rows or max(1, plan.CHUNK_VALUES // max(1, x.shape[1]))
        for start in range(0, x.shape[0], rows):
            acc.update(x[start:start + rows])
        return acc

    @classmethod
    def of(cls, x: torch.Tensor, chunk_rows: int | None = None) -> StageStats:
        """Statistics of a whole (N, C) tensor, computed chunk by chunk."""
        return cls.over(x, chunk_rows).result()


def _axis(n: int, mean: np.ndarray, var_np: np.ndarray) -> AxisStats:
    var_u = var_np * (n / (n - 1)) if n > 1 else np.full_like(var_np, np.nan)
    with np.errstate(invalid="ignore"):
        std = np.sqrt(var_np)
    return AxisStats(count=n, mean=mean, var=var_np, var_unbiased=var_u, std=std)


def axis_stats(x: torch.Tensor, dim: int) -> AxisStats:
    """Statistics of a 2-D tensor reduced over `dim` (0: per feature, 1: per sample)."""
    st = StreamingStats.of(x)
    return st.per_feature if dim == 0 else st.per_sample


def global_stats(x: torch.Tensor) -> GlobalStats:
    """Statistics over all values of `x`."""
    return StreamingStats.of(x).global_


def sample_stats(x: torch.Tensor, index: int) -> SampleStats:
    """Statistics of row `index` across its features."""
    row = x.detach()[index : index + 1]
    s = axis_stats(row, 1)
    return SampleStats(values=row[0].to(torch.float64).numpy(), mean=float(s.mean[0]),
                       var=float(s.var[0]), var_unbiased=float(s.var_unbiased[0]),
                       std=float(s.std[0]))


def sample_spread(x: torch.Tensor) -> float:
    """How far apart the samples are: sqrt(mean over features of the biased variance over
    samples), float64. Rows are samples; a (N, T, C) batch is read as N samples of T*C values.
    0 when every sample is the same vector, whatever the spread of its own values."""
    flat = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    return float(flat.var(dim=0, unbiased=False).mean().sqrt())


def sample_cosine(x: torch.Tensor) -> float:
    """Mean cosine similarity over all pairs of distinct samples, float64 (NaN below 2
    samples). From the sum of the unit rows: sum_{i != j} u_i.u_j = |sum u|^2 - sum |u_i|^2,
    so it costs O(N C), not O(N^2 C). A zero row counts as similarity 0 to every other."""
    flat = x.detach().reshape(x.shape[0], -1).to(torch.float64)
    n = flat.shape[0]
    if n < 2:
        return math.nan
    norms = flat.norm(dim=1, keepdim=True)
    unit = torch.where(norms > 0, flat / norms.clamp_min(1e-300), torch.zeros_like(flat))
    total = unit.sum(dim=0)
    self_terms = (unit * unit).sum()
    return float((total @ total - self_terms) / (n * (n - 1)))
