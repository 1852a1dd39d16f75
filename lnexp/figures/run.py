"""The figures of one run: the tutorial's overview, the activation heatmap and, for a deep
model, its per-layer profile."""

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
    axis_title,
    bar_collection,
    bin_edges,
    describe_run,
    filled_hist,
    finite_values,
    kept_note,
    layer_profile,
    new_figure,
    signed,
    stack_words,
    std_margins,
    thin_index,
)

if TYPE_CHECKING:
    from lnexp.results import RunResult


def _per_index(ax: Axes, pre: np.ndarray, post: np.ndarray, what: str, axis_label: str,
               target: float) -> None:
    idx, step = thin_index(len(pre), MAX_POINTS)
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
    fig = new_figure(16, 9)
    # axis titles of two lines
    two_line = cfg.data.layout != "features" or third != "per_sample"
    ax = fig.subplots(2, 3, gridspec_kw={"left": 0.045, "right": 0.99, "bottom": 0.065,
                                         "top": 0.83 if two_line else 0.86, "wspace": 0.2,
                                         "hspace": 0.36 if two_line else 0.3})
    name = cfg.model.norm

    bins = bin_edges([result.pre, result.post], 60)
    for data, color, label, g in ((result.pre, PRE, "before", pre_s.global_),
                                  (result.post, POST, "after", post_s.global_)):
        filled_hist(ax[0, 0], finite_values(data), bins, color,
              f"{label}: mean {signed(g.mean)}, var {g.var:.3f}")
    ax[0, 0].set_title(f"All values before / after {name}{kept_note(result)}")
    ax[0, 0].set_xlabel("activation value")
    ax[0, 0].set_ylabel("count")
    ax[0, 0].legend(loc="upper right", fontsize=9)

    _sample_panel(ax[1, 0], result)

    unit = "feature" if cfg.data.layout == "features" else "channel"
    third_unit = {"per_sample": "sample", "per_token": "token (n·T + t)",
                  "per_instance": "(sample, channel) (n·C + c)",
                  "per_group": "(sample, group) (n·G + g)"}[third]
    _per_index(ax[0, 1], pre_s.per_feature.mean, post_s.per_feature.mean, "mean", unit, 0)
    ax[0, 1].set_title(axis_title(cfg, "per_feature").format("mean"))
    _per_index(ax[1, 1], pre_s.per_feature.var, post_s.per_feature.var, "variance (biased, /n)",
               unit, 1)
    ax[1, 1].set_title(axis_title(cfg, "per_feature").format("variance"))
    _per_index(ax[0, 2], pre_s.axis(third).mean, post_s.axis(third).mean, "mean", third_unit, 0)
    ax[0, 2].set_title(axis_title(cfg, third).format("mean"))
    _per_index(ax[1, 2], pre_s.axis(third).var, post_s.axis(third).var, "variance (biased, /n)",
               third_unit, 1)
    ax[1, 2].set_title(axis_title(cfg, third).format("variance"))

    fig.suptitle(f"{result.norm.title}: {result.norm.summary}\n{describe_run(result)}",
                 fontsize=13, y=0.995)
    handles, labels = ax[0, 1].get_legend_handles_labels()
    labels = [f"{name} {label}" if label in ("before", "after") else "target (0 for means, "
              "1 for variances)" for label in labels]
    fig.legend(handles, labels, loc="upper center", bbox_to_anchor=(0.67, 0.935), ncol=3,
               fontsize=10, frameon=False)
    return fig


def _sample_panel(ax: Axes, result: RunResult) -> None:
    i = result.config.sample_index
    pre, post = result.sample_pre, result.sample_post
    n = len(pre.values)
    if n <= 64:
        x = np.arange(n)
        w = 0.4
        bar_collection(ax, x - w / 2, pre.values, w, PRE,
              f"before: mean {signed(pre.mean)}, var {pre.var:.3f}")
        bar_collection(ax, x + w / 2, post.values, w, POST,
              f"after: mean {signed(post.mean)}, var {post.var:.3f}")
        ax.axhline(0, color="0.3", linewidth=0.8)
        ax.set_xlabel("feature index")
        ax.set_ylabel("value")
        if n <= 20:
            ax.set_xticks(x)
    else:
        bins = bin_edges([pre.values, post.values], 40)
        filled_hist(ax, finite_values(pre.values), bins, PRE,
              f"before: mean {signed(pre.mean)}, var {pre.var:.3f}")
        filled_hist(ax, finite_values(post.values), bins, POST,
              f"after: mean {signed(post.mean)}, var {post.var:.3f}")
        ax.set_xlabel("activation value")
        ax.set_ylabel("count")
    what = "feature" if result.config.data.layout == "features" else "activation"
    ax.set_title(f"Sample {i}: its {n:,} {what} values (var biased)")
    ax.grid(alpha=0.3, axis="y")
    lo, hi = ax.get_ylim()
    ax.set_ylim(lo, hi + 0.3 * (hi - lo))  # headroom: the legend never covers a bar
    ax.legend(loc="upper right", fontsize=9)


def heatmap(result: RunResult) -> Figure:
    """The activation matrix (samples x features) before and after the norm.

    Margins show the biased std of every feature (top, over samples) and of every sample
    (right, over its features) on one shared scale, so the normalized axis is the flat one.
    """
    fig = new_figure(16, 7.5)
    gs = fig.add_gridspec(4, 5, width_ratios=[6, 1.2, 0.55, 6, 1.2],
                          height_ratios=[1.2, 5, 0.5, 0.16], left=0.05, right=0.99, bottom=0.07,
                          top=0.87, wspace=0.04, hspace=0.1)
    rows, step = thin_index(result.pre.shape[0], MAX_ROWS)
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
    finite = np.concatenate([finite_values(result.pre[rows]), finite_values(result.post[rows])])
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
        std_margins(top, right, std_max,
                     (st.per_feature.std, np.append(feats, len(feats)) - 0.5, "std per\nfeature"),
                     (st.per_sample.std[rows], np.arange(len(rows) + 1) * step - 0.5,
                      "std per\nsample"))
        top.set_title(f"Activations {label}", fontsize=12)
        cax = fig.add_subplot(gs[3, col])
        fig.colorbar(im, cax=cax, orientation="horizontal",
                     label="activation value (one scale for both; clipped at the 99.5th "
                           "percentile of |x|)")
    fig.suptitle(f"Activation matrix: {result.norm.title} {result.norm.summary}\n"
                 f"{describe_run(result)}  ·  grey bars: biased std, dashed line at 1", fontsize=13)
    return fig


def layers(result: RunResult) -> Figure:
    """The run's per-layer profile at initialization (depth > 1)."""
    assert result.layers is not None
    lay = result.layers
    return layer_profile(
        [(f"{result.config.model.norm} (first/last grad {lay.first_over_last:.2g})", lay)],
        f"At initialization, one backward pass of MSE to a random target\n{stack_words(result)}")
