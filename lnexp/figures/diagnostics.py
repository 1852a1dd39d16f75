"""The training-diagnostics figure (`train.log_every`): one panel per per-block diagnostic,
x = step, one line per block (colour: first block -> last), log y where a panel's values span
more than a decade."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.figure import Figure

from lnexp.figures.common import new_figure, stack_words
from lnexp.figures.training import _layer_colours

if TYPE_CHECKING:
    from lnexp.results import RunResult

TITLES = {
    "residual_rms": "Residual stream RMS after the block",
    "max_abs": "Largest |activation| of the block output",
    "max_over_median": "Largest / median |activation|",
    "excess_kurtosis": "Excess kurtosis of the block output",
    "grad_norm": "Weight-gradient norm of the block",
    "attn_logit_max": "Largest attention logit |q·k|/√d",
}


def _spans_decades(y: np.ndarray) -> bool:
    pos = y[np.isfinite(y) & (y > 0)]
    return bool(pos.size) and bool(np.all(y[np.isfinite(y)] > 0)) and pos.max() > 10 * pos.min()


def training_diagnostics(result: RunResult) -> Figure:
    """Every recorded diagnostic over the steps, one line per block."""
    tr = result.training
    assert tr is not None and tr.diagnostics is not None
    d = tr.diagnostics
    keys = d.recorded() if d.steps else []
    if not keys:  # interrupted or diverged before the first logged step
        fig = new_figure(8, 3)
        fig.text(0.5, 0.5, "no step was recorded (training ended before step 1)",
                 ha="center", va="center")
        return fig
    cols = 3
    rows = max(1, -(-len(keys) // cols))
    fig = new_figure(16, 4.6 * rows + 1.2)
    axes = fig.subplots(rows, cols, squeeze=False,
                        gridspec_kw={"left": 0.05, "right": 0.985, "bottom": 0.08,
                                     "top": 0.86 if rows > 1 else 0.78, "wspace": 0.2,
                                     "hspace": 0.32})
    steps = np.asarray(d.steps)
    colours = _layer_colours(len(d.blocks))
    for a, key in zip(axes.flat, keys, strict=False):
        y = d.array(key)
        for j, name in enumerate(d.blocks):
            label = name if j in (0, len(d.blocks) - 1) or len(d.blocks) <= 8 else None
            a.plot(steps, np.where(np.isfinite(y[:, j]), y[:, j], np.nan), "o-",
                   color=colours[j], markersize=3, linewidth=1.2, label=label)
        log = _spans_decades(y)
        if log:
            a.set_yscale("log")
        if key == "max_over_median":
            a.axhline(d.threshold, color="firebrick", linestyle=":", linewidth=1,
                      label=f"{d.threshold:g}× (massive)")
        a.set_title(TITLES[key] + (" (log)" if log else ""), fontsize=11)
        a.set_xlabel("step")
        a.grid(alpha=0.3, which="both")
        a.legend(fontsize=8, title="block", title_fontsize=8)
    for a in list(axes.flat)[len(keys):]:
        a.set_visible(False)
    tc = result.config.train
    assert tc is not None
    first = d.first_massive()
    massive = (f"max/median first above {d.threshold:g} at step {first['step']} "
               f"({first['block']})" if first else
               f"max/median never above {d.threshold:g}")
    fig.suptitle(f"Training diagnostics per block, {result.config.model.norm} "
                 f"{result.config.model.placement}: {tc.task}, lr {tc.lr:g}, every "
                 f"{tc.log_every} steps (and step 1, the last); {massive}\n"
                 f"{stack_words(result)}", fontsize=12)
    return fig
