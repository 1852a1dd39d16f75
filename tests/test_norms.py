"""The norm registry: one call shape, documented semantics, clear errors."""

from __future__ import annotations

import pytest
import torch

from lnexp import norms
from lnexp.errors import NormError


@pytest.mark.parametrize("name", norms.names())
def test_every_norm_maps_n_by_c_to_n_by_c(name):
    layer = norms.create(name, 6, eps=1e-5, affine=True, groups=3)
    x = torch.randn(4, 6)
    assert layer(x).shape == (4, 6)


def test_unknown_norm_lists_the_valid_ones():
    with pytest.raises(NormError, match=r"unknown norm 'lnn'.*bn, ln, rms.*did you mean 'ln'"):
        norms.get("lnn")


@pytest.mark.parametrize(("features", "groups"), [(50, 5), (64, 8), (7, 1), (1, 1), (12, 3)])
def test_default_groups(features, groups):
    assert norms.default_groups(features) == groups


def test_non_dividing_groups_name_both_numbers():
    with pytest.raises(NormError, match="7 groups do not divide 50 features"):
        norms.resolve_groups(50, 7)


def test_instance_norm_normalizes_each_sample_over_its_features():
    """Not PyTorch's unbatched reading of 2-D input: each row is standardized on its own."""
    x = torch.randn(5, 8) * 3 + 1
    y = norms.create("instance", 8, eps=0.0, affine=False)(x)
    torch.testing.assert_close(y.mean(dim=1), torch.zeros(5), atol=1e-5, rtol=0)
    torch.testing.assert_close(y.var(dim=1, correction=0), torch.ones(5), atol=1e-4, rtol=0)
    # A single row gives the same result alone as in the batch: samples are independent.
    torch.testing.assert_close(norms.create("instance", 8, eps=0.0, affine=False)(x[:1]), y[:1])


def test_group_with_one_group_equals_layer_norm_without_affine():
    x = torch.randn(4, 10)
    g = norms.create("group", 10, groups=1, affine=False)(x)
    ln = norms.create("ln", 10, affine=False)(x)
    torch.testing.assert_close(g, ln)
