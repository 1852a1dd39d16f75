"""The LayerNorm/RMSNorm S-curve (Zhu et al. 2025, "Transformers without Normalization",
Fig. 2): each entry's input x against the norm's output before its affine part,
x̂ = (x − μ_t)/√(σ²_t + ε) (LayerNorm) or x/√(mean_t x² + ε) (RMSNorm), t its token.

x̂ is recomputed from the input with the layer's own eps, so γ/β conventions (Gemma's 1 + w, a
near-zero γ) do not enter. A token is a straight line through 0 of slope 1/σ_t; tokens that
carry outliers have a large σ_t and are squashed, so all tokens together bend into an S. The
fitted curve is s·tanh(αx) with s the largest |x̂| seen (where the S saturates) and α by least
squares on a log grid refined by golden section; R² of that fit and of the best line through
0 say how S-shaped the layer is.

Only layers normalizing the last axis are drawn (BatchNorm's x̂ uses running statistics, not
the token's): `curve_layers` of them, evenly spaced over depth. Memory is bounded: a weighted
reservoir (Efraimidis–Spirakis A-Res) keeps SAMPLE uniformly drawn entries, plus the EXTREMES
entries with the largest |x|, per layer.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

SAMPLE = 6_000
EXTREMES = 64
PER_CALL = 4_096  # entries drawn per forward call before the reservoir merge


@dataclass(frozen=True)
class Curve:
    name: str
    type: str
    position: float  # the layer's index among all norm layers / (layers − 1): 0…1
    x: np.ndarray  # sampled inputs (uniform reservoir, then the extremes)
    xhat: np.ndarray  # the normalized values before γ, β
    extremes: int  # how many of the last entries are the largest-|x| ones
    alpha: float
    scale: float  # s: the largest |x̂| seen
    r2_tanh: float
    r2_linear: float
    slope: float  # the best line through 0, x̂ ≈ slope·x

    def as_dict(self, num: Any) -> dict[str, Any]:
        """inspect.json's entry (outcome.py calls this, so it need not import this module)."""
        return curve_dict(self, num)

def select(layers: list[Any], n: int) -> list[Any]:
    """`n` layers that normalize the last axis, evenly spaced (first and last included)."""
    ok = [la for la in layers if la.axis == "last"]
    if n <= 0 or not ok:
        return []
    if len(ok) <= n:
        return ok
    picks = sorted({round(i * (len(ok) - 1) / (n - 1)) for i in range(n)}) if n > 1 else [0]
    return [ok[i] for i in picks]


class CurveSampler:
    def __init__(self, centre: bool, eps: float | None, seed: int = 0):
        self.centre = centre
        self.eps = eps if eps is not None else 1e-5
        self.gen = torch.Generator().manual_seed(seed)
        self.keys = torch.empty(0, dtype=torch.float64)
        self.pts = torch.empty(0, 2, dtype=torch.float64)
        self.ext = torch.empty(0, 2, dtype=torch.float64)
        self.scale = 0.0

    def update(self, xd: torch.Tensor) -> None:
        """Add (tokens, dims) rows, float64."""
        n = xd.numel()
        if n == 0:
            return
        mu = xd.mean(dim=1, keepdim=True) if self.centre else 0.0
        d = xd - mu
        z = d * torch.rsqrt(d.square().mean(dim=1, keepdim=True) + self.eps)
        self.scale = max(self.scale, float(z.abs().max()))
        fx, fz = xd.reshape(-1), z.reshape(-1)
        m = min(n, PER_CALL)
        idx = torch.randint(n, (m,), generator=self.gen)
        # A-Res: each drawn entry stands for n/m entries; key u^(1/w), keep the largest
        u = torch.rand(m, generator=self.gen, dtype=torch.float64)
        keys = u.pow(m / n)
        pts = torch.stack([fx[idx], fz[idx]], dim=1)
        self.keys, self.pts = _keep(torch.cat([self.keys, keys]), torch.cat([self.pts, pts]),
                                    SAMPLE)
        k = min(EXTREMES, n)
        _, top = torch.topk(fx.abs(), k)
        ext = torch.cat([self.ext, torch.stack([fx[top], fz[top]], dim=1)])
        _, keep = torch.topk(ext[:, 0].abs(), min(EXTREMES, ext.shape[0]))
        self.ext = ext[keep]

    def result(self, name: str, type_: str, position: float) -> Curve:
        pts = torch.cat([self.pts, self.ext]).numpy()
        x, z = pts[:, 0], pts[:, 1]
        alpha, r2 = fit_tanh(x, z, self.scale)
        denom = float(np.dot(x, x))
        slope = float(np.dot(x, z) / denom) if denom > 0 else math.nan
        return Curve(name=name, type=type_, position=position, x=x, xhat=z,
                     extremes=int(self.ext.shape[0]), alpha=alpha, scale=self.scale,
                     r2_tanh=r2, r2_linear=_r2(z, slope * x), slope=slope)


def _keep(keys: torch.Tensor, pts: torch.Tensor, cap: int) -> tuple[torch.Tensor, torch.Tensor]:
    if keys.shape[0] <= cap:
        return keys, pts
    _, idx = torch.topk(keys, cap)
    return keys[idx], pts[idx]


def _r2(z: np.ndarray, pred: np.ndarray) -> float:
    sst = float(np.sum((z - z.mean()) ** 2))
    return 1.0 - float(np.sum((z - pred) ** 2)) / sst if sst > 0 else math.nan


def fit_tanh(x: np.ndarray, z: np.ndarray, scale: float) -> tuple[float, float]:
    """α minimising Σ(z − s·tanh(αx))², and the fit's R². A log grid over 12 decades around
    1/max|x|, then golden-section search in log α between the grid neighbours."""
    xm = float(np.max(np.abs(x))) if x.size else 0.0
    if x.size < 2 or xm == 0 or scale == 0:
        return math.nan, math.nan

    def sse(log_a: float) -> float:
        return float(np.sum((z - scale * np.tanh(math.exp(log_a) * x)) ** 2))

    grid = np.log(1.0 / xm) + np.linspace(-3 * math.log(10), 9 * math.log(10), 241)
    errs = [sse(g) for g in grid]
    i = int(np.argmin(errs))
    lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, grid.size - 1)]
    phi = (math.sqrt(5) - 1) / 2
    for _ in range(60):
        a, b = hi - phi * (hi - lo), lo + phi * (hi - lo)
        if sse(a) <= sse(b):
            hi = b
        else:
            lo = a
    best = (lo + hi) / 2
    alpha = math.exp(best)
    return alpha, _r2(z, scale * np.tanh(alpha * x))


def curve_dict(c: Curve, num: Any) -> dict[str, Any]:
    """One entry of inspect.json's `s_curves` (the sampled points stay out: the figure)."""
    return {"layer": c.name, "type": c.type, "position": num(c.position), "alpha": num(c.alpha),
            "scale": num(c.scale), "r2_tanh": num(c.r2_tanh), "r2_linear": num(c.r2_linear),
            "slope": num(c.slope), "points": int(c.x.size), "extremes": c.extremes}
