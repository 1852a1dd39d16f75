"""The `lnexp speed` table: one row per (shape, dtype, norm)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table


def _ms(t: dict[str, float] | None) -> str:
    return "—" if t is None else f"{t['median_ms']:.3g}"


def _spread(timings: dict[str, dict[str, dict[str, float]]]) -> str:
    """The largest IQR / median of the row's timings, in %: how much to trust the row."""
    rel = [t["iqr_ms"] / t["median_ms"] for mode in timings.values() for t in mode.values()
           if t["median_ms"] > 0]
    return f"{100 * max(rel):.0f}" if rel else "—"


def speed_table(doc: dict[str, Any]) -> Table:
    """Median ms per pass and mode, the worst IQR %, eager GB/s, compile s, the kernel."""
    env = doc["environment"]
    load = env.get("load_average")
    title = ("Norm speed, ms per call (median; c: compiled, f+b: forward+backward) on "
             f"{env.get('device_name') or env['device']}, "
             f"{env['threads']} threads, torch {env['torch']}"
             + (f", load average {load[0]:.2f}" if load else ""))
    t = Table(title=title, box=box.SIMPLE_HEAD, title_justify="left")
    for col, just in (("shape", "left"), ("dtype", "left"), ("norm", "left"),
                      ("fwd", "right"), ("fwd c", "right"), ("f+b", "right"),
                      ("f+b c", "right"), ("IQR%", "right"), ("GB/s", "right"),
                      ("comp s", "right"), ("eager implementation", "left")):
        t.add_column(col, justify=just)  # type: ignore[arg-type]
    for c in doc["cases"]:
        tm = c["timings"]
        eager, comp = tm.get("eager", {}), tm.get("compiled", {})
        gbs = eager.get("forward", {}).get("gb_per_s")
        compile_s = ("failed" if c["compile_error"] else
                     f"{c['compile_s']:.1f}" if c["compile_s"] is not None else "—")
        t.add_row("×".join(map(str, c["shape"])), c["dtype"], c["norm"],
                  _ms(eager.get("forward")), _ms(comp.get("forward")),
                  _ms(eager.get("forward_backward")), _ms(comp.get("forward_backward")),
                  _spread(tm), f"{gbs:.2g}" if gbs is not None else "—", compile_s,
                  c["error"] or c["implementation"])
    return t
