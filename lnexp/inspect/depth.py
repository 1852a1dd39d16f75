"""Figures of the depth measurements (massive activations, kurtosis, S-curves, layer
skipping, int8 error), drawn for one model or several side by side: the x axis is depth
normalised to 0–1 (block index / (blocks − 1), or norm layer index / (layers − 1)), so models
of different depth share it. Each function takes a list of InspectOutcomes and returns a
matplotlib Figure (object API, no pyplot), or None when no outcome has that measurement.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from matplotlib.figure import Figure

from lnexp.inspect.figures import POST, PRE, _new_figure
from lnexp.inspect.outcome import InspectOutcome

COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2")


def _name(o: InspectOutcome) -> str:
    return str(o.model["name"])


def _pos(n: int) -> np.ndarray:
    return np.arange(n) / max(n - 1, 1)


def _finish(fig: Figure, ax, title: str, ylabel: str, logy: bool, legend: bool = True) -> None:
    ax.set_xlabel("depth (0 = first, 1 = last)")
    ax.set_ylabel(ylabel)
    ax.set_xlim(-0.03, 1.03)
    if logy:
        ax.set_yscale("log")
    ax.grid(True, alpha=0.3)
    if legend:
        ax.legend(fontsize=8, framealpha=0.9)
    ax.set_title(title, fontsize=10, loc="left")


def _depth_axes() -> tuple[Figure, Any]:
    """One panel over depth, the size and margins every figure here shares."""
    fig = _new_figure(9, 4.8)
    ax = fig.subplots()
    fig.subplots_adjust(left=0.1, right=0.97, top=0.86, bottom=0.13)
    return fig, ax


def massive(outcomes: list[InspectOutcome]) -> Figure | None:
    """The largest |x| of each block's output / its median |x|, over depth; the top entry's
    token and dim written at each model's largest."""
    have = [o for o in outcomes if o.massive]
    if not have:
        return None
    fig, ax = _depth_axes()
    for i, o in enumerate(have):
        c = COLOURS[i % len(COLOURS)]
        # a median |x| of 0 (e.g. after ReLU6, most of a CNN's outputs) makes the ratio inf:
        # not drawable on a log axis, so such blocks are gaps
        ratio = [b.top[0].ratio if b.top and math.isfinite(b.top[0].ratio) else math.nan
                 for b in o.massive]
        depth = [b.depth for b in o.massive]
        ax.plot(depth, ratio, "o-", color=c, ms=4, label=_name(o))
        if all(math.isnan(r) for r in ratio):
            continue
        j = int(np.nanargmax(ratio))
        e = o.massive[j].top[0]
        right = depth[j] > 0.5  # the label goes towards the middle, never off the canvas
        ax.annotate(f"{e.value:.4g} on {e.token or f'input {e.input}'!s} (pos {e.position}), "
                    f"dim {e.dim}: {e.ratio:,.0f}×", (depth[j], ratio[j]),
                    xytext=(-6 if right else 6, 6), ha="right" if right else "left",
                    textcoords="offset points", fontsize=8, color=c)
    peak = max((b.top[0].ratio for o in have for b in o.massive
                if b.top and math.isfinite(b.top[0].ratio)), default=100.0)
    ax.set_ylim(top=max(peak, 100.0) * 4)  # room for the label above the peak
    ax.axhline(100, color="0.4", ls=":", lw=1)
    ax.text(0.01, 100, "100× (massive)", fontsize=7, color="0.4", ha="left", va="bottom",
            transform=ax.get_yaxis_transform())
    _finish(fig, ax, "massive activations: largest |x| of each block's output / median |x| of "
            "that output", "largest |x| / median |x| (log)", True)
    return fig


def kurtosis(outcomes: list[InspectOutcome]) -> Figure | None:
    """Kurtosis of each norm layer's input (solid) and output (dashed) over depth."""
    have = [o for o in outcomes if any(r.tails_pre for r in o.layers)]
    if not have:
        return None
    fig, ax = _depth_axes()
    for i, o in enumerate(have):
        c = COLOURS[i % len(COLOURS)] if len(have) > 1 else PRE
        x = _pos(len(o.layers))
        pre = [r.tails_pre.kurtosis if r.tails_pre else math.nan for r in o.layers]
        post = [r.tails_post.kurtosis if r.tails_post else math.nan for r in o.layers]
        ax.plot(x, pre, "o-", color=c, ms=4, label=f"{_name(o)}: input")
        ax.plot(x, post, "s--", color=c if len(have) > 1 else POST, ms=3, alpha=0.8,
                label=f"{_name(o)}: output")
    ax.axhline(3, color="0.4", ls=":", lw=1)
    ax.text(0.0, 3, "Gaussian: 3", fontsize=7, color="0.4", va="bottom")
    _finish(fig, ax, "kurtosis of every norm layer's input and output (all tokens × dims)",
            "kurtosis (log)", True)
    return fig


def s_curves(o: InspectOutcome) -> Figure | None:
    """One panel per selected layer: x against x̂ (before γ, β), the fitted s·tanh(αx)."""
    if not o.curves:
        return None
    n = len(o.curves)
    cols = min(n, 4)
    rows = math.ceil(n / cols)
    fig = _new_figure(max(3.3 * cols, 7.5), 3.2 * rows + 0.5)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).reshape(-1)
    fig.subplots_adjust(left=0.07, right=0.98, top=1 - 0.75 / (3.2 * rows + 0.5),
                        bottom=0.45 / (3.2 * rows + 0.5), wspace=0.3, hspace=0.45)
    for ax, c in zip(axes, o.curves, strict=False):
        k = c.x.size - c.extremes
        ax.plot(c.x[:k], c.xhat[:k], ".", ms=1.5, color=PRE, alpha=0.35, rasterized=True)
        ax.plot(c.x[k:], c.xhat[k:], ".", ms=4, color="#d62728", label="largest |x|")
        lim = float(np.max(np.abs(c.x))) if c.x.size else 1.0
        grid = np.linspace(-lim, lim, 400)
        if math.isfinite(c.alpha):
            ax.plot(grid, c.scale * np.tanh(c.alpha * grid), "-", color="k", lw=1.2,
                    label=f"{c.scale:.3g}·tanh({c.alpha:.3g}x)")
        bulk = float(np.percentile(np.abs(c.x[:k]), 99)) if k else lim
        if bulk > 0 and lim > 50 * bulk:  # a few huge inputs: linear near 0, log beyond
            ax.set_xscale("symlog", linthresh=bulk)
            ax.set_xlabel("input x (linear to ±p99 of |x|, log beyond)", fontsize=8)
        else:
            ax.set_xlabel("input x", fontsize=8)
        ax.set_title(f"{c.name}\nα = {c.alpha:.3g}, R² tanh {c.r2_tanh:.3f} vs line "
                     f"{c.r2_linear:.3f}", fontsize=8, loc="left")
        ax.set_ylabel("x̂ (output before γ, β)", fontsize=8)
        ax.tick_params(labelsize=7)
        ax.grid(True, alpha=0.3)
        ax.legend(fontsize=7, loc="upper left", framealpha=0.9)
    for ax in axes[n:]:
        ax.set_visible(False)
    fig.suptitle(f"{_name(o)}: the norm's S-curve, every entry of a sample of tokens × dims",
                 fontsize=10, x=0.07, ha="left")
    return fig


def alpha(outcomes: list[InspectOutcome]) -> Figure | None:
    """The fitted α of each selected layer over depth, per model."""
    have = [o for o in outcomes if o.curves]
    if not have:
        return None
    fig, ax = _depth_axes()
    for i, o in enumerate(have):
        ax.plot([c.position for c in o.curves], [c.alpha for c in o.curves], "o-",
                color=COLOURS[i % len(COLOURS)], label=_name(o))
    _finish(fig, ax, "S-curve: fitted α of s·tanh(αx) per sampled norm layer", "α (log)", True)
    return fig


def layer_skip(outcomes: list[InspectOutcome]) -> Figure | None:
    """Left: the measure with each block replaced by the identity, over depth. Right: the
    massive-activation intervention (untouched, zeroed, set to mean, random control)."""
    have = [o for o in outcomes if o.ablation is not None]
    if not have:
        return None
    fig = _new_figure(12, 4.8)
    ax, bx = fig.subplots(1, 2, gridspec_kw={"width_ratios": (2.2, 1)})
    fig.subplots_adjust(left=0.07, right=0.97, top=0.86, bottom=0.15, wspace=0.25)
    measures = {o.ablation.measure for o in have}  # type: ignore[union-attr]
    label = "next-token loss (nats/token)" if measures == {"next_token_loss"} else \
        "relative output change" if measures == {"output_change"} else "measure"
    width = 0.8 / len(have)
    for i, o in enumerate(have):
        a = o.ablation
        c = COLOURS[i % len(COLOURS)]
        ax.plot([s.depth for s in a.skips], [s.value for s in a.skips], "o-", color=c,  # type: ignore[union-attr]
                label=f"{_name(o)} (untouched {a.baseline:.3g})")  # type: ignore[union-attr]
        ax.axhline(a.baseline, color=c, ls=":", lw=1)  # type: ignore[union-attr]
        iv = a.intervention  # type: ignore[union-attr]
        if iv is None:
            continue
        vals = [a.baseline, iv.zeroed, iv.mean, iv.random]  # type: ignore[union-attr]
        xs = np.arange(4) + (i - (len(have) - 1) / 2) * width
        bars = bx.bar(xs, vals, width, color=c, label=_name(o))
        bx.bar_label(bars, fmt="%.3g", fontsize=7)
    _finish(fig, ax, "each block replaced by the identity", label, False)
    if all(o.ablation.intervention is None for o in have):  # type: ignore[union-attr]
        bx.text(0.5, 0.5, "not run: no block output reaches\nthe massive ratio "
                f"({have[0].options.get('massive_ratio', 100):g}× its median |x|)",
                transform=bx.transAxes, ha="center", va="center", fontsize=9, color="0.3")
    bx.set_xticks(range(4), ["untouched", "massive\nzeroed", "massive\nto mean",
                             "random\nzeroed"], fontsize=8)
    bx.set_xlim(-0.6, 3.6)
    bx.set_title("massive-activation intervention", fontsize=10, loc="left")
    bx.grid(True, axis="y", alpha=0.3)
    if len(have) > 1 and bx.get_legend_handles_labels()[0]:
        bx.legend(fontsize=8)
    return fig


def int8(outcomes: list[InspectOutcome]) -> Figure:
    """int8 SQNR of each norm's input, one scale per tensor (solid) vs per token (dashed)."""
    fig, ax = _depth_axes()
    for i, o in enumerate(outcomes):
        c = COLOURS[i % len(COLOURS)]
        x = _pos(len(o.layers))
        ax.plot(x, [r.quant.per_tensor_sqnr_db for r in o.layers], "o-", color=c, ms=4,
                label=f"{_name(o)}: per tensor")
        ax.plot(x, [r.quant.per_token_sqnr_db for r in o.layers], "s--", color=c, ms=3,
                alpha=0.8, label=f"{_name(o)}: per token")
    _finish(fig, ax, "int8 error of every norm layer's input (higher is better)",
            "SQNR (dB)", False)
    return fig


# single-model figures added to an inspect folder's figures/ (None: not measured)
SINGLE = {"massive": lambda o: massive([o]), "kurtosis": lambda o: kurtosis([o]),
          "s_curves": s_curves, "layer_skip": lambda o: layer_skip([o])}
# side-by-side figures of `lnexp inspect A B ...`
MULTI = {"massive": massive, "kurtosis": kurtosis, "alpha": alpha, "layer_skip": layer_skip,
         "int8": int8}
