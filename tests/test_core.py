"""lnexp.core: one call computes and writes a run or a compare and returns a typed outcome."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lnexp import core
from lnexp.compare import norm_configs
from lnexp.config import from_mapping
from lnexp.errors import NotDefinedError

SMALL = {"data": {"n_samples": 8}, "model": {"in_features": 6, "out_features": 4},
         "output": {"figures": False},
         "expect": {"post_norm.per_sample.mean.abs_max": {"le": 1e-5},
                    "post_norm.per_feature.var.spread": {"le": 0.0}}}


def test_run_outcome_carries_what_metrics_json_holds(tmp_path: Path) -> None:
    outcome = core.run(from_mapping(SMALL), tmp_path, ["lnexp"])
    doc = json.loads((outcome.run_dir / "metrics.json").read_text())
    assert doc == outcome.document
    assert doc["explanation"] == outcome.explanation
    assert doc["expectations"] == outcome.expectations
    assert [r["passed"] for r in outcome.expectations] == [True, False]
    assert outcome.failed == outcome.expectations[1:]
    assert json.loads((outcome.run_dir / "run.json").read_text())["status"] == "completed"


def test_a_norm_not_defined_here_makes_no_folder(tmp_path: Path) -> None:
    cfg = from_mapping({**SMALL, "data": {"n_samples": 1}, "model": {"norm": "bn"}})
    with pytest.raises(NotDefinedError, match="batch of 1"):
        core.run(cfg, tmp_path, ["lnexp"])
    assert not any(tmp_path.iterdir())


def test_compare_outcome_and_its_partial_folder(tmp_path: Path) -> None:
    cfg = from_mapping({**SMALL, "data": {"n_samples": 1}, "expect": {}})
    configs = norm_configs(cfg, ["bn", "ln"])
    assert core.compare_figure_count(cfg, configs) == 0  # figures off
    outcome = core.compare(cfg, configs, tmp_path, ["lnexp"])
    assert "batch of 1" in outcome.missing
    assert [name for name, _ in outcome.explanations] == ["bn", "ln"]
    assert outcome.document["axes"] == outcome.axes
    run = json.loads((outcome.compare_dir / "run.json").read_text())
    assert run["status"] == "partial" and (outcome.compare_dir / "ln" / "metrics.json").is_file()


def test_compare_figure_count_counts_every_png() -> None:
    cfg = from_mapping({"model": {"depth": 2}})
    # per norm: overview, heatmap, layers; the compare folder: comparison, layers
    assert core.compare_figure_count(cfg, norm_configs(cfg, ["bn", "ln"])) == 2 * 3 + 2
