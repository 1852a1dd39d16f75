"""The CLI's frame: the typer app, errors -> one line + exit code, JSON output, signals."""

from __future__ import annotations

import contextlib
import errno
import functools
import json
import os
import signal
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any, TypeVar

import typer

from lnexp import __version__
from lnexp.errors import (
    EXIT_BROKEN_PIPE,
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_USAGE,
    LnexpError,
)

EXIT_CODES_HELP = (
    "Exit codes: 0 success (also when NaN/Inf appeared: then a warning on stderr and "
    "numeric_trouble in metrics.json) · 1 an expectation failed · 2 usage or config error "
    "(also: resource guard, unwritable output, run folder not completed) · 3 partly done "
    "(some part could not be computed) · 130 interrupted (Ctrl-C / SIGTERM) · 141 stdout "
    "closed early (e.g. piped into head), nothing on stderr · 70 internal error (a bug)."
)
JSON_SCHEMA_VERSION = 1


def _metavar_alone(display_type: Callable[..., str | None]) -> Callable[..., str | None]:
    """typer prints an argument's Python type beside its metavar (`CONFIG <path>`,
    `KEY=VALUE <list[str]>`); an argument with a metavar already says what it takes."""

    @functools.wraps(display_type)
    def shown(self: Any, ctx: Any) -> str | None:
        return None if self.metavar else display_type(self, ctx)

    return shown


if hasattr(typer.core.TyperArgument, "display_type_rich"):  # typer >= 0.20's help records
    typer.core.TyperArgument.display_type_rich = _metavar_alone(  # type: ignore[method-assign]
        typer.core.TyperArgument.display_type_rich)

app = typer.Typer(
    name="lnexp",
    help="See and measure how normalization layers behave.\n\n" + EXIT_CODES_HELP,
    no_args_is_help=True,
    add_completion=True,
    pretty_exceptions_enable=False,
    rich_markup_mode=None,
)

# Set once by the root callback; read by `guarded`. (typer exposes no public way to reach
# the click context from a decorator, so this stays module state.)
_state: dict[str, bool] = {"debug": False}

F = TypeVar("F", bound=Callable[..., Any])


def _version(value: bool) -> None:
    if value:
        typer.echo(f"lnexp {__version__}")
        raise typer.Exit(EXIT_OK)


@app.callback()
def _root(
    version: Annotated[bool, typer.Option("--version", callback=_version, is_eager=True,
                                          help="Print the version and exit.")] = False,
    debug: Annotated[bool, typer.Option("--debug", help="Show tracebacks for errors.")] = False,
) -> None:
    _state["debug"] = debug


def _err(message: str) -> None:
    from lnexp.console import plain_line

    with contextlib.suppress(OSError):  # a closed stderr must not turn an error into a crash
        for line in message.splitlines() or [message]:
            typer.echo(f"error: {plain_line(line)}", err=True)


def _stdout_closed() -> bool:
    """Is stdout a pipe whose reader has gone (`lnexp runs | head -1`)?"""
    import select

    try:
        fd = sys.stdout.fileno()
        poller = select.poll()
        poller.register(fd, select.POLLOUT)
        return any(events & (select.POLLERR | select.POLLHUP) for _, events in poller.poll(0))
    except (AttributeError, ValueError, OSError):  # not a real file (tests), or no poll
        return False


def _closed_stdout() -> typer.Exit:
    """End quietly: point fd 1 at /dev/null so the interpreter's final flush cannot fail
    and print 'Exception ignored ... BrokenPipeError' on stderr."""
    with contextlib.suppress(OSError, AttributeError, ValueError):
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    return typer.Exit(EXIT_BROKEN_PIPE)


# What the OS says when the output cannot be written: the user's to fix (exit 2), not a bug.
_OS_REFUSALS = {errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS, errno.EIO,
                errno.EFBIG, errno.EMFILE, errno.ENFILE, errno.ENOTDIR, errno.EISDIR,
                errno.ENOENT}


def _os_message(exc: OSError) -> str:
    where = f"{exc.filename}: " if exc.filename else ""
    return f"{where}{exc.strerror or exc}"


def _emit(doc: dict[str, Any]) -> None:
    """Write one JSON document to stdout (the only thing --json puts there)."""
    sys.stdout.write(json.dumps({"schema_version": JSON_SCHEMA_VERSION, **doc}, indent=2,
                                allow_nan=False) + "\n")
    sys.stdout.flush()


def _fail(code: int, message: str, json_mode: bool, error: str) -> typer.Exit:
    _err(message)
    if json_mode:
        _emit({"kind": "error", "ok": False, "exit_code": code, "error": error,
               "problems": message.splitlines()})
    return typer.Exit(code)


def guarded(func: F) -> F:
    """Turn errors into one-line messages and exit codes (no traceback unless --debug).

    With --json, stdout also gets {"kind": "error", "exit_code", "problems"} so a CI script
    always has a document to parse.
    """

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        json_mode = bool(kwargs.get("json_"))
        _command_signals()
        try:
            return func(*args, **kwargs)
        except typer.Exit:
            raise
        except BrokenPipeError:
            if _stdout_closed():
                raise _closed_stdout() from None
            if _state["debug"]:
                raise
            raise _fail(EXIT_INTERNAL, "internal error (a bug in lnexp; rerun with --debug "
                                       "for the traceback): BrokenPipeError",
                        json_mode, "BrokenPipeError") from None
        except LnexpError as exc:
            if _state["debug"]:
                raise
            raise _fail(exc.exit_code, str(exc), json_mode, type(exc).__name__) from None
        except KeyboardInterrupt:
            raise _fail(EXIT_INTERRUPTED, "interrupted", json_mode, "Interrupted") from None
        except OSError as exc:
            if _state["debug"] or exc.errno not in _OS_REFUSALS:
                raise
            raise _fail(EXIT_USAGE, _os_message(exc), json_mode, type(exc).__name__) from None
        except Exception as exc:
            if _state["debug"]:
                raise
            raise _fail(EXIT_INTERNAL, f"internal error (a bug in lnexp; rerun with --debug "
                                       f"for the traceback): {type(exc).__name__}: {exc}",
                        json_mode, type(exc).__name__) from None

    return wrapper  # type: ignore[return-value]



def _warn(message: str) -> None:
    from lnexp.console import plain_line

    with contextlib.suppress(OSError):
        typer.echo(f"warning: {plain_line(message)}", err=True)



def _write(path: Path, text: str) -> None:
    """Write a file a command was asked for, atomically; an OSError becomes exit 2."""
    from lnexp.errors import OutputError
    from lnexp.store.files import write_atomic

    try:
        write_atomic(path, text)
    except OSError as exc:
        raise OutputError(f"{path}: cannot write ({exc.strerror or exc})") from None



def _interrupt(signum: int, frame: Any) -> None:
    """Ctrl-C and SIGTERM (a cancelled CI job): KeyboardInterrupt, so the command marks its run
    interrupted and exits 130. Not inside a frame that swallows exceptions: a raise in
    importlib's module-lock weakref callback or a __del__ is only printed ("Exception ignored
    in ...", a traceback) and lost, so the signal is delivered again 5 ms later instead."""
    if frame is not None and (frame.f_code.co_filename.startswith("<frozen importlib")
                              or frame.f_code.co_name == "__del__"):
        signal.signal(signal.SIGALRM, _interrupt)
        signal.setitimer(signal.ITIMER_REAL, 0.005)
        return
    raise KeyboardInterrupt


def _command_signals() -> None:
    """From here on Ctrl-C and SIGTERM are KeyboardInterrupt, which the command turns into a
    run folder marked `interrupted` and exit 130 (before a command starts, lnexp.entry's
    handlers end lnexp with 130 and one line)."""
    with contextlib.suppress(ValueError):  # signal handlers can be set in the main thread only
        signal.signal(signal.SIGINT, _interrupt)
        signal.signal(signal.SIGTERM, _interrupt)


def main() -> None:
    """The CLI with exit-code handling (the console script is lnexp.entry.main)."""
    try:
        app()
    except SystemExit as exc:
        # Outside a command (e.g. `lnexp --help | head -1`) click ends a closed stdout with
        # exit 1, the "expectation failed" code; make it the documented 141.
        if exc.code == 1 and type(sys.stdout).__name__ == "PacifyFlushWrapper":
            _closed_stdout()
            raise SystemExit(EXIT_BROKEN_PIPE) from None
        raise
