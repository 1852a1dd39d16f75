"""Massive activations (Sun et al. 2024, "Massive activations in large language models"): the
largest |x| in each block's output, where it sits (token, dim) and its ratio to the median |x|.

A *block* is one element of the model's stack of repeated layers: the longest nn.ModuleList
(or nn.Sequential) whose every element holds a norm layer (BERT's `encoder.layer`, LLaMA's
`model.layers`). Its output is read as (tokens, hidden dims) like a norm's input, padding
masked out. Streamed per forward call, in the main pass (no extra forward):

- the k largest |x| over every (token, dim) entry, with where they are;
- per dim, the largest |x| (which dims carry massive values: the intervention's targets);
- the median |x| from lnexp.inspect.stats' log10 histogram (0.005 decades per bin, ~1.2%)
  of an evenly strided subsample of at most SAMPLE entries per call (the full tensor would
  cost more than the forward on wide models; 65k entries put the median well inside a bin).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from lnexp.inspect.stats import N_BINS, _log_hist, hist_quantile

SAMPLE = 65_536  # entries per forward call fed to the |x| histogram (stats' log10 bins)


@dataclass(frozen=True)
class Block:
    """One repeated block of the model, in forward order of its stack."""

    index: int
    name: str  # e.g. "model.layers.3"
    module: nn.Module


@dataclass(frozen=True)
class MassiveEntry:
    """One activation of a block's output."""

    input: int
    position: int | None
    token: str | None
    dim: int
    value: float  # signed
    ratio: float  # |value| / median |x| of that block's output


@dataclass(frozen=True)
class MassiveBlock:
    """A block's output: its top entries by |x|, largest first, and the median |x|."""

    index: int
    name: str
    depth: float  # index / (blocks − 1): 0 = first block, 1 = last
    median_abs: float
    count: int  # entries (real tokens × dims)
    top: list[MassiveEntry]
    dim_absmax: Any  # numpy array: per dim, the largest |x|

    def massive_dims(self, ratio: float) -> list[int]:
        """Dims whose largest |x| reaches `ratio` × the median |x|, largest first."""
        import numpy as np

        if not self.median_abs > 0:
            return []
        a = self.dim_absmax / self.median_abs
        order = np.argsort(-a, kind="stable")
        return [int(d) for d in order if a[d] >= ratio]

    def as_dict(self, num: Callable[[Any], Any]) -> dict[str, Any]:
        """inspect.json's entry (outcome.py calls this, so it need not import this module)."""
        return block_dict(self, num)

def _stacks(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules()
            if isinstance(m, (nn.ModuleList, nn.Sequential)) and len(m) > 1]


def find_blocks(model: nn.Module, norm_modules: list[nn.Module]) -> list[Block]:
    """The longest stack whose every element holds at least one of `norm_modules` (ties: the
    first registered). Empty when the model has no such stack."""
    norms = {id(m) for m in norm_modules}
    best: tuple[str, nn.Module] | None = None
    for name, stack in _stacks(model):
        if all(any(id(c) in norms for c in child.modules()) for child in stack.children()) \
                and (best is None or len(stack) > len(best[1])):
            best = (name, stack)
    if best is None:
        return []
    prefix = f"{best[0]}." if best[0] else ""
    return [Block(i, f"{prefix}{i}", child) for i, child in enumerate(best[1].children())]


class MassiveAccumulator:
    """Top-k |x| entries, per-dim max |x| and a histogram of |x| of one block's output."""

    def __init__(self, k: int):
        self.k = k
        self.count = 0
        self.hist = torch.zeros(N_BINS + 1, dtype=torch.int64)
        self.dim_absmax: torch.Tensor | None = None
        self.score: torch.Tensor | None = None  # (k,) |x|
        self.value: torch.Tensor | None = None  # (k,) signed
        self.where: torch.Tensor | None = None  # (k, 4): input, position, token id, dim
        self.lo, self.hi = math.inf, 0.0

    def update(self, rows: torch.Tensor, locate: Callable[[torch.Tensor], torch.Tensor]) -> None:
        """Add (tokens, dims) rows of one forward call (any float dtype)."""
        if rows.numel() == 0:
            return
        a = rows.abs()
        dims = rows.shape[1]
        amax = a.amax(dim=0).double()
        self.dim_absmax = amax if self.dim_absmax is None else torch.maximum(self.dim_absmax,
                                                                             amax)
        flat = a.reshape(-1)
        step = max(1, math.ceil(flat.numel() / SAMPLE))
        sample = flat[::step].double()
        self.hist += _log_hist(sample)
        self.lo, self.hi = min(self.lo, float(sample.min())), max(self.hi, float(sample.max()))
        self.count += flat.numel()
        k = min(self.k, flat.numel())
        s, idx = torch.topk(flat, k)
        row, dim = idx // dims, idx % dims
        w = torch.cat([locate(row), dim.unsqueeze(1)], dim=1)
        v = rows.reshape(-1)[idx].double()
        s = s.double()
        if self.score is not None:
            s, v, w = (torch.cat([self.score, s]), torch.cat([self.value, v]),  # type: ignore[list-item]
                       torch.cat([self.where, w]))  # type: ignore[list-item]
            s, keep = torch.topk(s, min(self.k, s.shape[0]))
            v, w = v[keep], w[keep]
        self.score, self.value, self.where = s, v, w

    def result(self, block: Block, blocks: int,
               label: Callable[[int], str | None]) -> MassiveBlock:
        median = hist_quantile(self.hist, 0.5, self.lo, self.hi) if self.count else math.nan
        top = []
        if self.score is not None:
            for j in range(self.score.shape[0]):
                inp, pos, tok, dim = (int(t) for t in self.where[j])  # type: ignore[index]
                val = float(self.value[j])  # type: ignore[index]
                top.append(MassiveEntry(inp, None if pos < 0 else pos,
                                        label(tok) if tok >= 0 else None, dim, val,
                                        abs(val) / median if median > 0 else math.inf))
        return MassiveBlock(
            index=block.index, name=block.name,
            depth=block.index / (blocks - 1) if blocks > 1 else 0.0, median_abs=median,
            count=self.count, top=top,
            dim_absmax=(self.dim_absmax.numpy() if self.dim_absmax is not None else None))


class BlockProbe:
    """The forward hook on one block: feeds its output's real-token rows to the accumulator.
    `ctx` is core's batch context (rows to keep, how to locate them)."""

    def __init__(self, block: Block, k: int, ctx: Any, channel_axis: bool):
        self.block, self.ctx, self.channel_axis = block, ctx, channel_axis
        self.acc = MassiveAccumulator(k)

    def __call__(self, module: nn.Module, args: Any, kwargs: Any, output: Any) -> None:
        if not self.ctx.active:
            return
        y = first_tensor(output)
        if y is None or not y.is_floating_point() or y.dim() < 2:
            return
        y = y.detach()
        if self.channel_axis:
            y = y.movedim(1, -1)
        lead = tuple(y.shape[:-1])
        rows = y.reshape(math.prod(lead), y.shape[-1])
        keep, locate = self.ctx.rows(lead)
        if keep is not None:
            rows = rows[keep]
        self.acc.update(rows, locate)


def first_tensor(obj: Any) -> torch.Tensor | None:
    """A block's hidden states: the tensor itself or the first tensor of a tuple/list."""
    if isinstance(obj, torch.Tensor):
        return obj
    if isinstance(obj, (tuple, list)):
        return next((v for v in obj if isinstance(v, torch.Tensor)), None)
    return None


def block_dict(b: MassiveBlock, num: Callable[[Any], Any]) -> dict[str, Any]:
    """One entry of inspect.json's `massive_activations`: the top entry's fields at the top
    level (`token`, `dim`, `value`, `ratio`), the k largest under `top`."""
    def entry(e: MassiveEntry) -> dict[str, Any]:
        return {"input": e.input, "position": e.position, "token": e.token, "dim": e.dim,
                "value": num(e.value), "ratio": num(e.ratio)}

    head = entry(b.top[0]) if b.top else {"input": None, "position": None, "token": None,
                                          "dim": None, "value": None, "ratio": None}
    return {"block": b.name, "index": b.index, "depth": b.depth, **head,
            "median_abs": num(b.median_abs), "entries": b.count,
            "top": [entry(e) for e in b.top]}
