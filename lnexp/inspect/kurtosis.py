"""Kurtosis and max |x| of a norm's input and output over every real (token, dim) entry, as
Bondarenko et al. 2023 ("Quantizable Transformers") track outliers: a Gaussian has kurtosis
3; a tensor with a few huge entries has thousands.

Streamed in float64: each forward call's central moments (M2, M3, M4 about its own mean) are
merged into the running ones with Pébay's (2008) pairwise formulas, so the result equals the
one-pass computation over all entries without the cancellation of raw power sums.
"""

from __future__ import annotations

import math

import torch

from lnexp.inspect.outcome import Tails


class KurtosisAccumulator:
    def __init__(self) -> None:
        self.n = 0
        self.mean = 0.0
        self.m2 = self.m3 = self.m4 = 0.0
        self.absmax = 0.0

    def update(self, x: torch.Tensor) -> None:
        """Add every entry of `x` (float64)."""
        nb = x.numel()
        if nb == 0:
            return
        flat = x.reshape(-1)
        mb = float(flat.mean())
        d = flat - mb
        d2 = d * d
        m2b = float(d2.sum())
        m3b = float((d2 * d).sum())
        m4b = float((d2 * d2).sum())
        self.absmax = max(self.absmax, float(flat.abs().max()))
        na = self.n
        if na == 0:
            self.n, self.mean, self.m2, self.m3, self.m4 = nb, mb, m2b, m3b, m4b
            return
        n = na + nb
        delta = mb - self.mean
        self.m4 = (self.m4 + m4b
                   + delta ** 4 * na * nb * (na * na - na * nb + nb * nb) / n ** 3
                   + 6 * delta ** 2 * (na * na * m2b + nb * nb * self.m2) / n ** 2
                   + 4 * delta * (na * m3b - nb * self.m3) / n)
        self.m3 = (self.m3 + m3b + delta ** 3 * na * nb * (na - nb) / n ** 2
                   + 3 * delta * (na * m2b - nb * self.m2) / n)
        self.m2 = self.m2 + m2b + delta ** 2 * na * nb / n
        self.mean += delta * nb / n
        self.n = n

    def result(self) -> Tails:
        k = self.n * self.m4 / (self.m2 * self.m2) if self.m2 > 0 else math.nan
        return Tails(count=self.n, kurtosis=k, absmax=self.absmax)
