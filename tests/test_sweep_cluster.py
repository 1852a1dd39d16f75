"""The Dask executor (lnexp/sweep/cluster.py): workers with another lnexp refuse trials, a
worker killed mid-sweep fails only its trial (exit 3) and --resume completes it, folders of
workers that do not share the filesystem are caught, shipped folders appear whole. The sweep
tests in test_sweep_runner.py run on every executor (conftest.EXECUTORS)."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from lnexp.sweep import cluster, workers
from lnexp.sweep.folder import SweepFolder
from tests.conftest import invoke_app as _invoke

LNEXP = Path(sys.executable).with_name("lnexp")


@pytest.fixture
def cfg(tiny_sweep_cfg: Path) -> Path:
    return tiny_sweep_cfg

# --------------------------------------------------------------------------- no processes

def test_collect_needs_dask_and_a_bad_executor_is_refused(cfg: Path, tmp_path: Path) -> None:
    res = _invoke("sweep", str(cfg), "--grid", "seed=0:2", "--collect", "-o", str(tmp_path))
    assert res.exit_code == 2 and "--collect" in res.stderr and "--executor dask" in res.stderr
    res = _invoke("sweep", str(cfg), "--grid", "seed=0:2", "--executor", "ray")
    assert res.exit_code == 2
    res = _invoke("sweep", str(cfg), "--grid", "seed=0:2", "--executor", "local",
                  "--scheduler", "tcp://127.0.0.1:1")
    assert res.exit_code == 2 and "--scheduler needs --executor dask" in res.stderr
    assert not list(tmp_path.glob("tiny-sweep"))


class _Done:
    """A finished future, as distributed returns it."""

    def __init__(self, outcome: workers.Outcome):
        self._outcome = outcome

    def result(self) -> workers.Outcome:
        return self._outcome


def _completed(task: workers.Task) -> workers.Outcome:
    return {"index": task.index, "status": "completed", "error": None, "seconds": 0.1,
            "cpu_seconds": 0.1, "threads": 1, "pid": 4242, "host": "node7"}


def test_a_folder_this_machine_does_not_see_fails_the_trial(tmp_path: Path) -> None:
    task = workers.Task(0, {}, str(tmp_path / "t000-ln"), ["lnexp"])
    outcome = cluster._outcome(_Done(_completed(task)), task, collect=False)
    assert outcome["status"] == "failed"
    assert "node7" in outcome["error"] and "use --collect" in outcome["error"]
    (tmp_path / "t000-ln").mkdir()
    assert cluster._outcome(_Done(_completed(task)), task, collect=False)["status"] == \
        "completed"


def test_collected_folder_is_written_whole(tmp_path: Path) -> None:
    task = workers.Task(0, {}, str(tmp_path / "t000-ln"), ["lnexp"])
    shipped = {"run.json": b'{"status": "completed"}\n', "figures/overview.png": b"\x89PNG"}
    outcome = cluster._outcome(_Done({**_completed(task), "files": shipped}), task,
                               collect=True)
    assert outcome["status"] == "completed" and "files" not in outcome
    assert (tmp_path / "t000-ln" / "figures" / "overview.png").read_bytes() == b"\x89PNG"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t000-ln"]  # no staging left


def test_unreachable_scheduler_exits_2_before_any_folder(cfg: Path, tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch
                                                        ) -> None:
    pytest.importorskip("distributed")
    monkeypatch.setattr(cluster, "CONNECT_TIMEOUT_S", 1)
    res = _invoke("sweep", str(cfg), "--grid", "seed=0:2", "--scheduler",
                  "tcp://127.0.0.1:9", "-o", str(tmp_path / "out"))
    assert res.exit_code == 2 and "cannot connect" in res.stderr
    assert not (tmp_path / "out" / "tiny-sweep").exists()


# --------------------------------------------------------------------------- real clusters

@pytest.mark.slow  # starts a LocalCluster
def test_worker_with_another_lnexp_version_refuses_trials(cfg: Path, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch
                                                          ) -> None:
    distributed = pytest.importorskip("distributed")
    import logging

    # The worker processes inherit this at start: they report another lnexp than ours.
    monkeypatch.setenv(cluster.VERSION_ENV, "0.0.1-other")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, host="127.0.0.1",
                                  dashboard_address="127.0.0.1:0",
                                  silence_logs=logging.ERROR) as lc:
        monkeypatch.delenv(cluster.VERSION_ENV)
        res = _invoke("sweep", str(cfg), "--grid", "model.norm=ln,rms", "--scheduler",
                      lc.scheduler_address, "-o", str(tmp_path / "out"), "--json")
    assert res.exit_code == 3, res.output
    doc = json.loads(res.stdout)
    assert doc["counts"]["failed"] == 2
    for t in doc["trials"]:
        assert "runs lnexp 0.0.1-other, this sweep runs lnexp" in t["error"]
        assert "install the same lnexp version on every worker" in t["error"]
        assert not (Path(doc["sweep_dir"]) / t["run_dir"]).exists()  # nothing ran
    assert doc["sessions"][0]["executor"]["scheduler"] == lc.scheduler_address


@pytest.mark.slow  # a real cluster; kills one of its workers
def test_worker_killed_mid_sweep_fails_its_trial_and_resume_completes_it(
        dask_cluster, cfg: Path, tmp_path: Path) -> None:
    out = tmp_path / "out"
    env = {**os.environ, workers.HOLD_ENV: "3"}  # forwarded to the remote workers
    proc = subprocess.Popen([str(LNEXP), "sweep", str(cfg), "--grid", "model.norm=ln",
                             "--seeds", "4", "--scheduler", dask_cluster.address,
                             "-o", str(out), "--no-figure"],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)
    try:
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline:  # both workers hold a started trial
            if len(list(out.glob("tiny-sweep/*/t*/run.json"))) >= 2:
                break
            time.sleep(0.05)
        else:
            pytest.fail("the trials never started")
        victims = dask_cluster.worker_children(dask_cluster.workers[0])
        assert victims
        for pid in victims:
            os.kill(pid, signal.SIGKILL)
        _, err = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 3, err
    (sweep_dir,) = (out / "tiny-sweep").iterdir()
    doc = SweepFolder.load(sweep_dir).doc
    failed = [t for t in doc["trials"] if t["status"] == "failed"]
    assert len(failed) == 1 and doc["counts"]["completed"] == 3, doc["trials"]
    assert "KilledWorker" in failed[0]["error"] and failed[0]["attempts"] == 1

    res = _invoke("sweep", "--resume", str(sweep_dir), "--scheduler", dask_cluster.address)
    assert res.exit_code == 0, res.output
    after = SweepFolder.load(sweep_dir).doc
    assert after["counts"]["completed"] == 4 and after["status"] == "completed"
    assert after["trials"][failed[0]["index"]]["attempts"] == 2
    from distributed import Client

    with Client(dask_cluster.address, timeout=30) as client:  # the nanny restarted it
        client.wait_for_workers(2, timeout=60)
