"""Registries as data: every name a config, a model, a figure or a table refers to, defined once.

Pure data, no torch, no matplotlib: the config schema reads these for its choices and
descriptions (so `lnexp --help` and validation stay fast), and models, plots, tables and the
store look their names up here instead of spelling them again. Norms have their own registry
(`lnexp.norms`) because each entry carries a factory.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

# --------------------------------------------------------------------------- activations

# Name -> the torch.nn class that implements it (looked up lazily by lnexp.models).
ACTIVATIONS: dict[str, str] = {
    "none": "Identity",
    "relu": "ReLU",
    "tanh": "Tanh",
    "sigmoid": "Sigmoid",
    "gelu": "GELU",
}


# --------------------------------------------------------------------------- placements

@dataclass(frozen=True)
class Placement:
    """Where a block puts its norm: before or after the Linear, with or without a residual."""

    layout: str  # one line for docs and --help
    norm_first: bool  # the norm sees the block's input (else the Linear's output)
    residual: bool  # the block adds its input to its output
    final_norm: bool = False  # one more norm after the last block (Pre-LN)


PLACEMENTS: dict[str, Placement] = {
    "post": Placement("Linear→Norm→Act", norm_first=False, residual=False),
    "pre": Placement("Norm→Linear→Act", norm_first=True, residual=False),
    "pre_residual": Placement("x + Act(Linear(Norm(x))), final Norm", norm_first=True,
                              residual=True, final_norm=True),
    "post_residual": Placement("Norm(x + Act(Linear(x)))", norm_first=False, residual=True),
}
# The tutorial's layout; the only one the streamed snapshot computes (lnexp.plan).
DEFAULT_PLACEMENT = "post"


# --------------------------------------------------------------------------- blocks

@dataclass(frozen=True)
class BlockKind:
    """What one block of the stack computes; `placement` says where its norm goes."""

    summary: str  # one line for docs and --help
    module: str  # lnexp.models.<module> builds it
    sequence: bool = False  # needs (N, T, C) inputs
    residual_only: bool = False  # only pre_residual / post_residual make sense


BLOCKS: dict[str, BlockKind] = {
    "linear": BlockKind("one Linear, the activation after the norm (the tutorial's)", "mlp"),
    "ffn2": BlockKind("Linear → Act → Linear, the transformer's feed-forward branch", "mlp"),
    "transformer": BlockKind("self-attention then a 2-layer FFN, each a residual branch with "
                             "its own norm (sequences)", "transformer", sequence=True,
                             residual_only=True),
}
DEFAULT_BLOCK = "linear"


# --------------------------------------------------------------------------- precision

# model.dtype -> the torch dtype's attribute name. Statistics are float64 whatever this is.
DTYPES: dict[str, str] = {"float32": "float32", "bfloat16": "bfloat16", "float16": "float16"}
DEVICES = ("cpu", "cuda", "auto")


# --------------------------------------------------------------------------- figures

@dataclass(frozen=True)
class FigureSpec:
    """One PNG a command writes: `name` is also the lnexp.plots function that draws it."""

    name: str
    file: str  # relative to the run (or compare) folder
    when: Callable[[Any], bool]  # given the resolved Config: is it drawn?


def _always(cfg: Any) -> bool:
    return True


def _deep(cfg: Any) -> bool:
    return bool(cfg.model.depth > 1)


def _trains(cfg: Any) -> bool:
    return cfg.train is not None


RUN_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("overview", "figures/overview.png", _always),
    FigureSpec("heatmap", "figures/heatmap.png", _always),
    FigureSpec("layers", "figures/layers.png", _deep),
    FigureSpec("training", "figures/training.png", _trains),
)
# The heaviest first, so one figure worker starts on it at once.
COMPARE_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("comparison", "comparison.png", _always),
    FigureSpec("compare_layers", "layers.png", _deep),
)
SWEEP_FIGURE = FigureSpec("sweep_summary", "summary.png", _always)


def run_figures(cfg: Any) -> list[FigureSpec]:
    """The figures `lnexp run` draws for this config (none when output.figures is off)."""
    return [f for f in RUN_FIGURES if f.when(cfg)] if cfg.output.figures else []


def compare_figures(cfg: Any) -> list[FigureSpec]:
    """The compare folder's own figures (each norm's run folder has run_figures too)."""
    return [f for f in COMPARE_FIGURES if f.when(cfg)] if cfg.output.figures else []


# --------------------------------------------------------------------------- metrics

# The numbers that tell the norms apart: what BN pins (per-feature variance), what LN pins
# (per-sample variance) and whether samples are centred. Sweeps aggregate them by default;
# `lnexp runs` shows the first two.
HEADLINE_METRICS: tuple[str, ...] = ("post_norm.per_feature.var.spread",
                                     "post_norm.per_sample.var.spread",
                                     "post_norm.per_sample.mean.abs_max")
LISTED_METRICS: tuple[str, ...] = HEADLINE_METRICS[:2]
# Panel titles of the sweep summary figure.
METRIC_TITLES: dict[str, str] = {
    "post_norm.per_feature.var.spread": "per-feature variance after the norm:\n"
                                        "spread (max − min) over features",
    "post_norm.per_sample.var.spread": "per-sample variance after the norm:\n"
                                       "spread (max − min) over samples",
    "post_norm.per_sample.mean.abs_max": "per-sample mean after the norm:\n"
                                         "largest |mean| over samples",
    "layers.grad_norm_first_over_last.mean": "gradient norm, first block / last block\n"
                                             "(at initialization)",
    "layers.grad_norm.last": "gradient norm of the last block's weights\n(at initialization)",
    "layers.sample_cosine.last": "pairwise cosine of the samples\nafter the last block",
    "layers.sample_spread.last": "between-sample spread\nafter the last block",
    "layers.sample_cosine.max": "pairwise cosine of the samples,\nlargest over blocks",
    "training.heldout.eval_mode.accuracy.mean": "held-out accuracy, eval mode\n(end of training)",
    "training.heldout.train_mode.accuracy.mean": "held-out accuracy, train mode\n"
                                                 "(end of training)",
    "training.train_loss.mean": "training loss\n(mean of the last 10% of steps)",
    "precision.post_norm_max_abs_error.max": "norm output vs float64:\nlargest |error|",
    "precision.arithmetic_post_norm_max_abs_error.max": "norm output vs float64 on the same "
                                                        "rounded inputs:\nlargest |error|",
}


# --------------------------------------------------------------------------- comparators

# Expectation comparators: name (as in YAML) -> the symbol typed after --expect and shown in
# tables and in each result's `expectation` text.
COMPARATORS: dict[str, str] = {"le": "<=", "ge": ">=", "lt": "<", "gt": ">", "approx": "~="}


# --------------------------------------------------------------------------- run folders

# What `lnexp runs --kind/--status` accept (run.json's `kind` and `status`). `killed` is
# never written: it is how a `running` folder whose process is gone reads (lnexp.procs).
RUN_KINDS = ("run", "compare", "sweep", "inspect")
RUN_STATUSES = ("completed", "failed", "interrupted", "partial", "running", "killed")
# Where `lnexp sweep` runs its trials (--executor): worker processes here, or Dask.
EXECUTORS: tuple[str, ...] = ("local", "dask")
