"""Where a sweep's trials run: `local` (a pool of worker processes on this machine, the
default) or `dask` (a Dask LocalCluster started for the sweep, or an existing cluster given by
its scheduler address). Both take the same Tasks and report the same Outcomes through the same
callbacks, so the runner, sweep.json and summary.csv do not depend on where trials ran.

Dask is an optional extra (`pip install 'lnexp[dask]'`) and is imported only when the dask
executor runs (lnexp/sweep/cluster.py), never by `lnexp --help` or a local sweep.
"""

from __future__ import annotations

import contextlib
import importlib.util
import os
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from lnexp import registry
from lnexp.errors import ConfigError
from lnexp.sweep import workers

KINDS = registry.EXECUTORS
SCHEDULER_ENV = "LNEXP_DASK_SCHEDULER"


@dataclass(frozen=True)
class Executor:
    """How to run the trials: kind, the Dask scheduler to use (None: start a LocalCluster)
    and whether workers ship the trial folders back (collect) instead of writing them."""

    kind: str = "local"
    scheduler: str | None = None
    collect: bool = False

    def describe(self) -> dict[str, Any]:
        """What sweep.json's session records."""
        if self.kind == "local":
            return {"kind": "local"}
        return {"kind": "dask", "scheduler": self.scheduler or "LocalCluster",
                "collect": self.collect}


LOCAL = Executor()


# tcp:// (also the default for HOST:PORT) is what lnexp connects with; tls:// needs Dask's TLS
# settings (distributed.comm.tls.* in the Dask config), checked when connecting.
SCHEMES = ("tcp", "tls")


def check_scheduler(address: str, where: str) -> None:
    """A Dask scheduler address lnexp can connect to: [tcp://|tls://]HOST:PORT. An empty one
    used to run the sweep locally without a word; ucx://, inproc://, ... ended in exit 70."""
    text = address.strip()
    if not text:
        raise ConfigError([f"{where} is empty: give the scheduler as tcp://HOST:PORT (or leave "
                           f"it out to run locally)"])
    scheme, sep, rest = text.partition("://")
    if not sep:
        scheme, rest = "tcp", text
    if scheme.lower() not in SCHEMES:
        raise ConfigError([f"{where} {address!r}: the {scheme}:// protocol is not supported; "
                           f"use tcp://HOST:PORT (or tls:// with Dask's TLS settings)"])
    host, colon, port = rest.rpartition(":")
    if not colon or not host.strip("[]") or not port.isdigit() or not 0 < int(port) < 65536:
        raise ConfigError([f"{where} {address!r}: expected {scheme}://HOST:PORT, e.g. "
                           f"tcp://127.0.0.1:8786"])


def choose(kind: str | None, scheduler: str | None, collect: bool) -> Executor:
    """The executor from --executor, --scheduler (or LNEXP_DASK_SCHEDULER) and --collect.

    --scheduler implies dask; the environment variable is used only with --executor dask (a
    stray variable never moves a local sweep onto a cluster). ConfigError (exit 2) for a
    combination that cannot work or for dask not installed."""
    if kind is not None and kind not in KINDS:
        raise ConfigError([f"--executor {kind!r}: choose one of {', '.join(KINDS)}"])
    if scheduler is not None and kind == "local":
        raise ConfigError(["--scheduler needs --executor dask (or no --executor)"])
    if scheduler is not None:
        check_scheduler(scheduler, "--scheduler")
    kind = kind or ("dask" if scheduler else "local")
    if kind == "dask" and scheduler is None:
        scheduler = os.environ.get(SCHEDULER_ENV) or None
        if scheduler is not None:
            check_scheduler(scheduler, SCHEDULER_ENV)
    if collect and kind != "dask":
        raise ConfigError(["--collect ships trial folders back from Dask workers; it needs "
                           "--executor dask"])
    if kind == "dask" and importlib.util.find_spec("distributed") is None:
        raise ConfigError(["--executor dask needs Dask: pip install 'lnexp[dask]' (or "
                           "'dask[distributed]')"])
    return Executor(kind, scheduler, collect)


# Runs the tasks: (tasks, fail_fast, on_start, on_done) -> None, the contract of
# workers.execute (at most the executor's slots in flight, callbacks in this process,
# KeyboardInterrupt re-raised once the running trials are reported interrupted).
Run = Callable[[Sequence[workers.Task], bool, Callable[[workers.Task], None],
                Callable[[workers.Task, workers.Outcome], None]], None]


@contextlib.contextmanager
def session(executor: Executor, jobs: int, *, jobs_given: bool, figures: bool
            ) -> Iterator[Run]:
    """Open the executor (start or reach the Dask cluster: a ClusterError before any folder
    is written) and yield the function that runs tasks on it; closes it on exit."""
    if executor.kind == "local":
        def run_local(tasks: Sequence[workers.Task], fail_fast: bool,
                      on_start: Callable[[workers.Task], None],
                      on_done: Callable[[workers.Task, workers.Outcome], None]) -> None:
            workers.execute(tasks, jobs, figures=figures, fail_fast=fail_fast,
                            on_start=on_start, on_done=on_done)

        yield run_local
        return
    from lnexp.sweep import cluster

    # -j: the LocalCluster's worker processes; on an existing cluster, a cap on the trials
    # in flight (default: one per worker thread)
    with cluster.connect(executor.scheduler,
                         jobs if jobs_given or executor.scheduler is None else None
                         ) as (client, slots, threads):
        def run_dask(tasks: Sequence[workers.Task], fail_fast: bool,
                     on_start: Callable[[workers.Task], None],
                     on_done: Callable[[workers.Task, workers.Outcome], None]) -> None:
            cluster.execute(client, slots, threads, tasks, collect=executor.collect,
                            fail_fast=fail_fast, on_start=on_start, on_done=on_done)

        yield run_dask
