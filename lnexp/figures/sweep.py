"""The sweep's summary figure: each metric against the swept key, drawn from sweep.json rows
(no torch, no result objects)."""

from __future__ import annotations

from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

from lnexp.figures.common import new_figure
from lnexp.numbers import show_value
from lnexp.registry import METRIC_TITLES


def _metric_title(key: str) -> str:
    if key in METRIC_TITLES:
        return METRIC_TITLES[key]
    metric, _, reducer = key.rpartition(".")
    return f"{metric}\n({reducer})"


_label = show_value


def _band(m: dict[str, Any]) -> tuple[float, float, float] | None:
    """(centre, low, high) of one summary cell: median and min..max; older sweep.json rows
    without them fall back to mean ± std."""
    if m.get("median") is not None:
        return m["median"], m["min"], m["max"]
    if m.get("mean") is None:
        return None
    sd = m.get("std") or 0.0
    return m["mean"], m["mean"] - sd, m["mean"] + sd


def sweep_summary(rows: list[dict[str, Any]], group_keys: list[str], metrics: list[str],
                  x_key: str, title: str, chance: float | None = None) -> Figure:
    """One panel per metric against the swept `x_key`: one line per combination of the other
    swept keys (colour: the first of them, line style: the second), the median over seeds
    with a min..max band. A metric whose values span more than 100x gets a log y axis;
    accuracy panels get a chance line at `chance`."""
    others = [k for k in group_keys if k != x_key]
    lines: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for r in rows:
        lines.setdefault(tuple(_label(r[o]) for o in others), []).append(r)
    k = max(1, len(metrics))
    width = max(6.0, 4.8 * k)
    # Legend columns as wide as the longest label, as many as fit; rows below the panels.
    longest = max((len(", ".join(f"{o.rpartition('.')[2]}={v}" for o, v in
                                 zip(others, name, strict=True))) for name in lines), default=8)
    ncol = max(1, min(len(lines), int(width / (0.075 * longest + 0.8))))
    legend_rows = -(-len(lines) // ncol)
    height = 4.7 + 0.3 * legend_rows
    fig = new_figure(width, height)
    axes = fig.subplots(1, k, squeeze=False,
                        gridspec_kw={"left": 0.9 / width, "right": 0.99,
                                     "bottom": (0.95 + 0.3 * legend_rows) / height,
                                     "top": 1 - 1.05 / height, "wspace": 0.3})[0]
    seeds = max((r["metrics"][m]["n"] for r in rows for m in metrics), default=0)
    xs_all = [r[x_key] for r in rows]
    for ax, metric in zip(axes, metrics, strict=False):
        values = _metric_lines(ax, metric, lines, others, x_key, xs_all, seeds > 1)
        _axes_for(ax, metric, values, x_key, xs_all, chance)
    for ax in axes[len(metrics):]:
        ax.set_axis_off()
    handles, labels = axes[0].get_legend_handles_labels()
    what = "norm" if others == ["model.norm"] else ", ".join(others) or ""
    fig.legend(handles, labels, loc="lower center", ncol=max(1, ncol), frameon=False,
               title=f"one line per {what}" if what else None, fontsize=10,
               bbox_to_anchor=(0.5, 0.0))
    band = (f"median over {seeds} seeds, band: min to max" if seeds > 1
            else "one seed, no band")
    fig.suptitle(f"{title}: each metric against {x_key}  ·  {band}", fontsize=12.5)
    return fig


def _numeric(xs_all: list[Any]) -> bool:
    return all(isinstance(v, int | float) and not isinstance(v, bool) for v in xs_all)


def _metric_lines(ax: Axes, metric: str, lines: dict[tuple[str, ...], list[dict[str, Any]]],
                  others: list[str], x_key: str, xs_all: list[Any], band: bool) -> list[float]:
    """One metric's lines (and min..max bands when `band`); returns every low and high drawn,
    for the choice of a log axis."""
    numeric = _numeric(xs_all)
    cats = list(dict.fromkeys(_label(v) for v in xs_all))
    firsts = list(dict.fromkeys(name[0] for name in lines)) if others else []
    seconds = list(dict.fromkeys(name[1] for name in lines)) if len(others) > 1 else []
    dashes = ["-", "--", ":", "-."]
    values: list[float] = []
    for j, (name, members) in enumerate(lines.items()):
        color = f"C{(firsts.index(name[0]) if others else j) % 10}"
        style = dashes[seconds.index(name[1]) % 4] if seconds else "-"
        pts = [(m[x_key], b) for m in members
               if (b := _band(m["metrics"][metric])) is not None]
        if numeric:
            pts.sort(key=lambda p: p[0])
        xs = [p[0] if numeric else cats.index(_label(p[0])) for p in pts]
        mid, lo, hi = (np.array([p[1][i] for p in pts], dtype=float) for i in range(3))
        values += [*lo, *hi]
        label = ", ".join(f"{o.rpartition('.')[2]}={v}" if len(others) > 1 or
                          o != "model.norm" else v for o, v in zip(others, name,
                                                                   strict=True)) or "median"
        ax.plot(xs, mid, color=color, linestyle=style, marker="o", markersize=4,
                linewidth=1.6, label=label)
        if band:
            ax.fill_between(xs, lo, hi, color=color, alpha=0.15, linewidth=0)
    return values


def _axes_for(ax: Axes, metric: str, values: list[float], x_key: str, xs_all: list[Any],
              chance: float | None) -> None:
    """Scales, ticks, reference lines and labels of one metric's panel."""
    finite = np.array([v for v in values if np.isfinite(v)])
    log = finite.size and finite.min() > 0 and finite.max() / finite.min() > 100
    if log:
        ax.set_yscale("log")
    if _numeric(xs_all):
        pos = [float(v) for v in xs_all]
        if min(pos) > 0 and max(pos) / min(pos) >= 8:
            ax.set_xscale("log", base=2 if all(float(v).is_integer() for v in pos) else 10)
        ticks = sorted(set(xs_all))
        if len(ticks) <= 12:
            ax.set_xticks(ticks)
            ax.set_xticklabels([_label(t) for t in ticks])
            ax.xaxis.set_minor_locator(NullLocator())  # only the swept values
    else:
        cats = list(dict.fromkeys(_label(v) for v in xs_all))
        ax.set_xticks(range(len(cats)))
        ax.set_xticklabels(cats)
    if chance is not None and ".accuracy" in metric:
        ax.axhline(chance, color="0.35", linestyle=":", linewidth=1.2)
        ax.annotate(f"chance {chance:g}", (0.99, chance), xycoords=("axes fraction", "data"),
                    ha="right", va="bottom", fontsize=9, color="0.35")
    if "_over_" in metric:  # a ratio: mark 1 and the 10x either side of it
        ax.axhline(1, color="0.35", linestyle=":", linewidth=1)
        ax.axhspan(0.1, 10, color="0.5", alpha=0.08, linewidth=0, label=None)
    ax.set_xlabel(x_key)
    ax.set_ylabel(metric, fontsize=9)
    ax.set_title(_metric_title(metric), fontsize=10.5)
    ax.grid(alpha=0.3, which="both" if log else "major")
    if not log:
        ax.set_ylim(bottom=min(0.0, ax.get_ylim()[0]))
    if ".accuracy" in metric:
        ax.set_ylim(0, 1.02)
