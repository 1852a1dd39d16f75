"""Problem wording: every validation error becomes one line naming where the value came from
(file:line, `--set KEY`, or `--expect '...'`), the dotted key path, the bad value and what was
expected; unknown keys get a did-you-mean hint."""

from __future__ import annotations

import difflib
import re
from typing import Any

import yaml
from pydantic import ValidationError

from lnexp import expect
from lnexp.config.schema import VALID_PATHS, Config
from lnexp.errors import ConfigError


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
    try:
        return Config.model_validate(raw)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            path = ".".join(str(p) for p in err["loc"]
                            if not str(p).startswith("function-") and str(p) != "[key]")
            problems.append(_problem_line(err, path, source, lines, overridden, origins))
        raise ConfigError(problems) from None


def _named_keys(msg: str) -> list[str]:
    """The dotted key paths a validator's message names, in order (`model.groups: ...`)."""
    found = []
    for path in VALID_PATHS:
        m = re.search(rf"(?<![\w.]){re.escape(path)}(?!\w|\.\w)", msg)
        if m:
            found.append((m.start(), path))
    return [p for _, p in sorted(found)]


def _where(paths: list[str], source: str, lines: dict[str, int], overridden: set[str],
           origins: dict[str, str]) -> str:
    """Where the values at `paths` came from: `--set` wins over the file (a `--set` of a whole
    section replaces its lines), then `--expect`, then the nearest key with a line (list items
    have none of their own)."""
    def prefixes(path: str) -> list[str]:
        parts = path.split(".")
        return [".".join(parts[:i]) for i in range(len(parts), 0, -1)]

    sets = [next(p for p in prefixes(path) if p in overridden) for path in paths
            if any(p in overridden for p in prefixes(path))]
    if sets:
        return f"{source} ({', '.join(f'--set {k}' for k in dict.fromkeys(sets))})"
    for path in paths:
        for probe in prefixes(path):
            if probe in origins:
                return origins[probe]
            if probe in lines:
                return f"{source}:{lines[probe]}"
    return source


def _problem_line(err: Any, path: str, source: str, lines: dict[str, int],
                  overridden: set[str], origins: dict[str, str] | None = None) -> str:
    msg = err["msg"]
    if msg.startswith("Value error, "):
        msg = msg[len("Value error, "):]
    # A cross-key rule fails on its section (`model`) but names the keys it is about: blame
    # those, so `--set model.groups=3` is reported as `--set model.groups`, not the file.
    section = path == "" or any(v.startswith(path + ".") for v in VALID_PATHS)
    named = _named_keys(msg) if section and err["type"] == "value_error" else []
    where = _where([*named, path] if named else [path], source, lines, overridden,
                   origins or {})
    kind = err["type"]
    if kind == "extra_forbidden" and path.startswith("expect."):
        leaf = path.rpartition(".")[2]
        close = difflib.get_close_matches(leaf, [*expect.OPS, "tol"], n=1, cutoff=0.5)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        return (f"{where}: {path}: unknown comparator{hint}; expected "
                f"{', '.join(expect.OPS)} (and tol with approx)")
    if kind == "extra_forbidden":
        return f"{where}: {path}: unknown key{suggest(path)}"
    starts_with_key = any(msg.startswith(p + " ") or msg.startswith(p + ":") for p in VALID_PATHS)
    label = f"{path}: " if path and not starts_with_key else ""
    got = "" if kind in ("value_error", "assertion_error") else f" (got {_describe(err['input'])})"
    return f"{where}: {label}{msg}{got}"


def yaml_error_line(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in str(problem):
        return (f"{where}: YAML tag refused ({problem.strip()}); lnexp reads plain YAML only "
                f"(yaml.safe_load), nothing was executed")
    return f"{where}: invalid YAML: {problem.strip()}"


