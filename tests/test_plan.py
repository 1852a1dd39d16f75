"""plan.refusals: what `run` refuses for the config alone, which `validate` reports too."""

from __future__ import annotations

import pytest

from lnexp import core, experiment, plan
from lnexp.config import from_mapping, load_config
from lnexp.errors import ConfigError, NotDefinedError
from tests.conftest import CONFIGS


def cfg_of(*sets: str, expect: list[str] | None = None):
    return from_mapping({"output": {"figures": False}}, list(sets), expectations=expect)


@pytest.mark.parametrize("sets, words", [
    (["model.norm=bn", "data.n_samples=1"], "batch of 1"),
    (["model.norm=bn", "model.eps=0"], "model.eps: 0 is refused"),
    (["model.norm=bn", "model.eps=0", "model.mode=eval", "train={steps: 2}"],
     "model.eps: 0 is refused"),
    # instance on features is refused by the schema; on 1x1 images or 1 token by PyTorch
    (["model.norm=instance", "data.layout=image", "data.height=1", "data.width=1"],
     "1 pixel per channel"),
    (["model.norm=instance", "data.layout=sequence", "data.tokens=1"], "1 token per channel"),
])
def test_norms_pytorch_refuses_are_refused_from_the_config(sets: list[str], words: str):
    cfg = cfg_of(*sets)
    (line,) = plan.refusals(cfg)
    assert words in line
    with pytest.raises(NotDefinedError, match=words):
        core.refuse(cfg)


@pytest.mark.parametrize("sets", [
    ["model.norm=bn", "model.eps=0", "model.mode=eval"],
    ["model.norm=ln", "model.eps=0"],
    ["model.norm=group", "model.eps=0"],
    ["model.norm=instance", "data.layout=sequence", "data.tokens=2"],
    ["model.norm=bn", "data.n_samples=1", "data.layout=image"],  # 1 image: 64 values/channel
])
def test_what_pytorch_accepts_is_not_refused_and_runs(sets: list[str]):
    cfg = cfg_of("data.n_samples=8", "model.in_features=4", *sets)
    assert plan.refusals(cfg) == []
    experiment.run(cfg)  # no NotDefinedError


def test_the_refused_norms_really_are_refused_by_pytorch():
    for sets in (["model.norm=bn", "model.eps=0"],
                 ["model.norm=instance", "data.layout=sequence", "data.tokens=1"]):
        with pytest.raises(NotDefinedError, match="PyTorch refused"):
            experiment.run(cfg_of(*sets, "data.n_samples=8", "model.in_features=4"))


@pytest.mark.parametrize("expect, sets, needs", [
    ("layers.grad_norm.max <= 1", [], "model.depth > 1"),
    ("training.train_loss.max <= 1", [], "a train: block"),
    ("training.heldout.eval_mode.accuracy.min >= 0.5", ["model.depth=3"], "a train: block"),
    ("layers.attn_logit_max.max <= 10", ["model.depth=3", "model.in_features=50",
                                         "model.placement=pre_residual", "model.block=ffn2"],
     "model.block: transformer"),
])
def test_expectations_on_metrics_never_written_are_refused(expect: str, sets: list[str],
                                                           needs: str):
    cfg = cfg_of(*sets, expect=[expect])
    (line,) = plan.refusals(cfg)
    assert line.startswith(f"expect.{expect.split()[0]}: ") and needs in line
    with pytest.raises(ConfigError):
        core.refuse(cfg, "c.yaml")


def test_expectations_on_metrics_written_pass():
    cfg = cfg_of("model.depth=3", "train={steps: 2}",
                 expect=["layers.grad_norm.max <= 1", "training.train_loss.max <= 1"])
    assert plan.refusals(cfg) == []


@pytest.mark.parametrize("path", sorted(CONFIGS.glob("*.yaml")), ids=lambda p: p.name)
def test_no_shipped_config_is_refused(path):
    assert plan.refusals(load_config(path)) == []


@pytest.mark.parametrize("expect, sets", [
    ("post_norm.per_token.var.spread <= 1", []),
    ("post_norm.per_group.var.spread <= 1", ["data.layout=image"]),
    ("post_norm.per_instance.var.spread <= 1", []),
])
def test_expectations_on_axes_never_reported_are_refused(expect: str, sets: list[str]):
    (line,) = plan.refusals(cfg_of(*sets, expect=[expect]))
    assert "is not reported for data.layout" in line


def test_expectations_on_axes_reported_pass():
    cfg = cfg_of("data.layout=sequence", "model.norm=group",
                 expect=["post_norm.per_token.var.spread <= 10",
                         "post_norm.per_group.var.spread <= 1e-3"])
    assert plan.refusals(cfg) == []
