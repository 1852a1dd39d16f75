"""`lnexp speed`: what each registered norm costs on this machine, eager and torch.compile'd.

For each shape (its number of dims picks the layout: 2 features, 3 sequence, 4 image), dtype
and norm defined on that layout, the norm's module (built by the norm registry, so every
registered norm, user norms included, is measured without code here) is timed with
`torch.utils.benchmark.Timer.blocked_autorange` (warm-up, repeated blocks, CUDA sync; the
thread count is set explicitly) for two passes: `forward` (m(x), x requiring grad as in a
training step) and `forward_backward` (m(x).backward(g)). Each is timed eager and, unless
turned off, torch.compile'd (dynamo reset first, static shapes); its first forward +
backward is the compile time, and a compile failure is recorded for that norm only.

Which implementation ran is read from the profiler: one eager forward is recorded with its
input shapes, and the ops that pass over the whole tensor (a leaf op with an input of x's
size, views and allocations aside) are listed. One such op that is a native ATen norm kernel
is a "fused" implementation; anything else is "composite" with its passes named.

Bytes moved are the minimum the pass must move: forward reads x and writes y; backward reads
grad_y and x and writes grad_x; parameters are counted once per pass. GB/s = bytes / median.
"""

from __future__ import annotations

import contextlib
import math
import os
import platform
import re
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

from lnexp.errors import SpeedError

PASSES = ("forward", "forward_backward")
MODES = ("eager", "compiled")
LAYOUT_OF_DIMS = {2: "features", 3: "sequence", 4: "image"}
# One default shape per layout, each 1M values (4 MiB in float32): big enough that a pass is
# memory-bound work, small enough that the defaults finish in under a minute on 2 CPU cores.
DEFAULT_SHAPES: dict[str, tuple[int, ...]] = {"features": (2048, 512),
                                              "sequence": (16, 128, 512),
                                              "image": (16, 64, 32, 32)}
DEFAULT_LAYOUT = "sequence"
# Ops that move no data (views, allocations, dtype queries): not passes over the tensor.
_NO_PASS = ("aten::view", "aten::as_strided", "aten::empty", "aten::empty_like",
            "aten::empty_strided", "aten::transpose", "aten::reshape", "aten::expand",
            "aten::expand_as", "aten::unsqueeze", "aten::squeeze", "aten::slice", "aten::narrow",
            "aten::permute", "aten::flatten", "aten::resize_", "aten::result_type",
            "aten::detach", "aten::alias", "aten::t", "aten::select", "aten::unfold",
            "aten::lift_fresh", "aten::_unsafe_view", "aten::to", "aten::type_as")
# ATen kernels that do their own passes even when they call helper ops (BatchNorm on a
# transposed tensor sums through aten::sum, then normalizes in its own loop).
_KERNELS = ("aten::native_layer_norm", "aten::native_batch_norm", "aten::native_group_norm",
            "aten::_native_batch_norm_legit", "aten::_batch_norm_with_update")
# Native ATen normalization kernels: one of them alone is a fused implementation.
# (aten::_fused_rms_norm is one on CUDA; on CPU it calls pow, mean, rsqrt, mul, which the
# profiler shows under it, so it is read as composite there.)
_FUSED = ("aten::native_layer_norm", "aten::native_batch_norm", "aten::native_group_norm",
          "aten::_native_batch_norm_legit", "aten::_fused_rms_norm", "aten::cudnn_batch_norm",
          "aten::miopen_batch_norm", "aten::_batch_norm_with_update")


@dataclass(frozen=True)
class SpeedOptions:
    """What `lnexp speed` measures. Empty `norms`: every norm defined on the shape's layout."""

    shapes: tuple[tuple[int, ...], ...] = (DEFAULT_SHAPES[DEFAULT_LAYOUT],)
    dtypes: tuple[str, ...] = ("float32",)
    norms: tuple[str, ...] = ()
    device: str = "cpu"
    compile: bool = True
    min_run_time: float = 0.2  # seconds of timed runs per measurement (blocked_autorange)
    threads: int | None = None  # torch threads; None: torch's default for this process


@dataclass
class Case:
    """One (shape, dtype, norm): its timings per mode and pass, or why it has none."""

    shape: tuple[int, ...]
    layout: str
    dtype: str
    norm: str
    title: str = ""
    implementation: str = ""
    passes: list[str] = field(default_factory=list)  # the full-tensor ops (eager forward)
    bytes: dict[str, int] = field(default_factory=dict)
    timings: dict[str, dict[str, dict[str, float]]] = field(default_factory=dict)
    compile_s: float | None = None
    compile_error: str | None = None
    error: str | None = None

    def median_ms(self, mode: str, pass_: str) -> float | None:
        t = self.timings.get(mode, {}).get(pass_)
        return None if t is None else t["median_ms"]

    def doc(self) -> dict[str, Any]:
        return {"shape": list(self.shape), "layout": self.layout, "dtype": self.dtype,
                "norm": self.norm, "title": self.title, "implementation": self.implementation,
                "passes": self.passes, "bytes": self.bytes, "timings": self.timings,
                "compile_s": self.compile_s, "compile_error": self.compile_error,
                "error": self.error}


def parse_shape(text: str) -> tuple[int, ...]:
    """'32x256x512' -> (32, 256, 512); 2 to 4 positive sizes (features, sequence, image)."""
    parts = text.lower().replace(",", "x").split("x")
    try:
        shape = tuple(int(p) for p in parts)
    except ValueError:
        raise SpeedError(f"--shape {text!r}: expected sizes joined by x, e.g. 32x256x512"
                          ) from None
    if len(shape) not in LAYOUT_OF_DIMS or min(shape) < 1:
        raise SpeedError(f"--shape {text!r}: expected 2 (N x C), 3 (N x T x C) or 4 "
                          f"(N x C x H x W) positive sizes")
    if math.prod(shape) > 2**31:
        raise SpeedError(f"--shape {text!r}: {math.prod(shape):,} values is more than this "
                          f"benchmark allocates (2^31)")
    return shape


def layout_of(shape: tuple[int, ...]) -> str:
    return LAYOUT_OF_DIMS[len(shape)]


def channels(shape: tuple[int, ...]) -> int:
    """The norm's channel count: C is dim 1 of an image, the last dim otherwise."""
    return shape[1] if len(shape) == 4 else shape[-1]


def check_dtypes(dtypes: tuple[str, ...]) -> None:
    from lnexp.registry import DTYPES

    for d in dtypes:
        if d not in DTYPES:
            raise SpeedError(f"--dtype {d!r}: expected one of {', '.join(DTYPES)}")


def norms_for(shape: tuple[int, ...], selected: tuple[str, ...]) -> list[str]:
    """The norms measured at this shape: the selected ones, else all defined on its layout."""
    from lnexp import norms

    if not selected:
        return norms.defined_on(layout_of(shape))
    return list(selected)


def environment(opts: SpeedOptions) -> dict[str, Any]:
    import torch

    load = os.getloadavg() if hasattr(os, "getloadavg") else None
    return {"torch": torch.__version__, "python": platform.python_version(),
            "machine": platform.machine(), "processor": _cpu_model(),
            "cpus": os.cpu_count(), "threads": opts.threads or torch.get_num_threads(),
            "device": opts.device,
            "device_name": (torch.cuda.get_device_name() if opts.device == "cuda" else None),
            "load_average": list(load) if load else None}


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


def check_device(device: str) -> None:
    import torch

    if device not in ("cpu", "cuda"):
        raise SpeedError(f"--device {device!r}: expected cpu or cuda")
    if device == "cuda" and not torch.cuda.is_available():
        raise SpeedError("--device cuda: no CUDA device is available to this torch "
                          f"({torch.__version__})")


def run(opts: SpeedOptions, on_case: Callable[[Case], None] | None = None) -> list[Case]:
    """Measure every (shape, dtype, norm); `on_case` is called as each one finishes."""
    import torch

    check_device(opts.device)
    check_dtypes(opts.dtypes)
    cases: list[Case] = []
    previous = torch.get_num_threads()
    if opts.threads:
        torch.set_num_threads(opts.threads)
    try:
        for shape, dtype, name in _grid(opts):
            case = measure_case(shape, dtype, name, opts)
            cases.append(case)
            if on_case is not None:
                on_case(case)
    finally:
        torch.set_num_threads(previous)
    return cases


def _grid(opts: SpeedOptions) -> Iterator[tuple[tuple[int, ...], str, str]]:
    for shape in opts.shapes:
        for dtype in opts.dtypes:
            for name in norms_for(shape, opts.norms):
                yield shape, dtype, name


def build(name: str, shape: tuple[int, ...], dtype: str, device: str) -> tuple[Any, str]:
    """(the norm module for this shape on device in dtype, its title). NormError and
    SpeedError propagate (an unknown norm is the user's mistake, reported at once)."""
    import torch

    from lnexp import norms

    layout = layout_of(shape)
    spec = norms.get(name).on(layout)
    module = norms.create(name, channels(shape), layout=layout)
    return module.to(device=device, dtype=getattr(torch, dtype)), spec.title


def measure_case(shape: tuple[int, ...], dtype: str, name: str, opts: SpeedOptions) -> Case:
    """Time one norm at one shape and dtype, eager then compiled."""
    import torch

    from lnexp import norms

    layout = layout_of(shape)
    case = Case(shape, layout, dtype, name)
    why = norms.get(name).not_defined_on(layout)
    if why:
        case.error = f"not defined on {layout}: {why}"
        return case
    module, case.title = build(name, shape, dtype, opts.device)
    x = torch.randn(shape, device=opts.device, dtype=getattr(torch, dtype), requires_grad=True)
    g = torch.randn_like(x)
    case.bytes = bytes_moved(x, module)
    try:
        case.passes, case.implementation = implementation(module, x)
        case.timings["eager"] = time_passes(module, x, g, opts)
    except Exception as exc:  # a norm that cannot run at this dtype: reported, not fatal
        case.error = f"{type(exc).__name__}: {_first_line(exc)}"
        return case
    if opts.compile:
        _compiled(case, module, x, g, opts)
    return case


def _compiled(case: Case, module: Any, x: Any, g: Any, opts: SpeedOptions) -> None:
    import torch

    try:
        # A fresh compile per case, for this shape only: without the reset dynamo would reuse
        # an earlier norm's graph or recompile with dynamic shapes at the second shape.
        torch._dynamo.reset()
        t0 = time.perf_counter()
        compiled = torch.compile(module, dynamic=False)
        _step(compiled, x, g)
        _sync(opts.device)
        case.compile_s = time.perf_counter() - t0
        case.timings["compiled"] = time_passes(compiled, x, g, opts)
    except Exception as exc:  # torch.compile's failures are per norm, never fatal
        case.compile_error = f"{type(exc).__name__}: {_first_line(exc)}"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return text[0][:300] if text else ""


def _sync(device: str) -> None:
    import torch

    if device == "cuda":
        torch.cuda.synchronize()


def _step(m: Any, x: Any, g: Any) -> None:
    """One forward + backward; x's gradient is dropped first, so it is written, not added."""
    x.grad = None
    m(x).backward(g)


def time_passes(m: Any, x: Any, g: Any, opts: SpeedOptions) -> dict[str, dict[str, float]]:
    """Median and IQR (ms) of each pass, by torch.utils.benchmark after a warm-up."""
    import torch
    from torch.utils import benchmark

    out: dict[str, dict[str, float]] = {}
    stmts = {"forward": "m(x)", "forward_backward": "step(m, x, g)"}
    for pass_, stmt in stmts.items():
        for _ in range(2):  # warm-up: caches, allocator, lazy init
            _step(m, x, g) if pass_ == "forward_backward" else m(x)
        timer = benchmark.Timer(stmt=stmt, globals={"m": m, "x": x, "g": g, "step": _step},
                                num_threads=torch.get_num_threads())
        meas = timer.blocked_autorange(min_run_time=opts.min_run_time)
        median = float(meas.median)
        nbytes = _pass_bytes(x, m, pass_)
        out[pass_] = {"median_ms": median * 1e3, "iqr_ms": float(meas.iqr) * 1e3,
                      "min_ms": float(min(meas.times)) * 1e3,
                      "p25_ms": _quantile(meas.times, 0.25) * 1e3,
                      "p75_ms": _quantile(meas.times, 0.75) * 1e3,
                      "runs": int(len(meas.times) * meas.number_per_run),
                      "blocks": len(meas.times),
                      "gb_per_s": nbytes / median / 1e9 if median > 0 else float("nan")}
    return out


def _quantile(times: list[float], q: float) -> float:
    """torch.utils.benchmark's own quantile (the one its IQR is taken from)."""
    import numpy as np

    return float(np.quantile(np.asarray(times, dtype=np.float64), q))


def _param_bytes(m: Any) -> int:
    return sum(p.numel() * p.element_size() for p in m.parameters())


def _pass_bytes(x: Any, m: Any, pass_: str) -> int:
    n = x.numel() * x.element_size()
    params = _param_bytes(getattr(m, "_orig_mod", m))
    # forward: read x, write y; backward: read grad_y and x, write grad_x (+ params each pass)
    return 2 * n + params if pass_ == "forward" else 5 * n + 2 * params


def bytes_moved(x: Any, m: Any) -> dict[str, int]:
    return {p: _pass_bytes(x, m, p) for p in PASSES}


# The profiler's own status lines ("USDT:2026-12-03 23:02:54 23251:23251
# SyncActivityProfilerHandler.cpp:52] profiler_start", "STAGE:..."), written by libkineto to
# file descriptor 2 on every profile (torch 2.13; KINETO_LOG_LEVEL does not silence USDT).
_KINETO_LINE = re.compile(rb"^[A-Z]+:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d \d+:\d+ \S+\.cpp:\d+\] ")


@contextlib.contextmanager
def _kineto_lines_dropped() -> Iterator[None]:
    """Native stderr goes to a temporary file while the profiler runs; its lines come back
    afterwards, all but libkineto's status lines (noise in the user's terminal, two per norm)."""
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as tmp:
        os.dup2(tmp.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            tmp.seek(0)
            kept = [line for line in tmp.read().splitlines(keepends=True)
                    if not _KINETO_LINE.match(line)]
            if kept:
                os.write(2, b"".join(kept))


def implementation(m: Any, x: Any) -> tuple[list[str], str]:
    """(the ops that passed over the whole tensor in one eager forward, a verdict)."""
    from torch.profiler import ProfilerActivity, profile

    with _kineto_lines_dropped(), profile(activities=[ProfilerActivity.CPU],
                                          record_shapes=True) as prof:
        m(x)
    size = x.numel()

    def full(ev: Any) -> bool:
        shapes = [s for s in (ev.input_shapes or []) if isinstance(s, list)
                  and s and all(isinstance(d, int) for d in s)]
        return ev.name not in _NO_PASS and any(math.prod(s) == size for s in shapes)

    def below(ev: Any) -> bool:  # does an op under it pass over the tensor?
        return any(full(c) or below(c) for c in ev.cpu_children)

    ops = [ev.name for ev in prof.events()
           if ev.name.startswith("aten::") and full(ev)
           and (not below(ev) or ev.name in _KERNELS)]
    short = [o.removeprefix("aten::") for o in ops]
    if not ops:
        return ops, "identity (no pass)"
    fused = [o for o in short if "aten::" + o in _FUSED]
    if len(fused) == 1:
        rest = [o for o in short if o != fused[0]]
        return ops, f"fused {fused[0]}" + (f" + {', '.join(rest)}" if rest else "")
    return ops, f"composite: {', '.join(short)}"
