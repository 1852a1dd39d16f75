"""The `lnexp` command: a thin shell over config -> experiment -> renderers.

Imports of torch, matplotlib and pydantic happen inside commands, so `lnexp --help` is fast.
Every domain error becomes a one-line message on stderr and its exit code, here and only here.
"""

from __future__ import annotations

import contextlib
import functools
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from lnexp import __version__
from lnexp.errors import (
    EXIT_INTERRUPTED,
    EXIT_USAGE,
    LnexpError,
)

EXIT_CODES_HELP = (
    "Exit codes: 0 success · 1 an expectation failed · 2 usage or config error · "
    "3 partly done (some part could not be computed) · 130 interrupted."
)

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


def guarded(func: F) -> F:
    """Turn lnexp's errors into one-line messages and exit codes (no traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except LnexpError as exc:
            if _state["debug"]:
                raise
            _err(str(exc))
            raise typer.Exit(exc.exit_code) from None
        except KeyboardInterrupt:
            _err("interrupted")
            raise typer.Exit(EXIT_INTERRUPTED) from None

    return wrapper  # type: ignore[return-value]


ConfigArg = Annotated[Path, typer.Argument(help="YAML config file, e.g. configs/default.yaml.",
                                           show_default=False)]
SetOpt = Annotated[list[str] | None, typer.Option(
    "--set", metavar="KEY=VALUE",
    help="Override a config key; VALUE is read as YAML. Repeatable: --set model.norm=bn "
         "--set seed=3.")]
JsonOpt = Annotated[bool, typer.Option("--json", help="Print only the JSON document to stdout.")]
QuietOpt = Annotated[bool, typer.Option("--quiet", "-q", help="Print only the run folder.")]
OutOpt = Annotated[Path | None, typer.Option("--output-dir", "-o",
                                             help="Parent folder of run folders (output.dir).")]


def _load(config: Path, sets: list[str] | None, output_dir: Path | None = None) -> Any:
    from lnexp.config import load_config

    overrides = list(sets or [])
    if output_dir is not None:
        overrides.append(f"output.dir={json.dumps(str(output_dir))}")
    return load_config(config, overrides)


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
    folder = artifacts.RunFolder(run_dir, "run", argv)
    with folder.tracking():
        result = experiment.run(cfg, progress)
        doc = artifacts.write_run(result, folder, argv)
        if result.training is not None and result.training.interrupted:
            typer.echo(f"training interrupted: what was recorded is saved in {run_dir}",
                       err=True)
            raise KeyboardInterrupt
    return result, run_dir, doc


@app.command()
@guarded
def run(config: ConfigArg, set_: SetOpt = None, json_: JsonOpt = False, quiet: QuietOpt = False,
        output_dir: OutOpt = None) -> None:
    """Run one experiment from a YAML config, e.g. `lnexp run configs/default.yaml`.

    Prints the tables, and writes config.yaml, metrics.json, stats.csv, env.json, run.json and
    figures/*.png (plus history.csv with a train: block) into a new folder
    OUTPUT_DIR/<name>/<timestamp>-<id>/. Training shows progress on stderr.
    """
    from lnexp import artifacts, tables

    cfg = _load(config, set_, output_dir)
    root = artifacts.ensure_output_dir(Path(cfg.output.dir))
    with contextlib.ExitStack() as stack:
        report = (None if quiet or cfg.train is None else
                  stack.enter_context(tables.progress(tables.make_console(stderr=True))))
        result, run_dir, doc = _execute(cfg, root, sys.argv, report)
    if json_:
        sys.stdout.write(artifacts.dumps({**doc, "run_dir": str(run_dir)}))
    elif quiet:
        typer.echo(str(run_dir))
    else:
        tables.render_run(tables.make_console(), result, str(run_dir), doc["explanation"])


@app.command()
@guarded
def validate(config: ConfigArg, set_: SetOpt = None, json_: JsonOpt = False) -> None:
    """Check a config without running it, e.g. `lnexp validate configs/bn.yaml`.

    Reports every problem at once, one line each; exit 2 if there is any.
    """
    from lnexp.errors import ConfigError

    try:
        _load(config, set_)
    except ConfigError as exc:
        if json_:
            sys.stdout.write(json.dumps({"schema_version": 1, "config": str(config),
                                         "valid": False, "problems": exc.problems}) + "\n")
            raise typer.Exit(EXIT_USAGE) from None
        raise
    if json_:
        sys.stdout.write(json.dumps({"schema_version": 1, "config": str(config), "valid": True,
                                     "problems": []}) + "\n")
    else:
        typer.echo(f"{config}: ok")


config_app = typer.Typer(help="Inspect configs.", no_args_is_help=True, rich_markup_mode=None)
app.add_typer(config_app, name="config")


@config_app.command("show")
@guarded
def config_show(config: ConfigArg, set_: SetOpt = None, json_: JsonOpt = False) -> None:
    """Print the resolved config (defaults and overrides applied), e.g.
    `lnexp config show configs/default.yaml --set model.norm=bn`."""
    from lnexp import config as config_mod

    cfg = _load(config, set_)
    if json_:
        sys.stdout.write(json.dumps({"schema_version": 1, "config": config_mod.to_dict(cfg)},
                                    indent=2) + "\n")
    else:
        typer.echo(config_mod.to_yaml(cfg), nl=False)


def main() -> None:
    """Console-script entry point."""
    app()
