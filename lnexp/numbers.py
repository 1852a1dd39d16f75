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
