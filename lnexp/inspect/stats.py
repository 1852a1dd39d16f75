"""Streaming float64 accumulators for one norm layer: fed one (rows, dims) matrix per forward
call, memory bounded by the number of dims (never by the number of inputs).

- per dim: Chan et al.'s pairwise merge of (n, mean, M2) per batch, and the running max |x|;
- per token: the row's mean and biased variance over the dims, folded into exact min / max /
  sum and a log10-spaced histogram of the variance (quantiles to ~1%);
- carriers: per dim, the k rows with the largest |x| (merged by top-k across batches);
- int8 quantization error energies, per tensor (one scale per call) and per token.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
import torch

from lnexp.inspect.outcome import (
    QUANTILES,
    DimStats,
    Outlier,
    QuantStats,
    StageStats,
    Token,
    TokenStats,
)

# Histogram of log10(per-token variance): 0.005 decades per bin (1.16% relative resolution)
# from 1e-20 to 1e20; values outside fall into the edge bins (min and max stay exact).
LOG_LO, LOG_HI, LOG_STEP = -20.0, 20.0, 0.005
N_BINS = round((LOG_HI - LOG_LO) / LOG_STEP)

# Maps the row indices of one batch to (input, position, token id) — token id −1 when the
# inputs are not text. Given by the caller, which knows the batch's padding mask.
Locate = Callable[[torch.Tensor], torch.Tensor]


class _TopK:
    """The k largest scores seen so far, per column, with an int64 payload (input, position,
    token id) and the signed value."""

    def __init__(self, k: int):
        self.k = k
        self.score: torch.Tensor | None = None  # (k', D)
        self.value: torch.Tensor | None = None
        self.where: torch.Tensor | None = None  # (k', D, 3)

    def update(self, score: torch.Tensor, value: torch.Tensor, locate: Locate,
               rows: torch.Tensor | None = None) -> None:
        """Merge (n, D) candidates: `rows` their row indices in the batch, or None when
        `score` has one row per batch row (then its top k are taken first)."""
        if rows is None:
            k = min(self.k, score.shape[0])
            s, rows = torch.topk(score, k, dim=0)  # (k, D)
            v = value.gather(0, rows)
        else:
            s, v = score, value
        w = locate(rows.reshape(-1)).reshape(*rows.shape, 3)
        if self.score is not None:
            s = torch.cat([self.score, s])
            v = torch.cat([self.value, v])  # type: ignore[list-item]
            w = torch.cat([self.where, w])  # type: ignore[list-item]
            k = min(self.k, s.shape[0])
            s, idx = torch.topk(s, k, dim=0)
            v = v.gather(0, idx)
            w = w.gather(0, idx.unsqueeze(-1).expand(-1, -1, 3))
        self.score, self.value, self.where = s, v, w

    def column(self, d: int, label: Callable[[int], str | None]) -> list[Token]:
        if self.score is None:
            return []
        out = []
        for j in range(self.score.shape[0]):
            inp, pos, tok = (int(t) for t in self.where[j, d])  # type: ignore[index]
            out.append(Token(input=inp, position=None if pos < 0 else pos,
                             token=label(tok) if tok >= 0 else None,
                             value=float(self.value[j, d])))  # type: ignore[index]
        return out


class StageAccumulator:
    """Statistics of a norm's input or output over every real token."""

    def __init__(self, carriers: int = 3, largest_tokens: int = 5):
        self.n = 0
        self.mean: torch.Tensor | None = None  # per dim, float64
        self.m2: torch.Tensor | None = None
        self.absmax: torch.Tensor | None = None
        self.tok_mean_min = math.inf
        self.tok_mean_max = -math.inf
        self.tok_mean_sum = 0.0
        self.tok_var_min = math.inf
        self.tok_var_max = -math.inf
        self.tok_var_sum = 0.0
        self.hist = torch.zeros(N_BINS + 1, dtype=torch.int64)  # bin 0: variance exactly 0
        self.carriers = _TopK(carriers)
        self.largest = _TopK(largest_tokens)

    def update(self, xd: torch.Tensor, locate: Locate) -> None:
        """Add the rows of `xd` (rows, dims), float64."""
        rows = xd.shape[0]
        if rows == 0:
            return
        # Two-pass moments (mean, then mean squared deviation) in float64: exact to ~1e-15
        # and several times faster here than torch.var_mean's Welford kernel.
        mean_t = xd.mean(dim=1)  # per token, over the dims
        var_t = (xd - mean_t.unsqueeze(1)).square_().mean(dim=1)
        self.tok_mean_min = min(self.tok_mean_min, float(mean_t.min()))
        self.tok_mean_max = max(self.tok_mean_max, float(mean_t.max()))
        self.tok_mean_sum += float(mean_t.sum())
        self.tok_var_min = min(self.tok_var_min, float(var_t.min()))
        self.tok_var_max = max(self.tok_var_max, float(var_t.max()))
        self.tok_var_sum += float(var_t.sum())
        self.hist += _log_hist(var_t)

        mean_b = xd.mean(dim=0)  # per dim, over the tokens
        m2_b = (xd - mean_b).square_().sum(dim=0)
        # the k largest |x| per dim in this batch: the carriers, and [0] is the absmax
        k = min(self.carriers.k, rows)
        top, arg = torch.topk(xd.abs(), k, dim=0)
        amax = top[0]
        if self.mean is None:
            self.mean, self.m2, self.absmax = mean_b, m2_b, amax
        else:  # Chan et al.: merge (n_a, mean_a, M2_a) with (n_b, mean_b, M2_b)
            n = self.n + rows
            delta = mean_b - self.mean
            self.mean = self.mean + delta * (rows / n)
            self.m2 = self.m2 + m2_b + delta * delta * (self.n * rows / n)
            self.absmax = torch.maximum(self.absmax, amax)
        self.n += rows
        self.carriers.update(top, xd.gather(0, arg), locate, arg)
        self.largest.update(var_t.unsqueeze(1), var_t.unsqueeze(1), locate)

    def result(self, top_k: int, label: Callable[[int], str | None]) -> StageStats:
        assert self.mean is not None and self.m2 is not None and self.absmax is not None
        absmax = self.absmax.numpy()
        n = self.n
        per_dim = DimStats(count=n, mean=self.mean.numpy(), var=(self.m2 / n).numpy(),
                           absmax=absmax, carriers=[])
        median = float(np.median(absmax))
        order = np.argsort(-absmax, kind="stable")[:top_k]
        outliers = [Outlier(dim=int(d), absmax=float(absmax[d]),
                            ratio=float(absmax[d] / median) if median > 0 else math.inf,
                            tokens=self.carriers.column(int(d), label)) for d in order]
        per_token = TokenStats(
            count=n, mean_min=self.tok_mean_min, mean_max=self.tok_mean_max,
            mean_mean=self.tok_mean_sum / n, var_min=self.tok_var_min,
            var_max=self.tok_var_max, var_mean=self.tok_var_sum / n,
            var_quantiles={f"p{round(q * 100)}": hist_quantile(self.hist, q,
                                                               self.tok_var_min,
                                                               self.tok_var_max)
                           for q in QUANTILES},
            largest_var=self.largest.column(0, label))
        return StageStats(per_token=per_token, per_dim=per_dim, outliers=outliers)


def _log_hist(v: torch.Tensor) -> torch.Tensor:
    pos = v > 0
    idx = torch.zeros_like(v, dtype=torch.int64)
    lg = torch.log10(v[pos])
    idx[pos] = 1 + ((lg - LOG_LO) / LOG_STEP).floor().clamp(0, N_BINS - 1).to(torch.int64)
    return torch.bincount(idx, minlength=N_BINS + 1)


def hist_quantile(hist: torch.Tensor, q: float, lo: float, hi: float) -> float:
    """The q-quantile of the values binned by _log_hist: the centre of the bin holding it,
    clipped to the exact [min, max]."""
    cum = torch.cumsum(hist, 0)
    total = int(cum[-1])
    if total == 0:
        return math.nan
    i = int(torch.searchsorted(cum, torch.tensor(math.ceil(q * total) or 1)))
    if i == 0:
        return 0.0
    centre = 10 ** (LOG_LO + (i - 1 + 0.5) * LOG_STEP)
    return min(max(centre, lo), hi)


def quantile_from_hist(hist: np.ndarray, q: float) -> float:
    """Same as hist_quantile on a numpy histogram, unclipped (for figures)."""
    return hist_quantile(torch.as_tensor(hist), q, -math.inf, math.inf)


class QuantAccumulator:
    """Error energy of symmetric int8 quantization of the norm's input."""

    def __init__(self) -> None:
        self.signal = 0.0
        self.err_tensor = 0.0
        self.err_token = 0.0
        self.zero_tensor = 0
        self.zero_token = 0
        self.count = 0

    def update(self, xd: torch.Tensor) -> None:
        if xd.numel() == 0:
            return
        flat = xd.reshape(-1)
        self.signal += float(torch.dot(flat, flat))
        self.count += xd.numel()
        absx = xd.abs()
        e, z = _int8_error(xd, absx.max())
        self.err_tensor += e
        self.zero_tensor += z
        e, z = _int8_error(xd, absx.amax(dim=1, keepdim=True))
        self.err_token += e
        self.zero_token += z

    def result(self) -> QuantStats:
        return QuantStats(per_tensor_sqnr_db=sqnr_db(self.signal, self.err_tensor),
                          per_token_sqnr_db=sqnr_db(self.signal, self.err_token),
                          per_tensor_zero_fraction=self.zero_tensor / max(self.count, 1),
                          per_token_zero_fraction=self.zero_token / max(self.count, 1))


def _int8_error(xd: torch.Tensor, absmax: torch.Tensor) -> tuple[float, int]:
    """(Σ(x − q(x))², entries quantized to 0) for q(x) = round(x / s)·s, s = absmax / 127."""
    scale = torch.where(absmax > 0, absmax / 127.0, torch.ones_like(absmax))
    # |x| / scale <= 127 (1 + 2^-52) by construction, so round() already lands in -127..127
    # and no clamp is needed. Multiplying by 1/scale instead of dividing is ~3x faster and
    # moves x/scale by at most one ulp (it could only flip a value sitting on a .5 tie).
    q = torch.round_(xd * (1.0 / scale))
    zeros = q.numel() - int(torch.count_nonzero(q))
    err = q.mul_(scale).sub_(xd).reshape(-1)  # in place: q is ours
    return float(torch.dot(err, err)), zeros


def sqnr_db(signal: float, noise: float) -> float:
    if noise == 0:
        return math.inf
    if signal == 0:
        return -math.inf
    return 10.0 * math.log10(signal / noise)
