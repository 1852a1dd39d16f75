"""`lnexp export mlflow` against a store it cannot use or shares (issue 26 row 8): a server
that refuses connections and a sqlite file that cannot be written fail in seconds with one
line; two exports of one folder at once log each run once. Real subprocesses, real stores."""

from __future__ import annotations

import importlib.util
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow,  # find_spec: collection does not pay `import mlflow` (~2 s)
              pytest.mark.skipif(importlib.util.find_spec("mlflow") is None,
                                 reason="needs the mlflow extra")]

ROOT = Path(__file__).resolve().parent.parent
LNEXP = str(Path(sys.executable).with_name("lnexp"))


def _export(*args: str | Path, cwd: Path) -> subprocess.Popen[str]:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "NO_COLOR": "1"}
    env.pop("MLFLOW_TRACKING_URI", None)
    return subprocess.Popen([LNEXP, "export", "mlflow", *map(str, args)], cwd=cwd, env=env,
                            text=True, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            stdin=subprocess.DEVNULL)


def _refusing_port() -> int:
    with socket.socket() as s:  # bound then closed: nothing listens there
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _one_error_fast(proc: subprocess.Popen[str], *needles: str, limit_s: float = 15) -> None:
    start = time.monotonic()
    try:
        _, err = proc.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.communicate()
        pytest.fail("export did not give up in 60 s (it took 106-250 s)")
    took = time.monotonic() - start
    assert proc.returncode == 2, err
    assert "Traceback" not in err
    lines = [x for x in err.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, err
    for needle in needles:
        assert needle in lines[0], lines[0]
    assert took < limit_s, f"{took:.1f} s (measured with 4 helpers sharing 2 cores)"


def test_a_server_that_refuses_fails_in_seconds(folders: dict[str, Path],
                                                tmp_path: Path) -> None:
    port = _refusing_port()
    _one_error_fast(_export(folders["run"], "--tracking-uri", f"http://127.0.0.1:{port}",
                            cwd=tmp_path),
                    f"http://127.0.0.1:{port}", "cannot connect", "Connection refused")


@pytest.mark.parametrize("where", ["under_a_file", "proc"])
def test_a_store_that_cannot_be_written_fails_in_seconds(where: str, folders: dict[str, Path],
                                                         tmp_path: Path) -> None:
    (tmp_path / "a_file").write_text("x")
    db = tmp_path / "a_file" / "mlflow.db" if where == "under_a_file" else \
        Path("/proc/mlflow.db")  # /proc exists; no file can be made in it (MLflow: 106 s)
    _one_error_fast(_export(folders["run"], "--tracking-uri", f"sqlite:///{db}", cwd=tmp_path),
                    f"cannot write {db}")


def test_two_exports_at_once_log_each_run_once(folders: dict[str, Path],
                                               tmp_path: Path) -> None:
    import mlflow

    uri = f"sqlite:///{tmp_path / 'store' / 'mlflow.db'}"
    first = _export(folders["run"], "--tracking-uri", uri, cwd=tmp_path)  # the store exists
    assert first.wait(timeout=300) == 0, first.communicate()[1]
    procs = [_export(folders["sweep"], "--tracking-uri", uri, cwd=tmp_path) for _ in range(2)]
    results = [p.communicate(timeout=300) for p in procs]
    for p, (_, err) in zip(procs, results, strict=True):
        assert p.returncode == 0, err
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    exp = client.get_experiment_by_name("lnexp")
    runs = client.search_runs([exp.experiment_id], max_results=1000)
    ids = [r.data.tags["lnexp.run_id"] for r in runs]
    assert len(ids) == len(set(ids)) > 1, sorted(ids)  # concurrent exports duplicated every run
    actions = sorted(line.split(":")[0] for out, _ in results for line in out.splitlines()
                     if line.startswith(("created", "unchanged")))
    assert actions == ["created", "unchanged"], actions  # the second waited, then saw it


def test_a_lock_held_too_long_is_exit_3(tmp_path: Path) -> None:
    """The bounded wait: a lock another process holds is given up after `wait_s`, exit 3."""
    import fcntl

    from lnexp.export.store import ExportBusy, _lock_path, export_lock

    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    holder = subprocess.Popen(  # a real second process holds the lock
        [sys.executable, "-c", "import fcntl, os, sys, time; fd = os.open(sys.argv[1], "
         "os.O_RDWR | os.O_CREAT); fcntl.flock(fd, fcntl.LOCK_EX); print('held', flush=True); "
         "time.sleep(30)", str(_lock_path(uri, "lnexp"))], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        start = time.monotonic()
        with pytest.raises(ExportBusy, match="has held") as caught, \
                export_lock(uri, "lnexp", wait_s=1):
            pass
        assert caught.value.exit_code == 3 and time.monotonic() - start < 5
        with export_lock(uri, "other-experiment", wait_s=1):  # another experiment: no wait
            pass
    finally:
        holder.kill()
        holder.wait()
    with export_lock(uri, "lnexp", wait_s=1):  # released with the process
        fd = os.open(_lock_path(uri, "lnexp"), os.O_RDWR)
        with pytest.raises(BlockingIOError):
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        os.close(fd)
