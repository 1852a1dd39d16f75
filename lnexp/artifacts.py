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
import traceback
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from lnexp import __version__, config, expect, explain, plan
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


AXIS_STATS = ("mean", "var", "var_unbiased", "std")


def axis_dict(s: AxisStats, lists: bool = True) -> dict[str, Any]:
    """One axis: lists with one value per feature/sample (null when `lists` is false), plus
    their min/max/mean in `summary`."""
    return {
        "count": s.count,
        **{k: _nums(getattr(s, k)) if lists else None for k in AXIS_STATS},
        "summary": {k: _spread(getattr(s, k)) for k in AXIS_STATS},
    }


def per_sample_lists(cfg: Any) -> bool:
    """Whether per-sample lists are written (n_samples <= output.per_sample_limit)."""
    return bool(cfg.data.n_samples <= cfg.output.per_sample_limit)


def stage_dict(s: StageStats, sample_lists: bool = True) -> dict[str, Any]:
    """One stage (pre_norm or post_norm)."""
    g = s.global_
    return {
        "per_feature": axis_dict(s.per_feature),
        "per_sample": axis_dict(s.per_sample, sample_lists),
        "global": {k: (_num(v) if isinstance(v, float) else v) for k, v in vars(g).items()},
    }


def sample_dict(s: SampleStats) -> dict[str, Any]:
    return {"mean": _num(s.mean), "var": _num(s.var), "var_unbiased": _num(s.var_unbiased),
            "std": _num(s.std), "values": _nums(s.values)}


def verdict_dict(v: Verdict) -> dict[str, Any]:
    return {"standardized": v.standardized, "centred": v.centred,
            "unit_variance": v.unit_variance, "mean_abs_max": _num(v.mean_abs_max),
            "var_min": _num(v.var_min), "var_max": _num(v.var_max), "tolerance": v.tolerance}


def layers_dict(layers: Any) -> dict[str, Any]:
    """Per-layer statistics at initialization (depth > 1)."""
    return {
        "loss": "mean over all N x C entries of (output - target)^2, target ~ N(0, 1) drawn "
                "after the data",
        "loss_value": _num(layers.loss),
        "names": list(layers.names),
        "activation_mean": _nums(layers.mean),
        "activation_std": _nums(layers.std),
        "grad_norm": _nums(layers.grad_norm),
        "weight_norm": _nums(layers.weight_norm),
        "grad_norm_first_over_last": _num(layers.first_over_last),
    }


def _opt(x: float | None) -> float | None:
    return None if x is None else _num(x)


def _eval_dict(e: Any) -> dict[str, Any]:
    return {"step": e.step,
            "eval_mode": {"loss": _num(e.loss_eval_mode), "accuracy": _opt(e.acc_eval_mode)},
            "train_mode": {"loss": _num(e.loss_train_mode),
                           "accuracy": _opt(e.acc_train_mode)}}


def training_dict(tr: Any) -> dict[str, Any]:
    """Training results: the last evaluation, every evaluation, per-layer means over steps."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # means of an empty history are NaN
        tail = np.mean(tr.loss[-max(1, len(tr.loss) // 10):])
        grad_mean = np.mean(tr.grad_norm, axis=0)
        ratio_mean = np.mean(tr.update_ratio, axis=0)
    return {
        "loss": tr.loss_name,
        "steps_done": tr.steps_done,
        "interrupted": tr.interrupted,
        "diverged": tr.diverged,
        "layers": list(tr.layer_names),
        "final": {"train_loss_last_10pct": _num(tail),
                  "heldout": _eval_dict(tr.evals[-1])},
        "evals": [_eval_dict(e) for e in tr.evals],
        "grad_norm_mean": _nums(grad_mean),
        "update_ratio_mean": _nums(ratio_mean),
    }


def metrics(result: Any) -> dict[str, Any]:
    """The metrics.json document for a RunResult (see README, "metrics.json contract")."""
    cfg = result.config
    extra: dict[str, Any] = {}
    if result.layers is not None:
        extra["layers"] = layers_dict(result.layers)
    if result.training is not None:
        extra["training"] = training_dict(result.training)
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
        "stages": {"pre_norm": stage_dict(result.pre_stats, per_sample_lists(cfg)),
                   "post_norm": stage_dict(result.post_stats, per_sample_lists(cfg))},
        "sample": {"index": cfg.sample_index, "pre_norm": sample_dict(result.sample_pre),
                   "post_norm": sample_dict(result.sample_post)},
        "verdict": {axis: verdict_dict(v) for axis, v in result.verdicts.items()},
        "numeric_trouble": result.numeric_trouble,
        "explanation": explain.lines(result),
        **extra,
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
    axes = ("per_feature", "per_sample") if per_sample_lists(result.config) else (
        "per_feature",)
    for stage, st in (("pre_norm", result.pre_stats), ("post_norm", result.post_stats)):
        for axis in axes:
            a: AxisStats = getattr(st, axis)
            for i, row in enumerate(zip(a.mean, a.var, a.var_unbiased, a.std, strict=True)):
                w.writerow([stage, axis, i, *(repr(float(v)) for v in row)])
    return buf.getvalue()


def history_csv(tr: Any) -> str:
    """history.csv: one row per step (step 0: the evaluation before training). Eval columns are
    empty except at evaluation steps; floats are written with repr (round-trip exact)."""
    buf = io.StringIO()
    w = csv.writer(buf, lineterminator="\n")
    w.writerow(["step", "loss", "heldout_loss_eval_mode", "heldout_acc_eval_mode",
                "heldout_loss_train_mode", "heldout_acc_train_mode",
                *(f"grad_norm.{n}" for n in tr.layer_names),
                *(f"update_ratio.{n}" for n in tr.layer_names)])
    evals = {e.step: e for e in tr.evals}
    k = len(tr.layer_names)

    def f(x: float | None) -> str:
        return "" if x is None else repr(float(x))

    for step in range(tr.steps_done + 1):
        e = evals.get(step)
        ev = ([f(e.loss_eval_mode), f(e.acc_eval_mode), f(e.loss_train_mode),
               f(e.acc_train_mode)] if e else [""] * 4)
        if step == 0:
            w.writerow([0, "", *ev, *[""] * (2 * k)])
        else:
            i = step - 1
            w.writerow([step, f(tr.loss[i]), *ev, *(f(v) for v in tr.grad_norm[i]),
                        *(f(v) for v in tr.update_ratio[i])])
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
    # zlib level 1: ~6% larger files than the default 6, 10-15% less time per figure
    fig.savefig(buf, format="png", dpi=dpi, pil_kwargs={"compress_level": 1})
    write_atomic(path, buf.getvalue())


@dataclass(frozen=True)
class FigureJob:
    """One PNG to render: lnexp.plots.<make>(arg) builds the Figure, saved atomically to
    `path`. The figure is named, not referenced, so a job pickles without matplotlib."""

    make: str
    arg: Any
    path: Path
    dpi: int

    def __call__(self) -> None:
        from lnexp import plots

        save_figure(getattr(plots, self.make)(self.arg), self.path, self.dpi)


class FigurePool:
    """Figure processes forked *before* torch is imported: each loads matplotlib at once, in
    parallel with the parent's torch import (which then never needs matplotlib), and renders
    the jobs it is sent. Results travel pickled; they are torch-free (lnexp.results)."""

    def __init__(self, workers: int):
        import multiprocessing

        ctx = multiprocessing.get_context("fork")
        self._jobs = ctx.SimpleQueue()
        self._done = ctx.SimpleQueue()
        self._procs = [ctx.Process(target=_figure_worker, args=(self._jobs, self._done),
                                   daemon=True) for _ in range(workers)]
        for proc in self._procs:
            proc.start()

    def render(self, jobs: list[FigureJob]) -> None:
        for i, job in enumerate(jobs):
            self._jobs.put((i, job))
        errors = [err for _ in jobs for _, err in [self._done.get()] if err]
        if errors:
            raise RuntimeError(f"figure rendering failed in a worker process: {errors[0]}")

    def close(self) -> None:
        for proc in self._procs:
            if proc.is_alive():
                self._jobs.put(None)
        for proc in self._procs:
            proc.join(timeout=10)
            if proc.is_alive():
                proc.terminate()

    def kill(self) -> None:
        for proc in self._procs:
            proc.terminate()


def _figure_worker(jobs: Any, done: Any) -> None:
    import signal

    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    from lnexp import plots  # noqa: F401  (matplotlib loads now, not after the compute)

    while (item := jobs.get()) is not None:
        i, job = item
        try:
            job()
            done.put((i, None))
        except Exception:
            done.put((i, traceback.format_exc(limit=4)))


_POOL: FigurePool | None = None


@contextlib.contextmanager
def figure_pool(output: Any, jobs: int) -> Iterator[None]:
    """Start figure workers for the figures a command will render (call it before torch is
    imported); render_figures uses them until the block ends. No pool when figures are off,
    one worker is configured, or fork does not exist: rendering then happens in-process."""
    global _POOL
    n = figure_workers(output.workers, jobs) if output.figures else 1
    if n <= 1 or not hasattr(os, "fork") or _POOL is not None:
        yield
        return
    _POOL = FigurePool(n)
    try:
        yield
    except BaseException:
        _POOL.kill()
        raise
    else:
        _POOL.close()
    finally:
        _POOL = None


def figure_workers(configured: int | None, jobs: int) -> int:
    """How many processes render `jobs` figures: the configured count, else the CPU count."""
    available = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (
        os.cpu_count() or 1)
    return max(1, min(jobs, configured or available))


def render_figures(jobs: list[FigureJob], workers: int | None = None) -> None:
    """Render figure jobs, spread over forked worker processes where fork exists.

    Rendering PNGs is CPU-bound Python that holds the GIL, so threads do not help; a fork
    shares the computed results without copying or pickling them. The parent renders its own
    share and waits for the children; any failure (or Ctrl-C) is raised in the parent.
    """
    if _POOL is not None:
        _POOL.render(jobs)
        return
    n = figure_workers(workers, len(jobs))
    if n <= 1 or not hasattr(os, "fork"):
        for job in jobs:
            job()
        return
    import multiprocessing

    # Jobs are handed out one at a time from a shared counter, so a slow figure (the
    # comparison grid) does not leave the other processes idle.
    next_job = multiprocessing.get_context("fork").Value("i", 0)

    def work() -> None:
        while True:
            with next_job.get_lock():
                i = next_job.value
                next_job.value += 1
            if i >= len(jobs):
                return
            jobs[i]()

    children: list[int] = []
    try:
        for _ in range(n - 1):
            with warnings.catch_warnings():  # 3.12+ warns about fork with torch's threads;
                warnings.simplefilter("ignore", DeprecationWarning)  # children never use torch
                pid = os.fork()
            if pid == 0:  # child: render, then leave without running the parent's cleanup
                code = 1
                try:
                    work()
                    code = 0
                except KeyboardInterrupt:
                    code = 130
                except BaseException:
                    traceback.print_exc()
                finally:
                    os._exit(code)
            children.append(pid)
        work()
    finally:
        failed = [os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]) for pid in children]
    bad = [code for code in failed if code != 0]
    if bad:
        if 130 in bad:
            raise KeyboardInterrupt
        raise RuntimeError(f"figure rendering failed in a worker process (exit {bad[0]})")


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


def prepare_run(result: Any, folder: RunFolder, argv: list[str]) -> list[FigureJob]:
    """Write config.yaml, env.json and stats.csv; return the figures still to render."""
    cfg = result.config
    path = folder.path
    write_atomic(path / "config.yaml", config.to_yaml(cfg))
    write_atomic(path / "env.json", dumps(env_info(cfg, argv)))
    write_atomic(path / "stats.csv", stats_csv(result))
    if result.training is not None:
        write_atomic(path / "history.csv", history_csv(result.training))
    if not cfg.output.figures:
        return []
    (path / "figures").mkdir()
    return [FigureJob(name, result, path / "figures" / f"{name}.png", cfg.output.dpi)
            for name in plan.figure_names(cfg)]


def finish_run(result: Any, folder: RunFolder) -> dict[str, Any]:
    """Write metrics.json, the last file of a run folder; returns the document."""
    doc = metrics(result)
    write_atomic(folder.path / "metrics.json", dumps(doc))
    return doc


def write_run(result: Any, folder: RunFolder, argv: list[str]) -> dict[str, Any]:
    """Write config, env, stats and figures, then metrics.json last; returns the metrics."""
    render_figures(prepare_run(result, folder, argv), result.config.output.workers)
    return finish_run(result, folder)


def run_into_folder(cfg: Any, run_dir: Path, argv: list[str], progress: Any = None,
                    before: Callable[[], None] | None = None) -> tuple[Any, dict[str, Any]]:
    """Compute one run and write it into the existing folder `run_dir`, its status tracked in
    run.json. The one way `run`, sweep trials and tests produce a run folder. A training run
    stopped by Ctrl-C is written as recorded, then marked interrupted (KeyboardInterrupt)."""
    from lnexp import experiment

    folder = RunFolder(run_dir, "run", argv)
    with folder.tracking():
        if before is not None:
            before()
        result = experiment.run(cfg, progress)
        doc = write_run(result, folder, argv)
        if result.training is not None and result.training.interrupted:
            raise KeyboardInterrupt
    return result, doc


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
    cfg = cmp.config
    with contextlib.ExitStack() as stack:
        # Every norm's folder is prepared first, then all figures render together (in
        # parallel), then each folder gets its metrics.json last and is marked completed.
        jobs: list[FigureJob] = []
        runs: list[tuple[Any, RunFolder]] = []
        for o in cmp.outcomes:
            if o.result is None:
                continue
            (path / o.name).mkdir()
            sub = stack.enter_context(RunFolder(path / o.name, "run", argv).tracking())
            jobs += prepare_run(o.result, sub, argv)
            runs.append((o.result, sub))
        write_atomic(path / "config.yaml", config.to_yaml(cfg))
        write_atomic(path / "env.json", dumps(env_info(cfg, argv)))
        if cfg.output.figures:
            # The heaviest figure first, so one worker starts on it at once.
            jobs.insert(0, FigureJob("comparison", cmp, path / "comparison.png",
                                     cfg.output.dpi))
            if cfg.model.depth > 1:
                jobs.append(FigureJob("compare_layers", cmp, path / "layers.png",
                                      cfg.output.dpi))
        render_figures(jobs, cfg.output.workers)
        for result, sub in runs:
            finish_run(result, sub)
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

    def trial_done(self, entry: dict[str, Any], config_hash: str) -> bool:
        """Completed in sweep.json and in its own run.json (the folder is the truth), for the
        same resolved config (a changed default in a newer lnexp reruns it)."""
        if entry["status"] != "completed" or entry.get("hash") != config_hash:
            return False
        try:
            info = json.loads((self.path / entry["run_dir"] / "run.json").read_text())
        except (OSError, ValueError):
            return False
        return info.get("status") == "completed" and (
            self.path / entry["run_dir"] / "metrics.json").is_file()

    def reset_trial(self, index: int) -> Path:
        """Mark a trial pending and remove a failed or interrupted attempt's folder (its
        results are not trusted); returns the trial's run folder path."""
        import shutil

        path = self.path / self.trials[index]["run_dir"]
        if path.exists():
            shutil.rmtree(path)
        self.update(index, status="pending", error=None)
        return path

    def write_summary(self, d: Any, metrics: list[str], x: str | None, dpi: int,
                      figure: bool) -> list[dict[str, Any]]:
        """summary.csv (and summary.png) from the completed trials' metrics.json."""
        from lnexp import sweep as sweep_mod

        groups = sweep_mod.aggregate(d.group_keys, self.completed_metrics(), metrics)
        rows = summary_rows(groups, d.group_keys, metrics)
        write_atomic(self.path / "summary.csv", summary_csv(rows, d.group_keys, metrics))
        x_key = sweep_mod.x_key(d, x) if figure and rows else None
        if x_key is not None:
            from lnexp import plots

            fig = plots.sweep_summary(rows, d.group_keys, metrics, x_key,
                                      title=f"{d.base.get('name', 'default')} sweep")
            save_figure(fig, self.path / "summary.png", dpi)
        return rows

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
