"""rich renderers for a run. They take a Console (tests pass one with record=True)."""

from __future__ import annotations

import shlex
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lnexp.console import make_console
from lnexp.explain import axis_descriptions
from lnexp.numbers import SWEEP_CELLS, median_range, shape_words, show_value
from lnexp.registry import AXES, COMPARATORS, LISTED_METRICS

if TYPE_CHECKING:  # stats imports torch; `lnexp check` renders tables without it
    from lnexp.core import CompareOutcome, RunOutcome
    from lnexp.expect import Result
    from lnexp.history import RunRecord
    from lnexp.results import AxisStats, CompareResult, RunResult
    from lnexp.sweep.grid import Trial
    from lnexp.sweep.runner import SweepOutcome
    from lnexp.sweep.workers import Outcome


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
    for col in ("block", "output mean", "output std", "sample spread", "sample cosine",
                "‖∂L/∂W‖", "‖∂L/∂W‖/‖W‖"):
        t.add_column(col, justify="left" if col == "block" else "right")
    ratio = lay.grad_over_weight
    for i in rows:
        t.add_row(lay.names[i], fmt(lay.mean[i]), fmt(lay.std[i]), fmt(lay.spread[i]),
                  fmt(lay.cosine[i]), fmt(lay.grad_norm[i]), fmt(ratio[i]))
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


def compare_table(cmp: CompareResult, outcomes: list[Any] | None = None,
                  title: str | None = None) -> Table:
    """One column per norm (all of them, or `outcomes`); rows: per-feature and per-sample
    spreads, output mean / RMS and which axis ends up standardized."""
    cfg = cmp.config
    shown = cmp.outcomes if outcomes is None else outcomes
    t = Table(title=title or f"After each norm ({shape_words(cfg)})",
              box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    t.add_column("after the norm", no_wrap=True)
    for o in shown:
        # numbers never fold: the column is at least as wide as its widest number
        t.add_column(f"{o.name}\n{o.spec.title}", justify="right",
                     min_width=_number_width(o), max_width=max(16, _number_width(o)))

    def row(label: str, cell: Any) -> None:
        t.add_row(label, *["—" if o.result is None else cell(o.result) for o in shown])

    for label, cell in _compare_rows(_has_layers(cmp), _axes(cmp)):
        if label is None:
            t.add_section()
        else:
            row(label, cell)
    t.add_section()
    tol = next((o.result.verdicts["per_feature"].tolerance for o in cmp.outcomes
                if o.result is not None), None)
    label = "standardizes" + (f" (tol {tol:g})" if tol is not None else "")
    t.add_row(label, *[(o.standardizes or "not computed") for o in shown])
    if cfg.data.layout != "features":  # the norm's own axis, as a metrics.json key
        t.add_row("its own axis", *[o.spec.standardizes_axis for o in shown])
    if cmp.not_computed:
        t.add_row("not computed because", *[o.why or "" for o in shown])
    return t


def _axes(cmp: CompareResult) -> list[str]:
    """The axes any computed norm reports (per_group only with group), in registry order."""
    return [a for a in AXES if any(o.result is not None and a in o.result.post_stats.axes
                                   for o in cmp.outcomes)]


def _axis_cell(axis: str, stat: str) -> Callable[[RunResult], str]:
    def get(r: RunResult) -> str:
        found = r.post_stats.axes.get(axis)
        return "·" if found is None else _short_span(getattr(found, stat))
    return get


def _compare_rows(layers: bool, axes: list[str] | tuple[str, ...] = ("per_feature",
                                                                       "per_sample")
                  ) -> list[tuple[str | None, Any]]:
    """(label, cell function) per row of the comparison; (None, None) starts a section. An
    axis a norm does not report (per_group for all but group) reads '·'."""
    rows: list[tuple[str | None, Any]] = []
    for axis in axes:
        label = axis.replace("_", "-")
        rows.append((f"{label} mean", _axis_cell(axis, "mean")))
        rows.append((f"{label} var (biased)", _axis_cell(axis, "var")))
        rows.append((f"{label} var (unbiased)", _axis_cell(axis, "var_unbiased")))
        rows.append((None, None))
    rows.append(("output mean", lambda r: _short(r.post_stats.global_.mean)))
    rows.append(("output RMS", lambda r: _short(r.post_stats.global_.rms)))
    if layers:
        rows.append((None, None))
        rows.append(("grad norm, first / last block", lambda r: _short(r.layers.first_over_last)))
        rows.append(("activation std, last block", lambda r: _short(float(r.layers.std[-1]))))
    return rows


def _number_width(o: Any) -> int:
    """The widest number in a norm's column (its name and title wrap; numbers must not)."""
    if o.result is None:
        return 6
    rows = _compare_rows(o.result.layers is not None, list(o.result.post_stats.axes))
    cells = [cell(o.result) for label, cell in rows if label is not None]
    return max([len(o.name), 6, *(len(c) for c in cells)])


def _has_layers(cmp: CompareResult) -> bool:
    return any(o.result is not None and o.result.layers is not None for o in cmp.outcomes)


def compare_tables(cmp: CompareResult, width: int) -> list[Table]:
    """The comparison split into tables that each fit `width` columns: as many norms side by
    side as fit, the rest in further tables with the same rows (numbers never fold)."""
    title = f"After each norm ({shape_words(cmp.config)})"
    # the row labels never wrap: the longest one, plus padding
    label = 3 + max(len(text) for text, _ in _compare_rows(_has_layers(cmp), _axes(cmp))
                    if text is not None)
    groups: list[list[Any]] = [[]]
    used = label
    for o in cmp.outcomes:
        # the column: its widest number or its title (up to max_width 16), plus padding
        need = max(_number_width(o), min(16, len(o.spec.title)), 10) + 3
        if groups[-1] and used + need > width:
            groups.append([])
            used = label
        groups[-1].append(o)
        used += need
    if len(groups) == 1:
        return [compare_table(cmp, title=title)]
    return [compare_table(cmp, g, f"{title}, norms {', '.join(o.name for o in g)}")
            for g in groups]


def render_compare(console: Console, outcome: CompareOutcome) -> None:
    """Everything `lnexp compare` prints for a person."""
    cmp = outcome.result
    cfg = cmp.config
    n, c = cfg.data.n_samples, cfg.features
    weights = "the same Linear weights" if cfg.model.linear else "no Linear layer"
    if cfg.data.layout == "features":
        console.print(
            f"Every norm sees the same {n} × {c} inputs (samples × features) and {weights} "
            f"(seed {cfg.seed}, {cfg.model.mode} mode). Cells are min…max over the axis; "
            f"per-feature = over the {n} samples (dim 0), per-sample = over the {c} "
            f"features (dim 1); var biased = ÷n (what the norms use), unbiased = ÷(n−1) "
            f"(torch.var's default).\n")
    else:
        layer = "Conv2d" if cfg.data.layout == "image" else "Linear (per token)"
        weights = f"the same {layer} weights" if cfg.model.linear else "no layer"
        console.print(
            f"Every norm sees the same {shape_words(cfg)} and {weights} (seed {cfg.seed}, "
            f"{cfg.model.mode} mode). Cells are min…max over the axis; var biased = ÷n (what "
            f"the norms use), unbiased = ÷(n−1) (torch.var's default); · = not reported for "
            f"this norm.\n")
    for table in compare_tables(cmp, console.width):
        console.print(table)
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


def sweep_summary_table(rows: list[dict[str, Any]], group_keys: list[str],
                        metrics: list[str], title: str) -> Table:
    """One row per combination of the non-seed keys; each metric as median [min, max] over
    seeds, as the summary figure draws it."""
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    for k in group_keys:
        t.add_column(k, justify="right")
    t.add_column("n", justify="right")
    for m in metrics:
        t.add_column(m.replace("post_norm.", "").replace(".", " ", 1), justify="right")
    for r in rows:
        ns = f"{r['completed']}" + (f" ({r['failed']} failed)" if r["failed"] else "")
        t.add_row(*[show_value(r[k]) for k in group_keys], ns,
                  *[median_range(r["metrics"][m], _short) for m in metrics])
    return t


class SweepProgress:
    """Trial progress on stderr: a rich bar (done / failed / remaining, ETA) on a terminal,
    one plain line per finished trial otherwise or with bar=False (--quiet). Failures are
    printed as they happen."""

    def __init__(self, total: int, skipped: int = 0, console: Console | None = None,
                 bar: bool = True):
        self.console = console or make_console(stderr=True)
        self.total, self.done, self.failed = total, skipped, 0
        self.live = bar and self.console.is_terminal
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

# `lnexp runs` columns, most important first: what fits the width is shown, in table order.
_RUNS_PRIORITY = ("id", "status", "name", "kind", "started", "norm")


def runs_title(records: list[RunRecord], root: str, total: int) -> str:
    shown = f"{len(records)} of {total}" if len(records) != total else f"{total}"
    return f"{shown} runs under {root}, newest first (lnexp runs show ID prints one)"


def runs_table(records: list[RunRecord], width: int = 120) -> Table:
    """`lnexp runs`: one row per folder, newest first. Columns that do not fit `width` are
    left out, least important first (metrics, shape, norm, ...); the id, which `runs show`
    takes, always stays, and no column is squeezed until its values fold."""
    cols: dict[str, tuple[str, str, list[str]]] = {}  # key -> (header, justify, cells)
    cols["started"] = ("started", "left",
                       [(r.started or "")[5:19].replace("T", " ") for r in records])
    cols["kind"] = ("kind", "left", [r.kind for r in records])
    cols["status"] = ("status", "left", [r.status for r in records])
    cols["name"] = ("name", "left", [r.name for r in records])
    cols["norm"] = ("norm", "left", [(r.norm or "").replace(",", ", ") for r in records])
    cols["shape"] = ("shape / trials", "left", [r.detail for r in records])
    for key in LISTED_METRICS:  # e.g. post_norm.per_feature.var.spread
        _, axis, stat, reducer = key.split(".")
        cols[key] = (f"{axis.replace('_', '-')}\n{stat} {reducer}", "right",
                     [fmt(r.metrics[key]) if key in r.metrics else "" for r in records])
    cols["id"] = ("id", "left", [r.id for r in records])

    def natural(key: str) -> int:
        header, _, cells = cols[key]
        longest = max((len(c) for c in cells), default=0)
        if key in ("name", "norm"):  # these wrap at word boundaries within 24 characters
            longest = min(longest, 24)
        return max(longest, *(len(line) for line in header.split("\n")))

    order = [*_RUNS_PRIORITY, *LISTED_METRICS, "shape"]
    chosen: set[str] = set()
    used = -1  # SIMPLE_HEAD, pad_edge=False: a space at each edge, 3 between columns
    for key in order:
        need = natural(key) + 3
        if used + need <= width or key == "id":
            chosen.add(key)
            used += need
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for key, (header, justify, _) in cols.items():
        if key in chosen:
            wraps = key in ("name", "norm")
            t.add_column(header, justify=justify, no_wrap=not wraps,  # type: ignore[arg-type]
                         overflow="fold", max_width=24 if wraps else None,
                         min_width=natural(key))
    for i in range(len(records)):
        t.add_row(*[cells[i] for key, (_, _, cells) in cols.items() if key in chosen])
    return t


def render_runs(console: Console, records: list[RunRecord], root: str, total: int) -> None:
    """Everything `lnexp runs` prints for a person (the folders' text fields escaped:
    console.printable)."""
    import dataclasses

    from lnexp.console import printable

    records = [dataclasses.replace(r, **{f.name: printable(getattr(r, f.name))
                                         for f in dataclasses.fields(r)}) for r in records]
    console.print(runs_title(records, root, total))
    console.print(runs_table(records, console.width))


def render_run_details(console: Console, info: dict[str, Any]) -> None:
    """`lnexp runs show`: what the folder is, its status and its main results (every text
    field escaped: console.printable)."""
    from lnexp.console import printable

    info = printable(info)
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
    if not counts["completed"]:
        console.print(f"0 of {counts['total']} trials completed: nothing to summarize")
        console.print(f"sweep folder: {outcome.sweep_dir}  (sweep.json)")
        return
    console.print(sweep_summary_table(
        outcome.rows, d.group_keys, outcome.plan.metrics,
        f"{counts['completed']} of {counts['total']} trials completed; "
        + escape(SWEEP_CELLS.format(over="seeds" if "seed" in d.keys else "repeats"))))
    png = ", summary.png" if (outcome.sweep_dir / "summary.png").exists() else ""
    console.print(f"sweep folder: {outcome.sweep_dir}  (sweep.json, summary.csv{png})")
