"""Read a run, compare, sweep or inspect folder from its files on disk into a `Document`.

Only the files are read (run.json, metrics.json, comparison.json, sweep.json, inspect.json,
config.yaml, env.json, the PNGs), never the code that wrote them, so a report can be made of
any folder, including one from an older lnexp or one copied off a CI machine. Each kind of
folder has one builder in `BUILDERS` (run.py, compare.py, sweep.py, inspect.py; parts.py holds
what they share); a new kind adds one module and one entry there.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from lnexp.errors import RunFolderError
from lnexp.report.compare import compare_document
from lnexp.report.document import Document
from lnexp.report.inspect import inspect_document
from lnexp.report.parts import read_json
from lnexp.report.run import run_document
from lnexp.report.sweep import sweep_document

# The files that say what a folder is, for folders whose run.json is missing.
MARKERS = {"sweep.json": "sweep", "comparison.json": "compare", "inspect.json": "inspect",
           "metrics.json": "run"}


def folder_kind(path: Path) -> str:
    """run, compare, sweep or inspect (run.json's `kind`, else the folder's marker file);
    RunFolderError for anything else, saying what was found."""
    if not path.exists():
        raise RunFolderError(f"{path}: no such folder")
    if not path.is_dir():
        raise RunFolderError(f"{path}: not a folder; expected a run, compare, sweep or inspect "
                             f"folder "
                             f"(e.g. outputs/default/<timestamp>-<id>)")
    info = read_json(path / "run.json")
    kind = info.get("kind") if info else None
    if kind is None:
        kind = next((k for f, k in MARKERS.items() if (path / f).is_file()), None)
    if kind is None:
        inner = sorted(p.parent for p in path.glob("*/run.json"))
        hint = (f"; it holds {len(inner)} lnexp folder(s), e.g. {inner[-1]} "
                f"(`lnexp runs` lists them)" if inner else "")
        raise RunFolderError(f"{path}: not an lnexp folder (no run.json, metrics.json, "
                             f"comparison.json, sweep.json or inspect.json){hint}")
    if kind not in BUILDERS:
        raise RunFolderError(f"{path}: a {kind!r} folder; lnexp report knows "
                             f"{', '.join(BUILDERS)} folders")
    return str(kind)


def read_folder(path: str | Path) -> Document:
    """The report of a run, compare, sweep or inspect folder (a file inside one stands for its
    folder)."""
    path = Path(path)
    if path.is_file() and path.name in {"run.json", *MARKERS}:
        path = path.parent
    return BUILDERS[folder_kind(path)](path)


BUILDERS: dict[str, Callable[[Path], Document]] = {
    "run": run_document,
    "compare": compare_document,
    "sweep": sweep_document,
    "inspect": inspect_document,
}
