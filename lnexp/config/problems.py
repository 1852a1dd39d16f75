"""Problem wording: every validation error becomes one line naming where the value came from
(file:line, `--set KEY`, or `--expect '...'`), the dotted key path, the bad value and what was
expected; unknown keys get a did-you-mean hint."""

from __future__ import annotations

import difflib
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


def yaml_error_line(source: str, exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    where = f"{source}:{mark.line + 1}" if mark is not None else source
    problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
    if isinstance(exc, yaml.constructor.ConstructorError) and "tag" in str(problem):
        return (f"{where}: YAML tag refused ({problem.strip()}); lnexp reads plain YAML only "
                f"(yaml.safe_load), nothing was executed")
    return f"{where}: invalid YAML: {problem.strip()}"


