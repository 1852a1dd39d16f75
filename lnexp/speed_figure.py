"""The `lnexp speed` figure: one panel per (shape, dtype), a row of bars per norm: forward and
forward+backward, eager (solid) and compiled (hatched), the median with the quartiles as
error bar."""

from __future__ import annotations

from pathlib import Path
from typing import Any

# (mode, pass, label, colour, hatch)
_BARS = (("eager", "forward", "forward, eager", "#4c72b0", ""),
         ("compiled", "forward", "forward, compiled", "#4c72b0", "//"),
         ("eager", "forward_backward", "forward+backward, eager", "#dd8452", ""),
         ("compiled", "forward_backward", "forward+backward, compiled", "#dd8452", "//"))


def panels(cases: list[dict[str, Any]]) -> dict[tuple[tuple[int, ...], str], list[dict]]:
    """speed.json's cases grouped by (shape, dtype), in the order measured."""
    out: dict[tuple[tuple[int, ...], str], list[dict]] = {}
    for c in cases:
        out.setdefault((tuple(c["shape"]), c["dtype"]), []).append(c)
    return out


def draw(doc: dict[str, Any], path: Path, dpi: int = 110) -> None:
    """Write the figure for a speed.json document to `path` (PNG)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from lnexp.store.figures import save_figure

    fig = build(doc)
    save_figure(fig, path, dpi)
    plt.close(fig)


def build(doc: dict[str, Any]) -> Any:
    """The figure (matplotlib Figure) for a speed.json document."""
    import matplotlib.pyplot as plt

    groups = panels(doc["cases"])
    n = max(len(groups), 1)
    cols = min(n, 3)
    grid_rows = -(-n // cols)
    bars = max((len(v) for v in groups.values()), default=1)
    panel_h = 0.9 + 0.55 * bars
    height = panel_h * grid_rows + 1.0
    width = max(5.4 * cols, 7.5)
    # Room for the longest norm name at the tick labels' size (~0.085 in a character).
    names = max((len(c["norm"]) for c in doc["cases"]), default=4)
    left_in = 0.35 + 0.085 * names
    fig, axes = plt.subplots(grid_rows, cols, figsize=(width, height), squeeze=False)
    flat = [ax for row in axes for ax in row]
    for ax, ((shape, dtype), cases) in zip(flat, groups.items(), strict=False):
        _panel(ax, shape, dtype, cases)
    for ax in flat[len(groups):]:
        ax.set_visible(False)
    handles, labels = flat[0].get_legend_handles_labels()
    env = doc.get("environment", {})
    load = env.get("load_average")
    fig.suptitle(f"lnexp speed: median time per call (bars: quartiles)\n"
                 f"{env.get('device', 'cpu')}, {env.get('threads')} threads, "
                 f"torch {env.get('torch')}"
                 + (f" · load average {load[0]:.1f}" if load else ""), fontsize=9)
    fig.legend(handles, labels, loc="lower center", ncol=2 if cols == 1 else 4, fontsize=8,
               frameon=False)
    fig.subplots_adjust(left=left_in / width, right=0.98,
                        top=1 - 0.85 / height, bottom=1.15 / height,
                        wspace=left_in * cols / width * 1.6, hspace=0.7 / panel_h)
    return fig


def _panel(ax: Any, shape: tuple[int, ...], dtype: str, cases: list[dict]) -> None:
    height = 0.8 / len(_BARS)
    names = [c["norm"] for c in cases]
    for k, (mode, pass_, label, colour, hatch) in enumerate(_BARS):
        ys, widths, lo, hi = [], [], [], []
        for i, c in enumerate(cases):
            t = (c.get("timings") or {}).get(mode, {}).get(pass_)
            if t is None:
                continue
            ys.append(i - 0.4 + height * (k + 0.5))
            widths.append(t["median_ms"])
            lo.append(max(t["median_ms"] - t.get("p25_ms", t["median_ms"]), 0.0))
            hi.append(max(t.get("p75_ms", t["median_ms"]) - t["median_ms"], 0.0))
        ax.barh(ys, widths, height=height, xerr=[lo, hi], color=colour, hatch=hatch,
                edgecolor="white" if not hatch else "#222222", linewidth=0.4, label=label,
                error_kw={"elinewidth": 0.8, "capsize": 1.5})
    for i, c in enumerate(cases):
        note = c.get("error") or ("compile failed" if c.get("compile_error") else "")
        if note:
            # x in axes coordinates: 0 does not exist on the log axis below
            ax.text(0, i, f" {note[:40]}", va="center", fontsize=7, color="#b00000",
                    transform=ax.get_yaxis_transform())
    ax.set_yticks(range(len(cases)), names)
    ax.invert_yaxis()
    # Times that span orders of magnitude (a fused kernel next to a chain of ops, `none`'s
    # identity) on a log axis, so the small bars stay readable.
    spread = [w for p in ax.patches if (w := p.get_width()) > 0]
    if spread and max(spread) / min(spread) > 30:
        ax.set_xscale("log")
        ax.set_xlabel("ms per call (log)")
    else:
        ax.set_xlabel("ms per call")
    ax.set_title(f"{'×'.join(map(str, shape))} {dtype}", fontsize=10)
    ax.grid(axis="x", alpha=0.3)
