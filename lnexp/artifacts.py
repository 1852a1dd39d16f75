"""Run folders and the files in them: metrics.json (the stable contract), stats.csv, figures.

Every file is written atomically (a temp file in the same folder, then os.replace), and a run
folder is created exclusively (os.mkdir fails if it exists), so two runs never share one.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import io
import json
import math
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

import numpy as np

from lnexp import __version__, config, expect, explain
from lnexp.errors import OutputError, RunFolderError

if TYPE_CHECKING:  # stats imports torch; `lnexp check` reads run folders without it
    from lnexp.stats import AxisStats, SampleStats, StageStats, Verdict

SCHEMA_VERSION = 1


# --------------------------------------------------------------------------- JSON contract

def _num(x: float) -> float | None:
    """JSON has no NaN/Inf: they become null."""
    x = float(x)
    return x if math.isfinite(x) else None


def _nums(a: np.ndarray) -> list[float | None]:
    return [_num(v) for v in np.asarray(a, dtype=np.float64).tolist()]


def _spread(a: np.ndarray) -> dict[str, float | None]:
    with np.errstate(invalid="ignore"):
        return {"min": _num(np.min(a)), "max": _num(np.max(a)), "mean": _num(np.mean(a))}


def axis_dict(s: AxisStats) -> dict[str, Any]:
    """One axis: lists with one value per feature/sample, plus their min/max/mean."""
    return {
        "count": s.count,
        "mean": _nums(s.mean),
        "var": _nums(s.var),
        "var_unbiased": _nums(s.var_unbiased),
        "std": _nums(s.std),
        "summary": {k: _spread(getattr(s, k)) for k in ("mean", "var", "var_unbiased", "std")},
    }


def stage_dict(s: StageStats) -> dict[str, Any]:
    """One stage (pre_norm or post_norm)."""
    g = s.global_
    return {
        "per_feature": axis_dict(s.per_feature),
        "per_sample": axis_dict(s.per_sample),
        "global": {k: (_num(v) if isinstance(v, float) else v) for k, v in vars(g).items()},
    }


def sample_dict(s: SampleStats) -> dict[str, Any]:
    return {"mean": _num(s.mean), "var": _num(s.var), "var_unbiased": _num(s.var_unbiased),
            "std": _num(s.std), "values": _nums(s.values)}


def verdict_dict(v: Verdict) -> dict[str, Any]:
    return {"standardized": v.standardized, "centred": v.centred,
            "unit_variance": v.unit_variance, "mean_abs_max": _num(v.mean_abs_max),
            "var_min": _num(v.var_min), "var_max": _num(v.var_max), "tolerance": v.tolerance}


def metrics(result: Any) -> dict[str, Any]:
    """The metrics.json document for a RunResult (see README, "metrics.json contract")."""
    cfg = result.config
    doc = {
        "schema_version": SCHEMA_VERSION,
        "kind": "run",
        "lnexp_version": __version__,
        "config": config.to_dict(cfg),
        "norm": {"name": result.norm.name, "title": result.norm.title,
                 "summary": result.norm.summary},
        "shape": {"n_samples": cfg.data.n_samples, "features": cfg.features},
        "labels": {
            "per_feature": "one value per feature, over the samples (dim 0)",
            "per_sample": "one value per sample, over its features (dim 1)",
            "var": "biased variance (divide by n), what the norm layers use",
            "var_unbiased": "unbiased variance (divide by n-1), torch.var's default; null if n<2",
            "std": "sqrt(var), biased",
        },
        "stages": {"pre_norm": stage_dict(result.pre_stats),
                   "post_norm": stage_dict(result.post_stats)},
        "sample": {"index": cfg.sample_index, "pre_norm": sample_dict(result.sample_pre),
                   "post_norm": sample_dict(result.sample_post)},
        "verdict": {axis: verdict_dict(v) for axis, v in result.verdicts.items()},
        "numeric_trouble": result.numeric_trouble,
        "explanation": explain.lines(result),
    }
    # Evaluated on the document itself, exactly as `lnexp check` does on a saved file.
    doc["expectations"] = expect.evaluate(doc, config.expect_dict(cfg))
    return doc


def dumps(doc: dict[str, Any]) -> str:
    """Serialize a document the way every lnexp JSON file is written."""
    return json.dumps(doc, indent=2, allow_nan=False) + "\n"


def stats_csv(result: Any) -> str:
    """stats.csv: long format, one row per (stage, axis, index)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["stage", "axis", "index", "mean", "var", "var_unbiased", "std"])
    for stage, st in (("pre_norm", result.pre_stats), ("post_norm", result.post_stats)):
        for axis in ("per_feature", "per_sample"):
            a: AxisStats = getattr(st, axis)
            for i, row in enumerate(zip(a.mean, a.var, a.var_unbiased, a.std, strict=True)):
                w.writerow([stage, axis, i, *(repr(float(v)) for v in row)])
    return buf.getvalue()


def env_info(cfg: Any, argv: list[str]) -> dict[str, Any]:
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


def _git_commit() -> str | None:
    try:
        out = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                             timeout=5, cwd=Path(__file__).resolve().parent)
    except (OSError, subprocess.SubprocessError):
        return None
    return out.stdout.strip() or None if out.returncode == 0 else None


# --------------------------------------------------------------------------- files

def write_atomic(path: Path, data: str | bytes) -> None:
    """Write `data` to `path` via a temp file in the same folder and os.replace."""
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


def save_figure(fig: Any, path: Path, dpi: int) -> None:
    """Render a matplotlib Figure to PNG atomically."""
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi)
    write_atomic(path, buf.getvalue())


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
    interrupted ('partial' only for compare folders where some norm was not computed)."""

    def __init__(self, path: Path, kind: str, argv: list[str]):
        self.path = path
        self.info: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": kind,
                                     "status": "running", "argv": argv,
                                     "started": _now(), "finished": None, "error": None}
        self._final: tuple[str, str | None] = ("completed", None)
        self._write_status()

    def mark_partial(self, error: str) -> None:
        """End as 'partial' (some part was not computed) instead of 'completed' on success."""
        self._final = ("partial", error)

    def _write_status(self) -> None:
        write_atomic(self.path / "run.json", dumps(self.info))

    def finish(self, status: str, error: str | None = None) -> None:
        self.info.update(status=status, finished=_now(), error=error)
        self._write_status()

    @contextlib.contextmanager
    def tracking(self) -> Iterator[RunFolder]:
        """Mark the folder completed on success, interrupted on Ctrl-C, failed otherwise."""
        try:
            yield self
        except KeyboardInterrupt:
            self.finish("interrupted", "interrupted (Ctrl-C / SIGINT or SIGTERM)")
            raise
        except BaseException as exc:
            self.finish("failed", f"{type(exc).__name__}: {exc}")
            raise
        else:
            self.finish(*self._final)


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_run(result: Any, folder: RunFolder, argv: list[str]) -> dict[str, Any]:
    """Write config, env, stats and figures, then metrics.json last; returns the metrics."""
    cfg = result.config
    path = folder.path
    write_atomic(path / "config.yaml", config.to_yaml(cfg))
    write_atomic(path / "env.json", dumps(env_info(cfg, argv)))
    write_atomic(path / "stats.csv", stats_csv(result))
    if cfg.output.figures:
        from lnexp import plots

        (path / "figures").mkdir()
        for fig_name, make in plots.FIGURES.items():
            save_figure(make(result), path / "figures" / f"{fig_name}.png", cfg.output.dpi)
    doc = metrics(result)
    write_atomic(path / "metrics.json", dumps(doc))
    return doc


# --------------------------------------------------------------------------- compare

COMPARISON_CSV_STATS = ("mean", "var", "var_unbiased")


def _norm_entry(o: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {"name": o.name, "title": o.spec.title, "summary": o.spec.summary,
                             "expected_axis": o.spec.axis}
    if o.result is None:
        return {**entry, "status": "not_defined", "reason": o.reason, "run_dir": None,
                "standardizes": None, "per_feature": None, "per_sample": None,
                "global": None, "verdict": None}
    post = o.result.post_stats
    g = post.global_
    return {
        **entry,
        "status": "completed",
        "reason": None,
        "run_dir": o.name,  # relative to the compare folder; holds the usual run files
        "standardizes": o.standardizes,
        "per_feature": {k: _spread(getattr(post.per_feature, k)) for k in COMPARISON_CSV_STATS},
        "per_sample": {k: _spread(getattr(post.per_sample, k)) for k in COMPARISON_CSV_STATS},
        "global": {"mean": _num(g.mean), "var": _num(g.var), "rms": _num(g.rms),
                   "min": _num(g.min), "max": _num(g.max)},
        "verdict": {axis: verdict_dict(v) for axis, v in o.result.verdicts.items()},
    }


def comparison(cmp: Any) -> dict[str, Any]:
    """The comparison.json document for a CompareResult (post-norm statistics per norm)."""
    cfg = cmp.config
    return {
        "schema_version": SCHEMA_VERSION,
        "kind": "compare",
        "lnexp_version": __version__,
        "status": "completed" if cmp.complete else "partial",
        "config": config.to_dict(cfg),
        "norm_order": [o.name for o in cmp.outcomes],
        "shape": {"n_samples": cfg.data.n_samples, "features": cfg.features},
        "labels": {
            "per_feature": "after the norm, one value per feature over the samples (dim 0); "
                           "min/max/mean over the features",
            "per_sample": "after the norm, one value per sample over its features (dim 1); "
                          "min/max/mean over the samples",
            "var": "biased variance (divide by n), what the norm layers use",
            "var_unbiased": "unbiased variance (divide by n-1); null if n<2",
            "global": "over every value after the norm",
            "standardizes": "which axis has every |mean| <= tolerance and every "
                            "|var - 1| <= tolerance: features, samples, features and samples, "
                            "neither; null if not computed",
            "config": "the base config; each norm's run uses it with model.norm=<name>",
        },
        "axes": explain.AXES.format(n=cfg.data.n_samples, c=cfg.features),
        "norms": [{**_norm_entry(o), "explanation": lines}
                  for o, (_, lines) in zip(cmp.outcomes, explain.compare_lines(cmp), strict=True)],
    }


def comparison_csv(doc: dict[str, Any]) -> str:
    """comparison.csv: one row per norm, the comparison.json numbers flattened."""
    header = ["norm", "title", "status", "standardizes"]
    for axis in ("per_feature", "per_sample"):
        for stat in COMPARISON_CSV_STATS:
            header += [f"{axis}_{stat}_min", f"{axis}_{stat}_max"]
    header += ["global_mean", "global_var", "global_rms", "global_min", "global_max",
               "per_feature_standardized", "per_sample_standardized", "run_dir", "reason"]
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(header)

    def cell(v: Any) -> str:
        return "" if v is None else repr(v) if isinstance(v, float) else str(v)

    for e in doc["norms"]:
        row = [e["name"], e["title"], e["status"], e["standardizes"]]
        for axis in ("per_feature", "per_sample"):
            for stat in COMPARISON_CSV_STATS:
                spread = (e[axis] or {}).get(stat) or {}
                row += [spread.get("min"), spread.get("max")]
        g = e["global"] or {}
        row += [g.get(k) for k in ("mean", "var", "rms", "min", "max")]
        v = e["verdict"] or {}
        row += [(v.get(a) or {}).get("standardized") for a in ("per_feature", "per_sample")]
        row += [e["run_dir"], e["reason"]]
        w.writerow([cell(x) for x in row])
    return buf.getvalue()


def write_compare(cmp: Any, folder: RunFolder, argv: list[str]) -> dict[str, Any]:
    """Write one run folder per computed norm (same files as `lnexp run`), then the
    comparison figure, comparison.csv and comparison.json last; returns the document."""
    path = folder.path
    for o in cmp.outcomes:
        if o.result is None:
            continue
        (path / o.name).mkdir()
        with RunFolder(path / o.name, "run", argv).tracking() as sub:
            write_run(o.result, sub, argv)
    write_atomic(path / "config.yaml", config.to_yaml(cmp.config))
    write_atomic(path / "env.json", dumps(env_info(cmp.config, argv)))
    if cmp.config.output.figures:
        from lnexp import plots

        save_figure(plots.comparison(cmp), path / "comparison.png", cmp.config.output.dpi)
    doc = comparison(cmp)
    write_atomic(path / "comparison.csv", comparison_csv(doc))
    write_atomic(path / "comparison.json", dumps(doc))
    return doc


def read_completed_run(run_dir: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """(run.json, metrics.json) of a run folder whose status is completed; RunFolderError
    (exit 2) for anything a CI script should not trust."""
    if not run_dir.exists():
        raise RunFolderError(f"{run_dir}: no such folder")
    if not run_dir.is_dir():
        raise RunFolderError(f"{run_dir}: not a folder; expected a run folder "
                             f"(OUTPUT_DIR/<name>/<timestamp>-<id>/)")
    info = _read_json(run_dir / "run.json", "run.json", run_dir)
    status = info.get("status")
    if status != "completed":
        why = f" ({info['error']})" if info.get("error") else ""
        raise RunFolderError(
            f"{run_dir}: run status is {status!r}{why}, not 'completed'; its results are "
            f"incomplete and cannot be checked - rerun it")
    if info.get("kind") != "run":
        raise RunFolderError(f"{run_dir}: lnexp check reads folders of `lnexp run`, this one "
                             f"is of kind {info.get('kind')!r}")
    doc = _read_json(run_dir / "metrics.json", "metrics.json", run_dir)
    if doc.get("schema_version") != SCHEMA_VERSION:
        raise RunFolderError(f"{run_dir}: metrics.json schema_version "
                             f"{doc.get('schema_version')!r}, this lnexp reads {SCHEMA_VERSION}")
    return info, doc


def _read_json(path: Path, what: str, run_dir: Path) -> dict[str, Any]:
    if not path.is_file():
        raise RunFolderError(f"{run_dir}: no {what}; not a completed lnexp run folder")
    try:
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise RunFolderError(f"{run_dir}: {what} cannot be read ({exc})") from None
    if not isinstance(doc, dict):
        raise RunFolderError(f"{run_dir}: {what} is not a JSON object")
    return doc


# --------------------------------------------------------------------------- sweeps

TRIAL_STATES = ("pending", "running", "completed", "failed", "interrupted")


class SweepFolder:
    """sweep.json of a sweep folder: the command, the definition and every trial's status,
    config hash and run folder, rewritten atomically each time a trial starts or ends."""

    def __init__(self, path: Path, doc: dict[str, Any]):
        self.path = path
        self.doc = doc

    @classmethod
    def create(cls, path: Path, definition: Any, trials: list[Any], argv: list[str],
               metrics: list[str], jobs: int) -> SweepFolder:
        doc = {
            "schema_version": SCHEMA_VERSION,
            "kind": "sweep",
            "lnexp_version": __version__,
            "status": "running",
            "command": _command(argv),
            "argv": argv,
            "source": definition.source,
            "started": _now(),
            "finished": None,
            "definition": definition.as_dict(),
            "definition_hash": definition.hash,
            "keys": definition.keys,
            "group_keys": definition.group_keys,
            "metrics": list(metrics),
            "jobs": jobs,
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
        doc = _read_json(path / "sweep.json", "sweep.json", path)
        if doc.get("kind") != "sweep" or not isinstance(doc.get("trials"), list):
            raise RunFolderError(f"{path}: sweep.json is not an lnexp sweep document")
        if doc.get("schema_version") != SCHEMA_VERSION:
            raise RunFolderError(f"{path}: sweep.json schema_version "
                                 f"{doc.get('schema_version')!r}, this lnexp reads "
                                 f"{SCHEMA_VERSION}")
        return cls(path, doc)

    @property
    def trials(self) -> list[dict[str, Any]]:
        return self.doc["trials"]

    def trial_done(self, entry: dict[str, Any]) -> bool:
        """Completed in sweep.json and in its own run.json (the folder is the truth)."""
        if entry["status"] != "completed":
            return False
        try:
            info = json.loads((self.path / entry["run_dir"] / "run.json").read_text())
        except (OSError, ValueError):
            return False
        return info.get("status") == "completed" and (
            self.path / entry["run_dir"] / "metrics.json").is_file()

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
        if self.doc.get("status") == "running" and _alive(last):
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
        self.doc.update(status=status, finished=_now())
        if summary is not None:
            self.doc["summary"] = summary
        self.write()

    def write(self) -> None:
        self.doc["counts"] = self.counts()
        write_atomic(self.path / "sweep.json", dumps(self.doc))

    def completed_metrics(self) -> list[dict[str, Any]]:
        """Every trial entry plus `metrics` (its metrics.json, or None when not completed)."""
        out = []
        for t in self.trials:
            doc = None
            if t["status"] == "completed":
                try:
                    doc = json.loads((self.path / t["run_dir"] / "metrics.json").read_text())
                except (OSError, ValueError):
                    doc = None
            out.append({**t, "metrics": doc})
        return out


def _session(argv: list[str], jobs: int) -> dict[str, Any]:
    return {"started": _now(), "command": _command(argv), "jobs": jobs, "pid": os.getpid(),
            "host": platform.node()}


def _alive(session: dict[str, Any]) -> bool:
    """Is the process of this session still running (on this host)?"""
    pid = session.get("pid")
    if not isinstance(pid, int) or session.get("host") != platform.node():
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _command(argv: list[str]) -> str:
    import shlex

    return shlex.join(["lnexp", *argv[1:]])


def summary_rows(groups: list[Any], group_keys: list[str], metrics: list[str]
                 ) -> list[dict[str, Any]]:
    """The summary as plain data (sweep.json `summary`, --json): one row per group."""
    rows = []
    for g in groups:
        row: dict[str, Any] = {**{k: g.params[k] for k in group_keys},
                               "completed": g.completed, "failed": g.failed,
                               "trials": g.trials}
        row["metrics"] = {m: {"mean": _opt(g.stats[m].mean), "std": _opt(g.stats[m].std),
                              "n": g.stats[m].n} for m in metrics}
        rows.append(row)
    return rows


def _opt(x: float | None) -> float | None:
    return None if x is None else _num(x)


def summary_csv(rows: list[dict[str, Any]], group_keys: list[str], metrics: list[str]) -> str:
    """summary.csv: one row per combination of the non-seed keys; per metric mean, std
    (over seeds, n - 1) and n (finite values)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow([*group_keys, "completed", "failed",
                *[f"{m}.{s}" for m in metrics for s in ("mean", "std", "n")]])

    def cell(v: Any) -> str:
        if v is None:
            return ""
        if isinstance(v, float):
            return repr(v)
        if isinstance(v, bool):
            return "true" if v else "false"
        return v if isinstance(v, str) else json.dumps(v)

    for r in rows:
        w.writerow([cell(r[k]) for k in group_keys] + [r["completed"], r["failed"]]
                   + [cell(r["metrics"][m][s]) for m in metrics for s in ("mean", "std", "n")])
    return buf.getvalue()
