"""`lnexp runs` and `lnexp runs show`: list and print result folders."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from lnexp.cli.base import (
    _emit,
    _warn,
    app,
    guarded,
)
from lnexp.cli.options import (
    JsonOpt,
    RootOpt,
    RunKind,
    RunStatus,
)

runs_app = typer.Typer(help="List past runs, compares and sweeps (read from the folders).",
                       rich_markup_mode=None)
app.add_typer(runs_app, name="runs")


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

