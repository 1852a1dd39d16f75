"""The `lnexp speed` tables: times, one row per (shape, dtype, norm); then which implementation
ran, one row per (norm, dtype, implementation). Apart, so that neither wraps at 120 columns
(the implementation column wrapped every timing row onto three lines)."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.table import Table
from rich.text import Text

COMPILED_COLUMNS = ("fwd c", "f+b c", "comp s")  # dropped under --no-compile


def _ms(t: dict[str, float] | None) -> str:
    return "—" if t is None else f"{t['median_ms']:.3g}"


def _spread(timings: dict[str, dict[str, dict[str, float]]]) -> str:
    """The largest IQR / median of the row's timings, in %: how much to trust the row."""
    rel = [t["iqr_ms"] / t["median_ms"] for mode in timings.values() for t in mode.values()
           if t["median_ms"] > 0]
    return f"{100 * max(rel):.0f}" if rel else "—"


def _shape(case: dict[str, Any]) -> str:
    return "×".join(map(str, case["shape"]))


def speed_tables(doc: dict[str, Any]) -> list[Any]:
    """What `lnexp speed` prints: each table under its title, the title a line of its own
    (rich wraps a table's title at the table's width, narrow under --no-compile)."""
    return [Text(_times_title(doc), style="italic"), speed_table(doc),
            Text("Eager implementation, read from the profiler", style="italic"),
            implementation_table(doc)]


def _compiled(doc: dict[str, Any]) -> bool:
    return bool(doc.get("options", {}).get("compile", True))


def _times_title(doc: dict[str, Any]) -> str:
    env = doc["environment"]
    load = env.get("load_average")
    return ("Norm speed, ms per call (median; f+b: forward+backward"
            + ("; c: compiled" if _compiled(doc) else "") + ") on "
            f"{env.get('device_name') or env['device']}, "
            f"{env['threads']} threads, torch {env['torch']}"
            + (f", load average {load[0]:.2f}" if load else ""))


def speed_table(doc: dict[str, Any]) -> Table:
    """Median ms per pass and mode, the worst IQR %, eager GB/s, compile s (the compiled
    columns only when compiling was asked for)."""
    compiled = _compiled(doc)
    t = Table(box=box.SIMPLE_HEAD)
    columns = [("shape", "left"), ("dtype", "left"), ("norm", "left"), ("fwd", "right"),
               ("fwd c", "right"), ("f+b", "right"), ("f+b c", "right"), ("IQR%", "right"),
               ("GB/s", "right"), ("comp s", "right")]
    keep = [i for i, (col, _) in enumerate(columns) if compiled or col not in COMPILED_COLUMNS]
    for i in keep:
        t.add_column(columns[i][0], justify=columns[i][1])  # type: ignore[arg-type]
    for c in doc["cases"]:
        tm = c["timings"]
        eager, comp = tm.get("eager", {}), tm.get("compiled", {})
        gbs = eager.get("forward", {}).get("gb_per_s")
        compile_s = ("failed" if c["compile_error"] else
                     f"{c['compile_s']:.1f}" if c["compile_s"] is not None else "—")
        cells = (_shape(c), c["dtype"], c["norm"],
                 _ms(eager.get("forward")), _ms(comp.get("forward")),
                 _ms(eager.get("forward_backward")), _ms(comp.get("forward_backward")),
                 _spread(tm), f"{gbs:.2g}" if gbs is not None else "—", compile_s)
        t.add_row(*(cells[i] for i in keep))
    return t


def implementation_table(doc: dict[str, Any]) -> Table:
    """Which eager implementation ran (read from the profiler), or the norm's error; the
    shapes column lists where it applies when that is not every shape of the run."""
    shapes = list(dict.fromkeys(_shape(c) for c in doc["cases"]))
    rows: dict[tuple[str, str, str], list[str]] = {}
    for c in doc["cases"]:
        what = f"error: {c['error']}" if c["error"] else c["implementation"]
        rows.setdefault((c["norm"], c["dtype"], what), []).append(_shape(c))
    t = Table(box=box.SIMPLE_HEAD)
    t.add_column("norm")
    t.add_column("dtype")
    if len(shapes) > 1:
        t.add_column("shapes")
    t.add_column("implementation", overflow="fold")
    for (norm, dtype, what), where in rows.items():
        cells = [norm, dtype] + ([", ".join(where) if where != shapes else "all"]
                                 if len(shapes) > 1 else []) + [what]
        t.add_row(*cells)
    return t
