"""BatchNorm on real data: each BN layer's statistics on the given inputs vs its running
statistics, and the `conv-BN` role of a BatchNorm that follows a convolution.

The batch statistics are the layer input's per-channel mean and (biased) variance over every
input and spatial position seen (the float64 streaming moments lnexp.inspect.stats already
keeps), so they are what train mode would use with all the inputs in one batch. Per channel:

- `mean_gap` = |mean_batch − running_mean| / sqrt(running_var + eps): how far, in the units
  the layer divides by, the data's mean sits from the one the layer subtracts;
- `var_ratio` = (var_batch + eps) / (running_var + eps): 1 when the spreads agree.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from lnexp.inspect.outcome import LayerReport

CONV_TYPES = ("Conv1d", "Conv2d", "Conv3d", "Conv2dStaticSamePadding",
              "Conv2dDynamicSamePadding")
# Modules that sit between a conv and its BN without changing which conv feeds it.
_PASS_THROUGH = ("Identity", "ZeroPad2d", "ConstantPad2d")


@dataclass(frozen=True)
class RunningGap:
    """Per-channel disagreement of the data with a BatchNorm's running statistics."""

    channels: int
    samples: int  # values per channel the batch statistics are over (inputs × positions)
    mean_gap: dict[str, float]  # median, p90, max over channels
    mean_gap_channel: int  # the channel with the largest mean gap
    var_ratio: dict[str, float]  # median, p10, p90, min, max over channels
    log2_var_ratio_rms: float  # rms over channels of log2(var_ratio): 0 when they agree


def running_gap(r: LayerReport, module: Any) -> RunningGap | None:
    """The gap for one BatchNorm layer report, None without running statistics."""
    rm = getattr(module, "running_mean", None)
    rv = getattr(module, "running_var", None)
    if rm is None or rv is None or rm.numel() != r.pre.per_dim.mean.size:
        return None
    eps = float(getattr(module, "eps", 0.0) or 0.0)
    run_mean = rm.detach().double().cpu().numpy()
    run_var = rv.detach().double().cpu().numpy()
    mean, var = r.pre.per_dim.mean, r.pre.per_dim.var
    gap = np.abs(mean - run_mean) / np.sqrt(run_var + eps)
    ratio = (var + eps) / (run_var + eps)
    q = np.quantile
    return RunningGap(
        channels=int(gap.size), samples=int(r.pre.per_dim.count),
        mean_gap={"median": float(np.median(gap)), "p90": float(q(gap, 0.9)),
                  "max": float(gap.max())},
        mean_gap_channel=int(np.argmax(gap)),
        var_ratio={"median": float(np.median(ratio)), "p10": float(q(ratio, 0.1)),
                   "p90": float(q(ratio, 0.9)), "min": float(ratio.min()),
                   "max": float(ratio.max())},
        log2_var_ratio_rms=float(np.sqrt(np.mean(np.log2(ratio) ** 2))))


def _leaves(model: Any) -> list[tuple[str, Any]]:
    return [(n, m) for n, m in model.named_modules() if not any(True for _ in m.children())]


def conv_bn_roles(model: Any) -> dict[str, str]:
    """`conv-BN` for each BatchNorm whose preceding leaf module (in registration order,
    padding skipped) is a convolution; `BN` for the other BatchNorms."""
    roles: dict[str, str] = {}
    prev: str | None = None
    for name, m in _leaves(model):
        kind = type(m).__name__
        if hasattr(m, "running_mean") and "Norm" in kind:
            roles[name] = "conv-BN" if prev in CONV_TYPES else "BN"
        if kind not in _PASS_THROUGH:
            prev = kind
    return roles


def annotate(model: Any, reports: list[LayerReport]) -> list[LayerReport]:
    """Each BatchNorm report with its role and running-statistics gap (others unchanged)."""
    roles = conv_bn_roles(model)
    out = []
    for r in reports:
        if r.name in roles:
            try:
                module = model.get_submodule(r.name)
            except AttributeError:
                module = None
            r = dataclasses.replace(r, role=r.role or roles[r.name],
                                    running=running_gap(r, module) if module is not None
                                    else None)
        out.append(r)
    return out


def running_dict(g: RunningGap | None) -> dict[str, Any] | None:
    """inspect.json's `running` entry of a layer."""
    if g is None:
        return None
    return {"channels": g.channels, "samples": g.samples, "mean_gap": g.mean_gap,
            "mean_gap_channel": g.mean_gap_channel, "var_ratio": g.var_ratio,
            "log2_var_ratio_rms": g.log2_var_ratio_rms}
