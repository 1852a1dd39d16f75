"""The `lnexp` console script: a quiet Ctrl-C (or SIGTERM) from the first moment.

Importing the CLI (typer, rich, click) and parsing the arguments take a few hundred
milliseconds; a Ctrl-C in that window printed Python's KeyboardInterrupt traceback, and a
SIGTERM there ended lnexp with 130 and no message. Until a command starts, SIGINT and SIGTERM
end lnexp with the documented exit code 130 and one line; `cli.guarded` then hands them to
the command (KeyboardInterrupt, so the run folder is marked `interrupted`).
"""

from __future__ import annotations

import signal
import sys
from types import FrameType

EXIT_INTERRUPTED = 130  # lnexp.errors.EXIT_INTERRUPTED, not imported: this module is the early one


def _interrupted_early(signum: int, frame: FrameType | None) -> None:
    sys.stderr.write("error: interrupted\n")
    raise SystemExit(EXIT_INTERRUPTED)


def main() -> None:
    """Install the early handlers, import the CLI and run it (each command installs its own)."""
    signal.signal(signal.SIGINT, _interrupted_early)
    signal.signal(signal.SIGTERM, _interrupted_early)
    from lnexp.cli import main as cli_main

    cli_main()
