"""lnexp/expect.py: grammar, reducers, comparators, evaluation on a metrics document."""

from __future__ import annotations

import math

import pytest

from lnexp import expect
from lnexp.config import Config, from_mapping
from lnexp.errors import ConfigError

DOC = {
    "stages": {"post_norm": {"per_sample": {"mean": [1e-8, -3e-8, 2e-8], "var": [0.9, 1.0, 1.1]},
                             "global": {"mean": 0.5, "nonfinite": 0}}},
    "sample": {"post_norm": {"var": None}},
    "numeric_trouble": {"post_norm": {"nonfinite": 0}},
}


@pytest.mark.parametrize(("values", "reducer", "want"), [
    ([1.0, -3.0, 2.0], "abs_max", 3.0), ([1.0, -3.0, 2.0], "min", -3.0),
    ([1.0, -3.0, 2.0], "max", 2.0), ([1.0, -3.0, 2.0], "mean", 0.0),
    ([1.0, -3.0, 2.0], "spread", 5.0), (4.0, "spread", 0.0), (-4.0, "abs_max", 4.0),
    ([1.0, -3.0, 2.0], "first", 1.0), ([1.0, -3.0, 2.0], "last", 2.0),
])
def test_reducers(values, reducer: str, want: float) -> None:
    assert expect.reduce(values, reducer) == pytest.approx(want)


@pytest.mark.parametrize("values", [None, [1.0, None], [], [math.inf]])
def test_missing_values_reduce_to_nan(values) -> None:
    assert math.isnan(expect.reduce(values, "max"))


@pytest.mark.parametrize(("op", "bound", "passed"), [
    ("le", 2.0, True), ("le", 1.9, False), ("lt", 2.0, False), ("ge", 2.0, True),
    ("gt", 2.0, False), ("approx", 2.0000001, True), ("approx", 2.1, False),
])
def test_compare(op: str, bound: float, passed: bool) -> None:
    assert expect.compare(2.0, op, bound) is passed
    assert expect.compare(math.nan, op, bound) is False


def test_evaluate_short_and_long_paths() -> None:
    results = expect.evaluate(DOC, {
        "post_norm.per_sample.mean.abs_max": {"le": 1e-6},
        "stages.post_norm.per_sample.var.min": {"ge": 0.95},
        "post_norm.per_sample.var.mean": {"approx": 1.0, "tol": 1e-9},
        "post_norm.global.mean.max": {"gt": 0, "lt": 1},
        "sample.post_norm.var.max": {"le": 2},
    })
    assert [(r["metric"], r["op"], r["passed"]) for r in results] == [
        ("post_norm.per_sample.mean", "le", True),
        ("stages.post_norm.per_sample.var", "ge", False),
        ("post_norm.per_sample.var", "approx", True),
        ("post_norm.global.mean", "lt", True),  # ops in the fixed order le ge lt gt approx
        ("post_norm.global.mean", "gt", True),
        ("sample.post_norm.var", "le", False),
    ]
    assert results[0]["path"] == "stages.post_norm.per_sample.mean"
    assert results[0]["value"] == pytest.approx(3e-8) and results[1]["value"] == 0.9
    assert results[5]["value"] is None and "NaN/Inf" in results[5]["note"]
    assert not expect.all_passed(results)


def test_metric_missing_from_document_fails() -> None:
    (r,) = expect.evaluate({}, {"post_norm.global.rms.max": {"le": 1}})
    assert r["passed"] is False and "not in this metrics.json" in r["note"]


@pytest.mark.parametrize(("text", "key", "bound"), [
    ("post_norm.per_sample.mean.abs_max <= 1e-6", "post_norm.per_sample.mean.abs_max",
     {"le": 1e-6}),
    ("a.max>=2", "a.max", {"ge": 2.0}),
    ("a.max gt -1", "a.max", {"gt": -1.0}),
    ("a.mean ~= 1 tol 0.01", "a.mean", {"approx": 1.0, "tol": 0.01}),
    ("a.mean approx 1 ± 0.01", "a.mean", {"approx": 1.0, "tol": 0.01}),
])
def test_parse_cli(text: str, key: str, bound: dict) -> None:
    assert expect.parse_cli(text) == (key, bound)


@pytest.mark.parametrize("text", ["a.max", "a.max == 1", "a.max <= x", "a.max <= 1 tol 2",
                                  "a.max <= nan", ""])
def test_parse_cli_rejects(text: str) -> None:
    with pytest.raises(ValueError):
        expect.parse_cli(text)


def test_schema_checks_expect_block() -> None:
    cfg = from_mapping({"expect": {"post_norm.per_sample.var.min": {"ge": "0.999"}}},
                       expectations=["post_norm.per_sample.var.min <= 1"])
    assert cfg.expect["post_norm.per_sample.var.min"].model_dump(exclude_none=True) == {
        "ge": 0.999, "le": 1.0}
    with pytest.raises(ConfigError) as exc:
        from_mapping({"expect": {"post_norm.per_sample.var.min": {"tol": 1},
                                 "post_norm.per_sample.var.max": {"le": "inf"},
                                 "post_norm.per_sample.var.mean": 3}})
    text = str(exc.value)
    assert "at least one comparator" in text and "expected a finite number" in text
    assert "expect.post_norm.per_sample.var.mean" in text
    assert len(exc.value.problems) == 3


def test_every_metric_path_exists_in_a_real_run() -> None:
    """The grammar and the metrics.json contract agree (every short path resolves): features
    with training, and a sequence with group norm for the axes only images and sequences
    have."""
    cfg = from_mapping({"data": {"n_samples": 4}, "model": {"in_features": 3,
                                                            "out_features": 2, "depth": 2},
                        "train": {"steps": 2, "batch_size": 2, "n_train": 8, "n_heldout": 4,
                                  "eval_every": 1}})
    doc = _metrics(cfg)
    seq = _metrics(from_mapping({"data": {"n_samples": 4, "layout": "sequence", "tokens": 3},
                                 "model": {"in_features": 3, "out_features": 4,
                                           "norm": "group", "groups": 2}}))
    attn = _metrics(from_mapping({"data": {"n_samples": 4, "layout": "sequence", "tokens": 3},
                                  "model": {"in_features": 4, "out_features": 4, "depth": 2,
                                            "block": "transformer", "heads": 2,
                                            "placement": "pre_residual"},
                                  "train": {"task": "retrieve", "steps": 2, "batch_size": 2,
                                            "n_train": 8, "n_heldout": 4}}))
    pixel = _metrics(from_mapping({"data": {"n_samples": 2, "layout": "image", "height": 3,
                                            "width": 3},
                                   "model": {"in_features": 2, "out_features": 4,
                                             "norm": "ln_pixel"}}))
    lm = _metrics(from_mapping({  # charlm + train.log_every: bits per char, diagnostics
        "data": {"n_samples": 2, "layout": "sequence", "tokens": 8, "source": "text"},
        "model": {"in_features": 8, "out_features": 8, "depth": 2, "block": "transformer",
                  "heads": 2, "placement": "pre_residual"},
        "train": {"task": "charlm", "steps": 2, "batch_size": 2, "n_train": 8,
                  "n_heldout": 4, "eval_every": 1, "log_every": 1}}))
    for short, path in expect.METRICS.items():
        if "bits_per_char" in path or ".diagnostics." in path:
            node = lm
            for part in path.split("."):
                node = node[part]
            # null: no block's max |x| passed 100x its median in two steps (the key is there)
            assert node is not None or short.endswith("first_massive_step"), short
            continue
        if path.startswith(("stages.input.per_group", "stages.input.per_pixel")):
            continue  # per_group / per_pixel are reported for the norm's stages only
        if ".per_pixel." in path:  # ln_pixel on images only
            node = pixel
            for part in path.split("."):
                node = node[part]
            assert node is not None, short
            continue
        if "attn_logit_max" in path:  # attention blocks only
            node = attn
            for part in path.split("."):
                node = node[part]
            assert node is not None and len(node) == 2, short
            continue
        if any(f".{a}." in path for a in ("per_token", "per_instance", "per_group")):
            node = seq
            for part in path.split("."):
                node = node[part]
            assert node is not None, short
            continue
        node = doc
        for part in path.split("."):
            node = node[part]
        assert node is not None or short.endswith("var_unbiased"), short


def test_metric_value_falls_back_to_the_summary_of_a_left_out_list() -> None:
    """Sweeps and `lnexp runs` read large runs' per-sample metrics from their summaries."""
    cfg = from_mapping({"data": {"n_samples": 20}, "output": {"per_sample_limit": 10}})
    doc = _metrics(cfg)
    assert doc["stages"]["post_norm"]["per_sample"]["var"] is None
    full = _metrics(from_mapping({"data": {"n_samples": 20}}))
    for key in ("post_norm.per_sample.var.spread", "post_norm.per_sample.mean.abs_max"):
        assert expect.metric_value(doc, key) == pytest.approx(expect.metric_value(full, key))


def _metrics(cfg: Config) -> dict:
    """metrics.json of a run of `cfg`, without writing it."""
    from lnexp import experiment, explain
    from lnexp.store.documents import metrics

    result = experiment.run(cfg)
    return metrics(result, explain.lines(result))


def test_layer_diagnostics_and_precision_are_metrics() -> None:
    for key in ("layers.sample_cosine.max", "layers.sample_spread.last",
                "layers.grad_over_weight.min", "precision.post_norm_max_abs_error.max"):
        assert expect.split_key(key)[1] == key.rpartition(".")[0]
