"""rich renderers for a run. They take a Console (tests pass one with record=True)."""

from __future__ import annotations

import contextlib
import errno
import os
import shlex
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from lnexp.explain import standardizes
from lnexp.numbers import show_value
from lnexp.registry import COMPARATORS, LISTED_METRICS

if TYPE_CHECKING:  # stats imports torch; `lnexp check` renders tables without it
    from lnexp.core import CompareOutcome, RunOutcome
    from lnexp.expect import Result
    from lnexp.history import RunRecord
    from lnexp.results import AxisStats, CompareResult, RunResult
    from lnexp.sweep.grid import Trial
    from lnexp.sweep.runner import SweepOutcome
    from lnexp.sweep.workers import Outcome


def make_console(stderr: bool = False) -> Console:
    """A Console that uses colour only on a terminal without NO_COLOR or CI; otherwise plain
    text at a fixed width of 120 columns (no terminal-width tricks in pipes and CI logs)."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty() and os.environ.get("TERM") != "dumb"
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    plain = not tty or "NO_COLOR" in os.environ or ci
    if plain:
        return _Console(file=stream, no_color=True, highlight=False, width=120,
                        force_terminal=False, emoji=False, soft_wrap=False)
    return _Console(file=stream, highlight=False)


class _Console(Console):
    """A Console that lets a closed pipe reach the CLI (which exits 141, quietly) instead of
    rich's own exit 1, the "expectation failed" code."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")


def fmt(x: float) -> str:
    """A number for a table: NaN as 'n/a', otherwise 4 significant digits, fixed point when
    that reads better."""
    if x is None or not np.isfinite(x):
        return "n/a" if x is None or np.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.3e}"


def _span(a: np.ndarray) -> str:
    with np.errstate(invalid="ignore"):
        if a.size == 0 or np.all(np.isnan(a)):
            return "n/a"
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return fmt(lo) if lo == hi else f"{fmt(lo)} … {fmt(hi)}"


def summary_table(result: RunResult) -> Table:
    """Pre vs post: the spread of per-feature and per-sample stats, and global stats."""
    name = result.config.model.norm
    n, c = result.config.data.n_samples, result.config.features
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

    axis_rows(f"per-feature (over {_plural(n, 'sample')}, dim 0)", pre.per_feature,
              post.per_feature)
    t.add_section()
    axis_rows(f"per-sample (over {_plural(c, 'feature')}, dim 1)", pre.per_sample,
              post.per_sample)
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
              f"{v['per_feature'].tolerance:g})", "",
              standardizes(v["per_feature"].standardized, v["per_sample"].standardized))
    return t


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
    for col in ("block", "output mean", "output std", "‖∂L/∂W‖"):
        t.add_column(col, justify="left" if col == "block" else "right")
    for i in rows:
        t.add_row(lay.names[i], fmt(lay.mean[i]), fmt(lay.std[i]), fmt(lay.grad_norm[i]))
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
    if tr.classification:
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


# --------------------------------------------------------------------------- compare

def _short(x: float) -> str:
    """A compact number for the comparison table (six columns must fit 120 characters)."""
    if x is None or not np.isfinite(x):
        return fmt(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.3g}"
    return f"{x:.1e}"


def _short_span(a: np.ndarray) -> str:
    """min…max, 3 significant digits; all within 1e-5 of 0 reads '|x|≤3e-08' (float32
    rounding of an exact 0)."""
    with np.errstate(invalid="ignore"):
        if a.size == 0 or np.all(np.isnan(a)):
            return "n/a"
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if 0 < max(abs(lo), abs(hi)) < 1e-5:
        return f"|x|≤{max(abs(lo), abs(hi)):.0e}"
    a_, b_ = _short(lo), _short(hi)
    return a_ if a_ == b_ else f"{a_}…{b_}"


def compare_table(cmp: CompareResult) -> Table:
    """One column per norm; rows: per-feature and per-sample spreads, output mean / RMS and
    which axis ends up standardized."""
    cfg = cmp.config
    n, c = cfg.data.n_samples, cfg.features
    t = Table(title=f"After each norm ({n} samples × {c} features)", box=box.SIMPLE_HEAD,
              title_justify="left", pad_edge=False)
    t.add_column("after the norm", no_wrap=True)
    for o in cmp.outcomes:
        t.add_column(f"{o.name}\n{o.spec.title}", justify="right", overflow="fold",
                     max_width=16)

    def row(label: str, cell: Any) -> None:
        t.add_row(label, *["—" if o.result is None else cell(o.result) for o in cmp.outcomes])

    for axis in ("per_feature", "per_sample"):
        label = axis.replace("_", "-")
        row(f"{label} mean", lambda r, a=axis: _short_span(getattr(r.post_stats, a).mean))
        row(f"{label} var (biased)",
            lambda r, a=axis: _short_span(getattr(r.post_stats, a).var))
        row(f"{label} var (unbiased)",
            lambda r, a=axis: _short_span(getattr(r.post_stats, a).var_unbiased))
        t.add_section()
    row("output mean", lambda r: _short(r.post_stats.global_.mean))
    row("output RMS", lambda r: _short(r.post_stats.global_.rms))
    if any(o.result is not None and o.result.layers is not None for o in cmp.outcomes):
        t.add_section()
        row("grad norm, first / last block", lambda r: _short(r.layers.first_over_last))
        row("activation std, last block", lambda r: _short(float(r.layers.std[-1])))
    t.add_section()
    tol = next((o.result.verdicts["per_feature"].tolerance for o in cmp.outcomes
                if o.result is not None), None)
    label = "standardizes" + (f" (tol {tol:g})" if tol is not None else "")
    t.add_row(label, *[(o.standardizes or "not computed") for o in cmp.outcomes])
    if cmp.not_computed:
        t.add_row("not computed because", *[
            o.why or "" for o in cmp.outcomes])
    return t


def render_compare(console: Console, outcome: CompareOutcome) -> None:
    """Everything `lnexp compare` prints for a person."""
    cmp = outcome.result
    cfg = cmp.config
    n, c = cfg.data.n_samples, cfg.features
    weights = "the same Linear weights" if cfg.model.linear else "no Linear layer"
    console.print(f"Every norm sees the same {n} × {c} inputs (samples × features) and {weights} "
                  f"(seed {cfg.seed}, {cfg.model.mode} mode). Cells are min…max over the axis; "
                  f"per-feature = over the {n} samples (dim 0), per-sample = over the {c} "
                  f"features (dim 1); var biased = ÷n (what the norms use), unbiased = ÷(n−1) "
                  f"(torch.var's default).\n")
    console.print(compare_table(cmp))
    console.print(f"Axes: {outcome.axes}")
    for _name, norm_lines in outcome.explanations:
        console.print(f"• {norm_lines[0]}", soft_wrap=False)
        for extra in norm_lines[1:]:
            console.print(f"    – {extra}", soft_wrap=False)
    console.print(f"\ncompare folder: {outcome.compare_dir}")


def expectations_table(results: list[Result]) -> Table:
    """One row per expectation: metric.reducer, comparison, value, PASS/FAIL."""
    failed = sum(not r["passed"] for r in results)
    verdict = f"{failed} of {len(results)} failed" if failed else f"all {len(results)} passed"
    t = Table(title=f"Expectations: {verdict}", box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("metric.reducer")
    t.add_column("expected", justify="right")
    t.add_column("value", justify="right")
    t.add_column("result")
    for r in results:
        tol = f" ± {r['tol']:g}" if r["tol"] is not None else ""
        bound = f"{COMPARATORS[r['op']]} {r['bound']:g}{tol}"
        value = fmt(r["value"]) if r["value"] is not None else "NaN/Inf"
        mark = "PASS" if r["passed"] else "[bold red]FAIL[/]"
        t.add_row(f"{r['metric']}.{r['reducer']}", bound, value,
                  mark + (f" ({r['note']})" if r.get("note") and not r["passed"] else ""))
    return t


@contextlib.contextmanager
def progress(console: Console) -> Iterator[Callable[[int, int, float], None]]:
    """A training progress callback: a rich bar (steps, loss) on a terminal, otherwise a plain
    line every tenth of the steps, both on `console` (stderr)."""
    if console.is_terminal:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn

        bar = Progress(TextColumn("training"), BarColumn(), MofNCompleteColumn(),
                       TextColumn("loss {task.fields[loss]}"), console=console, transient=True)
        task = bar.add_task("train", total=None, loss="…")
        with bar:
            yield lambda step, total, loss: bar.update(task, completed=step, total=total,
                                                       loss=fmt(loss))
        return

    def plain(step: int, total: int, loss: float) -> None:
        every = max(1, total // 10)
        if step % every == 0 or step == total:
            console.print(f"training step {step}/{total}  loss {fmt(loss)}")

    yield plain


# --------------------------------------------------------------------------- sweep

def trials_table(trials: list[Trial], keys: list[str], title: str) -> Table:
    """`lnexp sweep --dry-run`: one row per trial with its swept values and config hash."""
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("#", justify="right")
    for k in keys:
        t.add_column(k, justify="right")
    t.add_column("config hash")
    t.add_column("run folder")
    for trial in trials:
        t.add_row(str(trial.index), *[show_value(trial.params[k]) for k in keys], trial.hash,
                  trial.dirname)
    return t


def mean_pm(mean: float | None, std: float | None) -> str:
    """'0.1234 ± 0.0100', 'n/a' when nothing was computed, no ± for one value."""
    if mean is None:
        return "n/a"
    return fmt(mean) if std is None else f"{fmt(mean)} ± {_short(std)}"


def sweep_summary_table(rows: list[dict[str, Any]], group_keys: list[str],
                        metrics: list[str], title: str) -> Table:
    """One row per combination of the non-seed keys; each metric as mean ± std over seeds."""
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for k in group_keys:
        t.add_column(k, justify="right")
    t.add_column("n", justify="right")
    for m in metrics:
        t.add_column(m.replace("post_norm.", "").replace(".", " ", 1), justify="right")
    for r in rows:
        ns = f"{r['completed']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        t.add_row(*[show_value(r[k]) for k in group_keys], ns,
                  *[mean_pm(r["metrics"][m]["mean"], r["metrics"][m]["std"]) for m in metrics])
    return t


class SweepProgress:
    """Trial progress on stderr: a rich bar (done / failed / remaining, ETA) on a terminal,
    one plain line per finished trial otherwise. Failures are printed as they happen."""

    def __init__(self, total: int, skipped: int = 0, console: Console | None = None):
        self.console = console or make_console(stderr=True)
        self.total, self.done, self.failed = total, skipped, 0
        self.live = self.console.is_terminal
        self._progress: Any = None
        self._task: Any = None

    def __enter__(self) -> SweepProgress:
        if self.live:
            from rich.progress import (
                BarColumn,
                MofNCompleteColumn,
                Progress,
                TextColumn,
                TimeElapsedColumn,
                TimeRemainingColumn,
            )

            self._progress = Progress(TextColumn("sweep"), BarColumn(), MofNCompleteColumn(),
                                      TextColumn("{task.fields[state]}"), TimeElapsedColumn(),
                                      TextColumn("ETA"), TimeRemainingColumn(),
                                      console=self.console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task("sweep", total=self.total,
                                                 completed=self.done, state=self._state())
        return self

    def __exit__(self, *exc: Any) -> None:
        if self._progress is not None:
            self._progress.stop()

    def _state(self) -> str:
        left = self.total - self.done - self.failed
        return f"done {self.done} · failed {self.failed} · remaining {left}"

    def trial_done(self, label: str, outcome: Outcome) -> None:
        status = outcome["status"]
        if status == "completed":
            self.done += 1
        elif status == "failed":
            self.failed += 1
        n = self.done + self.failed
        secs = outcome.get("seconds")
        took = f" ({secs:.2f} s)" if secs is not None else ""
        if status == "failed":
            self.console.print(f"[{n}/{self.total}] FAILED {label}: {outcome['error']}",
                               markup=False, highlight=False)
        elif not self.live:
            self.console.print(f"[{n}/{self.total}] {status} {label}{took}", markup=False,
                               highlight=False)
        if self._progress is not None:
            self._progress.update(self._task, completed=n, state=self._state())


# --------------------------------------------------------------------------- runs

def runs_table(records: list[RunRecord], root: str, total: int) -> Table:
    """`lnexp runs`: one row per folder, newest first."""
    shown = f"{len(records)} of {total}" if len(records) != total else f"{total}"
    t = Table(title=f"{shown} runs under {root}, newest first (lnexp runs show ID prints "
                    f"one)", box=box.SIMPLE_HEAD,
              title_justify="left", pad_edge=False)
    for col in ("started", "kind", "status"):
        t.add_column(col, no_wrap=True)
    # name, norm(s) and shape may wrap; the id (what `runs show` takes) never shrinks
    t.add_column("name", overflow="fold", max_width=24)
    t.add_column("norm", overflow="fold", max_width=14)
    t.add_column("shape / trials", overflow="fold", max_width=16)
    for key in LISTED_METRICS:  # e.g. post_norm.per_feature.var.spread
        _, axis, stat, reducer = key.split(".")
        t.add_column(f"{axis.replace('_', '-')}\n{stat} {reducer}", justify="right",
                     min_width=11)
    t.add_column("id", no_wrap=True, min_width=6)
    for r in records:
        m = r.metrics
        t.add_row((r.started or "")[5:19].replace("T", " "), r.kind, r.status, r.name,
                  r.norm or "", r.detail,
                  *[fmt(m[k]) if k in m else "" for k in LISTED_METRICS],
                  r.id)
    return t


def render_run_details(console: Console, info: dict[str, Any]) -> None:
    """`lnexp runs show`: what the folder is, its status and its main results."""
    rec = info["record"]
    t = Table(box=box.SIMPLE_HEAD, show_header=False, title=f"{rec['kind']} {rec['path']}",
              title_justify="left")
    t.add_column("key")
    t.add_column("value", overflow="fold")
    for key in ("name", "kind", "status", "norm", "detail", "started", "finished", "error"):
        if rec.get(key):
            t.add_row(key, str(rec[key]))
    run = info.get("run") or {}
    if run.get("argv"):
        # shell-quoted: pasted into a shell it runs the same command
        t.add_row("command", shlex.join(["lnexp", *map(str, run["argv"][1:])]))
    for k, v in (rec.get("metrics") or {}).items():
        t.add_row(k, fmt(v))
    console.print(t)
    if info.get("explanation"):
        for line in info["explanation"]:
            console.print(f"• {line}", soft_wrap=False)
    if info.get("norms"):
        for n in info["norms"]:
            console.print(f"• {n['name']}: {n['status']}"
                          + (f", standardizes {n['standardizes']}" if n["standardizes"] else "")
                          + (f" ({n['reason']})" if n["reason"] else ""))
    sweep = info.get("sweep")
    if sweep and sweep.get("summary"):
        console.print(sweep_summary_table(sweep["summary"], sweep["group_keys"],
                                          sweep["metrics"], f"summary: {sweep['command']}"))


def render_sweep(console: Console, outcome: SweepOutcome) -> None:
    """Everything `lnexp sweep` prints for a person once the trials ran."""
    d, counts = outcome.plan.definition, outcome.counts
    console.print(sweep_summary_table(
        outcome.rows, d.group_keys, outcome.plan.metrics,
        f"{counts['completed']} of {counts['total']} trials completed; mean ± std over "
        f"{'seeds' if 'seed' in d.keys else 'repeats'} (std with n−1), n = completed "
        f"trials"))
    png = ", summary.png" if (outcome.sweep_dir / "summary.png").exists() else ""
    console.print(f"sweep folder: {outcome.sweep_dir}  (sweep.json, summary.csv{png})")
