"""lnexp.tables: renderers take a Console and show what the results hold."""

from __future__ import annotations

import math

from rich.console import Console

from lnexp import tables
from lnexp.compare import compare
from lnexp.config import from_mapping
from lnexp.experiment import run

SMALL = {"data": {"n_samples": 8}, "model": {"in_features": 6, "out_features": 4}}


def _text(renderable: object) -> str:
    console = Console(width=160, record=True, file=open("/dev/null", "w"))  # noqa: SIM115
    console.print(renderable)
    return console.export_text()


def test_fmt() -> None:
    assert tables.fmt(0.0) == "0" and tables.fmt(1.5) == "1.5000"
    assert tables.fmt(1e-7) == "1.000e-07" and tables.fmt(math.nan) == "n/a"
    assert tables.fmt(math.inf) == "inf" and tables.fmt(None) == "n/a"


def test_summary_table_shows_both_stages() -> None:
    text = _text(tables.summary_table(run(from_mapping(SMALL))))
    assert "before ln" in text and "after ln" in text and "standardized" in text


def test_compare_table_has_one_column_per_norm() -> None:
    text = _text(tables.compare_table(compare(from_mapping(SMALL), ["bn", "rms"])))
    assert "BatchNorm" in text and "RMSNorm" in text and "standardizes" in text


def test_expectations_table_uses_the_registry_symbols() -> None:
    results = [{"metric": "post_norm.global.mean", "reducer": "abs_max", "op": "approx",
                "bound": 0.0, "tol": 1e-3, "value": 2e-4, "passed": True, "note": None},
               {"metric": "post_norm.global.var", "reducer": "max", "op": "le", "bound": 0.5,
                "tol": None, "value": None, "passed": False, "note": "NaN"}]
    text = _text(tables.expectations_table(results))
    assert "~= 0 ± 0.001" in text and "<= 0.5" in text and "1 of 2 failed" in text
    assert "NaN/Inf" in text


def test_sweep_cells_are_median_and_range_like_the_figure() -> None:
    # issue 19 #4: the table said mean ± std under a figure of median and min..max
    from lnexp.numbers import median_range

    stat = {"mean": 2.0, "std": 1.7, "n": 3, "median": 1.0, "min": 0.5, "max": 4.5}
    assert median_range(stat, tables.fmt) == "1.0000 [0.5000, 4.5000]"
    assert median_range({**stat, "min": 1.0, "max": 1.0}, tables.fmt) == "1.0000"
    assert median_range(None, tables.fmt) == "n/a"
    assert median_range({"mean": 2.0, "std": None, "n": 1}, tables.fmt) == "2.0000"
    t = tables.sweep_summary_table([{"model.norm": "ln", "completed": 3, "failed": 0,
                                     "metrics": {"m.x": stat}}], ["model.norm"], ["m.x"], "t")
    out = Console(width=100, record=True)
    out.print(t)
    text = out.export_text()
    assert "1 [0.5, 4.5]" in text and "±" not in text
