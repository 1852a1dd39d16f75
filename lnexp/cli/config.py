"""`lnexp config show|schema|list`."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer

from lnexp.cli.base import (
    _emit,
    _write,
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

config_app = typer.Typer(help="Inspect configs, list the shipped presets; the JSON Schema.",
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



@config_app.command("list", short_help="List the shipped configs (presets) by name.")
@guarded
def config_list_cmd(json_: JsonOpt = False) -> None:
    """List the configs shipped with lnexp, usable by name anywhere (no checkout needed), e.g.
    `lnexp run tutorial`, `lnexp compare --config images`, `lnexp config show bn`."""
    from lnexp import presets

    rows = presets.listing()
    if json_:
        _emit({"kind": "presets", "presets": rows})
        return
    width = max((len(r["name"]) for r in rows), default=0)
    for r in rows:
        also = f" (also: {r['aliases']})" if r["aliases"] else ""
        typer.echo(f"{r['name']:<{width}}  {r['description']}{also}")
