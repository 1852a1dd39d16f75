"""rich rendering of an InspectOutcome. It takes a Console (tests pass Console(record=True));
nothing here computes a statistic. Progress goes through lnexp.progress like every command."""

from __future__ import annotations

from typing import Any

from rich import box
from rich.console import Console
from rich.table import Table

from lnexp.inspect.outcome import InspectOutcome, Outlier


def _g(x: float | None) -> str:
    if x is None or x != x:
        return "n/a"
    if x in (float("inf"), float("-inf")):
        return "inf" if x > 0 else "-inf"
    return f"{x:.3g}"


def _top(o: list[Outlier]) -> str:
    if not o:
        return "n/a"
    return f"{o[0].dim} ({_g(o[0].ratio)}×)"


def _title(o: InspectOutcome, types: list[str]) -> str:
    layout = f", {o.model['norm_layout']}" if o.model.get("norm_layout") else ""
    return (f"{o.model['name']} ({o.model['class']}, {o.model['parameters']:,} parameters"
            f"{layout}): {len(o.layers)} norm layers"
            + (f" ({types[0]})" if len(types) == 1 else "")
            + f" on {o.inputs['description']} ({o.inputs['count']} inputs"
            + (f", {o.inputs['tokens']} tokens)" if o.inputs.get("tokens") else ")"))


# Which columns stay when the terminal is narrow, most important first; the layer column
# always stays and folds its name (never cut) when it must.
PRIORITY = ("layer", "top_in", "gamma", "token_var", "top_out", "int8", "kurt", "bn", "running",
            "role", "type", "#")
LAYER_MIN = 24  # the layer column folds names longer than what is left, but not below this


def _columns(o: InspectOutcome, types: list[str]) -> dict[str, tuple[str, str, list[str]]]:
    """key -> (header, justify, one cell per layer), in display order."""
    rows = o.layers
    cols: dict[str, tuple[str, str, list[str]]] = {
        "#": ("#", "right", [str(r.index) for r in rows]),
        "layer": ("layer", "left", [r.name for r in rows])}
    if any(r.role for r in rows):
        cols["role"] = ("role", "left", [r.role or "-" for r in rows])
    if len(types) > 1:
        cols["type"] = ("type", "left", [r.type for r in rows])
    ats = [r.weight.at_outliers[0] if r.weight and r.weight.at_outliers else None for r in rows]
    cols["token_var"] = ("token var\np50 / max", "right",
                         [f"{_g(r.pre.per_token.var_quantiles['p50'])} / "
                          f"{_g(r.pre.per_token.var_max)}" for r in rows])
    cols["top_in"] = ("top dim in\n(× median)", "right", [_top(r.pre.outliers) for r in rows])
    cols["gamma"] = ("γ there\n(rank)", "right",
                     [f"{_g(at.value)} ({at.rank})" if at else "-" for at in ats])
    cols["top_out"] = ("top dim out\n(× median)", "right",
                       [_top(r.post.outliers) if r.post else "not measured"
                        for r in rows])
    cols["int8"] = ("int8 dB\ntensor/tok", "right",
                    [f"{r.quant.per_tensor_sqnr_db:.1f}/{r.quant.per_token_sqnr_db:.1f}"
                     for r in rows])
    cols["kurt"] = ("kurtosis\nin / out", "right",
                    [f"{_g(r.tails_pre.kurtosis)} / "
                     f"{_g(r.tails_post.kurtosis) if r.tails_post else 'n/a'}"
                     if r.tails_pre else "n/a" for r in rows])
    if any(r.batchnorm is not None for r in rows):
        cols["bn"] = ("BN train\nvs eval", "right",
                      [(f"{b.rel_rms_diff:.1%}" if b.rel_rms_diff is not None else "n/a")
                       if (b := r.batchnorm) else "" for r in rows])
    if any(r.running is not None for r in rows):
        cols["running"] = ("data vs running\nμ gap max / σ² ×", "right",
                           [f"{g.mean_gap['max']:.2f} / {g.var_ratio['median']:.2f}"
                            if (g := r.running) else "" for r in rows])
    if any(r.role for r in rows):
        cols["role"] = ("role", "left", [r.role or "" for r in rows])
    return cols


def layers_table(o: InspectOutcome, width: int = 120) -> Table:
    """One row per norm layer in forward order. Columns that do not fit `width` are left out,
    least important first (PRIORITY), as `lnexp runs` does; the layer column always stays
    and folds a long name instead of cutting it. The smallest |γ| goes to the notes."""
    types = sorted({r.type for r in o.layers})
    cols = _columns(o, types)

    def natural(key: str) -> int:
        header, _, cells = cols[key]
        return max(max((len(c) for c in cells), default=0),
                   *(len(line) for line in header.split("\n")))

    # The whole layer name when that leaves room for the next column, else folded (never
    # below LAYER_MIN); one space between columns, none at the edges.
    layer_width = min(natural("layer"),
                      max(LAYER_MIN, width - 1 - natural(PRIORITY[1])))
    chosen = {"layer"}
    used = layer_width
    for key in PRIORITY[1:]:
        if key in cols and used + 1 + natural(key) <= width:
            chosen.add(key)
            used += 1 + natural(key)
    t = Table(title=_title(o, types), box=box.SIMPLE_HEAD, title_justify="left",
              padding=(0, 0), pad_edge=False, show_edge=False)
    for key, (header, justify, _) in cols.items():
        if key not in chosen:
            continue
        if key == "layer":
            t.add_column(header, overflow="fold", min_width=layer_width, max_width=layer_width)
        else:
            t.add_column(header, justify=justify, no_wrap=True,  # type: ignore[arg-type]
                         min_width=natural(key))
    for i in range(len(o.layers)):
        t.add_row(*[cells[i] for key, (_, _, cells) in cols.items() if key in chosen])
    return t


def render(console: Console, o: InspectOutcome, run_dir: str | None = None) -> None:
    """The table, the findings, unused layers, and the run folder."""
    from lnexp.inspect.depth_table import depth_tables

    console.print(layers_table(o, console.width))
    for t in depth_tables(o):
        console.print(t)
    for line in o.notes:
        console.print(f"• {line}", soft_wrap=False)
    if o.unused:
        console.print(f"not called on these inputs: {', '.join(o.unused)}")
    if run_dir:
        console.print(f"\ninspect folder: {run_dir}")


def render_weights(console: Console, doc: dict[str, Any]) -> None:
    """`--weights-only`: one row per norm tensor of a GGUF file (lnexp.inspect.gguf_fast)."""
    roles = ", ".join(f"{n} {r}" for r, n in doc["roles"].items())
    t = Table(title=f"{doc['file']}: {doc['architecture']}, {doc['blocks']} blocks, hidden "
                    f"{doc['hidden']}, {doc['norm_layers']} norm layers ({roles}), eps "
                    f"{_g(doc['eps'])}",
              box=box.SIMPLE_HEAD, title_justify="left", padding=(0, 1), pad_edge=False)
    for header, justify in (("layer", "left"), ("role", "left"), ("dims", "right"),
                            ("scale mean", "right"), ("min", "right"), ("max", "right"),
                            ("largest |γ| (dim)", "right")):
        t.add_column(header, justify=justify)  # type: ignore[arg-type]
    for layer in doc["layers"]:
        s = layer["scale"]
        t.add_row(layer["name"], layer["role"] or "-", str(s["dims"]), _g(s["mean"]),
                  _g(s["min"]), _g(s["max"]),
                  f"{_g(s['largest']['value'])} ({s['largest']['dim']})")
    console.print(t)
