"""Progress of long commands (training, large runs, sweeps, inspect), on stderr: a rich bar on
a terminal, otherwise a plain line every tenth of the work, so CI logs stay short. `--quiet`
passes `quiet=True` and gets a callback that prints nothing.

    with progress.steps("training", quiet=quiet) as update:
        core.run(..., update)          # the core calls update(done, total, note)
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

from rich.console import Console

# (done, total, note): note is shown beside the count, e.g. "loss 0.0123"; may be ''.
Update = Callable[[int, int, str], None]


def _nothing(done: int, total: int, note: str = "") -> None:
    return None


@contextlib.contextmanager
def steps(label: str, *, quiet: bool = False, console: Console | None = None,
          lines: int = 10) -> Iterator[Update]:
    """Yield `update(done, total, note)`. On a terminal a transient bar labelled `label`;
    elsewhere `label done/total  note` at most `lines` times (and at the end); nothing when
    `quiet`."""
    if quiet:
        yield _nothing
        return
    if console is None:
        from lnexp.console import make_console

        console = make_console(stderr=True)
    if console.is_terminal:
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        bar = Progress(TextColumn(label), BarColumn(), MofNCompleteColumn(),
                       TextColumn("{task.fields[note]}"), TimeRemainingColumn(),
                       console=console, transient=True)
        task = bar.add_task(label, total=None, note="")
        with bar:
            yield lambda done, total, note="": bar.update(task, completed=done, total=total,
                                                          note=note)
        return
    last = [-1]

    def plain(done: int, total: int, note: str = "") -> None:
        every = max(1, total // max(1, lines))
        if (done % every == 0 or done == total) and done != last[0]:
            last[0] = done
            console.print(f"{label} {done}/{total}" + (f"  {note}" if note else ""),
                          markup=False, highlight=False)

    yield plain
