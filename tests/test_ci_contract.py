"""The CI contract: --json on every command (stdout = one JSON document with schema_version),
plain output under NO_COLOR / CI, the shipped CI config and examples/ci.sh."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lnexp import tables
from lnexp.cli import app
from lnexp.config import load_config

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
CI_CONFIG = ROOT / "configs" / "ci_ln_invariants.yaml"


@pytest.fixture
def out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    return tmp_path / "out"


def _doc(stdout: str) -> dict:
    doc = json.loads(stdout)  # the whole of stdout is one document
    assert doc["schema_version"] == 1
    return doc


def test_json_run_and_check(out: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(CI_CONFIG), "-o", str(out), "--json"])
    assert res.exit_code == 0, res.stderr
    doc = _doc(res.stdout)
    assert doc["kind"] == "run" and doc["numeric_trouble"]["detected"] is False
    assert len(doc["expectations"]) == 6 and all(r["passed"] for r in doc["expectations"])
    for r in doc["expectations"]:
        assert {"path", "value", "bound", "passed"} <= r.keys()
    saved = json.loads((Path(doc["run_dir"]) / "metrics.json").read_text())
    assert saved["expectations"] == doc["expectations"]
    res = CliRunner().invoke(app, ["check", doc["run_dir"], "--json"])
    assert res.exit_code == 0
    check = _doc(res.stdout)
    assert check["kind"] == "check" and check["passed"] is True
    assert check["expectations"] == doc["expectations"]


def test_failing_expectation_exit_1_and_table(out: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(CI_CONFIG), "-o", str(out),
                                   "--set", "model.norm=bn"])
    assert res.exit_code == 1
    assert "Expectations:" in res.stdout and "FAIL" in res.stdout
    assert "expectation(s) failed" in res.stderr


@pytest.mark.parametrize("args", [["validate", "CFG"], ["config", "show", "CFG"],
                                  ["validate", "CFG", "--set", "model.nrom=1"],
                                  ["config", "show", "CFG", "--set", "seed=-1"]])
def test_json_validate_and_config_show(args: list[str]) -> None:
    args = [str(CI_CONFIG) if a == "CFG" else a for a in args]
    res = CliRunner().invoke(app, [*args, "--json"])
    doc = _doc(res.stdout)
    bad = any(a.startswith("--set") for a in args)
    assert res.exit_code == (2 if bad else 0)
    if bad:
        assert doc["problems"] and res.stderr.startswith("error: ")
    elif args[0] == "config":
        assert doc["kind"] == "config"
        assert doc["config"]["expect"]["post_norm.per_sample.mean.abs_max"] == {"le": 1e-6}
    else:
        assert doc["kind"] == "validate" and doc["valid"] is True


def test_config_show_is_what_runs(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["config", "show", str(CI_CONFIG), "--set", "model.norm=rms",
                                   "--expect", "post_norm.global.rms.mean ~= 1 tol 0.01"])
    assert res.exit_code == 0
    shown = tmp_path / "shown.yaml"
    shown.write_text(res.stdout)
    cfg = load_config(shown)
    assert cfg.model.norm == "rms" and "post_norm.global.rms.mean" in cfg.expect
    assert cfg == load_config(CI_CONFIG, ["model.norm=rms"],
                              ["post_norm.global.rms.mean ~= 1 tol 0.01"])


@pytest.mark.parametrize("env", [{"NO_COLOR": "1"}, {"CI": "true"}])
def test_plain_console_under_no_color_and_ci(monkeypatch: pytest.MonkeyPatch, env: dict) -> None:
    monkeypatch.delenv("NO_COLOR", raising=False)
    monkeypatch.delenv("CI", raising=False)
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    monkeypatch.setattr(sys.stdout, "isatty", lambda: True, raising=False)
    console = tables.make_console()
    assert console.no_color and not console.is_terminal


def test_every_shipped_config_validates() -> None:
    for path in sorted((ROOT / "configs").glob("*.yaml")):
        res = CliRunner().invoke(app, ["validate", str(path)])
        assert res.exit_code == 0, (path, res.stderr)
        assert path.read_text().startswith("#"), f"{path.name} needs a header comment"


@pytest.mark.slow  # starts real processes
def test_examples_ci_sh(tmp_path: Path) -> None:
    """examples/ci.sh shows a passing (exit 0) and failing (exit 1) expectation, as a new user
    runs it after `make test`: no venv on PATH, started from another folder."""
    path = os.pathsep.join(d for d in os.environ["PATH"].split(os.pathsep)
                           if d and Path(d).resolve() != BIN.resolve()
                           and not (Path(d) / "lnexp").exists())
    env = {**os.environ, "PATH": path, "CI": "true"}
    env.pop("VIRTUAL_ENV", None)
    res = subprocess.run([str(ROOT / "examples" / "ci.sh"), str(tmp_path / "out")], env=env,
                         capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert res.returncode == 0, res.stdout + res.stderr
    assert "passing run: exit 0" in res.stdout
    assert "failing run (model.norm=bn): exit 1" in res.stdout
    assert "check with a failing --expect: exit 1" in res.stdout


def test_help_documents_exit_codes() -> None:
    res = CliRunner().invoke(app, ["--help"])
    assert res.exit_code == 0
    text = " ".join(res.stdout.split())
    for part in ("0 success", "1 an expectation failed", "2 usage or config error",
                 "3 partly done", "130 interrupted", "numeric_trouble"):
        assert part in text, part
