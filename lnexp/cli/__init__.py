"""The `lnexp` command: a thin shell over lnexp.api. Each command parses its arguments, makes
one call into the API (lnexp.api.compute for the commands that compute), renders the outcome
and maps exceptions to exit codes (lnexp.cli.base.guarded, here and only here).

Imports of torch, matplotlib and pydantic happen inside commands, so `lnexp --help` is fast.
One module per command group; importing them registers their commands, in `--help` order.
"""

from __future__ import annotations

import importlib

from lnexp.cli.base import app, guarded, main

for _group in ("run", "check", "sweep", "inspect", "speed", "runs", "config", "report"):
    importlib.import_module(f"lnexp.cli.{_group}")

from lnexp.cli.run import HOLD_ENV  # noqa: E402  (after the commands are registered)

__all__ = ["HOLD_ENV", "app", "guarded", "main"]
