"""The inspect run folder (inspect.json, CSVs, figures read back) and the rich table."""

from __future__ import annotations

import csv
import json
import re
from pathlib import Path

import numpy as np
import pytest
from matplotlib.image import imread
from rich.console import Console

from lnexp.inspect.core import measure
from lnexp.inspect.files import dumps, write_folder
from lnexp.inspect.inputs import RandomSource
from lnexp.inspect.options import InspectOptions
from lnexp.inspect.table import render
from tests.test_inspect_core import ChannelNet, Tiny, loaded


@pytest.fixture(scope="module")
def outcome():
    return measure(loaded(ChannelNet().eval()), RandomSource((6, 3, 5, 5), 0),
                   InspectOptions(batch_size=3))


def test_folder_files(outcome, tmp_path: Path) -> None:
    doc = write_folder(outcome, tmp_path)
    on_disk = json.loads((tmp_path / "inspect.json").read_text())
    assert on_disk == json.loads(json.dumps(doc))
    assert on_disk["schema_version"] == 1 and [x["name"] for x in on_disk["layers"]] == \
        ["bn", "scale"]
    rows = list(csv.DictReader((tmp_path / "layers.csv").open()))
    assert [r["name"] for r in rows] == ["bn", "scale"]
    assert float(rows[0]["per_token_sqnr_db"]) == pytest.approx(
        outcome.layers[0].quant.per_token_sqnr_db)
    dims = list(csv.DictReader((tmp_path / "dims.csv").open()))
    assert len(dims) == 2 * 2 * 4  # layers x stages x channels
    assert float(dims[0]["absmax"]) == outcome.layers[0].pre.per_dim.absmax[0]
    assert not list(tmp_path.glob(".*.tmp"))  # atomic writes leave no temp files


def test_figures_are_real_pictures(outcome, tmp_path: Path) -> None:
    write_folder(outcome, tmp_path, dpi=60)
    names = sorted(p.name for p in (tmp_path / "figures").iterdir())
    assert names == ["absmax.png", "batchnorm.png", "kurtosis.png", "s_curves.png",
                     "token_variance.png", "weights.png"]  # a BN model
    for name in names:
        img = imread(tmp_path / "figures" / name)
        assert img.shape[0] > 150 and img.shape[1] > 400, name
        rgb = img[..., :3]
        assert rgb.std() > 0.05, f"{name} looks blank"
        assert (rgb < 0.9).mean() > 0.01, f"{name} is nearly all white"


def test_no_figures(outcome, tmp_path: Path) -> None:
    write_folder(outcome, tmp_path, figures=False)
    assert not (tmp_path / "figures").exists() and (tmp_path / "inspect.json").is_file()


def test_dumps_keeps_number_lists_on_one_line() -> None:
    doc = {"a": [1.5, -2e-33, None, 3], "b": {"c": ["x", "y"]}, "d": []}
    text = dumps(doc)
    assert json.loads(text) == doc
    assert '"a": [1.5, -2e-33, null, 3]' in text


def test_table_and_notes() -> None:
    out = measure(loaded(Tiny()), RandomSource((4, 3, 6), 0), InspectOptions())
    console = Console(width=200, record=True)
    render(console, out, "outputs/x")
    text = console.export_text()
    assert "ln" in text and "RMSNorm" in text and "inspect folder: outputs/x" in text
    assert "int8 of" in text  # a finding line
    assert "BN train" not in text  # no BatchNorm, no column


def test_table_with_batchnorm(outcome) -> None:
    console = Console(width=200, record=True)
    render(console, outcome)
    text = console.export_text()
    assert "BN train" in text and "%" in text
    assert "predictions change" in text


def test_weights_figure_marks_dead_gamma() -> None:
    from lnexp.inspect.figures import weight_profile

    model = Tiny()
    out = measure(loaded(model), RandomSource((4, 3, 6), 0), InspectOptions())
    fig = weight_profile(out)
    texts = [t.get_text() for ax in fig.axes for t in ax.texts]
    assert "γ[3]≈0" in texts  # rms.weight[3] = 1e-9
    assert np.isfinite(out.layers[1].weight.values).all()


def test_expectations_on_inspect_json(outcome) -> None:
    from lnexp.inspect.expect import evaluate
    from lnexp.inspect.outcome import document

    doc = json.loads(json.dumps(document(outcome)))
    res = evaluate(doc, ["layers.*.quant.per_token_sqnr_db.min >= 10",
                         "layers[scale].weight.largest.0.value.max approx 2 tol 1e-9",
                         "layers.0.pre.outliers.*.ratio.max < 1"])
    assert [r["passed"] for r in res] == [True, True, False]
    assert res[0]["value"] == pytest.approx(min(r.quant.per_token_sqnr_db
                                                for r in outcome.layers))


@pytest.mark.parametrize(("text", "expected"), [
    ("layers.0.pre.outlier.0.ratio.max >= 1", "did you mean 'outliers'"),
    ("layers[sclae].eps.max >= 0", "did you mean 'scale'"),
    ("layers.9.eps.max >= 0", "use an index 0..1"),
    ("layers.0.pre.max >= 0", "not a number"),
    ("layers.0.eps >= 0", "end the key with a reducer"),
    ("layers.0.eps.max >>= 0", "expected 'PATH.REDUCER OP VALUE'"),
])
def test_bad_expectations(outcome, text: str, expected: str) -> None:
    from lnexp.inspect.errors import InspectError
    from lnexp.inspect.expect import evaluate
    from lnexp.inspect.outcome import document

    with pytest.raises(InspectError, match=re.escape(expected)):
        evaluate(json.loads(json.dumps(document(outcome))), [text])
