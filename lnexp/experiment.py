"""The experiment: seed -> build model -> draw data -> forward -> statistics. No I/O here.

Draw order from the global RNG, fixed: torch.manual_seed(seed) -> build the model (each block's
Linear in turn) -> draw the data -> draw the target of the init loss (always, so the data never
depends on the depth) -> build the training head (only with a `train:` block). The training
task and its minibatch shuffles use their own generator (lnexp/tasks.py).

Streaming: the single-layer snapshot (depth 1, placement post, no training) is computed in
row chunks, so any number of samples runs in bounded memory (see `run`); deeper models and
training runs hold the whole batch.

Per-layer statistics at initialization (`layers`, reported for depth > 1): one forward pass in
train mode on the data batch, then one backward pass of the init loss
    L = mean over all N x C entries of (output - target)^2,   target ~ N(0, 1), (N, out_features)
i.e. MSE to a fixed random target (a loss whose gradient does not vanish through a final
norm, unlike the sum of squares of a LayerNorm output, which is constant).
"""

from __future__ import annotations

import contextlib
import copy
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from lnexp import norms, plan, registry, stats
from lnexp.config import Config
from lnexp.data import make_inputs
from lnexp.errors import NotDefinedError
from lnexp.models import build_model
from lnexp.models.transformer import LastToken
from lnexp.results import LayerStats, Precision, RunResult
from lnexp.training import Progress, TrainResult


def block_names(depth: int) -> list[str]:
    return [f"block{i}" for i in range(1, depth + 1)]


@contextlib.contextmanager
def _refusals(cfg: Config) -> Iterator[None]:
    """PyTorch's own refusals (e.g. shapes) become NotDefinedError."""
    try:
        yield
    except (ValueError, RuntimeError) as exc:
        raise NotDefinedError(f"{cfg.model.norm}: PyTorch refused this input: {exc}") from None


def run(cfg: Config, progress: Progress | None = None,
        rows_per_chunk: int | None = None) -> RunResult:
    """Run one experiment (see the module docstring for the draw order). The config must be
    defined for its norm (plan.not_defined_reason is None): the core checks that first."""
    if plan.streams(cfg):
        return _run_streamed(cfg, rows_per_chunk, progress)
    return _run_whole(cfg, progress)


def device(cfg: Config) -> torch.device:
    """The configured device; `auto` is cuda when torch sees a GPU. A missing GPU for `cuda`
    is refused by the core before anything runs (plan.not_defined_reason cannot import torch)."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """A (N, T, C) sequence batch as N*T token rows (the axis a norm normalizes stays last)."""
    return t.reshape(-1, t.shape[-1]) if t.dim() == 3 else t


def _inputs(cfg: Config) -> torch.Tensor:
    """The float32 input batch: (N, C), or (N, T, C) for sequence blocks (one draw of N*T
    rows, so T = 1 would equal the flat batch)."""
    if registry.BLOCKS[cfg.model.block].sequence:
        n, t = cfg.data.n_samples, cfg.data.length
        return make_inputs(cfg.data, cfg.model.in_features, n * t).reshape(n, t, -1)
    return make_inputs(cfg.data, cfg.model.in_features)


def _run_whole(cfg: Config, progress: Progress | None) -> RunResult:
    """Deeper models, training, other dtypes and devices: the whole batch at once (draw order
    in the module doc). The model is built in float32 on the CPU (so every dtype and device
    draws the same weights), then a float64 copy is kept as the precision reference and the
    model moves to the configured dtype and device."""
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    fresh = copy.deepcopy(model) if cfg.train is not None else None  # before any forward
    reference = copy.deepcopy(model).double()
    x = _inputs(cfg)
    target = torch.randn(*x.shape[:-1], cfg.model.out_features)
    dev, dtype = device(cfg), getattr(torch, registry.DTYPES[cfg.model.dtype])
    model.to(device=dev, dtype=dtype)
    x_run = x.to(device=dev, dtype=dtype)
    deep = cfg.model.depth > 1
    with torch.set_grad_enabled(deep):
        with _refusals(cfg):
            trace = model.trace(x_run)
        layers = _layer_stats(model, trace, target.to(device=dev, dtype=dtype)) if deep else None
    precision = _precision(model, reference, x, x_run, trace)
    pre, post = _rows(trace.pre.detach()).cpu(), _rows(trace.post.detach()).cpu()
    training = _train(cfg, fresh, progress) if fresh is not None else None
    i = cfg.sample_index
    x_rows = _rows(x_run).cpu()
    acc = {stage: stats.StreamingStats.over(t) for stage, t in
           (("input", x_rows), ("pre_norm", pre), ("post_norm", post))}

    def f32(t: torch.Tensor) -> np.ndarray:  # figures and results hold float32
        return t.float().numpy()

    return _result(cfg, acc, f32(x_rows), f32(pre), f32(post),
                   stats.sample_stats(pre, i), stats.sample_stats(post, i),
                   layers=layers, training=training, precision=precision)


def _precision(model: nn.Module, reference: nn.Module, x: torch.Tensor, x_run: torch.Tensor,
               trace: Any) -> Precision:
    """The run's first-norm output and final output against the same weights and inputs in
    float64 (the reference), and against float64 fed with the run's own rounded inputs and
    weights (what the run's arithmetic alone gets wrong). The reference runs in the run's
    mode (bn in train mode uses the batch's statistics, as the run did)."""
    with torch.no_grad():
        exact = reference.trace(x.double())
        rounded = copy.deepcopy(reference)
        for p_ref, p_run in zip(rounded.parameters(), model.parameters(), strict=True):
            p_ref.copy_(p_run.detach().double().cpu())
        same_inputs = rounded.trace(x_run.double().cpu())

    def err(run: torch.Tensor, ref: torch.Tensor) -> tuple[float, float]:
        d = (run.detach().double().cpu() - ref).abs()
        return float(d.max()), float(d.mean())

    x_err = (x_run.double().cpu() - x.double()).abs()
    rows = _rows(x_run.detach().cpu())
    distinct = [int(torch.unique(r).numel()) for r in rows[:1000]]
    return Precision(
        dtype=str(x_run.dtype).removeprefix("torch."),
        device=str(x_run.device),
        post_norm=err(trace.post, exact.post),
        output=err(trace.output, exact.output),
        post_norm_same_inputs=err(trace.post, same_inputs.post),
        input_error=(float(x_err.max()), float(x_err.mean())),
        input_distinct_per_row=float(np.median(distinct)),
        row_length=int(rows.shape[1]),
    )


def _run_streamed(cfg: Config, rows_per_chunk: int | None,
                  progress: Progress | None = None) -> RunResult:
    """Run one experiment. Draw order is fixed: manual_seed(seed) -> build model -> draw data.

    The batch is streamed in row chunks (one chunk for the default config, so this is exactly
    the tutorial's computation). Every norm except BatchNorm in train mode works row by row, so
    one pass suffices. BatchNorm in train mode needs the whole batch's per-feature statistics:
    pass 1 accumulates them, then pass 2 redraws the same data (the RNG state is restored) and
    normalizes with them (loaded as the running statistics of the layer in eval mode, which
    applies exactly the train-mode formula).
    """
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model)
    reference = copy.deepcopy(model).double()
    block = model.blocks[0]
    n, i = cfg.data.n_samples, cfg.sample_index
    rows = plan.chunk_rows(cfg, rows_per_chunk)
    chunks = -(-n // rows)
    bn_two_pass = chunks > 1 and cfg.model.norm == "bn" and cfg.model.mode == "train"
    rng_state = torch.get_rng_state()
    acc = {stage: stats.StreamingStats(n) for stage in ("input", "pre_norm", "post_norm")}
    kept: dict[str, list[torch.Tensor]] = {"input": [], "pre_norm": [], "post_norm": []}
    sample: dict[str, stats.SampleStats] = {}
    passes = 2 if bn_two_pass else 1

    def advance(done: int) -> None:  # rows through the norm, over both passes for bn
        if progress is not None and chunks > 1:
            progress(done, passes * n, f"pass {1 + (done - 1) // n}/{passes}" if passes > 1
                     else "")

    def feed(stage: str, start: int, t: torch.Tensor) -> None:
        acc[stage].update(t)
        if start < plan.KEEP_ROWS:
            kept[stage].append(t[:plan.KEEP_ROWS - start].clone())
        if stage != "input" and start <= i < start + t.shape[0]:
            sample[stage] = stats.sample_stats(t, i - start)

    def forward(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> torch.Tensor:
        with _refusals(cfg):
            return fn(x)

    with torch.no_grad():
        for start in range(0, n, rows):
            x = make_inputs(cfg.data, cfg.model.in_features, min(rows, n - start), start)
            feed("input", start, x)
            pre = forward(block.linear, x)
            feed("pre_norm", start, pre)
            if not bn_two_pass:
                feed("post_norm", start, forward(block.norm, pre))
            advance(start + x.shape[0])
        if bn_two_pass:
            pre_stats = acc["pre_norm"].result().per_feature
            bn = block.norm
            bn.running_mean.copy_(torch.from_numpy(pre_stats.mean))
            bn.running_var.copy_(torch.from_numpy(pre_stats.var))  # biased, as train mode uses
            bn.eval()
            torch.set_rng_state(rng_state)
            for start in range(0, n, rows):
                x = make_inputs(cfg.data, cfg.model.in_features, min(rows, n - start), start)
                feed("post_norm", start, forward(bn, forward(block.linear, x)))
                advance(n + start + x.shape[0])

    def keep(stage: str) -> np.ndarray:
        return torch.cat(kept[stage]).numpy()

    precision = None
    if chunks == 1:  # the whole batch is kept: compare it with float64 (a cheap second pass)
        x = kept["input"][0]
        with torch.no_grad(), _refusals(cfg):
            precision = _precision(model, reference, x, x, model.trace(x))
    return _result(cfg, acc, keep("input"), keep("pre_norm"), keep("post_norm"),
                   sample["pre_norm"], sample["post_norm"], chunks=chunks,
                   precision=precision)


def _result(cfg: Config, acc: dict[str, stats.StreamingStats], inputs: np.ndarray,
            pre: np.ndarray, post: np.ndarray, sample_pre: stats.SampleStats,
            sample_post: stats.SampleStats, **extra: Any) -> RunResult:
    """The RunResult of either path; statistics from the accumulators of every row."""
    return RunResult(
        config=cfg,
        norm=norms.get(cfg.model.norm),
        inputs=inputs,
        pre=pre,
        post=post,
        pre_stats=acc["pre_norm"].result(),
        post_stats=acc["post_norm"].result(),
        sample_pre=sample_pre,
        sample_post=sample_post,
        nonfinite={stage: a.nonfinite for stage, a in acc.items()},
        **extra,
    )


def _norm(ts: list[torch.Tensor]) -> float:
    """Frobenius norm over several tensors, float64 (one tensor: exactly its own norm)."""
    norms_ = [t.detach().double().norm() for t in ts]
    return float(norms_[0] if len(norms_) == 1 else torch.stack(norms_).norm())


def _layer_stats(model, trace, target: torch.Tensor) -> LayerStats:  # type: ignore[no-untyped-def]
    """Per block: output moments and sample spread/cosine (float64), and the norm of the
    gradient over all of the block's Linear weights after one backward of the init loss."""
    loss = torch.mean((trace.output.float() - target.float()) ** 2)
    loss.backward()
    per_block = model.block_linears()
    outs = [b.detach().cpu() for b in trace.blocks]
    moments = [stats.global_stats(_rows(b)) for b in outs]
    return LayerStats(
        names=block_names(len(trace.blocks)),
        mean=np.array([m.mean for m in moments]),
        std=np.array([m.std for m in moments]),
        spread=np.array([stats.sample_spread(b) for b in outs]),
        cosine=np.array([stats.sample_cosine(b) for b in outs]),
        grad_norm=np.array([_norm([lin.weight.grad for lin in lins]) for lins in per_block]),
        weight_norm=np.array([_norm([lin.weight for lin in lins]) for lins in per_block]),
        loss=float(loss.detach()),
    )


def _train(cfg: Config, model, progress: Progress | None) -> TrainResult:  # type: ignore[no-untyped-def]
    from lnexp import tasks, training

    assert cfg.train is not None
    head = nn.Linear(cfg.model.out_features, cfg.train.outputs)  # global RNG, after the target
    sequence = registry.BLOCKS[cfg.model.block].sequence
    net = nn.Sequential(model, LastToken(), head) if sequence else nn.Sequential(model, head)
    dev, dtype = device(cfg), getattr(torch, registry.DTYPES[cfg.model.dtype])
    net.to(device=dev, dtype=dtype)
    g = tasks.generator(cfg.seed)
    task = tasks.make_task(cfg.train, cfg.model.in_features, g, length=cfg.data.length
                           if sequence else None).to(dev, dtype)
    names = [*model.linear_names(), "head"]
    return training.train(cfg, net, [*model.linears(), head], names, task, g, progress)
