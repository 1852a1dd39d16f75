"""Small value helpers shared by the documents, tables and figures (no numpy, no torch)."""

from __future__ import annotations

import json
import math
from typing import Any


def finite_or_none(x: float | None) -> float | None:
    """JSON has no NaN/Inf: they (and None) become None."""
    if x is None:
        return None
    x = float(x)
    return x if math.isfinite(x) else None


def show_value(v: Any) -> str:
    """A config value as it reads in YAML and on the command line: true, 0.5, bn, null."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, float):
        return f"{v:g}"
    if v is None:
        return "null"
    if isinstance(v, str | int):
        return str(v)
    return json.dumps(v, separators=(",", ":"))


def count(k: int, word: str) -> str:
    """'1 sample', '2,048 samples'."""
    return f"{k} {word}" if k == 1 else f"{k:,} {word}s"


def shape_words(cfg: Any) -> str:
    """A config's batch in words, for titles: '100 samples × 50 features', '2 samples × 32
    channels × 8×8 pixels', '4 samples × 16 tokens × 32 channels'."""
    d = cfg.dims()
    if cfg.data.layout == "image":
        return f"{count(d['N'], 'sample')} × {count(d['C'], 'channel')} × {d['H']}×{d['W']} pixels"
    if cfg.data.layout == "sequence":
        return (f"{count(d['N'], 'sample')} × {count(d['T'], 'token')} × "
                f"{count(d['C'], 'channel')}")
    return f"{count(d['N'], 'sample')} × {count(d['C'], 'feature')}"


# How a sweep summary cell reads, in the terminal table, the report and the figure alike:
# the median over seeds with its range (a ratio spanning decades is not read by mean ± std).
SWEEP_CELLS = "median [min, max] over {over}, n = completed trials"


def median_range(stat: dict[str, Any] | None, num: Any, short: Any = None) -> str:
    """A sweep summary cell from {median, min, max, mean, ...}: 'median [min, max]' with
    `num` for the median and `short` (default `num`) for the range; one value when n is 1 or
    all agree; 'n/a' when nothing was computed. Rows of an older sweep.json (no median) show
    their mean."""
    short = short or num
    if not stat:
        return "n/a"
    centre = stat.get("median")
    if centre is None:
        centre = stat.get("mean")
        return "n/a" if centre is None else num(centre)
    lo, hi = stat.get("min"), stat.get("max")
    if lo is None or hi is None or short(lo) == short(hi):
        return num(centre)
    return f"{num(centre)} [{short(lo)}, {short(hi)}]"
