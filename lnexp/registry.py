"""Registries as data: every name a config, a model, a figure or a table refers to, defined once.

Pure data, no torch, no matplotlib: the config schema reads these for its choices and
descriptions (so `lnexp --help` and validation stay fast), and models, figures, tables and the
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
    # The block kinds it is defined on (None: all); peri/deepnorm wrap a branch with residual
    # sub-layers, which ffn2 and transformer blocks have.
    blocks: tuple[str, ...] | None = None


PLACEMENTS: dict[str, Placement] = {
    "post": Placement("Linear→Norm→Act", norm_first=False, residual=False),
    "pre": Placement("Norm→Linear→Act", norm_first=True, residual=False),
    "pre_residual": Placement("x + Act(Linear(Norm(x))), final Norm", norm_first=True,
                              residual=True, final_norm=True),
    "post_residual": Placement("Norm(x + Act(Linear(x)))", norm_first=False, residual=True),
    # Peri-LN (Gemma 2/3, OLMo 2 style): a norm on the branch's input and on its output.
    "peri_residual": Placement("x + Norm(F(Norm(x))), final Norm", norm_first=True,
                               residual=True, final_norm=True, blocks=("ffn2", "transformer")),
    # DeepNorm (Wang et al. 2022, encoder form): Post-LN with an up-weighted residual,
    # alpha = (2N)^(1/4), and the FFN / value / output projections scaled by (8N)^(-1/4).
    "deepnorm_residual": Placement("Norm(alpha·x + F(x)), alpha = (2N)^¼", norm_first=False,
                                   residual=True, blocks=("ffn2", "transformer")),
}
# The tutorial's layout; the only one the streamed snapshot computes (lnexp.plan).
DEFAULT_PLACEMENT = "post"
# model.qk_norm: the norm applied to queries and keys per head (over the head dim), by
# registry name (lnexp.norms), or none.
QK_NORMS: tuple[str, ...] = ("none", "ln", "rms")


def deepnorm_alpha(blocks: int) -> float:
    """DeepNorm's residual weight for an encoder of `blocks` blocks: (2N)^(1/4)."""
    return float((2 * blocks) ** 0.25)


def deepnorm_beta(blocks: int) -> float:
    """DeepNorm's init gain of the FFN / value / output projections: (8N)^(-1/4)."""
    return float((8 * blocks) ** -0.25)


# --------------------------------------------------------------------------- layouts

@dataclass(frozen=True)
class Layout:
    """How one sample is shaped and which axes a norm can standardize on it.

    `dims` names the tensor's axes in order (N first); `axes` maps every statistic axis this
    layout reports to (what one value describes, what it is computed over), with {C}, {H}, {W},
    {T}, {N}, {G} filled in from the config. `per_group` is reported only for norm: group.
    """

    dims: tuple[str, ...]
    summary: str  # one line for docs and --help
    layer: str  # the layer each block puts in front of its norm: "linear" or "conv2d"
    keys: tuple[str, ...]  # data.* / model.* keys that apply only to this layout
    axes: dict[str, tuple[str, str]]


LAYOUTS: dict[str, Layout] = {
    "features": Layout(
        ("N", "C"), "(N, C): the tutorial's rows of features", "linear", (),
        {"per_feature": ("feature", "the {N} samples (dim 0)"),
         "per_sample": ("sample", "its {C} features (dim 1)"),
         "per_group": ("(sample, group)", "its group's {CG} features")}),
    "image": Layout(
        ("N", "C", "H", "W"), "(N, C, H, W): images, Conv2d blocks", "conv2d",
        ("data.height", "data.width", "model.kernel_size"),
        {"per_feature": ("channel", "N·H·W = {N}×{H}×{W} values"),
         "per_sample": ("sample", "its C·H·W = {C}×{H}×{W} values"),
         "per_instance": ("(sample, channel)", "its H·W = {H}×{W} positions"),
         "per_group": ("(sample, group)", "its group's {CG} channels × {H}×{W} positions"),
         "per_pixel": ("pixel (n, h, w)", "its {C} channels")}),
    "sequence": Layout(
        ("N", "T", "C"), "(N, T, C): token sequences, Linear per token", "linear",
        ("data.tokens",),
        {"per_feature": ("channel", "N·T = {N}×{T} tokens"),
         "per_sample": ("sample", "its T·C = {T}×{C} values"),
         "per_token": ("token (n, t)", "its {C} channels"),
         "per_instance": ("(sample, channel)", "its {T} tokens"),
         "per_group": ("(sample, group)", "its group's {CG} channels × {T} tokens")}),
}
DEFAULT_LAYOUT = "features"
# Every statistic axis, in the order tables and metrics.json list them.
AXES: tuple[str, ...] = ("per_feature", "per_sample", "per_token", "per_instance", "per_group",
                         "per_pixel")
# A verdict in words: the axes a norm standardized, e.g. "groups and samples".
AXIS_WORDS: dict[str, str] = {"per_feature": "features", "per_sample": "samples",
                              "per_token": "tokens", "per_instance": "instances",
                              "per_group": "groups", "per_pixel": "pixels"}
# Axes reported only for the norms whose own axis they are (per_group: group; per_pixel:
# ln_pixel on images; or a user norm measured on them), so other runs' metrics do not change.
OWN_ONLY_AXES: tuple[str, ...] = ("per_group", "per_pixel")


def standardizes(axes: list[str]) -> str:
    """The standardized axes in words, e.g. ['per_feature'] -> 'features', ['per_group',
    'per_sample'] -> 'groups and samples', [] -> 'neither'."""
    # The finest axis first (the norm's own; the coarser ones follow from it): 'instances,
    # features and samples', 'groups and samples', 'tokens and samples'.
    finest_first = ("per_instance", "per_group", "per_token", "per_pixel", "per_feature",
                    "per_sample")
    assert set(finest_first) == set(AXES)
    words = [AXIS_WORDS[a] for a in finest_first if a in axes]
    if not words:
        return "neither"
    return words[0] if len(words) == 1 else ", ".join(words[:-1]) + " and " + words[-1]


def axes(layout: str, norm: str, own: str | None = None) -> tuple[str, ...]:
    """The statistic axes reported for this layout and norm: per_group only for group, and an
    OWN_ONLY_AXES axis when it is the norm's `own` axis (ln_pixel: per_pixel)."""
    return tuple(a for a in AXES if a in LAYOUTS[layout].axes
                 and (a not in OWN_ONLY_AXES or a == own
                      or (a == "per_group" and norm == "group")))


# --------------------------------------------------------------------------- blocks

@dataclass(frozen=True)
class BlockKind:
    """What one block of the stack computes; `placement` says where its norm goes."""

    summary: str  # one line for docs and --help
    module: str  # lnexp.models.<module> builds it
    layouts: tuple[str, ...]  # the data.layout values it is defined on
    why: str = ""  # why it is not defined on the other layouts (validate says so)
    residual_only: bool = False  # only residual placements make sense


BLOCKS: dict[str, BlockKind] = {
    "linear": BlockKind("one Linear, the activation after the norm (the tutorial's)", "mlp",
                        ("features", "image", "sequence")),
    "ffn2": BlockKind("Linear → Act → Linear, the transformer's feed-forward branch (per token "
                      "on sequences)", "mlp", ("features", "sequence"),
                      why="its branch is two Linears on each row or token; image blocks are "
                          "Conv2d"),
    "transformer": BlockKind("self-attention over the data.tokens tokens, then a 2-layer FFN, "
                             "each a residual branch with its own norm (data.layout: sequence)",
                             "transformer", ("sequence",),
                             why="self-attention mixes the T tokens of each (N, T, C) sample",
                             residual_only=True),
}
DEFAULT_BLOCK = "linear"


# --------------------------------------------------------------------------- precision

# model.dtype -> the torch dtype's attribute name. Statistics are float64 whatever this is.
DTYPES: dict[str, str] = {"float32": "float32", "float64": "float64", "bfloat16": "bfloat16",
                          "float16": "float16"}
DEVICES = ("cpu", "cuda", "auto")


# --------------------------------------------------------------------------- figures

@dataclass(frozen=True)
class FigureSpec:
    """One PNG a command writes: `name` is also its key in lnexp.figures.FIGURES (the function
    that draws it)."""

    name: str
    file: str  # relative to the run (or compare) folder
    when: Callable[[Any], bool]  # given the resolved Config: is it drawn?


def _always(cfg: Any) -> bool:
    return True


def _deep(cfg: Any) -> bool:
    return bool(cfg.model.depth > 1)


def _trains(cfg: Any) -> bool:
    return cfg.train is not None


def _features(cfg: Any) -> bool:
    return bool(cfg.data.layout == "features")


def _image(cfg: Any) -> bool:
    return bool(cfg.data.layout == "image")


def _sequence(cfg: Any) -> bool:
    return bool(cfg.data.layout == "sequence")


def _logs(cfg: Any) -> bool:
    return bool(cfg.train is not None and cfg.train.log_every is not None)


def _not_features(cfg: Any) -> bool:
    return not _features(cfg)


RUN_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("overview", "figures/overview.png", _always),
    FigureSpec("heatmap", "figures/heatmap.png", _features),
    FigureSpec("feature_maps", "figures/feature_maps.png", _image),
    FigureSpec("token_heatmap", "figures/token_heatmap.png", _sequence),
    FigureSpec("layers", "figures/layers.png", _deep),
    FigureSpec("training", "figures/training.png", _trains),
    FigureSpec("training_diagnostics", "figures/training_diagnostics.png", _logs),
)
# The heaviest first, so one figure worker starts on it at once.
COMPARE_FIGURES: tuple[FigureSpec, ...] = (
    FigureSpec("comparison", "comparison.png", _always),
    FigureSpec("norm_axes", "norm_axes.png", _not_features),
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
    "layers.hidden_rms.last": "hidden-state RMS after the last block\n(at initialization)",
    "layers.hidden_rms.max": "hidden-state RMS, largest over blocks\n(at initialization)",
    "layers.attn_logit_max.max": "largest attention logit max |q·k|/√d,\nover blocks",
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
RUN_KINDS = ("run", "compare", "sweep", "inspect", "speed")
RUN_STATUSES = ("completed", "failed", "interrupted", "partial", "running", "killed")
# Where `lnexp sweep` runs its trials (--executor): worker processes here, or Dask.
EXECUTORS: tuple[str, ...] = ("local", "dask")
