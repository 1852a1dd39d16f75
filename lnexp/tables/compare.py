"""The tables of `lnexp compare`: one column per norm, split to fit the terminal's width."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import numpy as np
from rich import box
from rich.console import Console
from rich.table import Table

from lnexp.numbers import shape_words
from lnexp.registry import AXES
from lnexp.tables.common import short

if TYPE_CHECKING:
    from lnexp.core import CompareOutcome
    from lnexp.results import CompareResult, RunResult


def _short_span(a: np.ndarray) -> str:
    """min…max, 3 significant digits; all within 1e-5 of 0 reads '|x|≤3e-08' (float32
    rounding of an exact 0)."""
    with np.errstate(invalid="ignore"):
        if a.size == 0 or np.all(np.isnan(a)):
            return "n/a"
        lo, hi = float(np.nanmin(a)), float(np.nanmax(a))
    if 0 < max(abs(lo), abs(hi)) < 1e-5:
        return f"|x|≤{max(abs(lo), abs(hi)):.0e}"
    a_, b_ = short(lo), short(hi)
    return a_ if a_ == b_ else f"{a_}…{b_}"


def compare_table(cmp: CompareResult, outcomes: list[Any] | None = None,
                  title: str | None = None) -> Table:
    """One column per norm (all of them, or `outcomes`); rows: per-feature and per-sample
    spreads, output mean / RMS and which axis ends up standardized."""
    cfg = cmp.config
    shown = cmp.outcomes if outcomes is None else outcomes
    t = Table(title=title or f"After each norm ({shape_words(cfg)})",
              box=box.SIMPLE_HEAD, title_justify="left", pad_edge=False)
    t.add_column("after the norm", no_wrap=True)
    for o in shown:
        # numbers never fold: the column is at least as wide as its widest number
        t.add_column(f"{o.name}\n{o.spec.title}", justify="right",
                     min_width=_number_width(o), max_width=max(16, _number_width(o)))

    def row(label: str, cell: Any) -> None:
        t.add_row(label, *["—" if o.result is None else cell(o.result) for o in shown])

    for label, cell in _compare_rows(_has_layers(cmp), _axes(cmp)):
        if label is None:
            t.add_section()
        else:
            row(label, cell)
    t.add_section()
    tol = next((o.result.verdicts["per_feature"].tolerance for o in cmp.outcomes
                if o.result is not None), None)
    label = "standardizes" + (f" (tol {tol:g})" if tol is not None else "")
    t.add_row(label, *[(o.standardizes or "not computed") for o in shown])
    if cfg.data.layout != "features":  # the norm's own axis, as a metrics.json key
        t.add_row("its own axis", *[o.spec.standardizes_axis for o in shown])
    if cmp.not_computed:
        t.add_row("not computed because", *[o.why or "" for o in shown])
    return t


def _axes(cmp: CompareResult) -> list[str]:
    """The axes any computed norm reports (per_group only with group), in registry order."""
    return [a for a in AXES if any(o.result is not None and a in o.result.post_stats.axes
                                   for o in cmp.outcomes)]


def _axis_cell(axis: str, stat: str) -> Callable[[RunResult], str]:
    def get(r: RunResult) -> str:
        found = r.post_stats.axes.get(axis)
        return "·" if found is None else _short_span(getattr(found, stat))
    return get


def _compare_rows(layers: bool, axes: list[str] | tuple[str, ...] = ("per_feature",
                                                                       "per_sample")
                  ) -> list[tuple[str | None, Any]]:
    """(label, cell function) per row of the comparison; (None, None) starts a section. An
    axis a norm does not report (per_group for all but group) reads '·'."""
    rows: list[tuple[str | None, Any]] = []
    for axis in axes:
        label = axis.replace("_", "-")
        rows.append((f"{label} mean", _axis_cell(axis, "mean")))
        rows.append((f"{label} var (biased)", _axis_cell(axis, "var")))
        rows.append((f"{label} var (unbiased)", _axis_cell(axis, "var_unbiased")))
        rows.append((None, None))
    rows.append(("output mean", lambda r: short(r.post_stats.global_.mean)))
    rows.append(("output RMS", lambda r: short(r.post_stats.global_.rms)))
    if layers:
        rows.append((None, None))
        rows.append(("grad norm, first / last block", lambda r: short(r.layers.first_over_last)))
        rows.append(("activation std, last block", lambda r: short(float(r.layers.std[-1]))))
    return rows


def _number_width(o: Any) -> int:
    """The widest number in a norm's column (its name and title wrap; numbers must not)."""
    if o.result is None:
        return 6
    rows = _compare_rows(o.result.layers is not None, list(o.result.post_stats.axes))
    cells = [cell(o.result) for label, cell in rows if label is not None]
    return max([len(o.name), 6, *(len(c) for c in cells)])


def _has_layers(cmp: CompareResult) -> bool:
    return any(o.result is not None and o.result.layers is not None for o in cmp.outcomes)


def compare_tables(cmp: CompareResult, width: int) -> list[Table]:
    """The comparison split into tables that each fit `width` columns: as many norms side by
    side as fit, the rest in further tables with the same rows (numbers never fold)."""
    title = f"After each norm ({shape_words(cmp.config)})"
    # the row labels never wrap: the longest one, plus padding
    label = 3 + max(len(text) for text, _ in _compare_rows(_has_layers(cmp), _axes(cmp))
                    if text is not None)
    groups: list[list[Any]] = [[]]
    used = label
    for o in cmp.outcomes:
        # the column: its widest number or its title (up to max_width 16), plus padding
        need = max(_number_width(o), min(16, len(o.spec.title)), 10) + 3
        if groups[-1] and used + need > width:
            groups.append([])
            used = label
        groups[-1].append(o)
        used += need
    if len(groups) == 1:
        return [compare_table(cmp, title=title)]
    return [compare_table(cmp, g, f"{title}, norms {', '.join(o.name for o in g)}")
            for g in groups]


def render_compare(console: Console, outcome: CompareOutcome) -> None:
    """Everything `lnexp compare` prints for a person."""
    cmp = outcome.result
    cfg = cmp.config
    n, c = cfg.data.n_samples, cfg.features
    weights = "the same Linear weights" if cfg.model.linear else "no Linear layer"
    if cfg.data.layout == "features":
        console.print(
            f"Every norm sees the same {n} × {c} inputs (samples × features) and {weights} "
            f"(seed {cfg.seed}, {cfg.model.mode} mode). Cells are min…max over the axis; "
            f"per-feature = over the {n} samples (dim 0), per-sample = over the {c} "
            f"features (dim 1); var biased = ÷n (what the norms use), unbiased = ÷(n−1) "
            f"(torch.var's default).\n")
    else:
        layer = "Conv2d" if cfg.data.layout == "image" else "Linear (per token)"
        weights = f"the same {layer} weights" if cfg.model.linear else "no layer"
        console.print(
            f"Every norm sees the same {shape_words(cfg)} and {weights} (seed {cfg.seed}, "
            f"{cfg.model.mode} mode). Cells are min…max over the axis; var biased = ÷n (what "
            f"the norms use), unbiased = ÷(n−1) (torch.var's default); · = not reported for "
            f"this norm.\n")
    for table in compare_tables(cmp, console.width):
        console.print(table)
    console.print(f"Axes: {outcome.axes}")
    for _name, norm_lines in outcome.explanations:
        console.print(f"• {norm_lines[0]}", soft_wrap=False)
        for extra in norm_lines[1:]:
            console.print(f"    – {extra}", soft_wrap=False)
    console.print(f"\ncompare folder: {outcome.compare_dir}")
