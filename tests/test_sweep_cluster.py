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
from typing import Any

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
    # Dask fails it (KilledWorker) or runs it again, which finds its folder and refuses
    assert ("KilledWorker" in failed[0]["error"] or "an earlier attempt of this trial was "
            "lost with its worker" in failed[0]["error"]), failed[0]
    assert failed[0]["attempts"] == 1

    res = _invoke("sweep", "--resume", str(sweep_dir), "--scheduler", dask_cluster.address)
    assert res.exit_code == 0, res.output
    after = SweepFolder.load(sweep_dir).doc
    assert after["counts"]["completed"] == 4 and after["status"] == "completed"
    assert after["trials"][failed[0]["index"]]["attempts"] == 2
    from distributed import Client

    with Client(dask_cluster.address, timeout=30) as client:  # the nanny restarted it
        client.wait_for_workers(2, timeout=60)


# --------------------------------------------------------------------------- issue 24

class _Lines:
    """A subprocess's stderr read line by line on a thread (to react while it runs)."""

    def __init__(self, proc: subprocess.Popen[str]):
        import threading

        self.lines: list[str] = []
        self.thread = threading.Thread(target=self._read, args=(proc,), daemon=True)
        self.thread.start()

    def _read(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stderr is not None
        for line in proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = next((line for line in self.lines if text in line), None)
            if found:
                return found
            time.sleep(0.05)
        pytest.fail(f"{text!r} not printed in {timeout} s: {''.join(self.lines)[-2000:]}")


def _stop(procs: list[subprocess.Popen[Any]]) -> None:
    """Stop processes this test started, children included, by pid."""
    from tests.conftest import DaskCluster

    holder = DaskCluster.__new__(DaskCluster)
    holder.procs = procs
    holder.stop()


@pytest.mark.slow  # a real `dask scheduler --scheduler-file`; workers join after the start
def test_scheduler_file_and_workers_that_join_after_the_sweep_began(cfg: Path,
                                                                    tmp_path: Path) -> None:
    pytest.importorskip("distributed")
    from tests.conftest import _free_port

    bin_dir = Path(sys.executable).parent
    file = tmp_path / "scheduler.json"
    env = {**os.environ, "DASK_DISTRIBUTED__SCHEDULER__ALLOWED_FAILURES": "0",
           "DASK_DISTRIBUTED__SCHEDULER__WORKER_SATURATION": "1.0",
           workers.HOLD_ENV: "2"}  # each trial holds 2 s: the second worker finds some left
    quiet = {"env": env, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL,
             "start_new_session": True}
    procs: list[subprocess.Popen[Any]] = [subprocess.Popen(
        [str(bin_dir / "dask"), "scheduler", "--scheduler-file", str(file), "--host",
         "127.0.0.1", "--port", str(_free_port()), "--no-dashboard"], **quiet)]
    try:
        out = tmp_path / "out"
        sweep = subprocess.Popen(
            [str(LNEXP), "sweep", str(cfg), "--grid", "model.norm=ln", "--seeds", "6",
             "--scheduler-file", str(file), "--wait-timeout", "120", "-o", str(out),
             "--no-figure", "-q"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            text=True, start_new_session=True)
        procs.append(sweep)
        err = _Lines(sweep)
        err.wait_for("waiting for 1 Dask worker(s)", 120)  # the sweep began: no worker yet

        def worker() -> subprocess.Popen[Any]:
            return subprocess.Popen([str(bin_dir / "dask"), "worker", "--scheduler-file",
                                     str(file), "--nthreads", "1", "--host", "127.0.0.1",
                                     "--no-dashboard"], **quiet)

        procs.append(worker())
        deadline = time.monotonic() + 120
        while not list(out.glob("tiny-sweep/*/t*/run.json")):  # the first worker started one
            assert time.monotonic() < deadline and sweep.poll() is None, err.lines
            time.sleep(0.1)
        procs.append(worker())  # a worker that joins mid-sweep takes trials too
        sweep.wait(timeout=300)
        stdout = sweep.stdout.read() if sweep.stdout else ""
        err.thread.join(5)
    finally:
        _stop(procs)
    assert sweep.returncode == 0, "".join(err.lines)
    doc = SweepFolder.load(Path(stdout.strip())).doc
    assert doc["counts"]["completed"] == 6
    assert len({t["worker_pid"] for t in doc["trials"]}) == 2, doc["trials"]
    assert doc["sessions"][0]["executor"]["scheduler"] == f"scheduler file {file}"


@pytest.mark.slow  # starts a LocalCluster with its dashboard
def test_local_cluster_dashboard_link_answers_and_shows_every_trial(cfg: Path,
                                                                    tmp_path: Path) -> None:
    """The printed dashboard link answers over loopback, and the scheduler the dashboard
    reads holds every trial at once (the progress panel's total), not one per slot."""
    pytest.importorskip("bokeh")
    import urllib.request

    env = {**os.environ, workers.HOLD_ENV: "2"}
    sweep = subprocess.Popen(
        [str(LNEXP), "sweep", str(cfg), "--grid", "model.norm=ln", "--seeds", "6",
         "--executor", "dask", "-j", "2", "-o", str(tmp_path / "out"), "--no-figure", "-q"],
        env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        start_new_session=True)
    err = _Lines(sweep)
    try:
        link = err.wait_for("Dask dashboard: ", 120).split("Dask dashboard: ", 1)[1].strip()
        assert link.startswith("http://127.0.0.1:") and link.endswith("/status"), link
        with urllib.request.urlopen(link, timeout=30) as page:
            assert page.status == 200 and b"Dask" in page.read()
        counts = link.rsplit("/", 1)[0] + "/json/counts.json"
        most = 0
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and sweep.poll() is None and most < 6:
            with urllib.request.urlopen(counts, timeout=10) as r:
                most = max(most, json.loads(r.read())["tasks"])
            time.sleep(0.1)
        sweep.wait(timeout=300)
        err.thread.join(5)
    finally:
        _stop([sweep])
    assert sweep.returncode == 0, "".join(err.lines)
    assert most == 6  # all six trials on the scheduler at once (it was 2, one per slot)


@pytest.mark.slow  # starts dask-jobqueue's scheduler (no Slurm needed)
def test_the_jobqueue_recipe_in_the_docs_builds_its_cluster_and_job_script(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cfg: Path) -> None:
    """docs/integrations.md's jobqueue.yaml and cluster.py, run up to its Slurm-only part:
    the SLURMCluster is built from the YAML, its job script asks for one single-threaded
    worker per job, and the scheduler file it writes is one lnexp accepts."""
    pytest.importorskip("dask_jobqueue")
    import contextlib
    import io
    import re

    import dask

    text = (Path(__file__).parent.parent / "docs" / "integrations.md").read_text()
    section = text.split("## Dask on Slurm (dask-jobqueue)", 1)[1]
    yaml_text = re.search(r"```yaml\n(.*?)```", section, re.S).group(1)
    script = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    script = script.split("# --- on Slurm only, below", 1)[0]
    config_dir = tmp_path / "dask-config"
    config_dir.mkdir()
    (config_dir / "jobqueue.yaml").write_text(yaml_text)
    monkeypatch.chdir(tmp_path)
    # as ~/.config/dask/jobqueue.yaml would be read (DASK_CONFIG is read at import)
    dask.config.refresh(paths=[*dask.config.paths, str(config_dir)])
    assert dask.config.get("distributed.scheduler.allowed-failures") == 0
    # loopback only here (the recipe listens on every interface for the compute nodes)
    namespace: dict[str, Any] = {}
    out = io.StringIO()
    with dask.config.set({"jobqueue.slurm.scheduler-options": {
            "host": "127.0.0.1", "dashboard_address": "127.0.0.1:0"}}), \
            contextlib.redirect_stdout(out):
        exec(compile(script, "integrations.md:cluster.py", "exec"), namespace)
    cluster = namespace["cluster"]
    try:
        job = out.getvalue()
        assert "#SBATCH -J lnexp-worker" in job and "#SBATCH -p normal" in job, job
        assert "--nthreads 1" in job and "source /shared/venvs/lnexp/bin/activate" in job
        assert "--nworkers" not in job and "#SBATCH -n 1" in job  # one worker per job
        res = _invoke("sweep", str(cfg), "--grid", "seed=0:2", "--scheduler-file",
                      str(tmp_path / "scheduler.json"), "--dry-run")
        assert res.exit_code == 0, res.output
        assert "scheduler file" in res.stdout
    finally:
        cluster.close()
        dask.config.refresh()
