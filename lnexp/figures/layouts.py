"""Figures for the image and sequence layouts: which values share one mean and variance (the
GroupNorm paper's Figure 2, measured), feature maps and the tokens × channels heatmap."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lnexp.figures.common import (
    colour_scale,
    describe_run,
    new_figure,
    signed,
    std_margins,
    wrapped,
)
from lnexp.numbers import shape_words
from lnexp.registry import AXES

if TYPE_CHECKING:
    from lnexp.results import CompareResult, RunResult


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
    fig = new_figure(width, height)
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
        cube.set_title(o.spec.heading, fontsize=12, fontweight="bold", pad=0)
        words = fig.add_subplot(gs[1, j])
        words.set_axis_off()
        bar = fig.add_subplot(gs[2, j])
        if o.result is None or o.result.sharing is None:
            cube.set_axis_off()
            bar.set_axis_off()
            why = o.why or "not measured for this placement"
            bar.text(0.5, 0.5, wrapped(f"not computed: {why}", 30), ha="center", va="center",
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


def feature_maps(result: RunResult) -> Figure:
    """Image runs: a few channels of the chosen sample before and after the norm, one colour
    scale for both rows, with each map's mean and std."""
    cfg = result.config
    i = cfg.sample_index
    pre, post = result.pre[i], result.post[i]  # (C, H, W)
    k = min(6, pre.shape[0])
    fig = new_figure(2.6 * k + 1.4, 6.4)
    gs = fig.add_gridspec(2, k + 1, width_ratios=[1] * k + [0.06], left=0.07,
                          right=0.94, bottom=0.04, top=0.82, wspace=0.12, hspace=0.3)
    vmax = colour_scale(pre[:k], post[:k])
    image = None
    for row, (data, label) in enumerate(((pre, "before"), (post, "after"))):
        for ch in range(k):
            ax = fig.add_subplot(gs[row, ch])
            m = data[ch]
            image = ax.imshow(m, cmap="RdBu_r", vmin=-vmax, vmax=vmax,
                              interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"channel {ch}\nmean {signed(float(m.mean()))}, std {m.std():.3f}",
                         fontsize=10)
            if ch == 0:
                ax.set_ylabel(f"{label} {cfg.model.norm}", fontsize=12)
    cax = fig.add_subplot(gs[:, k])
    fig.colorbar(image, cax=cax, label="activation (one scale for both rows)")
    fig.suptitle(f"Feature maps of sample {i}, first {k} channels, before / after "
                 f"{result.norm.title}\n{result.norm.summary}\n{describe_run(result)}",
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
    fig = new_figure(16, 7.5)
    gs = fig.add_gridspec(4, 5, width_ratios=[6, 1.1, 0.5, 6, 1.1],
                          height_ratios=[1.1, 5, 0.45, 0.16], left=0.05, right=0.99,
                          bottom=0.08, top=0.85, wspace=0.05, hspace=0.1)
    vmax = colour_scale(pre, post)
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
        std_margins(top, right, std_max,
                     (data.std(axis=0), np.arange(c + 1) - 0.5, "std over\ntokens"),
                     (data.std(axis=1), np.arange(t + 1) - 0.5, "std over\nchannels"))
        top.set_title(f"Sample {i} {label} {cfg.model.norm}", fontsize=12)
        cax = fig.add_subplot(gs[3, col])
        fig.colorbar(image, cax=cax, orientation="horizontal",
                     label="activation (one scale before and after; clipped at the 99.5th "
                           "percentile of |x|)")
    fig.suptitle(f"Tokens × channels: {result.norm.title} {result.norm.summary}\n"
                 f"{describe_run(result)}  ·  grey bars: biased std of this sample, dashed line "
                 f"at 1", fontsize=12.5)
    return fig
