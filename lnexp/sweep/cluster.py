"""The Dask executor: sweep trials on a Dask cluster, a LocalCluster started for the sweep or
an existing one reached through its scheduler.

Imported only when `--executor dask` runs (it imports distributed). Each trial is one Dask
task calling run_on_worker, which runs the same workers.run_trial as the local pool.

- One trial per worker process: the LocalCluster has one thread per worker, and at most as
  many trials are in flight as the cluster has worker threads. torch's RNG and thread pool
  are per process, so two trials sharing a process change results (seen when trying Dask:
  one worker with two threads gave different numbers).
- No engine retries: the LocalCluster's scheduler runs with allowed-failures 0, so a trial
  whose worker dies fails at once (KilledWorker) and stays failed until --resume. An existing
  scheduler should be started the same way (docs/commands.md); if it retries anyway, the retried
  attempt finds the trial folder its first attempt created and refuses (workers.run_trial).
- Every trial is submitted at once (the dashboard shows the real total, a worker that joins
  later takes trials); worker-saturation 1.0 keeps the queued ones on the scheduler, not
  behind a worker that could die with them (an existing scheduler: start it so too).
- Folders: with a shared filesystem the workers write each trial folder where the parent
  expects it, and the parent checks it is there; with collect the worker runs the trial in a
  temporary folder and returns its files, which the parent writes and renames into place.
- Ctrl-C cancels every future, reports the running trials interrupted and closes the client
  (and the LocalCluster, whose worker processes end with it).
"""

from __future__ import annotations

import contextlib
import logging
import os
import platform
import secrets
import shutil
import signal
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from lnexp import __version__
from lnexp.errors import ClusterError
from lnexp.store import files
from lnexp.sweep import workers

# Test hook (documented in docs/contracts.md): a worker reports this lnexp version instead of its
# own, so a test can exercise the version check with a real worker process.
VERSION_ENV = "LNEXP_TEST_WORKER_VERSION"
CONNECT_TIMEOUT_S = 20
MAX_UNSTARTED_LOSSES = 3  # a trial lost with its worker before it started is run again


# ----------------------------------------------------------------------------- worker side

def run_on_worker(task: workers.Task, version: str, threads: int, collect: bool
                  ) -> workers.Outcome:
    """One trial on a Dask worker: refuse it if this worker's lnexp is not the parent's
    version, fix torch's threads, run it; with `collect` run it in a temporary folder and
    return the folder's files under outcome['files'] ({relative path: bytes})."""
    mine = os.environ.get(VERSION_ENV) or __version__
    if mine != version:
        return workers.lost(task, f"worker {platform.node()} (pid {os.getpid()}) runs lnexp "
                                  f"{mine}, this sweep runs lnexp {version}: install the same "
                                  f"lnexp version on every worker; trial not run")
    import torch

    torch.set_num_threads(threads)
    if not collect:
        return workers.run_trial(task)
    tmp = Path(tempfile.mkdtemp(prefix="lnexp-trial-"))
    try:
        run_dir = tmp / Path(task.run_dir).name
        outcome = workers.run_trial(replace(task, run_dir=str(run_dir)))
        outcome["files"] = {str(p.relative_to(run_dir)): p.read_bytes()
                            for p in sorted(run_dir.rglob("*")) if p.is_file()}
        return outcome
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ----------------------------------------------------------------------------- parent side

@contextlib.contextmanager
def connect(executor: Any, jobs: int | None) -> Iterator[tuple[Any, int | None, int]]:
    """(client, slots, threads per trial): a client on the executor's scheduler (its address
    or Dask's scheduler file), or on a LocalCluster of `jobs` single-threaded worker
    processes on 127.0.0.1 (its dashboard on a free loopback port), closed with everything
    it started on exit. slots: a cap on the trials in flight (-j on an existing cluster),
    None for none: every trial is submitted at once. The dashboard's link goes to stderr."""
    import dask
    from distributed import Client, LocalCluster

    # worker-saturation 1.0: the scheduler hands a worker only the trials it can start, so a
    # worker that dies fails the trial it ran, not the ones queued behind it (every trial is
    # submitted at once; with Dask's default 1.1 a one-thread worker holds two)
    with dask.config.set({"distributed.scheduler.allowed-failures": 0,
                          "distributed.scheduler.worker-saturation": 1.0}):
        if not executor.existing:
            jobs = jobs or workers.default_jobs()
            with _workers_ignore_sigint(), contextlib.ExitStack() as stack:
                cluster = stack.enter_context(_quiet_close(_local_cluster(LocalCluster, jobs)))
                with Client(cluster) as client:
                    _say_dashboard(client)
                    # threads per trial fixed (not cores // jobs): results must not depend
                    # on -j; one worker thread each, so at most `jobs` trials run at once
                    yield client, None, workers.TRIAL_THREADS
            return
        where = executor.scheduler or f"in {executor.scheduler_file}"
        try:
            if executor.scheduler is not None:
                client = Client(executor.scheduler, timeout=CONNECT_TIMEOUT_S)
            else:  # Dask waits for the file (a scheduler job still queued) up to the timeout
                client = Client(scheduler_file=executor.scheduler_file,
                                timeout=executor.wait_timeout)
        except (OSError, TimeoutError, ValueError, TypeError) as exc:
            # TypeError: tls:// without Dask's TLS settings ("TLS expects a `ssl_context`")
            raise ClusterError(f"Dask scheduler {where}: cannot connect ({exc})") from None
        with client:
            _wait_for_workers(client, executor, where)
            _say_dashboard(client)
            # One torch thread per trial on an existing cluster: its workers' core counts are
            # not ours to know; a trial gets what its worker thread was given.
            yield client, jobs, 1


def _wait_for_workers(client: Any, executor: Any, where: str) -> None:
    """Wait until --wait-workers workers have joined (jobqueue workers arrive minutes after
    `cluster.scale`); ClusterError after --wait-timeout seconds, saying how many came."""
    import sys

    want = executor.wait_workers
    have = len(client.scheduler_info(n_workers=-1).get("workers", {}))
    if have >= want:
        return
    sys.stderr.write(f"waiting for {want} Dask worker(s) on {where} ({have} connected; "
                     f"at most {executor.wait_timeout:g} s, --wait-timeout)\n")
    try:
        client.wait_for_workers(n_workers=want, timeout=executor.wait_timeout)
    except TimeoutError:
        have = len(client.scheduler_info(n_workers=-1).get("workers", {}))
        raise ClusterError(f"Dask scheduler {where}: {have} of {want} worker(s) joined in "
                           f"{executor.wait_timeout:g} s (--wait-workers {want}, "
                           f"--wait-timeout); start workers with `dask worker "
                           f"{client.scheduler.address}`, or wait longer") from None


def _say_dashboard(client: Any) -> None:
    """Print the Dask dashboard's address (stderr), as Dask's own Client repr shows it."""
    import sys

    link = getattr(client, "dashboard_link", None)
    if link:
        sys.stderr.write(f"Dask dashboard: {link}\n")
        sys.stderr.flush()


@contextlib.contextmanager
def _workers_ignore_sigint() -> Iterator[None]:
    """The LocalCluster's worker processes start with SIGINT ignored, so a Ctrl-C (sent to
    the whole process group) reaches only this process, which cancels the trials and closes
    the cluster; the workers used to print KeyboardInterrupt tracebacks (while importing
    distributed, or mid-task). Dask spawns them through multiprocessing's spawn executable:
    for the cluster's life that is a short sh script, `trap '' INT; exec python "$@"` (an
    ignored signal stays ignored across exec, and Python then installs no KeyboardInterrupt
    handler). Blocking or ignoring SIGINT here instead does not work: spawning resets the
    mask, and torch's native threads would swallow an ignored Ctrl-C meant for lnexp."""
    import multiprocessing.spawn
    import shlex
    import sys

    old = multiprocessing.spawn.get_executable()
    folder = Path(tempfile.mkdtemp(prefix="lnexp-dask-"))
    wrapper = folder / "python"
    # the resource tracker (started through it too) would warn about the semaphores of a
    # worker stopped mid-start: noise after a Ctrl-C
    wrapper.write_text("#!/bin/sh\ntrap '' INT\ncase \"$*\" in *resource_tracker*) "
                       "export PYTHONWARNINGS=ignore;; esac\n"
                       f"exec {shlex.quote(sys.executable)} \"$@\"\n")
    wrapper.chmod(0o700)
    multiprocessing.spawn.set_executable(str(wrapper))
    try:
        yield
    finally:
        multiprocessing.spawn.set_executable(old)
        shutil.rmtree(folder, ignore_errors=True)


def _local_cluster(local_cluster: Any, jobs: int) -> Any:
    """Start the LocalCluster; on a Ctrl-C or error while it starts, close the half-started
    one here, quietly (Dask's own atexit hook would print an AssertionError traceback)."""
    import atexit

    from distributed.deploy import spec

    atexit.unregister(spec.close_clusters)  # this module closes what it starts
    before = set(spec.SpecCluster._instances)
    try:
        # CRITICAL: a worker's ERROR lines (heartbeat failures while the cluster closes) are
        # noise; a trial's failure is reported by lnexp itself
        return local_cluster(n_workers=jobs, threads_per_worker=1, processes=True,
                             host="127.0.0.1", dashboard_address="127.0.0.1:0",
                             silence_logs=logging.CRITICAL)
    except BaseException as exc:
        for half in set(spec.SpecCluster._instances) - before:
            _close_quietly(half)
        if isinstance(exc, Exception):
            raise ClusterError(f"could not start a Dask LocalCluster: {exc}") from None
        raise


@contextlib.contextmanager
def _quiet_close(cluster: Any) -> Iterator[Any]:
    try:
        yield cluster
    finally:
        _close_quietly(cluster)


def _close_quietly(cluster: Any) -> None:
    """Close the LocalCluster, silencing Dask's logging (a scheduler or nanny ERROR line
    about a worker stopped mid-task is noise after a Ctrl-C); a close that fails (Dask asserts
    on a worker still starting) kills the worker processes instead of printing a traceback."""
    for name in ("distributed", "tornado", "asyncio"):
        logging.getLogger(name).setLevel(logging.CRITICAL + 1)
    pids = [w.process.pid for w in getattr(cluster, "workers", {}).values()
            if getattr(getattr(w, "process", None), "pid", None)]
    try:
        cluster.close(timeout=10)
    except BaseException:  # a Ctrl-C while closing too: kill them, stay quiet
        for pid in pids:
            with contextlib.suppress(OSError):
                os.kill(pid, signal.SIGKILL)
    _kill_spawned_children()


def _kill_spawned_children(wait_s: float = 2.0) -> list[int]:
    """SIGKILL this process's children still running multiprocessing's spawn_main (a Dask
    worker process the closed cluster no longer tracks: one spawned while a Ctrl-C stopped
    the cluster starting); return their pids. Done while the cluster is still referenced:
    once it is gone (or this process exits) its queues' named semaphores are unlinked, and a
    worker still unpickling them printed a FileNotFoundError traceback (seen in CI)."""
    import psutil  # a dependency of distributed

    killed = []
    for child in psutil.Process().children():
        with contextlib.suppress(psutil.Error):
            cmdline = " ".join(child.cmdline())
            if "spawn_main" in cmdline and "resource_tracker" not in cmdline:
                child.kill()
                killed.append(child)
    # wait until they are dead; not psutil.wait_procs: it would reap them, and
    # multiprocessing, which reaps its own children, would then think them alive forever
    deadline = time.monotonic() + wait_s
    for child in killed:
        with contextlib.suppress(psutil.Error):
            while (child.status() != psutil.STATUS_ZOMBIE
                   and time.monotonic() < deadline):
                time.sleep(0.01)
    return [child.pid for child in killed]


def execute(client: Any, slots: int | None, threads: int, tasks: Sequence[workers.Task], *,
            collect: bool, fail_fast: bool,
            on_start: Callable[[workers.Task], None],
            on_done: Callable[[workers.Task, workers.Outcome], None]) -> None:
    """Run the tasks on a connected client (the same contract as workers.execute), each with
    `threads` torch threads. Every trial is submitted at once (retries=0), so Dask's dashboard
    shows the real total and a worker that joins later takes trials; with `slots` (-j on an
    existing cluster) at most that many are in Dask at once. A trial is reported started
    when the scheduler has it processing on a worker (polled); --fail-fast cancels the trials
    not started yet, which stay pending, as with the local pool."""
    from distributed import wait

    queue = list(tasks)[::-1]
    waiting: dict[str, tuple[Any, workers.Task]] = {}  # submitted, not reported started
    running: dict[Any, workers.Task] = {}  # reported started
    lost: list[int] = []  # trials a dying worker took with it before they started
    stopped = False

    def submit() -> None:
        task = queue.pop()
        # pure=False: a resumed trial is a new task; retries=0: an exception is final
        fut = client.submit(run_on_worker, task, __version__, threads, collect,
                            key=f"lnexp-trial-{task.index}-{secrets.token_hex(4)}",
                            pure=False, retries=0)
        waiting[fut.key] = (fut, task)

    def fill() -> None:
        while queue and not stopped and (slots is None or len(waiting) + len(running) < slots):
            submit()

    try:
        fill()
        while waiting or running:
            _mark_started(client, waiting, running, on_start)
            done = [f for f in running if f.done()]
            if not done:
                with contextlib.suppress(TimeoutError):  # poll: a trial may have started
                    wait([*running, *(f for f, _ in waiting.values())], timeout=0.5,
                         return_when="FIRST_COMPLETED")
                continue
            for fut in done:
                task = running.pop(fut)
                outcome = _outcome(fut, task, collect)
                if outcome is None and lost.count(task.index) < MAX_UNSTARTED_LOSSES:
                    lost.append(task.index)  # died with a worker before it started
                    queue.append(task)
                    continue
                outcome = outcome or workers.lost(task, "its Dask worker died before it "
                                                        "started, 3 times")
                on_done(task, outcome)
                if fail_fast and outcome["status"] != "completed" and not stopped:
                    stopped = True
                    _mark_started(client, waiting, running, on_start)  # those run on
                    client.cancel([f for f, _ in waiting.values()])  # left pending
                    waiting.clear()
            fill()
    except KeyboardInterrupt:
        client.cancel([*running, *(f for f, _ in waiting.values())])
        for task in running.values():
            on_done(task, workers.lost(task, "interrupted (Ctrl-C / SIGINT or SIGTERM)",
                                       "interrupted"))
        raise


def _mark_started(client: Any, waiting: dict[str, tuple[Any, workers.Task]],
                  running: dict[Any, workers.Task],
                  on_start: Callable[[workers.Task], None]) -> None:
    """Move the trials the scheduler is processing (or that already ended) from waiting to
    running, calling on_start for each, in trial order."""
    if not waiting:
        return
    processing = {k for keys in client.processing().values() for k in keys}
    for key in sorted((k for k, (f, _) in waiting.items() if k in processing or f.done()),
                      key=lambda k: waiting[k][1].index):
        fut, task = waiting.pop(key)
        on_start(task)
        running[fut] = task


def _outcome(fut: Any, task: workers.Task, collect: bool) -> workers.Outcome | None:
    """The trial's outcome from its future; its folder written (collect) or checked. None
    for a trial whose worker died before the trial started (KilledWorker, and no trial
    folder: every trial is submitted at once, and Dask hands a small sweep's trials to the
    workers up front, so one that dies takes the trials waiting on it): run it again."""
    try:
        outcome: workers.Outcome = fut.result()
    except Exception as exc:  # KilledWorker, a worker that cannot unpickle lnexp, ...
        if (type(exc).__name__ == "KilledWorker" and not collect
                and not Path(task.run_dir).exists()):
            return None
        return workers.lost(task, f"its Dask worker failed it ({type(exc).__name__}: {exc})")
    run_dir = Path(task.run_dir)
    if collect:
        shipped = outcome.pop("files", None)
        if shipped:
            write_folder(run_dir, shipped)
    elif outcome["pid"] is not None and not run_dir.is_dir():
        return {**outcome, "status": "failed",
                "error": f"worker {outcome['host']} wrote {run_dir}, which this machine does "
                         f"not see: the workers do not share this filesystem; use --collect"}
    return outcome


def write_folder(run_dir: Path, shipped: dict[str, bytes]) -> None:
    """Write a shipped trial folder: each file atomically into a hidden staging folder beside
    it, then one rename, so the folder appears whole or not at all."""
    staging = run_dir.with_name(f".{run_dir.name}.{secrets.token_hex(3)}.tmp")
    staging.mkdir()
    try:
        for rel, data in shipped.items():
            path = staging / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            files.write_atomic(path, data)
        os.rename(staging, run_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
