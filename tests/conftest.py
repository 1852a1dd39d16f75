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


# Commands that write run folders; without -o they would write into the repo's outputs/.
WRITING = ("run", "compare", "sweep")


@pytest.fixture
def invoke(runner: CliRunner, tmp_path: Path):
    """Invoke the CLI in-process; returns the Click Result. A writing command without
    -o/--output-dir gets `-o tmp_path/out`, so no test writes outside tmp_path."""

    def _invoke(*args: str, env: dict[str, str] | None = None) -> Any:
        argv = list(args)
        if argv and argv[0] in WRITING and not {"-o", "--output-dir"} & set(argv):
            argv[1:1] = ["-o", str(tmp_path / "out")]
        return runner.invoke(app, argv, env=env or {}, catch_exceptions=False)

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
