"""lnexp.config.json_schema: the committed JSON Schema is current, valid, complete, and agrees with
lnexp's own validation on the shipped configs and on typical mistakes."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from lnexp import config, norms
from lnexp.config.json_schema import FILE_NAME, config_schema, schema_text
from lnexp.errors import ConfigError

jsonschema = pytest.importorskip("jsonschema")

ROOT = Path(__file__).resolve().parent.parent
CONFIGS = sorted((ROOT / "configs").glob("*.yaml"))
REGENERATE = f".venv/bin/lnexp config schema -o {FILE_NAME}"


@pytest.fixture(scope="module")
def validator() -> Any:
    schema = config_schema()
    jsonschema.Draft7Validator.check_schema(schema)
    return jsonschema.Draft7Validator(schema)


def test_committed_schema_is_current() -> None:
    committed = (ROOT / FILE_NAME).read_text(encoding="utf-8")
    assert committed == schema_text(), f"{FILE_NAME} is stale; regenerate it: {REGENERATE}"


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_validates(validator: Any, path: Path) -> None:
    raw = yaml.safe_load(path.read_text(encoding="utf-8"))
    errors = [f"{'.'.join(map(str, e.absolute_path))}: {e.message}"
              for e in validator.iter_errors(raw)]
    assert errors == []


def test_resolved_configs_validate(validator: Any) -> None:
    """What `lnexp config show` prints (nulls, defaults, a train block) is valid too."""
    for cfg in (config.Config(), config.Config(train=config.TrainConfig())):
        assert list(validator.iter_errors(config.to_dict(cfg))) == []


def _schema_paths(node: dict[str, Any], defs: dict[str, Any], prefix: str = ""
                  ) -> dict[str, dict[str, Any]]:
    out = {}
    for key, prop in node.get("properties", {}).items():
        out[prefix + key] = prop
        refs = [b["$ref"] for b in (prop, *prop.get("anyOf", []), *prop.get("allOf", []))
                if "$ref" in b]
        if refs and prefix + key not in ("sweep.grid",):
            out.update(_schema_paths(defs[refs[0].rsplit("/", 1)[1]], defs, f"{prefix}{key}."))
        elif "properties" in prop:
            out.update(_schema_paths(prop, defs, f"{prefix}{key}."))
    return out


def test_every_key_is_in_the_schema_with_a_description() -> None:
    schema = config_schema()
    paths = _schema_paths(schema, schema["definitions"])
    assert set(config.VALID_PATHS) <= set(paths)
    assert {p for p in paths if p.startswith("sweep.")} >= {
        "sweep.grid", "sweep.zip", "sweep.seeds", "sweep.metrics"}
    missing = [p for p, prop in paths.items() if not prop.get("description")]
    assert missing == []
    axes = schema["definitions"]["SweepAxes"]["properties"]
    assert "model.norm" in axes and "output.dir" not in axes and "model" not in axes
    assert all(a.get("description") for a in axes.values())


def test_norm_names_are_an_enum_with_a_line_each() -> None:
    user = config_schema()["definitions"]["ModelConfig"]["properties"]["norm"]["anyOf"][1]
    assert user["pattern"] == norms.USER_PATTERN  # or a user norm file.py:Name
    norm = config_schema()["definitions"]["ModelConfig"]["properties"]["norm"]["anyOf"][0]
    assert norm["enum"] == list(norms.names())
    assert len(norm["enumDescriptions"]) == len(norm["enum"])
    assert norm["enumDescriptions"][0].startswith("BatchNorm1d: ")


def test_constraints_are_json_schema_keywords() -> None:
    text = schema_text()
    limits = json.loads(text)["definitions"]["LimitsConfig"]["properties"]["max_memory_gb"]
    assert {"exclusiveMinimum": 0, "type": "number"} in limits["anyOf"]
    # Bound keeps its properties named le/ge/...: those are keys, not constraints.
    assert set(json.loads(text)["definitions"]["Bound"]["properties"]) == {
        "le", "ge", "lt", "gt", "approx", "tol"}


@pytest.mark.parametrize("raw", [
    {"model": {"norn": "ln"}},
    {"model": {"norm": "bnn"}},
    {"data": {"n_samples": 0}},
    {"name": "../etc"},
    {"train": {"optimizer": "adamw"}},
    {"expect": {"post_norm.per_sample.var.min": {"gte": 1}}},
], ids=["typo", "norm", "range", "name", "literal", "comparator"])
def test_schema_and_lnexp_both_refuse_typical_mistakes(validator: Any, raw: dict[str, Any]
                                                       ) -> None:
    assert list(validator.iter_errors(raw)) != []
    with pytest.raises(ConfigError):
        config.from_mapping(raw)


@pytest.mark.parametrize("block", [
    {"grid": {"model.nrom": ["bn"]}},
    {"grid": {"model.norm": ["bn", "lnn"]}},
    {"grid": {"output.dir": ["a", "b"]}},
    {"seeds": 0},
    {"grids": {"model.norm": ["bn"]}},
    {"zip": [{"model.in_features": [16, 64], "model.out_features": [8.5, 32]}]},
], ids=["key", "value", "fixed", "seeds", "section", "zip-value"])
def test_bad_sweep_blocks_are_flagged(validator: Any, block: dict[str, Any]) -> None:
    assert list(validator.iter_errors({"sweep": block})) != []


def test_good_sweep_blocks_pass(validator: Any) -> None:
    block = {"grid": {"model.norm": ["bn", "ln"], "data.n_samples": "2:17:2", "seed": "0:3",
                      "model.eps": [1.0e-5, 0.1]},
             "zip": {"model.in_features": [16, 64], "model.out_features": [8, 32]},
             "seeds": 3, "metrics": ["post_norm.per_sample.var.spread"]}
    assert list(validator.iter_errors({"sweep": block})) == []


@pytest.mark.parametrize("path", CONFIGS, ids=[p.name for p in CONFIGS])
def test_every_shipped_config_points_editors_at_the_schema(path: Path) -> None:
    first, second = path.read_text(encoding="utf-8").splitlines()[:2]
    assert first == f"# yaml-language-server: $schema=../{FILE_NAME}"
    assert second.startswith("# ") and "yaml-language-server" not in second  # then the header


def test_the_command_prints_and_writes_the_schema(invoke, tmp_path: Path) -> None:
    res = invoke("config", "schema")
    assert res.exit_code == 0 and res.stdout == schema_text()
    res = invoke("config", "schema", "-o", str(tmp_path / FILE_NAME))
    assert res.exit_code == 0
    assert (tmp_path / FILE_NAME).read_text(encoding="utf-8") == schema_text()
