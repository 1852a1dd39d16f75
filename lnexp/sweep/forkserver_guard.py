"""Imported by the sweep's forkserver at start (workers.PRELOAD), and only there: ties the
forkserver and every worker it forks to the lnexp process, through Linux's parent-death
signal, at the earliest point.

Why here: a worker forked by the forkserver runs nothing of lnexp until its pool initializer,
and it holds the forkserver's "alive" pipe and the resource tracker's pipe from the moment it
is forked; a worker stuck before its initializer (its parent killed mid-handshake) would keep
all three alive for good. So the forkserver gets SIGKILL when lnexp dies (it was forked by
lnexp's main thread), and an at-fork hook gives each of its children SIGKILL when the
forkserver dies, before the child runs anything else.

Armed only in a forkserver (multiprocessing.forkserver imported) whose parent is named by
FORKSERVER_PARENT_ENV (set by workers._context), so importing it anywhere else does nothing.
"""

from __future__ import annotations

import os
import signal
import sys

from lnexp import procs


def _arm() -> None:
    expected = os.environ.get(procs.FORKSERVER_PARENT_ENV)
    if expected is None or "multiprocessing.forkserver" not in sys.modules:
        return
    lnexp_pid = os.getppid()
    if str(lnexp_pid) != expected:  # lnexp died while this forkserver was starting
        os._exit(1)
    procs.set_pdeathsig(signal.SIGKILL)
    if os.getppid() != lnexp_pid:  # lnexp died before the signal was armed
        os._exit(1)
    server = os.getpid()
    armed = [True]  # False in a worker: its own forks (figure children) are not the server's

    def in_child() -> None:  # runs in each forked worker before anything else
        # The hook is inherited by the workers: a figure child a trial forks runs it too,
        # with the worker as its parent. Only the server's direct children are checked.
        if not armed[0]:
            return
        armed[0] = False
        procs.set_pdeathsig(signal.SIGKILL)
        if os.getppid() != server:
            os._exit(1)

    os.register_at_fork(after_in_child=in_child)


_arm()
