"""What every table shares: how a number is shown, and the expectations table (run, compare
and `lnexp check` print it)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
from rich import box
from rich.table import Table

from lnexp.registry import COMPARATORS

if TYPE_CHECKING:
    from lnexp.expect import Result


def fmt(x: float) -> str:
    """A number for a table: NaN as 'n/a', otherwise 4 significant digits, fixed point when
    that reads better."""
    if x is None or not np.isfinite(x):
        return "n/a" if x is None or np.isnan(x) else ("inf" if x > 0 else "-inf")
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e5:
        return f"{x:.4f}"
    return f"{x:.3e}"


def short(x: float) -> str:
    """A compact number for the comparison table (six columns must fit 120 characters)."""
    if x is None or not np.isfinite(x):
        return fmt(x)
    if x == 0:
        return "0"
    if 1e-3 <= abs(x) < 1e4:
        return f"{x:.3g}"
    return f"{x:.1e}"


def expectations_table(results: list[Result]) -> Table:
    """One row per expectation: metric.reducer, comparison, value, PASS/FAIL."""
    failed = sum(not r["passed"] for r in results)
    verdict = f"{failed} of {len(results)} failed" if failed else f"all {len(results)} passed"
    t = Table(title=f"Expectations: {verdict}", box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("metric.reducer")
    t.add_column("expected", justify="right")
    t.add_column("value", justify="right")
    t.add_column("result")
    for r in results:
        tol = f" ± {r['tol']:g}" if r["tol"] is not None else ""
        bound = f"{COMPARATORS[r['op']]} {r['bound']:g}{tol}"
        value = fmt(r["value"]) if r["value"] is not None else "NaN/Inf"
        mark = "PASS" if r["passed"] else "[bold red]FAIL[/]"
        t.add_row(f"{r['metric']}.{r['reducer']}", bound, value,
                  mark + (f" ({r['note']})" if r.get("note") and not r["passed"] else ""))
    return t
