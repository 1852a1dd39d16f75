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


def _pass_through() -> tuple[type, ...]:
    from torch import nn
    return (nn.Identity, nn.modules.padding._ConstantPadNd, nn.modules.padding._ReflectionPadNd,
            nn.modules.padding._ReplicationPadNd)

@dataclass(frozen=True)
class RunningGap:
    """Per-channel disagreement of the data with a BatchNorm's running statistics."""

    channels: int
    samples: int  # values per channel the batch statistics are over (inputs × positions)
    mean_gap: dict[str, float]  # median, p90, max over channels
    mean_gap_channel: int  # the channel with the largest mean gap
    var_ratio: dict[str, float]  # median, p10, p90, min, max over channels
    log2_var_ratio_rms: float  # rms over channels of log2(var_ratio): 0 when they agree

    def as_dict(self) -> dict[str, Any]:
        """inspect.json's entry (outcome.py calls this, so it need not import this module)."""
        return running_dict(self)  # type: ignore[return-value]

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


def conv_bn_roles(model: Any) -> dict[str, str]:
    """`conv-BN` for each BatchNorm whose preceding module (in registration order; a conv's
    own children, e.g. a same-padding layer, and padding/identity modules skipped) is a
    convolution, `BN` for the other BatchNorms."""
    from torch import nn

    roles: dict[str, str] = {}
    prev: nn.Module | None = None
    inside = ""  # the conv whose children are being walked
    for name, m in model.named_modules():
        if inside and name.startswith(inside + "."):
            continue
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            roles[name] = "conv-BN" if isinstance(prev, nn.modules.conv._ConvNd) else "BN"
        if isinstance(m, nn.modules.conv._ConvNd):
            inside = name
        if (not any(True for _ in m.children()) and not isinstance(m, _pass_through())) \
                or isinstance(m, nn.modules.conv._ConvNd):
            prev = m
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


def notes(o: Any) -> list[str]:
    """Lines for the findings: where the running statistics disagree most with these inputs,
    and what the model read from them (top class per image, or the pitch)."""
    lines: list[str] = []
    rows = [r for r in o.layers if r.running is not None]
    if rows:
        v = max(rows, key=lambda r: r.running.log2_var_ratio_rms)
        m = max(rows, key=lambda r: r.running.mean_gap["max"])
        lines.append(f"BatchNorm running statistics vs these {o.inputs['count']} inputs: "
                     f"{v.name}'s channel variances differ most (median data/running ratio "
                     f"{v.running.var_ratio['median']:.3g}, rms |log2| "
                     f"{v.running.log2_var_ratio_rms:.2f}); {m.name} channel "
                     f"{m.running.mean_gap_channel}'s mean sits "
                     f"{m.running.mean_gap['max']:.3g} running σ from the running mean")
    p = o.predictions or {}
    if p.get("kind") == "imagenet_classes":
        lines += [f"{row['file']}: ImageNet class {row['top'][0]['class']} "
                  f"(p {row['top'][0]['p']:.2f})" for row in p["inputs"][:3] if row["top"]]
    elif p.get("kind") == "pitch" and p.get("frames"):
        lines.append(f"pitch: median {p['hz']['median']:.1f} Hz over {p['frames']} frames "
                     f"({p['voiced_frames']} with confidence ≥ 0.5)")
    return lines
