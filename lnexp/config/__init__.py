"""Configs: the schema (schema.py, its sections in sections.py), reading YAML with
`--set`/`--expect` (loading.py), problem wording (problems.py) and the docs/config.md reference
table (reference.py).

Validated once, here, at the edge: unknown keys, wrong types, bad ranges and cross-key rules
are all collected and raised together as one `ConfigError`.
"""

from lnexp.config.loading import (
    SWEEP_KEY,
    add_expectations,
    apply_overrides,
    from_mapping,
    load_config,
    load_yaml,
    parse_override,
    read_raw,
    set_path,
)
from lnexp.config.problems import suggest, validate
from lnexp.config.reference import json_default, reference_markdown
from lnexp.config.schema import (
    VALID_PATHS,
    Bound,
    Config,
    DataConfig,
    LimitsConfig,
    ModelConfig,
    OutputConfig,
    TrainConfig,
    expect_dict,
    section_of,
    to_dict,
    to_yaml,
)

__all__ = [
    "SWEEP_KEY", "VALID_PATHS", "Bound", "Config", "DataConfig", "LimitsConfig", "ModelConfig",
    "OutputConfig", "TrainConfig", "add_expectations", "apply_overrides", "expect_dict",
    "from_mapping", "json_default", "load_config", "load_yaml", "parse_override", "read_raw",
    "reference_markdown", "section_of", "set_path", "suggest", "to_dict", "to_yaml", "validate",
]
