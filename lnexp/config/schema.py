"""The config schema: the whole Config (its sections are in sections.py), every cross-key rule
as a validator, the dotted key paths, and the resolved config as plain data (what config.yaml
and metrics.json store).

Every rule lives in a validator, so one `Config.model_validate` reports all problems at once
(lnexp/config/problems.py words them with file:line and key path).
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
    Field,
    StrictInt,
    field_validator,
    model_validator,
)

from lnexp import expect, norms, registry
from lnexp.config import sections
from lnexp.config.sections import (
    DIGITS_COUNT,
    DIGITS_EXTRA,
    DIGITS_SIDE,
    NAME_PATTERN,
    Bound,
    DataConfig,
    LimitsConfig,
    ModelConfig,
    OutputConfig,
    Section,
    TrainConfig,
)


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


class Config(Section):
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
        if norms.is_user(m.norm):
            problems.extend(norms.user_problems(m.norm, layout, sorted(set(m.normed_widths()))))
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
                                f"sequence trains on train.task: retrieve or charlm")
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
        problems.extend(self._text_problems())
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
        if not sections.digits_available():
            out.append(DIGITS_EXTRA)
        return out

    def _text_problems(self) -> list[str]:
        """data.source: text and train.task: charlm (lnexp/text.py)."""
        d, m, t = self.data, self.model, self.train
        out = []
        if d.source != "text":
            if d.corpus is not None:
                out.append("data.corpus applies to data.source: text only")
            if t is not None and t.task == "charlm":
                out.append("train.task: charlm trains on data.corpus; it needs data.source: "
                           "text")
            return out
        if d.layout != "sequence":
            out.append(f"data.source: text gives (N, T, C) character windows; it needs "
                       f"data.layout: sequence, not {d.layout}")
        if d.values is not None:
            out.append("data.values and data.source: text both give the input; use one")
        if t is not None and t.task != "charlm":
            out.append(f"data.source: text trains on train.task: charlm, not {t.task}")
        if t is not None and m.block != "transformer":
            out.append(f"train.task: charlm needs model.block: transformer (causal "
                       f"attention), not {m.block}")
        if (d.corpus or "shakespeare") == "shakespeare":
            from lnexp.text import TEXT_EXTRA, text_available

            if not text_available():
                out.append(TEXT_EXTRA)
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


