"""Per-block diagnostics of a forward pass, taken by forward hooks (no second forward):

- `hidden_rms`: sqrt(mean of x^2) over every value of the block's output, float64. For the
  residual placements this is the residual stream after block l (post_residual and
  deepnorm_residual: after its norm); the growth Pre-LN's stream shows with depth and
  Peri-LN / LayerNorm Scaling bound.
- `attn_logit_max` (transformer blocks only): the largest attention logit of the block,
  max |q·k| / sqrt(d) over samples, heads and position pairs (after model.qk_norm, if any);
  what grows until softmax saturates when attention training becomes unstable (Dehghani et
  al. 2023).

Two ways in, one result, {block index (1-based): {"hidden_rms": float, "attn_logit_max":
float}}:

    with probes.recording(net) as rec:     # during a forward you run anyway
        loss = loss_fn(net(x), y)
    rec.result()

    probes.block_diagnostics(net, batch)    # one no-grad forward of net(batch)

`net` is anything holding lnexp blocks (lnexp.models.Model, or a Sequential with a head
around it); the blocks are found by type, in module order. Several forwards under one
recording are pooled (the RMS over every value seen, the largest logit seen).
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator
from typing import Any

import torch
from torch import nn

from lnexp.models.mlp import Block
from lnexp.models.transformer import TransformerBlock

Diagnostics = dict[int, dict[str, float]]
# The keys of one block's entry, in the order metrics.json lists them.
KEYS = ("hidden_rms", "attn_logit_max")


def blocks(net: nn.Module) -> list[nn.Module]:
    """The lnexp blocks inside `net`, first block first."""
    return [m for m in net.modules() if isinstance(m, Block | TransformerBlock)]


class Recorder:
    """Accumulates what the hooks see; `result()` reads it out."""

    def __init__(self, n_blocks: int, attention: list[bool]):
        self.squares = [0.0] * n_blocks  # float64 sums of x^2
        self.counts = [0] * n_blocks
        self.logit_max: list[float | None] = [0.0 if a else None for a in attention]

    def hidden(self, i: int, out: Any) -> None:
        x = out[0] if isinstance(out, tuple) else out
        self.squares[i] += float(x.detach().double().square().sum())
        self.counts[i] += x.numel()

    def logits(self, i: int, out: torch.Tensor) -> None:
        top = float(out.detach().abs().max()) if out.numel() else 0.0
        prev = self.logit_max[i]
        assert prev is not None
        # NaN wins: a non-finite logit must not hide behind a finite one.
        self.logit_max[i] = top if math.isnan(top) or top > prev else prev

    def result(self) -> Diagnostics:
        out: Diagnostics = {}
        for i, (sq, n) in enumerate(zip(self.squares, self.counts, strict=True)):
            entry = {"hidden_rms": math.sqrt(sq / n) if n else math.nan}
            if self.logit_max[i] is not None:
                entry["attn_logit_max"] = float(self.logit_max[i])  # type: ignore[arg-type]
            out[i + 1] = entry
        return out


@contextlib.contextmanager
def recording(net: nn.Module) -> Iterator[Recorder]:
    """Hooks on every block of `net` (and on each attention's logits) while the `with` body
    runs; the hooks are removed on exit, whatever happens."""
    found = blocks(net)
    rec = Recorder(len(found), [isinstance(b, TransformerBlock) for b in found])
    handles = []
    try:
        for i, block in enumerate(found):
            handles.append(block.register_forward_hook(
                lambda _m, _inp, out, i=i: rec.hidden(i, out)))
            if isinstance(block, TransformerBlock):
                handles.append(block.attn.logits.register_forward_hook(
                    lambda _m, _inp, out, i=i: rec.logits(i, out)))
        yield rec
    finally:
        for h in handles:
            h.remove()


def block_diagnostics(net: nn.Module, batch: torch.Tensor) -> Diagnostics:
    """One forward of `net(batch)` without gradients, in the mode `net` is in (train mode: a
    BatchNorm uses the batch's statistics, as a training step does); every buffer (running
    statistics) is restored afterwards, so calling this changes nothing. Returns {block index
    (1-based): {"hidden_rms": float, "attn_logit_max": float (transformer blocks only)}}."""
    saved = {name: b.detach().clone() for name, b in net.named_buffers()}
    try:
        with torch.no_grad(), recording(net) as rec:
            net(batch)
    finally:
        with torch.no_grad():
            for name, b in net.named_buffers():
                b.copy_(saved[name])
    return rec.result()


def as_lists(diag: Diagnostics) -> dict[str, list[float]]:
    """{key: [value per block, first block first]} for the keys every block has (metrics.json
    lists; attn_logit_max only when every block has attention)."""
    entries = [diag[i] for i in sorted(diag)]
    return {k: [e[k] for e in entries] for k in KEYS if entries and all(k in e for e in entries)}
