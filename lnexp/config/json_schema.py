"""The config's JSON Schema, for editors (`lnexp config schema`, committed as
`lnexp-config.schema.json`; each `configs/*.yaml` points yaml-language-server at it).

Generated from the pydantic models, then completed with what pydantic cannot see: the norm
names (a validator, not a Literal) as an enum with one line each, the run-name pattern, and the
`sweep:` block, which `lnexp sweep` reads and every other command sets aside. Every key has a
description, so an editor shows it on hover and completes keys and values.

YAML 1.2 editors read `1e-5` as a number; lnexp (PyYAML, YAML 1.1) reads it as text and
converts it, so numbers are typed `number` here and both spellings work in practice.
"""

from __future__ import annotations

import json
from typing import Any

from lnexp import norms
from lnexp.config import loading
from lnexp.config import schema as models

# Draft-07: what every YAML editor's schema support (yaml-language-server, VS Code, JetBrains)
# handles; in it a $ref ignores sibling keywords, so a described $ref is wrapped in allOf.
SCHEMA_DIALECT = "http://json-schema.org/draft-07/schema#"
DEFS = "definitions"
FILE_NAME = "lnexp-config.schema.json"
# pydantic writes these constraint names inside `anyOf` branches of an Annotated float
# (a BeforeValidator in a union); JSON Schema spells them differently.
_CONSTRAINTS = {"gt": "exclusiveMinimum", "ge": "minimum", "lt": "exclusiveMaximum",
                "le": "maximum"}
_SCHEMA_MAPS = ("properties", "$defs", DEFS, "patternProperties")
_SCHEMA_LISTS = ("anyOf", "oneOf", "allOf", "prefixItems")


def _tidy(schema: Any) -> Any:
    """Fix constraint names, drop pydantic's generated titles and wrap a $ref that has
    siblings in allOf, recursively (schema-aware: a property *named* `le`, as in an
    expectation's comparators, is left alone)."""
    if not isinstance(schema, dict):
        return schema
    if "$ref" in schema and len(schema) > 1:
        rest = {k: v for k, v in schema.items() if k != "$ref"}
        return _tidy({"allOf": [{"$ref": schema["$ref"]}], **rest})
    out: dict[str, Any] = {}
    for key, value in schema.items():
        if key in _SCHEMA_MAPS and isinstance(value, dict):
            out[key] = {k: _tidy(v) for k, v in value.items()}
        elif key in _SCHEMA_LISTS and isinstance(value, list):
            out[key] = [_tidy(v) for v in value]
        elif key in ("items", "additionalProperties", "not", "propertyNames"):
            out[key] = _tidy(value)
        elif key in _CONSTRAINTS and isinstance(value, int | float):
            out[_CONSTRAINTS[key]] = value
        elif key == "title":
            continue
        else:
            out[key] = value
    return out


def _ref(schema: dict[str, Any]) -> str | None:
    """The definition a schema points at: `$ref`, or `allOf: [{$ref}]`, or the `$ref` branch of
    `anyOf: [{$ref}, null]` (an optional section)."""
    if isinstance(schema.get("$ref"), str):
        return str(schema["$ref"]).rsplit("/", 1)[1]
    for branch in (*schema.get("allOf", []), *schema.get("anyOf", [])):
        if isinstance(branch, dict) and isinstance(branch.get("$ref"), str):
            return str(branch["$ref"]).rsplit("/", 1)[1]
    return None


def _resolve(schema: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    name = _ref(schema)
    return defs[name] if name else schema


def _leaf_schemas(schema: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """Every dotted leaf key the grid may sweep, with its own schema (no default)."""
    defs = schema[DEFS]
    out: dict[str, dict[str, Any]] = {}
    sections = {p.rpartition(".")[0] for p in models.VALID_PATHS if "." in p}
    for path in models.VALID_PATHS:
        if path in sections or path == "expect" or path in ("output.dir",):
            continue
        node = schema
        for part in path.split("."):
            node = _resolve(node, defs)["properties"][part]
        out[path] = {k: v for k, v in node.items() if k != "default"}
    return out


def _sweep_block(schema: dict[str, Any]) -> dict[str, Any]:
    """The `sweep:` block; its axes (one property per sweepable key) are defined once."""
    leaves = _leaf_schemas(schema)

    def axis(leaf: dict[str, Any]) -> dict[str, Any]:
        values = {k: v for k, v in leaf.items() if k != "description"}
        return {
            "description": leaf.get("description", ""),
            "anyOf": [{"type": "array", "items": values, "minItems": 1},
                      {"type": "string", "description": "a range a:b[:step] as in Python's "
                       "range (0:5 is 0..4), or a comma list (bn,ln)"},
                      values],
        }

    keys = {path: axis(leaf) for path, leaf in leaves.items()}
    schema[DEFS]["SweepAxes"] = {
        "type": "object", "properties": keys, "additionalProperties": False,
        "description": "Config keys (dotted) with the values they take."}
    axes = {"$ref": f"#/{DEFS}/SweepAxes"}
    grid = {"allOf": [axes],
            "description": "Axes crossed with each other: KEY: [VALUES] (or a range "
                           "\"a:b[:step]\"), e.g. model.norm: [bn, ln, rms]; the last axis "
                           "varies fastest."}
    return {
        "description": "A grid of trials for `lnexp sweep` (every other command sets this "
                       "block aside): grid, zip, seeds and metrics.",
        "type": "object",
        "additionalProperties": False,
        "properties": {
            "grid": grid,
            "zip": {"description": "Keys that vary together, not crossed: a mapping (or a "
                                   "list of mappings) KEY: [VALUES] of equal lengths, e.g. "
                                   "{model.in_features: [16, 64], model.out_features: [8, 32]}.",
                    "anyOf": [{"type": "array",
                               "items": {"allOf": [axes], "minProperties": 1}},
                              {"allOf": [axes], "minProperties": 1}]},
            "seeds": {"description": "Seeds per combination: seeds: 3 means seed 0, 1, 2.",
                      "type": "integer", "minimum": 1},
            "metrics": {"description": "Metrics to aggregate over seeds, METRIC.REDUCER as in "
                                       "expect:, e.g. post_norm.per_sample.var.spread; "
                                       "--metric replaces the list.",
                        "type": "array", "items": {"type": "string"}},
        },
    }


def _describe_sections(schema: dict[str, Any]) -> None:
    """A `$ref` property gets its section's description, so hover works on `model:` too."""
    defs = schema[DEFS]
    for key, prop in schema["properties"].items():
        name = _ref(prop)
        if "description" not in prop and name:
            description = defs[name].get("description", "")
            schema["properties"][key] = ({"allOf": [prop], "description": description}
                                         if "$ref" in prop else {**prop,
                                                                 "description": description})


def config_schema() -> dict[str, Any]:
    """The JSON Schema of a config file (draft-07)."""
    raw = models.Config.model_json_schema(mode="validation",
                                          ref_template=f"#/{DEFS}/{{model}}")
    raw[DEFS] = raw.pop("$defs")
    schema = _tidy(raw)
    defs = schema[DEFS]
    norm = defs["ModelConfig"]["properties"]["norm"]
    # A registry name, or a user norm path/to/file.py:Name / package.module:Name (an entry-point
    # name of an installed package is not known to the schema: editors flag it, lnexp takes it).
    norm.pop("type", None)
    norm["anyOf"] = [
        {"type": "string", "enum": list(norms.names()),
         "enumDescriptions": [f"{norms.get(n).title}: {norms.get(n).summary}"
                              for n in norms.names()]},
        {"type": "string", "pattern": norms.USER_PATTERN,
         "description": "a user norm: path/to/file.py:Name or package.module:Name (loading it "
                        "runs its code)"}]
    schema["properties"]["name"]["pattern"] = models.NAME_PATTERN
    schema["properties"]["expect"]["description"] += (
        " METRIC is STAGE.AXIS.STAT (pre_norm/post_norm, per_feature/per_sample, "
        "mean/var/var_unbiased/std), STAGE.global.STAT, sample.STAGE.STAT or "
        "numeric_trouble.STAGE.KIND; REDUCER is abs_max, min, max, mean or spread.")
    _describe_sections(schema)
    schema["properties"][loading.SWEEP_KEY] = _sweep_block(schema)
    return {"$schema": SCHEMA_DIALECT, "title": "lnexp config",
            "description": "An lnexp experiment config (lnexp run / compare / sweep / "
                           "validate). Unknown keys are errors.",
            **{k: v for k, v in schema.items() if k not in ("title", "description")}}


def schema_text() -> str:
    """The schema as the committed file holds it: indented JSON, keys in model order."""
    return json.dumps(config_schema(), indent=2, ensure_ascii=False) + "\n"
