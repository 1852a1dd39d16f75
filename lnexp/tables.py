"""rich renderers for a run. They take a Console (tests pass one with record=True)."""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

if TYPE_CHECKING:  # stats imports torch; `lnexp check` renders tables without it
    from lnexp.stats import AxisStats


def make_console(stderr: bool = False) -> Console:
    """A Console that uses colour only on a terminal without NO_COLOR or CI; otherwise plain
    text at a fixed width of 120 columns (no terminal-width tricks in pipes and CI logs)."""
    stream = sys.stderr if stderr else sys.stdout
    tty = stream.isatty() and os.environ.get("TERM") != "dumb"
    ci = os.environ.get("CI", "").lower() not in ("", "0", "false", "no")
    plain = not tty or "NO_COLOR" in os.environ or ci
    if plain:
        return Console(file=stream, no_color=True, highlight=False, width=120,
                       force_terminal=False, emoji=False, soft_wrap=False)
    return Console(file=stream, highlight=False)


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


def _span(a: np.ndarray) -> str:
    with np.errstate(invalid="ignore"):
        if a.size == 0 or np.all(np.isnan(a)):
            return "n/a"
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    return fmt(lo) if lo == hi else f"{fmt(lo)} … {fmt(hi)}"


def summary_table(result: Any) -> Table:
    """Pre vs post: the spread of per-feature and per-sample stats, and global stats."""
    name = result.config.model.norm
    n, c = result.config.data.n_samples, result.config.features
    t = Table(title=f"{result.norm.title} ({name}): {result.norm.summary}",
              box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("statistic (min … max over the axis)")
    t.add_column(f"before {name}", justify="right")
    t.add_column(f"after {name}", justify="right")
    pre, post = result.pre_stats, result.post_stats

    def axis_rows(label: str, a: AxisStats, b: AxisStats) -> None:
        t.add_row(f"{label} mean", _span(a.mean), _span(b.mean))
        t.add_row(f"{label} var (biased, ÷n)", _span(a.var), _span(b.var))
        t.add_row(f"{label} var (unbiased, ÷(n−1))", _span(a.var_unbiased),
                  _span(b.var_unbiased))

    axis_rows(f"per-feature (over {n} samples, dim 0)", pre.per_feature, post.per_feature)
    t.add_section()
    axis_rows(f"per-sample (over {c} features, dim 1)", pre.per_sample, post.per_sample)
    t.add_section()
    g0, g1 = pre.global_, post.global_
    t.add_row("global mean", fmt(g0.mean), fmt(g1.mean))
    t.add_row("global var (biased)", fmt(g0.var), fmt(g1.var))
    t.add_row("global RMS", fmt(g0.rms), fmt(g1.rms))
    t.add_row("global min / max", f"{fmt(g0.min)} / {fmt(g0.max)}",
              f"{fmt(g1.min)} / {fmt(g1.max)}")
    v = result.verdicts
    t.add_section()
    t.add_row("standardized (|mean|, |var−1| ≤ "
              f"{v['per_feature'].tolerance:g})", "",
              _standardizes(v["per_feature"].standardized, v["per_sample"].standardized))
    return t


def _standardizes(features: bool, samples: bool) -> str:
    if features and samples:
        return "features and samples"
    return "features" if features else "samples" if samples else "neither"


def sample_table(result: Any, max_values: int = 12) -> Table:
    """The chosen sample's statistics across its features, and its values when few."""
    i = result.config.sample_index
    c = result.config.features
    name = result.config.model.norm
    t = Table(title=f"Sample {i} (over its {c} features)", box=box.SIMPLE_HEAD,
              title_justify="left")
    t.add_column("statistic")
    t.add_column(f"before {name}", justify="right")
    t.add_column(f"after {name}", justify="right")
    a, b = result.sample_pre, result.sample_post
    t.add_row("mean", fmt(a.mean), fmt(b.mean))
    t.add_row("var (biased, ÷n)", fmt(a.var), fmt(b.var))
    t.add_row(f"var (unbiased, ÷(n−1), n={c})", fmt(a.var_unbiased), fmt(b.var_unbiased))
    t.add_row("std (biased)", fmt(a.std), fmt(b.std))
    if c <= max_values:
        t.add_row("values", _values(a.values), _values(b.values))
    return t


def _values(v: np.ndarray) -> str:
    return "[" + ", ".join(f"{x:.4f}" for x in v) + "]"


def render_run(console: Console, result: Any, run_dir: str, explanation: list[str]) -> None:
    """Everything `lnexp run` prints for a person."""
    console.print(summary_table(result))
    console.print(sample_table(result))
    for line in explanation:
        console.print(f"• {line}", soft_wrap=False)
    console.print(f"\nrun folder: {run_dir}")


def expectations_table(results: list[dict[str, Any]]) -> Table:
    """One row per expectation: metric.reducer, comparison, value, PASS/FAIL."""
    failed = sum(not r["passed"] for r in results)
    verdict = f"{failed} of {len(results)} failed" if failed else f"all {len(results)} passed"
    t = Table(title=f"Expectations: {verdict}", box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("metric.reducer")
    t.add_column("expected", justify="right")
    t.add_column("value", justify="right")
    t.add_column("result")
    for r in results:
        sym = {"le": "<=", "ge": ">=", "lt": "<", "gt": ">", "approx": "≈"}[r["op"]]
        bound = f"{sym} {r['bound']:g}" + (f" ± {r['tol']:g}" if r["tol"] is not None else "")
        value = fmt(r["value"]) if r["value"] is not None else "NaN/Inf"
        mark = "PASS" if r["passed"] else "[bold red]FAIL[/]"
        t.add_row(f"{r['metric']}.{r['reducer']}", bound, value,
                  mark + (f" ({r['note']})" if r.get("note") and not r["passed"] else ""))
    return t
