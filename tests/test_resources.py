"""The resource guard: estimates follow the run's layout and refuse before allocating."""

from __future__ import annotations

import pytest

from lnexp import resources
from lnexp.config import from_mapping, load_config
from lnexp.errors import ConfigError
from tests.conftest import CONFIGS

GIB = 1024**3


def test_streamed_snapshot_memory_does_not_grow_with_the_activation_matrix():
    small = resources.estimate(from_mapping({"data": {"n_samples": 10_000}}))
    big = resources.estimate(from_mapping({"data": {"n_samples": 1_000_000},
                                           "model": {"out_features": 1024}}))
    assert big["peak"] < 0.2 * 1_000_000 * 1024 * 4  # far below one 3.8 GiB matrix
    assert big["peak"] > small["peak"]  # per-sample statistics still grow with N


def test_deep_models_count_every_block():
    shallow = resources.estimate(from_mapping({"data": {"n_samples": 50_000},
                                               "model": {"depth": 2, "out_features": 100}}))
    deep = resources.estimate(from_mapping({"data": {"n_samples": 50_000},
                                            "model": {"depth": 40, "out_features": 100}}))
    assert deep["block activations"] > 15 * shallow["block activations"]  # 40 vs 2 blocks
    assert deep["peak"] > 2 * GIB  # measured: 2.4 GiB peak RSS for this run


def test_training_data_is_counted_and_refused_above_the_limit():
    cfg = load_config(CONFIGS / "batch_size.yaml",
                      ["train.n_train=20000000", "limits.max_memory_gb=1"])
    with pytest.raises(ConfigError, match=r"resource guard: .*train\.n_train"):
        resources.check(cfg)
