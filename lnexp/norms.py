"""Norm registry: one map from a config name to a factory with one call shape.

Every factory is called as ``factory(num_features, eps=..., affine=..., groups=...)`` and
returns an ``nn.Module`` that maps a ``(N, C)`` tensor to a ``(N, C)`` tensor. Options a norm
does not use are ignored. torch is imported inside the factories only, so this module is
cheap to import (the CLI and the config schema read the registry without loading torch).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from lnexp.errors import NormError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class NormSpec:
    """What a registered norm is, and what it is expected to standardize."""

    name: str
    title: str
    axis: str  # "features", "samples" or "neither": which stats it pins to mean 0 / var 1
    summary: str
    factory: Callable[..., nn.Module]


def default_groups(num_features: int) -> int:
    """Group count used when `model.groups` is not set: the largest divisor of
    `num_features` that is <= sqrt(num_features) (50 -> 5, 64 -> 8, a prime -> 1)."""
    best = 1
    for g in range(1, math.isqrt(num_features) + 1):
        if num_features % g == 0:
            best = g
    return best


def resolve_groups(num_features: int, groups: int | None) -> int:
    """The group count GroupNorm will use; raises NormError when it does not divide."""
    g = default_groups(num_features) if groups is None else groups
    if g < 1 or num_features % g != 0:
        raise NormError(
            f"group norm needs groups to divide the features: {g} groups do not divide "
            f"{num_features} features (divisors: {', '.join(map(str, divisors(num_features)))})"
        )
    return g


def divisors(n: int) -> list[int]:
    """All positive divisors of n, ascending (O(sqrt n), so huge feature counts stay fast)."""
    small = [d for d in range(1, math.isqrt(n) + 1) if n % d == 0]
    return small + [n // d for d in reversed(small) if d * d != n]


def _ln(num_features: int, *, eps: float, affine: bool, **_: Any) -> nn.Module:
    from torch import nn

    return nn.LayerNorm(num_features, eps=eps, elementwise_affine=affine)


def _bn(num_features: int, *, eps: float, affine: bool, **_: Any) -> nn.Module:
    from torch import nn

    return nn.BatchNorm1d(num_features, eps=eps, affine=affine)


def _rms(num_features: int, *, eps: float, affine: bool, **_: Any) -> nn.Module:
    from torch import nn

    return nn.RMSNorm(num_features, eps=eps, elementwise_affine=affine)


def _group(num_features: int, *, eps: float, affine: bool, groups: int | None = None,
           **_: Any) -> nn.Module:
    from torch import nn

    return nn.GroupNorm(resolve_groups(num_features, groups), num_features, eps=eps,
                        affine=affine)


def _instance(num_features: int, *, eps: float, affine: bool, **_: Any) -> nn.Module:
    return _instance_module()(eps=eps, affine=affine)


def _none(num_features: int, **_: Any) -> nn.Module:
    from torch import nn

    return nn.Identity()


def _instance_module() -> type:
    """Build the InstanceNorm wrapper class lazily (it subclasses nn.Module)."""
    from torch import nn

    class FeatureInstanceNorm(nn.Module):
        """InstanceNorm1d over the feature axis of a (N, C) tensor.

        PyTorch reads a 2-D input to InstanceNorm1d as *unbatched* (C, L). lnexp never relies
        on that: it reshapes (N, C) -> (N, 1, C), i.e. every sample is one channel whose
        "length" is its C features, normalizes each sample over its features, and reshapes
        back. Affine parameters are therefore one scalar weight and bias (one channel).
        """

        def __init__(self, eps: float, affine: bool):
            super().__init__()
            self.inner = nn.InstanceNorm1d(1, eps=eps, affine=affine)

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.inner(x.unsqueeze(1)).squeeze(1)

    return FeatureInstanceNorm


NORMS: dict[str, NormSpec] = {
    spec.name: spec
    for spec in (
        NormSpec("bn", "BatchNorm1d", "features",
                 "standardizes each feature across the batch (dim 0)", _bn),
        NormSpec("ln", "LayerNorm", "samples",
                 "standardizes each sample across its features (dim 1)", _ln),
        NormSpec("rms", "RMSNorm", "neither",
                 "rescales each sample to RMS 1 across its features, without centring", _rms),
        # Equal-sized groups each at mean 0, variance 1 make the whole sample mean 0, var 1.
        NormSpec("group", "GroupNorm", "samples",
                 "standardizes each group of features within a sample, hence the sample "
                 "(groups=1 equals LayerNorm)", _group),
        NormSpec("instance", "InstanceNorm", "samples",
                 "standardizes each sample across its features, with one shared scalar affine "
                 "(input reshaped (N, C) -> (N, 1, C))", _instance),
        NormSpec("none", "Identity", "neither", "leaves the activations as they are", _none),
    )
}


def names() -> list[str]:
    """Registered norm names, in registry order."""
    return list(NORMS)


def get(name: str) -> NormSpec:
    """Look a norm up by name; an unknown name raises NormError listing the valid ones."""
    try:
        return NORMS[name]
    except KeyError:
        close = difflib.get_close_matches(name, NORMS, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise NormError(
            f"unknown norm '{name}'; expected one of: {', '.join(NORMS)}{hint}"
        ) from None


def create(name: str, num_features: int, *, eps: float = 1e-5, affine: bool = True,
           groups: int | None = None) -> nn.Module:
    """Build the norm `name` for `num_features` channels."""
    return get(name).factory(num_features, eps=eps, affine=affine, groups=groups)
