"""The experiment: seed -> build model -> draw data -> forward -> statistics. No I/O here."""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
import torch

from lnexp import norms, stats
from lnexp.config import Config
from lnexp.data import make_inputs
from lnexp.errors import NotDefinedError
from lnexp.models import build_model


@dataclass(frozen=True)
class RunResult:
    """Everything one run computed; renderers turn it into tables, figures and files.

    `inputs`, `pre` and `post` hold the activations the figures draw: every row when the run
    fits one chunk (the default config does), else the first KEEP_ROWS rows; the statistics
    always cover every row.
    """

    config: Config
    norm: norms.NormSpec
    inputs: np.ndarray  # (rows kept, in_features) float32
    pre: np.ndarray  # (rows kept, C) activations entering the norm, float32
    post: np.ndarray  # (rows kept, C) activations leaving the norm, float32
    pre_stats: stats.StageStats
    post_stats: stats.StageStats
    sample_pre: stats.SampleStats
    sample_post: stats.SampleStats
    nonfinite: dict[str, dict[str, int]]  # NaN/Inf counts per stage, over every row
    chunks: int = 1  # how many row chunks the batch was streamed in

    @property
    def rows_kept(self) -> int:
        return int(self.pre.shape[0])

    @cached_property
    def numeric_trouble(self) -> dict[str, Any]:
        """NaN/Inf counts per stage (input, pre_norm, post_norm) and the first stage that has
        any, e.g. data.scale 1e39 overflows float32 at the input; eps 0 on a constant row
        divides 0 by 0 in post_norm."""
        first = next((name for name, c in self.nonfinite.items() if c["nonfinite"]), None)
        return {"detected": first is not None, "first_stage": first, **self.nonfinite}

    @property
    def verdicts(self) -> dict[str, stats.Verdict]:
        """Post-norm verdict per axis: is it standardized?"""
        return {"per_feature": stats.verdict(self.post_stats.per_feature),
                "per_sample": stats.verdict(self.post_stats.per_sample)}


# Rows per chunk are chosen so a chunk holds about this many values of the widest layer.
CHUNK_VALUES = 1 << 21
# When a run streams, the figures draw the first KEEP_ROWS rows (the rows are i.i.d.).
KEEP_ROWS = 2000


def chunk_rows(cfg: Config, limit: int | None = None) -> int:
    """Rows per chunk: about CHUNK_VALUES values (or `limit` rows), and a multiple of
    16 / gcd(in_features, 16) rows, because torch.randn fills 16 values at a time on the CPU:
    chunks of whole 16-value blocks continue the stream exactly as one big draw would (tested).
    """
    n = cfg.data.n_samples
    width = max(cfg.model.in_features, cfg.features)
    rows = limit if limit is not None else max(1, CHUNK_VALUES // width)
    step = 16 // math.gcd(cfg.model.in_features, 16)
    rows = max(step, rows - rows % step)
    return min(rows, n)


def not_defined_reason(cfg: Config) -> str | None:
    """Why this norm cannot run on this input at all, or None."""
    if cfg.model.norm == "bn" and cfg.model.mode == "train" and cfg.data.n_samples == 1:
        return ("bn: not defined for a batch of 1 in train mode — use model.mode: eval or more "
                "samples (a feature's variance over one sample is 0; PyTorch refuses it)")
    return None


def run(cfg: Config, rows_per_chunk: int | None = None) -> RunResult:
    """Run one experiment. Draw order is fixed: manual_seed(seed) -> build model -> draw data.

    The batch is streamed in row chunks (one chunk for the default config, so this is exactly
    the tutorial's computation). Every norm except BatchNorm in train mode works row by row, so
    one pass suffices. BatchNorm in train mode needs the whole batch's per-feature statistics:
    pass 1 accumulates them, then pass 2 redraws the same data (the RNG state is restored) and
    normalizes with them (loaded as the running statistics of the layer in eval mode, which
    applies exactly the train-mode formula).
    """
    reason = not_defined_reason(cfg)
    if reason:
        raise NotDefinedError(reason)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    n, i = cfg.data.n_samples, cfg.sample_index
    rows = chunk_rows(cfg, rows_per_chunk)
    chunks = -(-n // rows)
    bn_two_pass = chunks > 1 and cfg.model.norm == "bn" and cfg.model.mode == "train"
    rng_state = torch.get_rng_state()
    acc = {"input": stats.StreamingStats(), "pre_norm": stats.StreamingStats(),
           "post_norm": stats.StreamingStats()}
    kept: dict[str, list[torch.Tensor]] = {"input": [], "pre_norm": [], "post_norm": []}
    sample: dict[str, stats.SampleStats] = {}

    def feed(stage: str, start: int, t: torch.Tensor) -> None:
        acc[stage].update(t)
        if start < KEEP_ROWS:
            kept[stage].append(t[:KEEP_ROWS - start].clone())
        if stage != "input" and start <= i < start + t.shape[0]:
            sample[stage] = stats.sample_stats(t, i - start)

    def forward(fn: Any, x: torch.Tensor) -> torch.Tensor:
        try:
            return fn(x)
        except (ValueError, RuntimeError) as exc:  # PyTorch's own refusals, e.g. shapes
            raise NotDefinedError(f"{cfg.model.norm}: PyTorch refused this input: {exc}") from None

    with torch.no_grad():
        for start in range(0, n, rows):
            x = make_inputs(cfg.data, cfg.model.in_features, min(rows, n - start), start)
            feed("input", start, x)
            pre = forward(model.linear, x)
            feed("pre_norm", start, pre)
            if not bn_two_pass:
                feed("post_norm", start, forward(model.norm, pre))
        if bn_two_pass:
            pre_stats = acc["pre_norm"].result().per_feature
            bn = model.norm
            bn.running_mean.copy_(torch.from_numpy(pre_stats.mean))
            bn.running_var.copy_(torch.from_numpy(pre_stats.var))  # biased, as train mode uses
            bn.eval()
            torch.set_rng_state(rng_state)
            for start in range(0, n, rows):
                x = make_inputs(cfg.data, cfg.model.in_features, min(rows, n - start), start)
                feed("post_norm", start, forward(bn, forward(model.linear, x)))

    def keep(stage: str) -> np.ndarray:
        return torch.cat(kept[stage]).numpy()

    return RunResult(
        config=cfg,
        norm=norms.get(cfg.model.norm),
        inputs=keep("input"),
        pre=keep("pre_norm"),
        post=keep("post_norm"),
        pre_stats=acc["pre_norm"].result(),
        post_stats=acc["post_norm"].result(),
        sample_pre=sample["pre_norm"],
        sample_post=sample["post_norm"],
        nonfinite={stage: a.nonfinite for stage, a in acc.items()},
        chunks=chunks,
    )
