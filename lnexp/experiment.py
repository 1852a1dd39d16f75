"""The experiment: seed -> build model -> draw data -> forward -> statistics. No I/O here."""

from __future__ import annotations

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
    """Everything one run computed; renderers turn it into tables, figures and files."""

    config: Config
    norm: norms.NormSpec
    inputs: np.ndarray  # (N, in_features) float32
    pre: np.ndarray  # (N, C) activations entering the norm, float32
    post: np.ndarray  # (N, C) activations leaving the norm, float32
    pre_stats: stats.StageStats
    post_stats: stats.StageStats
    sample_pre: stats.SampleStats
    sample_post: stats.SampleStats

    @cached_property
    def numeric_trouble(self) -> dict[str, Any]:
        """NaN/Inf counts per stage (input, pre_norm, post_norm) and the first stage that has
        any, e.g. data.scale 1e39 overflows float32 at the input; eps 0 on a constant row
        divides 0 by 0 in post_norm."""
        stages = {"input": stats.nonfinite_counts(self.inputs),
                  "pre_norm": stats.nonfinite_counts(self.pre),
                  "post_norm": stats.nonfinite_counts(self.post)}
        first = next((name for name, c in stages.items() if c["nonfinite"]), None)
        return {"detected": first is not None, "first_stage": first, **stages}

    @property
    def verdicts(self) -> dict[str, stats.Verdict]:
        """Post-norm verdict per axis: is it standardized?"""
        return {"per_feature": stats.verdict(self.post_stats.per_feature),
                "per_sample": stats.verdict(self.post_stats.per_sample)}


def not_defined_reason(cfg: Config) -> str | None:
    """Why this norm cannot run on this input at all, or None."""
    if cfg.model.norm == "bn" and cfg.model.mode == "train" and cfg.data.n_samples == 1:
        return ("bn: not defined for a batch of 1 in train mode — use model.mode: eval or more "
                "samples (a feature's variance over one sample is 0; PyTorch refuses it)")
    return None


def run(cfg: Config) -> RunResult:
    """Run one experiment. Draw order is fixed: manual_seed(seed) -> build model -> draw data."""
    reason = not_defined_reason(cfg)
    if reason:
        raise NotDefinedError(reason)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    x = make_inputs(cfg.data, cfg.model.in_features)
    with torch.no_grad():
        try:
            pre, post = model(x)
        except (ValueError, RuntimeError) as exc:  # PyTorch's own refusals, e.g. shapes
            raise NotDefinedError(f"{cfg.model.norm}: PyTorch refused this input: {exc}") from None
    i = cfg.sample_index
    return RunResult(
        config=cfg,
        norm=norms.get(cfg.model.norm),
        inputs=x.numpy(),
        pre=pre.numpy(),
        post=post.numpy(),
        pre_stats=stats.stage_stats(pre),
        post_stats=stats.stage_stats(post),
        sample_pre=stats.sample_stats(pre, i),
        sample_post=stats.sample_stats(post, i),
    )
