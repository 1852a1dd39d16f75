"""lnexp.data: explicit values, chunked draws equal one draw, the tutorial's randn."""

from __future__ import annotations

import torch

from lnexp.config import DataConfig
from lnexp.data import make_inputs


def test_explicit_values_are_returned_as_float32_rows() -> None:
    cfg = DataConfig(n_samples=2, values=[[1, 2, 3], [4, 5, 6]])
    x = make_inputs(cfg, 3)
    assert x.dtype == torch.float32 and x.tolist() == [[1, 2, 3], [4, 5, 6]]
    assert make_inputs(cfg, 3, rows=1, start=1).tolist() == [[4, 5, 6]]


def test_default_normal_is_the_tutorials_randn() -> None:
    torch.manual_seed(0)
    expected = torch.randn(5, 4)
    torch.manual_seed(0)
    assert torch.equal(make_inputs(DataConfig(n_samples=5), 4), expected)


def test_two_chunks_of_whole_16_value_blocks_continue_one_draw() -> None:
    cfg = DataConfig(n_samples=8, distribution="uniform", loc=1.0, scale=2.0)
    torch.manual_seed(3)
    whole = make_inputs(cfg, 4)
    torch.manual_seed(3)
    parts = torch.cat([make_inputs(cfg, 4, rows=4, start=0), make_inputs(cfg, 4, rows=4,
                                                                         start=4)])
    assert torch.equal(whole, parts)
