"""Sweep grids: a grid over config keys, parsed and expanded into validated trials. Pure: no
torch, no printing, no files, and nothing that depends on the machine (the memory guard runs
in sweep.runner, not here), so whether a trial is valid never depends on free memory.

A grid is a list of axes; the trials are their product, in order (the last axis varies
fastest). An axis is one key with its values, or several keys that vary together (`zip:`):

- `--grid model.norm=bn,ln,rms` or, in YAML, `sweep: {grid: {model.norm: [bn, ln, rms]}}`;
  each value is read as YAML, like `--set` (`8` is a number, `bn` a string);
- ranges `a:b[:step]` as in Python's range (`seed=0:5` is 0, 1, 2, 3, 4; step may be a float);
- `seeds: N` is short for `seed: 0:N`;
- `zip: [{model.in_features: [16, 64], model.out_features: [8, 32]}]` varies keys together.

A trial is identified by the hash of its resolved config (without `output`/`limits`, which
change where and how results are written, not the results), so a resumed sweep knows which
trials are already done.
"""

from __future__ import annotations

import copy
import difflib
import hashlib
import itertools
import json
import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import yaml

from lnexp import config, expect
from lnexp.config import Config
from lnexp.errors import ConfigError
from lnexp.numbers import show_value

SEED_KEY = "seed"
# Keys a grid may not vary: where output goes is the sweep's business.
FIXED_KEYS = ("output.dir",)
_RANGE = re.compile(r"^\s*(-?[\d.eE+-]+)\s*:\s*(-?[\d.eE+-]+)\s*(?::\s*(-?[\d.eE+-]+)\s*)?$")
MAX_TRIALS = 10_000


@dataclass(frozen=True)
class Axis:
    """One dimension of the grid: one key (or several zipped keys) and its points."""

    keys: tuple[str, ...]
    points: tuple[tuple[Any, ...], ...]  # one tuple of values (one per key) per point
    origin: str  # where it was defined, for error messages

    def as_dict(self) -> dict[str, Any]:
        if len(self.keys) == 1:
            return {self.keys[0]: [p[0] for p in self.points]}
        return {"zip": {k: [p[i] for p in self.points] for i, k in enumerate(self.keys)}}


@dataclass(frozen=True)
class Trial:
    """One point of the grid, its validated config and identity."""

    index: int
    params: dict[str, Any]
    config: Config
    hash: str

    @property
    def label(self) -> str:
        """`model.norm=bn data.n_samples=2 seed=0`."""
        return _label(self.params)

    @property
    def dirname(self) -> str:
        """The trial's run folder inside the sweep folder, e.g. `t007-bn_2_0`."""
        slug = "_".join(re.sub(r"[^A-Za-z0-9.-]+", "", show_value(v)) for v in self.params.values())
        return f"t{self.index:03d}" + (f"-{slug[:40]}" if slug else "")


@dataclass
class Definition:
    """What a sweep is: the base config (as plain data) and the grid. Two sweeps with equal
    definitions have the same trials."""

    base: dict[str, Any]
    axes: list[Axis] = field(default_factory=list)
    source: str = "<config>"
    lines: dict[str, int] = field(default_factory=dict)
    metrics: list[str] = field(default_factory=list)  # the block's `metrics:` (--metric wins)

    @property
    def keys(self) -> list[str]:
        return [k for a in self.axes for k in a.keys]

    @property
    def group_keys(self) -> list[str]:
        """The swept keys other than the seed: one summary row per combination."""
        return [k for k in self.keys if k != SEED_KEY]

    def as_dict(self) -> dict[str, Any]:
        """The definition as stored in sweep.json (and compared on --resume)."""
        return {"base": _strip_output(self.base), "grid": [a.as_dict() for a in self.axes]}

    @property
    def hash(self) -> str:
        return _hash(self.as_dict())

    @property
    def size(self) -> int:
        return math.prod(len(a.points) for a in self.axes)


# --------------------------------------------------------------------------- parsing

def _label(params: Mapping[str, Any]) -> str:
    return " ".join(f"{k}={show_value(v)}" for k, v in params.items())


def _scalar(text: str, where: str) -> Any:
    try:  # the config loader's bounds (aliases, nesting) apply to grid values too
        return config.load_yaml(text, "VALUE")[0] if text.strip() else None
    except ConfigError as exc:
        why = "; ".join(p.split(": ", 1)[-1] for p in exc.problems)
        raise ConfigError([f"{where}: {text!r} is not valid YAML ({why})"]) from None


def parse_range(text: str, where: str) -> list[Any] | None:
    """`a:b[:step]` -> the values of range(a, b, step) (floats allowed); None if not a range."""
    m = _RANGE.match(text)
    if not m:
        return None
    nums = [_scalar(g, where) for g in m.groups() if g is not None]
    if not all(isinstance(n, int | float) and not isinstance(n, bool) for n in nums):
        return None
    start, stop = nums[0], nums[1]
    step = nums[2] if len(nums) == 3 else 1
    if step == 0 or not all(math.isfinite(n) for n in nums):
        raise ConfigError([f"{where}: range {text!r}: step must be a finite non-zero number"])
    count = math.ceil((stop - start) / step - 1e-9)
    if count <= 0:
        raise ConfigError([f"{where}: range {text!r} is empty (a:b includes a, excludes b, "
                           f"like Python's range; e.g. 0:5 is 0..4)"])
    if count > MAX_TRIALS:
        raise ConfigError([f"{where}: range {text!r} has {count} values (at most {MAX_TRIALS})"])
    if all(isinstance(n, int) for n in nums):
        return list(range(start, stop, step))
    return [round(start + i * step, 12) for i in range(count)]


def parse_values(spec: Any, where: str) -> list[Any]:
    """A grid's values: a YAML list, a range string `a:b[:step]`, a comma list `bn,ln` (from
    the command line) or a single value."""
    if isinstance(spec, list):
        values = spec
    elif isinstance(spec, str):
        rng = parse_range(spec, where)
        if rng is not None:
            values = rng
        elif spec.strip().startswith("["):
            values = _scalar(spec, where)
        else:
            values = [_scalar(part.strip(), where) for part in spec.split(",")]
    else:
        values = [spec]
    if not isinstance(values, list) or not values:
        raise ConfigError([f"{where}: expected at least one value, e.g. bn,ln or 0:5"])
    return values


def parse_grid_option(item: str) -> Axis:
    """`--grid KEY=VALUES` -> an Axis."""
    key, sep, spec = item.partition("=")
    key = key.strip()
    where = f"--grid {item!r}"
    if not sep or not key or not spec.strip():
        raise ConfigError([f"{where}: expected KEY=VALUES, e.g. --grid model.norm=bn,ln,rms "
                           f"or --grid seed=0:5"])
    values = parse_values(spec, where)
    return Axis((key,), tuple((v,) for v in values), where)


def parse_block(block: Any, source: str) -> list[Axis]:
    """The axes of a `sweep:` block: grid (key -> values), zip (list of key -> list), seeds."""
    where = f"{source}: sweep"
    if not isinstance(block, dict):
        raise ConfigError([f"{where}: expected a mapping with grid:, zip: and/or seeds:"])
    problems: list[str] = []
    for key in block:
        if key not in ("grid", "zip", "seeds", "metrics"):
            close = difflib.get_close_matches(str(key), ["grid", "zip", "seeds", "metrics"],
                                              n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            problems.append(f"{where}.{key}: unknown key{hint}; expected grid, zip, seeds, "
                            f"metrics")
    axes: list[Axis] = []
    grid = block.get("grid") or {}
    if not isinstance(grid, dict):
        problems.append(f"{where}.grid: expected a mapping KEY: [VALUES], e.g. "
                        f"model.norm: [bn, ln]")
        grid = {}
    for key, spec in grid.items():
        try:
            values = parse_values(spec, f"{where}.grid.{key}")
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        axes.append(Axis((str(key),), tuple((v,) for v in values), f"{where}.grid.{key}"))
    zips = block.get("zip") or []
    if isinstance(zips, dict):
        zips = [zips]
    if not isinstance(zips, list):
        problems.append(f"{where}.zip: expected a list of mappings KEY: [VALUES]")
        zips = []
    for i, group in enumerate(zips):
        zwhere = f"{where}.zip[{i}]"
        if not isinstance(group, dict) or not group:
            problems.append(f"{zwhere}: expected a mapping KEY: [VALUES] of keys that vary "
                            f"together")
            continue
        try:
            cols = {str(k): parse_values(v, f"{zwhere}.{k}") for k, v in group.items()}
        except ConfigError as exc:
            problems.extend(exc.problems)
            continue
        lengths = {k: len(v) for k, v in cols.items()}
        if len(set(lengths.values())) != 1:
            problems.append(f"{zwhere}: zipped keys need the same number of values, got "
                            + ", ".join(f"{k}: {n}" for k, n in lengths.items()))
            continue
        axes.append(Axis(tuple(cols), tuple(zip(*cols.values(), strict=True)), zwhere))
    seeds = block.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, int) or isinstance(seeds, bool) or seeds < 1:
            problems.append(f"{where}.seeds: expected a whole number >= 1 (seeds: 3 means "
                            f"seed 0, 1, 2), got {seeds!r}")
        elif seeds > MAX_TRIALS:  # checked before range(seeds) is built
            problems.append(f"{where}.seeds: {seeds} seeds (at most {MAX_TRIALS} trials)")
        else:
            axes.append(Axis((SEED_KEY,), tuple((s,) for s in range(seeds)), f"{where}.seeds"))
    if problems:
        raise ConfigError(problems)
    return axes


def merge_axes(file_axes: list[Axis], cli_axes: list[Axis], seeds: int | None = None
               ) -> list[Axis]:
    """File axes, then command-line ones; a command-line axis replaces any file axis that
    shares a key with it (in its place). `seeds` (the --seeds option) replaces the seed axis."""
    if seeds is not None:
        if seeds > MAX_TRIALS:  # before range(seeds) is built: --seeds 10**20 hung
            raise ConfigError([f"--seeds {seeds}: at most {MAX_TRIALS} trials"])
        cli_axes = [*cli_axes, Axis((SEED_KEY,), tuple((s,) for s in range(seeds)),
                                    f"--seeds {seeds}")]
    out = list(file_axes)
    for axis in cli_axes:
        # Only the file's axes are replaced; a key given twice on the command line is an
        # error (check_axes reports it).
        clash = [i for i, a in enumerate(out) if set(a.keys) & set(axis.keys)
                 and any(a is f for f in file_axes)]
        if clash:
            out[clash[0]] = axis
            out = [a for i, a in enumerate(out) if i not in clash[1:]]
        else:
            out.append(axis)
    return out


def check_axes(axes: list[Axis]) -> None:
    """Every key known, a leaf, not fixed, and in one axis only; at least one axis."""
    problems: list[str] = []
    if not axes:
        raise ConfigError(["nothing to sweep: give --grid KEY=VALUES (e.g. --grid "
                           "model.norm=bn,ln --grid seed=0:3) or a sweep: block in the config"])
    seen: dict[str, str] = {}
    sections = {p.rpartition(".")[0] for p in config.VALID_PATHS if "." in p}
    for axis in axes:
        for key in axis.keys:
            if key not in config.VALID_PATHS:
                problems.append(f"{axis.origin}: {key}: unknown key{config.suggest(key)}")
            elif key in sections:
                problems.append(f"{axis.origin}: {key} is a section; sweep one of its keys, "
                                f"e.g. {key}.{_first_leaf(key)}")
            elif key in FIXED_KEYS:
                problems.append(f"{axis.origin}: {key} cannot be swept (every trial writes "
                                f"into the sweep folder); use -o DIR")
            elif key in seen:
                problems.append(f"{axis.origin}: {key} is already swept by {seen[key]}")
            else:
                seen[key] = axis.origin
    if problems:
        raise ConfigError(problems)


def _first_leaf(section: str) -> str:
    return next(p for p in config.VALID_PATHS if p.startswith(section + ".")).split(".")[-1]


def definition(raw: dict[str, Any], grid: list[str], source: str = "<config>",
               lines: dict[str, int] | None = None, sets: list[str] | None = None,
               seeds: int | None = None) -> Definition:
    """The sweep defined by a raw config mapping (with an optional `sweep:` block), `--set`
    overrides and `--grid` options. The base config must validate on its own."""
    raw = dict(raw)
    block = raw.pop(config.SWEEP_KEY, None)
    file_axes = parse_block(block, source) if block is not None else []
    problems: list[str] = []
    cli_axes = []
    for item in grid:
        try:
            cli_axes.append(parse_grid_option(item))
        except ConfigError as exc:
            problems.extend(exc.problems)
    if problems:
        raise ConfigError(problems)
    axes = merge_axes(file_axes, cli_axes, seeds)
    check_axes(axes)
    base = config.apply_overrides(raw, list(sets or []))
    wanted = block.get("metrics") if isinstance(block, dict) else None
    if wanted is not None and not (isinstance(wanted, list)
                                   and all(isinstance(m, str) for m in wanted)):
        raise ConfigError([f"{source}: sweep.metrics: expected a list of METRIC.REDUCER "
                           f"strings, got {wanted!r}"])
    d = Definition(base=base, axes=axes, source=source, lines=lines or {},
                   metrics=check_metrics(wanted) if wanted else [])
    if d.size > MAX_TRIALS:
        raise ConfigError([f"the grid has {d.size} trials (at most {MAX_TRIALS})"])
    return d


def check_metrics(keys: Sequence[str]) -> list[str]:
    """Validate `--metric` keys (METRIC.REDUCER as in expectations); returns them stripped."""
    problems = []
    out = []
    for key in keys:
        try:
            out.append(expect.check_key(key))
        except ValueError as exc:
            problems.append(f"--metric {key!r}: {exc}")
    if problems:
        raise ConfigError(problems)
    return out



# --------------------------------------------------------------------------- trials

def _strip_output(d: Mapping[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in d.items() if k not in ("limits",)}
    if isinstance(out.get("output"), dict):
        out["output"] = {k: v for k, v in out["output"].items() if k != "dir"}
    return out


def _hash(doc: Any) -> str:
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def config_hash(cfg: Config) -> str:
    """A trial's identity: the hash of its resolved config without output and limits."""
    doc = {k: v for k, v in config.to_dict(cfg).items() if k not in ("output", "limits")}
    return _hash(doc)


def expand(d: Definition, output_dir: str | None = None) -> list[Trial]:
    """Every trial of the grid, validated; all bad trials are reported in one ConfigError
    (one line each, naming the trial) before anything runs."""
    trials: list[Trial] = []
    problems: list[str] = []
    for index, combo in enumerate(itertools.product(*(a.points for a in d.axes))):
        params: dict[str, Any] = {}
        for axis, point in zip(d.axes, combo, strict=True):
            params.update(zip(axis.keys, point, strict=True))
        raw = copy.deepcopy(d.base)
        for key, value in params.items():
            config.set_path(raw, key, value)
        if output_dir is not None:
            config.set_path(raw, "output.dir", output_dir)
        try:
            cfg = config.from_mapping(raw, source=d.source, lines=d.lines)
        except ConfigError as exc:
            problems.extend(f"trial {index} ({_label(params)}): {p}" for p in exc.problems)
            continue
        trials.append(Trial(index, params, cfg, config_hash(cfg)))
    if problems:
        raise invalid_trials(problems, d.size)
    return trials


def invalid_trials(problems: list[str], size: int) -> ConfigError:
    """One ConfigError for the problems of several trials ('trial N (label): ...' lines)."""
    bad = len({p.split(" (", 1)[0] for p in problems})
    return ConfigError([*problems, f"{bad} of {size} trials are invalid; nothing was run"])


def definition_diff(old: dict[str, Any], new: dict[str, Any]) -> list[str]:
    """A unified diff (as YAML lines) between two stored definitions; [] when equal."""
    a = yaml.safe_dump(old, sort_keys=True).splitlines()
    b = yaml.safe_dump(new, sort_keys=True).splitlines()
    return list(difflib.unified_diff(a, b, "sweep.json (stored)", "this command", lineterm="",
                                     n=2))


def from_stored(stored: Mapping[str, Any], source: str) -> Definition:
    """The Definition a sweep.json stored (for `--resume SWEEP_DIR` without a config)."""
    axes = []
    for item in stored["grid"]:
        if "zip" in item:
            cols = item["zip"]
            axes.append(Axis(tuple(cols), tuple(zip(*cols.values(), strict=True)), source))
        else:
            ((key, values),) = item.items()
            axes.append(Axis((key,), tuple((v,) for v in values), source))
    return Definition(base=copy.deepcopy(dict(stored["base"])), axes=axes, source=source)
