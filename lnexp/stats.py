"""Statistics of activations, accumulated in float64, for every layout (lnexp.registry.LAYOUTS):
(N, C) features, (N, C, H, W) images, (N, T, C) sequences.

Axis names, used everywhere (tables, metrics.json, stats.csv); lists are in row-major order of
the axes kept:

- per_feature:  one value per feature / channel, over every other axis (features: N; image:
  N, H, W; sequence: N, T) - what BatchNorm pins;
- per_sample:   one value per sample, over every other axis - what LayerNorm pins on features
  and images;
- per_token:    sequence only: one value per (n, t), over the C channels - LayerNorm's axis in a
  transformer;
- per_instance: image and sequence: one value per (n, c), over H, W (or T) - InstanceNorm's;
- per_group:    with norm: group: one value per (n, g), over the group's channels and H, W (or
  T) - GroupNorm's;
- per_pixel:    image, with norm: ln_pixel: one value per (n, h, w), over the C channels -
  ConvNeXt's LayerNorm.

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


def unit_rows(x: torch.Tensor, axis: str, layout: str, groups: int | None = None) -> torch.Tensor:
    """`x` (k samples of the layout) as a 2-D view whose *rows* are the units of a
    within-sample axis (per_sample, per_token, per_instance, per_group), n-major: each
    statistic is one row's mean / variance."""
    k = x.shape[0]
    if axis == "per_sample":
        return x.reshape(k, -1)
    if axis == "per_token":  # (N, T, C): one row per (n, t)
        return x.reshape(-1, x.shape[-1])
    if axis == "per_pixel":  # (N, C, H, W): one row per (n, h, w)
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    channels_first = x.transpose(1, 2) if layout == "sequence" else x  # (N, C, ...)
    if axis == "per_instance":  # one row per (n, c)
        return channels_first.reshape(k * channels_first.shape[1], -1)
    if axis == "per_group":  # channels g*C/G .. (g+1)*C/G - 1 of sample n: one row per (n, g)
        assert groups is not None
        return channels_first.reshape(k * groups, -1)
    raise ValueError(f"unknown axis {axis!r}")


def feature_columns(x: torch.Tensor, layout: str) -> torch.Tensor:
    """`x` as a 2-D view whose *columns* are the channels: (N, C), (N·H·W, C), (N·T, C)."""
    if layout == "image":
        return x.permute(0, 2, 3, 1).reshape(-1, x.shape[1])
    return x.reshape(-1, x.shape[-1])


class StreamingStats:
    """Statistics of a batch of the layout fed in chunks of whole samples.

    Each chunk is reduced in float64 with torch.var_mean (a stable one-pass Welford kernel);
    per-feature moments of successive chunks are merged with Chan et al.'s pairwise update
    (n, mean, M2); the within-sample axes (per_sample, per_token, per_instance, per_group)
    need no merge (a sample is never split), and the global moments are merged from the
    per-feature ones at the end. Equal to a float64 two-pass computation on the whole batch to
    ~1e-12 relative (tests check 1e-9, and 1e-10 against plain tensor ops per layout).
    """

    def __init__(self, rows: int, layout: str = "features", axes: tuple[str, ...] = (),
                 groups: int | None = None) -> None:
        """`rows`: how many samples will be fed in all (per-sample results are preallocated:
        keeping one small tensor per chunk instead fragments the heap so badly that a
        million-row run grew to 20+ GiB). `axes`: the within-sample axes beyond per_sample
        (registry.axes(layout, norm)); `groups` for per_group."""
        self.n = 0  # samples fed
        self.layout = layout
        self.groups = groups
        self._mean: torch.Tensor | None = None  # per feature, float64
        self._m2: torch.Tensor | None = None
        self._count = 0  # values per feature so far (samples x positions)
        self._rows = rows
        self._within = ("per_sample", *[a for a in axes
                                        if a not in ("per_feature", "per_sample")])
        self._row_mean: dict[str, np.ndarray] = {}
        self._row_var: dict[str, np.ndarray] = {}
        self._units: dict[str, int] = {}  # statistics per sample, per within-sample axis
        self._width: dict[str, int] = {}  # values each statistic is over
        self._min = math.inf
        self._max = -math.inf
        self._nan = 0
        self._inf = 0

    def _rows_of(self, axis: str, x: torch.Tensor) -> torch.Tensor:
        return unit_rows(x, axis, self.layout, self.groups)

    def update(self, chunk: torch.Tensor) -> None:
        """Add the samples of `chunk` (k, *sample shape)."""
        x = chunk.detach().to(torch.float64)
        k = x.shape[0]
        if k == 0:
            return
        mean_r = None
        for axis in self._within:
            rows = self._rows_of(axis, x)
            var_a, mean_a = torch.var_mean(rows, dim=1, correction=0)
            per = rows.shape[0] // k
            if axis not in self._units:
                self._units[axis], self._width[axis] = per, rows.shape[1]
                self._row_mean[axis] = np.empty(self._rows * per, dtype=np.float64)
                self._row_var[axis] = np.empty(self._rows * per, dtype=np.float64)
            a, b = self.n * per, (self.n + k) * per
            self._row_mean[axis][a:b] = mean_a.numpy()
            self._row_var[axis][a:b] = var_a.numpy()
            if axis == "per_sample":
                mean_r = mean_a
        cols = feature_columns(x, self.layout)
        m = cols.shape[0]
        var_c, mean_c = torch.var_mean(cols, dim=0, correction=0)
        m2_c = var_c * m
        if self._mean is None or self._m2 is None:
            self._mean, self._m2 = mean_c, m2_c
        else:  # Chan, Golub & LeVeque (1979): merge (n_a, mean_a, M2_a) with (m, mean_c, M2_c)
            n = self._count + m
            delta = mean_c - self._mean
            self._mean = self._mean + delta * (m / n)
            self._m2 = self._m2 + m2_c + delta * delta * (self._count * m / n)
        self._count += m
        self.n += k
        # A sample holding NaN or +-Inf has a non-finite mean, so the full scan for them (and
        # for finite extremes) runs only when some sample mean is not finite.
        assert mean_r is not None
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
        """The statistics of all samples fed so far."""
        assert self._mean is not None and self._m2 is not None, "no rows were fed"
        n, c = self._count, self._mean.numel()
        per_feature = _axis(n, self._mean.numpy(), (self._m2 / n).numpy())
        within = {axis: _axis(self._width[axis],
                              self._row_mean[axis][:self.n * self._units[axis]],
                              self._row_var[axis][:self.n * self._units[axis]])
                  for axis in self._within}
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
        per_sample = within.pop("per_sample")
        return StageStats(per_feature=per_feature, per_sample=per_sample, global_=glob,
                          extra=within)

    @classmethod
    def over(cls, x: torch.Tensor, chunk_rows: int | None = None, layout: str = "features",
             axes: tuple[str, ...] = (), groups: int | None = None) -> StreamingStats:
        """An accumulator fed a whole batch `x` of the layout, chunk by chunk."""
        acc = cls(x.shape[0], layout, axes, groups)
        per_sample = max(1, x[0].numel()) if x.shape[0] else 1
        rows = chunk_rows or max(1, plan.CHUNK_VALUES // per_sample)
        for start in range(0, x.shape[0], rows):
            acc.update(x[start:start + rows])
        return acc

    @classmethod
    def of(cls, x: torch.Tensor, chunk_rows: int | None = None, layout: str = "features",
           axes: tuple[str, ...] = (), groups: int | None = None) -> StageStats:
        """Statistics of a whole batch `x` of the layout, computed chunk by chunk."""
        return cls.over(x, chunk_rows, layout, axes, groups).result()


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
    """Statistics of sample `index` over all its values (features; C·H·W; T·C)."""
    row = x.detach()[index : index + 1].reshape(1, -1)
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
