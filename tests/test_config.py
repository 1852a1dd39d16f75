"""Config schema, loading and --set overrides."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from lnexp.config import Config, from_mapping, load_config, parse_override, to_yaml
from lnexp.errors import ConfigError
from tests.conftest import CONFIGS

SHIPPED = sorted(CONFIGS.glob("*.yaml"))


def test_there_are_shipped_configs():
    assert {p.name for p in SHIPPED} >= {"default.yaml", "single_sample.yaml", "bn.yaml"}


@pytest.mark.parametrize("path", SHIPPED, ids=lambda p: p.name)
def test_every_shipped_config_validates_and_explains_itself(path: Path):
    assert isinstance(load_config(path), Config)
    first, header = path.read_text().splitlines()[:2]
    assert first == "# yaml-language-server: $schema=../lnexp-config.schema.json", \
        "configs point editors at the JSON Schema"
    assert header.startswith("# ") and "$schema" not in header, \
        "then a comment saying what they show"
    assert f"configs/{path.name}" in path.read_text(), "the header names the command"


def test_defaults_are_the_tutorial():
    cfg = from_mapping({})
    assert (cfg.seed, cfg.data.n_samples, cfg.model.in_features, cfg.model.out_features,
            cfg.model.norm, cfg.model.mode, cfg.sample_index) == (0, 100, 100, 50, "ln",
                                                                   "train", 0)
    assert cfg == load_config(CONFIGS / "default.yaml")


def test_every_field_has_a_description():
    from pydantic import BaseModel

    from lnexp.config import Bound, TrainConfig

    sections = [Config] + [f.annotation for f in Config.model_fields.values()
                           if isinstance(f.annotation, type)
                           and issubclass(f.annotation, BaseModel)]
    # Optional sections (`TrainConfig | None`) and the `expect:` values are not plain types.
    sections += [TrainConfig, Bound]
    assert len(sections) == 7
    for model in sections:
        for name, field in model.model_fields.items():
            is_section = isinstance(field.annotation, type) and issubclass(field.annotation,
                                                                           BaseModel)
            if not is_section:
                assert field.description, f"{model.__name__}.{name} has no description"


@pytest.mark.parametrize(("item", "expected"), [
    ("model.norm=bn", ("model.norm", "bn")),
    ("seed=3", ("seed", 3)),
    ("model.eps=1.0e-3", ("model.eps", 1e-3)),
    ("name=a=b", ("name", "a=b")),  # split on the first '='
    ("data.values=[[1, 2]]", ("data.values", [[1, 2]])),
])
def test_parse_override(item, expected):
    assert parse_override(item) == expected


def test_overrides_apply_and_validate():
    cfg = from_mapping({}, ["model.norm=bn", "seed=3", "data.n_samples=8"])
    assert (cfg.model.norm, cfg.seed, cfg.data.n_samples) == ("bn", 3, 8)


def test_yaml_exponent_without_dot_is_a_number():
    # YAML 1.1 reads 1e-5 as the string "1e-5"; lnexp accepts it as a float.
    assert from_mapping({"model": {"eps": "1e-5"}}).model.eps == 1e-5


def _problems(raw, overrides=()) -> list[str]:
    with pytest.raises(ConfigError) as exc:
        from_mapping(raw, list(overrides))
    return exc.value.problems


def test_all_problems_are_reported_at_once_with_suggestions():
    problems = _problems({"data": {"n_samples": 0, "scael": 2}, "nrom": "ln",
                          "model": {"norm": "bx"}})
    text = "\n".join(problems)
    assert len(problems) == 4, text
    assert "data.n_samples: Input should be greater than or equal to 1 (got 0)" in text
    assert "data.scael: unknown key (did you mean 'data.scale'?)" in text
    assert "nrom: unknown key (did you mean 'model.norm'?)" in text
    assert "model.norm: unknown norm 'bx'; expected one of: bn, ln, rms, group, instance, none" \
        in text


def test_unknown_override_key_is_suggested():
    assert _problems({}, ["model.nrom=ln"]) == [
        "--set model.nrom: unknown key (did you mean 'model.norm'?)"]


def test_booleans_are_not_numbers_and_strings_are_not_ints():
    text = "\n".join(_problems({"seed": True, "data": {"n_samples": "100"}}))
    assert "seed: Input should be a valid integer (got True)" in text
    assert "data.n_samples: Input should be a valid integer (got '100')" in text


def test_sample_index_must_be_inside_the_batch():
    assert "sample_index 100 is out of range for data.n_samples 100" in \
        _problems({"sample_index": 100})[0]


def test_group_count_must_divide_the_features():
    assert "7 groups do not divide 50 features" in \
        _problems({"model": {"norm": "group", "groups": 7}})[0]


def test_names_cannot_escape_the_output_folder():
    assert "cannot leave output.dir" in _problems({"name": "../../etc"})[0]


def test_explicit_values_set_the_shape():
    cfg = from_mapping({"data": {"values": [[1, 2, 3], [4, 5, 6]]},
                        "model": {"linear": False}})
    assert (cfg.data.n_samples, cfg.model.in_features, cfg.features) == (2, 3, 3)
    assert "rows have 1, 3 values" in _problems({"data": {"values": [[1, 2, 3], [4]]},
                                                 "model": {"linear": False}})[0]


def test_errors_name_the_file_and_line(tmp_path: Path):
    p = tmp_path / "bad.yaml"
    p.write_text("seed: 0\nmodel:\n  norm: lnn\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.problems[0].startswith(f"{p}:3: model.norm: unknown norm 'lnn'")


def test_resolved_config_round_trips_through_yaml(tmp_path: Path):
    cfg = from_mapping({}, ["model.norm=group", "model.groups=10", "data.distribution=laplace"])
    p = tmp_path / "resolved.yaml"
    p.write_text(to_yaml(cfg))
    assert load_config(p) == cfg


@pytest.mark.parametrize("key", ["data.loc", "data.scale", "data.df", "model.eps", "model.gain",
                                 "train.lr", "train.separation", "train.noise",
                                 "train.momentum", "limits.max_memory_gb",
                                 "limits.memory_fraction"])
@pytest.mark.parametrize("value", [".inf", "-.inf", ".nan", "1e400"])
def test_non_finite_numbers_are_refused(key: str, value: str):
    (line,) = _problems({"train": {}} if key.startswith("train.") else {},
                        [f"{key}={value}"])
    assert line.startswith(f"<config> (--set {key}): {key}: expected a finite number, got ")


def test_non_finite_data_values_are_one_problem():
    (line,) = _problems({"data": {"values": [[math.nan] * 3] * 50}, "model": {"linear": False}})
    assert "data.values holds NaN or Inf" in line


def test_cross_key_rules_blame_the_set_that_made_them_fail():
    # the rule fails on `model`, but its message names model.groups: blame the --set
    assert _problems({}, ["model.groups=3", "model.norm=group"])[0].startswith(
        "<config> (--set model.groups): model.groups: ")
    assert _problems({"train": {"n_train": 32}}, ["train.batch_size=64"])[0].startswith(
        "<config> (--set train.batch_size): train.batch_size (64) is larger")


def test_cross_key_rules_name_the_line_of_the_key(tmp_path: Path):
    p = tmp_path / "g.yaml"
    p.write_text("model:\n  norm: group\n  groups: 7\n")
    with pytest.raises(ConfigError) as exc:
        load_config(p)
    assert exc.value.problems[0].startswith(f"{p}:3: model.groups: ")
    with pytest.raises(ConfigError) as exc:
        load_config(p, ["model.groups=3"])
    assert exc.value.problems[0].startswith(f"{p} (--set model.groups): model.groups: ")


def test_a_set_section_is_blamed_for_its_keys():
    (line,) = _problems({}, ["expect={post_norm.global.mean.abs_max: {le: .inf}}"])
    assert line.startswith("<config> (--set expect): expect.post_norm.global.mean.abs_max.le")
