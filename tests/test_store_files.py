"""Safe outputs: exclusive run folders, atomic writes, run.json status on success, failure
and Ctrl-C (a real subprocess), metrics.json never partial, `lnexp check` refuses incomplete
runs."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lnexp import core, experiment
from lnexp.cli import HOLD_ENV, app
from lnexp.errors import OutputError
from lnexp.store import files

LNEXP = Path(sys.executable).with_name("lnexp")
SMALL = "name: small\ndata:\n  n_samples: 8\nmodel:\n  in_features: 6\n  out_features: 4\n"


@pytest.fixture
def cfg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "cfg.yaml"
    path.write_text(SMALL + "output:\n  figures: false\n")
    return path


def _status(run_dir: Path) -> dict:
    return json.loads((run_dir / "run.json").read_text())


def _only_run_dir(out: Path) -> Path:
    (run_dir,) = [p for p in out.glob("*/*") if p.is_dir()]
    return run_dir


def test_completed_run_and_check(cfg: Path) -> None:
    res = CliRunner().invoke(app, ["run", str(cfg), "-o", "out", "-q"])
    assert res.exit_code == 0, res.output
    run_dir = Path(res.stdout.strip())
    assert _status(run_dir)["status"] == "completed"
    assert not list(run_dir.glob(".*.tmp"))
    res = CliRunner().invoke(app, ["check", str(run_dir)])
    assert res.exit_code == 0 and "no expectations" in res.stdout


def test_run_folders_are_never_reused(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    tokens = iter(["aaaaaa", "aaaaaa", "bbbbbb"])
    monkeypatch.setattr(files.secrets, "token_hex", lambda n: next(tokens))
    monkeypatch.setattr(files.time, "strftime", lambda fmt: "20250101-000000")
    first = files.create_run_dir(Path("out"), "x")
    second = files.create_run_dir(Path("out"), "x")
    assert first.name == "20250101-000000-aaaaaa"
    assert second.name == "20250101-000000-bbbbbb"


def test_write_atomic_leaves_old_file_and_no_temp(tmp_path: Path,
                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "metrics.json"
    target.write_text("old")

    def boom(src: str, dst: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(files.os, "replace", boom)
    with pytest.raises(OutputError, match=r"cannot write .*metrics.json: No space left"):
        files.write_atomic(target, "new")  # exit 2 naming the file, not a bug (70)
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["metrics.json"]


def test_exception_marks_failed_and_no_metrics(cfg: Path, monkeypatch: pytest.MonkeyPatch
                                               ) -> None:
    """A crash while rendering figures (after config/env/stats) leaves no metrics.json. (A
    figure that merely cannot be drawn is skipped with a warning: tests/test_store_figures.py.)
    """
    cfg.write_text(SMALL + "output:\n  dpi: 30\n")

    def broken(*args, **kwargs):
        raise RuntimeError("figure exploded")

    monkeypatch.setattr(core, "render_figures", broken)
    res = CliRunner().invoke(app, ["run", str(cfg), "-o", "out", "--json"])
    assert res.exit_code == 70
    assert "internal error" in res.stderr and "figure exploded" in res.stderr
    assert json.loads(res.stdout)["exit_code"] == 70
    run_dir = _only_run_dir(Path("out"))
    info = _status(run_dir)
    assert info["status"] == "failed" and "figure exploded" in info["error"]
    assert (run_dir / "stats.csv").exists() and not (run_dir / "metrics.json").exists()
    res = CliRunner().invoke(app, ["check", str(run_dir)])
    assert res.exit_code == 2 and "run status is 'failed'" in res.stderr


def test_keyboard_interrupt_in_process(cfg: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(experiment, "run", interrupted)
    res = CliRunner().invoke(app, ["run", str(cfg), "-o", "out"])
    assert res.exit_code == 130 and "interrupted" in res.stderr
    assert _status(_only_run_dir(Path("out")))["status"] == "interrupted"


@pytest.mark.slow  # starts real processes
def test_sigint_subprocess_leaves_interrupted_folder(cfg: Path, tmp_path: Path) -> None:
    """A real `lnexp run` killed with SIGINT mid-run (held at a known point by the
    LNEXP_TEST_HOLD_S test hook) marks its folder interrupted; `lnexp check` exits 2."""
    env = {**os.environ, HOLD_ENV: "60"}
    proc = subprocess.Popen(
        [str(LNEXP), "run", str(cfg), "-o", str(tmp_path / "out")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env,
        # a shell's background job may inherit SIGINT ignored; a terminal's Ctrl-C does not
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert proc.stderr is not None
        line = proc.stderr.readline()  # printed once the folder is marked running
        assert HOLD_ENV in line, line
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130, err
    assert "interrupted" in err and "Traceback" not in err
    run_dir = _only_run_dir(tmp_path / "out")
    info = _status(run_dir)
    assert info["status"] == "interrupted" and info["finished"]
    assert not (run_dir / "metrics.json").exists()
    t0 = time.perf_counter()
    check = subprocess.run([str(LNEXP), "check", str(run_dir)], capture_output=True, text=True,
                           timeout=60)
    assert check.returncode == 2
    assert "run status is 'interrupted'" in check.stderr and "rerun it" in check.stderr
    assert time.perf_counter() - t0 < 30


@pytest.mark.parametrize(("setup", "message"), [
    (lambda d: None, "no such folder"),
    (lambda d: d.mkdir(), "no run.json"),
    (lambda d: (d.mkdir(), (d / "run.json").write_text("{nope")), "cannot read"),
    (lambda d: (d.mkdir(), (d / "run.json").write_text('{"status": "running"}')),
     "run status is 'running'"),
    (lambda d: (d.mkdir(), (d / "run.json").write_text('{"status": "completed", '
                                                         '"kind": "run"}')), "no metrics.json"),
])
def test_check_refuses_untrustworthy_folders(tmp_path: Path, setup, message: str) -> None:
    d = tmp_path / "run"
    setup(d)
    res = CliRunner().invoke(app, ["check", str(d), "--json"])
    assert res.exit_code == 2
    assert message in res.stderr
    assert json.loads(res.stdout)["kind"] == "error"
