"""What the model loses when part of it is taken away (`lnexp inspect --ablate`): extra
forward passes over the same inputs, after the measuring pass and without its hooks.

- **Massive-activation intervention** (Sun et al. 2024, §3.2): at the output of the block where
  massive activations appear (of the blocks whose largest |x| reaches `massive_ratio` × their
  median |x|, the one whose ratio jumped most from the previous block's), the entries of the
  massive dims that reach that threshold (on every input, real tokens only) are set (a) to
  zero, (b) to their mean: per dim, the mean of those entries over all inputs, measured in a
  first pass; (c) the control: as many entries per batch, drawn uniformly from all real
  (token, dim) entries of that output (seeded), set to zero.
- **Layer skipping** (Sun et al. 2025, "The Curse of Depth"): each block in turn replaced by
  the identity (its output is its input hidden states).

The measure: a causal LM's next-token loss (mean cross-entropy, nats per real token, the
first token of each input having no prediction); any other model (MiniLM has no LM head):
the relative change of its output over real tokens, rms(out − ref) / rms(ref), where ref is
the untouched output of the same batch (0 for the untouched model).

Cost: 1 + 1 + 3 + (number of blocks) forward passes over the inputs (the first pass and the
3 interventions only when a block reaches the threshold); no hooks measure during them.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from lnexp.inspect.core import _tensor
from lnexp.inspect.inputs import Batch, Source
from lnexp.inspect.massive import Block, MassiveBlock, first_tensor


@dataclass(frozen=True)
class Intervention:
    block: str
    index: int
    threshold: float  # |x| at or above this is "massive" (massive_ratio × median |x|)
    dims: list[int]
    entries: int  # entries changed in all (same count for the random control)
    means: dict[int, float]  # per dim, the mean of its massive entries over all inputs
    zeroed: float  # the measure with those entries zeroed
    mean: float  # ... set to their mean
    random: float  # ... the same number of random entries zeroed


@dataclass(frozen=True)
class Skip:
    block: str
    index: int
    depth: float
    value: float  # the measure with this block replaced by the identity


@dataclass(frozen=True)
class Ablation:
    measure: str  # "next_token_loss" or "output_change"
    baseline: float  # the untouched model's measure
    intervention: Intervention | None
    skips: list[Skip]
    forwards: int  # forward passes over the inputs, in all
    seconds: float
    note: str | None = None  # why the intervention did not run
    extra: dict[str, Any] = field(default_factory=dict)

    def as_dict(self, num: Any) -> dict[str, Any]:
        """inspect.json's entry (outcome.py calls this, so it need not import this module)."""
        return ablation_dict(self, num)

class _Meter:
    """Accumulates the measure of one condition over the batches."""

    def __init__(self) -> None:
        self.num = 0.0
        self.den = 0.0

    def value(self, lm: bool) -> float:
        if not self.den:
            return math.nan
        return self.num / self.den if lm else math.sqrt(self.num / self.den)


def _is_causal_lm(model: Any, out: Any, batch: Batch) -> bool:
    logits = getattr(out, "logits", None)
    ids = batch.kwargs.get("input_ids")
    return (isinstance(logits, torch.Tensor) and logits.dim() == 3 and ids is not None
            and (type(model).__name__.endswith("ForCausalLM")
                 or bool(getattr(getattr(model, "config", None), "is_decoder", False))))


def _lm_loss(out: Any, batch: Batch) -> tuple[float, float]:
    """(Σ next-token cross-entropy, real targets) of one batch."""
    logits = out.logits.double()
    ids = batch.kwargs["input_ids"]
    mask = batch.mask if batch.mask is not None else torch.ones_like(ids, dtype=torch.bool)
    keep = (mask[:, 1:] & mask[:, :-1]).reshape(-1)
    nll = F.cross_entropy(logits[:, :-1].reshape(-1, logits.shape[-1]),
                          ids[:, 1:].reshape(-1), reduction="none")
    return float(nll[keep].sum()), float(keep.sum())


def _rows(t: torch.Tensor, batch: Batch) -> torch.Tensor:
    t = t.double()
    if batch.mask is not None and tuple(t.shape[:2]) == tuple(batch.mask.shape):
        return t[batch.mask]
    return t.reshape(-1)


class _Runner:
    def __init__(self, loaded: Any, blocks: list[Block]):
        self.model, self.blocks = loaded.module, blocks
        self.lm: bool | None = None
        self.forwards: set[str] = set()

    def forward(self, batch: Batch, label: str, block: Block | None = None,
                hook: Any = None) -> Any:
        self.forwards.add(label)
        handle = block.module.register_forward_hook(hook, with_kwargs=True) \
            if block is not None else None
        try:
            return self.model(*batch.args, **batch.kwargs)
        finally:
            if handle is not None:
                handle.remove()

    def score(self, meter: _Meter, out: Any, ref: Any, batch: Batch) -> None:
        if self.lm:
            s, n = _lm_loss(out, batch)
            meter.num += s
            meter.den += n
            return
        o, r = _tensor(out), _tensor(ref)
        if o is None or r is None or o.shape != r.shape:
            return
        a, b = _rows(o, batch), _rows(r, batch)
        meter.num += float(((a - b) ** 2).sum())
        meter.den += float((b * b).sum())


def _replace_first(output: Any, new: torch.Tensor) -> Any:
    if isinstance(output, torch.Tensor):
        return new
    if isinstance(output, tuple):
        i = next(j for j, v in enumerate(output) if isinstance(v, torch.Tensor))
        return (*output[:i], new, *output[i + 1:])
    if isinstance(output, list):
        i = next(j for j, v in enumerate(output) if isinstance(v, torch.Tensor))
        return [*output[:i], new, *output[i + 1:]]
    return output


def _identity(module: Any, args: Any, kwargs: Any, output: Any) -> Any:
    x = args[0] if args and isinstance(args[0], torch.Tensor) else kwargs.get("hidden_states")
    y = first_tensor(output)
    if not isinstance(x, torch.Tensor) or y is None or x.shape != y.shape:
        return None  # cannot tell the block's input: leave it (never reached for HF stacks)
    return _replace_first(output, x)


class _Massive:
    """The hooks of the intervention at one block's output (mode: collect, zero, mean,
    random)."""

    def __init__(self, dims: list[int], threshold: float, seed: int):
        self.dims, self.threshold = dims, threshold
        self.sums = torch.zeros(len(dims), dtype=torch.float64)
        self.counts = torch.zeros(len(dims), dtype=torch.float64)
        self.means = torch.zeros(len(dims))
        self.mode = "collect"
        self.batch: Batch | None = None
        self.selected = 0  # entries of the current batch (the random control copies it)
        self.total = 0
        self.gen = torch.Generator().manual_seed(seed)

    def _where(self, y: torch.Tensor) -> torch.Tensor:
        sub = y[..., self.dims]
        hit = sub.abs() >= self.threshold
        b = self.batch
        if b is not None and b.mask is not None and tuple(y.shape[:2]) == tuple(b.mask.shape):
            hit &= b.mask.unsqueeze(-1)
        return hit

    def __call__(self, module: Any, args: Any, kwargs: Any, output: Any) -> Any:
        y = first_tensor(output)
        if y is None:
            return None
        if self.mode == "collect":
            hit = self._where(y)
            sub = y[..., self.dims].double()
            self.sums += (sub * hit).reshape(-1, len(self.dims)).sum(0)
            self.counts += hit.reshape(-1, len(self.dims)).sum(0)
            return None
        y = y.clone()
        if self.mode == "random":
            self._random(y)
        else:
            hit = self._where(y)
            self.selected = int(hit.sum())
            self.total += self.selected if self.mode == "zero" else 0
            fill = torch.zeros_like(self.means) if self.mode == "zero" else self.means
            y[..., self.dims] = torch.where(hit, fill.to(y.dtype), y[..., self.dims])
        return _replace_first(output, y)

    def _random(self, y: torch.Tensor) -> None:
        b = self.batch
        d = y.shape[-1]
        if b is not None and b.mask is not None and tuple(y.shape[:2]) == tuple(b.mask.shape):
            real = b.mask.nonzero()
        else:
            flat = y.reshape(-1, d)
            real = torch.stack([torch.zeros(flat.shape[0], dtype=torch.long),
                                torch.arange(flat.shape[0])], 1)
            y = flat.unsqueeze(0)
        n = min(self.selected, real.shape[0] * d)
        pick = torch.randperm(real.shape[0] * d, generator=self.gen)[:n]
        rows, dims = real[pick // d], pick % d
        y[rows[:, 0], rows[:, 1], dims] = 0


def _target(massive: list[MassiveBlock], ratio: float) -> MassiveBlock | None:
    """Where the massive activations appear: of the blocks whose top |x| reaches `ratio` ×
    their median, the one whose top ratio grew most over the previous block's (a model can
    have a first, smaller wave: SmolLM2's ~300× from block 1 before ~12,000× from block 11)."""
    best, best_jump, prev = None, 0.0, 1.0
    for m in massive:
        r = m.top[0].ratio if m.top else math.nan
        if r >= ratio and r / prev > best_jump:
            best, best_jump = m, r / prev
        prev = r if r > 0 else 1.0
    return best


def run(loaded: Any, source: Source, options: Any, blocks: list[Block],
        massive: list[MassiveBlock]) -> Ablation:
    """The intervention and layer skipping over every input of `source`."""
    with torch.inference_mode():
        return _run(loaded, source, options, blocks, massive)


def _run(loaded: Any, source: Source, options: Any, blocks: list[Block],
         massive: list[MassiveBlock]) -> Ablation:
    start = time.perf_counter()
    loaded.module.eval()
    runner = _Runner(loaded, blocks)
    target = _target(massive, options.massive_ratio)
    hook = None
    note = None
    if target is None:
        note = (f"no block's output reaches {options.massive_ratio:g}× its median |x|: no "
                f"massive activations to intervene on")
    else:
        hook = _Massive(target.massive_dims(options.massive_ratio),
                        options.massive_ratio * target.median_abs, options.seed)
        for batch in source.batches(options.batch_size):  # pass 1: the mean of each dim
            hook.batch = batch
            runner.forward(batch, "collect", blocks[target.index], hook)
        hook.means = (hook.sums / hook.counts.clamp(min=1)).float()
    base = _Meter()
    meters = {k: _Meter() for k in ("zero", "mean", "random")}
    skips = [_Meter() for _ in blocks]
    for batch in source.batches(options.batch_size):
        ref = runner.forward(batch, "baseline")
        if runner.lm is None:
            runner.lm = _is_causal_lm(loaded.module, ref, batch)
        if runner.lm:
            runner.score(base, ref, ref, batch)
        if hook is not None and target is not None:
            hook.batch = batch
            for mode in ("zero", "mean", "random"):
                hook.mode = mode
                out = runner.forward(batch, mode, blocks[target.index], hook)
                runner.score(meters[mode], out, ref, batch)
        for i, b in enumerate(blocks):
            runner.score(skips[i], runner.forward(batch, f"skip{i}", b, _identity), ref, batch)
    lm = bool(runner.lm)
    inter = None
    if hook is not None and target is not None:
        inter = Intervention(
            block=target.name, index=target.index, threshold=hook.threshold, dims=hook.dims,
            entries=hook.total,
            means={d: float(m) for d, m in zip(hook.dims, hook.means, strict=True)},
            zeroed=meters["zero"].value(lm), mean=meters["mean"].value(lm),
            random=meters["random"].value(lm))
    return Ablation(
        measure="next_token_loss" if lm else "output_change",
        baseline=base.value(lm) if lm else 0.0, intervention=inter,
        skips=[Skip(b.name, b.index, b.index / max(len(blocks) - 1, 1), m.value(lm))
               for b, m in zip(blocks, skips, strict=True)],
        forwards=len(runner.forwards), seconds=time.perf_counter() - start, note=note)


def ablation_dict(a: Ablation, num: Any) -> dict[str, Any]:
    """inspect.json's `ablation`."""
    i = a.intervention
    return {
        "measure": a.measure,
        "measure_label": "next-token loss, nats per real token" if a.measure ==
        "next_token_loss" else "rms(output − untouched output) / rms(untouched output)",
        "baseline": num(a.baseline), "forwards": a.forwards, "seconds": round(a.seconds, 3),
        "note": a.note,
        "intervention": None if i is None else {
            "block": i.block, "index": i.index, "threshold": num(i.threshold), "dims": i.dims,
            "entries": i.entries, "means": {str(d): num(v) for d, v in i.means.items()},
            "zeroed": num(i.zeroed), "mean": num(i.mean), "random": num(i.random),
            "zeroed_delta": num(i.zeroed - a.baseline), "mean_delta": num(i.mean - a.baseline),
            "random_delta": num(i.random - a.baseline)},
        "skip": [{"block": s.block, "index": s.index, "depth": num(s.depth),
                  "value": num(s.value), "delta": num(s.value - a.baseline)} for s in a.skips],
    }
