"""Per-block diagnostics over training (`train.log_every: K`), for every training task.

Recorded at step 1 (the weights at initialization), every K steps and at the last step, from
that step's own training forward and backward (forward hooks, no extra forward; the hooks exist
only on those steps). Per block (lnexp.models.probes.blocks: MLP / conv / transformer blocks,
first first), every statistic in float64 over all values of the block's output (the residual
stream after the block, for the residual placements):

- residual_rms:     sqrt(mean x^2)                       (lnexp.models.probes: hidden_rms)
- max_abs:          max |x|, and `max_position`: where, as (sample, token or pixel, channel)
- max_over_median:  max |x| / median |x|; massive activations (Sun et al. 2024) are values
                    thousands of times the median; lnexp.results.FIRST_MASSIVE (100)
                    flags the first step
- excess_kurtosis:  E[(x - mean)^4] / var^2 - 3 over all values (0 for a Gaussian; outlier
                    channels make it large, Bondarenko et al. 2023)
- grad_norm:        Frobenius norm of d loss / d W over all the block's Linear (Conv2d) weights
- attn_logit_max:   transformer blocks: the largest |q·k| / sqrt(d) of the forward
                    (lnexp.models.probes; for the causal char-LM over the pairs attention
                    uses, position t with positions <= t)

The median is over every value of the block output (32 x 64 x 64 = 131,072 values for
configs/charlm.yaml): on log steps only, so the cost is small (benchmarks/bench.py
`log_every`).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn

from lnexp.models import probes
from lnexp.results import TrainDiagnostics


def log_step(step: int, every: int | None, last: int) -> bool:
    """Whether `step` records diagnostics: 1, every `every`-th, and the last."""
    return every is not None and (step == 1 or step % every == 0 or step == last)


def _median(v: torch.Tensor) -> float:
    """The median (the mean of the two middle values for an even count; torch.median takes
    the lower one)."""
    n = v.numel()
    lo = float(v.kthvalue((n + 1) // 2).values)
    return lo if n % 2 else (lo + float(v.kthvalue(n // 2 + 1).values)) / 2


def _shape_stats(x: torch.Tensor) -> dict[str, float | tuple[int, ...]]:
    """max |x|, where, its ratio to the median |x| and the excess kurtosis (float64)."""
    x = x.detach().double()
    a = x.abs()
    flat = int(a.argmax()) if a.numel() else 0
    top = float(a.max()) if a.numel() else math.nan
    median = _median(a.flatten()) if a.numel() else math.nan
    c = x - x.mean()
    m2 = float(c.square().mean())
    m4 = float(c.square().square().mean())
    where = tuple(int(i) for i in np.unravel_index(flat, tuple(x.shape))) if x.numel() else ()
    return {"max_abs": top,
            "max_over_median": top / median if median > 0 else math.inf,
            "excess_kurtosis": m4 / (m2 * m2) - 3.0 if m2 > 0 else math.nan,
            "max_position": where}


class Logger:
    """Records one step at a time: `with logger.forward(step):` around the training forward,
    then `logger.gradients()` after backward."""

    def __init__(self, net: nn.Module):
        self.net = net
        self.found = probes.blocks(net)
        self.diag = TrainDiagnostics([f"block{i}" for i in range(1, len(self.found) + 1)])
        self._row: dict[str, list[float]] = {}
        self._where: list[tuple[int, ...]] = []
        self._step = 0

    @contextlib.contextmanager
    def forward(self, step: int) -> Iterator[None]:
        shapes: list[dict[str, float | tuple[int, ...]]] = [{} for _ in self.found]
        handles = [b.register_forward_hook(
            lambda _m, _i, out, j=j: shapes.__setitem__(
                j, _shape_stats(out[0] if isinstance(out, tuple) else out)))
            for j, b in enumerate(self.found)]
        try:
            with probes.recording(self.net) as rec:
                yield
        finally:
            for h in handles:
                h.remove()
        base = rec.result()
        self._step = step
        self._where = [s.get("max_position", ()) for s in shapes]  # type: ignore[misc]
        row: dict[str, list[float]] = {"residual_rms": [base[j + 1]["hidden_rms"]
                                                        for j in range(len(self.found))]}
        for key in ("max_abs", "max_over_median", "excess_kurtosis"):
            row[key] = [float(s.get(key, math.nan)) for s in shapes]  # type: ignore[arg-type]
        if all("attn_logit_max" in base[j + 1] for j in range(len(self.found))):
            row["attn_logit_max"] = [base[j + 1]["attn_logit_max"]
                                     for j in range(len(self.found))]
        self._row = row

    def gradients(self) -> None:
        """The weight-gradient norm of each block, after the backward of the logged step."""
        norms = []
        for b in self.found:
            grads = [m.weight.grad.detach().double() for m in b.modules()
                     if isinstance(m, nn.Linear | nn.Conv2d) and m.weight.grad is not None]
            norms.append(float(torch.stack([g.norm() for g in grads]).norm()) if grads
                         else 0.0)
        self._row["grad_norm"] = norms
        self.diag.steps.append(self._step)
        self.diag.max_position.append(self._where)
        for key, vals in self._row.items():
            self.diag.values.setdefault(key, []).append(vals)
        self._row = {}

