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

# The options of `lnexp inspect`, declared once here so the command's signature stays short.
TextOpt = Annotated[list[str] | None, typer.Option(
    "--text", metavar="TEXT", help="A sentence to feed a text model (repeatable).")
]
TextFileOpt = Annotated[Path | None, typer.Option(
    "--text-file", metavar="FILE", help="Sentences, one per line.")]
RandomOpt = Annotated[str | None, typer.Option(
    "--random", metavar="SHAPE", help="Random normal inputs, e.g. 8,3,32,32 (8 inputs).")
]
TensorOpt = Annotated[Path | None, typer.Option(
    "--tensor", metavar="FILE", help="A .npy or .pt file; dim 0 indexes the inputs.")
]
DigitsOpt = Annotated[bool, typer.Option(
    "--digits", help="scikit-learn's 8x8 digits, shape (N, 1, 8, 8).")]
ImageOpt = Annotated[list[Path] | None, typer.Option(
    "--image", metavar="FILE", help="An image for mobilenet_v2 / efficientnet_lite0 "
    "(repeatable; default: scikit-learn's two photos).")]
ToneOpt = Annotated[float | None, typer.Option(
    "--tone", metavar="HZ", help="A 1 s sine at 16 kHz for crepe_tiny (default 440).")
]
AudioOpt = Annotated[Path | None, typer.Option(
    "--audio", metavar="FILE.wav", help="A PCM WAV file for crepe_tiny (mono or averaged, "
    "resampled to 16 kHz).")]
LimitOpt = Annotated[int | None, typer.Option("--limit", min=1, metavar="N",
                                          help="Use only the first N inputs.")]
BatchSizeOpt = Annotated[int, typer.Option("--batch-size", "-b", min=1, metavar="N", help=(
    "Inputs per forward call (also BatchNorm's train-mode batch)."))]
TopKOpt = Annotated[int, typer.Option("--top-k", min=1, metavar="K",
                                   help="Outlier dims and γ/β extremes listed.")]
SeedOpt = Annotated[int, typer.Option("--seed", metavar="SEED", help=(
    "Seed for --random, the S-curve sample and --ablate's random control."))
                ]
FiguresOpt = Annotated[bool, typer.Option("--figures/--no-figures",
                                      help="Write figures/*.png.")]
AblateOpt = Annotated[bool, typer.Option(
    "--ablate", help="Also zero / mean the massive activations (and a random control) and "
    "skip each block in turn: 5 + (blocks) extra forwards over the inputs.")]
CurveLayersOpt = Annotated[int, typer.Option(
    "--curve-layers", min=0, metavar="N",
    help="Norm layers whose S-curve (input vs normalized output) is sampled.")]
ExpectOpt = Annotated[list[str] | None, typer.Option(
    "--expect", metavar="'PATH.REDUCER OP VALUE'",
    help="Check inspect.json, e.g. 'layers.*.quant.per_token_sqnr_db.min >= 20' or "
         "'layers[encoder.layer.0.output.LayerNorm].pre.outliers.0.ratio.max >= 100'. "
         "Repeatable; any failure exits 1.")]
WeightsOnlyOpt = Annotated[bool, typer.Option(
    "--weights-only", help="GGUF models (smollm2, gemma3, a .gguf file): list the norm "
                           "layers, eps and scale statistics from the file, without "
                           "building the model or reading inputs; writes no folder.")
]
NoCacheOpt = Annotated[bool, typer.Option(
    "--no-cache", help="GGUF language models (smollm2, gemma3): neither read nor write "
                       "the model cache of dequantized weights.")]


@app.command("inspect")
@guarded
def inspect_cmd(
    model: ModelArg,
    text: TextOpt = None,
    text_file: TextFileOpt = None,
    random_: RandomOpt = None,
    tensor: TensorOpt = None,
    digits: DigitsOpt = False,
    image: ImageOpt = None,
    tone: ToneOpt = None,
    audio: AudioOpt = None,
    limit: LimitOpt = None,
    batch_size: BatchSizeOpt = 32,
    top_k: TopKOpt = 5,
    seed: SeedOpt = 0,
    figures: FiguresOpt = True,
    ablate: AblateOpt = False,
    curve_layers: CurveLayersOpt = 4,
    expect_: ExpectOpt = None,
    weights_only: WeightsOnlyOpt = False,
    no_cache: NoCacheOpt = False,
    json_: JsonOpt = False, quiet: QuietOpt = False, output_dir: OutOpt = None,
) -> None:
    """Measure what the norm layers do inside a real pretrained model.

    For example `lnexp inspect minilm` (the packaged all-MiniLM-L6-v2), or `lnexp inspect
    minilm smollm2` for several models side by side. Hooks every
    normalization layer (LayerNorm, RMSNorm, BatchNorm*, GroupNorm, InstanceNorm*,
    *Norm classes) and measures its input and output per token and per hidden dim, outlier
    dims, learned γ/β, int8 SQNR, kurtosis, the S-curve, massive activations per block, and
    BatchNorm train vs eval. Offline: never downloads.
    Writes OUTPUT_DIR/inspect-<model>/<timestamp>-<id>/ (inspect.json, layers.csv, dims.csv,
    figures/). Exit 1 when an expectation fails, 2 for a bad model or input.
    """
    from lnexp import progress, tables
    from lnexp.api import compute
    from lnexp.inspect import InputSpec, InspectOptions
    from lnexp.inspect import table as inspect_table

    if weights_only:
        _weights_only(model, json_, bool(text or text_file or random_ or tensor or digits
                                         or expect_))
        return
    spec = InputSpec(texts=tuple(text or ()), text_file=text_file, random=random_,
                     tensor_file=tensor, digits=digits, limit=limit, seed=seed,
                     images=tuple(image or ()), tone=tone, audio=audio)
    options = InspectOptions(batch_size=batch_size, top_k=top_k, model_cache=not no_cache,
                             ablate=ablate, curve_layers=curve_layers, seed=seed)
    steps = functools.partial(progress.steps, "inputs", quiet=quiet)
    args = (spec, options, output_dir or Path("outputs"), sys.argv, list(expect_ or []),
            figures, steps)
    if len(model) > 1:
        outcomes, run_dir, doc, results = compute.inspect_many(model, *args)
    else:
        outcome, run_dir, doc, results = compute.inspect(model[0], *args)
    if json_:
        _emit({**doc, "run_dir": str(run_dir), "expectations": results})
    elif quiet:
        typer.echo(str(run_dir))
    else:
        console = tables.make_console()
        if len(model) > 1:
            from lnexp.inspect.multi import render

            render(console, outcomes, str(run_dir))
        else:
            inspect_table.render(console, outcome, str(run_dir))
        if results:
            console.print(tables.expectations_table(results))
    if not all(r["passed"] for r in results):
        failed = [r["expectation"] for r in results if not r["passed"]]
        _err(f"{len(failed)} expectation(s) failed: {'; '.join(failed)}")
        raise typer.Exit(EXIT_EXPECTATION_FAILED)



def _weights_only(models: list[str], json_: bool, inputs_given: bool) -> None:
    from lnexp import tables
    from lnexp.inspect import table as inspect_table
    from lnexp.inspect.errors import InspectError
    from lnexp.inspect.zoo_lm import weights_listing

    if inputs_given:
        raise InspectError("--weights-only reads no inputs and checks no expectations: leave "
                           "out --text/--text-file/--random/--tensor/--digits/--expect")
    if len(models) > 1:
        raise InspectError(f"--weights-only lists one GGUF model at a time, not "
                           f"{len(models)} ({' '.join(models)})")
    doc = weights_listing(models[0])
    if json_:
        _emit(doc)
    else:
        inspect_table.render_weights(tables.make_console(), doc)
