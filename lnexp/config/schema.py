"""The config schema: pydantic sections, every cross-key rule as a validator, the dotted key
paths, and the resolved config as plain data (what config.yaml and metrics.json store).

Every rule lives in a validator here, so one `Config.model_validate` reports all problems at
once (lnexp/config/problems.py words them with file:line and key path).
"""

from __future__ import annotations

import math
import re
import types
import typing
from typing import Annotated, Any, Literal

import yaml
from pydantic import (
    AfterValidator,
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


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


LAYOUTS = tuple(registry.LAYOUTS)
# scikit-learn's bundled handwritten digits (load_digits): 1,797 images of 8 x 8 pixels.
DIGITS_COUNT, DIGITS_SIDE = 1797, 8
DIGITS_EXTRA = "data.source: digits needs scikit-learn: pip install 'lnexp[data]'"


def digits_available() -> bool:
    """Whether scikit-learn is installed (looked up without importing it)."""
    import importlib.util

    return importlib.util.find_spec("sklearn") is not None


class DataConfig(_Section):
    """The input batch fed to the model: `n_samples` samples of the layout's shape."""

    n_samples: StrictInt = Field(100, ge=1, le=MAX_DIM, description="Samples in the batch (dim 0), e.g. 100.")
    layout: Literal[LAYOUTS] = Field(  # type: ignore[valid-type]
        registry.DEFAULT_LAYOUT, description="Shape of one batch: " + "; ".join(f"{k} {v.summary}" for k, v in registry.LAYOUTS.items()) + ".")
    height: StrictInt | None = Field(None, ge=1, le=4096, description="layout image: image height H; default 8.")
    width: StrictInt | None = Field(None, ge=1, le=4096, description="layout image: image width W; default 8.")
    tokens: StrictInt | None = Field(None, ge=1, le=MAX_DIM, description="layout sequence: tokens T per sample; default 16.")
    source: Literal["random", "digits"] = Field(
        "random", description="random: drawn from data.distribution; digits: scikit-learn's 1,797 handwritten 8x8 digits (pixels / 16, a seed-chosen subset of n_samples; needs lnexp[data]), as (N, 1, 8, 8) images or (N, 64) features.")
    distribution: Literal["normal", "uniform", "laplace", "student_t"] = Field(
        "normal", description="Shape of the input distribution: normal, uniform, laplace, student_t.")
    loc: Float = Field(0.0, description="Mean of the input values, e.g. 0.0.")
    scale: Float = Field(1.0, gt=0, description="Standard deviation of the input values, e.g. 1.0.")
    df: Float = Field(5.0, gt=2, description="Degrees of freedom for student_t (> 2 so the std is finite).")
    values: list[list[RawFloat]] | None = Field(
        None, description="Explicit input rows, e.g. [[2, 3, 5, 1, 4]]; replaces the random draw "
                          "and sets n_samples and model.in_features from its shape.")

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


class ModelConfig(_Section):
    """A stack of `depth` blocks; depth 1 with the defaults is the tutorial's SimpleModel:
    Linear(in_features, out_features) then the norm."""

    in_features: StrictInt = Field(100, ge=1, le=MAX_DIM, description="Inputs of the first Linear layer, e.g. 100.")
    out_features: StrictInt = Field(50, ge=1, le=MAX_DIM, description="Outputs of the last Linear layer (depth 1: the features the norm sees), e.g. 50.")
    linear: StrictBool = Field(True, description="Put Linear before the norm; false feeds the data straight into the norm.")
    norm: str = Field("ln", description="Norm in each block (the tutorial: after the Linear layer): " + ", ".join(norms.names()) + ".")
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
            raise ValueError(f"model.block: {self.block} has residual branches, so "
                             f"model.placement must be pre_residual (Pre-LN) or post_residual "
                             f"(Post-LN), not {self.placement}")
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


class TrainConfig(_Section):
    """Training on a synthetic task drawn from the seed; absent (null) means no training."""

    task: Literal["clusters", "teacher", "retrieve", "digits"] = Field(
        "clusters", description="clusters: Gaussian-cluster classification (cross-entropy); teacher: regression onto a random tanh teacher (MSE); retrieve: name the symbol at the marked position of a sequence, read at the last one (data.layout: sequence, T = data.tokens; attention is what solves it: model.block: transformer); digits: scikit-learn's handwritten digits, 10 classes, split by seed (needs lnexp[data]).")
    outputs: StrictInt = Field(4, ge=1, description="Classes (clusters, retrieve: >= 2; digits: 10) or regression targets (teacher), e.g. 4.")
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
        if self.task != "teacher" and self.outputs < 2:
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

    @model_validator(mode="after")
    def _check_warmup(self) -> TrainConfig:
        if self.warmup_steps > self.steps:
            raise ValueError(f"train.warmup_steps ({self.warmup_steps}) is more than "
                             f"train.steps ({self.steps})")
        return self


class OutputConfig(_Section):
    """Where and how the run folder is written."""

    dir: str = Field("outputs", min_length=1, description="Parent folder of run folders, e.g. outputs.")
    figures: StrictBool = Field(True, description="Render the PNG figures.")
    dpi: StrictInt = Field(100, ge=30, le=600, description="Resolution of the PNG figures.")
    workers: StrictInt | None = Field(None, ge=1, le=64, description="Processes rendering figures in parallel; null: one per CPU (1 renders in-process).")
    per_sample_limit: StrictInt = Field(100_000, ge=0, description="Write per-sample lists (metrics.json, stats.csv) only up to this many samples; above it only their summary.")


class LimitsConfig(_Section):
    """The resource guard: a run whose estimated peak memory is above the limit is refused
    before anything is allocated (exit 2)."""

    max_memory_gb: Float | None = Field(None, gt=0, description="Refuse runs estimated above this many GiB, e.g. 4; default: memory_fraction of the available RAM.")
    memory_fraction: Float = Field(0.5, gt=0, le=1, description="Share of MemAvailable (/proc/meminfo) a run may use when max_memory_gb is not set, e.g. 0.5.")


class Bound(_Section):
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


def _values_defaults(raw: Any) -> Any:
    """When data.values is given, n_samples and in_features default to its shape."""
    if not isinstance(raw, dict):
        return raw
    data = raw.get("data")
    if not isinstance(data, dict):
        return raw
    values = data.get("values")
    if not (isinstance(values, list) and values and all(isinstance(r, list) for r in values)):
        return raw
    raw = {**raw, "data": dict(data)}
    raw["data"].setdefault("n_samples", len(values))
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    raw["model"] = dict(model)
    if values[0]:
        width = len(values[0])  # ragged rows are reported by Config._check_values
        raw["model"].setdefault("in_features", width)
        if raw["model"].get("linear") is False:
            raw["model"].setdefault("out_features", width)
    return raw



def _layout_defaults(raw: Any) -> Any:
    """Fill in what the layout and source imply when not given: image 8x8 with kernel 3,
    sequence 16 tokens; digits 64 input features, or 1 input channel of 8x8."""
    if not isinstance(raw, dict) or not isinstance(raw.get("data", {}), dict):
        return raw
    data = dict(raw.get("data") or {})
    model = raw.get("model") if isinstance(raw.get("model"), dict) else {}
    model = dict(model)
    layout, source = data.get("layout", registry.DEFAULT_LAYOUT), data.get("source")
    train = raw.get("train") if isinstance(raw.get("train"), dict) else {}
    digits = source == "digits" or train.get("task") == "digits"
    if layout == "image":
        side = DIGITS_SIDE
        data.setdefault("height", side)
        data.setdefault("width", side)
        model.setdefault("kernel_size", 3)
        if digits:
            model.setdefault("in_features", 1)
    elif layout == "sequence":
        data.setdefault("tokens", 16)
    elif layout == "features" and digits:
        model.setdefault("in_features", DIGITS_SIDE * DIGITS_SIDE)
    if data or "data" in raw:
        raw = {**raw, "data": data}
    if model or "model" in raw:
        raw = {**raw, "model": model}
    return raw


MetricKey = Annotated[str, AfterValidator(expect.check_key)]


class Config(_Section):
    """One experiment. Draw order: torch.manual_seed(seed) -> build model -> draw data."""

    name: str = Field("default", description="Run name, used as a folder name: letters, digits, . _ -")
    seed: StrictInt = Field(0, ge=0, le=2**63 - 1, description="Seed for torch.manual_seed, e.g. 0.")
    sample_index: StrictInt = Field(0, ge=0, description="The sample (row) shown on its own, e.g. 0.")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig | None = Field(None, description="Training block (see train.*); null: no training, only the snapshot at initialization.")
    device: Literal[registry.DEVICES] = Field(  # type: ignore[valid-type]
        "cpu", description="Where the model runs: cpu, cuda (exit 2 without a GPU), auto (cuda when available).")
    output: OutputConfig = Field(default_factory=OutputConfig)
    limits: LimitsConfig = Field(default_factory=LimitsConfig)
    expect: dict[MetricKey, Bound] = Field(
        default_factory=dict,
        description="Checks on metrics.json, METRIC.REDUCER: {OP: BOUND}, e.g. "
                    "post_norm.per_sample.mean.abs_max: {le: 1.0e-6}; any failure exits 1.")

    @field_validator("name")
    @classmethod
    def _safe_name(cls, name: str) -> str:
        if not re.fullmatch(NAME_PATTERN, name):
            raise ValueError(f"expected 1-64 letters, digits, '.', '_' or '-', not starting with "
                             f"'.' or '-' (a folder name that cannot leave output.dir), got "
                             f"{name[:40] + '...' if len(name) > 40 else name!r}")
        return name

    @model_validator(mode="before")
    @classmethod
    def _values_shape_defaults(cls, raw: Any) -> Any:
        return _layout_defaults(_values_defaults(raw))

    @model_validator(mode="after")
    def _check_layout(self) -> Config:
        """Keys that do not apply to the layout are refused; the norm must be defined on it."""
        d, m = self.data, self.model
        layout = d.layout
        problems = []
        given = {"data.height": d.height, "data.width": d.width, "data.tokens": d.tokens,
                 "model.kernel_size": m.kernel_size}
        own = registry.LAYOUTS[layout].keys
        wrong = [k for k, v in given.items() if v is not None and k not in own]
        if wrong:
            problems.append(f"{', '.join(wrong)} {'does' if len(wrong) == 1 else 'do'} not "
                            f"apply to data.layout: {layout}")
        if m.kernel_size is not None and m.kernel_size % 2 == 0:
            problems.append(f"model.kernel_size must be odd, so that padding kernel_size // 2 "
                            f"keeps H and W (got {m.kernel_size})")
        block = registry.BLOCKS[m.block]
        if layout not in block.layouts:
            problems.append(f"model.block: {m.block} is not defined on data.layout: {layout} "
                            f"({block.why}); use data.layout: {' or '.join(block.layouts)}")
        reason = norms.get(m.norm).not_defined_on(layout)
        if reason:
            problems.append(f"model.norm: {m.norm} is not defined on data.layout: {layout}: "
                            f"{reason}")
        if d.values is not None and layout != "features":
            problems.append(f"data.values gives rows of features; it does not apply to "
                            f"data.layout: {layout}")
        t = self.train
        if t is not None:
            if t.task == "retrieve" and layout != "sequence":
                problems.append(f"train.task: retrieve draws (N, T, C) token sequences; it "
                                f"needs data.layout: sequence, not {layout}")
            elif layout == "sequence" and t.task in ("clusters", "teacher"):
                problems.append(f"train.task: {t.task} draws feature vectors; data.layout: "
                                f"sequence trains on train.task: retrieve")
            elif layout == "sequence" and t.task == "retrieve" and (d.tokens or 0) < 2:
                problems.append(f"train.task: retrieve needs at least 2 tokens (a marked one "
                                f"and the last, where the answer is read); data.tokens is "
                                f"{d.tokens}")
            elif layout == "image" and t.task != "digits":
                problems.append(f"train.task: {t.task} draws feature vectors; data.layout: "
                                f"image trains on train.task: digits")
            if t.task == "digits":
                problems.extend(self._digits_shape("train.task: digits"))
        if d.source == "digits":
            problems.extend(self._digits_problems())
        if problems:
            raise ValueError("; ".join(problems))
        return self

    def _digits_shape(self, what: str) -> list[str]:
        d, m = self.data, self.model
        if d.layout == "sequence":
            return [f"{what} gives (N, 1, 8, 8) images or (N, 64) features; it does not apply "
                    f"to data.layout: sequence"]
        side = DIGITS_SIDE
        want = side * side if d.layout == "features" else 1
        out = []
        if m.in_features != want:
            out.append(f"{what} on data.layout: {d.layout} has {want} input "
                       f"{'features' if want > 1 else 'channel'}, so model.in_features must be "
                       f"{want} (got {m.in_features})")
        if d.layout == "image" and (d.height, d.width) != (side, side):
            out.append(f"{what} images are {side}x{side}, so data.height and data.width must "
                       f"be {side} (got {d.height}x{d.width})")
        return out

    def _digits_problems(self) -> list[str]:
        d = self.data
        out = self._digits_shape("data.source: digits")
        if d.n_samples > DIGITS_COUNT:
            out.append(f"data.n_samples ({d.n_samples}) is more than the {DIGITS_COUNT} "
                       f"digits")
        drawn = {"data.distribution": (d.distribution, "normal"), "data.loc": (d.loc, 0.0),
                 "data.scale": (d.scale, 1.0), "data.df": (d.df, 5.0)}
        wrong = [k for k, (v, default) in drawn.items() if v != default]
        if wrong:
            out.append(f"{', '.join(wrong)} shape random draws; they do not apply to "
                       f"data.source: digits")
        if d.values is not None:
            out.append("data.values and data.source: digits both give the input; use one")
        if not digits_available():
            out.append(DIGITS_EXTRA)
        return out

    @model_validator(mode="after")
    def _check_values(self) -> Config:
        """Explicit values must be a finite rectangle of n_samples x model.in_features."""
        values = self.data.values
        if values is None:
            return self
        problems = []
        if len(values) != self.data.n_samples:
            problems.append(f"data.values has {len(values)} rows but data.n_samples is "
                            f"{self.data.n_samples}")
        widths = sorted({len(r) for r in values})
        if widths != [self.model.in_features]:
            problems.append(f"data.values rows have {', '.join(map(str, widths))} values but "
                            f"model.in_features is {self.model.in_features} (every row must "
                            f"match)")
        if any(not math.isfinite(v) for row in values for v in row):
            problems.append("data.values holds NaN or Inf; expected finite numbers")
        if problems:
            raise ValueError("; ".join(problems))
        return self

    @model_validator(mode="after")
    def _check_cross(self) -> Config:
        if self.sample_index >= self.data.n_samples:
            raise ValueError(
                f"sample_index {self.sample_index} is out of range for data.n_samples "
                f"{self.data.n_samples} (expected 0..{self.data.n_samples - 1})")
        if not self.model.linear and self.model.out_features != self.model.in_features:
            raise ValueError(
                f"model.linear is false, so model.out_features ({self.model.out_features}) "
                f"must equal model.in_features ({self.model.in_features})")
        return self

    @property
    def features(self) -> int:
        """Number of features (channels) the first norm sees (the snapshot's pre_norm /
        post_norm)."""
        return self.model.normed_widths()[0]

    @property
    def positions(self) -> int:
        """Values per channel within one sample: H*W (image), T (sequence), 1 (features)."""
        d = self.data
        if d.layout == "image":
            return int(d.height or 1) * int(d.width or 1)
        return int(d.tokens or 1) if d.layout == "sequence" else 1

    def sample_shape(self, channels: int) -> tuple[int, ...]:
        """One sample's shape with `channels` channels: (C,), (C, H, W) or (T, C)."""
        return self.data.sample_shape(channels)

    def dims(self, channels: int | None = None) -> dict[str, int]:
        """The named sizes of the tensor a norm sees, e.g. {'N': 2, 'C': 32, 'H': 8, 'W': 8}."""
        c = self.features if channels is None else channels
        shape = (self.data.n_samples, *self.sample_shape(c))
        return dict(zip(registry.LAYOUTS[self.data.layout].dims, shape, strict=True))




# --------------------------------------------------------------------------- key paths

def _all_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key path the schema accepts (sections and leaves)."""
    out: list[str] = []
    for key, field in model.model_fields.items():
        path = f"{prefix}{key}"
        out.append(path)
        section = section_of(field.annotation)
        if section is not None:
            out.extend(_all_paths(section, path + "."))
    return out


def section_of(ann: Any) -> type[BaseModel] | None:
    """The section model behind `Section` or `Section | None`, else None."""
    union = typing.get_origin(ann) in (typing.Union, types.UnionType)
    for t in (ann, *(typing.get_args(ann) if union else ())):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


VALID_PATHS = _all_paths(Config)



def expect_dict(cfg: Config) -> dict[str, dict[str, float]]:
    """The `expect:` block as plain data, without the comparators left unset."""
    return {k: b.model_dump(exclude_none=True) for k, b in cfg.expect.items()}


def to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data (what config.yaml and metrics.json store)."""
    out = cfg.model_dump(mode="json")
    out["expect"] = expect_dict(cfg)
    return out


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


