"""`lnexp runs`: the list of past results and one result's details."""

from __future__ import annotations

import shlex
from typing import TYPE_CHECKING, Any

from rich import box
from rich.console import Console
from rich.table import Table

from lnexp.registry import LISTED_METRICS
from lnexp.tables.common import fmt
from lnexp.tables.sweep import sweep_summary_table

if TYPE_CHECKING:
    from lnexp.history import RunRecord


# `lnexp runs` columns, most important first: what fits the width is shown, in table order.
_RUNS_PRIORITY = ("id", "status", "name", "kind", "started", "norm")


def runs_title(records: list[RunRecord], root: str, total: int) -> str:
    shown = f"{len(records)} of {total}" if len(records) != total else f"{total}"
    return f"{shown} runs under {root}, newest first (lnexp runs show ID prints one)"


def runs_table(records: list[RunRecord], width: int = 120) -> Table:
    """`lnexp runs`: one row per folder, newest first. Columns that do not fit `width` are
    left out, least important first (metrics, shape, norm, ...); the id, which `runs show`
    takes, always stays, and no column is squeezed until its values fold."""
    cols: dict[str, tuple[str, str, list[str]]] = {}  # key -> (header, justify, cells)
    cols["started"] = ("started", "left",
                       [(r.started or "")[5:19].replace("T", " ") for r in records])
    cols["kind"] = ("kind", "left", [r.kind for r in records])
    cols["status"] = ("status", "left", [r.status for r in records])
    cols["name"] = ("name", "left", [r.name for r in records])
    cols["norm"] = ("norm", "left", [(r.norm or "").replace(",", ", ") for r in records])
    cols["shape"] = ("shape / trials", "left", [r.detail for r in records])
    for key in LISTED_METRICS:  # e.g. post_norm.per_feature.var.spread
        _, axis, stat, reducer = key.split(".")
        cols[key] = (f"{axis.replace('_', '-')}\n{stat} {reducer}", "right",
                     [fmt(r.metrics[key]) if key in r.metrics else "" for r in records])
    cols["id"] = ("id", "left", [r.id for r in records])

    def natural(key: str) -> int:
        header, _, cells = cols[key]
        longest = max((len(c) for c in cells), default=0)
        if key in ("name", "norm"):  # these wrap at word boundaries within 24 characters
            longest = min(longest, 24)
        return max(longest, *(len(line) for line in header.split("\n")))

    order = [*_RUNS_PRIORITY, *LISTED_METRICS, "shape"]
    chosen: set[str] = set()
    used = -1  # SIMPLE_HEAD, pad_edge=False: a space at each edge, 3 between columns
    for key in order:
        need = natural(key) + 3
        if used + need <= width or key == "id":
            chosen.add(key)
            used += need
    t = Table(box=box.SIMPLE_HEAD, pad_edge=False)
    for key, (header, justify, _) in cols.items():
        if key in chosen:
            wraps = key in ("name", "norm")
            t.add_column(header, justify=justify, no_wrap=not wraps,  # type: ignore[arg-type]
                         overflow="fold", max_width=24 if wraps else None,
                         min_width=natural(key))
    for i in range(len(records)):
        t.add_row(*[cells[i] for key, (_, _, cells) in cols.items() if key in chosen])
    return t


def render_runs(console: Console, records: list[RunRecord], root: str, total: int) -> None:
    """Everything `lnexp runs` prints for a person (the folders' text fields escaped:
    console.printable)."""
    import dataclasses

    from lnexp.console import printable

    records = [dataclasses.replace(r, **{f.name: printable(getattr(r, f.name))
                                         for f in dataclasses.fields(r)}) for r in records]
    console.print(runs_title(records, root, total))
    console.print(runs_table(records, console.width))


def render_run_details(console: Console, info: dict[str, Any]) -> None:
    """`lnexp runs show`: what the folder is, its status and its main results (every text
    field escaped: console.printable)."""
    from lnexp.console import printable

    info = printable(info)
    rec = info["record"]
    t = Table(box=box.SIMPLE_HEAD, show_header=False, title=f"{rec['kind']} {rec['path']}",
              title_justify="left")
    t.add_column("key")
    t.add_column("value", overflow="fold")
    for key in ("name", "kind", "status", "norm", "detail", "started", "finished", "error"):
        if rec.get(key):
            t.add_row(key, str(rec[key]))
    run = info.get("run") or {}
    if run.get("argv"):
        # shell-quoted: pasted into a shell it runs the same command
        t.add_row("command", shlex.join(["lnexp", *map(str, run["argv"][1:])]))
    for k, v in (rec.get("metrics") or {}).items():
        t.add_row(k, fmt(v))
    console.print(t)
    if info.get("explanation"):
        for line in info["explanation"]:
            console.print(f"• {line}", soft_wrap=False)
    if info.get("norms"):
        for n in info["norms"]:
            console.print(f"• {n['name']}: {n['status']}"
                          + (f", standardizes {n['standardizes']}" if n["standardizes"] else "")
                          + (f" ({n['reason']})" if n["reason"] else ""))
    sweep = info.get("sweep")
    if sweep and sweep.get("summary"):
        console.print(sweep_summary_table(sweep["summary"], sweep["group_keys"],
                                          sweep["metrics"], f"summary: {sweep['command']}"))
