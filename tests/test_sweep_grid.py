"""lnexp.sweep.grid: values, ranges, product order, YAML blocks and bad grids (pure)."""

from __future__ import annotations

import pytest

from lnexp.errors import ConfigError
from lnexp.sweep import grid as sweep


def _axes(*grid: str, raw: dict | None = None) -> sweep.Definition:
    return sweep.definition(raw or {}, list(grid))


# --------------------------------------------------------------------------- expansion

def test_values_ranges_and_yaml_scalars() -> None:
    assert sweep.parse_grid_option("seed=0:5").points == tuple((i,) for i in range(5))
    assert [p[0] for p in sweep.parse_grid_option("data.n_samples=2:33:10").points] == [
        2, 12, 22, 32]
    assert [p[0] for p in sweep.parse_grid_option("model.eps=0.1:0.4:0.1").points] == [
        0.1, 0.2, 0.3]
    axis = sweep.parse_grid_option("model.norm=bn,ln, rms")
    assert [p[0] for p in axis.points] == ["bn", "ln", "rms"]
    assert [p[0] for p in sweep.parse_grid_option("model.affine=true,false").points] == [
        True, False]
    assert [p[0] for p in sweep.parse_grid_option("model.eps=1e-5,1.0e-3").points] == [
        "1e-5", 1e-3]  # YAML 1.1 reads 1e-5 as a string; the schema accepts it as a number
    flow = sweep.parse_grid_option("data.values=[[[1, 2]], [[3, 4]]]")
    assert [p[0] for p in flow.points] == [[[1, 2]], [[3, 4]]]
    with pytest.raises(ConfigError, match="empty"):
        sweep.parse_grid_option("seed=5:5")
    with pytest.raises(ConfigError, match="KEY=VALUES"):
        sweep.parse_grid_option("seed")


def test_product_order_and_labels() -> None:
    d = _axes("model.norm=bn,ln", "data.n_samples=2,8,32", "seed=0:2")
    trials = sweep.expand(d)
    assert len(trials) == d.size == 12
    assert [t.params for t in trials[:3]] == [
        {"model.norm": "bn", "data.n_samples": 2, "seed": 0},
        {"model.norm": "bn", "data.n_samples": 2, "seed": 1},
        {"model.norm": "bn", "data.n_samples": 8, "seed": 0}]
    assert trials[0].config.model.norm == "bn" and trials[0].config.data.n_samples == 2
    assert trials[0].dirname == "t000-bn_2_0"
    assert d.group_keys == ["model.norm", "data.n_samples"]
    assert len({t.hash for t in trials}) == 12


def test_yaml_block_zip_seeds_and_cli_override() -> None:
    raw = {"name": "z", "sweep": {
        "grid": {"model.norm": ["bn", "ln"], "data.n_samples": "2:4"},
        "zip": [{"model.in_features": [6, 12], "model.out_features": [4, 8]}],
        "seeds": 3}}
    d = sweep.definition(raw, [])
    assert d.keys == ["model.norm", "data.n_samples", "model.in_features",
                      "model.out_features", "seed"]
    trials = sweep.expand(d)
    assert len(trials) == 2 * 2 * 2 * 3
    pairs = {(t.config.model.in_features, t.config.model.out_features) for t in trials}
    assert pairs == {(6, 4), (12, 8)}  # zipped, not crossed
    assert sorted({t.config.seed for t in trials}) == [0, 1, 2]
    # --grid replaces the file's axis for the same key, in place; --seeds replaces seeds
    d2 = sweep.definition(raw, ["model.norm=rms"], seeds=2)
    assert d2.keys == d.keys and d2.size == 1 * 2 * 2 * 2


def test_bad_grids_are_reported_together() -> None:
    with pytest.raises(ConfigError) as exc:
        _axes("model.nrom=bn", "model=ln", "output.dir=x", "seed=0:2", "seed=3")
    text = "\n".join(exc.value.problems)
    assert "did you mean 'model.norm'" in text
    assert "model is a section" in text
    assert "output.dir cannot be swept" in text
    assert "seed is already swept" in text
    with pytest.raises(ConfigError, match="same number of values"):
        sweep.definition({"sweep": {"zip": [{"model.in_features": [1, 2],
                                             "model.out_features": [1]}]}}, [])
    with pytest.raises(ConfigError, match=r"unknown key.*did you mean 'seeds'"):
        sweep.definition({"sweep": {"seed": 3}}, [])
    with pytest.raises(ConfigError, match="nothing to sweep"):
        sweep.definition({}, [])
