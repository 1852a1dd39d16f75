"""One way in for files lnexp did not just write: run.json, metrics.json, comparison.json,
sweep.json, journal.jsonl, env.json, inspect.json, the CSVs and config.yaml of a result folder.

Every read here is bounded before anything large exists (docs/contracts.md, "Reading result
folders"): only a regular file is read (a FIFO, device or socket, or a symlink to one, is
refused without waiting on it), at most `LIMITS[kind]` bytes, strict UTF-8; a JSON document
nested at most MAX_DEPTH levels with integers of at most 19 digits, and the fields lnexp reads
of the expected type (`SHAPES`). Whatever is wrong, the error is one `UnreadableFile` (a
RunFolderError, exit 2) saying "cannot read FILE: why"; the listing catches it and skips the
folder with a warning.
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path
from typing import Any

from lnexp.errors import RunFolderError

MiB = 1 << 20
# Bytes per kind of file. A run.json or env.json is under 4 KB; metrics.json with every
# per-sample list of output.per_sample_limit samples, or a 100,000-trial sweep.json, is tens of
# MB; the caps leave room for that and stop /dev/zero-sized files long before memory runs out.
LIMITS = {"small": 1 * MiB, "document": 256 * MiB, "csv": 256 * MiB, "journal": 256 * MiB,
          "text": 1 * MiB, "figure": 64 * MiB}
JOURNAL_LINE_BYTES = 64 * 1024
# Objects and lists inside each other: lnexp's documents need 7 (metrics.json stages).
MAX_DEPTH = 64
MAX_INT = 2**63  # a seed, a count, a pid: lnexp writes nothing larger
_SMALL = {"run.json", "env.json"}


class UnreadableFile(RunFolderError):
    """A file of a result folder that cannot be read or does not have the expected shape."""

    def __init__(self, path: Path | str, why: str):
        self.path = Path(path)
        self.why = why
        super().__init__(f"cannot read {path}: {why}")


class MissingFile(UnreadableFile):
    """The file is not there (a folder from an older lnexp, or not an lnexp folder)."""

    def __init__(self, path: Path | str):
        super().__init__(path, "no such file")


def limit_for(path: Path | str) -> int:
    """The size cap of a file from its name."""
    name = os.path.basename(os.fspath(path))
    if name in _SMALL:
        return LIMITS["small"]
    if name.endswith(".jsonl"):
        return LIMITS["journal"]
    if name.endswith(".csv"):
        return LIMITS["csv"]
    if name.endswith(".json"):
        return LIMITS["document"]
    return LIMITS["text"]


def read_bytes(path: Path | str, limit: int | None = None) -> bytes:
    """The bytes of a regular file of at most `limit` bytes (by name when None); MissingFile
    when absent, UnreadableFile for anything else. O_NONBLOCK: a FIFO is refused at once
    instead of waiting for a writer."""
    limit = limit_for(path) if limit is None else limit
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0))
    except (FileNotFoundError, NotADirectoryError):
        raise MissingFile(path) from None
    except OSError as exc:
        raise UnreadableFile(path, exc.strerror or str(exc)) from None
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            what = "a folder" if stat.S_ISDIR(st.st_mode) else "not a regular file"
            raise UnreadableFile(path, f"{what} (a FIFO, device or link to one is not read)"
                                 if what != "a folder" else what)
        if st.st_size > limit:
            raise UnreadableFile(path, f"{st.st_size:,} bytes, more than the {limit:,} such a "
                                       f"file may hold")
        chunks, size = [], 0
        while size <= limit:  # the file may grow after fstat: never read past the cap
            chunk = os.read(fd, min(1 << 20, limit + 1 - size))
            if not chunk:
                break
            chunks.append(chunk)
            size += len(chunk)
        if size > limit:
            raise UnreadableFile(path, f"more than the {limit:,} bytes such a file may hold")
        return b"".join(chunks)
    except OSError as exc:
        raise UnreadableFile(path, exc.strerror or str(exc)) from None
    finally:
        os.close(fd)


def read_text(path: Path | str, limit: int | None = None) -> str:
    """A UTF-8 text file, bounded as read_bytes."""
    data = read_bytes(path, limit)
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise UnreadableFile(path, f"not UTF-8 text (byte {exc.start})") from None


def parse_json(text: str | bytes, where: Path | str) -> Any:
    """A JSON value, depth- and size-checked; UnreadableFile naming `where`."""
    try:
        value = json.loads(text)
    except RecursionError:
        value = None
        why = f"nested more than {MAX_DEPTH} levels deep"
    except (ValueError, TypeError) as exc:  # JSONDecodeError, int digit limit, bytes not UTF-8
        raise UnreadableFile(where, f"not valid JSON ({exc})") from None
    else:
        why = _check_bounds(value)
    if why:
        raise UnreadableFile(where, why)
    return value


def _check_bounds(value: Any) -> str | None:
    """Iterative: the depth cap and the integer cap, without recursion."""
    stack = [(value, 1)]
    while stack:
        v, depth = stack.pop()
        if isinstance(v, dict):
            items = v.values()
        elif isinstance(v, list):
            items = v
        else:
            if isinstance(v, int) and not isinstance(v, bool) and abs(v) > MAX_INT:
                return f"an integer of {len(str(abs(v)))} digits; lnexp writes none that large"
            continue
        if depth > MAX_DEPTH:
            return f"nested more than {MAX_DEPTH} levels deep"
        stack.extend((x, depth + 1) for x in items)
    return None


def read_json(path: Path | str, shape: dict[str, Any] | None = None) -> dict[str, Any]:
    """A JSON object from a result folder, bounded (read_bytes, parse_json) and checked against
    its shape (SHAPES by file name, unless given)."""
    doc = parse_json(read_text(path), path)
    if not isinstance(doc, dict):
        raise UnreadableFile(path, f"not a JSON object ({_type(doc)})")
    spec = SHAPES.get(os.path.basename(os.fspath(path)), {}) if shape is None else shape
    for key, allowed in spec.items():
        for where, value in _at(doc, key.split(".")):
            if not _is(value, allowed):
                raise UnreadableFile(path, f"`{where}` is {_type(value)}, expected "
                                           f"{_names(allowed)}")
    return doc


def read_json_or_none(path: Path | str) -> dict[str, Any] | None:
    """read_json, None when the file is absent; other problems still raise."""
    try:
        return read_json(path)
    except MissingFile:
        return None


# --------------------------------------------------------------------------- shapes

TEXT, INT, NUM, BOOL, OBJ, LIST, NULL = "text", "integer", "number", "true/false", \
    "object", "list", "null"
_OPT_TEXT = (TEXT, NULL)
_OPT_INT = (INT, NULL)
_OPT_NUM = (NUM, NULL)
_OPT_OBJ = (OBJ, NULL)
_RUN_INFO = {"schema_version": INT, "kind": TEXT, "status": TEXT, "argv": LIST,
             "argv.[]": TEXT, "started": _OPT_TEXT, "finished": _OPT_TEXT,
             "error": _OPT_TEXT, "pid": _OPT_INT, "host": _OPT_TEXT, "pid_start": _OPT_INT,
             "name": _OPT_TEXT, "norm": _OPT_TEXT, "shape": _OPT_OBJ, "metrics": _OPT_OBJ,
             "metrics.*": _OPT_NUM, "norms": _OPT_OBJ, "norms.*": _OPT_INT, "trials": _OPT_OBJ,
             "trials.*": _OPT_INT}
_CONFIG = {"config": OBJ, "config.name": _OPT_TEXT, "config.seed": _OPT_INT,
           "config.sample_index": _OPT_INT, "config.device": _OPT_TEXT,
           **{f"config.{k}": _OPT_OBJ for k in ("data", "model", "train", "output", "limits",
                                                 "expect")}}
# The fields lnexp reads back, by file name: "a.b" is b inside a, "*" every value of an object,
# "[]" every item of a list; a field that is absent is not checked (older folders).
SHAPES: dict[str, dict[str, Any]] = {
    "run.json": _RUN_INFO,
    "env.json": {"argv": LIST, "torch_threads": _OPT_INT, "seed": _OPT_INT,
                 **{k: _OPT_TEXT for k in ("lnexp", "python", "torch", "platform", "device",
                                           "git_commit")}},
    "metrics.json": {
        "schema_version": INT, "kind": TEXT, **_CONFIG,
        "norm": OBJ, "norm.*": _OPT_TEXT, "shape": OBJ, "labels": OBJ, "labels.*": TEXT,
        "stages": OBJ, "stages.*": OBJ, "stages.*.*": OBJ, "stages.*.*.summary": OBJ,
        "stages.*.*.summary.*": OBJ, "stages.*.*.summary.*.*": _OPT_NUM, "sample": OBJ,
        "sample.pre_norm": OBJ, "sample.post_norm": OBJ, "verdict": OBJ, "verdict.*": OBJ,
        "standardizes": _OPT_TEXT,
        "standardized_axes": (LIST, NULL), "standardized_axes.[]": TEXT,
        "expected_axis": _OPT_TEXT, "numeric_trouble": _OPT_OBJ, "explanation": LIST,
        "explanation.[]": TEXT, "precision": OBJ, "precision.*": (NUM, TEXT, NULL),
        "expectations": LIST, "expectations.[]": OBJ, "expectations.[].name": TEXT,
        "expectations.[].passed": BOOL, "layers": OBJ, "layers.names": LIST,
        "layers.names.[]": TEXT, "training": OBJ, "training.layers": LIST,
        "training.layers.[]": TEXT, "training.final": OBJ, "training.evals": LIST,
        "training.evals.[]": OBJ},
    "comparison.json": {
        "schema_version": INT, "kind": TEXT, "status": TEXT, **_CONFIG,
        "norm_order": LIST, "norm_order.[]": TEXT, "shape": OBJ, "labels": OBJ,
        "axes": TEXT,
        "norms": LIST, "norms.[]": OBJ, "norms.[].name": TEXT, "norms.[].status": TEXT,
        "norms.[].title": _OPT_TEXT, "norms.[].reason": _OPT_TEXT, "norms.[].run_dir": _OPT_TEXT,
        "norms.[].standardizes": _OPT_TEXT, "norms.[].global": _OPT_OBJ,
        "norms.[].verdict": _OPT_OBJ, "norms.[].verdict.*": OBJ, "norms.[].explanation": LIST,
        "norms.[].explanation.[]": TEXT, "norms.[].per_feature": _OPT_OBJ,
        "norms.[].per_sample": _OPT_OBJ},
    "sweep.json": {
        "schema_version": INT, "kind": TEXT, "status": TEXT, "command": TEXT, "argv": LIST,
        "argv.[]": TEXT, "started": _OPT_TEXT, "finished": _OPT_TEXT, "definition": OBJ,
        "definition.base": OBJ, "definition.grid": LIST, "definition.grid.[]": OBJ,
        "keys": LIST, "keys.[]": TEXT, "group_keys": LIST, "group_keys.[]": TEXT,
        "metrics": LIST, "metrics.[]": TEXT, "jobs": INT, "sessions": LIST, "sessions.[]": OBJ,
        "sessions.[].executor": _OPT_OBJ, "counts": OBJ, "counts.*": INT, "trials": LIST,
        "trials.[]": OBJ, "trials.[].index": INT, "trials.[].params": OBJ,
        "trials.[].hash": TEXT, "trials.[].run_dir": TEXT, "trials.[].status": TEXT,
        "trials.[].error": _OPT_TEXT, "trials.[].seconds": _OPT_NUM,
        "trials.[].cpu_seconds": _OPT_NUM, "trials.[].threads": _OPT_INT,
        "trials.[].attempts": INT, "trials.[].worker_pid": _OPT_INT,
        "trials.[].worker_host": _OPT_TEXT, "summary": (LIST, NULL), "summary.[]": OBJ,
        "summary.[].metrics": OBJ, "summary.[].metrics.*": OBJ},
    "inspect.json": {"schema_version": INT, "kind": TEXT, "status": _OPT_TEXT},
}

_CHECKS = {TEXT: lambda v: isinstance(v, str),
           INT: lambda v: isinstance(v, int) and not isinstance(v, bool),
           NUM: lambda v: isinstance(v, int | float) and not isinstance(v, bool),
           BOOL: lambda v: isinstance(v, bool), OBJ: lambda v: isinstance(v, dict),
           LIST: lambda v: isinstance(v, list), NULL: lambda v: v is None}


def _is(value: Any, allowed: str | tuple[str, ...]) -> bool:
    return any(_CHECKS[a](value) for a in ((allowed,) if isinstance(allowed, str) else allowed))


def _names(allowed: str | tuple[str, ...]) -> str:
    return allowed if isinstance(allowed, str) else " or ".join(allowed)


def _type(value: Any) -> str:
    for name in (BOOL, INT, NUM, TEXT, OBJ, LIST, NULL):
        if _CHECKS[name](value):
            return {OBJ: "an object", LIST: "a list", INT: "an integer", NULL: "null"}.get(
                name, f"a {name}" if name != BOOL else name)
    return type(value).__name__


def _at(doc: Any, parts: list[str], where: str = "") -> list[tuple[str, Any]]:
    """The values at a dotted path (with * and []), and where each is; nothing when a part is
    absent or its parent is not a container (that parent's own rule reports it)."""
    if not parts:
        return [(where, doc)]
    head, rest = parts[0], parts[1:]
    if head == "[]":
        if not isinstance(doc, list):
            return []
        return [hit for i, v in enumerate(doc) for hit in _at(v, rest, f"{where}[{i}]")]
    if not isinstance(doc, dict):
        return []
    if head == "*":
        return [hit for k, v in doc.items() for hit in _at(v, rest, _join(where, k))]
    if head not in doc:
        return []
    return _at(doc[head], rest, _join(where, head))


def _join(where: str, key: str) -> str:
    return f"{where}.{key}" if where else str(key)


def child_folder(folder: Path, name: object) -> Path | None:
    """`folder / name` when `name` (read from one of the folder's own files) names a real
    folder directly inside `folder`: one plain path component, not a symlink. Anything else
    (absolute, climbing with `..`, empty, a symlink) is None, so nothing outside is followed."""
    if not isinstance(name, str) or not name or name in (".", "..") or "/" in name \
            or "\\" in name or "\0" in name:
        return None
    path = folder / name
    if path.is_symlink() or not path.is_dir() or path.resolve().parent != folder.resolve():
        return None
    return path
