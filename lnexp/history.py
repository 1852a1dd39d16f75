"""Run history: the run, compare and sweep folders under an output folder, read from the
folders themselves; there is no index to lose. Reads only, never imports torch.

run.json carries what a listing shows (name, norm, shape, the listed metrics, trial or norm
counts: see `listed`), so listing opens one small file per folder: parsing metrics.json made
listing 10,000 runs take 3.7 s, reading run.json alone 0.15 s. Folders written before run.json
carried these fall back to metrics.json, comparison.json and sweep.json; a running sweep is
read from sweep.json and its journal (its run.json counts are written when it ends).
"""

from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from lnexp import expect
from lnexp.errors import RunFolderError
from lnexp.numbers import finite_or_none
from lnexp.procs import effective_status
from lnexp.registry import LISTED_METRICS, RUN_KINDS, RUN_STATUSES
from lnexp.store import reading


@dataclass
class RunRecord:
    """One folder OUTPUT_DIR/<name>/<timestamp>-<id>/ as listed by `lnexp runs`."""

    path: str
    name: str
    kind: str
    status: str
    started: str | None
    finished: str | None
    norm: str | None
    error: str | None
    detail: str = ""
    metrics: dict[str, float | None] = field(default_factory=dict)
    parent: str | None = None  # the sweep or compare folder holding this run (runs --all)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)

    @property
    def id(self) -> str:
        """What `lnexp runs` shows as the id: the folder's hex id, or for a run inside a
        sweep or compare, the parent's id / the folder's name."""
        own = Path(self.path).name
        if self.parent is not None:
            return f"{self.parent.rsplit('-', 1)[-1]}/{own}"
        return own.rsplit("-", 1)[-1]


def listed(metrics_doc: dict[str, Any]) -> dict[str, Any]:
    """The fields a run's run.json carries for listing, from its metrics.json document."""
    shape = metrics_doc.get("shape") or {}
    return {"shape": {"n_samples": shape.get("n_samples"), "features": shape.get("features")},
            "metrics": {m: finite_or_none(expect.metric_value(metrics_doc, m))
                        for m in LISTED_METRICS}}


def _counts(done: dict[str, Any] | None, unit: str) -> str:
    done = done or {}
    return f"{done.get('completed', 0)}/{done.get('total', 0)} {unit}"


class MalformedFolder(ValueError):
    """A run folder whose run.json or main document does not have the expected shape."""


def _text(info: dict[str, Any], key: str, required: bool = False) -> str | None:
    value = info.get(key)
    if value is None and not required:
        return None
    if not isinstance(value, str):
        raise MalformedFolder(f"run.json `{key}` is {value!r}, not a string")
    return value


def record(folder: Path | str, parent: Path | str | None = None) -> RunRecord | None:
    """The record of one folder, or None when it holds no run.json. MalformedFolder when
    run.json (or the folder's main document) is there but unreadable or not of the expected
    shape; a running folder whose process is gone gets status `killed` (lnexp.procs).

    Plain strings and os.path in here: listing calls it for every folder, and pathlib's
    parsing was a third of listing 10,000 runs."""
    folder = os.fspath(folder)
    run_json = os.path.join(folder, "run.json")
    try:
        info = reading.read_json(run_json)
    except reading.MissingFile:
        return None
    except reading.UnreadableFile as exc:
        raise MalformedFolder(f"cannot read run.json: {exc.why}") from None
    if "kind" not in info:
        return None
    kind = _text(info, "kind", required=True)
    if kind not in RUN_KINDS:
        raise MalformedFolder(f"run.json `kind` is {kind!r}, not one of {', '.join(RUN_KINDS)}")
    if _text(info, "status", required=True) not in RUN_STATUSES:
        raise MalformedFolder(f"run.json `status` is {info['status']!r}")
    parent = os.fspath(parent) if parent is not None else None
    top = parent if parent is not None else folder
    rec = RunRecord(path=folder, name=os.path.basename(os.path.dirname(top)), kind=str(kind),
                    status=effective_status(info), started=_text(info, "started"),
                    finished=_text(info, "finished"), norm=_text(info, "norm"),
                    error=_text(info, "error"), parent=parent)
    try:
        _fill(rec, info, folder)
    except reading.UnreadableFile as exc:  # the folder's main document, when it is read
        raise MalformedFolder(f"cannot read {os.path.basename(exc.path)}: {exc.why}") from None
    except (AttributeError, TypeError, ValueError, KeyError) as exc:
        raise MalformedFolder(f"its listing fields are malformed ({type(exc).__name__}: "
                              f"{exc})") from None
    return rec


def _fill(rec: RunRecord, info: dict[str, Any], folder: str) -> None:
    """Detail and listed metrics from run.json, else from the folder's main document."""
    if rec.kind == "run" and "metrics" in info:
        shape = info.get("shape") or {}
        rec.detail = f"{shape.get('n_samples')} × {shape.get('features')}"
        rec.metrics = {m: (info["metrics"] or {}).get(m) for m in LISTED_METRICS}
    elif rec.kind == "compare" and "norms" in info:
        rec.detail = _counts(info["norms"], "norms")
    elif rec.kind == "sweep" and "trials" in info and rec.status != "running":
        rec.detail = _counts(info["trials"], "trials")
    else:
        _record_from_documents(rec, Path(folder))


def _record_from_documents(rec: RunRecord, folder: Path) -> None:
    """Fill a record from the folder's main document (folders from before run.json carried
    the listing fields, and running sweeps)."""
    if rec.kind == "run":
        doc = reading.read_json_or_none(folder / "metrics.json")
        if doc is not None:
            rec.norm = ((doc.get("config") or {}).get("model") or {}).get("norm")
            rec.metrics = {m: finite_or_none(expect.metric_value(doc, m)) for m in LISTED_METRICS}
            shape = doc.get("shape") or {}
            rec.detail = f"{shape.get('n_samples')} × {shape.get('features')}"
    elif rec.kind == "compare":
        doc = reading.read_json_or_none(folder / "comparison.json")
        if doc is not None:
            rec.norm = ",".join(doc.get("norm_order") or [])
            done = sum(n.get("status") == "completed" for n in doc.get("norms") or [])
            rec.detail = f"{done}/{len(doc.get('norms') or [])} norms"
    elif rec.kind == "sweep":
        from lnexp.sweep.folder import SweepFolder  # folds the journal of a running sweep

        try:
            doc: dict[str, Any] | None = SweepFolder.load(folder).doc
        except RunFolderError:
            doc = None
        if doc is not None:
            trials = doc.get("trials") or []
            norms = {str(t.get("params", {}).get("model.norm")) for t in trials
                     if "model.norm" in t.get("params", {})}
            base = ((doc.get("definition") or {}).get("base") or {}).get("model") or {}
            rec.norm = ",".join(sorted(norms)) if norms else base.get("norm", "ln")
            done = sum(t.get("status") == "completed" for t in trials)
            rec.detail = f"{done}/{len(trials)} trials"


def scan(root: Path, nested: bool = False, skipped: list[str] | None = None
         ) -> list[RunRecord]:
    """Every run, compare and sweep folder directly under root/<name>/, newest first; with
    `nested` also the runs inside compare and sweep folders (`lnexp runs --all`). A malformed
    folder never breaks the listing: it is left out, and one line saying which and why is
    appended to `skipped` (the CLI prints them as warnings)."""

    def safe(folder: str, parent: str | None = None) -> RunRecord | None:
        try:
            return record(folder, parent)
        except MalformedFolder as exc:
            if skipped is not None:
                skipped.append(f"{folder}: skipped: {exc}")
            return None

    records = []
    for folder in _subfolders(root, depth=2):
        rec = safe(folder)
        if rec is None:
            continue
        records.append(rec)
        if nested and rec.kind in ("sweep", "compare"):
            for inner in _subfolders(folder, depth=1):
                sub = safe(inner, parent=folder)
                if sub is not None:
                    records.append(sub)
    # started has 1 s resolution; within a second, the later-written run.json is newer. The
    # mtime is read only for records that share their second (a stat per folder was a fifth
    # of listing 10,000 runs).
    seconds: dict[str, int] = {}
    for r in records:
        seconds[r.started or ""] = seconds.get(r.started or "", 0) + 1
    records.sort(key=lambda r: (r.started or "", _mtime(r.path) if seconds[r.started or ""] > 1
                                else 0.0), reverse=True)
    return records


def _subfolders(root: Path | str, depth: int) -> list[str]:
    """The folders `depth` levels below root (os.scandir: pathlib's glob costs more than the
    reading when listing 10,000 runs); none when root is not a folder."""
    level = [str(root)]
    for _ in range(depth):
        deeper: list[str] = []
        for path in level:
            try:
                with os.scandir(path) as entries:
                    deeper.extend(e.path for e in entries if e.is_dir())
            except OSError:  # not a folder, gone, or unreadable: nothing to list there
                continue
        level = deeper
    return level


def _mtime(folder: str) -> float:
    try:
        return os.stat(os.path.join(folder, "run.json")).st_mtime
    except OSError:
        return 0.0


def select(records: list[RunRecord], norm: str | None = None, status: str | None = None,
           kind: str | None = None, name: str | None = None) -> list[RunRecord]:
    """Filter: norm matches one of a record's norms; status, kind and name exactly."""
    out = []
    for r in records:
        if norm is not None and norm not in (r.norm or "").split(","):
            continue
        if status is not None and r.status != status:
            continue
        if kind is not None and r.kind != kind:
            continue
        if name is not None and r.name != name:
            continue
        out.append(r)
    return out


def find(root: Path, ref: str) -> Path:
    """A folder from a path, or from its <timestamp>-<id> (or just the id) under root."""
    path = Path(ref)
    if os.path.lexists(path / "run.json"):  # whatever it is: the reader says what is wrong
        return path
    matches = [p.parent for p in root.glob("*/*/run.json")
               if p.parent.name == ref or p.parent.name.endswith(f"-{ref}")]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise RunFolderError(f"{ref}: matches {len(matches)} folders under {root}: "
                             + ", ".join(str(m) for m in matches[:5]))
    raise RunFolderError(f"{ref}: no run folder (give a path, or a <timestamp>-<id> or <id> "
                         f"of a folder under {root}; `lnexp runs` lists them)")


def details(folder: Path) -> dict[str, Any]:
    """Everything `lnexp runs show` prints: the record, run.json, and the folder's main
    document (metrics.json without its long per-index lists, comparison.json or sweep.json)."""
    run = reading.read_json_or_none(folder / "run.json")  # "cannot read FILE: why" first
    try:
        rec = record(folder)
    except MalformedFolder as exc:
        raise RunFolderError(f"{folder}: {exc}") from None
    if rec is None:
        raise RunFolderError(f"{folder}: no readable run.json; not an lnexp run folder")
    out: dict[str, Any] = {"record": rec.as_dict(), "run": run}
    if rec.kind == "run":
        doc = reading.read_json_or_none(folder / "metrics.json")
        if doc is not None:
            out["config"] = doc.get("config")
            out["verdict"] = doc.get("verdict")
            out["explanation"] = doc.get("explanation")
            out["expectations"] = doc.get("expectations")
    elif rec.kind == "compare":
        doc = reading.read_json_or_none(folder / "comparison.json")
        if doc is not None:
            out["norms"] = [{k: n.get(k) for k in ("name", "status", "standardizes", "reason",
                                                    "run_dir")} for n in doc.get("norms", [])]
    elif rec.kind == "sweep":
        doc = reading.read_json_or_none(folder / "sweep.json")
        if doc is not None:
            out["sweep"] = {k: doc.get(k) for k in ("command", "status", "counts", "keys",
                                                    "group_keys", "metrics", "summary")}
    return out
