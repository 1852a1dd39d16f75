"""Worker processes for sweeps: a pool of long-lived processes, each importing torch once and
then running many trials, so process start and imports are paid once per worker, not per trial.

The parent never imports torch: it sends each worker a validated config as plain data and the
trial's run folder; the worker runs the experiment, writes the folder (same files as
`lnexp run`, status in run.json) and returns a small outcome dict.

Signals: workers ignore SIGINT (a Ctrl-C reaches the whole process group: the parent
decides); on an interrupt the parent sends them SIGUSR1, which a busy worker turns into
KeyboardInterrupt so the trial's run.json says `interrupted`. SIGTERM from anyone else
interrupts a running trial the same way and ends an idle worker quietly. Every worker dies
with the lnexp process that started it, however that one dies (lnexp.procs.die_with_parent:
a worker's direct parent is the forkserver, so a watchdog thread follows lnexp itself); the
forkserver and the resource tracker then end by themselves once no worker holds their pipes.

Threads: every trial runs torch on TRIAL_THREADS threads whatever -j is, so a trial's
numbers do not depend on how many trials ran beside it (recorded in sweep.json and in each
trial's env.json; --resume reruns trials recorded with another count).
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

# Test hook (documented in docs/contracts.md): seconds each trial waits after its folder is marked
# running, so a test can interrupt a real sweep at a known point.
HOLD_ENV = "LNEXP_TEST_TRIAL_HOLD_S"
INTERRUPT_GRACE_S = 10.0
INTERRUPT_SIGNAL = signal.SIGUSR1  # parent -> worker: stop the running trial
TRIAL_THREADS = 1
PRELOAD = ["lnexp.sweep.forkserver_guard", "torch", "lnexp.experiment", "lnexp.core"]


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


_terminated = False  # in a worker: SIGTERM came; end once the running trial is recorded
_stopping = False  # in a worker: an interrupt came; trials handed over later are not run


def _on_interrupt(signum: int, frame: Any) -> None:
    # The parent's SIGUSR1 interrupts a running trial (its folder is marked interrupted) and
    # is ignored by an idle worker (the pool shuts it down). Anyone's SIGTERM (e.g. the pool
    # terminating its workers) interrupts the running trial too, then ends the worker
    # quietly: a worker that went on would wait for work that never comes.
    global _terminated, _stopping
    if signum == signal.SIGTERM:
        _terminated = True
    _stopping = True  # a trial handed over just now (not yet running) is not started
    if _busy:
        raise KeyboardInterrupt
    if _terminated:
        os._exit(128 + signum)


def init_worker(threads: int, figures: bool, parent: dict[str, Any] | None = None) -> None:
    """Runs once per worker: signals and the tie to the lnexp process, then the heavy
    imports (torch, and matplotlib when figures are drawn) so that every trial after the
    first pays nothing for them."""
    from lnexp import procs

    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _on_interrupt)
    signal.signal(INTERRUPT_SIGNAL, _on_interrupt)
    if parent is not None:
        procs.die_with_parent(parent)
    import torch

    torch.set_num_threads(threads)
    from lnexp import core, experiment  # noqa: F401

    if figures:
        import lnexp.figures  # noqa: F401


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
        if _stopping:  # the interrupt came while this trial was on its way here
            raise KeyboardInterrupt
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
    if _terminated:
        os._exit(128 + signal.SIGTERM)
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
    # broken by fork); each worker forked from it starts with torch already loaded. Its
    # first import ties it and its children to this process (forkserver_guard).
    from lnexp.procs import FORKSERVER_PARENT_ENV

    os.environ[FORKSERVER_PARENT_ENV] = str(os.getpid())
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
    from lnexp import procs

    jobs = max(1, min(jobs, len(tasks))) if tasks else 1
    queue = list(tasks)[::-1]
    running: dict[Future[Outcome], Task] = {}
    stopped = False
    pool = ProcessPoolExecutor(jobs, mp_context=_context(), initializer=init_worker,
                               initargs=(TRIAL_THREADS, figures, procs.identity()))

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
        _interrupt(running, finish)
        raise
    except BaseException:  # e.g. sweep.json could not be written: stop, report nothing more
        _interrupt(running, None)
        raise
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


def _interrupt(running: dict[Future[Outcome], Task],
               finish: Callable[[Future[Outcome]], Outcome] | None) -> None:
    """Tell the running trials to stop (SIGUSR1 -> KeyboardInterrupt in the worker, which
    marks its run folder interrupted) and collect their outcomes; a worker that has not
    stopped after INTERRUPT_GRACE_S is killed, so shutting the pool down cannot hang."""
    # The pool's workers are this process's multiprocessing children (the sweep parent
    # starts no others): multiprocessing.active_children() is the public handle on them.
    workers = multiprocessing.active_children()
    for proc in workers:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, INTERRUPT_SIGNAL)  # type: ignore[arg-type]
    deadline = time.monotonic() + INTERRUPT_GRACE_S
    while running and time.monotonic() < deadline:
        done, _ = wait(running, timeout=max(0.0, deadline - time.monotonic()),
                       return_when=FIRST_COMPLETED)
        for fut in done:
            if finish is None:
                running.pop(fut)
            else:
                finish(fut)
    if running:  # stuck past the grace: kill, then report them (worker died)
        for proc in workers:
            with contextlib.suppress(ProcessLookupError):
                proc.kill()
        done, _ = wait(running, timeout=INTERRUPT_GRACE_S)
        for fut in done:
            if finish is None:
                running.pop(fut)
            else:
                finish(fut)
