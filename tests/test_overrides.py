"""lnexp.overrides: Hydra-style KEY=VALUE arguments and the quoting hints."""

from __future__ import annotations

import pytest
import yaml

from lnexp import config, overrides
from lnexp.errors import ConfigError


def test_positional_pairs_are_set_items() -> None:
    items = ["model.norm=bn", "seed=3", "data.values=[[1, 2]]", "name=a=b"]
    assert overrides.positional(items) == items
    raw = config.apply_overrides({}, overrides.positional(items[:3]))
    assert raw == {"model": {"norm": "bn"}, "seed": 3, "data": {"values": [[1, 2]]}}


@pytest.mark.parametrize("item, words", [
    ("+model.norm=bn", ["no '+' needed", "write model.norm=bn"]),
    ("++seed=3", ["no '+' needed", "write seed=3"]),
    ("~train", ["cannot delete a key", "train=VALUE", "train=null"]),
    ("~model.groups=4", ["cannot delete", "model.groups=VALUE"]),
    ("configs/bn.yaml", ["expected KEY=VALUE after the config", "one config per command"]),
    ("=3", ["expected KEY=VALUE"]),
])
def test_hydra_forms_and_strays_are_refused_with_what_to_type(item: str, words: list[str]
                                                              ) -> None:
    with pytest.raises(ConfigError) as exc:
        overrides.positional(["seed=1", item])
    (line,) = exc.value.problems
    assert line.startswith(repr(item))
    for word in words:
        assert word in line


def test_every_problem_is_reported_at_once() -> None:
    with pytest.raises(ConfigError) as exc:
        overrides.positional(["+a=1", "~b", "c"])
    assert len(exc.value.problems) == 3


def test_string_keys_come_from_the_schema() -> None:
    keys = overrides.string_keys()
    assert {"name", "model.norm", "model.mode", "data.distribution", "train.optimizer",
            "output.dir"} <= keys
    assert not {"seed", "model.eps", "model.affine", "model.groups", "data.values"} & keys


@pytest.mark.parametrize("item, expected", [
    ("name=123", " (YAML reads 123 as a number; quote it for the text: --set 'name=\"123\"')"),
    ("model.norm=no",
     " (YAML 1.1 reads no as a boolean; quote it for the text: --set 'model.norm=\"no\"')"),
    ("model.mode=null",
     " (YAML 1.1 reads null as null; quote it for the text: --set 'model.mode=\"null\"')"),
    ("model.norm=bn,ln", " (a comma list is a Hydra multirun; to run each value use lnexp "
                         "sweep CONFIG --grid model.norm=bn,ln)"),
    ("name=\"123\"", ""), ("seed=3", ""), ("model.norm=bn", ""), ("model.eps=no", ""),
    ("data.values=[[1, 2]]", ""),
])
def test_hints_for_values_yaml_reads_as_something_else(item: str, expected: str) -> None:
    assert overrides.hint(item) == expected


def test_positional_hints_quote_without_the_option() -> None:
    assert overrides.hint("name=123", option="") == (
        " (YAML reads 123 as a number; quote it for the text: 'name=\"123\"')")


@pytest.mark.parametrize("item", ["name=123", "model.norm=no", "output.dir=2024"])
def test_the_hinted_values_fail_and_the_quoted_ones_pass_validation(item: str) -> None:
    """The hint is only worth giving where lnexp refuses the value and accepts it quoted."""
    with pytest.raises(ConfigError):
        config.from_mapping({}, [item])
    key, _, raw = item.partition("=")
    quoted = f'{key}="{raw}"'
    assert yaml.safe_load(quoted.partition("=")[2]) == raw
    if key != "model.norm":  # "no" is no norm either way; the hint still explains the type
        config.from_mapping({}, [quoted])


@pytest.mark.parametrize("how", ["positional", "--set"])
def test_a_section_given_a_value_is_refused_with_its_keys(how: str, invoke, tmp_path) -> None:
    """`model=bn` (not model.norm=bn) was accepted and ignored: LayerNorm ran."""
    from tests.conftest import CONFIGS

    args = ["model=bn"] if how == "positional" else ["--set", "model=bn"]
    r = invoke("run", str(CONFIGS / "default.yaml"), *args, "-o", str(tmp_path / "out"))
    assert r.exit_code == 2, r.output
    lines = [x for x in r.stderr.splitlines() if x.startswith("error:")]
    assert len(lines) == 1, r.stderr
    assert "model is a section, not a key" in lines[0] and "model.norm=" in lines[0]
    assert "norm, out_features" in lines[0]  # the section's keys, listed
    assert not (tmp_path / "out").exists()
    # a mapping or null for a section still works (train=null turns training off)
    assert invoke("validate", str(CONFIGS / "default.yaml"), "train=null").exit_code == 0
    assert invoke("validate", str(CONFIGS / "default.yaml"),
                  "model={norm: bn}").exit_code == 0
