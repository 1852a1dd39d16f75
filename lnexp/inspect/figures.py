"""Figures of `lnexp inspect`: each function builds and returns a matplotlib Figure (object
API, Agg canvas, no pyplot state); lnexp.inspect.files saves them."""

from __future__ import annotations

from collections import Counter

import numpy as np
from matplotlib import colormaps
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import LogNorm, TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lnexp.inspect.outcome import InspectOutcome, LayerReport

PRE, POST = "#1f77b4", "#2ca02c"  # blue before the norm, green after (as in lnexp run)
# Layers without a weight or bias (or with fewer dims) leave NaN cells: grey, not a colour.
_GAMMA_CMAP = colormaps["viridis"].with_extremes(bad="#c8c8c8")
_BETA_CMAP = colormaps["RdBu_r"].with_extremes(bad="#c8c8c8")


def _new_figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _title(o: InspectOutcome) -> str:
    n = o.inputs["count"]
    what = f"{n} inputs" + (f", {o.inputs['tokens']} tokens" if o.inputs.get("tokens") else "")
    return f"{o.model['name']} ({o.model['class']}): {what}"


def _matrix(rows: list[np.ndarray | None]) -> np.ndarray:
    """Stack per-layer vectors of possibly different lengths, padded with NaN."""
    width = max((r.size for r in rows if r is not None), default=1)
    out = np.full((len(rows), width), np.nan)
    for i, r in enumerate(rows):
        if r is not None:
            out[i, :r.size] = r
    return out


def _height(layers: int) -> float:
    return max(3.2, 1.4 + 0.26 * layers)


def _left(layers: list[LayerReport], width: float, fontsize: float, least: float) -> float:
    """The left margin (figure fraction) that fits the longest row label (name [role])."""
    longest = max((len(layer_label(r)) for r in layers), default=0)
    return min(0.6, max(least, (0.2 + longest * fontsize * 0.0075) / width))


def _two_panels(layers: list[LayerReport]) -> tuple[Figure, np.ndarray]:
    """Two stacked heatmap panels sharing the dim axis, margins fixed in inches."""
    height = 2 * _height(len(layers)) - 0.6
    fig = _new_figure(13, height)
    axes = fig.subplots(2, 1, sharex=True)
    fig.subplots_adjust(left=_left(layers, 13, 7, 0.22), right=0.9, top=1 - 0.65 / height,
                        bottom=0.6 / height, hspace=0.55 / (height / 2))
    axes[1].xaxis.set_major_locator(MaxNLocator(integer=True))
    return fig, axes


def layer_label(r: LayerReport) -> str:
    """A layer's name with its role (lnexp.inspect.roles), as the figures' rows show it."""
    return f"{r.name} [{r.role}]" if r.role else r.name


def _layer_axis(ax, layers: list[LayerReport]) -> None:
    ax.set_yticks(range(len(layers)), [layer_label(r) for r in layers], fontsize=7)


def absmax_heatmap(o: InspectOutcome) -> Figure:
    """max |x| per hidden dim (columns) for every norm layer (rows), before and after it."""
    layers = o.layers
    pre = _matrix([r.pre.per_dim.absmax for r in layers])
    post = _matrix([r.post.per_dim.absmax if r.post else None for r in layers])
    finite = np.concatenate([pre[np.isfinite(pre) & (pre > 0)], post[np.isfinite(post) &
                                                                      (post > 0)]])
    lo = max(float(np.percentile(finite, 1)), 1e-6) if finite.size else 1e-3
    hi = float(finite.max()) if finite.size else 1.0
    fig, axes = _two_panels(layers)
    for ax, data, what in ((axes[0], pre, "input (before the norm)"),
                           (axes[1], post, "output (after the norm)")):
        im = ax.imshow(np.clip(data, lo, None), aspect="auto", interpolation="nearest",
                       norm=LogNorm(vmin=lo, vmax=hi), cmap="magma")
        _layer_axis(ax, layers)
        ax.set_title(f"max |x| per hidden dim — {what}", fontsize=10, loc="left")
        # name the largest outlier dims on top of their columns
        for r_i, r in enumerate(layers):
            stage = r.pre if ax is axes[0] else r.post
            if stage is None:  # the output was not measured: say so on its empty row
                ax.text(0.5, r_i, "not measured", transform=ax.get_yaxis_transform(),
                        ha="center", va="center", fontsize=8, color="0.35")
            elif stage.outliers and stage.outliers[0].ratio >= 10:
                d = stage.outliers[0].dim
                ax.annotate(f"dim {d}: {stage.outliers[0].ratio:.0f}×", (d, r_i), xytext=(5, 0),
                            textcoords="offset points", va="center", fontsize=7,
                            color="#00c8ff", fontweight="bold")
    axes[1].set_xlabel("hidden dim (channel)")
    top, bottom = axes[0].get_position().y1, axes[1].get_position().y0
    cax = fig.add_axes((0.915, bottom, 0.012, top - bottom))
    fig.colorbar(im, cax=cax, label="max |x| over tokens (log)")
    fig.suptitle(f"{_title(o)} — outlier dims are bright columns", fontsize=11, x=0.22,
                 ha="left")
    return fig


def token_variance(o: InspectOutcome) -> Figure:
    """Per-token variance (over the normalized dims) before and after each norm, one row per
    layer: median (dot), p25–p75 (thick), p1–p99 (thin), max (x)."""
    layers = o.layers
    height = _height(len(layers)) + 0.9
    fig = _new_figure(10, height)
    ax = fig.subplots()
    fig.subplots_adjust(left=_left(layers, 10, 8, 0.3), right=0.97,
                        top=1 - min(0.14 * height, 0.75) / height,
                        bottom=min(0.16 * height, 0.85) / height)
    y = np.arange(len(layers))
    for off, colour, label, get in ((-0.17, PRE, "input (before the norm)", lambda r: r.pre),
                                    (0.17, POST, "output (after, γ and β applied)",
                                     lambda r: r.post)):
        t = [get(r).per_token if get(r) is not None else None for r in layers]
        nan = float("nan")  # an output not measured draws nothing on its row
        q = {k: np.array([s.var_quantiles[k] if s else nan for s in t])
             for k in ("p1", "p25", "p50", "p75", "p99")}
        mx = np.array([s.var_max if s else nan for s in t])
        ys = y + off
        ax.hlines(ys, q["p1"], q["p99"], color=colour, lw=1.2, alpha=0.8)
        ax.hlines(ys, q["p25"], q["p75"], color=colour, lw=5, alpha=0.85)
        ax.plot(q["p50"], ys, "o", color="white", mec=colour, mew=1.5, ms=5, label=label)
        ax.plot(mx, ys, "x", color=colour, ms=6, mew=1.5)
    ax.set_xscale("log")
    ax.set_yticks(y, [layer_label(r) for r in layers], fontsize=8)
    ax.set_ylim(len(layers) - 0.5, -0.5)  # forward order, top to bottom
    ax.set_xlabel("per-token variance over the normalized dims (biased, log scale)")
    ax.grid(True, axis="x", which="major", alpha=0.3)
    ax.plot([], [], "x", color="0.3", label="max over tokens")
    ax.legend(loc="lower right", fontsize=8, title="dot median · bar p25–p75 · line p1–p99",
              title_fontsize=8, framealpha=0.9)
    ax.set_title(f"{_title(o)}\nvariance of each token before and after each norm",
                 fontsize=10, loc="left")
    return fig


def weight_profile(o: InspectOutcome) -> Figure:
    """The learned scale γ and shift β per dim (columns) of every norm layer (rows)."""
    layers = o.layers
    w = _matrix([r.weight.values if r.weight is not None else None for r in layers])
    b = _matrix([r.bias.values if r.bias is not None else None for r in layers])
    fig, axes = _two_panels(layers)
    for i, (ax, data, name) in enumerate(((axes[0], w, "γ (weight, scale)"),
                                          (axes[1], b, "β (bias, shift)"))):
        finite = data[np.isfinite(data)]
        if i == 0:  # γ: the full range, since its extremes are the finding
            lo = min(0.0, float(finite.min())) if finite.size else 0.0
            hi = float(finite.max()) if finite.size else 1.0
            im = ax.imshow(data, aspect="auto", interpolation="nearest", cmap=_GAMMA_CMAP,
                           vmin=lo, vmax=hi)
            what = f"range {lo:.3g} … {hi:.3g}"
        else:  # β: centred on 0, clipped at the 99.5th percentile of |β|
            lim = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
            lim = lim or 1.0
            im = ax.imshow(data, aspect="auto", interpolation="nearest", cmap=_BETA_CMAP,
                           norm=TwoSlopeNorm(vcenter=0.0, vmin=-lim, vmax=lim))
            what = f"colours clipped at ±{lim:.3g}"
        if np.isnan(data).any():
            what += "; grey: none"
        _layer_axis(ax, layers)
        ax.set_title(f"{name} per dim; {what}", fontsize=10, loc="left")
        pos = ax.get_position()
        cax = fig.add_axes((0.915, pos.y0, 0.012, pos.height))
        fig.colorbar(im, cax=cax)
        if i == 0:  # ring the near-zero γ (dims the layer switches off)
            for r_i, r in enumerate(layers):
                if r.weight is None or r.weight.values.size < 2:
                    continue
                scale = float(np.median(np.abs(r.weight.values)))
                dead = np.flatnonzero(np.abs(r.weight.values) < 1e-6 * scale)
                ax.plot(dead, np.full(dead.size, r_i), "o", mfc="none", mec="red", mew=1.5,
                        ms=9)
                for d in dead[:3]:
                    ax.annotate(f"γ[{d}]≈0", (d, r_i), xytext=(0, 9), ha="center",
                                textcoords="offset points", fontsize=7, color="red",
                                fontweight="bold", bbox={"boxstyle": "round,pad=0.15",
                                                         "fc": "white", "ec": "none",
                                                         "alpha": 0.85})
    axes[1].set_xlabel("hidden dim (channel)")
    fig.suptitle(f"{_title(o)} — learned affine parameters of each norm", fontsize=11, x=0.22,
                 ha="left")
    return fig


MAX_NAMED = 60  # tick labels with every layer name up to this many layers


def batchnorm_running(o: InspectOutcome) -> Figure | None:
    """Three panels over the BN layers in forward order: the mean gap (|μ_data − μ_running| in
    running standard deviations, per channel: median, p90, max), the variance ratio
    (σ²_data / σ²_running per channel: median, p10–p90, min–max; log scale) and the layer's
    output change in train mode vs eval mode. None when no layer has running statistics."""
    rows = [r for r in o.layers if r.running is not None]
    if not rows:
        return None
    x = np.arange(len(rows))
    g = {k: np.array([r.running.mean_gap[k] for r in rows]) for k in ("median", "p90", "max")}
    v = {k: np.array([r.running.var_ratio[k] for r in rows])
         for k in ("median", "p10", "p90", "min", "max")}
    tv = np.array([r.batchnorm.rel_rms_diff if r.batchnorm and r.batchnorm.rel_rms_diff
                   is not None else np.nan for r in rows])
    fig = _new_figure(max(11.0, 3.0 + 0.17 * len(rows)), 10)
    axes = fig.subplots(3, 1, sharex=True)
    fig.subplots_adjust(left=0.09, right=0.98, top=0.88, bottom=0.16, hspace=0.35)
    ax = axes[0]
    ax.fill_between(x, 0, g["p90"], color=PRE, alpha=0.18, label="channels up to p90")
    ax.plot(x, g["median"], "o-", color=PRE, ms=3, label="median channel")
    ax.plot(x, g["max"], "v", color="#d62728", ms=4, label="largest channel")
    ax.set_ylabel("|μ data − μ running|\n/ σ running")
    ax.set_ylim(0, max(float(np.nanmax(g["max"])), 1e-9) * 1.35)  # room for the legend
    ax.set_title("mean: how far the data's channel mean sits from the running mean",
                 fontsize=10, loc="left")
    ax = axes[1]
    ax.fill_between(x, v["min"], v["max"], color=POST, alpha=0.12, label="min–max")
    ax.fill_between(x, v["p10"], v["p90"], color=POST, alpha=0.3, label="p10–p90")
    ax.plot(x, v["median"], "o-", color=POST, ms=3, label="median channel")
    ax.axhline(1.0, color="0.3", lw=0.8, ls="--")
    ax.set_yscale("log", base=2)
    lo, hi = float(np.nanmin(v["min"])), float(np.nanmax(v["max"]))
    ax.set_ylim(min(lo, 0.5) / 1.5, max(hi, 2.0) * (hi / min(lo, 0.5)) ** 0.3)
    ax.set_ylabel("σ² data / σ² running")
    ax.set_title("variance: 1 when the data's spread matches the running variance",
                 fontsize=10, loc="left")
    ax = axes[2]
    ax.bar(x, tv * 100, color="0.45", width=0.7)
    ax.set_ylabel("train vs eval\noutput, rms %")
    m = o.batchnorm_model
    whole = ""
    if m is not None and m.output_rel_rms_diff is not None:
        whole = f"\nwhole model in train mode: output changes {m.output_rel_rms_diff:.0%} (rms)"
        if m.predictions:
            whole += f", {m.predictions_changed} of {m.predictions} predictions change"
    ax.set_title(f"output change, each layer alone in train mode (batch "
                 f"{o.options['batch_size']}){whole}", fontsize=10, loc="left")
    for a in axes[:2]:
        a.legend(fontsize=7, loc="upper left", ncol=3, framealpha=0.85)
    for a in axes:
        a.grid(True, axis="y", alpha=0.3)
    if len(rows) <= MAX_NAMED:
        axes[2].set_xticks(x, [r.name for r in rows], rotation=90,
                           fontsize=6 if len(rows) > 20 else 8)
    roles = Counter(r.role or "no role" for r in rows)
    axes[2].set_xlabel("BatchNorm layer, forward order (role: "
                       + ", ".join(f"{k} ×{n}" for k, n in roles.most_common()) + ")")
    axes[2].set_xlim(-0.6, len(rows) - 0.4)
    samples = rows[0].running.samples
    fig.suptitle(f"{_title(o)}\nBatchNorm running statistics vs these inputs "
                 f"({samples:,} values per channel at the first layer)", fontsize=11, x=0.09,
                 ha="left")
    return fig


# A function may return None: that figure does not apply to this model (no file is written).
FIGURES = {"absmax": absmax_heatmap, "token_variance": token_variance,
           "weights": weight_profile, "batchnorm": batchnorm_running}
