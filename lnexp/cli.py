"""The `lnexp` command: a thin shell over config -> experiment -> renderers.

Imports of torch, matplotlib and pydantic happen inside commands, so `lnexp --help` is fast.
Every domain error becomes a one-line message on stderr and its exit code, here and only here.
"""

from __future__ import annotations

import contextlib
import enum
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from lnexp import __version__, norms
from lnexp.errors import (
    EXIT_EXPECTATION_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_PARTIAL,
    EXIT_USAGE,
    LnexpError,
)

EXIT_CODES_HELP = (
    "Exit codes: 0 success (also when NaN/Inf appeared: then a warning on stderr and "
    "numeric_trouble in metrics.json) · 1 an expectation failed · 2 usage or config error "
    "(also: resource guard, unwritable output, run folder not completed) · 3 partly done "
    "(some part could not be computed) · 130 interrupted (Ctrl-C / SIGTERM) · 70 internal "
    "error (a bug)."
)
JSON_SCHEMA_VERSION = 1

app = typer.Typer(
    name="lnexp",
    help="See and measure how normalization layers behave.\n\n" + EXIT_CODES_HELP,
    epilog=EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

_state: dict[str, bool] = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lnexp {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug


def _err(message: str) -> None:
    for line in message.splitlines() or [message]:
        typer.echo(f"error: {line}", err=True)


def _emit(doc: dict[str, Any]) -> None:
    """Write one JSON document to stdout (the only thing --json puts there)."""
    sys.stdout.write(json.dumps({"schema_version": JSON_SCHEMA_VERSION, **doc}, indent=2,
                                allow_nan=False) + "\n")
    sys.stdout.flush()


def _fail(code: int, message: str, json_mode: bool, error: str) -> typer.Exit:
    _err(message)
    if json_mode:
        _emit({"kind": "error", "ok": False, "exit_code": code, "error": error,
               "problems": message.splitlines()})
    return typer.Exit(code)


def guarded(func: F) -> F:
    """Turn errors into one-line messages and exit codes (no traceback unless --debug).

    With --json, stdout also gets {"kind": "error", "exit_code", "problems"} so a CI script
    always has a document to parse.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        json_mode = bool(kwargs.get("json_"))
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except LnexpError as exc:
            if _state["debug"]:
                raise
            raise _fail(exc.exit_code, str(exc), json_mode, type(exc).__name__) from None
        except KeyboardInterrupt:
            raise _fail(EXIT_INTERRUPTED, "interrupted", json_mode, "Interrupted") from None
        except Exception as exc:
            if _state["debug"]:
                raise
            raise _fail(EXIT_INTERNAL, f"internal error (a bug in lnexp; rerun with --debug "
                                       f"for the traceback): {type(exc).__name__}: {exc}",
                        json_mode, type(exc).__name__) from None

    return wrapper  # type: ignore[return-value]


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file, e.g. configs/default.yaml.",
                                           show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config key; VALUE is read as YAML. Repeatable: --set model.norm=bn "
         "--set seed=3.")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print only a JSON document (with schema_version) to stdout; messages go "
                   "to stderr.")]
ExpectOpt = Annotated[list[str] | None, typer.Option(
    "--expect", metavar="'METRIC.REDUCER OP VALUE'",
    help="Add an expectation, e.g. --expect 'post_norm.per_sample.mean.abs_max <= 1e-6' or "
         "'post_norm.per_sample.var.mean approx 1 tol 1e-3'. OP: <= >= < > ~= (or le ge lt gt "
         "approx); REDUCER: abs_max min max mean spread. Repeatable; any failure exits 1.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the run folder.")]
OutOpt = Annotated[Path | None, typer.Option("--output-dir", "-o",
                                             help="Parent folder of run folders (output.dir).")]


def _load(config: Path, sets: list[str] | None, output_dir: Path | None = None,
          expects: list[str] | None = None) -> Any:
    from lnexp.config import load_config

    overrides = list(sets or [])
    if output_dir is not None:
        overrides.append(f"output.dir={json.dumps(str(output_dir))}")
    return load_config(config, overrides, list(expects or []))


# Test hook (documented in the README): seconds to wait after the run folder is marked
# running and before computing, so a test can interrupt a real run at a known point.
HOLD_ENV = "LNEXP_TEST_HOLD_S"


def _execute(cfg: Any, root: Path, argv: list[str],
             progress: Callable[[int, int, float], None] | None = None,
             ) -> tuple[Any, Path, dict[str, Any]]:
    """Compute one run and write its folder (status tracked in run.json). A training run
    stopped by Ctrl-C is written as recorded, then marked interrupted (exit 130)."""
    from lnexp import artifacts, experiment
    from lnexp.errors import NotDefinedError

    reason = experiment.not_defined_reason(cfg)
    if reason:
        raise NotDefinedError(reason)
    run_dir = artifacts.create_run_dir(root, cfg.name)

    def hold() -> None:
        seconds = float(os.environ.get(HOLD_ENV) or 0)
        if seconds > 0:
            typer.echo(f"{HOLD_ENV}: holding {seconds:g} s in {run_dir}", err=True)
            time.sleep(seconds)

    try:
        result, doc = artifacts.run_into_folder(cfg, run_dir, argv, progress, hold)
    except KeyboardInterrupt:
        typer.echo(f"interrupted: what was recorded is saved in {run_dir}", err=True)
        raise
    return result, run_dir, doc


def _warn_trouble(doc: dict[str, Any]) -> None:
    from lnexp.explain import trouble_line

    trouble = doc["numeric_trouble"]
    if trouble["detected"]:
        _warn(f"numeric trouble: {trouble_line(trouble)}; statistics involving them are "
              f"NaN (metrics.json: numeric_trouble)")


def _warn(message: str) -> None:
    typer.echo(f"warning: {message}", err=True)


@app.command()
@guarded
def run(config: ConfigArg, set_: SetOpt = None, expect_: ExpectOpt = None,
        json_: JsonOpt = False, quiet: QuietOpt = False, output_dir: OutOpt = None) -> None:
    """Run one experiment from a YAML config, e.g. `lnexp run configs/default.yaml`.

    Prints the tables, and writes config.yaml, metrics.json, stats.csv, env.json, run.json and
    figures/*.png into a new folder OUTPUT_DIR/<name>/<timestamp>-<id>/ (metrics.json last).
    Exit 1 when an expectation (config `expect:` or --expect) fails. NaN/Inf in the input or
    the activations does not change the exit code: a warning goes to stderr and metrics.json
    carries numeric_trouble (add an expectation such as
    'numeric_trouble.post_norm.nonfinite.max <= 0' to fail on it).
    With a train: block it also writes history.csv and shows training progress on stderr.
    """
    from lnexp import artifacts, resources, tables

    cfg = _load(config, set_, output_dir, expect_)
    resources.check(cfg)
    root = artifacts.ensure_output_dir(Path(cfg.output.dir))
    from lnexp import plan

    # Figure workers start now, before torch is imported: matplotlib loads in parallel.
    with contextlib.ExitStack() as stack:
        stack.enter_context(artifacts.figure_pool(cfg.output, len(plan.figure_names(cfg))))
        report = (None if quiet or cfg.train is None else
                  stack.enter_context(tables.progress(tables.make_console(stderr=True))))
        result, run_dir, doc = _execute(cfg, root, sys.argv, report)
    _warn_trouble(doc)
    results = doc["expectations"]
    if json_:
        _emit({**doc, "run_dir": str(run_dir)})
    elif quiet:
        typer.echo(str(run_dir))
    else:
        console = tables.make_console()
        tables.render_run(console, result, str(run_dir), doc["explanation"])
        if results:
            console.print(tables.expectations_table(results))
    if not all(r["passed"] for r in results):
        failed = [r["expectation"] for r in results if not r["passed"]]
        _err(f"{len(failed)} expectation(s) failed: {'; '.join(failed)}")
        raise typer.Exit(EXIT_EXPECTATION_FAILED)


# compare's choices come from the registry (norms imports no torch, so --help stays fast).
NormName = enum.Enum("NormName", {name: name for name in norms.names()}, type=str)  # type: ignore[misc]
NamesArg = Annotated[list[NormName] | None, typer.Argument(
    help="Norms to compare, in this order (default: all): " + " ".join(norms.names()) + ".",
    show_default=False)]
ConfigOpt = Annotated[Path, typer.Option("--config", "-c",
                                         help="YAML config file; its model.norm is ignored.")]


@app.command()
@guarded
def compare(names: NamesArg = None, config: ConfigOpt = Path("configs/default.yaml"),
            set_: SetOpt = None, json_: JsonOpt = False, quiet: QuietOpt = False,
            output_dir: OutOpt = None) -> None:
    """Run several norms on the same inputs and weights, e.g. `lnexp compare bn ln`.

    Each norm's run equals `lnexp run CONFIG --set model.norm=NAME`. Writes a folder
    OUTPUT_DIR/<name>-compare/<timestamp>-<id>/ with one run folder per norm plus
    comparison.json, comparison.csv and comparison.png. Exit 3 if some norm could not be
    computed (e.g. bn on a batch of 1 in train mode); the others are still written.
    """
    from lnexp import artifacts, explain, resources, tables
    from lnexp import compare as compare_mod

    cfg = _load(config, set_, output_dir)
    selected = [n.value for n in names] if names else None
    resources.check(cfg, runs=len(selected) if selected else len(norms.names()))
    root = artifacts.ensure_output_dir(Path(cfg.output.dir))
    count = len(compare_mod.norm_configs(cfg, selected, str(config)))  # config errors first
    compare_dir = artifacts.create_run_dir(root, f"{cfg.name}-compare")
    folder = artifacts.RunFolder(compare_dir, "compare", sys.argv)
    # Figure workers start before torch is imported (compare_mod imports it lazily below).
    with artifacts.figure_pool(cfg.output, 2 * count + 1), folder.tracking():
        cmp = compare_mod.compare(cfg, selected, source=str(config))
        missing = "; ".join(o.reason or o.name for o in cmp.not_computed)
        if missing:
            folder.mark_partial(f"not computed: {missing}")
        doc = artifacts.write_compare(cmp, folder, sys.argv)
    if json_:
        _emit({**doc, "compare_dir": str(compare_dir)})
    elif quiet:
        typer.echo(str(compare_dir))
    else:
        axes = explain.AXES.format(n=cfg.data.n_samples, c=cfg.features)
        tables.render_compare(tables.make_console(), cmp, str(compare_dir),
                              explain.compare_lines(cmp), axes)
    if missing:
        typer.echo(f"partly done (exit {EXIT_PARTIAL}): {len(cmp.not_computed)} of "
                   f"{len(cmp.outcomes)} norms not computed - {missing}", err=True)
        raise typer.Exit(EXIT_PARTIAL)


@app.command()
@guarded
def check(run_dir: Annotated[Path, typer.Argument(
              help="A run folder, e.g. outputs/default/20250101-120000-abc123.",
              show_default=False)],
          expect_: ExpectOpt = None, json_: JsonOpt = False) -> None:
    """Re-evaluate a saved run's expectations on its metrics.json without recomputing, e.g.
    `lnexp check outputs/ci_ln_invariants/<run>`; --expect adds more.

    Exit 0 when all pass, 1 when one fails, 2 when the folder is not a completed run
    (status running, failed or interrupted in run.json) or an expectation is malformed.
    Reads only; writes nothing.
    """
    from lnexp import artifacts, expect, tables
    from lnexp.config import expect_dict, from_mapping

    _, doc = artifacts.read_completed_run(run_dir)
    saved = (doc.get("config") or {}).get("expect") or {}
    cfg = from_mapping({"expect": saved}, source=str(run_dir / "metrics.json"),
                       expectations=list(expect_ or []))
    results = expect.evaluate(doc, expect_dict(cfg))
    passed = expect.all_passed(results)
    if json_:
        _emit({"kind": "check", "run_dir": str(run_dir), "passed": passed,
               "expectations": results})
    else:
        console = tables.make_console()
        if results:
            console.print(tables.expectations_table(results))
        else:
            console.print(f"{run_dir}: no expectations (add expect: to the config or "
                          f"--expect here)")
    if not passed:
        _err(f"{sum(not r['passed'] for r in results)} expectation(s) failed")
        raise typer.Exit(EXIT_EXPECTATION_FAILED)


@app.command()
@guarded
def validate(config: ConfigArg, set_: SetOpt = None, expect_: ExpectOpt = None,
             json_: JsonOpt = False) -> None:
    """Check a config without running it, e.g. `lnexp validate configs/bn.yaml`.

    Reports every problem at once, one line each (file:line: key.path: message), including
    the resource guard's verdict for this machine; exit 2 if there is any.
    """
    from lnexp import resources
    from lnexp.errors import ConfigError

    try:
        cfg = _load(config, set_, expects=expect_)
        est = resources.check(cfg)
    except ConfigError as exc:
        if json_:
            _err("\n".join(exc.problems))
            _emit({"kind": "validate", "config": str(config), "valid": False,
                   "problems": exc.problems})
            raise typer.Exit(EXIT_USAGE) from None
        raise
    if json_:
        _emit({"kind": "validate", "config": str(config), "valid": True, "problems": [],
               "estimated_peak_bytes": est["peak"]})
    else:
        typer.echo(f"{config}: ok (estimated peak memory {resources.gb(est['peak'])})")


GridOpt = Annotated[list[str] | None, typer.Option(
    "--grid", metavar="KEY=VALUES",
    help="Sweep a config key: comma list (read as YAML) or range a:b[:step], e.g. --grid "
         "model.norm=bn,ln,rms --grid seed=0:5 --grid data.n_samples=2,8,32. Repeatable; "
         "trials are the product. Replaces the same key in the config's sweep: block.")]
MetricOpt = Annotated[list[str] | None, typer.Option(
    "--metric", metavar="METRIC.REDUCER",
    help="A metric to aggregate, as in expectations, e.g. post_norm.per_sample.var.spread. "
         "Repeatable; default: post_norm.per_feature.var.spread, post_norm.per_sample.var."
         "spread, post_norm.per_sample.mean.abs_max.")]


@app.command()
@guarded
def sweep(config: Annotated[Path | None, typer.Argument(
              help="YAML config (its sweep: block, if any, adds grid axes); optional with "
                   "--resume.", show_default=False)] = None,
          grid: GridOpt = None, set_: SetOpt = None,
          seeds: Annotated[int | None, typer.Option(
              "--seeds", min=1, help="Short for --grid seed=0:N.")] = None,
          jobs: Annotated[int | None, typer.Option(
              "--jobs", "-j", min=1, help="Worker processes (default: number of CPUs).")] = None,
          dry_run: Annotated[bool, typer.Option(
              "--dry-run", help="Validate every trial, print the count and the trials, run "
                                "nothing.")] = False,
          fail_fast: Annotated[bool, typer.Option(
              "--fail-fast", help="Stop starting trials after the first failure.")] = False,
          resume: Annotated[Path | None, typer.Option(
              "--resume", metavar="SWEEP_DIR",
              help="Continue a sweep folder: skip completed trials, rerun failed or "
                   "interrupted ones; refused if the definition changed.")] = None,
          metric: MetricOpt = None,
          x: Annotated[str | None, typer.Option(
              "--x", metavar="KEY", help="Swept key on the figure's x axis (default: the "
                                         "first numeric swept key).")] = None,
          figure: Annotated[bool, typer.Option(
              "--figure/--no-figure", help="Draw summary.png (per-trial figures follow "
                                           "output.figures).")] = True,
          json_: JsonOpt = False, quiet: QuietOpt = False, output_dir: OutOpt = None) -> None:
    """Run a grid of trials in parallel worker processes and aggregate them over seeds, e.g.
    `lnexp sweep configs/sweep_batch.yaml` or `lnexp sweep configs/default.yaml --grid
    model.norm=bn,ln --grid data.n_samples=2,8,32 --seeds 3`.

    Writes OUTPUT_DIR/<name>-sweep/<timestamp>-<id>/ with one run folder per trial, sweep.json
    (command, grid, each trial's status and config hash), summary.csv (mean, std, n over seeds
    per combination of the other keys) and summary.png. Exit 3 when some trials failed (the
    others still run unless --fail-fast), 2 for a bad grid or trial (nothing runs).
    """
    from lnexp import artifacts, tables, workers
    from lnexp import sweep as sweep_mod
    from lnexp.config import read_raw, to_dict
    from lnexp.errors import ConfigError

    metrics = sweep_mod.check_metrics(list(metric or sweep_mod.DEFAULT_METRICS))
    folder: artifacts.SweepFolder | None = None
    if resume is not None:
        folder = artifacts.SweepFolder.load(resume)
        metrics = sweep_mod.check_metrics(list(metric or folder.doc["metrics"]))
    if config is not None:
        raw, lines = read_raw(config)
        d = sweep_mod.definition(raw, list(grid or []), source=str(config), lines=lines,
                                 sets=list(set_ or []), seeds=seeds)
        if d.metrics and not metric and folder is None:
            metrics = d.metrics
    elif folder is not None:
        if grid or set_ or seeds:
            raise ConfigError(["--resume without CONFIG reuses the stored definition; give "
                               "CONFIG too to check --grid/--set/--seeds against it"])
        d = sweep_mod.from_stored(folder.doc["definition"], source=str(resume / "sweep.json"))
    else:
        raise ConfigError(["give a CONFIG (e.g. lnexp sweep configs/sweep_batch.yaml) or "
                           "--resume SWEEP_DIR"])
    if folder is not None:
        diff = sweep_mod.definition_diff(folder.doc["definition"], d.as_dict())
        if diff:
            raise ConfigError([f"{resume}: the sweep definition changed; refusing to resume "
                               f"(start a new sweep, or resume with the same config, --grid, "
                               f"--set and --seeds):", *diff])
    root = folder.path if folder is not None else Path(
        str(output_dir) if output_dir is not None else d.base.get("output", {}).get("dir")
        or "outputs")
    trials = sweep_mod.expand(d, output_dir=str(root))
    sweep_mod.x_key(d, x)  # a bad --x is an error before anything runs
    jobs = jobs or workers.default_jobs()
    name = trials[0].config.name
    if dry_run:
        if json_:
            _emit({"kind": "sweep_plan", "count": len(trials), "keys": d.keys,
                   "definition": d.as_dict(),
                   "trials": [{"index": t.index, "params": t.params, "hash": t.hash,
                               "run_dir": t.dirname} for t in trials]})
        else:
            console = tables.make_console()
            shape = " × ".join(f"{len(a.points)} {'+'.join(a.keys)}" for a in d.axes)
            console.print(tables.trials_table(trials, d.keys, f"{len(trials)} trials: {shape} "
                                                              f"(dry run, nothing ran)"))
            where = root if resume is not None else f"{root}/{name}-sweep/<timestamp>-<id>/"
            console.print(f"{len(trials)} trials are valid; would run on "
                          f"{min(jobs, len(trials))} worker process(es) into {where}")
        return
    argv = list(sys.argv)
    if folder is None:
        root = artifacts.ensure_output_dir(root)
        sweep_dir = artifacts.create_run_dir(root, f"{name}-sweep")
        run_folder = artifacts.RunFolder(sweep_dir, "sweep", argv)
        folder = artifacts.SweepFolder.create(sweep_dir, d, trials, argv, metrics, jobs)
    else:
        sweep_dir = folder.path
        run_folder = artifacts.RunFolder(sweep_dir, "sweep", argv)
        folder.resumed(argv, jobs)
    by_index = {t.index: t for t in trials}
    figures = any(t.config.output.figures for t in trials)
    todo = [t for t in trials if not folder.trial_done(folder.trials[t.index], t.hash)]
    skipped = len(trials) - len(todo)
    with run_folder.tracking():
        tasks = [workers.Task(t.index, to_dict(t.config), str(folder.reset_trial(t.index)),
                              argv) for t in todo]
        if skipped and not quiet and not json_:
            typer.echo(f"resuming {sweep_dir}: {skipped} of {len(trials)} trials already "
                       f"completed, running {len(tasks)}", err=True)

        with tables.SweepProgress(len(trials), skipped) as progress:
            def started(task: Any) -> None:
                folder.update(task.index, status="running", error=None)

            def done(task: Any, outcome: dict[str, Any]) -> None:
                folder.update(task.index, status=outcome["status"], error=outcome["error"],
                              seconds=outcome["seconds"], worker_pid=outcome["pid"])
                progress.trial_done(f"{folder.trials[task.index]['run_dir']} "
                                    f"({by_index[task.index].label})", outcome)

            try:
                workers.execute(tasks, jobs, figures=figures, fail_fast=fail_fast,
                                on_start=started, on_done=done)
            except KeyboardInterrupt:
                folder.finish("interrupted")
                raise
        rows = folder.write_summary(d, metrics, x, trials[0].config.output.dpi, figure)
        counts = folder.counts()
        bad = counts["total"] - counts["completed"]
        status = "completed" if not bad else "partial"
        if bad:
            run_folder.mark_partial(f"{bad} of {counts['total']} trials not completed")
        folder.finish(status, rows)
    if json_:
        _emit({**folder.doc, "sweep_dir": str(sweep_dir)})
    elif quiet:
        typer.echo(str(sweep_dir))
    else:
        console = tables.make_console()
        console.print(tables.sweep_summary_table(
            rows, d.group_keys, metrics,
            f"{counts['completed']} of {counts['total']} trials completed; mean ± std over "
            f"{'seeds' if 'seed' in d.keys else 'repeats'} (std with n−1), n = completed "
            f"trials"))
        console.print(f"sweep folder: {sweep_dir}  (sweep.json, summary.csv"
                      f"{', summary.png' if (sweep_dir / 'summary.png').exists() else ''})")
    if bad:
        failed = [t for t in folder.trials if t["status"] != "completed"]
        typer.echo(f"partly done (exit {EXIT_PARTIAL}): {bad} of {counts['total']} trials "
                   f"not completed:", err=True)
        for t in failed[:20]:
            typer.echo(f"  {t['run_dir']}: {t['status']}: {t['error'] or 'not run'}", err=True)
        if len(failed) > 20:
            typer.echo(f"  ... and {len(failed) - 20} more (see sweep.json)", err=True)
        typer.echo(f"rerun them with: lnexp sweep --resume {sweep_dir}", err=True)
        raise typer.Exit(EXIT_PARTIAL)


runs_app = typer.Typer(help="List past runs, compares and sweeps (read from the folders).",
                       rich_markup_mode=None)
app.add_typer(runs_app, name="runs")
RootOpt = Annotated[Path, typer.Option("--output-dir", "-o",
                                       help="The output folder to read.")]


@runs_app.callback(invoke_without_command=True)
@guarded
def runs(ctx: typer.Context,
         norm: Annotated[str | None, typer.Option(
             "--norm", help="Only runs of this norm (or sweeps/compares with it).")] = None,
         status: Annotated[str | None, typer.Option(
             "--status", help="completed, failed, interrupted, partial or running.")] = None,
         kind: Annotated[str | None, typer.Option("--kind", help="run, compare or sweep.")] = None,
         name: Annotated[str | None, typer.Option("--name", help="Only this config name.")] = None,
         limit: Annotated[int, typer.Option("--limit", "-n", min=0,
                                            help="Show at most this many (0: all).")] = 50,
         output_dir: RootOpt = Path("outputs"), json_: JsonOpt = False) -> None:
    """List the run, compare and sweep folders under OUTPUT_DIR, newest first, e.g. `lnexp
    runs --norm ln --status failed`; `lnexp runs show RUN` prints one."""
    if ctx.invoked_subcommand is not None:
        return
    from lnexp import history, tables

    records = history.scan(output_dir)
    picked = history.select(records, norm=norm, status=status, kind=kind, name=name)
    shown = picked[:limit] if limit else picked
    if json_:
        _emit({"kind": "runs", "output_dir": str(output_dir), "total": len(records),
               "matched": len(picked), "runs": [r.as_dict() for r in shown]})
    else:
        tables.make_console().print(tables.runs_table(shown, str(output_dir), len(records)))


@runs_app.command("show")
@guarded
def runs_show(run: Annotated[str, typer.Argument(
                  help="A run folder, or its <timestamp>-<id> or <id> under OUTPUT_DIR.",
                  show_default=False)],
              output_dir: RootOpt = Path("outputs"), json_: JsonOpt = False) -> None:
    """Print one run, compare or sweep folder: status, command, key metrics or the sweep
    summary, e.g. `lnexp runs show 20250101-120000-abc123`."""
    from lnexp import history, tables

    folder = history.find(output_dir, run)
    info = history.details(folder)
    if json_:
        _emit({"kind": "run_info", **info})
    else:
        tables.render_run_details(tables.make_console(), info)


config_app = typer.Typer(help="Inspect configs.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(config_app, name="config")


@config_app.command("show")
@guarded
def config_show(config: ConfigArg, set_: SetOpt = None, expect_: ExpectOpt = None,
                json_: JsonOpt = False) -> None:
    """Print the resolved config (defaults, --set and --expect applied) as YAML: what would
    run, e.g. `lnexp config show configs/default.yaml --set model.norm=bn`."""
    from lnexp import config as config_mod

    cfg = _load(config, set_, expects=expect_)
    if json_:
        _emit({"kind": "config", "source": str(config), "config": config_mod.to_dict(cfg)})
    else:
        typer.echo(config_mod.to_yaml(cfg), nl=False)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # a cancelled CI job: mark the run interrupted, exit 130


def main() -> None:
    """Console-script entry point."""
    signal.signal(signal.SIGTERM, _sigterm)
    app()
