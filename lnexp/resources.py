"""The resource guard: estimate a run's peak memory from its config, refuse it above a limit.

Runs before anything is allocated, so an absurd config fails in milliseconds with exit 2
instead of being killed by the OS. The estimate counts what lnexp itself allocates (N samples,
I inputs, C features the norm sees), as read from data.py, experiment.py, stats.py, figures/
and store/; it is an estimate of the peak, not a bound on what the OS reports:

- a streamed run (the single-layer snapshot, see plan.py) holds the Linear weights, the rows
  kept for the figures (at most plan.KEEP_ROWS), the per-sample float64 statistics (N values
  per statistic and stage) and the metrics document's lists; its transients are one chunk
  (float32 rows plus their float64 copies), the figures and the text of stats.csv /
  metrics.json (pure-Python JSON encoding with indent: ~200 bytes per value);
- a whole-batch run (depth > 1 or training) also holds the float32 inputs (N x I) and both
  activation matrices (2 x N x C), with transients for the input draw and the forward pass
  (up to 3 N x I or N x C float32 temporaries) and the figures (~4 x N x C x 4 bytes).
"""

from __future__ import annotations

import itertools
import os
from pathlib import Path
from typing import Any

from lnexp import plan
from lnexp.errors import ConfigError

GIB = 1024**3
F32, F64 = 4, 8
PY_FLOAT_IN_LIST = 32  # a float object (24 bytes) plus its list slot (8)
JSON_BYTES_PER_VALUE = 200  # encoder chunks + text, json.dumps(indent=2) is pure Python
CSV_BYTES_PER_ROW = 600  # 4 repr floats in a StringIO (UCS4 buffer) plus the final str


def estimate(cfg: Any, runs: int = 1) -> dict[str, Any]:
    """Estimated bytes per part, 'held' (their sum), 'worst' (the name of the largest
    transient) and 'peak' = held + the largest transient. `runs` results held at once
    (compare holds one per norm)."""
    n, i, c = cfg.data.n_samples, cfg.model.in_features, cfg.features
    p = cfg.positions  # values per channel in a sample: H*W (image), T (sequence), 1
    lists = n <= cfg.output.per_sample_limit
    # Within-sample statistics per sample: per_sample, plus per_token (T), per_instance (C)
    # and per_group (<= C) on images and sequences.
    units = 1 if p == 1 else 1 + p + 2 * c
    values = 8 * ((n * units if lists else 0) + c) + 2 * c  # floats in metrics.json's lists
    explicit = n * i * 2 * PY_FLOAT_IN_LIST if cfg.data.values is not None else 0
    text = max(values * JSON_BYTES_PER_VALUE,
               2 * ((n if lists else 0) + c) * CSV_BYTES_PER_ROW)
    if plan.streams(cfg):
        # Row chunks: memory grows with N only through per-sample float64 statistics.
        r, k = plan.chunk_rows(cfg), min(n, plan.KEEP_ROWS)
        held = {
            "inputs": explicit,
            "weights": (i * c + c) * F32 if cfg.model.linear else 0,
            "rows kept for figures": runs * k * (i + 2 * c) * F32,
            "per-sample statistics": runs * n * (3 * 2 + 2 * 4) * F64,
            "metrics lists": runs * values * PY_FLOAT_IN_LIST,
        }
        transient = {
            "chunk": r * (i + 2 * c) * F32 + 3 * r * max(i, c) * F64,
            "figures": 4 * k * c * F32 if cfg.output.figures else 0,
            "text files": text,
        }
    else:
        nc, ni = n * c * p, n * i * p
        held = {
            "inputs": ni * F32 + explicit,
            "within-sample statistics": 4 * n * units * 3 * F64 if p > 1 else 0,
            "weights": (i * c + c) * F32 if cfg.model.linear else 0,
            "activations": runs * 2 * nc * F32,
            "metrics lists": runs * values * PY_FLOAT_IN_LIST,
        }
        widths = cfg.model.widths()
        if cfg.model.depth > 1:
            # Every block's Linear, norm and activation outputs are kept for the backward
            # pass of the init loss: ~3 N x width float32 per block (measured: depth 40,
            # 50,000 x 100 peaks at 2.4 GiB).
            held["block activations"] = 3 * n * p * sum(widths[1:]) * F32
        if cfg.model.block == "transformer":  # N x heads x T x T per block, and its grad
            m = cfg.model
            held["attention weights"] = (2 * m.depth * n * m.heads * p ** 2 * F32)
        if cfg.train is not None:
            t = cfg.train
            examples = t.n_train + t.n_heldout
            held["training data"] = examples * (i * p + t.outputs) * F32
            held["model copies"] = 3 * sum(a * b for a, b in itertools.pairwise(widths)) * F32
        transient = {
            "input draw": 3 * ni * F32,
            "forward": 3 * nc * F32,
            "float64 statistics": 3 * min(nc, plan.CHUNK_VALUES) * F64,
            "figures": 4 * nc * F32 if cfg.output.figures else 0,
            "text files": text,
        }
        if cfg.train is not None:  # held-out evaluation: every block's output at once
            transient["held-out evaluation"] = (
                3 * cfg.train.n_heldout * p * sum(widths[1:]) * F32)
    worst = max(transient, key=lambda key: transient[key])
    return {**held, **transient, "held": sum(held.values()), "worst": worst,
            "peak": sum(held.values()) + transient[worst]}


def available_bytes() -> int | None:
    """MemAvailable from /proc/meminfo, else free physical pages from sysconf, else None."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def limit_bytes(cfg: Any, available: int | None = None) -> tuple[int | None, str]:
    """The limit for this run and how it was chosen."""
    if cfg.limits.max_memory_gb is not None:
        limit = int(cfg.limits.max_memory_gb * GIB)
        return limit, f"limits.max_memory_gb {cfg.limits.max_memory_gb:g}"
    available = available_bytes() if available is None else available
    if available is None:
        return None, "no limit (available memory unknown)"
    frac = cfg.limits.memory_fraction
    return int(available * frac), f"limits.memory_fraction {frac:g} of {gb(available)} available"


def gb(n: float) -> str:
    """Bytes as '1.5 GiB' (or '12.3 MiB' below 1 GiB)."""
    return f"{n / GIB:.3g} GiB" if n >= GIB else f"{n / 1024**2:.3g} MiB"


def check(cfg: Any, available: int | None = None, runs: int = 1) -> dict[str, Any]:
    """Raise ConfigError (exit 2) when the estimated peak is above the limit; else return the
    estimate. Allocates nothing."""
    est = estimate(cfg, runs)
    limit, how = limit_bytes(cfg, available)
    if limit is not None and est["peak"] > limit:
        n, i, c = cfg.data.n_samples, cfg.model.in_features, cfg.features
        worst = est["worst"]
        raise ConfigError([
            f"resource guard: this run needs about {gb(est['peak'])} of memory "
            f"({n} samples x {i} inputs -> {c} features: {gb(est['held'])} held for the run "
            f"+ {gb(est[worst])} for the {worst}), above the limit of "
            f"{gb(limit)} ({how}); reduce data.n_samples / model sizes / model.depth / "
            f"train.n_train, set output.figures: false, or raise limits.max_memory_gb"])
    return est
