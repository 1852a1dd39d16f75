"""Plain-language findings from an InspectOutcome: the lines printed under the table and kept
in inspect.json as `notes`. Derived from the measured numbers only."""

from __future__ import annotations

import numpy as np

from lnexp.inspect.outcome import InspectOutcome, LayerReport, Token

OUTLIER_RATIO = 20.0  # an input dim this many times the median dim's absmax is worth a line
AMPLIFIED_RATIO = 5.0  # ... and an output dim this many times, with one of the top-3 γ
DEAD_GAMMA = 1e-6  # |γ| below this (relative to the median |γ|) switches a dim off
MAX_LINES = 3  # per kind of finding


def _g(x: float) -> str:
    return f"{x:.3g}"


def _carried(tokens: list[Token]) -> str:
    names = [t.token if t.token is not None else f"input {t.input}" for t in tokens]
    if not names:
        return ""
    uniq = list(dict.fromkeys(names))
    return f", carried by {uniq[0]}" if len(uniq) == 1 else f", carried by {', '.join(uniq)}"


def _outlier_line(r: LayerReport) -> str:
    o = r.pre.outliers[0]
    t = r.pre.per_token
    line = (f"{r.name}: input dim {o.dim} reaches {_g(o.absmax)}, {_g(o.ratio)}× the median "
            f"dim{_carried(o.tokens)}")
    if t.largest_var:
        line += (f"; per-token variance up to {_g(t.var_max)} ({t.largest_var[0].token or 'input'}"
                 f") vs median {_g(t.var_quantiles['p50'])}")
    return line


def _amplified(r: LayerReport) -> str | None:
    if r.weight is None or not r.weight.at_outliers or r.post is None or not r.post.outliers:
        return None
    e = r.weight.at_outliers[0]
    n = r.weight.values.size
    post = next((o for o in r.post.outliers if o.dim == e.dim), None)
    if e.rank is None or e.rank > 3 or post is None or post.ratio < AMPLIFIED_RATIO:
        return None
    which = "the largest" if e.rank == 1 else f"the {e.rank}{'nd' if e.rank == 2 else 'rd'} largest"
    return (f"{r.name}: γ[{e.dim}] = {_g(e.value)} is {which} of {n}, so after the norm "
            f"dim {e.dim} is still {_g(post.ratio)}× the median")


def _dead(r: LayerReport) -> str | None:
    if r.weight is None or r.weight.values.size < 2:
        return None
    scale = float(np.median(np.abs(r.weight.values)))
    dead = [e for e in r.weight.smallest_abs if abs(e.value) < DEAD_GAMMA * scale]
    if not dead:
        return None
    dims = ", ".join(f"γ[{e.dim}] = {_g(e.value)}" for e in dead)
    what = "these dims" if len(dead) > 1 else f"dim {dead[0].dim}"
    return f"{r.name}: {dims} (median |γ| {_g(scale)}): switches {what} off"


def findings(o: InspectOutcome) -> list[str]:
    """A few lines saying what stands out, largest effects first."""
    lines: list[str] = []
    big = sorted((r for r in o.layers
                  if r.pre.outliers and r.pre.outliers[0].ratio >= OUTLIER_RATIO),
                 key=lambda r: -r.pre.outliers[0].ratio)
    lines += [_outlier_line(r) for r in big[:MAX_LINES]]
    lines += [s for s in (_amplified(r) for r in o.layers) if s][:MAX_LINES]
    lines += [s for s in (_dead(r) for r in o.layers) if s][:MAX_LINES]
    blind = [r.name for r in o.layers if r.post is None]
    if blind:
        lines.append(f"output not measured (not a floating-point tensor lnexp can find) for "
                     f"{len(blind)} layer(s): {', '.join(blind[:MAX_LINES])}"
                     + (" ..." if len(blind) > MAX_LINES else ""))
    worst = min(o.layers, key=lambda r: r.quant.per_tensor_sqnr_db)
    q = worst.quant
    lines.append(f"int8 of {worst.name}'s input: one scale per tensor gives "
                 f"{q.per_tensor_sqnr_db:.1f} dB SQNR and rounds "
                 f"{q.per_tensor_zero_fraction:.0%} of entries to 0; one scale per token gives "
                 f"{q.per_token_sqnr_db:.1f} dB")
    bns = [r for r in o.layers if r.batchnorm is not None and r.batchnorm.rel_rms_diff is not None]
    if bns:
        r = max(bns, key=lambda r: r.batchnorm.rel_rms_diff)  # type: ignore[union-attr]
        lines.append(f"BatchNorm train vs eval mode at batch {o.options['batch_size']}: "
                     f"{r.name}'s output differs by {r.batchnorm.rel_rms_diff:.1%} (rms, "  # type: ignore[union-attr]
                     f"relative)")
    from lnexp.inspect import bn_running

    lines += bn_running.notes(o)
    from lnexp.inspect.depth_notes import depth_lines

    lines += depth_lines(o)
    m = o.batchnorm_model
    if m is not None and m.predictions:
        lines.append(f"with every BatchNorm in train mode, {m.predictions_changed} of "
                     f"{m.predictions} predictions change")
    elif m is not None and m.skipped and not m.batches:
        lines.append("BatchNorm train mode is not defined here (one value per channel in "
                     "each batch): use a larger --batch-size")
    return lines
