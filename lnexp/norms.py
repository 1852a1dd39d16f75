"""Norm registry: one map from a config name to a factory with one call shape.

Every factory is called as ``factory(num_features, eps=..., affine=..., groups=..., layout=...)``
and returns an ``nn.Module`` that maps a tensor of the layout (``(N, C)``, ``(N, C, H, W)`` or
``(N, T, C)``) to the same shape, normalizing over the axes in docs/findings.md's table. Options a
norm does not use are ignored. torch is imported inside the factories only, so this module is
cheap to import (the CLI and the config schema read the registry without loading torch).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

from lnexp.errors import NormError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class NormSpec:
    """What a registered norm is, and what it is expected to standardize on each layout.

    `get(name)` returns the features-layout view; `spec.on(layout)` the view for another
    layout (its title and summary say what the norm does there).
    """

    name: str
    title: str
    summary: str
    factory: Callable[..., nn.Module]
    # The statistic axis (lnexp.registry.AXES) it pins to mean 0 / var 1, per layout; a
    # layout missing here is one the norm is not defined on.
    axes: dict[str, str] = field(default_factory=dict)
    # Why it is not defined on a layout (validate refuses the config with this reason).
    undefined: dict[str, str] = field(default_factory=dict)
    # Title and summary on image and sequence layouts (title/summary are for features).
    titles: dict[str, str] = field(default_factory=dict)
    summaries: dict[str, str] = field(default_factory=dict)
    layout: str = "features"

    def not_defined_on(self, layout: str) -> str | None:
        """Why this norm cannot run on `layout`, or None."""
        return self.undefined.get(layout)

    def on(self, layout: str) -> NormSpec:
        """This norm as it is built on `layout` (title and summary for that layout)."""
        return replace(self, title=self.titles.get(layout, self.title),
                       summary=self.summaries.get(layout, self.summary), layout=layout)

    @property
    def standardizes_axis(self) -> str:
        """The statistic axis it pins on its layout ('per_sample', ...) or 'neither'."""
        return self.axes.get(self.layout, "neither")

    @property
    def axis(self) -> str:
        """The same in words ('features', 'samples', 'groups', ..., 'neither')."""
        from lnexp.registry import AXIS_WORDS

        return AXIS_WORDS.get(self.standardizes_axis, "neither")


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


# Each factory takes the channel count first and the layout as a keyword: the module it returns
# maps a tensor of that layout ((N, C), (N, C, H, W) or (N, T, C)) to the same shape.

def _ln(num_features: int, *, eps: float, affine: bool, layout: str = "features",
        **_: Any) -> nn.Module:
    from torch import nn

    if layout == "image":
        # The GN paper's LN: one mean/variance per sample over (C, H, W), affine per channel
        # (independent of H, W), which is exactly GroupNorm with one group.
        return nn.GroupNorm(1, num_features, eps=eps, affine=affine)
    return nn.LayerNorm(num_features, eps=eps, elementwise_affine=affine)  # per row / token


def _bn(num_features: int, *, eps: float, affine: bool, layout: str = "features",
        **_: Any) -> nn.Module:
    from torch import nn

    if layout == "image":
        return nn.BatchNorm2d(num_features, eps=eps, affine=affine)
    bn = nn.BatchNorm1d(num_features, eps=eps, affine=affine)
    return _channels_last()(bn) if layout == "sequence" else bn


def _rms(num_features: int, *, eps: float, affine: bool, layout: str = "features",
         **_: Any) -> nn.Module:
    from torch import nn

    if layout == "image":
        return _sample_rms()(num_features, eps=eps, affine=affine)
    return nn.RMSNorm(num_features, eps=eps, elementwise_affine=affine)


def _group(num_features: int, *, eps: float, affine: bool, groups: int | None = None,
           layout: str = "features", **_: Any) -> nn.Module:
    from torch import nn

    gn = nn.GroupNorm(resolve_groups(num_features, groups), num_features, eps=eps,
                      affine=affine)
    return _channels_last()(gn) if layout == "sequence" else gn


def _instance(num_features: int, *, eps: float, affine: bool, layout: str = "features",
              **_: Any) -> nn.Module:
    from torch import nn

    if layout == "image":
        return nn.InstanceNorm2d(num_features, eps=eps, affine=affine)
    return _channels_last()(nn.InstanceNorm1d(num_features, eps=eps, affine=affine))


def _none(num_features: int, **_: Any) -> nn.Module:
    from torch import nn

    return nn.Identity()


def _channels_last() -> type:
    """Build the (N, T, C) adapter class lazily (it subclasses nn.Module)."""
    from torch import nn

    class ChannelsLast(nn.Module):
        """Runs a channels-first norm (BatchNorm1d, GroupNorm, InstanceNorm1d: (N, C, T)) on a
        (N, T, C) sequence: transpose, normalize, transpose back."""

        def __init__(self, inner: nn.Module):
            super().__init__()
            self.inner = inner

        def forward(self, x):  # type: ignore[no-untyped-def]
            return self.inner(x.transpose(1, 2)).transpose(1, 2)

    return ChannelsLast


def _sample_rms() -> type:
    """Build the image RMSNorm class lazily: LN's axes (C, H, W), not centred."""
    import torch
    from torch import nn

    class SampleRMSNorm(nn.Module):
        """x / sqrt(mean over (C, H, W) of x^2 + eps), then a per-channel scale: RMSNorm on
        the GN paper's LayerNorm axes. nn.RMSNorm would need H, W for its scale."""

        def __init__(self, num_features: int, eps: float, affine: bool):
            super().__init__()
            self.eps = eps
            self.weight = nn.Parameter(torch.ones(num_features)) if affine else None

        def forward(self, x):  # type: ignore[no-untyped-def]
            ms = x.pow(2).mean(dim=tuple(range(1, x.dim())), keepdim=True)
            y = x * torch.rsqrt(ms + self.eps)
            if self.weight is not None:
                y = y * self.weight.view(1, -1, *([1] * (x.dim() - 2)))
            return y

    return SampleRMSNorm


_NO_INSTANCE = ("a (N, C) sample has one value per channel, so InstanceNorm has nothing to "
                "normalize over (it standardizes each channel over its H×W positions or T "
                "tokens); use data.layout: image or sequence")
NORMS: dict[str, NormSpec] = {
    spec.name: spec
    for spec in (
        NormSpec("bn", "BatchNorm1d",
                 "standardizes each feature across the batch (dim 0)", _bn,
                 axes={"features": "per_feature", "image": "per_feature",
                       "sequence": "per_feature"},
                 titles={"image": "BatchNorm2d", "sequence": "BatchNorm1d on (N,C,T)"},
                 summaries={"image": "standardizes each channel over the batch and its "
                                     "positions (N, H, W)",
                            "sequence": "standardizes each channel over the batch and its "
                                        "tokens (N, T)"}),
        NormSpec("ln", "LayerNorm",
                 "standardizes each sample across its features (dim 1)", _ln,
                 axes={"features": "per_sample", "image": "per_sample",
                       "sequence": "per_token"},
                 titles={"image": "LayerNorm (C,H,W)", "sequence": "LayerNorm per token"},
                 summaries={"image": "standardizes each sample over all its values (C, H, W), "
                                     "as in the GroupNorm paper",
                            "sequence": "standardizes each token over its channels (C), as in "
                                        "a transformer"}),
        NormSpec("rms", "RMSNorm",
                 "rescales each sample to RMS 1 across its features, without centring", _rms,
                 axes={"features": "neither", "image": "neither", "sequence": "neither"},
                 summaries={"image": "rescales each sample to RMS 1 over (C, H, W), without "
                                     "centring",
                            "sequence": "rescales each token to RMS 1 over its channels, "
                                        "without centring"}),
        # Equal-sized groups each at mean 0, variance 1 make the whole sample mean 0, var 1.
        NormSpec("group", "GroupNorm",
                 "standardizes each group of features within a sample, hence the sample "
                 "(groups=1 equals LayerNorm)", _group,
                 axes={"features": "per_group", "image": "per_group", "sequence": "per_group"},
                 summaries={"image": "standardizes each (sample, group of channels) over the "
                                     "group's channels and positions",
                            "sequence": "standardizes each (sample, group of channels) over the "
                                        "group's channels and the tokens"}),
        NormSpec("instance", "InstanceNorm",
                 "not defined on (N, C) features", _instance,
                 axes={"image": "per_instance", "sequence": "per_instance"},
                 undefined={"features": _NO_INSTANCE},
                 titles={"image": "InstanceNorm2d", "sequence": "InstanceNorm1d on (N,C,T)"},
                 summaries={"image": "standardizes each (sample, channel) over its positions "
                                     "(H, W)",
                            "sequence": "standardizes each (sample, channel) over the tokens "
                                        "(T)"}),
        NormSpec("none", "Identity", "leaves the activations as they are", _none,
                 axes={"features": "neither", "image": "neither", "sequence": "neither"}),
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


def defined_on(layout: str) -> list[str]:
    """The norms defined on a layout, in registry order (what `compare` takes by default)."""
    return [n for n, spec in NORMS.items() if spec.not_defined_on(layout) is None]


def create(name: str, num_features: int, *, eps: float = 1e-5, affine: bool = True,
           groups: int | None = None, layout: str = "features") -> nn.Module:
    """Build the norm `name` for `num_features` channels of a `layout` tensor."""
    return get(name).factory(num_features, eps=eps, affine=affine, groups=groups,
                             layout=layout)
