"""The tables of one run: the summary per axis, the chosen sample, the per-layer profile and
training."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from lnexp.explain import axis_descriptions
from lnexp.tables.common import expectations_table, fmt

if TYPE_CHECKING:  # stats imports torch; `lnexp check` renders tables without it
    from lnexp.core import RunOutcome
    from lnexp.results import AxisStats, RunResult


def _span(a: np.ndarray) -> str:
    with np.errstate(invalid="ignore"):
        if a.size == 0 or np.all(np.isnan(a)):
            return "n/a"
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return fmt(lo) if lo == hi else f"{fmt(lo)} … {fmt(hi)}"


def summary_table(result: RunResult) -> Table:
    """Pre vs post: the spread of per-feature and per-sample stats, and global stats."""
    name = result.config.model.norm
    t = Table(title=f"{result.norm.title} ({name}): {result.norm.summary}",
              box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("statistic (min … max over the axis)")
    t.add_column(f"before {name}", justify="right")
    t.add_column(f"after {name}", justify="right")
    pre, post = result.pre_stats, result.post_stats

    def axis_rows(label: str, a: AxisStats, b: AxisStats) -> None:
        t.add_row(f"{label} mean", _span(a.mean), _span(b.mean))
        t.add_row(f"{label} var (biased, ÷n)", _span(a.var), _span(b.var))
        t.add_row(f"{label} var (unbiased, ÷(n−1))", _span(a.var_unbiased),
                  _span(b.var_unbiased))

    for axis, label in axis_row_labels(result.config).items():
        axis_rows(label, pre.axis(axis), post.axis(axis))
        t.add_section()
    g0, g1 = pre.global_, post.global_
    t.add_row("global mean", fmt(g0.mean), fmt(g1.mean))
    t.add_row("global var (biased)", fmt(g0.var), fmt(g1.var))
    t.add_row("global RMS", fmt(g0.rms), fmt(g1.rms))
    t.add_row("global min / max", f"{fmt(g0.min)} / {fmt(g0.max)}",
              f"{fmt(g1.min)} / {fmt(g1.max)}")
    v = result.verdicts
    t.add_section()
    t.add_row("standardized (|mean|, |var−1| ≤ "
              f"{v['per_feature'].tolerance:g})", "", result.standardizes)
    return t


def axis_row_labels(cfg: Any) -> dict[str, str]:
    """Row label per axis, e.g. 'per-feature (over 100 samples, dim 0)' on features,
    'per-instance ((sample, channel) over its H·W = 8×8 positions)' on images."""
    n, c = cfg.data.n_samples, cfg.features
    out = {}
    for axis, (unit, over) in axis_descriptions(cfg).items():
        out[axis] = f"{axis.replace('_', '-')} ({unit}, over {over})"
    if cfg.data.layout == "features":  # the tutorial's rows, as they always read
        out["per_feature"] = f"per-feature (over {_plural(n, 'sample')}, dim 0)"
        out["per_sample"] = f"per-sample (over {_plural(c, 'feature')}, dim 1)"
    return out


def _plural(k: int, word: str) -> str:
    return f"{k} {word}" if k == 1 else f"{k} {word}s"


def sample_table(result: RunResult, max_values: int = 12) -> Table:
    """The chosen sample's statistics across its features, and its values when few."""
    i = result.config.sample_index
    c = result.config.features
    name = result.config.model.norm
    t = Table(title=f"Sample {i} (over its {c} features)", box=box.SIMPLE_HEAD,
              title_justify="left")
    t.add_column("statistic")
    t.add_column(f"before {name}", justify="right")
    t.add_column(f"after {name}", justify="right")
    a, b = result.sample_pre, result.sample_post
    t.add_row("mean", fmt(a.mean), fmt(b.mean))
    t.add_row("var (biased, ÷n)", fmt(a.var), fmt(b.var))
    t.add_row(f"var (unbiased, ÷(n−1), n={c})", fmt(a.var_unbiased), fmt(b.var_unbiased))
    t.add_row("std (biased)", fmt(a.std), fmt(b.std))
    if c <= max_values:
        t.add_row("values", _values(a.values), _values(b.values))
    return t


def _values(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.4f}" for x in v) + "]"


def layer_table(result: RunResult, max_rows: int = 12) -> Table:
    """Per block at initialization: output mean/std and the weight's gradient norm (depth > 1).
    Deep stacks show every k-th block plus the last, at most about `max_rows` rows."""
    lay = result.layers
    m = result.config.model
    n = len(lay.names)
    step = max(1, -(-n // max_rows))
    rows = sorted(set(range(0, n, step)) | {n - 1})
    shown = f", every {_ordinal(step)} shown" if step > 1 else ""
    t = Table(title=f"Per layer at initialization ({n} blocks{shown}): {m.placement} "
                    f"{m.norm}, {m.activation}, {m.init} init",
              caption=f"‖∂L/∂W‖ first/last block: {fmt(lay.first_over_last)}  ·  L = MSE to a "
                      f"random N(0,1) target = {fmt(lay.loss)}",
              caption_justify="left", box=box.SIMPLE_HEAD, title_justify="left", min_width=90)
    logits = lay.attn_logit_max
    for col in ("block", "output mean", "output std", "output RMS", "sample spread",
                "sample cosine", "‖∂L/∂W‖", "‖∂L/∂W‖/‖W‖",
                *(("max |q·k|/√d",) if logits is not None else ())):
        t.add_column(col, justify="left" if col == "block" else "right")
    ratio = lay.grad_over_weight
    rms = lay.hidden_rms if lay.hidden_rms is not None else [None] * n
    for i in rows:
        t.add_row(lay.names[i], fmt(lay.mean[i]), fmt(lay.std[i]), fmt(rms[i]),
                  fmt(lay.spread[i]), fmt(lay.cosine[i]), fmt(lay.grad_norm[i]), fmt(ratio[i]),
                  *((fmt(logits[i]),) if logits is not None else ()))
    return t


def _ordinal(k: int) -> str:
    return f"{k}{'nd' if k == 2 else 'rd' if k == 3 else 'th'}"


def training_table(result: RunResult) -> Table:
    """The training run in brief: last evaluation in eval and train mode, last losses."""
    tr = result.training
    tc = result.config.train
    status = (" (interrupted)" if tr.interrupted else " (diverged)" if tr.diverged else "")
    t = Table(title=f"Training: {tc.task}, {tc.optimizer} lr {tc.lr:g}, batch {tc.batch_size}, "
                    f"{tr.steps_done}/{tc.steps} steps{status}",
              box=box.SIMPLE_HEAD, title_justify="left", min_width=90)
    t.add_column(f"held-out ({tc.n_heldout}) at step {tr.evals[-1].step}")
    t.add_column("eval mode", justify="right")
    t.add_column(f"train mode (batches of {tc.batch_size})", justify="right")
    e = tr.evals[-1]
    t.add_row(f"loss ({tr.loss_name})", fmt(e.loss_eval_mode), fmt(e.loss_train_mode))
    bpc = tr.bits_per_char(e)
    if bpc is not None:  # charlm: accuracy of the next character, no fixed class count
        first = tr.bits_per_char(tr.evals[0])
        t.add_row(f"bits per character (step 0: {fmt(first)})", fmt(bpc), "")
        t.add_row("next-character accuracy", fmt(e.acc_eval_mode), fmt(e.acc_train_mode))
    elif tr.classification:
        t.add_row(f"accuracy (chance {1 / tc.outputs:.2f})", fmt(e.acc_eval_mode),
                  fmt(e.acc_train_mode))
    if tr.steps_done:
        tail = max(1, tr.steps_done // 10)
        t.add_row(f"train loss, mean of the last {tail} steps",
                  fmt(float(np.mean(tr.loss[-tail:]))), "")
    return t


def render_run(console: Console, outcome: RunOutcome) -> None:
    """Everything `lnexp run` prints for a person."""
    result = outcome.result
    console.print(summary_table(result))
    console.print(sample_table(result))
    if result.layers is not None:
        console.print(layer_table(result))
    if result.training is not None:
        console.print(training_table(result))
    for line in outcome.explanation:
        console.print(f"• {line}", soft_wrap=False)
    console.print(f"\nrun folder: {outcome.run_dir}")
    if outcome.expectations:
        console.print(expectations_table(outcome.expectations))
