"""What every figure shares: the before/after colours, a figure with an Agg canvas, histograms,
bin edges, thinning, the one-line descriptions of a run and the per-block layer profile.

Object API only (no pyplot global state), Agg canvas, so this works headless and in threads.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lnexp.numbers import shape_words

if TYPE_CHECKING:  # results imports no torch, but keep the figures' import cost to matplotlib
    from lnexp.results import LayerStats, RunResult


PRE, POST = "#1f77b4", "#2ca02c"  # blue before the norm, green after (as in the tutorial)
MAX_POINTS = 2000  # per-index curves longer than this are thinned to every k-th point
MAX_ROWS = 1000  # heatmaps with more samples show every k-th row


def new_figure(width: float, height: float) -> Figure:
    # Fixed margins instead of constrained layout: the layout engine re-measures every text
    # on each draw and doubled the time to save these figures.
    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def filled_hist(ax: Axes, data: np.ndarray, bins: np.ndarray, color: str, label: str) -> None:
    """A filled histogram drawn as one artist (ax.hist makes one patch per bin)."""
    counts, edges = np.histogram(np.asarray(data, dtype=np.float64), bins=bins)
    ax.stairs(counts, edges, fill=True, color=color, alpha=0.5, label=label)


def bin_edges(arrays: list[np.ndarray], bins: int) -> np.ndarray:
    """`bins` equal bins over the finite values of `arrays`, for any finite data: float64
    (np.histogram_bin_edges on float32 values near 1e38 overflows their range: "Too many bins
    for data range"), a constant or a single value gets a unit-wide range around it, no
    finite value at all gets [-0.5, 0.5]."""
    flat = np.concatenate([finite_values(np.asarray(a, dtype=np.float64)) for a in arrays]
                          or [np.empty(0)])
    lo, hi = (float(flat.min()), float(flat.max())) if flat.size else (0.0, 0.0)
    if not hi > lo or not np.isfinite(hi - lo):
        if hi > lo:  # hi - lo overflows float64: split it so every step stays finite
            t = np.linspace(0.0, 1.0, bins + 1)
            return lo * (1 - t) + hi * t
        half = max(0.5, abs(lo) * 1e-3)
        lo, hi = lo - half, hi + half
    return np.linspace(lo, hi, bins + 1)


def thin_index(n: int, limit: int) -> tuple[np.ndarray, int]:
    step = max(1, -(-n // limit))
    return np.arange(0, n, step), step


def layer_name(cfg: Any) -> str:
    """'Linear(100→50)', 'Conv2d(1→32, 3×3)', 'Linear(8→32) per token'."""
    m = cfg.model
    if cfg.data.layout == "image":
        return f"Conv2d({m.in_features}→{m.out_features}, {m.kernel_size}×{m.kernel_size})"
    per = " per token" if cfg.data.layout == "sequence" else ""
    return f"Linear({m.in_features}→{m.out_features}){per}"


def describe_run(result: RunResult) -> str:
    cfg = result.config
    m = cfg.model
    layer = f"{layer_name(cfg)} → " if m.linear else ""
    source = "  ·  scikit-learn digits" if cfg.data.source == "digits" else ""
    return (f"{layer}{result.norm.title} ({m.norm}), {m.mode} mode  ·  {shape_words(cfg)}"
            f"{source}  ·  seed {cfg.seed}")


def axis_title(cfg: Any, axis: str) -> str:
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


def bar_collection(ax: Axes, x: np.ndarray, heights: np.ndarray, width: float, color: str,
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


def std_margins(top: Axes, right: Axes, std_max: float,
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


def wrapped(text: str, width: int) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(text, width))


def kept_note(result: RunResult) -> str:
    """' (first 2,000 of 1,000,000 samples)' when a streamed run kept only some rows."""
    n = result.config.data.n_samples
    return f" (first {result.rows_kept:,} of {n:,} samples)" if result.rows_kept < n else ""


def signed(x: float) -> str:
    """Signed, 3 decimals, without a '-0.000'."""
    return f"{round(x, 3) + 0.0:+.3f}"


def finite_values(a: np.ndarray) -> np.ndarray:
    flat = np.asarray(a).ravel()
    return flat[np.isfinite(flat)]


def colour_scale(*arrays: np.ndarray) -> float:
    """One symmetric colour limit for before and after: the 99.5th percentile of |x|."""
    finite = np.concatenate([finite_values(a) for a in arrays])
    vmax = float(np.percentile(np.abs(finite), 99.5)) if finite.size else 1.0
    return vmax if vmax > 0 else 1.0


def stack_words(result: RunResult) -> str:
    m = result.config.model
    return (f"{m.depth} blocks, {m.placement} placement, {m.activation} activation, "
            f"{m.init} init (gain {m.gain:g}), width {m.hidden_width}  ·  "
            f"{result.config.data.n_samples} samples  ·  seed {result.config.seed}")


LayerSeries = tuple[str, "LayerStats"]  # (label, the run's per-block statistics)


def layer_profile(series: list[LayerSeries], title: str) -> Figure:
    """Six panels by block, one line per series: how far apart the samples are (spread, log),
    how alike they point (mean pairwise cosine), the hidden-state RMS of each block's output
    (the residual stream's size, log), the weight-gradient norm (log), the gradient relative
    to the weights (log), and the largest attention logit (transformer blocks; else a note).

    `compare` passes one series per norm; a run passes its own.
    """
    fig = new_figure(20, 9.5)
    ax = fig.subplots(2, 3, gridspec_kw={"left": 0.05, "right": 0.99, "bottom": 0.06,
                                         "top": 0.88, "wspace": 0.2, "hspace": 0.3})
    panels = (
        (ax[0, 0], "spread", "Between-sample spread of each block's output (log)",
         "√(mean over features of the variance over samples)", True),
        (ax[0, 1], "cosine", "Mean pairwise cosine similarity of the samples",
         "cosine (1: every sample points the same way)", False),
        (ax[0, 2], "hidden_rms", "Hidden-state RMS of each block's output (log)",
         "√(mean of x²) over every value (the residual stream)", True),
        (ax[1, 0], "grad_norm", "Gradient norm of each block's weights (log)",
         "‖∂L/∂W‖ (Frobenius, all Linear weights of the block)", True),
        (ax[1, 1], "grad_over_weight", "Gradient norm / weight norm (log)",
         "‖∂L/∂W‖ / ‖W‖", True),
        (ax[1, 2], "attn_logit_max", "Largest attention logit of each block",
         "max |q·k| / √d over samples, heads, positions", False),
    )
    n = len(series)
    for j, (label, lay) in enumerate(series):
        x = np.arange(1, len(lay.names) + 1)
        # Later series thinner and on top, so identical curves still show every colour.
        style = {"marker": "o", "markersize": max(2.5, 6 - 1.2 * j)} if len(x) <= 40 else {}
        for a, attr, *_rest in panels:
            if getattr(lay, attr) is None:
                continue  # no attention (or no probe): the panel says so below
            y = np.asarray(getattr(lay, attr), dtype=float)
            if _rest[-1]:
                y = np.where(y > 0, y, np.nan)  # log scale: zeros are gaps
            a.plot(x, y, label=label, linewidth=max(1.0, 2.6 - 0.5 * j) if n > 1 else 1.5,
                   **style)
    for a, _attr, head, ylabel, log in panels:
        a.set_title(head)
        if not a.lines:
            a.text(0.5, 0.5, "no attention blocks" if _attr == "attn_logit_max"
                   else "not measured", ha="center", va="center", transform=a.transAxes,
                   color="0.4")
            a.set_xticks([])
            a.set_yticks([])
            continue
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
