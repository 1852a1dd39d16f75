"""The norm registry: one call shape, documented semantics, clear errors."""

from __future__ import annotations

import pytest
import torch

from lnexp import norms
from lnexp.errors import NormError


@pytest.mark.parametrize(("name", "layout"), [
    (name, layout) for layout in ("features", "image", "sequence")
    for name in norms.defined_on(layout)])
def test_every_norm_keeps_its_layouts_shape(name, layout):
    layer = norms.create(name, 6, eps=1e-5, affine=True, groups=3, layout=layout)
    shape = {"features": (4, 6), "image": (4, 6, 3, 5), "sequence": (4, 7, 6)}[layout]
    assert layer(torch.randn(shape)).shape == shape


def test_instance_is_not_defined_on_features_and_says_why():
    reason = norms.get("instance").not_defined_on("features")
    assert reason and "nothing to normalize over" in reason
    assert norms.defined_on("features") == ["bn", "ln", "rms", "group", "none", "dyt",
                                            "ln_pixel", "batch_renorm", "frn"]
    assert norms.defined_on("image") == norms.defined_on("sequence") == norms.names()
    # compare's default stays the six classic norms (its speed on the default config)
    assert norms.compare_default("features") == ["bn", "ln", "rms", "group", "none"]
    assert norms.compare_default("image") == ["bn", "ln", "rms", "group", "instance", "none"]


def test_unknown_norm_lists_the_valid_ones():
    with pytest.raises(NormError, match=r"unknown norm 'lnn'.*bn, ln, rms.*did you mean 'ln'"):
        norms.get("lnn")


@pytest.mark.parametrize(("features", "groups"), [(50, 5), (64, 8), (7, 1), (1, 1), (12, 3)])
def test_default_groups(features, groups):
    assert norms.default_groups(features) == groups


def test_non_dividing_groups_name_both_numbers():
    with pytest.raises(NormError, match="7 groups do not divide 50 features"):
        norms.resolve_groups(50, 7)


def test_instance_norm_normalizes_each_channel_over_its_positions():
    """Images: InstanceNorm2d; sequences: InstanceNorm1d on (N, C, T), each (n, c) alone."""
    x = torch.randn(5, 7, 4) * 3 + 1  # (N, T, C)
    y = norms.create("instance", 4, eps=0.0, affine=False, layout="sequence")(x)
    torch.testing.assert_close(y.mean(dim=1), torch.zeros(5, 4), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=1, correction=0), torch.ones(5, 4), atol=1e-4, rtol=0)
    # A single sample gives the same result alone as in the batch: samples are independent.
    torch.testing.assert_close(
        norms.create("instance", 4, eps=0.0, affine=False, layout="sequence")(x[:1]), y[:1])


def test_group_with_one_group_equals_layer_norm_without_affine():
    x = torch.randn(4, 10)
    g = norms.create("group", 10, groups=1, affine=False)(x)
    ln = norms.create("ln", 10, affine=False)(x)
    torch.testing.assert_close(g, ln)
