"""lnexp.explain: the plain-language lines match the statistics they describe."""

from __future__ import annotations

from lnexp import explain
from lnexp.compare import compare
from lnexp.config import from_mapping
from lnexp.experiment import run

SMALL = {"data": {"n_samples": 16}, "model": {"in_features": 8, "out_features": 8}}


def test_standardizes_in_words() -> None:
    assert explain.standardizes(True, True) == "features and samples"
    assert explain.standardizes(True, False) == "features"
    assert explain.standardizes(False, True) == "samples"
    assert explain.standardizes(False, False) == "neither"


def test_layernorm_standardizes_samples_and_batchnorm_features() -> None:
    ln = explain.lines(run(from_mapping(SMALL)))
    assert ln[0].startswith("Every sample now has mean 0, variance 1 across its 8 features")
    bn = explain.lines(run(from_mapping({**SMALL, "model": {**SMALL["model"], "norm": "bn"}})))
    assert bn[0].startswith("Every feature now has mean 0, variance 1 across the 16 samples")


def test_none_says_nothing_was_normalized() -> None:
    out = explain.lines(run(from_mapping({**SMALL, "model": {**SMALL["model"],
                                                             "norm": "none"}})))
    assert out[0] == "Nothing was normalized: the output equals the input."


def test_compare_lines_one_entry_per_norm_in_order() -> None:
    lines = explain.compare_lines(compare(from_mapping(SMALL), ["rms", "ln"]))
    assert [name for name, _ in lines] == ["rms", "ln"]
    assert any("does not subtract the mean" in extra for extra in lines[0][1][1:])


def test_trouble_line_names_the_first_stage() -> None:
    clean = {"nan": 0, "inf": 0, "nonfinite": 0}
    trouble = {"first_stage": "post_norm", "input": clean, "pre_norm": clean,
               "post_norm": {"nan": 3, "inf": 0, "nonfinite": 3}}
    assert explain.trouble_line(trouble) == ("NaN/Inf first appears in post_norm: input clean, "
                                             "pre_norm clean, post_norm 3 NaN")
