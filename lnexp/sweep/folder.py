"""A sweep folder's state: sweep.json (the command, the definition, every trial's status,
config hash and run folder), rewritten atomically each time a trial starts or ends."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from lnexp import __version__, procs
from lnexp.errors import RunFolderError
from lnexp.store import files

if TYPE_CHECKING:
    from lnexp.sweep.grid import Definition, Trial

TRIAL_STATES = ("pending", "running", "completed", "failed", "interrupted")


class SweepFolder:
    """sweep.json of a sweep folder: the command, the definition and every trial's status,
    config hash and run folder, rewritten atomically each time a trial starts or ends."""

    def __init__(self, path: Path, doc: dict[str, Any]):
        self.path = path
        self.doc = doc

    @classmethod
    def create(cls, path: Path, definition: Definition, trials: list[Trial], argv: list[str],
               metrics: list[str], jobs: int, threads: int) -> SweepFolder:
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
            "sessions": [_session(argv, jobs)],
            "counts": {},
            "trials": [{"index": t.index, "params": t.params, "hash": t.hash,
                        "run_dir": t.dirname, "status": "pending", "error": None,
                        "seconds": None, "attempts": 0, "worker_pid": None}
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
        return cls(path, doc)

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
        run_dir = self.path / entry["run_dir"]
        info = files.read_json_or_none(run_dir / "run.json")
        env = files.read_json_or_none(run_dir / "env.json") or {}
        done = (info is not None and info.get("status") == "completed"
                and (run_dir / "metrics.json").is_file() and env.get("torch_threads") == threads)
        if done and entry["status"] != "completed":
            entry.update(status="completed", error=None)
        return done

    def reset_trial(self, index: int) -> Path:
        """Mark a trial pending and remove a failed or interrupted attempt's folder (its
        results are not trusted); returns the trial's run folder path."""
        import shutil

        path = self.path / self.trials[index]["run_dir"]
        if path.exists():
            shutil.rmtree(path)
        self.update(index, status="pending", error=None)
        return path

    def counts(self) -> dict[str, int]:
        out = {s: 0 for s in TRIAL_STATES}
        for t in self.trials:
            out[t["status"]] += 1
        return {"total": len(self.trials), **out}

    def update(self, index: int, **fields: Any) -> None:
        entry = self.trials[index]
        entry.update(fields)
        if fields.get("status") == "running":
            entry["attempts"] += 1
        self.write()

    def resumed(self, argv: list[str], jobs: int) -> None:
        """Record a new session (--resume) and mark the sweep running again."""
        last = (self.doc.get("sessions") or [{}])[-1]
        if self.doc.get("status") == "running" and procs.alive(last):
            raise RunFolderError(f"{self.path}: this sweep is still running (pid "
                                 f"{last['pid']} on {last['host']}); wait for it or stop it "
                                 f"first")
        self.doc["sessions"].append(_session(argv, jobs))
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
        self.doc["counts"] = self.counts()
        files.write_atomic(self.path / "sweep.json", files.dumps(self.doc))

    def completed_metrics(self) -> list[dict[str, Any]]:
        """Every trial entry plus `metrics` (its metrics.json, or None when not completed)."""
        out = []
        for t in self.trials:
            doc = (files.read_json_or_none(self.path / t["run_dir"] / "metrics.json")
                   if t["status"] == "completed" else None)
            out.append({**t, "metrics": doc})
        return out


def _session(argv: list[str], jobs: int) -> dict[str, Any]:
    return {"started": files.now(), "command": _command(argv), "jobs": jobs,
            **procs.identity()}


def _command(argv: list[str]) -> str:
    import shlex

    return shlex.join(["lnexp", *argv[1:]])
