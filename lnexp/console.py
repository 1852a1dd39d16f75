"""The consoles every command prints through: colour and live widgets on a terminal; plain text
otherwise, as wide as `COLUMNS` says (120 when unset), with no trailing spaces (rich pads every
table line to its width, which shows up in diffs, CI logs and `grep`)."""

from __future__ import annotations

import errno
import os
import re
import sys
from typing import IO, Any

from rich.console import Console

PIPE_WIDTH = 120  # plain output when COLUMNS is unset: a CI log, a file
# C0 controls (line breaks and tabs included: the fields shown are one line each), DEL, C1.
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")


def plain_line(text: Any) -> str:
    """Text lnexp did not write itself (a field of a result folder, a file name), safe on a
    terminal: control characters as \\xNN, so no clear-screen, OSC title or carriage return
    that draws a fake line reaches it."""
    return _CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", str(text))


def printable(value: Any) -> Any:
    """plain_line for every string inside `value` (dicts, lists), with rich markup escaped too
    (`[bold]` in a run name is shown, not interpreted); numbers and None unchanged."""
    from rich.markup import escape

    if isinstance(value, str):
        return escape(plain_line(value))
    if isinstance(value, dict):
        return {printable(k): printable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [printable(v) for v in value]
    return value


class _StripTrailing:
    """A text stream that removes trailing spaces from each complete line before writing it."""

    def __init__(self, stream: IO[str]):
        self._stream = stream
        self._pending = ""

    def write(self, text: str) -> int:
        lines = (self._pending + text).split("\n")
        self._pending = lines.pop()
        if lines:
            self._stream.write("".join(line.rstrip(" ") + "\n" for line in lines))
        return len(text)

    def flush(self) -> None:
        if self._pending.strip(" ") == "":
            pass  # keep blank padding back: it is trailing space if a newline follows
        else:
            self._stream.write(self._pending)
            self._pending = ""
        self._stream.flush()

    def isatty(self) -> bool:
        return False

    def fileno(self) -> int:
        return self._stream.fileno()

    @property
    def encoding(self) -> str:
        return getattr(self._stream, "encoding", None) or "utf-8"


def width_from_env(default: int = PIPE_WIDTH) -> int:
    """`COLUMNS` when it is a sensible number (20 or more), else `default`."""
    try:
        columns = int(os.environ.get("COLUMNS", ""))
    except ValueError:
        return default
    return columns if columns >= 20 else default


def make_console(stderr: bool = False) -> Console:
    """A Console that uses colour only on a terminal without NO_COLOR or CI; otherwise plain
    text at `COLUMNS` (default 120) without trailing spaces."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty() and os.environ.get("TERM") != "dumb"
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    if not tty or "NO_COLOR" in os.environ or ci:
        return _Console(file=_StripTrailing(stream), no_color=True, highlight=False,
                        width=width_from_env(), force_terminal=False, emoji=False,
                        soft_wrap=False)
    return _Console(file=stream, highlight=False)


class _Console(Console):
    """A Console that lets a closed pipe reach the CLI (which exits 141, quietly) instead of
    rich's own exit 1, the "expectation failed" code."""

    def on_broken_pipe(self) -> None:
        raise BrokenPipeError(errno.EPIPE, "Broken pipe")
