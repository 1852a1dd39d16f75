"""`lnexp check` and `lnexp validate`: read a saved run or a config, compute nothing."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lnexp.cli.base import (
    _emit,
    _err,
    app,
    guarded,
)
from lnexp.cli.options import (
    ConfigArg,
    ExpectOpt,
    JsonOpt,
    OverridesArg,
    SetOpt,
    _load,
)
from lnexp.errors import (
    EXIT_EXPECTATION_FAILED,
    EXIT_USAGE,
)


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

