"""The block stack: layouts, widths, init, and depth 1 being the tutorial's model."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from lnexp.config import from_mapping
from lnexp.errors import ConfigError
from lnexp.models import build_model


def _model(layout: str = "features", **model):
    return build_model(from_mapping({"data": {"layout": layout}, "model": model}).model, layout)


def test_depth_one_is_the_tutorials_linear_then_norm():
    torch.manual_seed(0)
    m = _model()
    torch.manual_seed(0)
    ref = nn.Linear(100, 50)
    assert len(m.blocks) == 1 and isinstance(m.blocks[0].act, nn.Identity)
    torch.testing.assert_close(m.blocks[0].linear.weight, ref.weight, rtol=0, atol=0)
    x = torch.randn(4, 100)
    torch.testing.assert_close(m(x), nn.LayerNorm(50)(ref(x)), rtol=0, atol=0)


@pytest.mark.parametrize("placement", ["post", "pre", "pre_residual", "post_residual"])
def test_every_placement_runs_and_traces_each_block(placement):
    m = _model(depth=4, in_features=16, hidden=16, out_features=16, activation="relu",
               placement=placement, norm="ln")
    tr = m.trace(torch.randn(8, 16))
    assert tr.output.shape == (8, 16) and len(tr.blocks) == 4 and len(m.linears()) == 4
    if placement in ("pre", "pre_residual"):
        assert tr.pre.shape == (8, 16)  # the first norm sees the input


def test_post_residual_output_is_normalized_and_pre_residual_ends_with_a_norm():
    x = torch.randn(8, 16)
    post = _model(depth=3, in_features=16, hidden=16, out_features=16,
                  placement="post_residual", affine=False)(x)
    pre = _model(depth=3, in_features=16, hidden=16, out_features=16,
                 placement="pre_residual", affine=False)(x)
    for out in (post, pre):
        torch.testing.assert_close(out.var(dim=1, correction=0), torch.ones(8), atol=1e-3,
                                   rtol=0)


def test_widths_follow_in_hidden_out():
    m = _model(depth=3, in_features=10, hidden=7, out_features=5)
    assert [tuple(lin.weight.shape) for lin in m.linears()] == [(7, 10), (7, 7), (5, 7)]


@pytest.mark.parametrize(("init", "gain", "std"), [("kaiming", 2 ** 0.5, (2 / 400) ** 0.5),
                                                   ("xavier", 1.0, (2 / 800) ** 0.5)])
def test_init_sets_the_weight_scale_and_zero_bias(init, gain, std):
    torch.manual_seed(0)
    m = _model(depth=2, in_features=400, hidden=400, out_features=400, init=init, gain=gain)
    for lin in m.linears():
        assert float(lin.weight.detach().std()) == pytest.approx(std, rel=0.02)
        assert float(lin.bias.detach().abs().max()) == 0.0


def test_residual_needs_equal_widths_and_linear_off_needs_depth_one():
    with pytest.raises(ConfigError, match="must be equal"):
        from_mapping({"model": {"placement": "pre_residual", "depth": 2}})
    with pytest.raises(ConfigError, match=r"needs model\.depth: 1"):
        from_mapping({"model": {"linear": False, "depth": 2, "out_features": 100}})


def test_group_count_must_divide_every_normed_width():
    with pytest.raises(ConfigError, match="do not divide 7"):
        from_mapping({"model": {"norm": "group", "groups": 5, "depth": 2, "hidden": 7}})


def test_ffn2_block_is_linear_act_linear_and_the_residual_adds_it_without_a_trailing_act():
    torch.manual_seed(0)
    m = _model(depth=2, in_features=8, hidden=8, out_features=8, activation="relu",
               placement="post_residual", block="ffn2", ffn_width=12, norm="ln")
    b = m.blocks[0]
    assert [tuple(lin.weight.shape) for lin in b.linears()] == [(12, 8), (8, 12)]
    x = torch.randn(5, 8)
    ref = nn.functional.layer_norm(x + b.linear.fc2(torch.relu(b.linear.fc1(x))), (8,))
    torch.testing.assert_close(b(x)[0], ref)
    assert m.linear_names() == ["block1.fc1", "block1.fc2", "block2.fc1", "block2.fc2"]


@pytest.mark.parametrize("placement", ["pre_residual", "post_residual"])
def test_transformer_block_mixes_positions_and_keeps_the_sequence_shape(placement):
    torch.manual_seed(0)
    m = _model("sequence", depth=3, in_features=16, hidden=16, out_features=16,
               activation="relu", placement=placement, block="transformer", heads=4,
               init="xavier")
    x = torch.randn(2, 5, 16)
    tr = m.trace(x)
    assert tr.output.shape == (2, 5, 16) and len(tr.blocks) == 3
    assert len(m.block_linears()[0]) == 6  # q, k, v, o, fc1, fc2
    y = x.clone()
    y[:, 0] = torch.randn(2, 16)  # changing one position changes the output at another
    assert not torch.allclose(m(y)[:, -1], m(x)[:, -1])


def test_transformer_needs_a_residual_placement_and_heads_dividing_the_width():
    with pytest.raises(ConfigError, match="pre_residual"):
        from_mapping({"model": {"block": "transformer", "in_features": 16, "out_features": 16}})
    with pytest.raises(ConfigError, match="heads"):
        from_mapping({"model": {"block": "transformer", "placement": "pre_residual",
                                "in_features": 18, "out_features": 18, "heads": 4}})
