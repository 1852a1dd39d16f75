"""How a run is laid out in memory, decided from the config alone (no torch import).

The single-layer snapshot (depth 1, placement post, no training) streams the batch in row
chunks; deeper models and training runs hold the whole batch. experiment.py follows this plan
and resources.py estimates memory from it.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING

from lnexp.registry import DEFAULT_BLOCK, DEFAULT_PLACEMENT

if TYPE_CHECKING:
    from lnexp.config import Config

# Rows per chunk are chosen so a chunk holds about this many values of the widest layer.
CHUNK_VALUES = 1 << 21
# When a run streams, the figures draw the first KEEP_ROWS rows (the rows are i.i.d.).
KEEP_ROWS = 2000


def streams(cfg: Config) -> bool:
    """Whether the run is computed chunk by chunk (else the whole batch at once): the
    tutorial's single Linear + norm in float32 on the CPU."""
    m = cfg.model
    return bool(m.depth == 1 and m.placement == DEFAULT_PLACEMENT and cfg.train is None
                and m.block == DEFAULT_BLOCK and m.dtype == "float32" and cfg.device == "cpu")


def chunk_rows(cfg: Config, limit: int | None = None) -> int:
    """Rows per chunk: about CHUNK_VALUES values (or `limit` rows), and a multiple of
    16 / gcd(in_features, 16) rows, because torch.randn fills 16 values at a time on the CPU:
    chunks of whole 16-value blocks continue the stream exactly as one big draw would (tested
    for normal, uniform and laplace). student_t samples by rejection, so it is drawn in one
    chunk.
    """
    n = cfg.data.n_samples
    if cfg.data.distribution == "student_t":
        return n  # rejection sampling: a chunked draw would not equal one big draw
    width = max(cfg.model.in_features, cfg.features)
    rows = limit if limit is not None else max(1, CHUNK_VALUES // width)
    step = 16 // math.gcd(cfg.model.in_features, 16)
    rows = max(step, rows - rows % step)
    return min(rows, n)


def not_defined_reason(cfg: Config) -> str | None:
    """Why this norm cannot run on this input at all, or None. Checked once, by the core,
    before a run folder is made (compare records it as the norm's reason instead)."""
    if cfg.model.norm == "bn" and cfg.model.mode == "train" and cfg.data.n_samples == 1:
        return ("bn: not defined for a batch of 1 in train mode — use model.mode: eval or more "
                "samples (a feature's variance over one sample is 0; PyTorch refuses it)")
    if cfg.model.norm == "bn" and cfg.train is not None and cfg.train.batch_size == 1:
        return ("bn is not defined for a batch of 1 in train mode, so it cannot train with "
                "train.batch_size: 1 - use 2 or more")
    return None
