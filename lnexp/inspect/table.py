"""rich rendering of an InspectOutcome. It takes a Console (tests pass Console(record=True));
nothing here computes a statistic. Progress goes through lnexp.progress like every command."""

from __future__ import annotations

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


def layers_table(o: InspectOutcome) -> Table:
    """One row per norm layer in forward order; fits 120 columns for names up to ~45
    characters (the layer column never wraps). The smallest |γ| goes to the notes."""
    types = sorted({r.type for r in o.layers})
    bn = any(r.batchnorm is not None for r in o.layers)
    t = Table(title=f"{o.model['name']} ({o.model['class']}, {o.model['parameters']:,} "
                    f"parameters): {len(o.layers)} norm layers"
                    + (f" ({types[0]})" if len(types) == 1 else "")
                    + f" on {o.inputs['description']} ({o.inputs['count']} inputs"
                    + (f", {o.inputs['tokens']} tokens)" if o.inputs.get("tokens") else ")"),
              box=box.SIMPLE_HEAD, title_justify="left", padding=(0, 0), pad_edge=False,
              show_edge=False)
    t.add_column("#", justify="right")
    t.add_column("layer", no_wrap=True)
    if len(types) > 1:
        t.add_column("type", no_wrap=True)
    t.add_column("token var\np50 / max", justify="right", no_wrap=True)
    t.add_column("top dim in\n(× median)", justify="right", no_wrap=True)
    t.add_column("γ there\n(rank)", justify="right", no_wrap=True)
    t.add_column("top dim out\n(× median)", justify="right", no_wrap=True)
    t.add_column("int8 dB\ntensor/tok", justify="right", no_wrap=True)
    if bn:
        t.add_column("BN train\nvs eval", justify="right", no_wrap=True)
    for r in o.layers:
        tok = r.pre.per_token
        at = r.weight.at_outliers[0] if r.weight and r.weight.at_outliers else None
        row = [str(r.index), r.name, *([r.type] if len(types) > 1 else []),
               f"{_g(tok.var_quantiles['p50'])} / {_g(tok.var_max)}", _top(r.pre.outliers),
               f"{_g(at.value)} ({at.rank})" if at else "-",
               _top(r.post.outliers) if r.post else "not measured",
               f"{r.quant.per_tensor_sqnr_db:.1f}/{r.quant.per_token_sqnr_db:.1f}"]
        if bn:
            b = r.batchnorm
            row.append(f"{b.rel_rms_diff:.1%}" if b and b.rel_rms_diff is not None
                       else ("n/a" if b else ""))
        t.add_row(*row)
    return t


def render(console: Console, o: InspectOutcome, run_dir: str | None = None) -> None:
    """The table, the findings, unused layers, and the run folder."""
    console.print(layers_table(o))
    for line in o.notes:
        console.print(f"• {line}", soft_wrap=False)
    if o.unused:
        console.print(f"not called on these inputs: {', '.join(o.unused)}")
    if run_dir:
        console.print(f"\ninspect folder: {run_dir}")
