"""Shared fixtures: every test writes under tmp_path, never into the repo's outputs/."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from lnexp.cli import app

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = ROOT / "configs"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner: CliRunner, tmp_path: Path):
    """Invoke the CLI in-process with output under tmp_path; returns the Click Result."""

    def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
        return runner.invoke(app, list(args), env=env or {}, catch_exceptions=False)

    return _invoke


def run_json(invoke, tmp_path: Path, config: str | Path, *sets: str,
             figures: bool = False) -> dict[str, Any]:
    """`lnexp run CONFIG --json` in-process; returns the parsed document."""
    args = ["run", str(config), "--json", "-o", str(tmp_path / "out")]
    if not figures:
        args += ["--set", "output.figures=false"]
    for s in sets:
        args += ["--set", s]
    result = invoke(*args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)
