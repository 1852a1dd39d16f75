"""rich tables of the depth measurements: per block / per sampled layer for one model
(`depth_tables`), and one row per model for `lnexp inspect A B ...` (`summary_rows`, which
side_by_side.json also keeps). Nothing here computes a statistic beyond picking extremes."""

from __future__ import annotations

import math
from typing import Any

from rich import box
from rich.table import Table

from lnexp.inspect.outcome import InspectOutcome


def _g(x: float | None) -> str:
    if x is None or not math.isfinite(x):
        return "n/a"
    return f"{x:,.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def _table(title: str, headers: list[str], rows: list[list[str]]) -> Table:
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left", padding=(0, 1),
              pad_edge=False, show_edge=False)
    for i, h in enumerate(headers):
        t.add_column(h, justify="left" if i == 0 else "right", no_wrap=i != 0,
                     overflow="fold")
    for r in rows:
        t.add_row(*r)
    return t


def depth_tables(o: InspectOutcome) -> list[Table]:
    """Massive activations per block, the S-curve fits, layer skipping (with --ablate)."""
    out = []
    if o.massive:
        out.append(_table(
            "massive activations: largest |x| of each block's output",
            ["block", "depth", "token (pos)", "dim", "value", "× median"],
            [[b.name, f"{b.depth:.2f}", f"{e.token or e.input} ({e.position})", str(e.dim),
              _g(e.value), _g(e.ratio)] for b in o.massive if b.top for e in b.top[:1]]))
    if o.curves:
        out.append(_table(
            "S-curve: the norm output before γ, β against its input x, fitted s·tanh(αx)",
            ["layer", "α", "s", "R² tanh", "R² line"],
            [[c.name, _g(c.alpha), _g(c.scale), f"{c.r2_tanh:.3f}", f"{c.r2_linear:.3f}"]
             for c in o.curves]))
    a = o.ablation
    if a is not None and a.skips:
        what = "loss" if a.measure == "next_token_loss" else "output change"
        out.append(_table(
            f"each block replaced by the identity ({what}; untouched {_g(a.baseline)})",
            ["block", "depth", what, "change"],
            [[s.block, f"{s.depth:.2f}", _g(s.value), f"{s.value - a.baseline:+.3g}"]
             for s in a.skips]))
    return out


def _argmax(pairs: list[tuple[float, Any]]) -> tuple[float, Any] | None:
    ok = [p for p in pairs if math.isfinite(p[0])]
    return max(ok, key=lambda p: p[0]) if ok else None


def summary_rows(o: InspectOutcome) -> dict[str, dict[str, Any]]:
    """One row per measurement for this model: what `lnexp inspect A B ...` lines up."""
    n = max(len(o.layers) - 1, 1)
    rows: dict[str, dict[str, Any]] = {}
    peak = _argmax([(b.top[0].ratio, b) for b in o.massive if b.top])
    if peak is not None:
        b = peak[1]
        e = b.top[0]
        rows["massive"] = {"block": b.name, "depth": b.depth, "token": e.token,
                           "position": e.position, "dim": e.dim, "value": e.value,
                           "ratio": e.ratio}
    k = _argmax([(r.tails_pre.kurtosis, r) for r in o.layers if r.tails_pre])
    if k is not None:
        r = k[1]
        rows["kurtosis"] = {"layer": r.name, "depth": r.index / n, "input": k[0],
                            "output": r.tails_post.kurtosis if r.tails_post else None,
                            "input_absmax": r.tails_pre.absmax}
    if o.curves:
        rows["s_curve"] = {"layers": len(o.curves),
                           "alpha_min": min(c.alpha for c in o.curves),
                           "alpha_max": max(c.alpha for c in o.curves),
                           "r2_tanh_mean": sum(c.r2_tanh for c in o.curves) / len(o.curves),
                           "r2_linear_mean": sum(c.r2_linear for c in o.curves) / len(o.curves)}
    w = min(o.layers, key=lambda r: r.quant.per_tensor_sqnr_db)
    rows["int8"] = {"layer": w.name, "depth": w.index / n,
                    "per_tensor_db": w.quant.per_tensor_sqnr_db,
                    "per_token_db": w.quant.per_token_sqnr_db}
    a = o.ablation
    if a is not None:
        s = _argmax([(x.value, x) for x in a.skips])
        iv = a.intervention
        rows["ablation"] = {
            "measure": a.measure, "baseline": a.baseline,
            "worst_skip": s[1].block if s else None, "worst_skip_depth": s[1].depth if s else None,
            "worst_skip_value": s[0] if s else None,
            "zeroed": iv.zeroed if iv else None, "mean": iv.mean if iv else None,
            "random": iv.random if iv else None}
    return rows


COLUMNS = {  # measurement -> (title, [(header, key)])
    "massive": ("massive activations: the largest block-output entry",
                [("block", "block"), ("depth", "depth"), ("token", "token"), ("pos", "position"),
                 ("dim", "dim"), ("value", "value"), ("× median", "ratio")]),
    "kurtosis": ("kurtosis: the norm input with the largest",
                 [("layer", "layer"), ("depth", "depth"), ("input", "input"),
                  ("output", "output"), ("max |x| in", "input_absmax")]),
    "s_curve": ("S-curve: fitted α of s·tanh(αx)",
                [("layers", "layers"), ("α min", "alpha_min"), ("α max", "alpha_max"),
                 ("R² tanh", "r2_tanh_mean"), ("R² line", "r2_linear_mean")]),
    "int8": ("int8: the norm input with the lowest per-tensor SQNR (dB)",
             [("layer", "layer"), ("depth", "depth"), ("per tensor", "per_tensor_db"),
              ("per token", "per_token_db")]),
    "ablation": ("ablation (--ablate): the measure untouched, the worst block skipped, the "
                 "massive-activation intervention",
                 [("measure", "measure"), ("untouched", "baseline"), ("worst skip", "worst_skip"),
                  ("depth", "worst_skip_depth"), ("skipped", "worst_skip_value"),
                  ("zeroed", "zeroed"), ("mean", "mean"), ("random", "random")]),
}


def _cell(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return _g(v)
    return str(v)


def summary_tables(names: list[str], rows: list[dict[str, dict[str, Any]]]) -> list[Table]:
    """One table per measurement, one row per model."""
    out = []
    for key, (title, cols) in COLUMNS.items():
        have = [(n, r[key]) for n, r in zip(names, rows, strict=True) if key in r]
        if have:
            out.append(_table(title, ["model"] + [h for h, _ in cols],
                              [[n] + [_cell(row.get(k)) for _, k in cols] for n, row in have]))
    return out
