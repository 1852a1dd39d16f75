"""Export run, compare and sweep folders to MLflow (`pip install 'lnexp[mlflow]'`).

Each run folder becomes one MLflow run: the flattened config as params, lnexp's headline
metrics under their lnexp names (lnexp.export.describe; the full detail, per-block lists
included, is the metrics.json artifact), history.csv as step metrics (step = training step),
MLflow's system tags (user, source, git commit, the verdict as the description), and
metrics.json, config.yaml, stats.csv, env.json, history.csv, report.html and the figures as
artifacts. A compare or sweep folder becomes a parent run (its params without the base values
it ignores or sweeps) with one nested child per norm or trial, named by what differs
(`rms n=256 seed=2`) and, for a trial, lasting the seconds sweep.json measured.

Re-export is idempotent: every run carries the tag `lnexp.run_id` (the folder's path from its
name folder, e.g. `default/20261125-223533-5752c5` or `default-sweep/<id>/t007-bn_8_1`) and
`lnexp.status`; a folder already exported with the same status is left alone, one whose status
changed (a resumed sweep, a finished run) replaces its old MLflow run.

Where: `tracking_uri` (--tracking-uri), else MLFLOW_TRACKING_URI, else
`sqlite:///<output dir>/mlflow.db`; for a local store the artifacts go next to the database
(`<dir>/mlartifacts`), not into MLflow's default `./mlruns` under the current folder.

`import mlflow` takes about 2 s, so it happens only inside `export()`. MLflow's telemetry is
turned off unless MLFLOW_DISABLE_TELEMETRY is set (lnexp runs offline, e.g. in CI).
"""

from __future__ import annotations

import csv
import io
import json
import logging
import os
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from lnexp.errors import ExportError
from lnexp.export import describe
from lnexp.export.describe import flatten, params_of
from lnexp.export.store import check_store, export_lock

DEFAULT_EXPERIMENT = "lnexp"
DB_NAME = "mlflow.db"
ID_TAG = "lnexp.run_id"
STATUS_TAG = "lnexp.status"
DONE_TAG = "lnexp.exported"  # set last: a run without it was cut off mid-export
PARENT_TAG = "mlflow.parentRunId"
# Per-call limits of MLflow's log_batch.
MAX_METRICS, MAX_PARAMS = 1000, 100
MAX_PARAM_LENGTH = describe.MAX_PARAM_LENGTH
MLFLOW_STATUS = {"completed": "FINISHED", "partial": "FINISHED", "failed": "FAILED",
                 "interrupted": "KILLED", "running": "RUNNING"}
RUN_ARTIFACTS = ("metrics.json", "config.yaml", "stats.csv", "env.json", "history.csv")
PARENT_ARTIFACTS = {"compare": ("comparison.json", "comparison.csv", "comparison.png",
                                "norm_axes.png", "layers.png", "config.yaml", "env.json"),
                    "sweep": ("sweep.json", "summary.csv", "summary.png")}
REPORT = "report.html"  # written fresh from the folder at export (MLflow shows HTML artifacts)


@dataclass
class Exported:
    """What happened to one folder: `created`, `replaced` (its status changed since the last
    export) or `unchanged` (already exported, left alone)."""

    folder: Path
    kind: str
    lnexp_id: str
    mlflow_run_id: str
    action: str
    children: list[Exported] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {"folder": str(self.folder), "kind": self.kind, "lnexp_run_id": self.lnexp_id,
                "mlflow_run_id": self.mlflow_run_id, "action": self.action,
                "children": [c.as_dict() for c in self.children]}


# --------------------------------------------------------------------------- pure helpers

def tracking_uri(option: str | None, output_dir: str | Path,
                 environ: Mapping[str, str] = os.environ) -> str:
    """--tracking-uri, else MLFLOW_TRACKING_URI, else a sqlite file in the output folder."""
    if option:
        return option
    if environ.get("MLFLOW_TRACKING_URI"):
        return environ["MLFLOW_TRACKING_URI"]
    return "sqlite:///" + str((Path(output_dir) / DB_NAME).resolve())


def artifact_root(uri: str) -> str | None:
    """Where a local store keeps artifacts (`<db folder>/mlartifacts`, as a file URI); None
    for a server, which decides itself."""
    if uri.startswith("sqlite:///"):
        return (Path(uri[len("sqlite:///"):]).parent / "mlartifacts").resolve().as_uri()
    return None


def lnexp_id(folder: Path) -> str:
    """The folder's identity: its path from the name folder, e.g. `default/<ts>-<id>` or
    `default-compare/<ts>-<id>/bn` (the same wherever the output folder is moved)."""
    folder = folder.resolve()
    parts = [folder.name]
    parent = folder.parent
    while (parent / "run.json").is_file():  # a norm of a compare, a trial of a sweep
        parts.append(parent.name)
        parent = parent.parent
    parts.append(parent.name)
    return "/".join(reversed(parts))


def history_of(path: Path) -> dict[str, list[tuple[int, float]]]:
    """history.csv as {column: [(step, value), ...]}, empty cells skipped."""
    out: dict[str, list[tuple[int, float]]] = {}
    from lnexp.store import reading

    try:
        text = reading.read_text(path)
    except reading.MissingFile:
        return out
    try:
        for row in csv.DictReader(io.StringIO(text, newline="")):
            step = int(row.pop("step"))
            for key, cell in row.items():
                if cell not in ("", None):
                    out.setdefault(key, []).append((step, float(cell)))
    except (ValueError, TypeError, KeyError, csv.Error) as exc:  # not a number, no step
        raise reading.UnreadableFile(path, f"not the CSV lnexp writes ({exc})") from None
    return out


def _millis(stamp: Any) -> int | None:
    """run.json's `2026-11-25T22:35:33+0000` in ms since the epoch."""
    if not isinstance(stamp, str):
        return None
    try:
        return int(datetime.strptime(stamp, "%Y-%m-%dT%H:%M:%S%z").timestamp() * 1000)
    except ValueError:
        return None


def _read_json(path: Path) -> dict[str, Any]:
    """A document of the folder through lnexp's one bounded reader ({} when absent);
    "cannot read FILE: why" (exit 2) when it is unreadable or not of the expected shape."""
    from lnexp.store import reading

    return reading.read_json_or_none(path) or {}


def folder_kind(folder: Path) -> str:
    """run, compare or sweep, from run.json; ExportError for anything else."""
    info = _read_json(folder / "run.json")
    kind = info.get("kind")
    if not folder.is_dir():
        raise ExportError(f"{folder}: no such folder")
    if kind not in ("run", "compare", "sweep"):
        what = f"a {kind!r} folder" if kind else "not an lnexp folder (no run.json)"
        raise ExportError(f"{folder}: {what}; lnexp export mlflow takes run, compare and sweep "
                          f"folders, e.g. outputs/default/<timestamp>-<id>")
    return str(kind)


# --------------------------------------------------------------------------- MLflow

def _import_mlflow() -> Any:
    os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
    try:
        from mlflow.tracking import MlflowClient
    except ImportError:
        raise ExportError("MLflow is not installed; install it with: "
                          "pip install 'lnexp[mlflow]'") from None
    # Creating a sqlite store logs each schema migration at INFO; a CLI prints its own lines.
    for name in ("mlflow", "alembic"):
        logging.getLogger(name).setLevel(logging.WARNING)
    return MlflowClient


class _Exporter:
    def __init__(self, client: Any, experiment_id: str):
        self.client = client
        self.experiment_id = experiment_id
        self.known = self._known_runs()

    def _known_runs(self) -> dict[str, Any]:
        """Every run of the experiment with an lnexp id, by that id (one query, paged)."""
        found: dict[str, Any] = {}
        token = None
        while True:
            page = self.client.search_runs([self.experiment_id],
                                           filter_string=f"tags.`{ID_TAG}` != ''",
                                           max_results=1000, page_token=token)
            for run in page:
                found.setdefault(run.data.tags[ID_TAG], run)
            token = page.token
            if not token:
                return found

    def _existing(self, ident: str, status: str) -> tuple[Any | None, str]:
        """(the run to keep or None, the action)."""
        old = self.known.get(ident)
        if old is None:
            return None, "created"
        tags = old.data.tags
        if tags.get(DONE_TAG) == "true" and tags.get(STATUS_TAG) == status:
            return old, "unchanged"
        self.client.delete_run(old.info.run_id)
        return None, "replaced"

    def _log(self, run_id: str, params: dict[str, str], scalars: dict[str, float],
             steps: dict[str, list[tuple[int, float]]], stamp: int) -> None:
        from mlflow.entities import Metric, Param

        metrics = [Metric(k, v, stamp, 0) for k, v in scalars.items()]
        metrics += [Metric(k, v, stamp, s) for k, pairs in steps.items() for s, v in pairs]
        plist = [Param(k, v) for k, v in params.items()]
        for i in range(0, len(plist), MAX_PARAMS):
            self.client.log_batch(run_id, params=plist[i:i + MAX_PARAMS])
        for i in range(0, len(metrics), MAX_METRICS):
            self.client.log_batch(run_id, metrics=metrics[i:i + MAX_METRICS])

    def _artifacts(self, run_id: str, folder: Path, names: tuple[str, ...]) -> None:
        # Only regular files of the folder itself: a symlink could point anywhere.
        for name in names:
            if (folder / name).is_file() and not (folder / name).is_symlink():
                self.client.log_artifact(run_id, str(folder / name))
        from lnexp.store.reading import child_folder

        figures = child_folder(folder, "figures")
        for png in sorted(figures.glob("*.png")) if figures else []:
            if not png.is_symlink():
                self.client.log_artifact(run_id, str(png), "figures")
        self._report(run_id, folder)

    def _report(self, run_id: str, folder: Path) -> None:
        """The folder's `lnexp report` page, made now (the folder is not written to)."""
        import tempfile

        from lnexp import report

        page = report.to_html(report.read_folder(folder))
        with tempfile.TemporaryDirectory(prefix="lnexp-export-") as tmp:
            (Path(tmp) / REPORT).write_text(page, encoding="utf-8")
            self.client.log_artifact(run_id, str(Path(tmp) / REPORT))

    def _start(self, folder: Path, kind: str, info: dict[str, Any], name: str,
               parent: str | None, extra_tags: dict[str, str]) -> str:
        env = _read_json(folder / "env.json") or _first_env(folder, kind)
        tags = {ID_TAG: lnexp_id(folder), STATUS_TAG: str(info.get("status")),
                "lnexp.kind": kind, "lnexp.folder": str(folder.resolve()),
                **describe.system_tags(folder, info, env), **extra_tags}
        if parent:
            tags[PARENT_TAG] = parent
        run = self.client.create_run(self.experiment_id, run_name=name, tags=tags,
                                     start_time=_millis(info.get("started")))
        return str(run.info.run_id)

    def _finish(self, run_id: str, info: dict[str, Any], seconds: Any = None) -> None:
        """Done: the status, and the end time (`seconds` after the start when sweep.json
        measured them, else run.json's 1-second timestamp)."""
        self.client.set_tag(run_id, DONE_TAG, "true")
        end = _millis(info.get("finished"))
        start = _millis(info.get("started"))
        if isinstance(seconds, int | float) and not isinstance(seconds, bool) and start:
            end = start + round(seconds * 1000)
        self.client.set_terminated(run_id, MLFLOW_STATUS.get(str(info.get("status")), "FAILED"),
                                   end_time=end)

    def run(self, folder: Path, parent: str | None = None, name: str | None = None,
            seconds: Any = None, extra: tuple[str, ...] = ()) -> Exported:
        """One run folder (a plain run, a norm of a compare or a trial of a sweep): `name`
        says what differs from its siblings, `seconds` is its measured duration, `extra` the
        metrics its sweep summarises."""
        info = _read_json(folder / "run.json")
        ident = lnexp_id(folder)
        old, action = self._existing(ident, str(info.get("status")))
        if old is not None:
            if parent and old.data.tags.get(PARENT_TAG) != parent:
                self.client.set_tag(old.info.run_id, PARENT_TAG, parent)
            return Exported(folder, "run", ident, old.info.run_id, action)
        doc = _read_json(folder / "metrics.json")
        config = doc.get("config") or {}
        norm = str((config.get("model") or {}).get("norm", ""))
        tags = {"lnexp.norm": norm} if norm else {}
        results = doc.get("expectations") or []
        if results:
            failed = sum(not r.get("passed") for r in results)
            tags["lnexp.expectations"] = (f"{failed} of {len(results)} failed" if failed
                                          else f"all {len(results)} passed")
        name = name or describe.run_name(config, folder)
        run_id = self._start(folder, "run", info, name, parent, tags)
        steps = history_of(folder / "history.csv")
        stamp = _millis(info.get("finished")) or int(time.time() * 1000)
        self._log(run_id, params_of(config), describe.headline_metrics(doc, extra), steps, stamp)
        self._artifacts(run_id, folder, RUN_ARTIFACTS)
        self._finish(run_id, info, seconds)
        return Exported(folder, "run", ident, run_id, action)

    def parent(self, folder: Path, kind: str) -> Exported:
        """A compare or sweep folder and its children."""
        info = _read_json(folder / "run.json")
        ident = lnexp_id(folder)
        old, action = self._existing(ident, str(info.get("status")))
        run_id = old.info.run_id if old is not None else self._parent_run(folder, kind, info)
        children = [self.run(child, parent=run_id, **about)
                    for child, about in _children_about(folder, kind)]
        if old is None:
            self._finish(run_id, info)
        return Exported(folder, kind, ident, run_id, action, children)

    def _parent_run(self, folder: Path, kind: str, info: dict[str, Any]) -> str:
        """The parent's params are what its children share: a compare's base config without
        model.norm (compare sets it per norm), a sweep's without the keys its grid sweeps
        (those are `sweep.grid.KEY`); its metrics are the counts."""
        stamp = _millis(info.get("finished")) or int(time.time() * 1000)
        if kind == "compare":
            doc = _read_json(folder / "comparison.json")
            config = doc.get("config") or {}
            params = params_of(describe.without(config, ["model.norm"]))
            norms = [str(n) for n in doc.get("norm_order") or []]
            params["compare.norms"] = ",".join(norms)
            entries = [n for n in doc.get("norms") or [] if isinstance(n, dict)]
            scalars = {"counts.total": float(len(entries)),
                       "counts.completed": float(sum(n.get("status") == "completed"
                                                     for n in entries))}
            name = f"{config.get('name', '')} compare: {', '.join(norms)}"
        else:
            doc = _read_json(folder / "sweep.json")
            definition = doc.get("definition") or {}
            config = definition.get("base") or {}
            swept = [str(k) for k in doc.get("keys") or []]
            params = params_of(describe.without(config, swept))
            for axis in definition.get("grid") or []:
                for key, values in flatten(axis.get("zip", axis)):
                    params[f"sweep.grid.{key}"] = json.dumps(values)[:MAX_PARAM_LENGTH]
            params["sweep.metrics"] = ",".join(map(str, doc.get("metrics") or []))
            scalars = {f"counts.{k}": float(v) for k, v in (doc.get("counts") or {}).items()}
            total = (doc.get("counts") or {}).get("total", len(doc.get("trials") or []))
            name = f"{config.get('name', '')} sweep: {' × '.join(swept)} ({total} trials)"
        run_id = self._start(folder, kind, info, name, None, {})
        self._log(run_id, params, scalars, {}, stamp)
        self._artifacts(run_id, folder, PARENT_ARTIFACTS[kind])
        return run_id


def _first_env(folder: Path, kind: str) -> dict[str, Any]:
    """A sweep has no env.json of its own: its first trial's."""
    if kind != "sweep":
        return {}
    for child, _ in _children_about(folder, kind):
        env = _read_json(child / "env.json")
        if env:
            return env
    return {}


def _children_about(folder: Path, kind: str) -> list[tuple[Path, dict[str, Any]]]:
    """Each child folder with what its MLflow run needs from the parent's document: its name
    (the norm, or the trial's grid values), its measured seconds, the sweep's metrics."""
    from lnexp.store.reading import child_folder

    if kind == "compare":
        doc = _read_json(folder / "comparison.json")
        entries = [(n.get("run_dir"), {"name": str(n.get("name") or n.get("run_dir"))})
                   for n in doc.get("norms") or [] if isinstance(n, dict)]
    else:
        doc = _read_json(folder / "sweep.json")
        extra = tuple(str(m) for m in doc.get("metrics") or [])
        entries = [(t.get("run_dir"), {"name": describe.trial_name(t.get("params") or {}),
                                        "seconds": t.get("seconds"), "extra": extra})
                   for t in doc.get("trials") or [] if isinstance(t, dict)]
    out = []
    for name, about in entries:
        child = child_folder(folder, name) if name else None
        if child is not None and (child / "run.json").is_file():
            out.append((child, about))
    return out


def _children(folder: Path, kind: str) -> list[Path]:
    """A compare's norm folders (in its order) or a sweep's trial folders (by index)."""
    return [child for child, _ in _children_about(folder, kind)]


def export(folders: list[Path], uri: str, experiment: str = DEFAULT_EXPERIMENT
           ) -> list[Exported]:
    """Export each folder into `experiment` of the store at `uri`; every folder is checked
    before anything is written."""
    kinds = [folder_kind(Path(f)) for f in folders]
    check_store(uri)
    client_cls = _import_mlflow()
    with export_lock(uri, experiment):
        return _export(client_cls, folders, kinds, uri, experiment)


def _export(client_cls: Any, folders: list[Path], kinds: list[str], uri: str,
            experiment: str) -> list[Exported]:
    try:
        client = client_cls(tracking_uri=uri)
        found = client.get_experiment_by_name(experiment)
        if found is None:
            experiment_id = client.create_experiment(experiment,
                                                     artifact_location=artifact_root(uri))
        else:
            experiment_id = found.experiment_id
    except Exception as exc:  # MLflow raises many types for an unreachable or bad store
        raise ExportError(f"MLflow tracking store {uri}: {type(exc).__name__}: "
                          f"{str(exc).splitlines()[0] if str(exc) else ''}") from None
    exporter = _Exporter(client, experiment_id)
    return [exporter.run(Path(f)) if k == "run" else exporter.parent(Path(f), k)
            for f, k in zip(folders, kinds, strict=True)]
