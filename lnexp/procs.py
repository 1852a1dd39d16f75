"""Processes: who is running a folder, and child processes that never outlive lnexp.

Liveness: run.json records the pid, the host and the process start time (field 22 of
/proc/PID/stat, clock ticks since boot), so a pid reused by another process is not mistaken
for the run's. A folder whose status says `running` but whose process is gone reads as
`killed`.

Children: every process lnexp starts (figure workers, sweep workers) calls `die_with_parent`
first: Linux's parent-death signal (prctl PR_SET_PDEATHSIG, SIGKILL), which fires when the
*thread* that forked the child ends, plus a watchdog thread that polls the intended parent
by pid and start time, for parents that are not the direct one (a sweep worker's direct
parent is the forkserver) and for systems without prctl.
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import platform
import signal
import threading
from collections.abc import Iterator
from typing import Any

PR_SET_PDEATHSIG = 1
WATCHDOG_PERIOD_S = 0.2
KILLED = "killed"  # the status shown for a `running` folder whose process is gone
# Set for the sweep's forkserver: the pid of the lnexp process it must die with
# (lnexp.sweep.forkserver_guard).
FORKSERVER_PARENT_ENV = "LNEXP_FORKSERVER_PARENT"


def start_time(pid: int) -> int | None:
    """The start time of process `pid` (clock ticks since boot), None when it does not exist
    or /proc is not there."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as f:
            stat = f.read()
    except OSError:
        return None
    # The command name (field 2) may hold spaces and parentheses: split after the last ')'.
    fields = stat[stat.rfind(b")") + 2:].split()
    try:
        return int(fields[19])  # field 22 overall; fields[0] here is field 3
    except (IndexError, ValueError):
        return None


def identity(pid: int | None = None) -> dict[str, Any]:
    """{pid, host, pid_start} of this process (or `pid`): what run.json records."""
    pid = os.getpid() if pid is None else pid
    return {"pid": pid, "host": platform.node(), "pid_start": start_time(pid)}


def alive(info: dict[str, Any]) -> bool | None:
    """Is the process recorded in `info` ({pid, host, pid_start}) still running? None when
    that cannot be told: no pid recorded (an older folder) or another host."""
    pid = info.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return None
    if info.get("host") != platform.node():
        return None
    started = start_time(pid)
    if started is None:
        if os.path.isdir("/proc"):
            return False
        try:  # no /proc (not Linux): the pid alone
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    recorded = info.get("pid_start")
    return recorded is None or recorded == started


def effective_status(info: dict[str, Any]) -> str:
    """run.json's status, except `killed` for a `running` folder whose process is gone."""
    status = info.get("status")
    if status == "running" and alive(info) is False:
        return KILLED
    return str(status)


# --------------------------------------------------------------------------- children

def set_pdeathsig(sig: int) -> bool:
    """Ask Linux to send `sig` to this process when the thread that forked it ends."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(PR_SET_PDEATHSIG, sig, 0, 0, 0) == 0)
    except (OSError, AttributeError):  # not Linux
        return False


def die_with_parent(parent: dict[str, Any]) -> None:
    """In a child: get SIGKILL when the direct parent dies (prctl), and end at once when the
    process `parent` ({pid, pid_start}, the lnexp command) is gone (a watchdog thread)."""
    pid = parent["pid"]
    if os.getppid() == pid:
        set_pdeathsig(signal.SIGKILL)
    if alive({**parent, "host": platform.node()}) is False:  # died before prctl took hold
        os._exit(1)

    def watch() -> None:
        while True:
            if alive({**parent, "host": platform.node()}) is False:
                os.kill(os.getpid(), signal.SIGKILL)  # quiet, and nothing can delay it
            threading.Event().wait(WATCHDOG_PERIOD_S)

    threading.Thread(target=watch, name="lnexp-parent-watchdog", daemon=True).start()


CHILD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def signals_blocked() -> Iterator[None]:
    """Block SIGINT and SIGTERM around a fork: the child starts with them blocked, installs
    its own handlers (child_signals), then unblocks, so a Ctrl-C in between cannot raise
    the parent's KeyboardInterrupt (and print a traceback) in the child."""
    pid = os.getpid()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, CHILD_SIGNALS)
    try:
        yield
    finally:
        if os.getpid() == pid:  # a child of os.fork() leaves them blocked for child_signals
            signal.pthread_sigmask(signal.SIG_SETMASK, old)


def child_signals() -> None:
    """In a forked child: Ctrl-C is the parent's to handle (ignored here); SIGTERM ends it
    quietly (the default action: the parent's own handler must not be inherited); then the
    signals blocked by signals_blocked are let through."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, CHILD_SIGNALS)
