"""Property test: whatever YAML document or override string arrives, the loader either
returns a Config or raises ConfigError - never anything else."""

from __future__ import annotations

from pathlib import Path

import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from lnexp.config import VALID_PATHS, load_config
from lnexp.errors import ConfigError
from lnexp.expect import METRICS, REDUCERS

KEYS = st.sampled_from(VALID_PATHS) | st.text(max_size=12)
EXPECT_KEYS = st.builds(lambda m, r: f"{m}.{r}", st.sampled_from(list(METRICS)),
                        st.sampled_from(REDUCERS)) | st.text(max_size=20)
SCALARS = (st.none() | st.booleans() | st.integers(min_value=-10**20, max_value=10**20)
           | st.floats(allow_nan=True, allow_infinity=True) | st.text(max_size=20)
           | st.sampled_from(["ln", "bn", "group", "none", "normal", "eval", "1e-5", "nan"]))
VALUES = st.recursive(SCALARS, lambda inner: st.lists(inner, max_size=4)
                      | st.dictionaries(KEYS | EXPECT_KEYS, inner, max_size=4), max_leaves=12)
SECTIONS = st.fixed_dictionaries({}, optional={
    "name": VALUES, "seed": VALUES, "sample_index": VALUES,
    "data": st.dictionaries(st.sampled_from(["n_samples", "distribution", "loc", "scale", "df",
                                             "values", "nope"]), VALUES, max_size=4),
    "model": st.dictionaries(st.sampled_from(["in_features", "out_features", "linear", "norm",
                                              "mode", "eps", "affine", "groups"]),
                             SCALARS, max_size=5),
    "output": st.dictionaries(st.sampled_from(["dir", "figures", "dpi"]), SCALARS, max_size=2),
    "limits": st.dictionaries(st.sampled_from(["max_memory_gb", "memory_fraction"]), SCALARS),
    "expect": VALUES | st.dictionaries(EXPECT_KEYS, st.dictionaries(
        st.sampled_from(["le", "ge", "lt", "gt", "approx", "tol", "x"]), SCALARS, max_size=3),
        max_size=3),
})
DOCUMENTS = (SECTIONS.map(lambda d: yaml.safe_dump(d, allow_unicode=True))
             | VALUES.map(lambda v: yaml.safe_dump(v, allow_unicode=True))
             | st.text(max_size=200))
OVERRIDES = st.lists(st.builds(lambda k, v: f"{k}={v}", KEYS, st.text(max_size=15))
                     | st.text(max_size=30), max_size=3)
EXPECTS = st.lists(st.builds(lambda k, op, v: f"{k} {op} {v}", EXPECT_KEYS,
                             st.sampled_from(["<=", ">=", "~=", "le", "approx", "=="]),
                             st.text(max_size=8)) | st.text(max_size=30), max_size=2)


@settings(max_examples=300, deadline=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture])
@given(text=DOCUMENTS, overrides=OVERRIDES, expects=EXPECTS)
def test_loader_raises_only_config_error(tmp_path: Path, text: str, overrides: list[str],
                                         expects: list[str]) -> None:
    # One file, rewritten per example, under pytest's tmp_path (nothing left in /tmp).
    path = tmp_path / "cfg.yaml"
    path.write_text(text, encoding="utf-8")
    try:
        load_config(path, overrides, expects)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
