"""`lnexp sweep`: plan, run the trials, render the summary."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from lnexp.cli.base import (
    _emit,
    app,
    guarded,
)
from lnexp.cli.options import (
    ExecutorKind,
    GridOpt,
    JsonOpt,
    MetricOpt,
    OutOpt,
    OverridesArg,
    SetOpt,
    _overrides,
)
from lnexp.errors import (
    EXIT_PARTIAL,
)

if TYPE_CHECKING:
    from lnexp.sweep.runner import SweepOutcome, SweepPlan


SweepConfigArg = Annotated[Path | None, typer.Argument(
    help="YAML config or preset name (its sweep: block, if any, adds grid axes); optional with "
         "--resume.", metavar="CONFIG", show_default=False)]
SeedsOpt = Annotated[int | None, typer.Option("--seeds", min=1, metavar="N",
                                              help="Short for --grid seed=0:N.")]
JobsOpt = Annotated[int | None, typer.Option(
    "--jobs", "-j", min=1, metavar="N",
    help="Worker processes (default: number of CPUs); on an existing Dask cluster, at most this "
         "many trials at once (default: its worker threads).")]
ExecutorOpt = Annotated[ExecutorKind | None, typer.Option(
    "--executor",
    help="Where trials run: local (worker processes here, the default) or dask (a Dask "
         "LocalCluster of -j workers, or the cluster of --scheduler / LNEXP_DASK_SCHEDULER). "
         "Needs pip install 'lnexp[dask]'.")]
SchedulerOpt = Annotated[str | None, typer.Option(
    "--scheduler", metavar="tcp://HOST:PORT",
    help="Run the trials on this existing Dask cluster (implies --executor dask; with "
         "--executor dask alone: LNEXP_DASK_SCHEDULER, else Dask's DASK_SCHEDULER_ADDRESS).")]
SchedulerFileOpt = Annotated[str | None, typer.Option(
    "--scheduler-file", metavar="PATH",
    help="The existing Dask cluster whose scheduler wrote this file (dask scheduler "
         "--scheduler-file PATH); waits for the file like Dask does. Implies --executor dask.")]
WaitWorkersOpt = Annotated[int, typer.Option(
    "--wait-workers", min=1, metavar="N",
    help="On an existing cluster, wait until N workers have joined before the first trial "
         "(workers that join later are used too).")]
WaitTimeoutOpt = Annotated[float, typer.Option(
    "--wait-timeout", min=0.001, metavar="SECONDS",
    help="How long to wait for --wait-workers (and for --scheduler-file) before exit 2.")]
CollectOpt = Annotated[bool, typer.Option(
    "--collect", help="Dask workers send each trial folder back and this process writes it "
                      "(workers without the shared filesystem).")]
DryRunOpt = Annotated[bool, typer.Option(
    "--dry-run", help="Validate every trial, print the count and the trials, run nothing.")]
FailFastOpt = Annotated[bool, typer.Option(
    "--fail-fast", help="Stop starting trials after the first failure.")]
ResumeOpt = Annotated[Path | None, typer.Option(
    "--resume", metavar="SWEEP_DIR",
    help="Continue a sweep folder: skip completed trials, rerun failed or interrupted ones; "
         "refused if the definition changed.")]
XOpt = Annotated[str | None, typer.Option(
    "--x", metavar="KEY",
    help="Swept key on the figure's x axis (default: the first numeric swept key).")]
FigureOpt = Annotated[bool, typer.Option(
    "--figure/--no-figure",
    help="Draw summary.png (per-trial figures follow output.figures).")]
SweepQuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only the sweep folder; stderr keeps one line per trial, no "
                          "bar.")]


@app.command("sweep", short_help="Run a grid of trials in parallel and aggregate over seeds.")
@guarded
def sweep_cmd(config: SweepConfigArg = None, overrides: OverridesArg = None,
              grid: GridOpt = None, set_: SetOpt = None, seeds: SeedsOpt = None,
              jobs: JobsOpt = None, executor: ExecutorOpt = None,
              scheduler: SchedulerOpt = None, scheduler_file: SchedulerFileOpt = None,
              wait_workers: WaitWorkersOpt = 1, wait_timeout: WaitTimeoutOpt = 300.0,
              collect: CollectOpt = False, dry_run: DryRunOpt = False,
              fail_fast: FailFastOpt = False, resume: ResumeOpt = None,
              metric: MetricOpt = None, x: XOpt = None,
              figure: FigureOpt = True, json_: JsonOpt = False, quiet: SweepQuietOpt = False,
              output_dir: OutOpt = None) -> None:
    """Run a grid of trials in parallel worker processes and aggregate them over seeds, e.g.
    `lnexp sweep configs/sweep_batch.yaml` or `lnexp sweep configs/default.yaml --grid
    model.norm=bn,ln --grid data.n_samples=2,8,32 --seeds 3`.

    Writes OUTPUT_DIR/<name>-sweep/<timestamp>-<id>/ with one run folder per trial, sweep.json
    (command, grid, each trial's status and config hash), summary.csv (mean, std, n over seeds
    per combination of the other keys) and summary.png. Exit 3 when some trials failed (the
    others still run unless --fail-fast), 2 for a bad grid or trial (nothing runs).
    """
    from lnexp import overrides as hints
    from lnexp import presets, tables
    from lnexp.api import compute
    from lnexp.errors import ConfigError

    try:
        plan = compute.plan_sweep(None if config is None else presets.resolve(config),
                                  list(grid or []), _overrides(set_, overrides), seeds,
                                  list(metric or []), resume, output_dir, jobs, x,
                                  executor and executor.value, scheduler, collect,
                                  scheduler_file=scheduler_file, wait_workers=wait_workers,
                                  wait_timeout=wait_timeout)
    except ConfigError as exc:
        raise ConfigError(hints.annotate(exc.problems, list(set_ or []),
                                         list(overrides or []))) from None
    if dry_run:
        _render_sweep_plan(plan, json_)
        return

    @contextlib.contextmanager
    def progress(total: int, skipped: int) -> Iterator[tables.SweepProgress]:
        if skipped and not quiet and not json_:
            typer.echo(f"resuming {plan.root}: {skipped} of {total} trials already "
                       f"completed, running {total - skipped}", err=True)
        with tables.SweepProgress(total, skipped, bar=not quiet) as bar:
            yield bar

    outcome = compute.sweep(plan, list(sys.argv), fail_fast, figure, progress)
    if json_:
        _emit({**outcome.folder.doc, "sweep_dir": str(outcome.sweep_dir)})
    elif quiet:
        typer.echo(str(outcome.sweep_dir))
    else:
        tables.render_sweep(tables.make_console(), outcome)
    if outcome.not_completed:
        _report_failed(outcome)


def _report_failed(outcome: SweepOutcome) -> None:
    """Exit 3 with the trials that did not complete (at most 20 listed) on stderr."""
    failed = outcome.not_completed
    total = outcome.counts["total"]
    if outcome.status == "failed":
        typer.echo(f"nothing completed (exit {EXIT_PARTIAL}): 0 of {total} trials "
                   f"completed, so there is no summary and no summary.png:", err=True)
    else:
        typer.echo(f"partly done (exit {EXIT_PARTIAL}): {len(failed)} of {total} trials "
                   f"not completed:", err=True)
    for t in failed[:20]:
        typer.echo(f"  {t['run_dir']}: {t['status']}: {t['error'] or 'not run'}", err=True)
    if len(failed) > 20:
        typer.echo(f"  ... and {len(failed) - 20} more (see sweep.json)", err=True)
    typer.echo(f"rerun them with: lnexp sweep --resume {outcome.sweep_dir}", err=True)
    raise typer.Exit(EXIT_PARTIAL)


def _render_sweep_plan(plan: SweepPlan, json_: bool) -> None:
    """`lnexp sweep --dry-run`: the trials that would run."""
    d, trials = plan.definition, plan.trials
    if json_:
        _emit({"kind": "sweep_plan", "count": len(trials), "keys": d.keys,
               "definition": d.as_dict(),
               "trials": [{"index": t.index, "params": t.params, "hash": t.hash,
                           "run_dir": t.dirname} for t in trials]})
        return
    from lnexp import tables

    console = tables.make_console()
    shape = " × ".join(f"{len(a.points)} {'+'.join(a.keys)}" for a in d.axes)
    console.print(tables.trials_table(trials, d.keys, f"{len(trials)} trials: {shape} "
                                                      f"(dry run, nothing ran)"))
    where = (plan.root if plan.resume is not None
             else f"{plan.root}/{plan.name}-sweep/<timestamp>-<id>/")
    ex = plan.executor
    on = (f"{min(plan.jobs, len(trials))} worker process(es)" if ex.kind == "local"
          else f"Dask ({ex.describe()['scheduler']})" if ex.existing
          else f"Dask (a LocalCluster of {plan.jobs} workers)")
    console.print(f"{len(trials)} trials are valid; would run on {on} into {where}")

