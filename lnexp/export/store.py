"""Before `lnexp export mlflow` writes anything: the tracking store is checked (fail in
seconds, in one line) and locked (one export at a time per store and experiment)."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Iterator
from pathlib import Path

from lnexp.errors import EXIT_PARTIAL, ExportError


class ExportBusy(ExportError):
    """Another export held the store's lock too long: a run-time refusal (exit 3)."""

    exit_code = EXIT_PARTIAL

# MLflow's own retry settings, unless the user set them: its defaults (7 retries, backoff 2,
# 120 s per request) took 250 s to give up on a server that refuses connections.
HTTP_ENV = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
            "MLFLOW_HTTP_REQUEST_TIMEOUT": "10"}
CONNECT_TIMEOUT_S = 5
LOCK_WAIT_S = 120  # a second export of the same store and experiment waits this long at most


def check_store(uri: str) -> None:
    """Fail fast, in one line, on a store lnexp cannot use: a tracking server that does not
    accept a connection (checked before MLflow's own retries), a sqlite file that cannot be
    created or written (MLflow retried it for 106 s)."""
    from urllib.parse import urlsplit

    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        try:
            db.parent.mkdir(parents=True, exist_ok=True)
            with open(db, "ab"):  # created empty if missing: sqlite reads that as a new db
                pass
        except OSError as exc:
            raise ExportError(f"MLflow tracking store {uri}: cannot write {db} "
                              f"({exc.strerror or exc})") from None
        return
    parts = urlsplit(uri)
    if parts.scheme in ("http", "https"):
        for key, value in HTTP_ENV.items():
            os.environ.setdefault(key, value)
        port = parts.port or (443 if parts.scheme == "https" else 80)
        import socket

        try:
            socket.create_connection((parts.hostname or "localhost", port),
                                     timeout=CONNECT_TIMEOUT_S).close()
        except OSError as exc:
            why = exc.strerror or type(exc).__name__
            raise ExportError(f"MLflow tracking server {uri}: cannot connect to "
                              f"{parts.hostname}:{port} ({why})") from None


def _lock_path(uri: str, experiment: str) -> Path:
    """Beside a sqlite store (`mlflow.db.<hash>.lock`, every user of the folder sees it); for
    a server, in the temporary folder (exports from this machine only)."""
    import hashlib
    import tempfile

    digest = hashlib.sha256(f"{uri}\0{experiment}".encode()).hexdigest()[:12]
    if uri.startswith("sqlite:///"):
        db = Path(uri[len("sqlite:///"):])
        return db.with_name(f"{db.name}.{digest}.lock")
    return Path(tempfile.gettempdir()) / f"lnexp-export-{digest}.lock"


@contextlib.contextmanager
def export_lock(uri: str, experiment: str, wait_s: float = LOCK_WAIT_S) -> Iterator[None]:
    """One export at a time per tracking store and experiment: two at once both found a
    folder not yet exported and logged every run twice. A second export waits for the first
    (at most `wait_s`, then ExportError); the lock goes with the process (flock)."""
    import fcntl

    path = _lock_path(uri, experiment)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError as exc:
        raise ExportError(f"MLflow export lock {path}: {exc.strerror or exc}") from None
    try:
        deadline = time.monotonic() + wait_s
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise ExportBusy(
                        f"another lnexp export into {uri} (experiment {experiment!r}) has "
                        f"held {path} for {wait_s:.0f} s; run this one when it ends") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # releases the lock
