"""A sweep folder's state: sweep.json (the command, the definition, every trial's status,
config hash and run folder) plus journal.jsonl, an append-only log of trial events.

sweep.json is written whole (atomically) when the sweep starts, is resumed and ends; between
those, each trial start and end appends one JSON line to journal.jsonl instead. Rewriting the
whole pretty-printed sweep.json on every event made a 2,000-trial sweep spend 95% of its time
in the parent (cost growing with the square of the trial count); one appended line costs the
same at trial 10 and at trial 10,000. Reading a folder (load) folds the journal into the
document, so a sweep killed mid-way loses no event; finishing folds it into sweep.json and
removes it. Each line carries absolute values (not increments), so folding twice is harmless.
"""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lnexp import __version__, procs
from lnexp.errors import RunFolderError
from lnexp.store import files, reading

if TYPE_CHECKING:
    from lnexp.sweep.grid import Definition, Trial

TRIAL_STATES = ("pending", "running", "completed", "failed", "interrupted")
JOURNAL = "journal.jsonl"
# Lines are flushed to the OS at once (a killed parent loses nothing); fsync, which costs a
# disk round trip, at most this often and when the journal is closed (power loss: <= 1 s).
FSYNC_EVERY_S = 1.0
# A trial folder name as grid.Trial.dirname makes it: t<index>, then an optional -<slug>.
_TRIAL_DIR = re.compile(r"t[0-9]{3,}(-[A-Za-z0-9._-]{0,40})?")
# The fields a journal line may carry, and their types (index: the trial's position).
_EVENT_TYPES: dict[str, tuple[type, ...]] = {
    "index": (int,), "status": (str,), "error": (str, type(None)),
    "seconds": (int, float, type(None)), "cpu_seconds": (int, float, type(None)),
    "threads": (int, type(None)), "attempts": (int,), "worker_pid": (int, type(None)),
    "worker_host": (str, type(None))}


def _event(line: str, n_trials: int) -> dict[str, Any]:
    """One journal line as an event; ValueError saying what is wrong with it."""
    if len(line) > reading.JOURNAL_LINE_BYTES:
        raise ValueError(f"longer than {reading.JOURNAL_LINE_BYTES:,} characters")
    try:
        event = reading.parse_json(line, JOURNAL)  # depth and integer caps
    except reading.UnreadableFile as exc:
        raise ValueError(exc.why) from None
    if not isinstance(event, dict):
        raise ValueError("not a JSON object")
    for key, value in event.items():
        types = _EVENT_TYPES.get(key)
        if types is None:
            raise ValueError(f"unknown key {key!r}")
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in types):
            raise ValueError(f"{key} is {value!r}, not of the type lnexp writes")
    index = event.get("index")
    if not isinstance(index, int) or isinstance(index, bool) or not 0 <= index < n_trials:
        raise ValueError(f"index {index!r} is not a trial of this sweep")
    if "status" in event and event["status"] not in TRIAL_STATES:
        raise ValueError(f"status {event['status']!r} is not a trial state")
    return event


class SweepFolder:
    """sweep.json of a sweep folder: the command, the definition and every trial's status,
    config hash and run folder; trial events go to journal.jsonl until the next write()."""

    def __init__(self, path: Path, doc: dict[str, Any]):
        self.path = path
        self.doc = doc
        self._journal: Any = None  # the open journal file, while events are appended
        self._synced = 0.0

    @classmethod
    def create(cls, path: Path, definition: Definition, trials: list[Trial], argv: list[str],
               metrics: list[str], jobs: int, executor: dict[str, Any] | None = None,
               threads: int = 1) -> SweepFolder:
        doc = {
            "schema_version": files.SCHEMA_VERSION,
            "kind": "sweep",
            "lnexp_version": __version__,
            "status": "running",
            "command": _command(argv),
            "argv": argv,
            "source": definition.source,
            "started": files.now(),
            "finished": None,
            "definition": definition.as_dict(),
            "definition_hash": definition.hash,
            "keys": definition.keys,
            "group_keys": definition.group_keys,
            "metrics": list(metrics),
            "jobs": jobs,
            "torch_threads": threads,
            "sessions": [_session(argv, jobs, executor)],
            "counts": {},
            "trials": [{"index": t.index, "params": t.params, "hash": t.hash,
                        "run_dir": t.dirname, "status": "pending", "error": None,
                        "seconds": None, "cpu_seconds": None, "threads": None,
                        "attempts": 0, "worker_pid": None, "worker_host": None}
                       for t in trials],
            "summary": None,
        }
        folder = cls(path, doc)
        folder.write()
        return folder

    @classmethod
    def load(cls, path: Path) -> SweepFolder:
        """An existing sweep folder (RunFolderError when it is not one)."""
        if not path.is_dir():
            raise RunFolderError(f"{path}: no such sweep folder")
        doc = files.read_json(path / "sweep.json", path)
        if doc.get("kind") != "sweep" or not isinstance(doc.get("trials"), list):
            raise RunFolderError(f"{path}: sweep.json is not an lnexp sweep document")
        if doc.get("schema_version") != files.SCHEMA_VERSION:
            raise RunFolderError(f"{path}: sweep.json schema_version "
                                 f"{doc.get('schema_version')!r}, this lnexp reads "
                                 f"{files.SCHEMA_VERSION}")
        folder = cls(path, doc)
        folder._check_trials()
        folder._fold()
        return folder

    def _check_trials(self) -> None:
        """Every trial entry as lnexp writes it: index = its position, run_dir one plain folder
        name starting t<index>, status a known state (sweep.json is read through the shape
        check, so the types are right); RunFolderError naming the trial otherwise."""
        for i, t in enumerate(self.trials):
            where = f"{self.path / 'sweep.json'}: trial {i}"
            if t.get("index") != i:
                raise RunFolderError(f"{where}: index {t.get('index')!r}, expected {i}")
            run_dir = t.get("run_dir")
            if not isinstance(run_dir, str) or not _TRIAL_DIR.fullmatch(run_dir) or \
                    not run_dir.startswith(f"t{i:03d}"):
                raise RunFolderError(f"{where}: run_dir {run_dir!r} is not a trial folder name "
                                     f"(t{i:03d}-...); refusing to use it")
            if t.get("status") not in TRIAL_STATES:
                raise RunFolderError(f"{where}: status {t.get('status')!r}, not one of "
                                     f"{', '.join(TRIAL_STATES)}")

    def _fold(self) -> None:
        """Apply journal.jsonl's events to the document. A torn last line (no newline: a
        crash mid-write) is skipped; any other line that is not an event lnexp writes (known
        keys, their types, an existing trial) is an error naming the line."""
        path = self.path / JOURNAL
        try:
            text = reading.read_text(path)
        except reading.MissingFile:
            return
        lines = text.split("\n")
        for number, line in enumerate(lines, 1):
            last = number == len(lines)
            if not line.strip():
                continue
            try:
                event = _event(line, len(self.trials))
            except ValueError as exc:
                if last:  # no newline after it: cut short by a crash
                    continue
                raise RunFolderError(f"cannot read {path}: line {number}: {exc}") from None
            self.trials[event.pop("index")].update(event)

    @property
    def trials(self) -> list[dict[str, Any]]:
        return self.doc["trials"]

    def trial_done(self, entry: dict[str, Any], config_hash: str, threads: int) -> bool:
        """Completed in its own run.json, with its metrics.json (the folder is the truth: a
        sweep killed between a trial's end and the next sweep.json write left `running`
        there), for the same resolved config (a changed default in a newer lnexp reruns it)
        and computed on `threads` torch threads (env.json), so a resumed sweep never mixes
        results computed with different thread counts. The entry is set completed."""
        if entry.get("hash") != config_hash:
            return False
        run_dir = self.trial_path(entry["index"])
        info = files.read_json_or_none(run_dir / "run.json")
        env = files.read_json_or_none(run_dir / "env.json") or {}
        done = (info is not None and info.get("status") == "completed"
                and (run_dir / "metrics.json").is_file() and env.get("torch_threads") == threads)
        if done and entry["status"] != "completed":
            entry.update(status="completed", error=None)
        return done

    def trial_path(self, index: int) -> Path:
        """A trial's run folder: a direct child of the sweep folder, named as lnexp names it
        (checked on load), and not a symlink out of it; RunFolderError otherwise."""
        name = self.trials[index]["run_dir"]
        if not isinstance(name, str) or not _TRIAL_DIR.fullmatch(name):
            raise RunFolderError(f"{self.path / 'sweep.json'}: trial {index}: run_dir "
                                 f"{name!r} is not a trial folder name; refusing to use it")
        path = self.path / name
        if path.is_symlink():
            raise RunFolderError(f"{path}: a symlink where lnexp keeps trial {index}'s folder; "
                                 f"refusing to use or remove it")
        return path

    def reset_trial(self, index: int) -> Path:
        """Mark a trial pending and remove a failed or interrupted attempt's folder (its
        results are not trusted); returns the trial's run folder path. Only a real folder
        directly inside the sweep folder, with a trial's name, is ever removed."""
        import shutil

        path = self.trial_path(index)
        if path.resolve().parent != self.path.resolve():
            raise RunFolderError(f"{path}: not inside the sweep folder {self.path}; refusing "
                                 f"to remove it")
        if path.is_dir():
            shutil.rmtree(path)
        elif path.exists():
            raise RunFolderError(f"{path}: not a folder where lnexp keeps trial {index}'s run; "
                                 f"refusing to remove it")
        if self.trials[index]["status"] != "pending":
            self.update(index, status="pending", error=None)
        return path

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in TRIAL_STATES}
        for t in self.trials:
            out[t["status"]] += 1
        return {"total": len(self.trials), **out}

    def update(self, index: int, **fields: Any) -> None:
        """Change a trial's entry and append the change to the journal (O(1) per event)."""
        entry = self.trials[index]
        entry.update(fields)
        if fields.get("status") == "running":
            entry["attempts"] += 1
            fields["attempts"] = entry["attempts"]
        if self._journal is None:
            self._journal = open(self.path / JOURNAL, "a", encoding="utf-8")  # noqa: SIM115
        self._journal.write(json.dumps({"index": index, **fields}, allow_nan=False) + "\n")
        self._journal.flush()
        if time.monotonic() - self._synced >= FSYNC_EVERY_S:
            os.fsync(self._journal.fileno())
            self._synced = time.monotonic()

    def close_journal(self) -> None:
        """fsync and close the journal (its events stay until write() folds them in)."""
        if self._journal is not None:
            os.fsync(self._journal.fileno())
            self._journal.close()
            self._journal = None

    def resumed(self, argv: list[str], jobs: int,
                executor: dict[str, Any] | None = None) -> None:
        """Record a new session (--resume) and mark the sweep running again."""
        last = (self.doc.get("sessions") or [{}])[-1]
        if self.doc.get("status") == "running" and procs.alive(last):
            raise RunFolderError(f"{self.path}: this sweep is still running (pid "
                                 f"{last['pid']} on {last['host']}); wait for it or stop it "
                                 f"first")
        self.doc["sessions"].append(_session(argv, jobs, executor))
        self.doc.update(status="running", finished=None)
        for t in self.trials:
            if t["status"] == "running":  # the process that ran it is gone
                t["status"] = "interrupted"
        self.write()

    def finish(self, status: str, summary: list[dict[str, Any]] | None = None) -> None:
        self.doc.update(status=status, finished=files.now())
        if summary is not None:
            self.doc["summary"] = summary
        self.write()

    def write(self) -> None:
        """sweep.json with every event so far, atomically; then the journal is redundant."""
        self.close_journal()
        self.doc["counts"] = self.counts()
        files.write_atomic(self.path / "sweep.json", files.dumps(self.doc))
        # After the rename: a crash in between leaves a journal whose events are already in
        # sweep.json, and folding them again changes nothing.
        (self.path / JOURNAL).unlink(missing_ok=True)

    def completed_metrics(self) -> list[dict[str, Any]]:
        """Every trial entry plus `metrics` (its metrics.json, or None when not completed)."""
        out = []
        for t in self.trials:
            doc = (files.read_json_or_none(self.trial_path(t["index"]) / "metrics.json")
                   if t["status"] == "completed" else None)
            out.append({**t, "metrics": doc})
        return out


def _session(argv: list[str], jobs: int, executor: dict[str, Any] | None) -> dict[str, Any]:
    return {"started": files.now(), "command": _command(argv), "jobs": jobs,
            **procs.identity(), "executor": executor or {"kind": "local"}}


def _command(argv: list[str]) -> str:
    import shlex

    return shlex.join(["lnexp", *argv[1:]])
