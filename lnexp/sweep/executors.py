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
DASK_ENV = "DASK_SCHEDULER_ADDRESS"  # Dask's own (the `scheduler-address` config key)
WAIT_TIMEOUT_S = 300.0  # jobqueue workers start minutes after cluster.scale(...)


@dataclass(frozen=True)
class Executor:
    """How to run the trials: kind, the Dask scheduler to use (an address, or Dask's
    scheduler file; neither: start a LocalCluster), whether workers ship the trial folders
    back (collect) instead of writing them, and on an existing cluster how many workers to
    wait for (and how long) before the first trial."""

    kind: str = "local"
    scheduler: str | None = None
    collect: bool = False
    scheduler_file: str | None = None
    wait_workers: int = 1
    wait_timeout: float = WAIT_TIMEOUT_S

    @property
    def existing(self) -> bool:
        """Runs on a cluster lnexp did not start."""
        return self.scheduler is not None or self.scheduler_file is not None

    def describe(self) -> dict[str, Any]:
        """What sweep.json's session records."""
        if self.kind == "local":
            return {"kind": "local"}
        where = self.scheduler or (f"scheduler file {self.scheduler_file}"
                                   if self.scheduler_file else "LocalCluster")
        return {"kind": "dask", "scheduler": where, "collect": self.collect}


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


def read_scheduler_file(path: str) -> str | None:
    """The address in Dask's scheduler file (`dask scheduler --scheduler-file PATH` writes
    JSON with an `address`), checked; None while the file does not exist yet (Dask's client
    waits for it, as for a scheduler job still queued)."""
    import json

    try:
        with open(path, encoding="utf-8") as f:
            text = f.read(1 << 20)
    except FileNotFoundError:
        return None
    except OSError as exc:
        raise ConfigError([f"--scheduler-file {path}: cannot read ({exc.strerror or exc})"]
                          ) from None
    try:
        address = json.loads(text).get("address")
    except (ValueError, AttributeError):
        address = None
    if not isinstance(address, str):
        raise ConfigError([f"--scheduler-file {path}: not a Dask scheduler file (JSON with an "
                           f"\"address\", as `dask scheduler --scheduler-file` writes)"])
    check_scheduler(address, f"--scheduler-file {path}: address")
    return address


def choose(kind: str | None, scheduler: str | None, collect: bool, *,
           scheduler_file: str | None = None, wait_workers: int = 1,
           wait_timeout: float = WAIT_TIMEOUT_S) -> Executor:
    """The executor from --executor, --scheduler / --scheduler-file (or LNEXP_DASK_SCHEDULER,
    else Dask's DASK_SCHEDULER_ADDRESS), --collect and --wait-workers / --wait-timeout.

    --scheduler and --scheduler-file imply dask; the environment variables are used only with
    --executor dask (a stray variable never moves a local sweep onto a cluster). ConfigError
    (exit 2) for a combination that cannot work or for dask not installed."""
    if kind is not None and kind not in KINDS:
        raise ConfigError([f"--executor {kind!r}: choose one of {', '.join(KINDS)}"])
    if scheduler is not None and scheduler_file is not None:
        raise ConfigError(["--scheduler and --scheduler-file both name the cluster: give one"])
    given = "--scheduler" if scheduler is not None else "--scheduler-file"
    if (scheduler is not None or scheduler_file is not None) and kind == "local":
        raise ConfigError([f"{given} needs --executor dask (or no --executor)"])
    if scheduler is not None:
        check_scheduler(scheduler, "--scheduler")
    if scheduler_file is not None:
        read_scheduler_file(scheduler_file)
    if wait_workers < 1 or not wait_timeout > 0:
        raise ConfigError(["--wait-workers must be >= 1 and --wait-timeout > 0 seconds"])
    kind = kind or ("dask" if scheduler or scheduler_file else "local")
    if kind == "dask" and scheduler is None and scheduler_file is None:
        for env in (SCHEDULER_ENV, DASK_ENV):
            scheduler = os.environ.get(env) or None
            if scheduler is not None:
                check_scheduler(scheduler, env)
                break
    if collect and kind != "dask":
        raise ConfigError(["--collect ships trial folders back from Dask workers; it needs "
                           "--executor dask"])
    if kind == "dask" and importlib.util.find_spec("distributed") is None:
        raise ConfigError(["--executor dask needs Dask: pip install 'lnexp[dask]' (or "
                           "'dask[distributed]')"])
    return Executor(kind, scheduler, collect, scheduler_file, wait_workers, wait_timeout)


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
    # in flight (default: none, every trial is submitted at once and runs on whichever
    # worker is free, including workers that join later)
    with cluster.connect(executor, jobs if jobs_given or not executor.existing else None
                         ) as (client, slots, threads):
        def run_dask(tasks: Sequence[workers.Task], fail_fast: bool,
                     on_start: Callable[[workers.Task], None],
                     on_done: Callable[[workers.Task, workers.Outcome], None]) -> None:
            cluster.execute(client, slots, threads, tasks, collect=executor.collect,
                            fail_fast=fail_fast, on_start=on_start, on_done=on_done)

        yield run_dask
