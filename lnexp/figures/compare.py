"""The figures of `lnexp compare`: one column per norm, and the per-layer profile of a deep
model with one line per norm."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from lnexp.figures.common import (
    MAX_POINTS,
    MAX_ROWS,
    POST,
    PRE,
    as_matrix,
    finite_values,
    layer_name,
    layer_profile,
    new_figure,
    stack_words,
    thin_index,
    wrapped,
)
from lnexp.numbers import shape_words

if TYPE_CHECKING:
    from matplotlib.image import AxesImage

    from lnexp.config import Config
    from lnexp.results import CompareResult, RunResult


def comparison(cmp: CompareResult) -> Figure:
    """One column per norm; rows: per-feature variance, per-sample variance (before in blue,
    after in green, shared y per row) and the activation heatmap after the norm (one shared
    colour scale). A norm that was not computed shows its reason instead."""
    outcomes = cmp.outcomes
    k = len(outcomes)
    width = max(7.0, 1.2 + 3.1 * k)
    fig = new_figure(width, 10.5)
    height = 10.5
    gs = fig.add_gridspec(5, k, height_ratios=[1, 1, 1.6, 0.02, 0.07],
                          left=1.25 / width, right=1 - 0.2 / width, bottom=0.65 / height,
                          top=1 - 1.45 / height, wspace=0.12, hspace=0.42)
    done = [o.result for o in outcomes if o.result is not None]
    tops = {key: _top_variance(done, key) for key in ("per_feature", "per_sample")}
    post_all = np.concatenate([finite_values(r.post) for r in done]) if done else np.zeros(1)
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
        verdict = wrapped(f"standardizes: {o.standardizes or 'not computed'}", 30)
        axes[0].set_title(f"{o.spec.heading}\n{verdict}", fontsize=12,
                          fontweight="bold" if o.result is not None else "normal")
        if o.result is None:
            for ax in axes:
                ax.set_axis_off()
            axes[1].text(0.5, 0.5, wrapped(f"not computed: {o.why}", 34), ha="center",
                         va="center", fontsize=10, transform=axes[1].transAxes, wrap=True)
            continue
        image = _norm_column(axes, cmp.config, o.result, tops, vmax, j == lead)
    if image is not None:
        cax = fig.add_subplot(gs[4, max(0, k // 2 - 1): max(1, k // 2 + 1)])
        fig.colorbar(image, cax=cax, orientation="horizontal",
                     label="activation value after the norm (one scale for all; clipped at "
                           "the 99.5th percentile of |x|)")
    fig.suptitle(_title(cmp.config), fontsize=13)
    return fig


def _top_variance(done: list[RunResult], key: str) -> float:
    """The largest variance on axis `key` before or after any computed norm, at least 1."""
    vals = [getattr(st, key).var for r in done for st in (r.pre_stats, r.post_stats)]
    return max([float(np.nanmax(v, initial=0)) for v in vals] + [1.0])


def _norm_column(axes: list[Axes], cfg: Config, r: RunResult, tops: dict[str, float],
                 vmax: float, lead: bool) -> AxesImage:
    """One computed norm's column: the two variance panels and the heatmap after the norm;
    the `lead` column carries the y labels. Returns the heatmap for the shared colour bar."""
    features = cfg.data.layout == "features"
    for ax, key, label in ((axes[0], "per_feature", "feature" if features else "channel"),
                           (axes[1], "per_sample", "sample")):
        _variance_panel(ax, getattr(r.pre_stats, key).var, getattr(r.post_stats, key).var,
                        label, tops[key], lead)
    if lead:
        _variance_labels(axes, cfg)
    return _post_heatmap(axes[2], cfg, r, vmax, lead)


def _variance_panel(ax: Axes, pre: np.ndarray, post: np.ndarray, label: str, top: float,
                    lead: bool) -> None:
    idx, _ = thin_index(len(pre), MAX_POINTS)
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
    if top > 20:
        ax.set_yscale("symlog", linthresh=0.1)
    else:
        ax.set_ylim(0, top * 1.08)
    if not lead:
        ax.tick_params(labelleft=False)


def _variance_labels(axes: list[Axes], cfg: Config) -> None:
    """The lead column's y labels: what each variance is computed over, in this layout."""
    if cfg.data.layout == "features":
        axes[0].set_ylabel(f"per-feature variance\n(over {cfg.data.n_samples} samples, dim 0)",
                           fontsize=11)
        axes[1].set_ylabel(f"per-sample variance\n(over {cfg.features} features, dim 1)",
                           fontsize=11)
        return
    over = {"image": ("N·H·W", "C·H·W"), "sequence": ("N·T", "T·C")}[cfg.data.layout]
    axes[0].set_ylabel(f"per-channel variance\n(over {over[0]})", fontsize=11)
    axes[1].set_ylabel(f"per-sample variance\n(over {over[1]})", fontsize=11)
    handles, labels = axes[0].get_legend_handles_labels()
    axes[0].legend(handles[::-1], labels[::-1], loc="upper right", fontsize=9)


def _post_heatmap(ax: Axes, cfg: Config, r: RunResult, vmax: float, lead: bool) -> AxesImage:
    """The activations after the norm as (rows, channels), on the shared colour scale."""
    n, c = cfg.data.n_samples, cfg.features
    matrix = as_matrix(r.post, cfg.data.layout)
    rows, step = thin_index(len(matrix), MAX_ROWS)  # a streamed run keeps its first rows
    image = ax.imshow(matrix[rows], aspect="auto", cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                      interpolation="nearest",
                      extent=(-0.5, c - 0.5, len(rows) * step - 0.5, -0.5))
    ax.set_xlabel("feature (dim 1)" if cfg.data.layout == "features" else "channel (C)",
                  fontsize=10)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    ax.yaxis.set_major_locator(MaxNLocator(integer=True, min_n_ticks=1))
    if not lead:
        ax.tick_params(labelleft=False)
        return image
    thinned = (f", 1 in {step} shown" if step > 1 else "") + (
        f", first {r.rows_kept:,} of {n:,}" if r.rows_kept < n else "")
    rows_are = {"features": "sample (dim 0", "image": "sample·pixel (n·H·W + p",
                "sequence": "token (n·T + t"}[cfg.data.layout]
    ax.set_ylabel(f"activations after the norm\n{rows_are}{thinned})", fontsize=11)
    return image


def _title(cfg: Config) -> str:
    m = cfg.model
    layer = f"{layer_name(cfg)} → norm" if m.linear else "norm only"
    kind = "Conv2d" if cfg.data.layout == "image" else "Linear"
    same = f"same inputs, same {kind} weights" if m.linear else "same inputs"
    return (f"{same[0].upper() + same[1:]}, one norm per column  ·  {layer}, "
            f"{m.mode} mode  ·  {shape_words(cfg)}  ·  seed {cfg.seed}\n"
            f"variances are biased (÷n); blue before the norm, green after; dashed line "
            f"at 1")


def compare_layers(cmp: CompareResult) -> Figure:
    """`lnexp compare` on a deep model: one activation-std and one gradient-norm line per
    norm (norms that were not computed are left out)."""
    done = [o for o in cmp.outcomes if o.result is not None and o.result.layers is not None]
    series = [(o.spec.label, o.result.layers) for o in done]
    first = done[0].result
    return layer_profile(series, f"Per-layer profile at initialization, one line per norm  ·  "
                                 f"{stack_words(first)}")
