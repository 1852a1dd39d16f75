"""`lnexp speed`: time every norm, eager and compiled, on this machine."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Annotated, Any

import typer

from lnexp.cli.base import _emit, _err, app, guarded
from lnexp.cli.options import JsonOpt, OutOpt, QuietOpt
from lnexp.errors import EXIT_EXPECTATION_FAILED, EXIT_PARTIAL


@app.command("speed")
@guarded
def speed_cmd(
    shape: Annotated[list[str] | None, typer.Option(
        "--shape", metavar="NxTxC", help="A tensor shape; its dims pick the layout: NxC "
        "features, NxTxC sequence, NxCxHxW image. Repeatable. Default: the --layout's shape.")
    ] = None,
    layout: Annotated[str, typer.Option(
        "--layout", metavar="LAYOUT", help="Without --shape: time this layout's default shape "
        "(features 2048x512, sequence 16x128x512, image 16x64x32x32), or 'all' for the three.")
    ] = "sequence",
    norm: Annotated[list[str] | None, typer.Option(
        "--norm", metavar="NAME", help="Only these norms (repeatable). Default: every "
        "registered norm defined on the shape's layout.")] = None,
    dtype: Annotated[str, typer.Option(
        "--dtype", metavar="DTYPES", help="Comma-separated, e.g. float32,bfloat16.")
    ] = "float32",
    device: Annotated[str, typer.Option("--device", metavar="DEVICE", help="cpu or cuda.")
                      ] = "cpu",
    compile_: Annotated[bool, typer.Option(
        "--compile/--no-compile", help="Also time each norm torch.compile'd (compile time "
        "reported separately; a failure is reported for that norm only).")] = True,
    min_time: Annotated[float, typer.Option(
        "--min-time", min=0.01, metavar="SECONDS",
        help="Timed seconds per measurement (torch.utils.benchmark blocked_autorange).")
    ] = 0.2,
    threads: Annotated[int | None, typer.Option(
        "--threads", min=1, metavar="N", help="torch threads (default: torch's).")] = None,
    expect_: Annotated[list[str] | None, typer.Option(
        "--expect", metavar="'A/B [MODE] [PASS] OP VALUE'",
        help="A speed ratio at every shape and dtype, e.g. 'rms/ln <= 5' (eager forward) or "
             "'rms/ln compiled forward_backward <= 2'. Repeatable; any failure exits 1.")
    ] = None,
    figures: Annotated[bool, typer.Option("--figures/--no-figures",
                                          help="Write figures/speed.png.")] = True,
    json_: JsonOpt = False, quiet: QuietOpt = False, output_dir: OutOpt = None,
) -> None:
    """Time each norm here, eager and compiled.

    Forward and forward+backward, eager and torch.compile'd, for every registered norm.

    Median and IQR by torch.utils.benchmark, achieved GB/s against the bytes the pass must
    move, and which implementation ran (a fused ATen kernel or a chain of ops, read from the
    profiler). Writes OUTPUT_DIR/speed/<timestamp>-<id>/ (speed.json, figures/speed.png).
    Exit 1 when an expectation fails, 2 for bad input, 3 when a norm could not run at all.
    """
    from lnexp import speed, speed_files

    shapes = _shapes(shape, layout)
    dtypes = tuple(d.strip() for d in dtype.split(",") if d.strip())
    speed.check_dtypes(dtypes)
    for text in expect_ or []:
        speed_files.parse_expectation(text)  # a malformed expectation fails before any work
    opts = speed.SpeedOptions(shapes=shapes, dtypes=dtypes, norms=tuple(norm or ()),
                              device=device, compile=compile_, min_run_time=min_time,
                              threads=threads)
    _check_norms(opts)
    names = sorted({n for sh in shapes for n in speed.norms_for(sh, opts.norms)})
    with speed_files.folder(output_dir or Path("outputs"), sys.argv, names) as run:
        t0 = time.perf_counter()
        cases = speed.run(opts, None if (quiet or json_) else _progress)
        results = speed_files.evaluate([c.doc() for c in cases], list(expect_ or []))
        doc = speed_files.document(cases, speed.environment(opts), _options(opts), results,
                                   time.perf_counter() - t0)
        speed_files.write(run, doc, figures)
    run_dir = run.path
    _report(doc, run_dir, results, json_, quiet)


def _shapes(shape: list[str] | None, layout: str) -> tuple[tuple[int, ...], ...]:
    from lnexp import speed
    from lnexp.errors import SpeedError

    if shape:
        return tuple(speed.parse_shape(s) for s in shape)
    if layout == "all":
        return tuple(speed.DEFAULT_SHAPES.values())
    if layout not in speed.DEFAULT_SHAPES:
        raise SpeedError(f"--layout {layout!r}: expected one of "
                          f"{', '.join(speed.DEFAULT_SHAPES)} or all")
    return (speed.DEFAULT_SHAPES[layout],)


def _check_norms(opts: Any) -> None:
    """Unknown norms are refused before any timing (exit 2, with the registry's hint)."""
    from lnexp import norms, speed

    speed.check_device(opts.device)
    for name in opts.norms:
        norms.get(name)


def _options(opts: Any) -> dict[str, Any]:
    return {"shapes": [list(s) for s in opts.shapes], "dtypes": list(opts.dtypes),
            "norms": list(opts.norms), "device": opts.device, "compile": opts.compile,
            "min_run_time": opts.min_run_time, "threads": opts.threads}


def _busy(env: dict[str, Any]) -> str | None:
    """A note when the machine's other work leaves the timing threads no free core: OpenMP
    threads then wait for each other at every op (measured here: LayerNorm 0.47 ms on one
    thread, 8 ms on two at load average 2 on 2 cores)."""
    load, cpus, threads = env.get("load_average"), env.get("cpus") or 1, env.get("threads") or 1
    if not load or threads < 2 or load[0] + threads <= cpus + 0.5:
        return None
    return (f"note: load average {load[0]:.1f} on {cpus} CPUs with {threads} torch threads: "
            f"multi-threaded timings wait for busy cores and read slow; --threads 1 measures "
            f"one core")


def _progress(case: Any) -> None:
    eager = case.median_ms("eager", "forward")
    what = case.error or (f"{eager:.3g} ms forward" if eager is not None else "")
    typer.echo(f"  {case.norm:>10} {'×'.join(map(str, case.shape))} {case.dtype}: {what}",
               err=True)


def _report(doc: dict[str, Any], run_dir: Path, results: list[dict[str, Any]], json_: bool,
            quiet: bool) -> None:
    from lnexp import tables
    from lnexp.speed_table import speed_tables

    if json_:
        _emit({**doc, "run_dir": str(run_dir)})
    elif quiet:
        typer.echo(str(run_dir))
    else:
        console = tables.make_console()
        for table in speed_tables(doc):
            console.print(table)
        if results:
            console.print(tables.expectations_table(results))
        console.print(f"Wrote {run_dir}")
        if (busy := _busy(doc["environment"])):
            typer.echo(busy, err=True)
    failed = [r["expectation"] for r in results if not r["passed"]]
    broken = [c for c in doc["cases"] if c["error"]]
    if failed:
        _err(f"{len(failed)} expectation(s) failed: {'; '.join(failed)}")
        raise typer.Exit(EXIT_EXPECTATION_FAILED)
    if broken:
        _err("; ".join(f"{c['norm']} {c['dtype']}: {c['error']}" for c in broken))
        raise typer.Exit(EXIT_PARTIAL)
