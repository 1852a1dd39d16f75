"""Overrides as people type them: Hydra-style `KEY=VALUE` arguments after the config
(`lnexp run configs/default.yaml model.norm=bn seed=3`), equal to `--set KEY=VALUE`, and hints
for values YAML reads as something other than the text typed (`name=123` is a number,
`model.norm=no` is false in YAML 1.1).

Pure: checks and explains; `config.apply_overrides` applies the pairs.
"""

from __future__ import annotations

import types
import typing
from functools import cache
from typing import Any

import yaml

from lnexp import config
from lnexp.errors import ConfigError

# YAML 1.1 words PyYAML reads as booleans or null (case-insensitive forms included).
_YAML_WORDS = {"yes", "no", "on", "off", "true", "false", "y", "n", "null", "~"}


def positional(items: list[str]) -> list[str]:
    """Check `KEY=VALUE` arguments given after the config; returns them as `--set` items.

    Hydra's `+key=value` (append), `++key=value` (force) and `~key` (delete) are refused with
    what to type instead, as is anything without `=` (e.g. a second config file). Every problem
    is reported at once.
    """
    problems: list[str] = []
    for item in items:
        key, sep, _ = item.partition("=")
        bare = key.lstrip("+~")
        if item.startswith("~"):
            problems.append(
                f"{item!r}: lnexp cannot delete a key (Hydra's ~KEY); every key has a default: "
                f"set it instead, e.g. {bare}=VALUE, or {bare}=null where null is allowed "
                f"(train=null)")
        elif item.startswith("+"):
            problems.append(
                f"{item!r}: no '+' needed (Hydra's +KEY adds a key); every lnexp key exists "
                f"already, so write {item.lstrip('+')}")
        elif not sep or not key.strip():
            problems.append(
                f"{item!r}: expected KEY=VALUE after the config, e.g. model.norm=bn seed=3 "
                f"(one config per command; `lnexp config show CONFIG` lists the keys)")
    if problems:
        raise ConfigError(problems)
    return list(items)


def _string_like(annotation: Any) -> bool:
    """str, a Literal of strings, or either of them | None."""
    origin = typing.get_origin(annotation)
    if annotation is str:
        return True
    if origin is typing.Literal:
        return all(isinstance(a, str) for a in typing.get_args(annotation))
    if origin in (typing.Union, types.UnionType):
        return any(_string_like(a) for a in typing.get_args(annotation) if a is not type(None))
    return False


@cache
def string_keys() -> frozenset[str]:
    """Dotted keys whose values are text (name, model.norm, train.optimizer, ...)."""
    out = set()
    for path in config.VALID_PATHS:
        parent, _, leaf = path.rpartition(".")
        model = config.Config if not parent else config.section_of(
            config.Config.model_fields[parent].annotation)
        if model is None:
            continue
        field = model.model_fields.get(leaf)
        if field is not None and _string_like(field.annotation):
            out.add(path)
    return frozenset(out)


def _kind(value: Any) -> str:
    if isinstance(value, bool):
        return "a boolean"
    if value is None:
        return "null"
    if isinstance(value, int | float):
        return "a number"
    return f"a {type(value).__name__}"


def hint(item: str, option: str = "--set") -> str:
    """For an override whose value failed validation: a ` (hint)` when YAML read a text key's
    value as something else, or when it looks like a Hydra sweep (`a,b`); else ''."""
    key, _, raw = item.partition("=")
    key, raw = key.strip(), raw.strip()
    if not raw or raw[0] in "'\"":
        return ""
    try:
        value = yaml.safe_load(raw)
    except yaml.YAMLError:
        return ""
    quoted = f"{key}=\"{raw}\""
    typed = f"{option} '{quoted}'" if option.startswith("-") else f"'{quoted}'"
    if key in string_keys() and not isinstance(value, str):
        why = (f"YAML reads {raw} as {_kind(value)}" if raw.lower() not in _YAML_WORDS
               else f"YAML 1.1 reads {raw} as {_kind(value)}")
        return f" ({why}; quote it for the text: {typed})"
    if isinstance(value, str) and "," in raw and not raw.startswith(("[", "{")):
        return (f" (a comma list is a Hydra multirun; to run each value use lnexp sweep "
                f"CONFIG --grid {key}={raw})")
    return ""


def annotate(problems: list[str], sets: list[str], positional: list[str]) -> list[str]:
    """Problem lines with a quoting hint appended where an override set the key (the loader
    names such keys `(--set KEY)`); the last override of a key is the one that counted."""
    last: dict[str, tuple[str, str]] = {}
    for item in positional:
        last[item.partition("=")[0].strip()] = (item, "")
    for item in sets:
        last[item.partition("=")[0].strip()] = (item, "--set")
    out = []
    for line in problems:
        for key, (item, option) in last.items():
            if f"(--set {key})" in line:
                line += hint(item, option)
                break
        out.append(line)
    return out
