"""Figure rendering: PNG files from lnexp.figures, in worker processes where fork exists.

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
import time
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

from lnexp.errors import LnexpError, OutputError
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


# Test hook (documented in docs/contracts.md): seconds each figure job waits before drawing, so a
# test can interrupt a real run while its figures render.
FIGURE_HOLD_ENV = "LNEXP_TEST_FIGURE_HOLD_S"


@dataclass(frozen=True)
class FigureJob:
    """One PNG to render: lnexp.figures.FIGURES[make](arg) builds the Figure, saved atomically
    to `path`. The figure is named, not referenced, so a job pickles without matplotlib."""

    make: str
    arg: RunResult | CompareResult
    path: Path
    dpi: int

    def __call__(self) -> None:
        """Draw and save the PNG. A figure that cannot be drawn (matplotlib refusing some
        data) is skipped with one warning line on stderr: the figures are a view of the
        metrics, and metrics.json is written regardless. Writing errors still raise."""
        from lnexp.figures import FIGURES

        hold = float(os.environ.get(FIGURE_HOLD_ENV) or 0)
        if hold > 0:
            time.sleep(hold)
        try:
            with warnings.catch_warnings():  # numpy/matplotlib chatter on extreme values
                warnings.simplefilter("ignore", RuntimeWarning)
                png = png_bytes(FIGURES[self.make](self.arg), self.dpi)
        except Exception as exc:  # any drawing failure skips this figure only
            # Printed here, not raised: a job may run in a forked worker, and one line on
            # stderr is the whole message (the CLI prints warnings the same way).
            reason = str(exc).splitlines()[0] if str(exc) else ""
            sys.stderr.write(f"warning: {self.path.parent.name}/{self.path.name} not drawn "
                             f"({type(exc).__name__}: {reason}); the run's metrics are "
                             f"written\n")
            sys.stderr.flush()
            return
        write_atomic(self.path, png)  # an OS refusal is raised: OutputError, exit 2


class FigurePool:
    """Figure processes forked *before* torch is imported: each loads matplotlib at once, in
    parallel with the parent's torch import (which then never needs matplotlib), and renders
    the jobs it is sent. Results travel pickled; they are torch-free (lnexp.results).

    The workers die with the parent however it dies (lnexp.procs.die_with_parent), ignore
    Ctrl-C (the parent's to handle) and end quietly on SIGTERM."""

    def __init__(self, workers: int):
        import multiprocessing

        from lnexp import procs

        ctx = multiprocessing.get_context("fork")
        self._jobs = ctx.SimpleQueue()
        self._done = ctx.SimpleQueue()
        parent = procs.identity()
        self._procs = [ctx.Process(target=_figure_worker, args=(self._jobs, self._done, parent),
                                   daemon=True) for _ in range(workers)]
        with procs.signals_blocked():
            for proc in self._procs:
                proc.start()

    def render(self, jobs: list[FigureJob]) -> None:
        for i, job in enumerate(jobs):
            self._jobs.put((i, job))
        errors = [err for _ in jobs for _, err in [self._done.get()] if err]
        for err in errors:  # an unwritable output folder first: exit 2, not a bug
            if isinstance(err, BaseException):
                raise err
        if errors:
            raise RuntimeError(f"figure rendering failed in a worker process: {errors[0]}")

    def close(self) -> None:
        """One shutdown marker per worker, always (a worker that already ended leaves its
        marker unread, which costs nothing), then wait for all of them; a worker still there
        after CLOSE_TIMEOUT_S is killed. No is_alive() test decides how many markers go out,
        so the count never races with a worker that is still starting or just ended."""
        import multiprocessing.connection

        for _ in self._procs:
            self._jobs.put(None)
        pending = {proc.sentinel: proc for proc in self._procs}
        deadline = time.monotonic() + CLOSE_TIMEOUT_S
        while pending and (left := deadline - time.monotonic()) > 0:
            for sentinel in multiprocessing.connection.wait(list(pending), timeout=left):
                pending.pop(sentinel).join()  # type: ignore[call-overload]
        self.kill()

    def kill(self) -> None:
        """End every worker now (SIGKILL: nothing of theirs needs saving) and reap them."""
        for proc in self._procs:
            if proc.exitcode is None:
                with contextlib.suppress(ProcessLookupError):
                    proc.kill()
        for proc in self._procs:
            proc.join()


CLOSE_TIMEOUT_S = 10.0


def _figure_worker(jobs: SimpleQueue, done: SimpleQueue, parent: dict[str, Any]) -> None:
    from lnexp import procs

    procs.child_signals()
    procs.die_with_parent(parent)
    import lnexp.figures  # noqa: F401  (matplotlib loads now, not after the compute)

    while (item := jobs.get()) is not None:
        i, job = item
        try:
            job()
            done.put((i, None))
        except (LnexpError, OSError) as exc:  # e.g. a full disk: the parent says which file
            done.put((i, exc if isinstance(exc, LnexpError) else OutputError(str(exc))))
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

    from lnexp import procs

    parent = procs.identity()
    children: list[int] = []
    # Children report why they failed through this pipe (one short message each, written
    # whole: below PIPE_BUF); an unwritable output folder becomes OutputError (exit 2).
    read_end, write_end = os.pipe()
    try:
        for _ in range(n - 1):
            with warnings.catch_warnings(), procs.signals_blocked():
                # 3.12+ warns about fork with torch's threads; children never use torch
                warnings.simplefilter("ignore", DeprecationWarning)
                pid = os.fork()
            if pid == 0:
                _child(work, read_end, write_end, parent)
            children.append(pid)
        try:
            work()
        except OSError as exc:  # as the children report it: exit 2, not a bug
            raise OutputError(str(exc)) from None
    except BaseException:
        for pid in children:  # the parent failed or was interrupted: nothing left to render
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
        raise
    finally:
        os.close(write_end)
        codes = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
        with os.fdopen(read_end, "rb") as f:
            messages = f.read().decode(errors="replace")
    bad = [code for code in codes if code != 0]
    if EXIT_CHILD_OUTPUT in bad:
        raise OutputError(messages.splitlines()[0])
    if bad:
        raise RuntimeError(f"figure rendering failed in a worker process (exit {bad[0]}): "
                           f"{messages.strip()}")


EXIT_CHILD_OUTPUT = 74  # sysexits EX_IOERR: a forked figure child could not write its file
PIPE_MESSAGE = 3000


def _child(work: Callable[[], None], read_end: int, write_end: int,
           parent: dict[str, Any]) -> NoReturn:
    """A forked figure child: render its share, report why it failed through the pipe, then
    leave without running the parent's cleanup."""
    from lnexp import procs

    code = 1
    try:
        os.close(read_end)
        procs.child_signals()
        procs.die_with_parent(parent)
        work()
        code = 0
    except (LnexpError, OSError) as exc:
        code = EXIT_CHILD_OUTPUT
        os.write(write_end, str(exc).encode()[:PIPE_MESSAGE] + b"\n")
    except BaseException:
        os.write(write_end, traceback.format_exc(limit=4).encode()[-PIPE_MESSAGE:])
    finally:
        os._exit(code)
