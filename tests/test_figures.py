"""Figures are checked by reading the PNG back, not by trusting that savefig ran."""

from __future__ import annotations

from pathlib import Path

import matplotlib.image as mpimg
import numpy as np
import pytest

from lnexp import figures
from lnexp.config import from_mapping
from lnexp.experiment import run
from lnexp.figures.common import POST, PRE, bin_edges
from lnexp.store.figures import save_figure

# The figures of every run (layers and training need depth > 1 / a train: block).
SNAPSHOT_FIGURES = ["overview", "heatmap"]


def _read(path: Path) -> np.ndarray:
    img = mpimg.imread(path)
    assert img.ndim == 3
    return img[..., :3]


# group: its third overview column (per_group) once had no title on the features layout
# (issue 19 #2: overview.png missing for group)
@pytest.mark.parametrize("norm", ["ln", "bn", "group"])
@pytest.mark.parametrize("name", SNAPSHOT_FIGURES)
def test_figures_render_readable_non_blank_pngs(tmp_path, name, norm):
    result = run(from_mapping({"model": {"norm": norm}}))
    path = tmp_path / f"{name}.png"
    save_figure(figures.FIGURES[name](result), path, dpi=100)
    img = _read(path)
    h, w = img.shape[:2]
    assert w >= 1400 and h >= 600, "big enough to read at 100% zoom"
    drawn = ~(img > 0.97).all(axis=2)
    assert drawn.mean() > 0.10, "not blank"
    if name == "overview":  # both stages drawn: blue before, green after
        # group's third column is ~500 (sample, group) points: lines, few solid markers
        least = 0.002 if norm == "group" else 0.005
        for colour in (PRE, POST):
            assert _share_of(img, colour) > least, colour
    else:  # the diverging colormap: clearly red and clearly blue cells
        red = (img[..., 0] > 0.6) & (img[..., 2] < 0.4)
        blue = (img[..., 2] > 0.6) & (img[..., 0] < 0.4)
        assert red.mean() > 0.01 and blue.mean() > 0.01


def _share_of(img: np.ndarray, hex_colour: str) -> float:
    """Share of pixels within a small distance of a colour (alpha blending tolerated)."""
    rgb = np.array([int(hex_colour[i:i + 2], 16) / 255 for i in (1, 3, 5)])
    return float((np.abs(img - rgb).max(axis=2) < 0.12).mean())


def test_figures_handle_a_single_sample_and_nan(tmp_path):
    result = run(from_mapping({"data": {"values": [[2, 3, 5, 1, 4]]},
                               "model": {"linear": False}}))
    for name in SNAPSHOT_FIGURES:
        save_figure(figures.FIGURES[name](result), tmp_path / f"{name}.png", dpi=60)
        assert _read(tmp_path / f"{name}.png").std() > 0.05


@pytest.mark.parametrize("arrays, lo, hi", [
    ([np.array([3e38, -3e38], dtype=np.float32)], -3e38, 3e38),  # float32 range overflowed
    ([np.array([1.7e308, -1.7e308])], -1.7e308, 1.7e308),          # float64 width overflows
    ([np.full(10, 7.0)], 6.5, 7.5),                                # a constant
    ([np.array([1e30])], 1e30 - 1e27, 1e30 + 1e27),                # one huge value
    ([np.array([np.nan, np.inf])], -0.5, 0.5),                     # nothing finite
    ([np.empty(0), np.array([2.0, 4.0])], 2.0, 4.0),
])
def test_bin_edges_for_any_finite_data(arrays, lo: float, hi: float):
    edges = bin_edges(arrays, 40)
    assert len(edges) == 41 and np.all(np.isfinite(edges)) and np.all(np.diff(edges) > 0)
    assert edges[0] == pytest.approx(lo) and edges[-1] == pytest.approx(hi)


@pytest.mark.parametrize("sets", [
    {"data": {"scale": 1e38}, "model": {"linear": False, "out_features": 100}},
    {"data": {"values": [[3e38, -3e38, 0.0]]}, "model": {"linear": False, "norm": "none"}},
    {"data": {"values": [[5.0]]}, "model": {"linear": False}},
    {"data": {"values": [[1.0, 1.0, 1.0]] * 3}, "model": {"linear": False, "norm": "bn"}},
])
@pytest.mark.filterwarnings("ignore::RuntimeWarning")  # matplotlib's colour scaling near 3e38
def test_figures_draw_huge_constant_and_single_values(tmp_path, sets):
    result = run(from_mapping(sets))
    for name in ("overview", "heatmap"):
        save_figure(figures.FIGURES[name](result), tmp_path / f"{name}.png", 40)
        assert _read(tmp_path / f"{name}.png").size
