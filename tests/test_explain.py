"""lnexp.explain: the plain-language lines match the statistics they describe."""

from __future__ import annotations

import pytest

from lnexp import explain, registry
from lnexp.compare import compare
from lnexp.config import from_mapping
from lnexp.experiment import run

SMALL = {"data": {"n_samples": 16}, "model": {"in_features": 8, "out_features": 8}}


def test_standardizes_in_words() -> None:
    assert registry.standardizes(["per_feature", "per_sample"]) == "features and samples"
    assert registry.standardizes(["per_feature"]) == "features"
    assert registry.standardizes(["per_sample"]) == "samples"
    assert registry.standardizes([]) == "neither"
    # the finest axis first: the norm's own, then what follows from it
    assert registry.standardizes(["per_sample", "per_group"]) == "groups and samples"
    assert (registry.standardizes(["per_feature", "per_sample", "per_instance"])
            == "instances, features and samples")


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


# --------------------------------------------------------------------------- sentence = table

LAYOUT_CFG = {
    "features": {"data": {"n_samples": 16}, "model": {"in_features": 8, "out_features": 8}},
    "image": {"data": {"layout": "image", "n_samples": 4, "height": 4, "width": 4},
              "model": {"in_features": 3, "out_features": 8}},
    "sequence": {"data": {"layout": "sequence", "n_samples": 4, "tokens": 5},
                 "model": {"in_features": 6, "out_features": 8}},
}
UNITS = {"per_feature": ("every feature", "every channel"), "per_sample": ("every sample",)}


def _claimed(sentence: str) -> set[str]:
    """The axes a sentence says are standardized: the part before 'not standardized' names
    them as '(per_group)' / 'so do per_sample and ...' or, on the features layout, as 'every
    sample' / 'every feature'."""
    from lnexp.registry import AXES

    head = sentence.split("not standardized")[0]
    if head.lower().startswith(("no axis", "here no axis", "nothing", "here nothing",
                                "here neither")):
        return set()
    claimed = {a for a in AXES if f"({a})" in head}
    if "so do " in head:
        so_do = head.split("so do ")[1].split(", which")[0]
        claimed |= {a for a in AXES if a in so_do.replace(" and ", " ").split()}
    if not claimed:
        claimed = {a for a, words in UNITS.items() if any(w in head.lower() for w in words)}
    return claimed


@pytest.mark.parametrize("layout", list(LAYOUT_CFG))
def test_the_sentence_names_the_axes_of_the_verdict_table(layout: str) -> None:
    # issue 19 #3: group on features read "neither axis" under a table saying "groups and
    # samples". Every norm, run and compare: what the prose says = what the table says.
    from lnexp.compare import select
    from lnexp.norms import NORMS

    base = LAYOUT_CFG[layout]
    from lnexp.norms import defined_on

    names = defined_on(layout)  # every norm defined on this layout
    assert len(names) >= len(NORMS) - 1 and select(None, layout) == [
        n for n in names if n in ("bn", "ln", "rms", "group", "instance", "none")]
    cmp = compare(from_mapping(base), names)
    by_name = dict(explain.compare_lines(cmp))
    for o in cmp.outcomes:
        assert o.result is not None, o.why
        table = set(o.result.standardized_axes)
        assert o.standardizes == registry.standardizes(sorted(table))
        said = by_name[o.name][0].split(": here ", 1)[1]
        assert _claimed("here " + said) == table, (layout, o.name, said, table)
        cfg = from_mapping({**base, "model": {**base["model"], "norm": o.name}})
        result = run(cfg)
        first = explain.lines(result)[0]
        assert _claimed(first) == set(result.standardized_axes), (layout, o.name, first)
    assert [o.name for o in cmp.outcomes] == names
