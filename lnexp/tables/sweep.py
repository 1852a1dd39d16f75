"""The sweep's tables: the trials to run, the live progress and the summary over seeds."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from lnexp.console import make_console
from lnexp.numbers import SWEEP_CELLS, median_range, show_value
from lnexp.tables.common import short

if TYPE_CHECKING:
    from lnexp.sweep.grid import Trial
    from lnexp.sweep.runner import SweepOutcome
    from lnexp.sweep.workers import Outcome


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
                  *[median_range(r["metrics"][m], short) for m in metrics])
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
