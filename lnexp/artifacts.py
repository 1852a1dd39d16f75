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
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from lnexp import __version__, config, explain
from lnexp.errors import OutputError
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
    return {
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
        "explanation": explain.lines(result),
        **extra,
    }


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
    if not os.access(root, os.W_OK | os.X_OK):
        raise OutputError(f"output folder {root}: not writable")
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
    """A run folder with its status in run.json: running -> completed | failed | interrupted."""

    def __init__(self, path: Path, kind: str, argv: list[str]):
        self.path = path
        self.info: dict[str, Any] = {"schema_version": SCHEMA_VERSION, "kind": kind,
                                     "status": "running", "argv": argv,
                                     "started": _now(), "finished": None, "error": None}
        self._write_status()

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
            self.finish("interrupted", "interrupted (Ctrl-C / SIGINT)")
            raise
        except BaseException as exc:
            self.finish("failed", f"{type(exc).__name__}: {exc}")
            raise
        else:
            self.finish("completed")


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S%z")


def write_run(result: Any, folder: RunFolder, argv: list[str]) -> dict[str, Any]:
    """Write config, env, stats and figures, then metrics.json last; returns the metrics."""
    cfg = result.config
    path = folder.path
    write_atomic(path / "config.yaml", config.to_yaml(cfg))
    write_atomic(path / "env.json", dumps(env_info(cfg, argv)))
    write_atomic(path / "stats.csv", stats_csv(result))
    if result.training is not None:
        write_atomic(path / "history.csv", history_csv(result.training))
    if cfg.output.figures:
        from lnexp import plots

        (path / "figures").mkdir()
        for fig_name, make in plots.figures_for(result).items():
            save_figure(make(result), path / "figures" / f"{fig_name}.png", cfg.output.dpi)
    doc = metrics(result)
    write_atomic(path / "metrics.json", dumps(doc))
    return doc
