"""The experiment: seed -> build model -> draw data -> forward -> statistics. No I/O here.

Draw order from the global RNG, fixed: torch.manual_seed(seed) -> build the model (each block's
Linear or Conv2d in turn) -> draw the data, (N, C_in), (N, C_in, H, W) or (N, T, C_in) (digits:
the randperm choosing the subset) -> draw the target of the init loss (the output's shape,
always, so the data never depends on the depth) -> build the training head (only with a
`train:` block). The training task and its minibatch shuffles use their own generator
(lnexp/tasks.py).

Streaming: the single-layer snapshot on random features (depth 1, placement post, no
training) is computed in row chunks, so any number of samples runs in bounded memory (see
`run`); deeper models, images, sequences, digits and training runs hold the whole batch (their
statistics are still accumulated chunk by chunk, in float64).

Per-layer statistics at initialization (`layers`, reported for depth > 1): one forward pass in
train mode on the data batch, then one backward pass of the init loss
    L = mean over all N x C entries of (output - target)^2,   target ~ N(0, 1), (N, out_features)
i.e. MSE to a fixed random target (a loss whose gradient does not vanish through a final
norm, unlike the sum of squares of a LayerNorm output, which is constant).
"""

from __future__ import annotations

import contextlib
import copy
import dataclasses
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import torch
from torch import nn

from lnexp import norms, plan, registry, stats
from lnexp.config import Config
from lnexp.data import make_inputs
from lnexp.errors import NotDefinedError
from lnexp.models import build_model, probes
from lnexp.models.conv import GlobalAveragePool
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


def stage_axes(cfg: Config) -> dict[str, tuple[tuple[str, ...], int | None]]:
    """Per stage, the statistic axes computed and the group count for per_group: the input
    gets the layout's axes without per_group (its channel count need not divide)."""
    layout, norm = cfg.data.layout, cfg.model.norm
    own, groups = norms.own_axis(norm, layout, cfg.features, cfg.model.groups)
    normed = (registry.axes(layout, norm, own), groups)
    return {"input": (registry.axes(layout, "none"), None), "pre_norm": normed,
            "post_norm": normed}


def _accumulators(cfg: Config, n: int) -> dict[str, stats.StreamingStats]:
    layout = cfg.data.layout
    return {stage: stats.StreamingStats(n, layout, axes, groups)
            for stage, (axes, groups) in stage_axes(cfg).items()}


def device(cfg: Config) -> torch.device:
    """The configured device; `auto` is cuda when torch sees a GPU. A missing GPU for `cuda`
    is refused by the core before anything runs (plan.not_defined_reason cannot import torch)."""
    if cfg.device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(cfg.device)


def _rows(t: torch.Tensor) -> torch.Tensor:
    """A sequence batch (N, T, C) as N*T token rows (what the precision block counts per row
    and the layer moments run over); an image batch as one row per sample."""
    if t.dim() == 3:
        return t.reshape(-1, t.shape[-1])
    return t.reshape(t.shape[0], -1) if t.dim() > 3 else t


def _run_whole(cfg: Config, progress: Progress | None) -> RunResult:
    """Deeper models, other layouts, digits, training, other dtypes and devices: the whole
    batch at once (draw order in the module doc). The model is built in float32 on the CPU (so
    every dtype and device draws the same weights), then a float64 copy is kept as the
    precision reference and the model moves to the configured dtype and device."""
    layout = cfg.data.layout
    torch.manual_seed(cfg.seed)
    model = build_model(cfg.model, layout)
    fresh = copy.deepcopy(model) if cfg.train is not None else None  # before any forward
    reference = copy.deepcopy(model).double()
    x = make_inputs(cfg.data, cfg.model.in_features)  # the layout's shape
    # The init loss's target has the output's shape: (N, C_out), (N, C_out, H, W) or
    # (N, T, C_out); one draw.
    target = torch.randn(cfg.data.n_samples, *cfg.sample_shape(cfg.model.out_features))
    dev, dtype = device(cfg), getattr(torch, registry.DTYPES[cfg.model.dtype])
    model.to(device=dev, dtype=dtype)
    x_run = x.to(device=dev, dtype=dtype)
    deep = cfg.model.depth > 1
    with torch.set_grad_enabled(deep):
        # The per-block probes ride on this forward (hooks), for the deep-model statistics.
        probing = probes.recording(model) if deep else contextlib.nullcontext()
        with _refusals(cfg), probing as probed:
            trace = model.trace(x_run)
        layers = (_layer_stats(model, trace, target.to(device=dev, dtype=dtype),
                               probed.result()) if probed is not None else None)
    precision = _precision(model, reference, x, x_run, trace)
    shared = (sharing(model.blocks[0].norm, trace.pre.detach(), layout)
              if layout != "features" and cfg.model.placement == "post" else None)
    # Every layout keeps its shape and is reduced per axis (stats.StreamingStats).
    pre, post = trace.pre.detach().cpu(), trace.post.detach().cpu()
    training = _train(cfg, fresh, progress) if fresh is not None else None
    i = cfg.sample_index
    x_cpu = x_run.cpu()
    acc = _accumulators(cfg, len(x_cpu))
    for stage, t in (("input", x_cpu), ("pre_norm", pre), ("post_norm", post)):
        for start in range(0, len(t), rows := _chunk(t)):
            acc[stage].update(t[start:start + rows])

    def f32(t: torch.Tensor) -> np.ndarray:  # figures and results hold float32
        return t.float().numpy()

    return _result(cfg, acc, f32(x_cpu), f32(pre), f32(post),
                   stats.sample_stats(pre, i), stats.sample_stats(post, i),
                   layers=layers, training=training, precision=precision, sharing=shared)


def _chunk(t: torch.Tensor) -> int:
    """Samples per statistics chunk: about plan.CHUNK_VALUES values."""
    return max(1, plan.CHUNK_VALUES // max(1, t[0].numel())) if len(t) else 1


# The reference value whose normalization set `sharing` measures, and how much of the batch is
# kept for the figure (the GroupNorm paper's Figure 2 shows a few samples and channels).
SHARING_KEEP = {"N": 8, "C": 32, "P": 64}


def sharing(norm: nn.Module, pre: torch.Tensor, layout: str) -> np.ndarray:
    """Which values share one mean and variance with the first value (sample 0, channel 0,
    position 0), measured on the norm itself: perturb that one input and see which outputs
    move. In a normalization set every output depends on the set's mean and variance, so
    exactly the set moves (in float64, by far more than rounding: second-order terms alone
    are ~delta^2 / m^2 >> 1e-12). Returns a bool (N, C, positions) block, cropped to
    SHARING_KEEP."""
    m = copy.deepcopy(norm).double()
    x = pre.detach().double()
    with torch.no_grad():
        # Each pass on its own copy: a forward in train mode may update running statistics
        # that the next one would read (batch_renorm).
        base = copy.deepcopy(m)(x)
        bumped = x.clone()
        bumped.view(-1)[0] += 1.0 + float(x.std())
        moved = (m(bumped) - base).abs() > 1e-12 * max(1.0, float(base.abs().max()))
    block = moved if layout == "image" else moved.transpose(1, 2)  # (N, C, ...)
    block = block.reshape(block.shape[0], block.shape[1], -1)
    k = SHARING_KEEP
    return block[:k["N"], :k["C"], :k["P"]].cpu().numpy().copy()


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
    model = build_model(cfg.model, cfg.data.layout)
    reference = copy.deepcopy(model).double()
    block = model.blocks[0]
    n, i = cfg.data.n_samples, cfg.sample_index
    rows = plan.chunk_rows(cfg, rows_per_chunk)
    chunks = -(-n // rows)
    bn_two_pass = chunks > 1 and cfg.model.norm == "bn" and cfg.model.mode == "train"
    rng_state = torch.get_rng_state()
    acc = _accumulators(cfg, n)
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
        norm=norms.resolve(cfg.model.norm, cfg.data.layout, cfg.features),
        inputs=inputs,
        pre=pre,
        post=post,
        input_stats=acc["input"].result(),
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


def _layer_stats(model, trace, target: torch.Tensor,  # type: ignore[no-untyped-def]
                 probed: probes.Diagnostics) -> LayerStats:
    """Per block: output moments and sample spread/cosine (float64), the probes' hidden RMS
    and largest attention logit, and the norm of the gradient over all of the block's Linear
    weights after one backward of the init loss."""
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
        **{k: np.array(v, dtype=np.float64) for k, v in probes.as_lists(probed).items()},
    )


def _train(cfg: Config, model, progress: Progress | None) -> TrainResult:  # type: ignore[no-untyped-def]
    from lnexp import tasks, training

    assert cfg.train is not None
    g = tasks.generator(cfg.seed)
    sequence = cfg.data.layout == "sequence"
    if cfg.train.task == "charlm":
        from lnexp.models.charlm import CharLM

        tokens = int(cfg.data.tokens or 1)
        task = tasks.make_task(cfg.train, cfg.model.in_features, g, tokens=tokens,
                               corpus=cfg.data.corpus or "shakespeare")
        assert task.vocab is not None
        net: nn.Module = CharLM(model, len(task.vocab), tokens, cfg.model.out_features)
        head = net.head
    else:
        head = nn.Linear(cfg.model.out_features, cfg.train.outputs)  # global RNG, after target
        # Images: global average pooling over H, W in front of the head (a conv classifier);
        # sequences read the last token.
        net = (nn.Sequential(model, LastToken(), head) if sequence
               else nn.Sequential(model, GlobalAveragePool(), head) if cfg.data.layout == "image"
               else nn.Sequential(model, head))
        task = tasks.make_task(cfg.train, cfg.model.in_features, g,
                               tokens=cfg.data.tokens if sequence else None,
                               layout=cfg.data.layout)
    dev, dtype = device(cfg), getattr(torch, registry.DTYPES[cfg.model.dtype])
    net.to(device=dev, dtype=dtype)
    task = task.to(dev, dtype)
    names = [*model.linear_names(), "head"]
    result = training.train(cfg, net, [*model.linears(), head], names, task, g, progress)
    # Where the trained stream and attention logits ended up (the held-out set, train mode as
    # in training; running statistics untouched).
    final = probes.as_lists(probes.block_diagnostics(net, task.x_heldout))
    return dataclasses.replace(result, final_blocks=final)
