"""rich rendering of an InspectOutcome, and the progress bar. Both take a Console (tests pass
Console(record=True)); nothing here computes a statistic."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

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
    return f"{o[0].dim}: {_g(o[0].absmax)} ({_g(o[0].ratio)}×)"


def layers_table(o: InspectOutcome) -> Table:
    """One row per norm layer in forward order."""
    t = Table(title=f"{o.model['name']} ({o.model['class']}, {o.model['parameters']:,} "
                    f"parameters): {len(o.layers)} norm layers on {o.inputs['description']} "
                    f"({o.inputs['count']} inputs"
                    + (f", {o.inputs['tokens']} tokens)" if o.inputs.get("tokens") else ")"),
              box=box.SIMPLE_HEAD, title_justify="left")
    t.add_column("#", justify="right")
    t.add_column("layer")
    t.add_column("type")
    t.add_column("token var p50 / max\nbefore", justify="right")
    t.add_column("top dim before\n|x|max (× median)", justify="right")
    t.add_column("γ there\n(rank)", justify="right")
    t.add_column("top dim after\n|x|max (× median)", justify="right")
    t.add_column("smallest |γ|", justify="right")
    t.add_column("int8 SQNR dB\ntensor / token", justify="right")
    if any(r.batchnorm is not None for r in o.layers):
        t.add_column("BN train≠eval\n(rms, rel.)", justify="right")
    for r in o.layers:
        tok = r.pre.per_token
        at = r.weight.at_outliers[0] if r.weight and r.weight.at_outliers else None
        small = r.weight.smallest_abs[0] if r.weight else None
        row = [str(r.index), r.name, r.type,
               f"{_g(tok.var_quantiles['p50'])} / {_g(tok.var_max)}", _top(r.pre.outliers),
               f"{_g(at.value)} ({at.rank})" if at else "-", _top(r.post.outliers),
               f"{_g(small.value)} @{small.dim}" if small else "-",
               f"{r.quant.per_tensor_sqnr_db:.1f} / {r.quant.per_token_sqnr_db:.1f}"]
        if any(x.batchnorm is not None for x in o.layers):
            bn = r.batchnorm
            row.append(f"{bn.rel_rms_diff:.1%}" if bn and bn.rel_rms_diff is not None
                       else ("n/a" if bn else ""))
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


@contextlib.contextmanager
def progress(console: Console) -> Iterator[Callable[[int, int], None] | None]:
    """A rich bar (inputs done / all) on `console` when it is a terminal; None otherwise, so
    pipes and CI logs stay quiet."""
    if not console.is_terminal:
        yield None
        return
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeRemainingColumn,
    )

    bar = Progress(TextColumn("inspect"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("inputs"), TimeRemainingColumn(), console=console, transient=True)
    task = bar.add_task("inspect", total=None)
    with bar:
        yield lambda done, total: bar.update(task, completed=done, total=total)
