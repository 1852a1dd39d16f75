"""`lnexp inspect`: measure the norm layers inside a pretrained model."""

from __future__ import annotations

import functools
import sys
from pathlib import Path
from typing import Annotated

import typer

from lnexp.cli.base import (
    _emit,
    _err,
    app,
    guarded,
)
from lnexp.cli.options import (
    JsonOpt,
    ModelArg,
    OutOpt,
    QuietOpt,
)
from lnexp.errors import (
    EXIT_EXPECTATION_FAILED,
)


@app.command("inspect")
@guarded
def inspect_cmd(
    model: ModelArg,
    text: Annotated[list[str] | None, typer.Option(
        "--text", metavar="TEXT", help="A sentence to feed a text model (repeatable).")
    ] = None,
    text_file: Annotated[Path | None, typer.Option(
        "--text-file", metavar="FILE", help="Sentences, one per line.")] = None,
    random_: Annotated[str | None, typer.Option(
        "--random", metavar="SHAPE", help="Random normal inputs, e.g. 8,3,32,32 (8 inputs).")
    ] = None,
    tensor: Annotated[Path | None, typer.Option(
        "--tensor", metavar="FILE", help="A .npy or .pt file; dim 0 indexes the inputs.")
    ] = None,
    digits: Annotated[bool, typer.Option(
        "--digits", help="scikit-learn's 8x8 digits, shape (N, 1, 8, 8).")] = False,
    limit: Annotated[int | None, typer.Option("--limit", min=1, metavar="N",
                                              help="Use only the first N inputs.")] = None,
    batch_size: Annotated[int, typer.Option("--batch-size", "-b", min=1, metavar="N", help=(
        "Inputs per forward call (also BatchNorm's train-mode batch)."))] = 32,
    top_k: Annotated[int, typer.Option("--top-k", min=1, metavar="K",
                                       help="Outlier dims and γ/β extremes listed.")] = 5,
    seed: Annotated[int, typer.Option("--seed", metavar="SEED", help="Seed for --random.")
                    ] = 0,
    figures: Annotated[bool, typer.Option("--figures/--no-figures",
                                          help="Write figures/*.png.")] = True,
    expect_: Annotated[list[str] | None, typer.Option(
        "--expect", metavar="'PATH.REDUCER OP VALUE'",
        help="Check inspect.json, e.g. 'layers.*.quant.per_token_sqnr_db.min >= 20' or "
             "'layers[encoder.layer.0.output.LayerNorm].pre.outliers.0.ratio.max >= 100'. "
             "Repeatable; any failure exits 1.")] = None,
    no_cache: Annotated[bool, typer.Option(
        "--no-cache", help="GGUF language models (smollm2, gemma3): neither read nor write "
                           "the model cache of dequantized weights.")] = False,
    json_: JsonOpt = False, quiet: QuietOpt = False, output_dir: OutOpt = None,
) -> None:
    """Measure what the norm layers do inside a real pretrained model.

    For example `lnexp inspect minilm` (the packaged all-MiniLM-L6-v2). Hooks every
    normalization layer (LayerNorm, RMSNorm, BatchNorm*, GroupNorm, InstanceNorm*,
    *Norm classes) and measures its input and output per token and per hidden dim, outlier
    dims, learned γ/β, int8 SQNR, and BatchNorm train vs eval. Offline: never downloads.
    Writes OUTPUT_DIR/inspect-<model>/<timestamp>-<id>/ (inspect.json, layers.csv, dims.csv,
    figures/). Exit 1 when an expectation fails, 2 for a bad model or input.
    """
    from lnexp import progress, tables
    from lnexp.api import compute
    from lnexp.inspect import InputSpec, InspectOptions
    from lnexp.inspect import table as inspect_table

    spec = InputSpec(texts=tuple(text or ()), text_file=text_file, random=random_,
                     tensor_file=tensor, digits=digits, limit=limit, seed=seed)
    options = InspectOptions(batch_size=batch_size, top_k=top_k, model_cache=not no_cache)
    steps = functools.partial(progress.steps, "inputs", quiet=quiet)
    outcome, run_dir, doc, results = compute.inspect(
        model, spec, options, output_dir or Path("outputs"), sys.argv, list(expect_ or []),
        figures, steps)
    if json_:
        _emit({**doc, "run_dir": str(run_dir), "expectations": results})
    elif quiet:
        typer.echo(str(run_dir))
    else:
        console = tables.make_console()
        inspect_table.render(console, outcome, str(run_dir))
        if results:
            console.print(tables.expectations_table(results))
    if not all(r["passed"] for r in results):
        failed = [r["expectation"] for r in results if not r["passed"]]
        _err(f"{len(failed)} expectation(s) failed: {'; '.join(failed)}")
        raise typer.Exit(EXIT_EXPECTATION_FAILED)

