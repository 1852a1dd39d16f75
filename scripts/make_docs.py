"""Regenerate every PNG under docs/ from its shipped config, with the code that ships.

Usage:
    .venv/bin/python scripts/make_docs.py   # every figure (sweeps: ~1 h on 2 cores)
    .venv/bin/python scripts/make_docs.py warmup.png ...   # only these
    .venv/bin/python scripts/make_docs.py --list           # the table: png, config, command, figure
    .venv/bin/python scripts/make_docs.py --from warmup.png=outputs/warmup-sweep/<run> ...
                                          # copy the figure of a folder the same command wrote

`make docs` runs the first form. Each entry runs its command as a user would (`lnexp` of this
checkout, output to a temporary folder) and copies one figure of the folder it writes to
docs/<png>. tests/test_docs_figures.py checks that every docs/*.png is in FIGURES with an
existing config, and that the page embedding it names that config.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
DOCS = ROOT / "docs"


@dataclass(frozen=True)
class DocsFigure:
    """docs/<png> is <figure> (a path inside the folder `lnexp <args>` writes)."""

    png: str
    config: str | None  # the shipped config (None: a command without one, e.g. inspect)
    args: tuple[str, ...]  # the lnexp command, without the output folder
    figure: str


FIGURES: tuple[DocsFigure, ...] = (
    DocsFigure("overview-ln.png", "configs/default.yaml",
               ("run", "configs/default.yaml"), "figures/overview.png"),
    DocsFigure("heatmap-bn.png", "configs/bn.yaml",
               ("run", "configs/bn.yaml"), "figures/heatmap.png"),
    DocsFigure("comparison.png", "configs/default.yaml",
               ("compare", "--config", "configs/default.yaml"), "comparison.png"),
    DocsFigure("norm_axes-image.png", "configs/image_axes.yaml",
               ("compare", "--config", "configs/image_axes.yaml"), "norm_axes.png"),
    DocsFigure("norm_axes-sequence.png", "configs/sequence_axes.yaml",
               ("compare", "--config", "configs/sequence_axes.yaml"), "norm_axes.png"),
    DocsFigure("feature_maps-bn.png", "configs/image_axes.yaml",
               ("run", "configs/image_axes.yaml", "--set", "model.norm=bn"),
               "figures/feature_maps.png"),
    DocsFigure("token_heatmap-ln.png", "configs/sequence_axes.yaml",
               ("run", "configs/sequence_axes.yaml"), "figures/token_heatmap.png"),
    DocsFigure("deep_sigmoid-layers.png", "configs/deep_sigmoid.yaml",
               ("compare", "none", "bn", "ln", "rms", "--config", "configs/deep_sigmoid.yaml"),
               "layers.png"),
    DocsFigure("batch_size-bn-training.png", "configs/batch_size.yaml",
               ("run", "configs/batch_size.yaml", "--set", "output.figures=true"),
               "figures/training.png"),
    DocsFigure("inspect-absmax.png", None, ("inspect", "minilm"), "figures/absmax.png"),
    DocsFigure("inspect-batchnorm.png", None, ("inspect", "mobilenet_v2"),
               "figures/batchnorm.png"),
    DocsFigure("inspect-layer-skip.png", None, ("inspect", "smollm2", "--ablate"),
               "figures/layer_skip.png"),
    DocsFigure("depth_scan.png", "configs/depth_scan.yaml",
               ("sweep", "configs/depth_scan.yaml", "-j", "2"), "summary.png"),
    DocsFigure("pre_vs_post_ln.png", "configs/pre_vs_post_ln.yaml",
               ("sweep", "configs/pre_vs_post_ln.yaml", "-j", "2"), "summary.png"),
    DocsFigure("batch_size-sweep.png", "configs/batch_size.yaml",
               ("sweep", "configs/batch_size.yaml", "-j", "2"), "summary.png"),
    DocsFigure("warmup.png", "configs/warmup.yaml",
               ("sweep", "configs/warmup.yaml", "-j", "2", "--x", "train.lr"), "summary.png"),
    DocsFigure("digits_batch-sweep.png", "configs/digits_batch.yaml",
               ("sweep", "configs/digits_batch.yaml", "-j", "2"), "summary.png"),
    DocsFigure("small_batch_norms.png", "configs/small_batch_norms.yaml",
               ("sweep", "configs/small_batch_norms.yaml", "-j", "2", "--x", "train.batch_size"),
               "summary.png"),
    DocsFigure("dyt_transformer.png", "configs/dyt_transformer.yaml",
               ("sweep", "configs/dyt_transformer.yaml", "-j", "2", "--x", "train.lr"),
               "summary.png"),
    DocsFigure("charlm-diagnostics.png", "configs/charlm.yaml",
               ("run", "configs/charlm.yaml"), "figures/training_diagnostics.png"),
    DocsFigure("residual_growth.png", "configs/residual_growth.yaml",
               ("sweep", "configs/residual_growth.yaml", "-j", "2", "--x", "model.depth"),
               "summary.png"),
    DocsFigure("qk_norm.png", "configs/qk_norm.yaml",
               ("sweep", "configs/qk_norm.yaml", "-j", "2", "--x", "train.lr"), "summary.png"),
)
BY_PNG = {f.png: f for f in FIGURES}


def command(entry: DocsFigure) -> str:
    """The command as the docs write it."""
    return "lnexp " + " ".join(entry.args)


def lnexp() -> str:
    """This checkout's lnexp: the one next to the running Python (the project's .venv)."""
    exe = Path(sys.executable).parent / "lnexp"
    return str(exe) if exe.exists() else "lnexp"


def find_figure(folder: Path, figure: str) -> Path:
    """The figure inside the one output folder (<output dir>/<name>[-kind]/<timestamp-id>/)."""
    found = sorted(folder.glob(f"*/*/{figure}"))
    if len(found) != 1:
        raise SystemExit(f"error: expected one {figure} under {folder}, found {len(found)}")
    return found[0]


def regenerate(entry: DocsFigure) -> None:
    """Run the entry's command into a temporary folder and copy its figure to docs/."""
    with tempfile.TemporaryDirectory(prefix="lnexp-docs-") as tmp:
        argv = [lnexp(), *entry.args, "-o", tmp]
        print(f"{entry.png}: {command(entry)}", flush=True)
        done = subprocess.run(argv, cwd=ROOT, stdout=subprocess.DEVNULL, check=False)
        if done.returncode != 0:
            raise SystemExit(f"error: {command(entry)} exited {done.returncode}")
        shutil.copyfile(find_figure(Path(tmp), entry.figure), DOCS / entry.png)


def copy_from(png: str, folder: Path) -> None:
    """docs/<png> from a folder its command already wrote (e.g. a long sweep run earlier)."""
    entry = BY_PNG[png]
    source = folder / entry.figure
    if not source.is_file():
        raise SystemExit(f"error: {source} does not exist ({png} is {entry.figure} of "
                         f"`{command(entry)}`)")
    shutil.copyfile(source, DOCS / png)
    print(f"{png}: copied from {source} ({command(entry)})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("png", nargs="*", help="docs figures to regenerate (default: all)")
    parser.add_argument("--list", action="store_true", help="print the table and exit")
    parser.add_argument("--from", dest="sources", action="append", default=[],
                        metavar="PNG=FOLDER", help="copy PNG's figure from FOLDER instead")
    args = parser.parse_args(argv)
    if args.list:
        for e in FIGURES:
            print(f"{e.png}\t{e.config or '-'}\t{command(e)}\t{e.figure}")
        return 0
    unknown = [p for p in args.png + [s.partition("=")[0] for s in args.sources]
               if p not in BY_PNG]
    if unknown:
        print(f"error: not a docs figure: {', '.join(unknown)} (see --list)", file=sys.stderr)
        return 2
    for source in args.sources:
        png, _, folder = source.partition("=")
        copy_from(png, Path(folder))
    if args.sources and not args.png:
        return 0
    for png in args.png or [e.png for e in FIGURES]:
        regenerate(BY_PNG[png])
    return 0


if __name__ == "__main__":
    sys.exit(main())
