"""Atomic files, run folders and run.json.

Every file is written atomically (a temp file in the same folder, then os.replace), and a run
folder is created exclusively (os.mkdir fails if it exists), so two runs never share one.
"""

from __future__ import annotations

import contextlib
import functools
import json
import os
import platform
import secrets
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lnexp import __version__
from lnexp.errors import OutputError, RunFolderError

if TYPE_CHECKING:
    from lnexp.config import Config

SCHEMA_VERSION = 1


def dumps(doc: dict[str, Any]) -> str:
    """Serialize a document the way every lnexp JSON file is written."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def now() -> str:
    """A timestamp as run.json and sweep.json store it."""
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder and os.replace; OutputError
    (exit 2) naming the file and the reason when the OS refuses (no space, permission,
    read-only), with no temp file left behind."""
    try:
        _write_atomic(path, data)
    except OSError as exc:
        raise output_error(path, exc) from None


def output_error(path: Path, exc: OSError) -> OutputError:
    """The OutputError for an OSError met while writing `path`."""
    return OutputError(f"cannot write {path}: {exc.strerror or exc}")


def make_dir(path: Path) -> None:
    """os.mkdir with OutputError (exit 2) naming the folder when the OS refuses."""
    try:
        path.mkdir()
    except OSError as exc:
        raise OutputError(f"cannot create {path}: {exc.strerror or exc}") from None


def _write_atomic(path: Path, data: str | bytes) -> None:
    mode = "wb" if isinstance(data, bytes) else "w"
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, mode, **({} if mode == "wb" else {"encoding": "utf-8"})) as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise


@functools.cache
def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


# The files lnexp writes into a result folder (and its trial, norm and figures folders).
RESULT_FILES = frozenset({
    "run.json", "metrics.json", "env.json", "config.yaml", "stats.csv", "history.csv",
    "comparison.json", "comparison.csv", "comparison.png", "layers.png", "sweep.json",
    "summary.csv", "summary.png", "journal.jsonl", "inspect.json", "layers.csv", "dims.csv"})


def result_file(path: Path) -> bool:
    """Whether `path` (resolved: a symlink counts as its target) is a file lnexp wrote into a
    result folder: one of RESULT_FILES, or a PNG of its figures/, next to a run.json."""
    real = path.resolve()
    folder = real.parent.parent if real.parent.name == "figures" else real.parent
    ours = real.name in RESULT_FILES or (real.parent.name == "figures"
                                         and real.suffix == ".png")
    return ours and (folder / "run.json").exists()


def read_json(path: Path, folder: Path | None = None) -> dict[str, Any]:
    """A JSON object from a run folder, through the one bounded reader (lnexp.store.reading);
    RunFolderError (exit 2) naming the folder when it is missing, and "cannot read FILE: why"
    when it is unreadable, too large, not a regular file or not of the expected shape.
    Callers that tolerate a bad file catch that."""
    from lnexp.store.reading import MissingFile
    from lnexp.store.reading import read_json as read

    folder = path.parent if folder is None else folder
    try:
        return read(path)
    except MissingFile:
        raise RunFolderError(f"{folder}: no {path.name}; not a completed lnexp run folder"
                             ) from None


def read_json_or_none(path: Path) -> dict[str, Any] | None:
    """read_json, with None for a missing or unreadable file (listing, resuming)."""
    try:
        return read_json(path)
    except RunFolderError:
        return None


def env_info(cfg: Config, argv: list[str]) -> dict[str, Any]:
    """env.json: what produced this run."""
    import torch

    return {
        "lnexp": __version__,
        "python": sys.version.split()[0],
        "torch": torch.__version__,
        "platform": platform.platform(),
        "device": "cpu",
        "torch_threads": torch.get_num_threads(),
        "seed": cfg.seed,
        "argv": argv,
        "git_commit": _git_commit(),
    }


@functools.cache  # once per process: a subprocess per sweep trial cost more than the trial
def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


def ensure_output_dir(root: Path) -> Path:
    """Create `root` if needed and check it is writable, before any work starts."""
    try:
        root.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"output folder {root}: cannot create it ({exc.strerror})") from None
    if not root.is_dir():
        raise OutputError(f"output folder {root}: exists and is not a folder")
    # Try it rather than trust os.access (which says yes to root on a read-only mount).
    try:
        fd, probe = tempfile.mkstemp(prefix=".lnexp-write-test-", dir=root)
        os.close(fd)
        os.unlink(probe)
    except OSError as exc:
        raise OutputError(f"output folder {root}: not writable ({exc.strerror})") from None
    return root


def create_run_dir(root: Path, name: str) -> Path:
    """Make a new, never-reused folder root/name/<YYYYmmdd-HHMMSS>-<6 hex>."""
    parent = ensure_output_dir(root / name)
    for _ in range(100):
        stamp = time.strftime("%Y%m%d-%H%M%S")
        path = parent / f"{stamp}-{secrets.token_hex(3)}"
        try:
            path.mkdir()
        except FileExistsError:
            continue
        except OSError as exc:
            raise OutputError(f"run folder {path}: cannot create it ({exc.strerror})") from None
        return path
    raise OutputError(f"could not create a fresh run folder under {parent}")


class RunFolder:
    """A run folder with its status in run.json: running -> completed | partial | failed |
    interrupted ('partial' only for compare and sweep folders where some part was not
    computed). run.json also names the process that writes the folder (pid, host,
    pid_start: lnexp.procs), so a folder left `running` by a killed process reads `killed`.

    When the OS refuses a write (no space, permission), the folder is marked failed with
    the reason; when even run.json cannot be written, a new run or compare folder is
    removed, so no folder is left without a truthful run.json."""

    def __init__(self, path: Path, kind: str, argv: list[str],
                 resumed: dict[str, Any] | None = None, **listed: Any):
        """`listed`: what `lnexp runs` shows that is known from the start (name, norm);
        `resumed`: the run.json of a folder running again (its `started` is kept)."""
        from lnexp import procs

        self.path = path
        self.kind = kind
        self.resumed = resumed is not None
        started = (resumed or {}).get("started")
        self.info: dict[str, Any] = {
            "schema_version": SCHEMA_VERSION, "kind": kind, "status": "running", "argv": argv,
            "started": started if isinstance(started, str) else now(), "finished": None,
            "error": None, **procs.identity(), **listed}
        self._final: tuple[str, str | None] = ("completed", None)
        try:
            self._write_status()
        except BaseException:
            self._discard()
            raise

    @classmethod
    def resume(cls, path: Path, kind: str, argv: list[str], **listed: Any) -> RunFolder:
        """An existing folder running again (sweep --resume): its first `started` is kept."""
        return cls(path, kind, argv, resumed=read_json_or_none(path / "run.json") or {},
                   **listed)

    def _discard(self) -> None:
        """Remove a new run/compare folder whose run.json cannot be written (its partial files
        are not trusted and a folder without a truthful run.json misleads every listing)."""
        if not self.resumed and self.kind in ("run", "compare", "inspect"):
            import shutil

            shutil.rmtree(self.path, ignore_errors=True)

    def describe(self, **fields: Any) -> None:
        """Add what `lnexp runs` lists (name, norm, shape, metrics, trials) to run.json; written
        with the next status change, so listing never has to open metrics.json."""
        self.info.update(fields)

    def mark_partial(self, error: str) -> None:
        """End as 'partial' (some part was not computed) instead of 'completed' on success."""
        self._final = ("partial", error)

    def mark_failed(self, error: str) -> None:
        """End as 'failed' on success too: nothing of what it ran was computed (a sweep whose
        trials all failed)."""
        self._final = ("failed", error)

    def _write_status(self) -> None:
        write_atomic(self.path / "run.json", dumps(self.info))

    def finish(self, status: str, error: str | None = None) -> None:
        self.info.update(status=status, finished=now(), error=error)
        self._write_status()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[RunFolder]:
        """Mark the folder completed on success, interrupted on Ctrl-C, failed otherwise."""
        try:
            yield self
        except KeyboardInterrupt:
            self._end("interrupted", "interrupted (Ctrl-C / SIGINT or SIGTERM)")
            raise
        except BaseException as exc:
            from lnexp.errors import LnexpError

            self._end("failed", str(exc) if isinstance(exc, LnexpError)
                      else f"{type(exc).__name__}: {exc}")
            raise
        else:
            try:
                self.finish(*self._final)
            except BaseException:
                self._end("failed", "run.json could not be written")
                raise

    def _end(self, status: str, error: str) -> None:
        """finish() on the way out of an error; if even that write fails, discard the
        folder rather than leave it `running` (the original error is what gets reported)."""
        try:
            self.finish(status, error)
        except (OSError, OutputError):
            self._discard()


def read_completed_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run.json, metrics.json) of a run folder whose status is completed; RunFolderError
    (exit 2) for anything a CI script should not trust."""
    if not run_dir.exists():
        raise RunFolderError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: not a folder; expected a run folder "
                             f"(OUTPUT_DIR/<name>/<timestamp>-<id>/)")
    from lnexp import procs

    info = read_json(run_dir / "run.json", run_dir)
    status = procs.effective_status(info)
    if status != "completed":
        why = (f" ({info['error']})" if info.get("error") else
               f" (its process {info.get('pid')} on {info.get('host')} is gone)"
               if status == procs.KILLED else "")
        raise RunFolderError(
            f"{run_dir}: run status is {status!r}{why}, not 'completed'; its results are "
            f"incomplete and cannot be checked - rerun it")
    if info.get("kind") != "run":
        raise RunFolderError(f"{run_dir}: lnexp check reads folders of `lnexp run`, this one "
                             f"is of kind {info.get('kind')!r}")
    doc = read_json(run_dir / "metrics.json", run_dir)
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise RunFolderError(f"{run_dir}: metrics.json schema_version "
                             f"{doc.get('schema_version')!r}, this lnexp reads {SCHEMA_VERSION}")
    return info, doc
