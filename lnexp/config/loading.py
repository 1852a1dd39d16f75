"""Reading configs: YAML (safe_load semantics only) with the line of every key, `--set`
overrides and `--expect` texts merged in, then one validation (lnexp/config/problems.py).

A config file is read with bounds, all checked before any large Python object exists
(docs/contracts.md, "Reading configs"): at most MAX_CONFIG_BYTES bytes (a bounded read, so
/dev/zero or an endless pipe cannot eat the memory, and SIGTERM/Ctrl-C stop a read that waits),
nesting at most MAX_DEPTH levels (counted while composing, so 2,000 nested `[` is one clear
line, not a RecursionError), at most MAX_VALUES values once aliases are expanded (a "billion
laughs" file is refused from its node graph, before construction), and no key given twice in
one mapping.
"""

from __future__ import annotations

import copy
import os
import stat
from pathlib import Path
from typing import Any

import yaml

from lnexp import expect
from lnexp.config.problems import suggest, validate, yaml_error_line
from lnexp.config.schema import VALID_PATHS, Config
from lnexp.errors import ConfigError

# A real config is well under 10 KB; 1 MiB still holds ~100,000 explicit data.values.
MAX_CONFIG_BYTES = 1 << 20
# Mappings/sequences inside each other, counted through aliases; a config needs 4
# (expect: KEY: {OP: BOUND}; data.values is 3).
MAX_DEPTH = 32
# Scalars, sequences and mappings once every alias is expanded: ten times what 1 MiB of plain
# numbers can hold, far below what would exhaust memory while validating.
MAX_VALUES = 1_000_000
_READ_CHUNK = 1 << 16
_MERGE_TAG = "tag:yaml.org,2002:merge"


class _Refused(yaml.YAMLError):
    """A bound exceeded while composing; `line` is 1-based."""

    def __init__(self, line: int, message: str):
        super().__init__(message)
        self.line = line
        self.message = message


class _BoundedLoader(yaml.SafeLoader):
    """yaml.SafeLoader (same tags, same values) that refuses nesting past MAX_DEPTH while it
    composes, before the parser has read further than that level."""

    def __init__(self, stream: str):
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: Any) -> yaml.Node:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                line = self.peek_event().start_mark.line + 1
                raise _Refused(line, f"nested more than {MAX_DEPTH} levels deep; a config "
                                     f"needs a handful")
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    return []


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a node graph whose alias expansion exceeds MAX_VALUES values or MAX_DEPTH levels,
    or refers to itself. Iterative, each node once: linear in the file, whatever the aliases
    would expand to."""
    size: dict[int, int] = {}
    depth: dict[int, int] = {}
    started: set[int] = set()
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, finished = stack.pop()
        key = id(node)
        if finished:
            kids = _children(node)
            size[key] = 1 + sum(size[id(k)] for k in kids)
            depth[key] = 1 + max((depth[id(k)] for k in kids), default=0)
            line = node.start_mark.line + 1
            if size[key] > MAX_VALUES:
                raise _Refused(line, f"aliases expand to more than {MAX_VALUES:,} values "
                                     f"(a YAML alias bomb?); write the values out or use "
                                     f"fewer")
            if depth[key] > MAX_DEPTH + 1:  # +1: scalars count as a level here
                raise _Refused(line, f"aliases nest more than {MAX_DEPTH} levels deep")
            continue
        if key in size:
            continue
        if key in started:  # started, not finished: an ancestor of itself
            raise _Refused(node.start_mark.line + 1, "an alias refers to the collection it is "
                                                     "in (a recursive structure)")
        started.add(key)
        stack.append((node, True))
        stack.extend((k, False) for k in _children(node) if id(k) not in size)


def _key_lines(root: yaml.Node | None, source: str) -> tuple[dict[str, int], list[str]]:
    """Map each dotted key path to its 1-based line, and the duplicate keys found (one problem
    line each, naming both lines). Follows mappings inside mappings; an aliased mapping is
    walked once, where it is defined."""
    lines: dict[str, int] = {}
    problems: list[str] = []
    seen: set[int] = set()

    def walk(node: yaml.Node, prefix: str) -> None:
        if not isinstance(node, yaml.MappingNode) or id(node) in seen:
            return
        seen.add(id(node))
        first: dict[tuple[str, str], int] = {}
        for key, value in node.value:
            if not isinstance(key, yaml.ScalarNode) or key.tag == _MERGE_TAG:
                continue
            path = f"{prefix}{key.value}"
            line = key.start_mark.line + 1
            if (key.tag, key.value) in first:
                problems.append(f"{source}:{line}: {path}: duplicate key (first at line "
                                f"{first[key.tag, key.value]}); give each key once")
                continue
            first[key.tag, key.value] = line
            lines[path] = line
            walk(value, path + ".")

    if root is not None:
        walk(root, "")
    return lines, problems


def load_yaml(text: str, source: str) -> tuple[Any, dict[str, int]]:
    """Parse YAML text with yaml.safe_load's semantics and this module's bounds; return the
    data and the line of each dotted key. ConfigError (one line each, `source:line`) for
    invalid YAML, a bound exceeded or duplicate keys."""
    loader: _BoundedLoader | None = None
    try:
        loader = _BoundedLoader(text)  # the reader refuses control characters right here
        root = loader.get_single_node()
        if root is None:
            return None, {}
        _check_expansion(root)
        lines, duplicates = _key_lines(root, source)
        if duplicates:
            raise ConfigError(duplicates)
        return loader.construct_document(root), lines
    except _Refused as exc:
        raise ConfigError([f"{source}:{exc.line}: {exc.message}"]) from None
    except yaml.reader.ReaderError as exc:  # a control character: it has a position, no mark
        line = text.count("\n", 0, max(0, exc.position)) + 1
        raise ConfigError([f"{source}:{line}: invalid YAML: character {exc.character!r} is not "
                           f"allowed (control characters cannot appear in YAML)"]) from None
    except yaml.YAMLError as exc:
        raise ConfigError([yaml_error_line(source, exc)]) from None
    except ValueError as exc:  # int() of a literal past Python's 4,300-digit limit
        raise ConfigError([f"{source}: a number in it is too long to read "
                           f"({str(exc).split(';')[0]})"]) from None
    finally:
        if loader is not None:
            loader.dispose()


def read_text(path: str | Path) -> str:
    """The text of a config file, read with a bound: ConfigError for a missing path, a folder,
    an unreadable file, more than MAX_CONFIG_BYTES bytes or text that is not UTF-8."""
    source = str(path)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK)  # a FIFO with no writer: no hang
    except FileNotFoundError:
        raise ConfigError([f"{source}: no such file"]) from None
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read ({exc.strerror or exc})"]) from None
    try:
        info = os.fstat(fd)
        if stat.S_ISDIR(info.st_mode):
            raise ConfigError([f"{source}: is a directory, expected a YAML file"])
        if stat.S_ISREG(info.st_mode) and info.st_size > MAX_CONFIG_BYTES:
            raise ConfigError([_too_big(source)])
        os.set_blocking(fd, True)  # pipes: wait for the writer's data (signals still stop it)
        chunks: list[bytes] = []
        total = 0
        while total <= MAX_CONFIG_BYTES:
            chunk = os.read(fd, _READ_CHUNK)
            if not chunk:
                break
            chunks.append(chunk)
            total += len(chunk)
        if total > MAX_CONFIG_BYTES:
            raise ConfigError([_too_big(source)])
    except OSError as exc:
        raise ConfigError([f"{source}: cannot read ({exc.strerror or exc})"]) from None
    finally:
        os.close(fd)
    try:
        return b"".join(chunks).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError([f"{source}: cannot read (not UTF-8 text: {exc.reason} at byte "
                           f"{exc.start})"]) from None


def _too_big(source: str) -> str:
    return (f"{source}: larger than {MAX_CONFIG_BYTES // (1 << 20)} MiB; a config is a short "
            f"YAML file (the limit is lnexp.config.loading.MAX_CONFIG_BYTES)")


def parse_override(item: str) -> tuple[str, Any]:
    """Split `key.path=value` on the first '=' and read the value as YAML
    (`3` -> 3, `bn` -> 'bn')."""
    key, sep, raw = item.partition("=")
    key = key.strip()
    if not sep or not key:
        raise ConfigError([f"--set {item!r}: expected KEY=VALUE, e.g. --set model.norm=bn"])
    try:
        value = load_yaml(raw, "VALUE")[0] if raw.strip() else None
    except ConfigError as exc:  # "VALUE:1: why" -> "why": the value is one line
        why = "; ".join(p.split(": ", 1)[-1] for p in exc.problems)
        raise ConfigError([f"--set {item!r}: value is not valid YAML ({why})"]) from None
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
        inside = sorted(p[len(key) + 1:] for p in VALID_PATHS if p.startswith(key + ".")
                        and "." not in p[len(key) + 1:])
        if inside and value is not None and not isinstance(value, dict):
            # model=bn used to replace the section with a string that validation dropped:
            # LayerNorm ran, without a word
            example = "norm" if "norm" in inside else inside[0]
            problems.append(f"--set {key}={value!r}: {key} is a section, not a key; set one of "
                            f"its keys, e.g. {key}.{example}=..., from: {', '.join(inside)}")
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
    """Read a YAML config file (see the module docstring for its bounds) into a raw mapping
    plus the line of each dotted key; ConfigError for a missing, unreadable, oversized,
    empty, non-mapping or malformed file."""
    source = str(path)
    text = read_text(path)
    if not text.strip():
        raise ConfigError([f"{source}: the file is empty; expected a YAML mapping "
                           f"(an empty mapping {{}} runs all defaults)"])
    raw, lines = load_yaml(text, source)
    if raw is None:
        raise ConfigError([f"{source}: the file is empty (only comments or blank lines); "
                           f"expected a YAML mapping (an empty mapping {{}} runs all defaults)"])
    if not isinstance(raw, dict):
        raise ConfigError([f"{source}: expected a mapping of keys (name:, seed:, data:, "
                           f"model:, ...) at the top level, got a {type(raw).__name__}"])
    return raw, lines


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


