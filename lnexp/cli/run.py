"""`lnexp run` and `lnexp compare`: parse, one lnexp.api.compute call, render."""

from __future__ import annotations

import functools
import os
import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lnexp.cli.base import (
    _emit,
    _err,
    _warn,
    app,
    guarded,
)
from lnexp.cli.options import (
    BUILTIN_CONFIG,
    CompareSetOpt,
    ConfigArg,
    ConfigOpt,
    ExpectOpt,
    JsonOpt,
    NamesArg,
    OutOpt,
    OverridesArg,
    QuietOpt,
    SetOpt,
    _load,
)
from lnexp.errors import (
    EXIT_EXPECTATION_FAILED,
    EXIT_PARTIAL,
)

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
    from lnexp import core, progress, tables
    from lnexp.api import compute

    cfg = _load(config, set_, output_dir, expect_, overrides)
    steps = functools.partial(progress.steps, "training step" if cfg.train is not None
                              else "samples", quiet=quiet)
    try:
        outcome = compute.run(cfg, str(config), sys.argv, steps, _hold)
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
    from lnexp import progress, tables
    from lnexp.api import compute

    items = list(names or [])
    positional = [i for i in items if "=" in i]
    selected = [i for i in items if "=" not in i] or None
    cfg = _load(config, set_, output_dir, positional=positional)
    steps = functools.partial(progress.steps, "compare", quiet=quiet or json_)
    outcome = compute.compare(cfg, selected, str(config or BUILTIN_CONFIG), sys.argv, steps)
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

