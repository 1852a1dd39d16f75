"""Find the normalization layers of any torch module.

Known classes are matched by type (LayerNorm, RMSNorm, BatchNorm*, GroupNorm, InstanceNorm*,
LocalResponseNorm is not a norm of this kind and is left out); library and user classes are
found by what they are: a `normalized_shape` attribute (LayerNorm-like), running statistics
(BatchNorm-like), or a class name ending in "Norm" (HF's LlamaRMSNorm, T5LayerNorm, ...).
A *Norm-named wrapper that holds another norm (e.g. a `PreNorm(dim, fn)` block) is skipped:
its inner norm is reported instead.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import torch
from torch import nn

# Where the per-dim ("hidden dim" / channel) axis is: "last" for LayerNorm-like layers that
# normalize the trailing `normalized_shape`, "channel" (dim 1) for BatchNorm/GroupNorm/InstanceNorm.
Axis = Literal["last", "channel"]

_CHANNEL_TYPES: tuple[type[nn.Module], ...] = (
    nn.modules.batchnorm._BatchNorm,
    nn.GroupNorm,
    nn.modules.instancenorm._InstanceNorm,
)
_LAST_TYPES: tuple[type[nn.Module], ...] = (nn.LayerNorm, nn.RMSNorm)

WHAT_COUNTS = ("LayerNorm, RMSNorm, BatchNorm*, GroupNorm, InstanceNorm*, and classes with a "
               "normalized_shape, running statistics, or a name ending in Norm")


@dataclass(frozen=True)
class NormLayer:
    """One normalization module as the model names it."""

    name: str  # e.g. "encoder.layer.0.output.LayerNorm"
    module: nn.Module
    type: str  # class name, e.g. "LayerNorm", "BatchNorm2d", "LlamaRMSNorm"
    axis: Axis
    normalized_shape: tuple[int, ...] | None  # None: learned from the first input it sees
    eps: float | None
    found_by: Literal["type", "normalized_shape", "running_stats", "name"]

    @property
    def is_batchnorm(self) -> bool:
        return isinstance(self.module, nn.modules.batchnorm._BatchNorm)


def _has_running_stats(m: nn.Module) -> bool:
    bufs = dict(m.named_buffers(recurse=False))
    return "running_mean" in bufs and "running_var" in bufs


def _found_by(m: nn.Module) -> str | None:
    if isinstance(m, _CHANNEL_TYPES + _LAST_TYPES):
        return "type"
    if hasattr(m, "normalized_shape"):
        return "normalized_shape"
    if _has_running_stats(m):
        return "running_stats"
    if type(m).__name__.lower().endswith("norm"):
        return "name"
    return None


def _eps(m: nn.Module) -> float | None:
    # torch: eps; HF Llama/T5: variance_epsilon; some libraries: epsilon
    for attr in ("eps", "variance_epsilon", "epsilon"):
        v = getattr(m, attr, None)
        if isinstance(v, (int, float)) and not isinstance(v, bool):
            return float(v)
    return None


def _shape(m: nn.Module, axis: Axis) -> tuple[int, ...] | None:
    if axis == "last":
        ns = getattr(m, "normalized_shape", None)
        if ns is not None:
            return (int(ns),) if isinstance(ns, int) else tuple(int(s) for s in ns)
    for attr in ("num_features", "num_channels"):
        v = getattr(m, attr, None)
        if isinstance(v, int):
            return (v,)
    w = getattr(m, "weight", None)
    if isinstance(w, torch.Tensor) and w.dim() >= 1:
        return tuple(w.shape)
    return None


def _axis(m: nn.Module, found_by: str) -> Axis:
    if isinstance(m, _CHANNEL_TYPES) or found_by == "running_stats":
        return "channel"
    return "last"


def find_norms(model: nn.Module) -> list[NormLayer]:
    """Every normalization module of `model`, in registration order (the caller reorders them
    by forward order once it has seen a forward pass)."""
    found: list[NormLayer] = []
    for name, m in model.named_modules():
        how = _found_by(m)
        if how is None:
            continue
        if how == "name" and any(_found_by(c) for _, c in m.named_modules() if c is not m):
            continue  # a *Norm-named wrapper around a real norm: report the inner one
        axis = _axis(m, how)
        found.append(NormLayer(name=name or type(m).__name__, module=m, type=type(m).__name__,
                               axis=axis, normalized_shape=_shape(m, axis), eps=_eps(m),
                               found_by=how))  # type: ignore[arg-type]
    return found


def feature_dims(layer: NormLayer, x: torch.Tensor) -> int:
    """How many trailing dims of `x` (after moving the channel axis last) are the features.

    A LayerNorm over (C, H, W) normalizes 3 trailing dims; everything else has one feature
    axis. A name-found norm whose weight matches x's dim 1 and not its last dim is read as
    channel-first.
    """
    if layer.axis == "last" and layer.normalized_shape:
        k = len(layer.normalized_shape)
        if tuple(x.shape[-k:]) == layer.normalized_shape:
            return k
    return 1


def as_rows(layer: NormLayer, x: torch.Tensor) -> tuple[torch.Tensor, tuple[int, ...]]:
    """View `x` as a (rows, dims) matrix: one row per token (or per position of a channel
    norm's input), one column per normalized feature. Returns it and the shape of the rows'
    leading axes (used to line rows up with a padding mask)."""
    if x.dim() == 0:
        x = x.reshape(1, 1)
    if layer.axis == "channel" and x.dim() >= 2:
        x = x.movedim(1, -1)  # (N, C, *S) -> (N, *S, C)
    elif layer.axis == "last" and layer.found_by == "name" and x.dim() >= 3 \
            and layer.normalized_shape and x.shape[-1] != layer.normalized_shape[-1] \
            and x.shape[1] == layer.normalized_shape[-1]:
        x = x.movedim(1, -1)
    k = feature_dims(layer, x)
    lead = tuple(x.shape[:-k]) if x.dim() > k else (1,)
    return x.reshape(math.prod(lead), -1), lead
