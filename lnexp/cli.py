"""The `lnexp` command: a thin shell over config -> experiment -> renderers.

Imports of torch, matplotlib and pydantic happen inside commands, so `lnexp --help` is fast.
Every domain error becomes a one-line message on stderr and its exit code, here and only here.
"""

from __future__ import annotations

import contextlib
import enum
import errno
import functools
import json
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, TypeVar

import typer

from lnexp import __version__, norms, registry
from lnexp.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_EXPECTATION_FAILED,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_PARTIAL,
    EXIT_USAGE,
    LnexpError,
)

if TYPE_CHECKING:
    from lnexp.config import Config
    from lnexp.sweep.runner import SweepPlan

EXIT_CODES_HELP = (
    "Exit codes: 0 success (also when NaN/Inf appeared: then a warning on stderr and "
    "numeric_trouble in metrics.json) · 1 an expectation failed · 2 usage or config error "
    "(also: resource guard, unwritable output, run folder not completed) · 3 partly done "
    "(some part could not be computed) · 130 interrupted (Ctrl-C / SIGTERM) · 141 stdout "
    "closed early (e.g. piped into head), nothing on stderr · 70 internal error (a bug)."
)
JSON_SCHEMA_VERSION = 1


def _metavar_alone(display_type: Callable[..., str | None]) -> Callable[..., str | None]:
    """typer prints an argument's Python type beside its metavar (`CONFIG <path>`,
    `KEY=VALUE <list[str]>`); an argument with a metavar already says what it takes."""

    @functools.wraps(display_type)
    def shown(self: Any, ctx: Any) -> str | None:
        return None if self.metavar else display_type(self, ctx)

    return shown


if hasattr(typer.core.TyperArgument, "display_type_rich"):  # typer >= 0.20's help records
    typer.core.TyperArgument.display_type_rich = _metavar_alone(  # type: ignore[method-assign]
        typer.core.TyperArgument.display_type_rich)

app = typer.Typer(
    name="lnexp",
    help="See and measure how normalization layers behave.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Set once by the root callback; read by `guarded`. (typer exposes no public way to reach
# the click context from a decorator, so this stays module state.)
_state: dict[str, bool] = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lnexp {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug


def _err(message: str) -> None:
    from lnexp.console import plain_line

    with contextlib.suppress(OSError):  # a closed stderr must not turn an error into a crash
        for line in message.splitlines() or [message]:
            typer.echo(f"error: {plain_line(line)}", err=True)


def _stdout_closed() -> bool:
    """Is stdout a pipe whose reader has gone (`lnexp runs | head -1`)?"""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, ValueError, OSError):  # not a real file (tests), or no poll
        return False


def _closed_stdout() -> typer.Exit:
    """End quietly: point fd 1 at /dev/null so the interpreter's final flush cannot fail
    and print 'Exception ignored ... BrokenPipeError' on stderr."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return typer.Exit(EXIT_BROKEN_PIPE)


# What the OS says when the output cannot be written: the user's to fix (exit 2), not a bug.
_OS_REFUSALS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO,
                errno.EFBIG, errno.EMFILE, errno.ENFILE, errno.ENOTDIR, errno.EISDIR,
                errno.ENOENT}


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


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
        _command_signals()
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:
            if _stdout_closed():
                raise _closed_stdout() from None
            if _state["debug"]:
                raise
            raise _fail(EXIT_INTERNAL, "internal error (a bug in lnexp; rerun with --debug "
                                       "for the traceback): BrokenPipeError",
                        json_mode, "BrokenPipeError") from None
        except LnexpError as exc:
            if _state["debug"]:
                raise
            raise _fail(exc.exit_code, str(exc), json_mode, type(exc).__name__) from None
        except KeyboardInterrupt:
            raise _fail(EXIT_INTERRUPTED, "interrupted", json_mode, "Interrupted") from None
        except OSError as exc:
            if _state["debug"] or exc.errno not in _OS_REFUSALS:
                raise
            raise _fail(EXIT_USAGE, _os_message(exc), json_mode, type(exc).__name__) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            raise _fail(EXIT_INTERNAL, f"internal error (a bug in lnexp; rerun with --debug "
                                       f"for the traceback): {type(exc).__name__}: {exc}",
                        json_mode, type(exc).__name__) from None

    return wrapper  # type: ignore[return-value]


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file, e.g. configs/default.yaml.",
                                           metavar="CONFIG", show_default=False)]
OverridesArg = Annotated[list[str] | None, typer.Argument(
    metavar="KEY=VALUE", show_default=False,
    help="Config overrides as Hydra users type them, e.g. model.norm=bn seed=3; the same as "
         "--set. Quote text YAML would read otherwise: 'name=\"123\"'.")]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config key; VALUE is read as YAML. Repeatable: --set model.norm=bn "
         "--set seed=3.")]
CompareSetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config key for every norm; VALUE is read as YAML. Repeatable: --set "
         "data.n_samples=8 --set model.depth=3.")]
JsonOpt = Annotated[bool, typer.Option(
    "--json", help="Print only a JSON document (with schema_version) to stdout; messages go "
                   "to stderr.")]
ExpectOpt = Annotated[list[str] | None, typer.Option(
    "--expect", metavar="'METRIC.REDUCER OP VALUE'",
    help="Add an expectation, e.g. --expect 'post_norm.per_sample.mean.abs_max <= 1e-6' or "
         "'post_norm.per_sample.var.mean approx 1 tol 1e-3'. OP: <= >= < > ~= (or le ge lt gt "
         "approx); REDUCER: abs_max min max mean spread. Repeatable; any failure exits 1.")]
QuietOpt = Annotated[bool, typer.Option(
    "--quiet", "-q", help="Print only the run folder; no progress.")]
OutOpt = Annotated[Path | None, typer.Option("--output-dir", "-o", metavar="DIR",
                                             help="Parent folder of run folders (output.dir).")]


def _overrides(sets: list[str] | None, positional: list[str] | None) -> list[str]:
    """KEY=VALUE arguments after the config, then --set items (later wins)."""
    from lnexp import overrides

    return [*overrides.positional(list(positional or [])), *(sets or [])]


def _load(config: Path | None, sets: list[str] | None, output_dir: Path | None = None,
          expects: list[str] | None = None, positional: list[str] | None = None) -> Config:
    """The validated config from a file, or from the built-in defaults when `config` is
    None."""
    from lnexp import overrides
    from lnexp.config import from_mapping, load_config
    from lnexp.errors import ConfigError

    items = _overrides(sets, positional)
    if output_dir is not None:
        items.append(f"output.dir={json.dumps(str(output_dir))}")
    try:
        if config is None:
            return from_mapping({}, items, source=BUILTIN_CONFIG,
                                expectations=list(expects or []))
        return load_config(config, items, list(expects or []))
    except ConfigError as exc:
        raise ConfigError(overrides.annotate(exc.problems, list(sets or []),
                                             list(positional or []))) from None


# Test hook (documented in docs/contracts.md): seconds to wait after the run folder is marked
# running and before computing, so a test can interrupt a real run at a known point.
HOLD_ENV = "LNEXP_TEST_HOLD_S"


def _hold(run_dir: Path) -> None:
    seconds = float(os.environ.get(HOLD_ENV) or 0)
    if seconds > 0:
        typer.echo(f"{HOLD_ENV}: holding {seconds:g} s in {run_dir}", err=True)
        time.sleep(seconds)


def _warn_trouble(trouble: dict[str, Any]) -> None:
    from lnexp.explain import trouble_line

    if trouble["detected"]:
        _warn(f"numeric trouble: {trouble_line(trouble)}; statistics involving them are "
              f"NaN (metrics.json: numeric_trouble)")


def _warn(message: str) -> None:
    from lnexp.console import plain_line

    with contextlib.suppress(OSError):
        typer.echo(f"warning: {plain_line(message)}", err=True)


@app.command("run", short_help="Run one experiment from a YAML config.")
@guarded
def run_cmd(config: ConfigArg, overrides: OverridesArg = None, set_: SetOpt = None,
            expect_: ExpectOpt = None, json_: JsonOpt = False, quiet: QuietOpt = False,
            output_dir: OutOpt = None) -> None:
    """Run one experiment from a YAML config, e.g. `lnexp run configs/default.yaml
    model.norm=bn`.

    Prints the tables, and writes config.yaml, metrics.json, stats.csv, env.json, run.json and
    figures/*.png into a new folder OUTPUT_DIR/<name>/<timestamp>-<id>/ (metrics.json last).
    Exit 1 when an expectation (config `expect:` or --expect) fails. NaN/Inf in the input or
    the activations does not change the exit code: a warning goes to stderr and metrics.json
    carries numeric_trouble (add an expectation such as
    'numeric_trouble.post_norm.nonfinite.max <= 0' to fail on it).
    With a train: block it also writes history.csv. Training and runs streamed in several
    chunks show progress on stderr (a bar on a terminal; --quiet hides it).
    """
    from lnexp import core, progress, registry, resources, tables
    from lnexp.store import figures, files

    cfg = _load(config, set_, output_dir, expect_, overrides)
    core.refuse(cfg, str(config))  # what validate reports too; before any folder or worker
    resources.check(cfg)
    root = files.ensure_output_dir(Path(cfg.output.dir))
    # Figure workers start now, before torch is imported: matplotlib loads in parallel.
    with contextlib.ExitStack() as stack:
        pool = stack.enter_context(figures.figure_pool(cfg.output,
                                                       len(registry.run_figures(cfg))))
        report = stack.enter_context(progress.steps(
            "training step" if cfg.train is not None else "samples", quiet=quiet))
        try:
            outcome = core.run(cfg, root, sys.argv, report, _hold, pool)
        except core.RunInterrupted as exc:
            typer.echo(f"interrupted: what was recorded is saved in {exc.run_dir}", err=True)
            raise
    _warn_trouble(outcome.result.numeric_trouble)
    if json_:
        _emit({**outcome.document, "run_dir": str(outcome.run_dir)})
    elif quiet:
        typer.echo(str(outcome.run_dir))
    else:
        tables.render_run(tables.make_console(), outcome)
    if outcome.failed:
        _err(f"{len(outcome.failed)} expectation(s) failed: "
             f"{'; '.join(r['expectation'] for r in outcome.failed)}")
        raise typer.Exit(EXIT_EXPECTATION_FAILED)


# compare's choices come from the registry (norms imports no torch, so --help stays fast).
NamesArg = Annotated[list[str] | None, typer.Argument(
    metavar="NORM|KEY=VALUE", show_default=False,
    help="Norms to compare, in this order (default: every norm defined on the config's "
         "data.layout): " + " ".join(norms.names()) + "; "
         "KEY=VALUE items are config overrides, as --set.")]
ConfigOpt = Annotated[Path | None, typer.Option(
    "--config", "-c", metavar="FILE", show_default=False,
    help="YAML config file; its model.norm is ignored. Default: the built-in defaults (the "
         "tutorial's experiment, equal to configs/default.yaml), from any folder.")]
# What compare runs without --config: the schema's defaults, which equal configs/default.yaml
# (tests/test_config.py checks it), so compare works outside the repository too.
BUILTIN_CONFIG = "<built-in defaults>"


@app.command("compare", short_help="Run several norms on the same inputs and weights.")
@guarded
def compare_cmd(names: NamesArg = None, config: ConfigOpt = None,
                set_: CompareSetOpt = None, json_: JsonOpt = False,
                quiet: Annotated[bool, typer.Option(
                    "--quiet", "-q", help="Print only the compare folder; no progress.")] = False,
                output_dir: OutOpt = None) -> None:
    """Run several norms on the same inputs and weights, e.g. `lnexp compare bn ln
    data.n_samples=8`.

    Each norm's run equals `lnexp run CONFIG --set model.norm=NAME`. Writes a folder
    OUTPUT_DIR/<name>-compare/<timestamp>-<id>/ with one run folder per norm plus
    comparison.json, comparison.csv and comparison.png. Exit 3 if some norm could not be
    computed (e.g. bn on a batch of 1 in train mode); the others are still written.
    """
    from lnexp import core, progress, resources, tables
    from lnexp.compare import norm_configs
    from lnexp.store import figures, files

    items = list(names or [])
    positional = [i for i in items if "=" in i]
    selected = [i for i in items if "=" not in i] or None
    cfg = _load(config, set_, output_dir, positional=positional)
    resources.check(cfg, runs=len(selected) if selected
                    else len(norms.defined_on(cfg.data.layout)))
    root = files.ensure_output_dir(Path(cfg.output.dir))
    configs = norm_configs(cfg, selected, str(config or BUILTIN_CONFIG))  # before any folder
    # Figure workers start before torch is imported (core imports it lazily).
    with figures.figure_pool(cfg.output, core.compare_figure_count(cfg, configs)) as pool, \
            progress.steps("compare", quiet=quiet or json_) as update:
        outcome = core.compare(cfg, configs, root, sys.argv, pool, update)
    if json_:
        _emit({**outcome.document, "compare_dir": str(outcome.compare_dir)})
    elif quiet:
        typer.echo(str(outcome.compare_dir))
    else:
        tables.render_compare(tables.make_console(), outcome)
    if outcome.missing:
        cmp = outcome.result
        typer.echo(f"partly done (exit {EXIT_PARTIAL}): {len(cmp.not_computed)} of "
                   f"{len(cmp.outcomes)} norms not computed - {outcome.missing}", err=True)
        raise typer.Exit(EXIT_PARTIAL)


@app.command("check", short_help="Re-check a saved run's expectations without recomputing.")
@guarded
def check_cmd(run_dir: Annotated[Path, typer.Argument(
              help="A run folder, e.g. outputs/default/20250101-120000-abc123.",
              metavar="RUN_DIR", show_default=False)],
          expect_: ExpectOpt = None, json_: JsonOpt = False) -> None:
    """Re-evaluate a saved run's expectations on its metrics.json without recomputing, e.g.
    `lnexp check outputs/ci_ln_invariants/<run>`; --expect adds more.

    Exit 0 when all pass, 1 when one fails, 2 when the folder is not a completed run
    (status running, failed or interrupted in run.json) or an expectation is malformed.
    Reads only; writes nothing.
    """
    from lnexp import expect, tables
    from lnexp.config import expect_dict, from_mapping
    from lnexp.store.files import read_completed_run

    _, doc = read_completed_run(run_dir)
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


@app.command("validate", short_help="Check a config without running it.")
@guarded
def validate_cmd(config: ConfigArg, overrides: OverridesArg = None, set_: SetOpt = None,
                 expect_: ExpectOpt = None, json_: JsonOpt = False) -> None:
    """Check a config without running it, e.g. `lnexp validate configs/bn.yaml seed=3`.

    Reports every problem at once, one line each (file:line: key.path: message), including
    what `run` would refuse for this config (a norm PyTorch refuses on this input,
    expectations on metrics the config never writes) and the resource guard's verdict for
    this machine; exit 2 if there is any.
    """
    from lnexp import plan, resources
    from lnexp.errors import ConfigError

    try:
        cfg = _load(config, set_, expects=expect_, positional=overrides)
        # validate = run: the refusals `run` makes for the config alone (lnexp.core.refuse)
        refused = plan.refusals(cfg)
        if refused:
            raise ConfigError([f"{config}: {p}" for p in refused])
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


ExecutorKind = enum.Enum("ExecutorKind", {k: k for k in registry.EXECUTORS},  # type: ignore[misc]
                         type=str)


@app.command("sweep", short_help="Run a grid of trials in parallel and aggregate over seeds.")
@guarded
def sweep_cmd(config: Annotated[Path | None, typer.Argument(
              help="YAML config (its sweep: block, if any, adds grid axes); optional with "
                   "--resume.", metavar="CONFIG", show_default=False)] = None,
          overrides: OverridesArg = None,
          grid: GridOpt = None, set_: SetOpt = None,
          seeds: Annotated[int | None, typer.Option(
              "--seeds", min=1, metavar="N", help="Short for --grid seed=0:N.")] = None,
          jobs: Annotated[int | None, typer.Option(
              "--jobs", "-j", min=1, metavar="N",
              help="Worker processes (default: number of CPUs); on an existing Dask cluster, "
                   "at most this many trials at once (default: its worker threads).")] = None,
          executor: Annotated[ExecutorKind | None, typer.Option(
              "--executor",
              help="Where trials run: local (worker processes here, the default) or dask "
                   "(a Dask LocalCluster of -j workers, or the cluster of --scheduler / "
                   "LNEXP_DASK_SCHEDULER). Needs pip install 'lnexp[dask]'.")] = None,
          scheduler: Annotated[str | None, typer.Option(
              "--scheduler", metavar="tcp://HOST:PORT",
              help="Run the trials on this existing Dask cluster (implies --executor "
                   "dask).")] = None,
          collect: Annotated[bool, typer.Option(
              "--collect", help="Dask workers send each trial folder back and this process "
                                "writes it (workers without the shared filesystem).")] = False,
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
          json_: JsonOpt = False,
          quiet: Annotated[bool, typer.Option(
              "--quiet", "-q", help="Print only the sweep folder; stderr keeps one line per "
                                    "trial, no bar.")] = False,
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
    from lnexp import tables
    from lnexp.errors import ConfigError
    from lnexp.sweep import executors, runner

    try:
        plan = runner.plan_sweep(config, list(grid or []), _overrides(set_, overrides), seeds,
                                 list(metric or []), resume, output_dir, jobs, x,
                                 executors.choose(executor and executor.value, scheduler,
                                                  collect))
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

    outcome = runner.run_sweep(plan, list(sys.argv), fail_fast=fail_fast, figure=figure,
                               progress=progress)
    if json_:
        _emit({**outcome.folder.doc, "sweep_dir": str(outcome.sweep_dir)})
    elif quiet:
        typer.echo(str(outcome.sweep_dir))
    else:
        tables.render_sweep(tables.make_console(), outcome)
    failed = outcome.not_completed
    if failed:
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
    on = (f"{min(plan.jobs, len(trials))} worker process(es)" if plan.executor.kind == "local"
          else f"Dask ({plan.executor.scheduler or f'a LocalCluster of {plan.jobs} workers'})")
    console.print(f"{len(trials)} trials are valid; would run on {on} into {where}")


RunKind = enum.Enum("RunKind", {k: k for k in registry.RUN_KINDS}, type=str)  # type: ignore[misc]
RunStatus = enum.Enum("RunStatus", {k: k for k in registry.RUN_STATUSES},  # type: ignore[misc]
                      type=str)


ModelArg = Annotated[str, typer.Argument(
    metavar="MODEL",
    help="minilm (a packaged model, extra lnexp[models]), path/to/file.py:factory, "
         "package.module:factory, or a local Hugging Face model folder.", show_default=False)]


@app.command("inspect")
@guarded
def inspect_cmd(
    model: ModelArg,
    text: Annotated[list[str] | None, typer.Option(
        "--text", metavar="TEXT", help="A sentence to feed a text model (repeatable).")
    ] = None,
    text_file: Annotated[Path | None, typer.Option(
        "--text-file", metavar="FILE", help="Sentences, one per line.")] = None,
    random_: Annotated[str | None, typer.Option(
        "--random", metavar="SHAPE", help="Random normal inputs, e.g. 8,3,32,32 (8 inputs).")
    ] = None,
    tensor: Annotated[Path | None, typer.Option(
        "--tensor", metavar="FILE", help="A .npy or .pt file; dim 0 indexes the inputs.")
    ] = None,
    digits: Annotated[bool, typer.Option(
        "--digits", help="scikit-learn's 8x8 digits, shape (N, 1, 8, 8).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, metavar="N",
                                              help="Use only the first N inputs.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, metavar="N", help=(
        "Inputs per forward call (also BatchNorm's train-mode batch)."))] = 32,
    top_k: Annotated[int, typer.Option("--top-k", min=1, metavar="K",
                                       help="Outlier dims and γ/β extremes listed.")] = 5,
    seed: Annotated[int, typer.Option("--seed", metavar="SEED", help="Seed for --random.")
                    ] = 0,
    figures: Annotated[bool, typer.Option("--figures/--no-figures",
                                          help="Write figures/*.png.")] = True,
    expect_: Annotated[list[str] | None, typer.Option(
        "--expect", metavar="'PATH.REDUCER OP VALUE'",
        help="Check inspect.json, e.g. 'layers.*.quant.per_token_sqnr_db.min >= 20' or "
             "'layers[encoder.layer.0.output.LayerNorm].pre.outliers.0.ratio.max >= 100'. "
             "Repeatable; any failure exits 1.")] = None,
    json_: JsonOpt = False, quiet: QuietOpt = False, output_dir: OutOpt = None,
) -> None:
    """Measure what the norm layers do inside a real pretrained model.

    For example `lnexp inspect minilm` (the packaged all-MiniLM-L6-v2). Hooks every
    normalization layer (LayerNorm, RMSNorm, BatchNorm*, GroupNorm, InstanceNorm*,
    *Norm classes) and measures its input and output per token and per hidden dim, outlier
    dims, learned γ/β, int8 SQNR, and BatchNorm train vs eval. Offline: never downloads.
    Writes OUTPUT_DIR/inspect-<model>/<timestamp>-<id>/ (inspect.json, layers.csv, dims.csv,
    figures/). Exit 1 when an expectation fails, 2 for a bad model or input.
    """
    from lnexp import progress, tables
    from lnexp.inspect import InputSpec, InspectOptions
    from lnexp.inspect import expect as inspect_expect
    from lnexp.inspect import table as inspect_table
    from lnexp.inspect.files import inspect_into_folder
    from lnexp.store.files import ensure_output_dir

    inspect_expect.parse(list(expect_ or []))  # a malformed --expect fails before any work
    root = ensure_output_dir(output_dir or Path("outputs"))
    spec = InputSpec(texts=tuple(text or ()), text_file=text_file, random=random_,
                     tensor_file=tensor, digits=digits, limit=limit, seed=seed)
    options = InspectOptions(batch_size=batch_size, top_k=top_k)
    with progress.steps("inputs", quiet=quiet) as report:
        outcome, run_dir, doc = inspect_into_folder(model, spec, options, root, sys.argv,
                                                    report, figures)
    results = inspect_expect.evaluate(doc, list(expect_ or []))
    if json_:
        _emit({**doc, "run_dir": str(run_dir), "expectations": results})
    elif quiet:
        typer.echo(str(run_dir))
    else:
        console = tables.make_console()
        inspect_table.render(console, outcome, str(run_dir))
        if results:
            console.print(tables.expectations_table(results))
    if not all(r["passed"] for r in results):
        failed = [r["expectation"] for r in results if not r["passed"]]
        _err(f"{len(failed)} expectation(s) failed: {'; '.join(failed)}")
        raise typer.Exit(EXIT_EXPECTATION_FAILED)


runs_app = typer.Typer(help="List past runs, compares and sweeps (read from the folders).",
                       rich_markup_mode=None)
app.add_typer(runs_app, name="runs")
RootOpt = Annotated[Path, typer.Option("--output-dir", "-o", metavar="DIR",
                                       help="The output folder to read.")]


@runs_app.callback(invoke_without_command=True)
@guarded
def runs_cmd(ctx: typer.Context,
         norm: Annotated[str | None, typer.Option(
             "--norm", metavar="NORM",
             help="Only runs of this norm (or sweeps/compares with it).")] = None,
         status: Annotated[RunStatus | None, typer.Option(
             "--status", help="Only runs with this status.")] = None,
         kind: Annotated[RunKind | None, typer.Option(
             "--kind", help="Only this kind of folder.")] = None,
         name: Annotated[str | None, typer.Option("--name", metavar="NAME",
                                                  help="Only this config name.")] = None,
         limit: Annotated[int, typer.Option("--limit", "-n", min=0, metavar="N",
                                            help="Show at most this many (0: all).")] = 50,
         all_: Annotated[bool, typer.Option(
             "--all", "-a", help="Also the runs inside sweeps and compares (trial folders, "
                                 "per-norm folders).")] = False,
         output_dir: RootOpt = Path("outputs"), json_: JsonOpt = False) -> None:
    """List the run, compare and sweep folders under OUTPUT_DIR, newest first, e.g. `lnexp
    runs --norm ln --status failed`; `lnexp runs show RUN` prints one."""
    if ctx.invoked_subcommand is not None:
        return
    from lnexp import history

    skipped: list[str] = []
    records = history.scan(output_dir, nested=all_, skipped=skipped)
    for line in skipped:
        _warn(line)
    picked = history.select(records, norm=norm, status=status and status.value,
                            kind=kind and kind.value, name=name)
    shown = picked[:limit] if limit else picked
    if json_:
        _emit({"kind": "runs", "output_dir": str(output_dir), "total": len(records),
               "matched": len(picked), "runs": [r.as_dict() for r in shown]})
    else:
        from lnexp import tables  # rich tables and numpy: not needed for --json

        tables.render_runs(tables.make_console(), shown, str(output_dir), len(records))


@runs_app.command("show", short_help="Print one run, compare or sweep folder.")
@guarded
def runs_show_cmd(run: Annotated[str, typer.Argument(
                  help="A run folder, or its <timestamp>-<id> or <id> under OUTPUT_DIR.",
                  metavar="RUN", show_default=False)],
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


config_app = typer.Typer(help="Inspect configs; the JSON Schema for editors.",
                         no_args_is_help=True, rich_markup_mode=None)
app.add_typer(config_app, name="config")


@config_app.command("show", short_help="Print the resolved config as YAML.")
@guarded
def config_show_cmd(config: ConfigArg, overrides: OverridesArg = None, set_: SetOpt = None,
                    expect_: ExpectOpt = None, json_: JsonOpt = False) -> None:
    """Print the resolved config (defaults, overrides and --expect applied) as YAML: what would
    run, e.g. `lnexp config show configs/default.yaml model.norm=bn`."""
    from lnexp.config import to_dict, to_yaml

    cfg = _load(config, set_, expects=expect_, positional=overrides)
    if json_:
        _emit({"kind": "config", "source": str(config), "config": to_dict(cfg)})
    else:
        typer.echo(to_yaml(cfg), nl=False)


@config_app.command("schema", short_help="Print the config's JSON Schema (for editors).")
@guarded
def config_schema_cmd(output: Annotated[Path | None, typer.Option(
                      "--output", "-o", metavar="FILE",
                      help="Write the schema to FILE instead of stdout.")] = None) -> None:
    """Print the JSON Schema of a config (every key, its description, the norm names, the
    sweep: block), e.g. `lnexp config schema -o lnexp-config.schema.json`.

    Editors with a YAML language server complete keys and values, show each key's description
    and flag typos when a config starts with
    `# yaml-language-server: $schema=../lnexp-config.schema.json` (the shipped configs do).
    """
    from lnexp.config.json_schema import schema_text

    text = schema_text()
    if output is None:
        sys.stdout.write(text)
    else:
        _write(output, text)
        typer.echo(f"wrote {output}", err=True)


@app.command("report", short_help="Write one self-contained HTML page for a result folder.")
@guarded
def report_cmd(folder: Annotated[Path, typer.Argument(
               metavar="FOLDER", show_default=False,
               help="A run, compare or sweep folder, e.g. outputs/default/<timestamp>-<id>.")],
               output: Annotated[Path | None, typer.Option(
                   "--output", "-o", metavar="FILE",
                   help="Where to write the page (default: FOLDER/report.html).")] = None,
               markdown: Annotated[bool, typer.Option(
                   "--markdown", help="Print the tables as Markdown to stdout instead (for a "
                                      "CI job summary; no images).")] = False) -> None:
    """Write one HTML page for a run, compare or sweep folder, e.g. `lnexp report
    outputs/default/<timestamp>-<id>`: verdict, tables, expectations, figures (embedded), the
    resolved config and the environment.

    The page is self-contained (inline CSS and images, no JavaScript, no network), so a CI
    system can keep it as an artifact. Prints the path it wrote. Exit 2 when FOLDER is not an
    lnexp folder.
    """
    from lnexp import report

    doc = report.read_folder(folder)
    if markdown:
        sys.stdout.write(report.to_markdown(doc))
        return
    target = output if output is not None else folder / "report.html"
    from lnexp.errors import OutputError
    from lnexp.store.files import result_file

    if result_file(target):
        raise OutputError(f"{target}: a file lnexp wrote into a result folder; refusing to "
                          f"overwrite it with the report (give -o another file, e.g. "
                          f"{target.parent / 'report.html'})")
    _write(target, report.to_html(doc))
    typer.echo(str(target))


def _write(path: Path, text: str) -> None:
    """Write a file a command was asked for, atomically; an OSError becomes exit 2."""
    from lnexp.errors import OutputError
    from lnexp.store.files import write_atomic

    try:
        write_atomic(path, text)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None


export_app = typer.Typer(help="Copy result folders into other tools.", no_args_is_help=True,
                         rich_markup_mode=None)
app.add_typer(export_app, name="export")


@export_app.command("mlflow", short_help="Copy run, compare and sweep folders into MLflow.")
@guarded
def export_mlflow_cmd(paths: Annotated[list[Path], typer.Argument(
                      metavar="FOLDER", show_default=False,
                      help="Run, compare or sweep folders.")],
                      tracking_uri: Annotated[str | None, typer.Option(
                          "--tracking-uri", metavar="URI",
                          help="MLflow tracking URI (default: $MLFLOW_TRACKING_URI, else "
                               "sqlite:///OUTPUT_DIR/mlflow.db).")] = None,
                      experiment: Annotated[str, typer.Option(
                          "--experiment", metavar="NAME",
                          help="MLflow experiment to log into.")] = "lnexp",
                      output_dir: RootOpt = Path("outputs"), json_: JsonOpt = False) -> None:
    """Log each folder as an MLflow run, e.g. `lnexp export mlflow outputs/default/<run>`:
    the config as params, its metrics, history.csv as step metrics, figures and metrics.json
    as artifacts; a compare or sweep becomes a parent run with nested children.

    Exporting again updates the same runs (tagged with the lnexp run id). Needs the extra:
    pip install 'lnexp[mlflow]'. Exit 2 when MLflow is missing or a folder is not lnexp's.
    """
    from lnexp.export import mlflow

    uri = mlflow.tracking_uri(tracking_uri, output_dir)
    exported = mlflow.export(list(paths), uri, experiment)
    if json_:
        _emit({"kind": "export", "tracking_uri": uri, "experiment": experiment,
               "runs": [e.as_dict() for e in exported]})
        return
    for e in exported:
        nested = f" ({len(e.children)} nested runs)" if e.children else ""
        typer.echo(f"{e.action}: {e.kind} {e.folder} -> MLflow run {e.mlflow_run_id}{nested}")
    typer.echo(f"tracking URI: {uri} (experiment {experiment})", err=True)


def _sigterm(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # a cancelled CI job: mark the run interrupted, exit 130


def _command_signals() -> None:
    """From here on Ctrl-C and SIGTERM are KeyboardInterrupt, which the command turns into a
    run folder marked `interrupted` and exit 130 (before a command starts, lnexp.entry's
    handlers end lnexp with 130 and one line)."""
    with contextlib.suppress(ValueError):  # signal handlers can be set in the main thread only
        signal.signal(signal.SIGINT, signal.default_int_handler)
        signal.signal(signal.SIGTERM, _sigterm)


def main() -> None:
    """The CLI with exit-code handling (the console script is lnexp.entry.main)."""
    try:
        app()
    except SystemExit as exc:
        # Outside a command (e.g. `lnexp --help | head -1`) click ends a closed stdout with
        # exit 1, the "expectation failed" code; make it the documented 141.
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _closed_stdout()
            raise SystemExit(EXIT_BROKEN_PIPE) from None
        raise
