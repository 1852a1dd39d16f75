"""The training figure: loss, held-out accuracy in eval and train mode, and per-layer gradient
norm and update ratio over the steps."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure

from lnexp.figures.common import POST, PRE, new_figure, stack_words

if TYPE_CHECKING:
    from lnexp.results import RunResult


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
    fig = new_figure(16, 10)
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
                 f"{stack_words(result)}", fontsize=13)
    return fig


def _positive(y: np.ndarray) -> np.ndarray:
    return np.where(y > 0, y, np.nan)


def _layer_colours(n: int) -> list[tuple[float, float, float, float]]:
    from matplotlib import colormaps

    cmap = colormaps["viridis"]
    return [cmap(i / max(1, n - 1) * 0.9) for i in range(n)]
