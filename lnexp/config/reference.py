"""The config reference table in docs/config.md, generated from the schema (a test keeps the
page in sync; scripts/update_readme_reference.py rewrites it)."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from lnexp.config.schema import VALID_PATHS, Config, TrainConfig, section_of, to_dict


def reference_markdown() -> str:
    """The config reference table for docs/config.md (a test keeps the page in sync)."""
    rows = ["| key | default | description |", "| --- | --- | --- |"]
    defaults = to_dict(Config())
    filled = to_dict(Config(train=TrainConfig()))  # defaults inside optional sections
    for path in VALID_PATHS:
        parent, _, leaf = path.rpartition(".")
        section = Config if not parent else section_of(Config.model_fields[parent].annotation)
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
