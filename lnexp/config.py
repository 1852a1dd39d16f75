"""Config schema, YAML loading and `--set` overrides.

The schema is validated once, here, at the edge: unknown keys, wrong types and bad ranges are
all collected and raised together as one `ConfigError` whose lines name the file, the YAML
line (where there is one), the dotted key path, the bad value and what was expected.
"""

from __future__ import annotations

import difflib
import math
import re
from pathlib import Path
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
    ValidationError,
    field_validator,
    model_validator,
)

from lnexp import expect, norms, registry
from lnexp.errors import ConfigError, NormError


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


Float = Annotated[float, BeforeValidator(_to_float)]
# Sizes above this are refused by the schema (torch would need 64-bit indexing, and the group
# check would loop for minutes); realistic sizes are refused earlier by the resource guard.
MAX_DIM = 2**31 - 1
NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,63}$"


class _Section(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_default=True)


class DataConfig(_Section):
    """The input batch fed to the model: `n_samples` rows of `model.in_features` values."""

    n_samples: StrictInt = Field(100, ge=1, le=MAX_DIM, description="Rows in the batch (dim 0), e.g. 100.")
    distribution: Literal["normal", "uniform", "laplace", "student_t"] = Field(
        "normal", description="Shape of the input distribution: normal, uniform, laplace, student_t.")
    loc: Float = Field(0.0, description="Mean of the input values, e.g. 0.0.")
    scale: Float = Field(1.0, gt=0, description="Standard deviation of the input values, e.g. 1.0.")
    df: Float = Field(5.0, gt=2, description="Degrees of freedom for student_t (> 2 so the std is finite).")
    values: list[list[Float]] | None = Field(
        None, description="Explicit input rows, e.g. [[2, 3, 5, 1, 4]]; replaces the random draw "
                          "and sets n_samples and model.in_features from its shape.")


ACTIVATIONS = tuple(registry.ACTIVATIONS)
PLACEMENTS = tuple(registry.PLACEMENTS)


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
        if registry.PLACEMENTS[self.placement].residual and len(set(self.widths())) != 1:
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

    task: Literal["clusters", "teacher"] = Field(
        "clusters", description="clusters: Gaussian-cluster classification (cross-entropy); teacher: regression onto a random tanh teacher (MSE).")
    outputs: StrictInt = Field(4, ge=1, description="Classes (clusters, >= 2) or regression targets (teacher), e.g. 4.")
    n_train: StrictInt = Field(1024, ge=2, description="Training examples, e.g. 1024.")
    n_heldout: StrictInt = Field(512, ge=2, description="Held-out examples, drawn with the training set, e.g. 512.")
    separation: Float = Field(4.0, gt=0, description="clusters: typical distance between class centres, in units of the within-class std (1).")
    noise: Float = Field(0.1, ge=0, description="teacher: std of the Gaussian noise added to the teacher's outputs.")
    steps: StrictInt = Field(300, ge=1, description="Optimizer steps, e.g. 300.")
    batch_size: StrictInt = Field(32, ge=1, description="Examples per step, e.g. 32; batches come from a fresh shuffle each epoch, the last partial one dropped.")
    optimizer: Literal["sgd", "adam"] = Field("adam", description="sgd or adam.")
    lr: Float = Field(1e-3, gt=0, description="Learning rate, e.g. 1.0e-3.")
    momentum: Float = Field(0.0, ge=0, lt=1, description="Momentum for optimizer: sgd, e.g. 0.9.")
    eval_every: StrictInt = Field(50, ge=1, description="Evaluate on the held-out set every this many steps (and at the first and last step).")

    @model_validator(mode="after")
    def _check(self) -> TrainConfig:
        if self.task == "clusters" and self.outputs < 2:
            raise ValueError("train.outputs: clusters needs at least 2 classes")
        if self.batch_size > self.n_train:
            raise ValueError(f"train.batch_size ({self.batch_size}) is larger than train.n_train "
                             f"({self.n_train})")
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


MetricKey = Annotated[str, AfterValidator(expect.check_key)]


class Config(_Section):
    """One experiment. Draw order: torch.manual_seed(seed) -> build model -> draw data."""

    name: str = Field("default", description="Run name, used as a folder name: letters, digits, . _ -")
    seed: StrictInt = Field(0, ge=0, le=2**63 - 1, description="Seed for torch.manual_seed, e.g. 0.")
    sample_index: StrictInt = Field(0, ge=0, description="The sample (row) shown on its own, e.g. 0.")
    data: DataConfig = Field(default_factory=DataConfig)
    model: ModelConfig = Field(default_factory=ModelConfig)
    train: TrainConfig | None = Field(None, description="Training block (see train.*); null: no training, only the snapshot at initialization.")
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
                             f"'.' or '-' (a folder name that cannot leave output.dir), got {name!r}")
        return name

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
        """Number of features the first norm sees (the snapshot's pre_norm / post_norm)."""
        return self.model.normed_widths()[0]


# --------------------------------------------------------------------------- loading

def _all_paths(model: type[BaseModel], prefix: str = "") -> list[str]:
    """Every dotted key path the schema accepts (sections and leaves)."""
    out: list[str] = []
    for key, field in model.model_fields.items():
        path = f"{prefix}{key}"
        out.append(path)
        section = _section(field.annotation)
        if section is not None:
            out.extend(_all_paths(section, path + "."))
    return out


def _section(ann: Any) -> type[BaseModel] | None:
    """The section model behind `Section` or `Section | None`, else None."""
    import types
    import typing

    union = typing.get_origin(ann) in (typing.Union, types.UnionType)
    for t in (ann, *(typing.get_args(ann) if union else ())):
        if isinstance(t, type) and issubclass(t, BaseModel):
            return t
    return None


VALID_PATHS = _all_paths(Config)


def suggest(path: str) -> str:
    """A ' (did you mean ...?)' hint for an unknown dotted key, or ''."""
    parent, _, leaf = path.rpartition(".")
    siblings = [p.rpartition(".")[2] for p in VALID_PATHS if p.rpartition(".")[0] == parent]
    close = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.6)
    if close:
        return f" (did you mean '{parent + '.' if parent else ''}{close[0]}'?)"
    # A leaf put in the wrong section: `norm:` at the top level -> model.norm.
    elsewhere = [p for p in VALID_PATHS
                 if difflib.get_close_matches(leaf, [p.rpartition(".")[2]], n=1, cutoff=0.7)]
    return f" (did you mean '{elsewhere[0]}'?)" if elsewhere else ""


def _line_index(text: str) -> dict[str, int]:
    """Map each dotted key path in a YAML text to its 1-based line (compose only, no objects)."""
    lines: dict[str, int] = {}
    try:
        root = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.YAMLError:
        return lines

    def walk(node: yaml.Node, prefix: str) -> None:
        if isinstance(node, yaml.MappingNode):
            for key, value in node.value:
                if isinstance(key, yaml.ScalarNode):
                    path = f"{prefix}{key.value}"
                    lines[path] = key.start_mark.line + 1
                    walk(value, path + ".")

    if root is not None:
        walk(root, "")
    return lines


def parse_override(item: str) -> tuple[str, Any]:
    """Split `key.path=value` on the first '=' and read the value as YAML (`3` -> 3, `bn` -> 'bn')."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError([f"--set {item!r}: expected KEY=VALUE, e.g. --set model.norm=bn"])
    try:
        value = yaml.safe_load(raw) if raw.strip() else None
    except yaml.YAMLError as exc:
        first = str(exc).splitlines()[0]
        raise ConfigError([f"--set {item!r}: value is not valid YAML ({first})"]) from None
    return key, value


def apply_overrides(raw: dict[str, Any], overrides: list[str]) -> dict[str, Any]:
    """Return a copy of `raw` with each `--set key.path=value` applied."""
    import copy

    out = copy.deepcopy(raw)
    problems: list[str] = []
    for item in overrides:
        try:
            key, value = parse_override(item)
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        if key not in VALID_PATHS:
            problems.append(f"--set {key}: unknown key{suggest(key)}")
            continue
        set_path(out, key, value)
    if problems:
        raise ConfigError(problems)
    return out


def set_path(raw: dict[str, Any], key: str, value: Any) -> None:
    """Set dotted `key` in a nested mapping in place, creating sections as needed."""
    node = raw
    parts = key.split(".")
    for part in parts[:-1]:
        child = node.get(part)
        if not isinstance(child, dict):
            child = {}
            node[part] = child
        node = child
    node[parts[-1]] = value


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def validate(raw: Any, source: str = "<config>", lines: dict[str, int] | None = None,
             overridden: set[str] | None = None,
             origins: dict[str, str] | None = None) -> Config:
    """Validate a raw mapping into a Config, collecting every problem into one ConfigError.

    `origins` maps a dotted path to where it came from when not from the file (e.g.
    `expect.x.abs_max` -> "--expect 'x.abs_max <= 1'").
    """
    lines = lines or {}
    overridden = overridden or set()
    origins = origins or {}
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: expected a mapping of keys (name:, seed:, data:, model:, "
                           f"...) at the top level, got a {type(raw).__name__}"])
    raw = _apply_values_shape(raw)
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"]
                            if not str(p).startswith("function-") and str(p) != "[key]")
            problems.append(_problem_line(err, path, source, lines, overridden, origins))
        raise ConfigError(problems) from None


def _problem_line(err: Any, path: str, source: str, lines: dict[str, int],
                  overridden: set[str], origins: dict[str, str] | None = None) -> str:
    # Find the nearest key with a known origin or line (list items have none of their own).
    where = source
    origins = origins or {}
    if path in overridden:
        where = f"{source} (--set {path})"
    else:
        probe = path
        while probe:
            if probe in origins:
                where = origins[probe]
                break
            if probe in lines:
                where = f"{source}:{lines[probe]}"
                break
            probe = probe.rpartition(".")[0]
    kind = err["type"]
    if kind == "extra_forbidden" and path.startswith("expect."):
        leaf = path.rpartition(".")[2]
        close = difflib.get_close_matches(leaf, [*expect.OPS, "tol"], n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (f"{where}: {path}: unknown comparator{hint}; expected "
                f"{', '.join(expect.OPS)} (and tol with approx)")
    if kind == "extra_forbidden":
        return f"{where}: {path}: unknown key{suggest(path)}"
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    starts_with_key = any(msg.startswith(p + " ") or msg.startswith(p + ":") for p in VALID_PATHS)
    label = f"{path}: " if path and not starts_with_key else ""
    got = "" if kind in ("value_error", "assertion_error") else f" (got {_describe(err['input'])})"
    return f"{where}: {label}{msg}{got}"


def _apply_values_shape(raw: dict[str, Any]) -> dict[str, Any]:
    """When data.values is given, n_samples and in_features default to its shape."""
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
        width = len(values[0])  # ragged rows are reported by check_values_shape
        raw["model"].setdefault("in_features", width)
        if raw["model"].get("linear") is False:
            raw["model"].setdefault("out_features", width)
    return raw


def check_values_shape(cfg: Config) -> None:
    """Explicit values must be a rectangle of n_samples x model.in_features."""
    values = cfg.data.values
    if values is None:
        return
    problems = []
    if len(values) != cfg.data.n_samples:
        problems.append(f"data.values has {len(values)} rows but data.n_samples is "
                        f"{cfg.data.n_samples}")
    widths = sorted({len(r) for r in values})
    if widths != [cfg.model.in_features]:
        problems.append(f"data.values rows have {', '.join(map(str, widths))} values but "
                        f"model.in_features is {cfg.model.in_features} (every row must match)")
    if any(not math.isfinite(v) for row in values for v in row):
        problems.append("data.values holds NaN or Inf; expected finite numbers")
    if problems:
        raise ConfigError(problems)


# A top-level `sweep:` block describes a grid for `lnexp sweep` (see lnexp/sweep/grid.py); every
# other command runs the base config and sets the block aside.
SWEEP_KEY = "sweep"


def read_raw(path: str | Path) -> tuple[dict[str, Any], dict[str, int]]:
    """Read a YAML config file (safe_load only) into a raw mapping plus the line of each dotted
    key; ConfigError for a missing, unreadable, empty or non-mapping file."""
    path = Path(path)
    source = str(path)
    if not path.exists():
        raise ConfigError([f"{source}: no such file"])
    if path.is_dir():
        raise ConfigError([f"{source}: is a directory, expected a YAML file"])
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([f"{source}: cannot read ({exc})"]) from None
    if not text.strip():
        raise ConfigError([f"{source}: the file is empty; expected a YAML mapping "
                           f"(an empty mapping {{}} runs all defaults)"])
    try:
        raw = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ConfigError([_yaml_error_line(source, exc)]) from None
    if raw is None:
        raise ConfigError([f"{source}: the file is empty (only comments or blank lines); "
                           f"expected a YAML mapping (an empty mapping {{}} runs all defaults)"])
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: expected a mapping of keys (name:, seed:, data:, "
                           f"model:, ...) at the top level, got a {type(raw).__name__}"])
    return raw, _line_index(text)


def load_config(path: str | Path, overrides: list[str] | None = None,
                expectations: list[str] | None = None) -> Config:
    """Read a YAML config (safe_load only), apply `--set` overrides and `--expect` checks, and
    validate it. A `sweep:` block is set aside (only `lnexp sweep` reads it)."""
    raw, lines = read_raw(path)
    raw = {k: v for k, v in raw.items() if k != SWEEP_KEY}
    return from_mapping(raw, overrides or [], source=str(path), lines=lines,
                        expectations=expectations)


def from_mapping(raw: dict[str, Any], overrides: list[str] | None = None,
                 source: str = "<config>", lines: dict[str, int] | None = None,
                 expectations: list[str] | None = None) -> Config:
    """Validate an in-memory mapping (plus `--set` overrides and `--expect` texts) into a
    Config."""
    overrides = overrides or []
    merged = apply_overrides(raw, overrides)
    overridden = {parse_override(o)[0] for o in overrides}
    merged, origins, problems = add_expectations(merged, expectations or [])
    try:
        cfg = validate(merged, source, lines, overridden, origins)
    except ConfigError as exc:
        raise ConfigError(problems + exc.problems) from None
    if problems:
        raise ConfigError(problems)
    try:
        check_values_shape(cfg)
    except ConfigError as exc:
        raise ConfigError([f"{source}: {p}" for p in exc.problems]) from None
    return cfg


def add_expectations(raw: dict[str, Any], texts: list[str]
                     ) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Merge `--expect 'KEY OP VALUE'` texts into raw['expect'] (same key: ops are merged,
    the command line wins). Returns the new mapping, where each added key came from, and the
    texts that could not be parsed (one problem line each)."""
    if not texts:
        return raw, {}, []
    problems: list[str] = []
    origins: dict[str, str] = {}
    block = raw.get("expect")
    block = dict(block) if isinstance(block, dict) else ({} if block is None else block)
    if not isinstance(block, dict):
        return raw, {}, []  # the schema reports the bad `expect:` value itself
    for text in texts:
        try:
            key, bound = expect.parse_cli(text)
        except ValueError as exc:
            problems.append(f"--expect {text!r}: {exc}")
            continue
        old = block.get(key)
        block[key] = {**old, **bound} if isinstance(old, dict) else bound
        origins[f"expect.{key}"] = f"--expect {text!r}"
    return {**raw, "expect": block}, origins, problems


def expect_dict(cfg: Config) -> dict[str, dict[str, float]]:
    """The `expect:` block as plain data, without the comparators left unset."""
    return {k: b.model_dump(exclude_none=True) for k, b in cfg.expect.items()}


def _yaml_error_line(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in str(problem):
        return (f"{where}: YAML tag refused ({problem.strip()}); lnexp reads plain YAML only "
                f"(yaml.safe_load), nothing was executed")
    return f"{where}: invalid YAML: {problem.strip()}"


def to_dict(cfg: Config) -> dict[str, Any]:
    """The resolved config as plain data (what config.yaml and metrics.json store)."""
    out = cfg.model_dump(mode="json")
    out["expect"] = expect_dict(cfg)
    return out


def to_yaml(cfg: Config) -> str:
    """The resolved config as YAML text."""
    return yaml.safe_dump(to_dict(cfg), sort_keys=False, default_flow_style=None)


def reference_markdown() -> str:
    """The config reference table for the README (a test keeps the README in sync)."""
    rows = ["| key | default | description |", "| --- | --- | --- |"]
    defaults = to_dict(Config())
    filled = to_dict(Config(train=TrainConfig()))  # defaults inside optional sections
    for path in VALID_PATHS:
        parent, _, leaf = path.rpartition(".")
        section = Config if not parent else _section(Config.model_fields[parent].annotation)
        field = section.model_fields[leaf]  # type: ignore[union-attr]
        if isinstance(field.annotation, type) and issubclass(field.annotation, BaseModel):
            continue  # a required section: its keys follow
        value: Any = defaults if not parent or defaults.get(parent) is not None else filled
        for part in path.split("."):
            value = value[part]
        shown = "null" if value is None else json_default(value)
        rows.append(f"| `{path}` | `{shown}` | {field.description} |")
    return "\n".join(rows) + "\n"


def json_default(value: Any) -> str:
    """A default value as it would be written in YAML."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
