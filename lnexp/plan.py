"""How a run is laid out in memory, and what it refuses, decided from the config alone (no
torch import).

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
    tutorial's single Linear + norm on random (N, C) features, in float32 on the CPU."""
    m, d = cfg.model, cfg.data
    # batch_renorm reads and moves running statistics batch by batch, and a user norm may
    # depend on the batch in ways a chunk would change: both see the whole batch at once.
    if m.norm == "batch_renorm" or ":" in m.norm or m.norm not in _builtin_names():
        return False
    return bool(m.depth == 1 and m.placement == DEFAULT_PLACEMENT and cfg.train is None
                and m.block == DEFAULT_BLOCK and m.dtype == "float32" and cfg.device == "cpu"
                and d.layout == "features" and d.source == "random")


def _builtin_names() -> list[str]:
    from lnexp.norms import names

    return names()


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
    """Why this norm cannot run on this input at all (what PyTorch would refuse), or None.
    Part of `refusals`; compare records it as the norm's reason instead of failing."""
    m = cfg.model
    trains = m.mode == "train" or cfg.train is not None  # training runs in train mode
    if m.norm == "bn" and m.eps == 0 and trains:
        return ("bn: model.eps: 0 is refused by PyTorch in train mode (it divides by the "
                "batch variance, which can be 0) - use a positive eps or model.mode: eval "
                "without training")
    # (instance on (N, C) features is refused by the schema: nothing to normalize over.)
    if m.norm == "instance" and cfg.positions == 1 and trains:
        where = "pixel" if cfg.data.layout == "image" else "token"
        return (f"instance: not defined for 1 {where} per channel (it normalizes each (sample, "
                f"channel) over its {where}s; PyTorch refuses one in train mode) - use more "
                f"{where}s")
    # BatchNorm's statistics are over N (features) or N x positions (images, sequences): a
    # single image of 8x8 pixels is a batch of 64 values per channel.
    if (cfg.model.norm == "bn" and cfg.model.mode == "train"
            and cfg.data.n_samples * cfg.positions == 1):
        return ("bn: not defined for a batch of 1 in train mode — use model.mode: eval or more "
                "samples (a feature's variance over one sample is 0; PyTorch refuses it)")
    if (cfg.model.norm == "bn" and cfg.train is not None
            and cfg.train.batch_size * cfg.positions == 1):
        return ("bn is not defined for a batch of 1 in train mode, so it cannot train with "
                "train.batch_size: 1 - use 2 or more")
    return None


# Metrics written only by some configs (metrics.json contract): the prefix of the expectation
# key, what the config needs, and whether this config has it.
_CONDITIONAL_METRICS = (
    ("layers.", "model.depth > 1", lambda cfg: cfg.model.depth > 1),
    ("training.", "a train: block", lambda cfg: cfg.train is not None),
)


def expectation_problems(cfg: Config) -> list[str]:
    """Expectations on metrics this config never writes (they could only fail)."""
    from lnexp import norms
    from lnexp.registry import OWN_ONLY_AXES, axes

    out = []
    user = norms.is_user(cfg.model.norm)  # its axis is measured (torch): not judged here
    own = None if user else norms.get(cfg.model.norm).on(cfg.data.layout).standardizes_axis
    reported = axes(cfg.data.layout, cfg.model.norm, own)
    for key in cfg.expect:
        for prefix, needs, has in _CONDITIONAL_METRICS:
            if key.startswith(prefix) and not has(cfg):
                out.append(f"expect.{key}: {prefix}* metrics exist only with {needs}, so this "
                           f"expectation could never pass - remove it or change the config")
        for axis in ("per_token", "per_instance", "per_group", "per_pixel"):
            if f".{axis}." in key and axis not in reported \
                    and not (user and axis in OWN_ONLY_AXES):
                out.append(f"expect.{key}: {axis} is not reported for data.layout: "
                           f"{cfg.data.layout} with model.norm: {cfg.model.norm}, so this "
                           f"expectation could never pass - remove it or change the config")
    return out


def refusals(cfg: Config) -> list[str]:
    """Everything `run` refuses for the config alone, one line each: the one place `validate`
    and `run` (before any folder or computation) both ask, so validate passes exactly what run
    accepts."""
    reason = not_defined_reason(cfg)
    return ([reason] if reason else []) + expectation_problems(cfg)
