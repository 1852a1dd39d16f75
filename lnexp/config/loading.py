"""Reading configs: YAML (safe_load only) with the line of every key, `--set` overrides and
`--expect` texts merged in, then one validation (lnexp/config/problems.py)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

from lnexp import expect
from lnexp.config.problems import suggest, validate, yaml_error_line
from lnexp.config.schema import VALID_PATHS, Config
from lnexp.errors import ConfigError


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
    """Split `key.path=value` on the first '=' and read the value as YAML
    (`3` -> 3, `bn` -> 'bn')."""
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
        raise ConfigError([yaml_error_line(source, exc)]) from None
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


