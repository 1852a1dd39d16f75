"""Worker processes for sweeps: a pool of long-lived processes, each importing torch once and
then running many trials, so process start and imports are paid once per worker, not per trial.

The parent never imports torch: it sends each worker a validated config as plain data and the
trial's run folder; the worker runs the experiment, writes the folder (same files as
`lnexp run`, status in run.json) and returns a small outcome dict. Workers ignore SIGINT (a
Ctrl-C reaches the whole process group): the parent decides, and on an interrupt sends them
SIGTERM, which they turn into KeyboardInterrupt so the trial's run.json says `interrupted`.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# Test hook (documented in the README): seconds each trial waits after its folder is marked
# running, so a test can interrupt a real sweep at a known point.
HOLD_ENV = "LNEXP_TEST_TRIAL_HOLD_S"
INTERRUPT_GRACE_S = 10.0
PRELOAD = ["torch", "lnexp.experiment", "lnexp.core"]


# A finished trial, as a worker returns it: {index, status (completed | failed |
# interrupted), error, seconds, cpu_seconds, threads, pid, host}; pid None when its worker
# process died (then cpu_seconds, threads and host are None too).
Outcome = dict[str, Any]


@dataclass(frozen=True)
class Task:
    """What a worker needs for one trial (plain data only: it crosses a process boundary)."""

    index: int
    config: dict[str, Any]
    run_dir: str
    argv: list[str]
    hold_s: float = 0.0  # the HOLD_ENV test hook, read by the parent so remote workers see it


def hold_s() -> float:
    """The HOLD_ENV test hook's value in this process (0: no hold)."""
    return float(os.environ.get(HOLD_ENV) or 0)


def lost(task: Task, why: str, status: str = "failed") -> Outcome:
    """The outcome of a trial whose worker gave no answer (died, or was cancelled)."""
    return {"index": task.index, "status": status, "error": why, "seconds": None,
            "cpu_seconds": None, "threads": None, "pid": None, "host": None}


def default_jobs() -> int:
    """Worker count when -j is not given: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


_busy = False  # in a worker: True while a trial runs


def _on_sigterm(signum: int, frame: Any) -> None:
    # Interrupt a running trial (its folder is marked interrupted); an idle worker ignores
    # it and exits when the pool shuts down.
    if _busy:
        raise KeyboardInterrupt


def init_worker(threads: int, figures: bool) -> None:
    """Runs once per worker: signals, then the heavy imports (torch, and matplotlib when
    figures are drawn) so that every trial after the first pays nothing for them."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_sigterm)
    import torch

    torch.set_num_threads(threads)
    from lnexp import core, experiment  # noqa: F401

    if figures:
        from lnexp import plots  # noqa: F401


def run_trial(task: Task) -> Outcome:
    """Run one trial in a worker and write its run folder; never raises for a failed trial.

    Returns an Outcome: {index, status, error, seconds, cpu_seconds, threads, pid, host}.
    """
    global _busy
    import platform

    import torch

    from lnexp import config, core

    _busy = True
    start, cpu = time.perf_counter(), time.process_time()
    status, error = "completed", None
    run_dir = Path(task.run_dir)
    try:
        cfg = config.from_mapping(task.config)
        try:
            run_dir.mkdir()
        except FileExistsError:
            # The parent removed it before handing out the trial: an earlier attempt ran here
            # (a Dask scheduler retrying the trial of a dead worker). A failed trial stays
            # failed until --resume, so refuse rather than run it twice.
            raise RuntimeError(f"{run_dir} already exists: an earlier attempt of this trial "
                               f"was lost with its worker; not retried (lnexp sweep --resume "
                               f"reruns it)") from None
        except FileNotFoundError:
            raise RuntimeError(f"{run_dir.parent} does not exist on worker host "
                               f"{platform.node()}: the workers do not share the sweep "
                               f"folder's filesystem; use --collect") from None
        core.run_in_folder(cfg, run_dir, task.argv,
                           before=(lambda: time.sleep(task.hold_s)) if task.hold_s > 0
                           else None)
    except KeyboardInterrupt:
        status, error = "interrupted", "interrupted (Ctrl-C / SIGINT or SIGTERM)"
    except Exception as exc:  # isolated: the sweep goes on
        from lnexp.errors import LnexpError

        status = "failed"
        error = str(exc) if isinstance(exc, LnexpError) else f"{type(exc).__name__}: {exc}"
    finally:
        _busy = False
    return {"index": task.index, "status": status, "error": error,
            "seconds": time.perf_counter() - start, "cpu_seconds": time.process_time() - cpu,
            "threads": torch.get_num_threads(), "pid": os.getpid(), "host": platform.node()}


def _context() -> multiprocessing.context.BaseContext:
    """forkserver where there is one (Linux, macOS): workers fork from a small server process
    that never imported torch's threads; spawn elsewhere. Never plain fork from the parent."""
    try:
        ctx = multiprocessing.get_context("forkserver")
    except ValueError:
        return multiprocessing.get_context("spawn")
    # The server imports torch once (it computes nothing, so no thread pools exist to be
    # broken by fork); each worker forked from it starts with torch already loaded.
    ctx.set_forkserver_preload(PRELOAD)
    return ctx


def execute(tasks: Sequence[Task], jobs: int, *, figures: bool = True, fail_fast: bool = False,
            on_start: Callable[[Task], None] | None = None,
            on_done: Callable[[Task, Outcome], None] | None = None) -> None:
    """Run `tasks` on `jobs` worker processes; calls on_start / on_done in the parent as each
    trial starts and ends. At most `jobs` trials are in flight (nothing is queued behind a
    worker), so an interrupt or --fail-fast leaves every other trial untouched.

    It stops starting trials after a failure with fail_fast, or when the pool broke. On
    KeyboardInterrupt it interrupts the running trials (each reported with status
    'interrupted' through on_done) and re-raises.
    """
    jobs = max(1, min(jobs, len(tasks))) if tasks else 1
    threads = max(1, default_jobs() // jobs)
    queue = list(tasks)[::-1]
    running: dict[Future[Outcome], Task] = {}
    stopped = False
    pool = ProcessPoolExecutor(jobs, mp_context=_context(), initializer=init_worker,
                               initargs=(threads, figures))

    def submit() -> None:
        task = queue.pop()
        if on_start:
            on_start(task)
        running[pool.submit(run_trial, task)] = task

    def finish(fut: Future[Outcome]) -> Outcome:
        task = running.pop(fut)
        try:
            outcome = fut.result()
        except BrokenProcessPool as exc:
            outcome = lost(task, f"its worker process died ({exc or 'BrokenProcessPool'})")
        except KeyboardInterrupt:  # SIGTERM landed just as the trial ended
            outcome = {**lost(task, "interrupted (Ctrl-C / SIGINT or SIGTERM)",
                              "interrupted"), "pid": -1}
        if on_done:
            on_done(task, outcome)
        return outcome

    try:
        while queue and len(running) < jobs:
            submit()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in done:
                outcome = finish(fut)
                broken = outcome["pid"] is None
                if (fail_fast and outcome["status"] != "completed") or broken:
                    stopped = True
            while queue and not stopped and len(running) < jobs:
                submit()
    except KeyboardInterrupt:
        _interrupt(pool, running, finish)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _interrupt(pool: ProcessPoolExecutor, running: dict[Future[Outcome], Task],
               finish: Callable[[Future[Outcome]], Outcome]) -> None:
    """Tell the running trials to stop (SIGTERM -> KeyboardInterrupt in the worker, which
    marks its run folder interrupted) and collect their outcomes."""
    for proc in list((pool._processes or {}).values()):  # no public handle on the workers
        if proc.is_alive():
            with contextlib.suppress(ProcessLookupError):
                os.kill(proc.pid, signal.SIGTERM)
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    while running and time.monotonic() < deadline:
        done, _ = wait(running, timeout=max(0.0, deadline - time.monotonic()),
                       return_when=FIRST_COMPLETED)
        for fut in done:
            finish(fut)
