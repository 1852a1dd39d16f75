"""Figure rendering: PNG files from lnexp.plots, in worker processes where fork exists.

Two engines: a FigurePool forked *before* torch is imported (used by run and compare, whose
figure workers load matplotlib while the parent loads torch), and render_figures' own forks
(used when no pool was started). Either way the caller passes the pool in; there is no
module state.
"""

from __future__ import annotations

import contextlib
import io
import os
import sys
import traceback
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from lnexp.store.files import write_atomic

if TYPE_CHECKING:
    from multiprocessing.queues import SimpleQueue

    from matplotlib.figure import Figure

    from lnexp.config import OutputConfig
    from lnexp.results import CompareResult, RunResult


def png_bytes(fig: Figure, dpi: int) -> bytes:
    """Render a matplotlib Figure to PNG bytes."""
    buf = io.BytesIO()
    # zlib level 1: ~6% larger files than the default 6, 10-15% less time per figure
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    return buf.getvalue()


def save_figure(fig: Figure, path: Path, dpi: int) -> None:
    """Render a matplotlib Figure to PNG atomically."""
    write_atomic(path, png_bytes(fig, dpi))


@dataclass(frozen=True)
class FigureJob:
    """One PNG to render: lnexp.plots.FIGURES[make](arg) builds the Figure, saved atomically
    to `path`. The figure is named, not referenced, so a job pickles without matplotlib."""

    make: str
    arg: RunResult | CompareResult
    path: Path
    dpi: int

    def __call__(self) -> None:
        """Draw and save the PNG. A figure that cannot be drawn (matplotlib refusing some
        data) is skipped with one warning line on stderr: the figures are a view of the
        metrics, and metrics.json is written regardless. Writing errors still raise."""
        from lnexp import plots

        try:
            with warnings.catch_warnings():  # numpy/matplotlib chatter on extreme values
                warnings.simplefilter("ignore", RuntimeWarning)
                png = png_bytes(plots.FIGURES[self.make](self.arg), self.dpi)
        except Exception as exc:  # any drawing failure skips this figure only
            # Printed here, not raised: a job may run in a forked worker, and one line on
            # stderr is the whole message (the CLI prints warnings the same way).
            reason = str(exc).splitlines()[0] if str(exc) else ""
            sys.stderr.write(f"warning: {self.path.parent.name}/{self.path.name} not drawn "
                             f"({type(exc).__name__}: {reason}); the run's metrics are "
                             f"written\n")
            sys.stderr.flush()
            return
        write_atomic(self.path, png)


class FigurePool:
    """Figure processes forked *before* torch is imported: each loads matplotlib at once, in
    parallel with the parent's torch import (which then never needs matplotlib), and renders
    the jobs it is sent. Results travel pickled; they are torch-free (lnexp.results)."""

    def __init__(self, workers: int):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._jobs = ctx.SimpleQueue()
        self._done = ctx.SimpleQueue()
        self._procs = [ctx.Process(target=_figure_worker, args=(self._jobs, self._done),
                                   daemon=True) for _ in range(workers)]
        for proc in self._procs:
            proc.start()

    def render(self, jobs: list[FigureJob]) -> None:
        for i, job in enumerate(jobs):
            self._jobs.put((i, job))
        errors = [err for _ in jobs for _, err in [self._done.get()] if err]
        if errors:
            raise RuntimeError(f"figure rendering failed in a worker process: {errors[0]}")

    def close(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                self._jobs.put(None)
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()

    def kill(self) -> None:
        for proc in self._procs:
            proc.terminate()


def _figure_worker(jobs: SimpleQueue, done: SimpleQueue) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from lnexp import plots  # noqa: F401  (matplotlib loads now, not after the compute)

    while (item := jobs.get()) is not None:
        i, job = item
        try:
            job()
            done.put((i, None))
        except Exception:
            done.put((i, traceback.format_exc(limit=4)))


@contextlib.contextmanager
def figure_pool(output: OutputConfig, jobs: int) -> Iterator[FigurePool | None]:
    """Start figure workers for the `jobs` figures a command will render (enter it before
    torch is imported) and yield the pool to pass to render_figures; None when figures are
    off, one worker is configured, or fork does not exist: rendering then happens
    in-process."""
    n = figure_workers(output.workers, jobs) if output.figures else 1
    if n <= 1 or not hasattr(os, "fork"):
        yield None
        return
    pool = FigurePool(n)
    try:
        yield pool
    except BaseException:
        pool.kill()
        raise
    else:
        pool.close()


def figure_workers(configured: int | None, jobs: int) -> int:
    """How many processes render `jobs` figures: the configured count, else the CPU count."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return max(1, min(jobs, configured or available))


def render_figures(jobs: list[FigureJob], workers: int | None = None,
                   pool: FigurePool | None = None) -> None:
    """Render figure jobs on `pool` when given, else spread over processes forked now where
    fork exists.

    Rendering PNGs is CPU-bound Python that holds the GIL, so threads do not help; a fork
    shares the computed results without copying or pickling them. The parent renders its own
    share and waits for the children; any failure (or Ctrl-C) is raised in the parent.
    """
    if pool is not None:
        pool.render(jobs)
        return
    n = figure_workers(workers, len(jobs))
    if n <= 1 or not hasattr(os, "fork"):
        for job in jobs:
            job()
        return
    import multiprocessing

    # Jobs are handed out one at a time from a shared counter, so a slow figure (the
    # comparison grid) does not leave the other processes idle.
    next_job = multiprocessing.get_context("fork").Value("i", 0)

    def work() -> None:
        while True:
            with next_job.get_lock():
                i = next_job.value
                next_job.value += 1
            if i >= len(jobs):
                return
            jobs[i]()

    children: list[int] = []
    try:
        for _ in range(n - 1):
            with warnings.catch_warnings():  # 3.12+ warns about fork with torch's threads;
                warnings.simplefilter("ignore", DeprecationWarning)  # children never use torch
                pid = os.fork()
            if pid == 0:  # child: render, then leave without running the parent's cleanup
                code = 1
                try:
                    work()
                    code = 0
                except KeyboardInterrupt:
                    code = 130
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            children.append(pid)
        work()
    finally:
        failed = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    bad = [code for code in failed if code != 0]
    if bad:
        if 130 in bad:
            raise KeyboardInterrupt
        raise RuntimeError(f"figure rendering failed in a worker process (exit {bad[0]})")
