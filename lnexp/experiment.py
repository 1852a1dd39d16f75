"""The experiment: seed -> build model -> draw data -> forward -> statistics. No I/O here.

Draw order from the global RNG, fixed: torch.manual_seed(seed) -> build the model (each block's
Linear in turn) -> draw the data -> draw the target of the init loss (always, so the data never
depends on the depth) -> build the training head (only with a `train:` block). The training
task and its minibatch shuffles use their own generator (lnexp/tasks.py).

Per-layer statistics at initialization (`layers`, reported for depth > 1): one forward pass in
train mode on the data batch, then one backward pass of the init loss
    L = mean over all N x C entries of (output - target)^2,   target ~ N(0, 1), (N, out_features)
i.e. MSE to a fixed random target (a loss whose gradient does not vanish through a final
norm, unlike the sum of squares of a LayerNorm output, which is constant).
"""

from __future__ import annotations

import copy
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from lnexp import norms, stats
from lnexp.config import Config
from lnexp.data import make_inputs
from lnexp.errors import NotDefinedError
from lnexp.models import build_model
from lnexp.training import Progress, TrainResult


@dataclass(frozen=True)
class LayerStats:
    """Per block at initialization: its output's mean/std (over all N x C values, float64) and
    the gradient norm of its Linear's weight after one backward pass of the init loss."""

    names: list[str]
    mean: np.ndarray
    std: np.ndarray
    grad_norm: np.ndarray  # Frobenius norm of d L / d W, one per block
    weight_norm: np.ndarray
    loss: float

    @property
    def first_over_last(self) -> float:
        """grad_norm of the first block / grad_norm of the last block."""
        with np.errstate(divide="ignore", invalid="ignore"):
            return float(self.grad_norm[0] / self.grad_norm[-1])


@dataclass(frozen=True)
class RunResult:
    """Everything one run computed; renderers turn it into tables, figures and files."""

    config: Config
    norm: norms.NormSpec
    inputs: np.ndarray  # (N, in_features) float32
    pre: np.ndarray  # (N, C) activations entering the (first) norm, float32
    post: np.ndarray  # (N, C) activations leaving the (first) norm, float32
    pre_stats: stats.StageStats
    post_stats: stats.StageStats
    sample_pre: stats.SampleStats
    sample_post: stats.SampleStats
    layers: LayerStats | None = None  # depth > 1
    training: TrainResult | None = None  # with a train: block

    @property
    def verdicts(self) -> dict[str, stats.Verdict]:
        """Post-norm verdict per axis: is it standardized?"""
        return {"per_feature": stats.verdict(self.post_stats.per_feature),
                "per_sample": stats.verdict(self.post_stats.per_sample)}


def block_names(depth: int) -> list[str]:
    return [f"block{i}" for i in range(1, depth + 1)]


def not_defined_reason(cfg: Config) -> str | None:
    """Why this norm cannot run on this input at all, or None."""
    if cfg.model.norm == "bn" and cfg.model.mode == "train" and cfg.data.n_samples == 1:
        return ("bn is not defined for a batch of 1 in train mode (a feature's variance over one "
                "sample is 0 and PyTorch refuses it) - use model.mode: eval or more samples")
    if cfg.model.norm == "bn" and cfg.train is not None and cfg.train.batch_size == 1:
        return ("bn is not defined for a batch of 1 in train mode, so it cannot train with "
                "train.batch_size: 1 - use 2 or more")
    return None


def run(cfg: Config, progress: Progress | None = None) -> RunResult:
    """Run one experiment (see the module docstring for the draw order)."""
    reason = not_defined_reason(cfg)
    if reason:
        raise NotDefinedError(reason)
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    fresh = copy.deepcopy(model) if cfg.train is not None else None  # before any forward
    x = make_inputs(cfg.data, cfg.model.in_features)
    target = torch.randn(cfg.data.n_samples, cfg.model.out_features)
    deep = cfg.model.depth > 1
    with torch.set_grad_enabled(deep):
        try:
            trace = model.trace(x)
        except (ValueError, RuntimeError) as exc:  # PyTorch's own refusals, e.g. shapes
            raise NotDefinedError(f"{cfg.model.norm}: PyTorch refused this input: {exc}") from None
        layers = _layer_stats(model, trace, target) if deep else None
    pre, post = trace.pre.detach(), trace.post.detach()
    training = _train(cfg, fresh, progress) if fresh is not None else None
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
        layers=layers,
        training=training,
    )


def _layer_stats(model, trace, target: torch.Tensor) -> LayerStats:  # type: ignore[no-untyped-def]
    loss = torch.mean((trace.output - target) ** 2)
    loss.backward()
    linears = model.linears()
    moments = [stats.global_stats(b.detach()) for b in trace.blocks]
    return LayerStats(
        names=block_names(len(trace.blocks)),
        mean=np.array([m.mean for m in moments]),
        std=np.array([m.std for m in moments]),
        grad_norm=np.array([float(lin.weight.grad.double().norm()) for lin in linears]),
        weight_norm=np.array([float(lin.weight.detach().double().norm()) for lin in linears]),
        loss=float(loss.detach()),
    )


def _train(cfg: Config, model, progress: Progress | None) -> TrainResult:  # type: ignore[no-untyped-def]
    from lnexp import tasks, training

    assert cfg.train is not None
    head = nn.Linear(cfg.model.out_features, cfg.train.outputs)  # global RNG, after the target
    net = nn.Sequential(model, head)
    g = tasks.generator(cfg.seed)
    task = tasks.make_task(cfg.train, cfg.model.in_features, g)
    names = [*block_names(len(model.linears())), "head"]
    return training.train(cfg, net, [*model.linears(), head], names, task, g, progress)
