"""Figures for one run. Each function builds and returns a Figure; lnexp.store.figures saves
it.

Object API only (no pyplot global state), Agg canvas, so this works headless and in threads.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator, NullLocator

from lnexp.numbers import shape_words, show_value
from lnexp.registry import AXES, METRIC_TITLES

if TYPE_CHECKING:  # experiment imports torch; the sweep figure is drawn without it
    from lnexp.results import CompareResult, LayerStats, RunResult

PRE, POST = "#1f77b4", "#2ca02c"  # blue before the norm, green after (as in the tutorial)
MAX_POINTS = 2000  # per-index curves longer than this are thinned to every k-th point
MAX_ROWS = 1000  # heatmaps with more samples show every k-th row


def _new_figure(width: float, height: float) -> Figure:
    # Fixed margins instead of constrained layout: the layout engine re-measures every text
    # on each draw and doubled the time to save these figures.
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _hist(ax: Axes, data: np.ndarray, bins: np.ndarray, color: str, label: str) -> None:
    """A filled histogram drawn as one artist (ax.hist makes one patch per bin)."""
    counts, edges = np.histogram(np.asarray(data, dtype=np.float64), bins=bins)
    ax.stairs(counts, edges, fill=True, color=color, alpha=0.5, label=label)


def bin_edges(arrays: list[np.ndarray], bins: int) -> np.ndarray:
    """`bins` equal bins over the finite values of `arrays`, for any finite data: float64
    (np.histogram_bin_edges on float32 values near 1e38 overflows their range: "Too many bins
    for data range"), a constant or a single value gets a unit-wide range around it, no
    finite value at all gets [-0.5, 0.5]."""
    flat = np.concatenate([_finite(np.asarray(a, dtype=np.float64)) for a in arrays]
                          or [np.empty(0)])
    lo, hi = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 0.0)
    if not hi > lo or not np.isfinite(hi - lo):
        if hi > lo:  # hi - lo overflows float64: split it so every step stays finite
            t = np.linspace(0.0, 1.0, bins + 1)
            return lo * (1 - t) + hi * t
        half = max(0.5, abs(lo) * 1e-3)
        lo, hi = lo - half, hi + half
    return np.linspace(lo, hi, bins + 1)


def _thin(n: int, limit: int) -> tuple[np.ndarray, int]:
    step = max(1, -(-n // limit))
    return np.arange(0, n, step), step


def _layer_name(cfg: Any) -> str:
    """'Linear(100→50)', 'Conv2d(1→32, 3×3)', 'Linear(8→32) per token'."""
    m = cfg.model
    if cfg.data.layout == "image":
        return f"Conv2d({m.in_features}→{m.out_features}, {m.kernel_size}×{m.kernel_size})"
    per = " per token" if cfg.data.layout == "sequence" else ""
    return f"Linear({m.in_features}→{m.out_features}){per}"


def _describe(result: RunResult) -> str:
    cfg = result.config
    m = cfg.model
    layer = f"{_layer_name(cfg)} → " if m.linear else ""
    source = "  ·  scikit-learn digits" if cfg.data.source == "digits" else ""
    return (f"{layer}{result.norm.title} ({m.norm}), {m.mode} mode  ·  {shape_words(cfg)}"
            f"{source}  ·  seed {cfg.seed}")


def _axis_title(cfg: Any, axis: str) -> str:
    """'Per-feature … (over samples, dim 0)' on features; 'Per-channel … (over N·H·W …)'."""
    tutorial = {"per_feature": "Per-feature {} (over samples, dim 0)",
                "per_sample": "Per-sample {} (over features, dim 1)"}
    if cfg.data.layout == "features" and axis in tutorial:
        return tutorial[axis]
    from lnexp.explain import axis_descriptions

    unit, over = axis_descriptions(cfg)[axis]
    return f"{axis.replace('_', '-')} {{}}: one per {unit},\nover {over}"


def as_matrix(a: np.ndarray, layout: str) -> np.ndarray:
    """A batch as a 2-D (rows, channels) matrix whose columns are the per-feature axis:
    (N, C) as is; images (N·H·W, C), pixels of sample 0 first; sequences (N·T, C)."""
    if layout == "image":
        return a.transpose(0, 2, 3, 1).reshape(-1, a.shape[1])
    return a.reshape(-1, a.shape[-1])


def _per_index(ax: Axes, pre: np.ndarray, post: np.ndarray, what: str, axis_label: str,
               target: float) -> None:
    idx, step = _thin(len(pre), MAX_POINTS)
    style = {"marker": "o", "markersize": 3, "linewidth": 1} if len(idx) <= 200 else {
        "linewidth": 0.8}
    # "before" wide and underneath, "after" narrow on top: where the norm changes nothing
    # (none) both colours still show.
    wide = {**style, "linewidth": 3.2, "alpha": 0.6}
    if "markersize" in style:
        wide["markersize"] = 6
    ax.plot(idx, pre[idx], color=PRE, label="before", **wide)
    ax.plot(idx, post[idx], color=POST, label="after", **style)
    ax.axhline(target, color="0.3", linestyle="--", linewidth=1, label=f"{target:g}")
    thinned = f" (1 in {step} shown)" if step > 1 else ""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    pad = max(0.5, 0.02 * len(pre))
    ax.set_xlim(-pad, len(pre) - 1 + pad)
    ax.set_xlabel(f"{axis_label} index{thinned}")
    ax.set_ylabel(what)
    ax.grid(alpha=0.3)


def overview(result: RunResult) -> Figure:
    """The tutorial's 2x3 figure, made honest.

    Columns: distribution | per feature (over samples, dim 0) | per sample (over features,
    dim 1). Top row: all values and means; bottom row: the chosen sample and biased variances.
    """
    cfg = result.config
    pre_s, post_s = result.pre_stats, result.post_stats
    # The third column shows the norm's own axis when it is not one of the first two (tokens
    # for ln on sequences, instances, groups: also on the features layout).
    own = result.norm.standardizes_axis
    third = own if own in pre_s.axes and own not in ("per_feature", "per_sample") \
        else "per_sample"
    fig = _new_figure(16, 9)
    # axis titles of two lines
    two_line = cfg.data.layout != "features" or third != "per_sample"
    ax = fig.subplots(2, 3, gridspec_kw={"left": 0.045, "right": 0.99, "bottom": 0.065,
                                         "top": 0.83 if two_line else 0.86, "wspace": 0.2,
                                         "hspace": 0.36 if two_line else 0.3})
    name = cfg.model.norm

    bins = bin_edges([result.pre, result.post], 60)
    for data, color, label, g in ((result.pre, PRE, "before", pre_s.global_),
                                  (result.post, POST, "after", post_s.global_)):
        _hist(ax[0, 0], _finite(data), bins, color,
              f"{label}: mean {_r(g.mean)}, var {g.var:.3f}")
    ax[0, 0].set_title(f"All values before / after {name}{_kept(result)}")
    ax[0, 0].set_xlabel("activation value")
    ax[0, 0].set_ylabel("count")
    ax[0, 0].legend(loc="upper right", fontsize=9)

    _sample_panel(ax[1, 0], result)

    unit = "feature" if cfg.data.layout == "features" else "channel"
    third_unit = {"per_sample": "sample", "per_token": "token (n·T + t)",
                  "per_instance": "(sample, channel) (n·C + c)",
                  "per_group": "(sample, group) (n·G + g)"}[third]
    _per_index(ax[0, 1], pre_s.per_feature.mean, post_s.per_feature.mean, "mean", unit, 0)
    ax[0, 1].set_title(_axis_title(cfg, "per_feature").format("mean"))
    _per_index(ax[1, 1], pre_s.per_feature.var, post_s.per_feature.var, "variance (biased, /n)",
               unit, 1)
    ax[1, 1].set_title(_axis_title(cfg, "per_feature").format("variance"))
    _per_index(ax[0, 2], pre_s.axis(third).mean, post_s.axis(third).mean, "mean", third_unit, 0)
    ax[0, 2].set_title(_axis_title(cfg, third).format("mean"))
    _per_index(ax[1, 2], pre_s.axis(third).var, post_s.axis(third).var, "variance (biased, /n)",
               third_unit, 1)
    ax[1, 2].set_title(_axis_title(cfg, third).format("variance"))

    fig.suptitle(f"{result.norm.title}: {result.norm.summary}\n{_describe(result)}",
                 fontsize=13, y=0.995)
    handles, labels = ax[0, 1].get_legend_handles_labels()
    labels = [f"{name} {label}" if label in ("before", "after") else "target (0 for means, "
              "1 for variances)" for label in labels]
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.67, 0.935), ncol=3,
               fontsize=10, frameon=False)
    return fig


def _bars(ax: Axes, x: np.ndarray, heights: np.ndarray, width: float, color: str,
          label: str) -> None:
    """Bars from 0 to `heights` centred on `x`, as one PolyCollection (ax.bar makes one
    patch per bar, which made this panel the slowest part of the figure)."""
    from matplotlib.collections import PolyCollection

    h = np.nan_to_num(np.asarray(heights, dtype=float), nan=0.0, posinf=0.0, neginf=0.0)
    lo, hi = x - width / 2, x + width / 2
    verts = np.stack([np.column_stack([lo, np.zeros_like(h)]), np.column_stack([lo, h]),
                      np.column_stack([hi, h]), np.column_stack([hi, np.zeros_like(h)])], axis=1)
    ax.add_collection(PolyCollection(verts, facecolors=color, edgecolors="none", label=label))
    ax.update_datalim(verts.reshape(-1, 2))
    ax.autoscale_view()


def _sample_panel(ax: Axes, result: RunResult) -> None:
    i = result.config.sample_index
    pre, post = result.sample_pre, result.sample_post
    n = len(pre.values)
    if n <= 64:
        x = np.arange(n)
        w = 0.4
        _bars(ax, x - w / 2, pre.values, w, PRE,
              f"before: mean {_r(pre.mean)}, var {pre.var:.3f}")
        _bars(ax, x + w / 2, post.values, w, POST,
              f"after: mean {_r(post.mean)}, var {post.var:.3f}")
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set_xlabel("feature index")
        ax.set_ylabel("value")
        if n <= 20:
            ax.set_xticks(x)
    else:
        bins = bin_edges([pre.values, post.values], 40)
        _hist(ax, _finite(pre.values), bins, PRE,
              f"before: mean {_r(pre.mean)}, var {pre.var:.3f}")
        _hist(ax, _finite(post.values), bins, POST,
              f"after: mean {_r(post.mean)}, var {post.var:.3f}")
        ax.set_xlabel("activation value")
        ax.set_ylabel("count")
    what = "feature" if result.config.data.layout == "features" else "activation"
    ax.set_title(f"Sample {i}: its {n:,} {what} values (var biased)")
    ax.grid(alpha=0.3, axis="y")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # headroom: the legend never covers a bar
    ax.legend(loc="upper right", fontsize=9)



def _std_margins(top: Axes, right: Axes, std_max: float,
                 columns: tuple[np.ndarray, np.ndarray, str],
                 rows: tuple[np.ndarray, np.ndarray, str]) -> None:
    """The grey std bars above (one per column) and beside (one per row) a heatmap, each
    (values, bin edges, label), with a dashed line at 1 on a shared 0..std_max scale."""
    values, edges, label = columns
    top.stairs(values, edges, fill=True, color="0.45")
    top.axhline(1, color="k", linestyle="--", linewidth=1)
    top.set_ylim(0, std_max)
    top.set_ylabel(label, fontsize=9)
    top.tick_params(labelbottom=False)
    values, edges, label = rows
    right.stairs(values, edges, fill=True, color="0.45", orientation="horizontal")
    right.axvline(1, color="k", linestyle="--", linewidth=1)
    right.set_xlim(0, std_max)
    right.set_xlabel(label, fontsize=9)
    right.tick_params(labelleft=False)

def heatmap(result: RunResult) -> Figure:
    """The activation matrix (samples x features) before and after the norm.

    Margins show the biased std of every feature (top, over samples) and of every sample
    (right, over its features) on one shared scale, so the normalized axis is the flat one.
    """
    fig = _new_figure(16, 7.5)
    gs = fig.add_gridspec(4, 5, width_ratios=[6, 1.2, 0.55, 6, 1.2],
                          height_ratios=[1.2, 5, 0.5, 0.16], left=0.05, right=0.99, bottom=0.07,
                          top=0.87, wspace=0.04, hspace=0.1)
    rows, step = _thin(result.pre.shape[0], MAX_ROWS)
    n = result.config.data.n_samples
    kept = f", first {result.rows_kept:,} of {n:,}" if result.rows_kept < n else ""
    thinned = (f", 1 in {step} shown" if step > 1 else "") + kept
    name = result.config.model.norm
    stages = ((result.pre, result.pre_stats, f"before {name}", 0),
              (result.post, result.post_stats, f"after {name}", 3))
    std_max = max(float(np.nanmax(st.per_feature.std, initial=0)) for _, st, _, _ in stages)
    std_max = max(std_max, *(float(np.nanmax(st.per_sample.std, initial=0))
                             for _, st, _, _ in stages), 1.0) * 1.1
    # One colour scale for both matrices, so a colour means the same value before and after.
    finite = np.concatenate([_finite(result.pre[rows]), _finite(result.post[rows])])
    vmax = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    for data, st, label, col in stages:
        ax = fig.add_subplot(gs[1, col])
        top = fig.add_subplot(gs[0, col], sharex=ax)
        right = fig.add_subplot(gs[1, col + 1], sharey=ax)
        shown = data[rows]
        # y in sample indices, also when only every step-th row is shown
        im = ax.imshow(shown, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                       interpolation="nearest",
                       extent=(-0.5, shown.shape[1] - 0.5, len(rows) * step - 0.5, -0.5))
        ax.set_xlabel("feature (dim 1)")
        ax.set_ylabel(f"sample (dim 0{thinned})")
        feats = np.arange(len(st.per_feature.std))
        _std_margins(top, right, std_max,
                     (st.per_feature.std, np.append(feats, len(feats)) - 0.5, "std per\nfeature"),
                     (st.per_sample.std[rows], np.arange(len(rows) + 1) * step - 0.5,
                      "std per\nsample"))
        top.set_title(f"Activations {label}", fontsize=12)
        cax = fig.add_subplot(gs[3, col])
        fig.colorbar(im, cax=cax, orientation="horizontal",
                     label="activation value (one scale for both; clipped at the 99.5th "
                           "percentile of |x|)")
    fig.suptitle(f"Activation matrix: {result.norm.title} {result.norm.summary}\n"
                 f"{_describe(result)}  ·  grey bars: biased std, dashed line at 1", fontsize=13)
    return fig


def comparison(cmp: CompareResult) -> Figure:
    """One column per norm; rows: per-feature variance, per-sample variance (before in blue,
    after in green, shared y per row) and the activation heatmap after the norm (one shared
    colour scale). A norm that was not computed shows its reason instead."""
    outcomes = cmp.outcomes
    k = len(outcomes)
    width = max(7.0, 1.2 + 3.1 * k)
    fig = _new_figure(width, 10.5)
    height = 10.5
    gs = fig.add_gridspec(5, k, height_ratios=[1, 1, 1.6, 0.02, 0.07],
                          left=1.25 / width, right=1 - 0.2 / width, bottom=0.65 / height,
                          top=1 - 1.45 / height, wspace=0.12, hspace=0.42)
    done = [o.result for o in outcomes if o.result is not None]
    cfg = cmp.config
    n, c = cfg.data.n_samples, cfg.features
    features = cfg.data.layout == "features"

    def top(key: str) -> float:
        vals = [getattr(st, key).var for r in done for st in (r.pre_stats,
                                                                           r.post_stats)]
        return max([float(np.nanmax(v, initial=0)) for v in vals] + [1.0])

    tops = {"per_feature": top("per_feature"), "per_sample": top("per_sample")}
    post_all = np.concatenate([_finite(r.post) for r in done]) if done else np.zeros(1)
    vmax = float(np.percentile(np.abs(post_all), 99.5)) if post_all.size else 1.0
    vmax = vmax if vmax > 0 else 1.0
    image = None
    first: dict[int, Axes] = {}
    # The first computed column carries the y labels (bn may be missing in column 0).
    lead = next((j for j, o in enumerate(outcomes) if o.result is not None), 0)
    for j, o in enumerate(outcomes):
        axes = []
        for i in range(3):
            share = first.get(i) if i < 2 else None
            ax = fig.add_subplot(gs[i, j], sharey=share)
            first.setdefault(i, ax)
            axes.append(ax)
        verdict = _wrap(f"standardizes: {o.standardizes or 'not computed'}", 30)
        axes[0].set_title(f"{o.name}: {o.spec.title}\n{verdict}", fontsize=12,
                          fontweight="bold" if o.result is not None else "normal")
        if o.result is None:
            for ax in axes:
                ax.set_axis_off()
            axes[1].text(0.5, 0.5, _wrap(f"not computed: {o.why}", 34), ha="center",
                         va="center", fontsize=10, transform=axes[1].transAxes, wrap=True)
            continue
        r = o.result
        for ax, key, label in ((axes[0], "per_feature", "feature" if features else "channel"),
                               (axes[1], "per_sample", "sample")):
            pre = getattr(r.pre_stats, key).var
            post = getattr(r.post_stats, key).var
            idx, _ = _thin(len(pre), MAX_POINTS)
            style = {"marker": "o", "markersize": 2.5} if len(idx) <= 120 else {}
            # "after" first and thicker, so an unchanged curve (none) still shows both colours.
            ax.plot(idx, post[idx], color=POST, linewidth=2.2, label="after",
                    **{**style, "markersize": 4} if style else {})
            ax.plot(idx, pre[idx], color=PRE, linewidth=1, label="before", **style)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
            ax.set_xlim(-0.5, len(pre) - 0.5)
            ax.axhline(1, color="0.3", linestyle="--", linewidth=1)
            ax.set_xlabel(f"{label} index", fontsize=10)
            ax.grid(alpha=0.3)
            if tops[key] > 20:
                ax.set_yscale("symlog", linthresh=0.1)
            else:
                ax.set_ylim(0, tops[key] * 1.08)
            if j != lead:
                ax.tick_params(labelleft=False)
        if j == lead and features:
            axes[0].set_ylabel(f"per-feature variance\n(over {n} samples, dim 0)", fontsize=11)
            axes[1].set_ylabel(f"per-sample variance\n(over {c} features, dim 1)", fontsize=11)
        elif j == lead:
            over = {"image": ("N·H·W", "C·H·W"), "sequence": ("N·T", "T·C")}[cfg.data.layout]
            axes[0].set_ylabel(f"per-channel variance\n(over {over[0]})", fontsize=11)
            axes[1].set_ylabel(f"per-sample variance\n(over {over[1]})", fontsize=11)
            handles, labels = axes[0].get_legend_handles_labels()
            axes[0].legend(handles[::-1], labels[::-1], loc="upper right", fontsize=9)
        matrix = as_matrix(r.post, cfg.data.layout)
        rows, step = _thin(len(matrix), MAX_ROWS)  # a streamed run keeps its first rows
        image = axes[2].imshow(matrix[rows], aspect="auto", cmap="RdBu_r", vmin=-vmax,
                               vmax=vmax, interpolation="nearest",
                               extent=(-0.5, c - 0.5, len(rows) * step - 0.5, -0.5))
        axes[2].set_xlabel("feature (dim 1)" if features else "channel (C)", fontsize=10)
        axes[2].xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        axes[2].yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
        if j == lead:
            thinned = (f", 1 in {step} shown" if step > 1 else "") + (
                f", first {r.rows_kept:,} of {n:,}" if r.rows_kept < n else "")
            rows_are = {"features": "sample (dim 0", "image": "sample·pixel (n·H·W + p",
                        "sequence": "token (n·T + t"}[cfg.data.layout]
            axes[2].set_ylabel(f"activations after the norm\n{rows_are}{thinned})",
                               fontsize=11)
        else:
            axes[2].tick_params(labelleft=False)
    if image is not None:
        cax = fig.add_subplot(gs[4, max(0, k // 2 - 1): max(1, k // 2 + 1)])
        fig.colorbar(image, cax=cax, orientation="horizontal",
                     label="activation value after the norm (one scale for all; clipped at "
                           "the 99.5th percentile of |x|)")
    m = cfg.model
    layer = f"{_layer_name(cfg)} → norm" if m.linear else "norm only"
    kind = "Conv2d" if cfg.data.layout == "image" else "Linear"
    same = f"same inputs, same {kind} weights" if m.linear else "same inputs"
    fig.suptitle(f"{same[0].upper() + same[1:]}, one norm per column  ·  {layer}, "
                 f"{m.mode} mode  ·  {shape_words(cfg)}  ·  seed {cfg.seed}\n"
                 f"variances are biased (÷n); blue before the norm, green after; dashed line "
                 f"at 1", fontsize=13)
    return fig


def _wrap(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def _count(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k:,} {word}s"


def _kept(result: RunResult) -> str:
    """' (first 2,000 of 1,000,000 samples)' when a streamed run kept only some rows."""
    n = result.config.data.n_samples
    return f" (first {result.rows_kept:,} of {n:,} samples)" if result.rows_kept < n else ""


def _r(x: float) -> str:
    """Signed, 3 decimals, without a '-0.000'."""
    return f"{round(x, 3) + 0.0:+.3f}"


def _finite(a: np.ndarray) -> np.ndarray:
    flat = np.asarray(a).ravel()
    return flat[np.isfinite(flat)]



LayerSeries = tuple[str, "LayerStats"]  # (label, the run's per-block statistics)


def layer_profile(series: list[LayerSeries], title: str) -> Figure:
    """Four panels by block, one line per series: how far apart the samples are (spread, log),
    how alike they point (mean pairwise cosine), the weight-gradient norm (log) and the
    gradient relative to the weights (log).

    `compare` passes one series per norm; a run passes its own.
    """
    fig = _new_figure(15, 9.5)
    ax = fig.subplots(2, 2, gridspec_kw={"left": 0.065, "right": 0.985, "bottom": 0.06,
                                         "top": 0.88, "wspace": 0.18, "hspace": 0.3})
    panels = (
        (ax[0, 0], "spread", "Between-sample spread of each block's output (log)",
         "√(mean over features of the variance over samples)", True),
        (ax[0, 1], "cosine", "Mean pairwise cosine similarity of the samples",
         "cosine (1: every sample points the same way)", False),
        (ax[1, 0], "grad_norm", "Gradient norm of each block's weights (log)",
         "‖∂L/∂W‖ (Frobenius, all Linear weights of the block)", True),
        (ax[1, 1], "grad_over_weight", "Gradient norm / weight norm (log)",
         "‖∂L/∂W‖ / ‖W‖", True),
    )
    n = len(series)
    for j, (label, lay) in enumerate(series):
        x = np.arange(1, len(lay.names) + 1)
        # Later series thinner and on top, so identical curves still show every colour.
        style = {"marker": "o", "markersize": max(2.5, 6 - 1.2 * j)} if len(x) <= 40 else {}
        for a, attr, *_rest in panels:
            y = np.asarray(getattr(lay, attr), dtype=float)
            if _rest[-1]:
                y = np.where(y > 0, y, np.nan)  # log scale: zeros are gaps
            a.plot(x, y, label=label, linewidth=max(1.0, 2.6 - 0.5 * j) if n > 1 else 1.5,
                   **style)
    for a, _attr, head, ylabel, log in panels:
        a.set_title(head)
        a.set_ylabel(ylabel, fontsize=9.5)
        if log:
            a.set_yscale("log")
        a.xaxis.set_major_locator(MaxNLocator(integer=True))
        a.set_xlabel("block (1 = nearest the input)")
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=9.5)
    ax[0, 1].set_ylim(min(-0.05, ax[0, 1].get_ylim()[0]), 1.05)
    fig.suptitle(title, fontsize=13)
    return fig


def _stack(result: RunResult) -> str:
    m = result.config.model
    return (f"{m.depth} blocks, {m.placement} placement, {m.activation} activation, "
            f"{m.init} init (gain {m.gain:g}), width {m.hidden_width}  ·  "
            f"{result.config.data.n_samples} samples  ·  seed {result.config.seed}")


def layers(result: RunResult) -> Figure:
    """The run's per-layer profile at initialization (depth > 1)."""
    assert result.layers is not None
    lay = result.layers
    return layer_profile(
        [(f"{result.config.model.norm} (first/last grad {lay.first_over_last:.2g})", lay)],
        f"At initialization, one backward pass of MSE to a random target\n{_stack(result)}")


def _smooth(y: np.ndarray, k: int) -> np.ndarray:
    """k-step running mean; NaN where the window holds a non-finite value (a cumulative sum
    would carry one Inf into every later point and blank the whole curve)."""
    y = np.asarray(y, dtype=np.float64)
    if len(y) < k or k <= 1:
        return np.where(np.isfinite(y), y, np.nan)
    ok = np.isfinite(y)
    c = np.cumsum(np.insert(np.where(ok, y, 0.0), 0, 0.0))
    n = np.cumsum(np.insert(ok, 0, False).astype(np.int64))
    out = np.where(n[k:] - n[:-k] == k, (c[k:] - c[:-k]) / k, np.nan)
    return np.concatenate([np.full(k - 1, np.nan), out])


def _finite_or_nan(values: list[float]) -> np.ndarray:
    y = np.asarray(values, dtype=np.float64)
    return np.where(np.isfinite(y), y, np.nan)


def _first_nonfinite(y: np.ndarray) -> int | None:
    """The first step (1-based) at which `y` (steps, or steps x layers) is not finite."""
    bad = ~np.isfinite(np.asarray(y, dtype=np.float64))
    rows = bad.reshape(len(bad), -1).any(axis=1) if bad.size else bad
    return int(np.argmax(rows)) + 1 if rows.any() else None


def _note(ax: Axes, lines: list[str]) -> None:
    """What a panel could not draw, in its lower-left corner."""
    if lines:
        ax.text(0.01, 0.02, "\n".join(lines), transform=ax.transAxes, fontsize=9,
                color="firebrick", va="bottom", ha="left")


def training(result: RunResult) -> Figure:
    """Loss, held-out accuracy (eval vs train mode), and per-layer gradient norm and
    update/weight ratio over the steps."""
    tr = result.training
    assert tr is not None
    tc = result.config.train
    assert tc is not None
    fig = _new_figure(16, 10)
    ax = fig.subplots(2, 2, gridspec_kw={"left": 0.055, "right": 0.985, "bottom": 0.06,
                                         "top": 0.89, "wspace": 0.15, "hspace": 0.28})
    steps = np.arange(1, tr.steps_done + 1)
    ev_steps = np.array([e.step for e in tr.evals])
    k = max(1, min(50, tr.steps_done // 20))

    a = ax[0, 0]
    loss = np.where(np.isfinite(tr.loss), tr.loss, np.nan)  # drawn where finite
    a.plot(steps, loss, color="0.75", linewidth=0.8, label="train loss (each minibatch)",
           marker="." if tr.steps_done <= 50 else None)  # a step or two is still visible
    if k > 1:
        a.plot(steps, _smooth(tr.loss, k), color="0.2", label=f"train loss ({k}-step mean)")
    finite = loss[np.isfinite(loss) & (loss > 0)]
    if finite.size and finite.max() > 1e3 * finite.min():
        a.set_yscale("log")  # a blown-up loss would flatten the rest of the curve
    bad = _first_nonfinite(tr.loss)
    _note(a, [f"loss non-finite from step {bad} (not drawn)"] if bad else [])
    a.plot(ev_steps, _finite_or_nan([e.loss_eval_mode for e in tr.evals]), "o-", color=POST,
           label="held-out, eval mode")
    a.plot(ev_steps, _finite_or_nan([e.loss_train_mode for e in tr.evals]), "s--", color=PRE,
           label="held-out, train mode")
    a.set_title(f"Loss ({tr.loss_name})")
    a.set_xlabel("step")
    a.legend(fontsize=9)

    a = ax[0, 1]
    if tr.classification:
        a.plot(ev_steps, [e.acc_eval_mode for e in tr.evals], "o-", color=POST,
               label="eval mode (running statistics)")
        a.plot(ev_steps, [e.acc_train_mode for e in tr.evals], "s--", color=PRE,
               label=f"train mode (statistics of batches of {tc.batch_size})")
        a.axhline(1 / tc.outputs, color="0.4", linestyle=":", label=f"chance (1/{tc.outputs})")
        a.set_ylim(0, 1.02)
        a.set_title("Held-out accuracy")
        a.legend(fontsize=9)
    else:
        a.text(0.5, 0.5, "regression task: no accuracy", ha="center", va="center",
               transform=a.transAxes)
        a.set_title("Held-out accuracy")
    a.set_xlabel("step")

    cmap = _layer_colours(len(tr.layer_names))
    for j, name in enumerate(tr.layer_names):
        kw = {"color": cmap[j], "linewidth": 1.0}
        lab = name if j in (0, len(tr.layer_names) - 1) or len(tr.layer_names) <= 8 else None
        ax[1, 0].plot(steps, _positive(_smooth(tr.grad_norm[:, j], k)), label=lab, **kw)
        ax[1, 1].plot(steps, _positive(_smooth(tr.update_ratio[:, j], k)), label=lab, **kw)
    bad = _first_nonfinite(tr.grad_norm)
    _note(ax[1, 0], [f"gradient norm non-finite from step {bad} (not drawn)"] if bad else [])
    bad = _first_nonfinite(tr.update_ratio)
    _note(ax[1, 1], [f"update ratio non-finite from step {bad} (not drawn)"] if bad else [])
    ax[1, 0].set_title("Gradient norm of each Linear (or Conv2d) weight (log)")
    ax[1, 1].set_title("Update / weight norm per step (log)")
    for a in (ax[1, 0], ax[1, 1]):
        a.set_yscale("log")
        a.set_xlim(0, max(1, tr.steps_done))  # every step, even where nothing is drawn
        a.set_xlabel("step")
        a.legend(fontsize=9, title="layer (colour: input → head)", title_fontsize=9)
    for a in ax.flat:
        a.grid(alpha=0.3, which="both")
    smooth = f"; curves of the bottom row are {k}-step means" if k > 1 else ""
    status = (" · INTERRUPTED" if tr.interrupted else
              f" · DIVERGED: {tr.divergence}" if tr.diverged else "")
    fig.suptitle(f"Training {result.config.model.norm}: {tc.task}, {tc.optimizer} lr {tc.lr:g}, "
                 f"batch {tc.batch_size}, {tr.steps_done}/{tc.steps} steps{status}{smooth}\n"
                 f"{_stack(result)}", fontsize=13)
    return fig


def _positive(y: np.ndarray) -> np.ndarray:
    return np.where(y > 0, y, np.nan)


def _layer_colours(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(1, n - 1) * 0.9) for i in range(n)]


def compare_layers(cmp: CompareResult) -> Figure:
    """`lnexp compare` on a deep model: one activation-std and one gradient-norm line per
    norm (norms that were not computed are left out)."""
    done = [o for o in cmp.outcomes if o.result is not None and o.result.layers is not None]
    series = [(o.name, o.result.layers) for o in done]
    first = done[0].result
    return layer_profile(series, f"Per-layer profile at initialization, one line per norm  ·  "
                                 f"{_stack(first)}")



# --------------------------------------------------------------------------- images, sequences

SHARED, OTHER = "#3b75af", "#d9d9d9"  # values sharing the reference's mean/variance; the rest


def _cube_crop(sharing: np.ndarray, cfg: Any) -> np.ndarray:
    """A few samples, channels and positions of the measured sharing block: enough channels
    to show two groups of GroupNorm."""
    c = sharing.shape[1]
    per_group = c
    if cfg.model.norm == "group":
        from lnexp.norms import resolve_groups

        per_group = cfg.features // resolve_groups(cfg.features, cfg.model.groups)
    keep_c = min(c, max(8, 2 * per_group), 16)
    return sharing[:6, :keep_c, :8]


def _draw_cube(ax: Any, block: np.ndarray, layout: str, dims: dict[str, int]) -> None:
    """The (N, C, positions) block as voxels, as in the GroupNorm paper's Figure 2: x =
    channels, y = samples, z = positions; the shared set in blue, the rest faint."""
    n, c, p = block.shape
    filled = np.ones((c, n, p), dtype=bool)
    shared = block.transpose(1, 0, 2)  # (C, N, P)
    colours = np.empty(filled.shape, dtype=object)
    colours[shared] = SHARED + "f0"
    colours[~shared] = OTHER + "40"
    edges = np.empty(filled.shape, dtype=object)
    edges[shared] = "#1f3f66"
    edges[~shared] = "#b0b0b0"
    ax.voxels(filled, facecolors=colours, edgecolors=edges, linewidth=0.3)
    total_p = dims["H"] * dims["W"] if layout == "image" else dims["T"]

    def of(shown: int, total: int) -> str:
        return f"{shown}" if shown == total else f"{shown} of {total}"

    ax.set_xlabel(f"C: {of(c, dims['C'])}", labelpad=-12, fontsize=10)
    ax.set_ylabel(f"N: {of(n, dims['N'])}", labelpad=-12, fontsize=10)
    ax.set_zlabel(f"{'H·W' if layout == 'image' else 'T'}: {of(p, total_p)}", labelpad=-12,
                  fontsize=10)
    ax.set_xticks([])
    ax.set_yticks([])
    ax.set_zticks([])
    for pane in (ax.xaxis, ax.yaxis, ax.zaxis):
        pane.set_pane_color((1, 1, 1, 0))
    ax.set_box_aspect((c, max(n, 3) * 1.4, p), zoom=0.95)
    ax.view_init(elev=20, azim=-60)


FLOOR = 1e-9  # spreads below this are drawn at the floor of the log axis


def _spread_bars(ax: Axes, result: RunResult, rows: list[str]) -> None:
    """Per axis (one row each, `rows` shared by every panel), how far the post-norm statistics
    are from standardized: the spread (max − min) of the variances and the largest |mean|, log
    scale. An axis this norm does not report stays empty."""
    axes = result.post_stats.axes
    h = 0.38
    for y, name in enumerate(rows):
        a = axes.get(name)
        if a is None:
            continue
        spread = float(np.nanmax(a.var) - np.nanmin(a.var))
        mean = float(np.nanmax(np.abs(a.mean)))
        ax.barh(y - h / 2, max(spread, FLOOR), height=h, color="#dd8452",
                label="variance spread (max − min)" if y == 0 else None)
        ax.barh(y + h / 2, max(mean, FLOOR), height=h, color="#8c8c8c",
                label="largest |mean|" if y == 0 else None)
    ax.grid(alpha=0.3, axis="x")


def norm_axes(cmp: CompareResult) -> Figure:
    """The GroupNorm paper's Figure 2, measured: per norm, the (N, C, positions) block with the
    values that share one mean and variance with the corner value highlighted (found by
    perturbing that one input and seeing which outputs move), above the measured spread of
    every axis's post-norm statistics."""
    outcomes = cmp.outcomes
    k = len(outcomes)
    width = max(9.0, 1.55 + 3.2 * k)
    height = 9.0
    fig = _new_figure(width, height)
    gs = fig.add_gridspec(3, k, height_ratios=[1.35, 0.1, 1], left=1.55 / width,
                          right=1 - 0.15 / width, bottom=1.35 / height, top=1 - 0.95 / height,
                          wspace=0.14, hspace=0.04)
    cfg = cmp.config
    layout = cfg.data.layout
    tol = 1e-3
    rows = [a for a in AXES if any(o.result is not None and a in o.result.post_stats.axes
                                   for o in outcomes)]
    top = max([10.0] + [float(np.nanmax(np.concatenate([a.var, np.abs(a.mean)]))) * 3
                        for o in outcomes if o.result is not None
                        for a in o.result.post_stats.axes.values()])
    lead = None
    for j, o in enumerate(outcomes):
        cube = fig.add_subplot(gs[0, j], projection="3d")
        cube.set_title(f"{o.name}: {o.spec.title}", fontsize=12, fontweight="bold", pad=0)
        words = fig.add_subplot(gs[1, j])
        words.set_axis_off()
        bar = fig.add_subplot(gs[2, j])
        if o.result is None or o.result.sharing is None:
            cube.set_axis_off()
            bar.set_axis_off()
            why = o.why or "not measured for this placement"
            bar.text(0.5, 0.5, _wrap(f"not computed: {why}", 30), ha="center", va="center",
                     fontsize=10, transform=bar.transAxes)
            continue
        r = o.result
        _draw_cube(cube, _cube_crop(r.sharing, r.config), layout, r.config.dims())
        words.text(0.5, 0.5, "blue: " + _sharing_words(r.sharing, layout), ha="center",
                   va="center", fontsize=10, color="#1f3f66", transform=words.transAxes)
        _spread_bars(bar, r, rows)
        bar.axvline(tol, color="k", linestyle="--", linewidth=1,
                    label=f"tolerance {tol:g}: left of it = standardized")
        bar.set_xscale("log")
        bar.set_xlim(FLOOR / 3, top)
        bar.set_ylim(len(rows) - 0.5, -0.5)  # first axis on top
        bar.set_yticks(range(len(rows)))
        if lead is None:
            lead = bar
            bar.set_yticklabels([a.replace("_", "-") for a in rows], fontsize=10.5)
        else:
            bar.set_yticklabels([])
        own = r.norm.standardizes_axis
        if own in rows:  # the norm's own axis: a frame around its row
            bar.axhspan(rows.index(own) - 0.5, rows.index(own) + 0.5, color=SHARED,
                        alpha=0.12, linewidth=0)
        bar.set_xlabel(f"standardizes:\n{r.standardizes}", fontsize=10.5)
    if lead is not None:
        handles, labels = lead.get_legend_handles_labels()
        fig.legend(handles, labels, loc="lower center", ncol=3, frameon=False, fontsize=10.5,
                   bbox_to_anchor=(0.5, 0.0))
        lead.set_ylabel("after the norm\n(shaded: the norm's own axis)", fontsize=10.5)
    pos = "H·W pixels" if layout == "image" else "T tokens"
    fig.suptitle(f"Which values share one mean and variance (blue), measured: one input "
                 f"perturbed, the outputs that move  ·  {shape_words(cfg)}\n"
                 f"the GroupNorm paper's Figure 2: axes N (samples), C (channels), {pos}, the "
                 f"first few of each shown; below: how far each axis is from mean 0, "
                 f"variance 1  ·  seed {cfg.seed}, {cfg.model.mode} mode", fontsize=12.5)
    return fig


def _sharing_words(block: np.ndarray, layout: str) -> str:
    """What the measured set spans, in words, e.g. 'sample 0, channel 0, all H·W'."""
    n = np.flatnonzero(block.any(axis=(1, 2)))
    c = np.flatnonzero(block.any(axis=(0, 2)))
    p = np.flatnonzero(block.any(axis=(0, 1)))
    pos = "H·W" if layout == "image" else "T"

    def span(idx: np.ndarray, total: int, word: str) -> str:
        if len(idx) == total:
            return f"all {word}"
        if len(idx) == 1:
            return f"{word} {idx[0]}"
        return f"{word} {idx[0]}–{idx[-1]}"

    if block.sum() == 1:
        return "only itself (nothing shared)"
    return ", ".join((span(n, block.shape[0], "N"), span(c, block.shape[1], "C"),
                      span(p, block.shape[2], pos)))


def _colour_scale(*arrays: np.ndarray) -> float:
    """One symmetric colour limit for before and after: the 99.5th percentile of |x|."""
    finite = np.concatenate([_finite(a) for a in arrays])
    vmax = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
    return vmax if vmax > 0 else 1.0


def feature_maps(result: RunResult) -> Figure:
    """Image runs: a few channels of the chosen sample before and after the norm, one colour
    scale for both rows, with each map's mean and std."""
    cfg = result.config
    i = cfg.sample_index
    pre, post = result.pre[i], result.post[i]  # (C, H, W)
    k = min(6, pre.shape[0])
    fig = _new_figure(2.6 * k + 1.4, 6.4)
    gs = fig.add_gridspec(2, k + 1, width_ratios=[1] * k + [0.06], left=0.07,
                          right=0.94, bottom=0.04, top=0.82, wspace=0.12, hspace=0.3)
    vmax = _colour_scale(pre[:k], post[:k])
    image = None
    for row, (data, label) in enumerate(((pre, "before"), (post, "after"))):
        for ch in range(k):
            ax = fig.add_subplot(gs[row, ch])
            m = data[ch]
            image = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                              interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"channel {ch}\nmean {_r(float(m.mean()))}, std {m.std():.3f}",
                         fontsize=10)
            if ch == 0:
                ax.set_ylabel(f"{label} {cfg.model.norm}", fontsize=12)
    cax = fig.add_subplot(gs[:, k])
    fig.colorbar(image, cax=cax, label="activation (one scale for both rows)")
    fig.suptitle(f"Feature maps of sample {i}, first {k} channels, before / after "
                 f"{result.norm.title}\n{result.norm.summary}\n{_describe(result)}",
                 fontsize=11.5)
    return fig


def token_heatmap(result: RunResult) -> Figure:
    """Sequence runs: the chosen sample's tokens × channels before and after the norm, one
    colour scale, with each token's std over its channels (right: what LayerNorm pins in a
    transformer) and each channel's std over the tokens (top: what InstanceNorm pins)."""
    cfg = result.config
    i = cfg.sample_index
    pre, post = result.pre[i], result.post[i]  # (T, C)
    t, c = pre.shape
    fig = _new_figure(16, 7.5)
    gs = fig.add_gridspec(4, 5, width_ratios=[6, 1.1, 0.5, 6, 1.1],
                          height_ratios=[1.1, 5, 0.45, 0.16], left=0.05, right=0.99,
                          bottom=0.08, top=0.85, wspace=0.05, hspace=0.1)
    vmax = _colour_scale(pre, post)
    std_max = max(float(pre.std(axis=1).max()), float(post.std(axis=1).max()),
                  float(pre.std(axis=0).max()), float(post.std(axis=0).max()), 1.0) * 1.1
    for data, label, col in ((pre, "before", 0), (post, "after", 3)):
        ax = fig.add_subplot(gs[1, col])
        top = fig.add_subplot(gs[0, col], sharex=ax)
        right = fig.add_subplot(gs[1, col + 1], sharey=ax)
        image = ax.imshow(data, aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                          interpolation="nearest", extent=(-0.5, c - 0.5, t - 0.5, -0.5))
        ax.set_xlabel("channel (C)")
        ax.set_ylabel("token (T)")
        _std_margins(top, right, std_max,
                     (data.std(axis=0), np.arange(c + 1) - 0.5, "std over\ntokens"),
                     (data.std(axis=1), np.arange(t + 1) - 0.5, "std over\nchannels"))
        top.set_title(f"Sample {i} {label} {cfg.model.norm}", fontsize=12)
        cax = fig.add_subplot(gs[3, col])
        fig.colorbar(image, cax=cax, orientation="horizontal",
                     label="activation (one scale before and after; clipped at the 99.5th "
                           "percentile of |x|)")
    fig.suptitle(f"Tokens × channels: {result.norm.title} {result.norm.summary}\n"
                 f"{_describe(result)}  ·  grey bars: biased std of this sample, dashed line "
                 f"at 1", fontsize=12.5)
    return fig


# --------------------------------------------------------------------------- sweep

def _metric_title(key: str) -> str:
    if key in METRIC_TITLES:
        return METRIC_TITLES[key]
    metric, _, reducer = key.rpartition(".")
    return f"{metric}\n({reducer})"


_label = show_value


def _band(m: dict[str, Any]) -> tuple[float, float, float] | None:
    """(centre, low, high) of one summary cell: median and min..max; older sweep.json rows
    without them fall back to mean ± std."""
    if m.get("median") is not None:
        return m["median"], m["min"], m["max"]
    if m.get("mean") is None:
        return None
    sd = m.get("std") or 0.0
    return m["mean"], m["mean"] - sd, m["mean"] + sd


def sweep_summary(rows: list[dict[str, Any]], group_keys: list[str], metrics: list[str],
                  x_key: str, title: str, chance: float | None = None) -> Figure:
    """One panel per metric against the swept `x_key`: one line per combination of the other
    swept keys (colour: the first of them, line style: the second), the median over seeds
    with a min..max band. A metric whose values span more than 100x gets a log y axis;
    accuracy panels get a chance line at `chance`."""
    others = [k for k in group_keys if k != x_key]
    xs_all = [r[x_key] for r in rows]
    numeric = all(isinstance(v, int | float) and not isinstance(v, bool) for v in xs_all)
    cats = list(dict.fromkeys(_label(v) for v in xs_all))
    lines: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        lines.setdefault(tuple(_label(r[o]) for o in others), []).append(r)
    k = max(1, len(metrics))
    width = max(6.0, 4.8 * k)
    # Legend columns as wide as the longest label, as many as fit; rows below the panels.
    longest = max((len(", ".join(f"{o.rpartition('.')[2]}={v}" for o, v in
                                 zip(others, name, strict=True))) for name in lines), default=8)
    ncol = max(1, min(len(lines), int(width / (0.075 * longest + 0.8))))
    legend_rows = -(-len(lines) // ncol)
    height = 4.7 + 0.3 * legend_rows
    fig = _new_figure(width, height)
    axes = fig.subplots(1, k, squeeze=False,
                        gridspec_kw={"left": 0.9 / width, "right": 0.99,
                                     "bottom": (0.95 + 0.3 * legend_rows) / height,
                                     "top": 1 - 1.05 / height, "wspace": 0.3})[0]
    firsts = list(dict.fromkeys(name[0] for name in lines)) if others else []
    seconds = list(dict.fromkeys(name[1] for name in lines)) if len(others) > 1 else []
    dashes = ["-", "--", ":", "-."]
    seeds = max((r["metrics"][m]["n"] for r in rows for m in metrics), default=0)
    for ax, metric in zip(axes, metrics, strict=False):
        values: list[float] = []
        for j, (name, members) in enumerate(lines.items()):
            color = f"C{(firsts.index(name[0]) if others else j) % 10}"
            style = dashes[seconds.index(name[1]) % 4] if seconds else "-"
            pts = [(m[x_key], b) for m in members
                   if (b := _band(m["metrics"][metric])) is not None]
            if numeric:
                pts.sort(key=lambda p: p[0])
            xs = [p[0] if numeric else cats.index(_label(p[0])) for p in pts]
            mid, lo, hi = (np.array([p[1][i] for p in pts], dtype=float) for i in range(3))
            values += [*lo, *hi]
            label = ", ".join(f"{o.rpartition('.')[2]}={v}" if len(others) > 1 or
                              o != "model.norm" else v for o, v in zip(others, name,
                                                                       strict=True)) or "median"
            ax.plot(xs, mid, color=color, linestyle=style, marker="o", markersize=4,
                    linewidth=1.6, label=label)
            if seeds > 1:
                ax.fill_between(xs, lo, hi, color=color, alpha=0.15, linewidth=0)
        finite = np.array([v for v in values if np.isfinite(v)])
        log = finite.size and finite.min() > 0 and finite.max() / finite.min() > 100
        if log:
            ax.set_yscale("log")
        if numeric:
            pos = [float(v) for v in xs_all]
            if min(pos) > 0 and max(pos) / min(pos) >= 8:
                ax.set_xscale("log", base=2 if all(float(v).is_integer() for v in pos) else 10)
            ticks = sorted(set(xs_all))
            if len(ticks) <= 12:
                ax.set_xticks(ticks)
                ax.set_xticklabels([_label(t) for t in ticks])
                ax.xaxis.set_minor_locator(NullLocator())  # only the swept values
        else:
            ax.set_xticks(range(len(cats)))
            ax.set_xticklabels(cats)
        if chance is not None and ".accuracy" in metric:
            ax.axhline(chance, color="0.35", linestyle=":", linewidth=1.2)
            ax.annotate(f"chance {chance:g}", (0.99, chance), xycoords=("axes fraction", "data"),
                        ha="right", va="bottom", fontsize=9, color="0.35")
        if "_over_" in metric:  # a ratio: mark 1 and the 10x either side of it
            ax.axhline(1, color="0.35", linestyle=":", linewidth=1)
            ax.axhspan(0.1, 10, color="0.5", alpha=0.08, linewidth=0, label=None)
        ax.set_xlabel(x_key)
        ax.set_ylabel(metric, fontsize=9)
        ax.set_title(_metric_title(metric), fontsize=10.5)
        ax.grid(alpha=0.3, which="both" if log else "major")
        if not log:
            ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
        if ".accuracy" in metric:
            ax.set_ylim(0, 1.02)
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    what = "norm" if others == ["model.norm"] else ", ".join(others) or ""
    fig.legend(handles, labels, loc="lower center", ncol=max(1, ncol), frameon=False,
               title=f"one line per {what}" if what else None, fontsize=10,
               bbox_to_anchor=(0.5, 0.0))
    band = (f"median over {seeds} seeds, band: min to max" if seeds > 1
            else "one seed, no band")
    fig.suptitle(f"{title}: each metric against {x_key}  ·  {band}", fontsize=12.5)
    return fig


# Every figure by its registry name (lnexp.registry): what a FigureJob draws.
FIGURES: dict[str, Callable[[Any], Figure]] = {
    "overview": overview,
    "heatmap": heatmap,
    "layers": layers,
    "training": training,
    "comparison": comparison,
    "compare_layers": compare_layers,
    "norm_axes": norm_axes,
    "feature_maps": feature_maps,
    "token_heatmap": token_heatmap,
    "sweep_summary": sweep_summary,
}
