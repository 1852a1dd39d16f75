"""User norms: `model.norm: path/to/file.py:Name`, `package.module:Name`, or a name an installed
package registers in the entry-point group `lnexp.norms`.

`Name` is a class or factory called as `Name(channels, layout)` (layout: "features", "image" or
"sequence") that returns an nn.Module mapping a tensor of that layout to the same shape. Loading
a file RUNS ITS CODE (as `import` does). Which axes the norm standardizes is measured, not
declared (`measure`: perturb one input, see which outputs move); a norm may declare `axes` (an
axis name, or a dict layout -> axis) to have it checked against the measurement.

Every failure is a NormError naming the spec (the CLI prints it as one `error:` line, exit 2).
"""

from __future__ import annotations

import functools
import importlib
import importlib.util
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

from lnexp.errors import NormError
from lnexp.norms.spec import NormSpec

GROUP = "lnexp.norms"  # the entry-point group installed packages register norms in
LAYOUTS = ("features", "image", "sequence")
AXIS_NAMES = ("per_feature", "per_sample", "per_token", "per_instance", "per_group",
              "per_pixel", "neither")
# The probe batch per layout, besides the channels: N samples and the positions.
PROBE = {"features": (4,), "image": (4, 3, 3), "sequence": (4, 5)}
_TARGETS: dict[str, Any] = {}  # spec -> the class or factory it names (loaded once)


@functools.cache
def entry_point_names() -> list[str]:
    """The norm names installed packages register (entry-point group lnexp.norms)."""
    from importlib.metadata import entry_points

    return sorted({ep.name for ep in entry_points(group=GROUP)})


def _entry_point(name: str) -> Any:
    from importlib.metadata import entry_points

    ep = next(ep for ep in entry_points(group=GROUP) if ep.name == name)
    try:
        return ep.load()
    except Exception as exc:  # the package's own code: any failure is the user's
        raise NormError(f"user norm '{name}' (entry point {ep.value}): loading it failed: "
                        f"{_words(exc)}") from None


def _words(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


def _from_file(spec: str, path: str) -> Any:
    file = Path(path).expanduser()
    if not file.is_file():
        raise NormError(f"user norm '{spec}': no such file: {file}")
    key = str(file.resolve())
    name = f"lnexp_user_norm_{abs(hash((key, file.stat().st_mtime_ns)))}"
    if name in sys.modules:
        return sys.modules[name]
    loader = importlib.util.spec_from_file_location(name, file)
    if loader is None or loader.loader is None:
        raise NormError(f"user norm '{spec}': {file} is not a Python file")
    module = importlib.util.module_from_spec(loader)
    sys.modules[name] = module
    try:
        loader.loader.exec_module(module)
    except BaseException as exc:  # a syntax error or anything its top level raises
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise NormError(f"user norm '{spec}': running {file} failed: {_words(exc)}") from None
    return module


def _from_module(spec: str, dotted: str) -> Any:
    try:
        return importlib.import_module(dotted)
    except ModuleNotFoundError as exc:
        raise NormError(f"user norm '{spec}': no module named '{exc.name}' (a file needs its "
                        f".py: path/to/file.py:Name)") from None
    except Exception as exc:
        raise NormError(f"user norm '{spec}': importing {dotted} failed: {_words(exc)}") from None


def _target(spec: str) -> Any:
    """The class or factory `spec` names."""
    if ":" not in spec:
        return _entry_point(spec)
    where, _, attr = spec.rpartition(":")
    if not where or not attr or not attr.isidentifier():
        raise NormError(f"user norm '{spec}': expected path/to/file.py:Name or "
                        f"package.module:Name")
    file_like = where.endswith(".py") or "/" in where or "\\" in where
    module = _from_file(spec, where) if file_like else _from_module(spec, where)
    if not hasattr(module, attr):
        public = [n for n in vars(module) if not n.startswith("_") and callable(vars(module)[n])]
        raise NormError(f"user norm '{spec}': {where} has no attribute '{attr}' (it has: "
                        f"{', '.join(public) or 'nothing callable'})")
    return getattr(module, attr)


def _declared(spec: str, target: Any) -> dict[str, str]:
    said = getattr(target, "axes", None)
    if said is None:
        return {}
    table = dict.fromkeys(LAYOUTS, said) if isinstance(said, str) else said
    if not isinstance(table, dict) or not all(
            k in LAYOUTS and v in AXIS_NAMES for k, v in table.items()):
        raise NormError(f"user norm '{spec}': its `axes` must be one of {', '.join(AXIS_NAMES)} "
                        f"or a dict layout -> axis, not {said!r}")
    return dict(table)


@functools.cache
def load(spec: str) -> NormSpec:
    """The NormSpec of a user norm (its file or module is run once per process)."""
    target = _target(spec)
    if not callable(target):
        raise NormError(f"user norm '{spec}': {type(target).__name__} is not callable; it must "
                        f"be a class or factory called as Name(channels, layout)")
    title = getattr(target, "__name__", spec.rpartition(":")[2])
    _TARGETS[spec] = target

    return NormSpec(spec, title, f"user norm {spec} (axes measured)", UserFactory(spec),
                    user=True, declared=_declared(spec, target), axes={})


class UserFactory:
    """The registry's call shape for a user norm (picklable: figure workers receive results
    that hold it; it loads the norm again when called in another process)."""

    def __init__(self, spec: str):
        self.spec = spec

    def __call__(self, num_features: int, *, layout: str = "features", **_: Any) -> Any:
        load(self.spec)
        return _build(self.spec, _TARGETS[self.spec], num_features, layout)


def _build(spec: str, target: Any, channels: int, layout: str) -> Any:
    """Call the factory and wrap what it returns so its run-time failures name the spec."""
    from torch import nn

    from lnexp.norms.layers import UserNorm

    try:
        module = target(channels, layout)
    except Exception as exc:
        raise NormError(f"user norm '{spec}': calling it with ({channels}, '{layout}') raised "
                        f"{_words(exc)}") from None
    if not isinstance(module, nn.Module):
        raise NormError(f"user norm '{spec}': it returned {type(module).__name__}, not a "
                        f"torch nn.Module")
    return UserNorm(spec, module)


@functools.cache
def check(spec: str, layout: str, channels: int) -> tuple[str, int | None]:
    """Build the norm for `channels` channels of `layout`, run it on a probe batch, refuse
    what it does wrong (NormError) and measure its axis: (axis, groups or None)."""
    import torch

    load(spec)
    module = _build(spec, _TARGETS[spec], channels, layout)
    gen = torch.Generator().manual_seed(0)
    shape = (PROBE[layout][0], channels, *PROBE[layout][1:]) if layout == "image" else \
        (*PROBE[layout], channels)
    x = torch.randn(shape, generator=gen, dtype=torch.float64) * 2 + 0.5
    module = module.double().train()
    try:
        with torch.no_grad():
            y = module.inner(x)
    except Exception as exc:
        raise NormError(f"user norm '{spec}': its forward on a {layout} batch of shape "
                        f"{tuple(shape)} raised {_words(exc)}") from None
    if not isinstance(y, torch.Tensor) or y.shape != x.shape:
        got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
        raise NormError(f"user norm '{spec}': it changes the shape: {tuple(shape)} in, {got} "
                        f"out ({layout}); a norm must keep its input's shape")
    if not torch.isfinite(y).all():
        raise NormError(f"user norm '{spec}': it returns non-finite values (NaN/Inf) on a "
                        f"finite {layout} batch of shape {tuple(shape)}")
    return measure(module.inner, x, layout)


def moved(module: Any, x: Any, layout: str) -> Any:
    """Which outputs move when the first input (sample 0, channel 0, position 0) is perturbed:
    a bool (N, C, positions) tensor (float64, far above rounding: see experiment.sharing)."""
    import copy

    import torch

    with torch.no_grad():
        base = copy.deepcopy(module)(x)  # its own copy: running statistics stay as they were
        bumped = x.clone()
        bumped.view(-1)[0] += 1.0 + float(x.std())
        out = (module(bumped) - base).abs() > 1e-12 * max(1.0, float(base.abs().max()))
    block = out if layout == "image" else (out.unsqueeze(-1) if layout == "features"
                                           else out.transpose(1, 2))
    return block.reshape(block.shape[0], block.shape[1], -1)


def measure(module: Any, x: Any, layout: str) -> tuple[str, int | None]:
    """The axis whose values share the first value's statistics, from the perturbation (see
    `classify`): (axis, groups for per_group else None)."""
    return classify(moved(module, x, layout).cpu().numpy(), layout)


def classify(block: Any, layout: str) -> tuple[str, int | None]:
    """The smallest normalization set that holds every output that moved (bool (N, C,
    positions) block, the first value perturbed): per_token / per_pixel (its position, all
    channels), per_instance (its channel, all positions), per_group (the first C/G channels),
    per_sample, per_feature (its channel over the batch); only itself, or none of these:
    neither. "Holds" rather than "equals", so outputs an activation clamps (FRN's TLU, a ReLU
    inside the norm) do not hide the set."""
    import numpy as np

    _, c, p = block.shape
    if block.sum() <= 1:
        return "neither", None
    samples = np.flatnonzero(block.any(axis=(1, 2)))
    channels = np.flatnonzero(block.any(axis=(0, 2)))
    positions = np.flatnonzero(block.any(axis=(0, 1)))
    if list(samples) == [0]:
        if p > 1 and list(positions) == [0]:
            return ("per_pixel" if layout == "image" else "per_token"), None
        if p > 1 and list(channels) == [0]:
            return "per_instance", None
        k = int(channels[-1]) + 1
        if 1 < k < c and c % k == 0:
            return "per_group", c // k
        return "per_sample", None
    if list(channels) == [0]:
        return "per_feature", None
    return "neither", None


def measured_spec(spec: NormSpec, layout: str, channels: int) -> NormSpec:
    """`spec` on `layout` with the axis measured for `channels` channels."""
    axis, _ = check(spec.name, layout, channels)
    return replace(spec.on(layout), axes={layout: axis})
