"""Norm registry: one map from a config name to a factory with one call shape.

Every factory is called as ``factory(num_features, eps=..., affine=..., groups=..., layout=...,
**options)`` (options: ``dyt_alpha``, ``renorm_rmax``, ``renorm_dmax``) and returns an
``nn.Module`` that maps a tensor of the layout (``(N, C)``, ``(N, C, H, W)`` or ``(N, T, C)``)
to the same shape, normalizing over the axes in docs/norms.md. Options a norm does not use are
ignored. torch is imported inside the factories only (lnexp.norms.layers), so this module is
cheap to import (the CLI and the config schema read the registry without loading torch).

`NORMS` is plain data, name -> NormSpec (factory + metadata). Besides its names, `model.norm`
takes a user norm: `path/to/file.py:Name`, `package.module:Name` or a name an installed package
registers in the entry-point group `lnexp.norms` (lnexp.norms.user).
"""

from __future__ import annotations

import difflib
import math
from typing import TYPE_CHECKING, Any

from lnexp.errors import NormError
from lnexp.norms.spec import NormSpec

__all__ = ["NORMS", "NormSpec", "compare_default", "create", "defined_on", "get", "is_user",
           "names", "own_axis", "resolve", "resolve_groups", "user_problems"]

if TYPE_CHECKING:
    from torch import nn


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

    from lnexp.norms.layers import ChannelsLast

    if layout == "image":
        return nn.BatchNorm2d(num_features, eps=eps, affine=affine)
    bn = nn.BatchNorm1d(num_features, eps=eps, affine=affine)
    return ChannelsLast(bn) if layout == "sequence" else bn


def _rms(num_features: int, *, eps: float, affine: bool, layout: str = "features",
         **_: Any) -> nn.Module:
    from torch import nn

    from lnexp.norms.layers import SampleRMSNorm

    if layout == "image":
        return SampleRMSNorm(num_features, eps=eps, affine=affine)
    return nn.RMSNorm(num_features, eps=eps, elementwise_affine=affine)


def _group(num_features: int, *, eps: float, affine: bool, groups: int | None = None,
           layout: str = "features", **_: Any) -> nn.Module:
    from torch import nn

    from lnexp.norms.layers import ChannelsLast

    gn = nn.GroupNorm(resolve_groups(num_features, groups), num_features, eps=eps,
                      affine=affine)
    return ChannelsLast(gn) if layout == "sequence" else gn


def _instance(num_features: int, *, eps: float, affine: bool, layout: str = "features",
              **_: Any) -> nn.Module:
    from torch import nn

    from lnexp.norms.layers import ChannelsLast

    if layout == "image":
        return nn.InstanceNorm2d(num_features, eps=eps, affine=affine)
    return ChannelsLast(nn.InstanceNorm1d(num_features, eps=eps, affine=affine))


def _none(num_features: int, **_: Any) -> nn.Module:
    from torch import nn

    return nn.Identity()


def _dyt(num_features: int, *, affine: bool, layout: str = "features", dyt_alpha: float = 0.5,
         **_: Any) -> nn.Module:
    from lnexp.norms.layers import DyT

    return DyT(num_features, alpha=dyt_alpha, affine=affine, layout=layout)


def _ln_pixel(num_features: int, *, eps: float, affine: bool, layout: str = "features",
              **_: Any) -> nn.Module:
    from torch import nn

    from lnexp.norms.layers import PixelLayerNorm

    if layout == "image":
        return PixelLayerNorm(num_features, eps=eps, affine=affine)
    return nn.LayerNorm(num_features, eps=eps, elementwise_affine=affine)


def _batch_renorm(num_features: int, *, eps: float, affine: bool, layout: str = "features",
                  renorm_rmax: float = 3.0, renorm_dmax: float = 5.0, **_: Any) -> nn.Module:
    from lnexp.norms.layers import BatchRenorm

    return BatchRenorm(num_features, eps=eps, affine=affine, layout=layout, rmax=renorm_rmax,
                       dmax=renorm_dmax)


def _frn(num_features: int, *, eps: float, affine: bool, layout: str = "features",
         **_: Any) -> nn.Module:
    from lnexp.norms.layers import FRN

    return FRN(num_features, eps=eps, affine=affine, layout=layout)


_NO_INSTANCE = ("a (N, C) sample has one value per channel, so InstanceNorm has nothing to "
                "normalize over (it standardizes each channel over its H×W positions or T "
                "tokens); use data.layout: image or sequence")
_EVERY = ("features", "image", "sequence")
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
                 axes=dict.fromkeys(_EVERY, "neither"),
                 summaries={"image": "rescales each sample to RMS 1 over (C, H, W), without "
                                     "centring",
                            "sequence": "rescales each token to RMS 1 over its channels, "
                                        "without centring"}),
        # Equal-sized groups each at mean 0, variance 1 make the whole sample mean 0, var 1.
        NormSpec("group", "GroupNorm",
                 "standardizes each group of features within a sample, hence the sample "
                 "(groups=1 equals LayerNorm)", _group,
                 axes=dict.fromkeys(_EVERY, "per_group"),
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
                 axes=dict.fromkeys(_EVERY, "neither")),
        # The 2017-2025 norms (docs/norms.md: paper and formula of each).
        NormSpec("dyt", "DynamicTanh",
                 "maps each value through gamma·tanh(alpha·x) + beta, no statistics (Zhu et al. "
                 "2025)", _dyt, axes=dict.fromkeys(_EVERY, "neither")),
        NormSpec("ln_pixel", "LayerNorm",
                 "standardizes each sample across its features (dim 1); ln_pixel differs from "
                 "ln on images only", _ln_pixel,
                 axes={"features": "per_sample", "image": "per_pixel", "sequence": "per_token"},
                 titles={"image": "LayerNorm2d per pixel", "sequence": "LayerNorm per token"},
                 summaries={"image": "standardizes each pixel (n, h, w) over its C channels, "
                                     "as ConvNeXt / timm LayerNorm2d",
                            "sequence": "standardizes each token over its channels (C), as ln"}),
        NormSpec("batch_renorm", "BatchRenorm",
                 "standardizes each feature across the batch, then corrects towards the running "
                 "statistics by clipped r, d (Ioffe 2017)", _batch_renorm,
                 axes=dict.fromkeys(_EVERY, "per_feature"),
                 summaries={"image": "standardizes each channel over (N, H, W), then r·x + d "
                                     "towards the running statistics",
                            "sequence": "standardizes each channel over (N, T), then r·x + d "
                                        "towards the running statistics"}),
        NormSpec("frn", "FRN+TLU",
                 "divides each (sample, channel) by its RMS over its positions, no centring, "
                 "then max(y, tau) (Singh & Krishnan 2020)", _frn,
                 axes=dict.fromkeys(_EVERY, "neither"),
                 summaries={"features": "one value per (sample, feature): x / sqrt(x² + eps + "
                                        "|eps_l|), learned eps, then max(y, tau)",
                            "image": "divides each (sample, channel) by its RMS over H×W, no "
                                     "centring, then max(y, tau)",
                            "sequence": "divides each (sample, channel) by its RMS over the T "
                                        "tokens, no centring, then max(y, tau)"}),
    )
}


# What a user norm spec looks like (the JSON schema's pattern): WHERE:Name, Name an identifier.
USER_PATTERN = r"^.+:[A-Za-z_][A-Za-z0-9_]*$"


def names() -> list[str]:
    """Registered norm names, in registry order (user norms are not listed)."""
    return list(NORMS)


def is_user(name: str) -> bool:
    """Whether `name` is a user norm: `file.py:Name`, `pkg.mod:Name` or an entry-point name."""
    return name not in NORMS and (":" in name or name in _entry_point_names())


def _entry_point_names() -> list[str]:
    from lnexp.norms.user import entry_point_names

    return entry_point_names()


def get(name: str) -> NormSpec:
    """Look a norm up by name (or load a user norm, which runs its file); an unknown name
    raises NormError listing the valid ones."""
    if name in NORMS:
        return NORMS[name]
    if is_user(name):
        from lnexp.norms.user import load

        return load(name)
    known = [*NORMS, *_entry_point_names()]
    close = difflib.get_close_matches(name, known, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    raise NormError(
        f"unknown norm '{name}'; expected one of: {', '.join(known)}, or a user norm "
        f"file.py:Name / package.module:Name{hint}"
    ) from None


def resolve(name: str, layout: str, channels: int) -> NormSpec:
    """The norm as it is built on `layout` for `channels` channels; a user norm's axes are
    measured there (lnexp.norms.user.measure)."""
    spec = get(name)
    if not spec.user:
        return spec.on(layout)
    from lnexp.norms.user import measured_spec

    return measured_spec(spec, layout, channels)


def own_axis(name: str, layout: str, channels: int,
             groups: int | None = None) -> tuple[str, int | None]:
    """The statistic axis the norm pins on `layout` and, for per_group, the group count:
    registry data for a built-in, the measurement for a user norm (which builds and runs it)."""
    if name == "group":
        return "per_group", resolve_groups(channels, groups)
    if is_user(name):
        from lnexp.norms.user import check

        return check(name, layout, channels)
    return get(name).on(layout).standardizes_axis, None


def user_problems(name: str, layout: str, widths: list[int]) -> list[str]:
    """A user norm built for each width of `layout` and run on a probe batch: what it does
    wrong (raises, returns a non-module, changes the shape, returns NaN/Inf), one problem
    each (validate, run, compare and sweep refuse the config with them)."""
    from lnexp.norms.user import check

    for width in widths:
        try:
            check(name, layout, width)
        except NormError as exc:
            return [f"model.norm: {exc}"]
    return []


def defined_on(layout: str) -> list[str]:
    """The norms defined on a layout, in registry order (what `compare` takes by default)."""
    return [n for n, spec in NORMS.items() if spec.not_defined_on(layout) is None]


# What `lnexp compare` runs when no norm is named: the six classic norms (the 2017-2025 ones are
# named, e.g. `lnexp compare bn batch_renorm frn`), so compare on the default config stays as
# fast as before.
COMPARE_DEFAULT: tuple[str, ...] = ("bn", "ln", "rms", "group", "instance", "none")


def compare_default(layout: str) -> list[str]:
    """The norms `compare` takes when none is named: COMPARE_DEFAULT defined on `layout`."""
    return [n for n in defined_on(layout) if n in COMPARE_DEFAULT]


def create(name: str, num_features: int, *, eps: float = 1e-5, affine: bool = True,
           groups: int | None = None, layout: str = "features", **options: Any) -> nn.Module:
    """Build the norm `name` for `num_features` channels of a `layout` tensor; `options`
    (dyt_alpha, renorm_rmax, renorm_dmax) reach the norms that use them."""
    return get(name).factory(num_features, eps=eps, affine=affine, groups=groups,
                             layout=layout, **options)
