"""stats: float64 accumulation, biased vs unbiased, verdicts."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from lnexp import stats


def test_biased_and_unbiased_variance_are_labelled_correctly():
    x = torch.tensor([[2.0, 3.0, 5.0, 1.0, 4.0]])
    s = stats.axis_stats(x, 1)
    assert s.count == 5
    assert s.mean[0] == 3.0
    assert s.var[0] == 2.0  # sum of squared deviations 10, / n
    assert s.var_unbiased[0] == 2.5  # / (n - 1)
    assert s.std[0] == pytest.approx(np.sqrt(2.0))


def test_large_offset_does_not_cancel_digits():
    """float32 one-pass E[x^2] - E[x]^2 is badly wrong at loc 1e4; lnexp matches float64."""
    g = torch.Generator().manual_seed(0)
    x = (1.0e4 + 1e-2 * torch.randn(2000, 8, generator=g)).float()
    ref = x.double().var(dim=0, correction=0).numpy()
    naive = ((x * x).mean(dim=0) - x.mean(dim=0) ** 2).numpy()
    assert np.abs(naive - ref).max() > 10 * ref.max()  # the naive way really fails here
    np.testing.assert_allclose(stats.axis_stats(x, 0).var, ref, rtol=1e-9)


def test_global_stats_and_nonfinite_count():
    x = torch.tensor([[1.0, float("nan")], [3.0, 4.0]])
    g = stats.global_stats(x)
    assert g.nonfinite == 1 and np.isnan(g.mean)
    g = stats.global_stats(torch.tensor([[1.0, 2.0], [3.0, 4.0]]))
    assert (g.count, g.mean, g.var, g.min, g.max) == (4, 2.5, 1.25, 1.0, 4.0)
    assert g.rms == pytest.approx(np.sqrt(7.5))


def test_unbiased_variance_of_one_value_is_nan():
    s = stats.axis_stats(torch.ones(1, 3), 0)
    assert np.isnan(s.var_unbiased).all() and (s.var == 0).all()


def test_verdict_uses_the_tolerance():
    x = torch.randn(200, 10, generator=torch.Generator().manual_seed(1))
    z = (x - x.mean(0)) / x.std(0, correction=0)
    v = stats.verdict(stats.axis_stats(z, 0))
    assert v.standardized and v.centred and v.unit_variance
    v = stats.verdict(stats.axis_stats(z * 1.01, 0))
    assert v.centred and not v.unit_variance


# --------------------------------------------------------------------------- streaming

@pytest.mark.parametrize("chunk", [1, 7, 64, 1000])
def test_chunked_statistics_equal_the_whole_tensor_float64_reference(chunk):
    g = torch.Generator().manual_seed(3)
    x = (5.0 + 2.0 * torch.randn(300, 13, generator=g)).float()
    st = stats.StreamingStats.of(x, chunk_rows=chunk)
    ref = x.double()
    for dim, axis in ((0, st.per_feature), (1, st.per_sample)):
        var, mean = torch.var_mean(ref, dim=dim, correction=0)
        np.testing.assert_allclose(axis.mean, mean.numpy(), rtol=1e-9)
        np.testing.assert_allclose(axis.var, var.numpy(), rtol=1e-9)
        np.testing.assert_allclose(axis.var_unbiased,
                                   torch.var(ref, dim=dim, correction=1).numpy(), rtol=1e-9)
    var, mean = torch.var_mean(ref, correction=0)
    assert st.global_.mean == pytest.approx(float(mean), rel=1e-9)
    assert st.global_.var == pytest.approx(float(var), rel=1e-9)
    assert st.global_.rms == pytest.approx(float(ref.pow(2).mean().sqrt()), rel=1e-9)
    assert (st.global_.min, st.global_.max) == (float(ref.min()), float(ref.max()))


def test_chunked_statistics_stay_exact_with_a_large_offset():
    g = torch.Generator().manual_seed(4)
    x = (1.0e4 + 1e-2 * torch.randn(5000, 4, generator=g)).float()
    ref = x.double().var(dim=0, correction=0).numpy()
    st = stats.StreamingStats.of(x, chunk_rows=17)
    np.testing.assert_allclose(st.per_feature.var, ref, rtol=1e-9)
    assert st.global_.var == pytest.approx(float(x.double().var(correction=0)), rel=1e-9)


def test_streaming_counts_nan_and_inf_over_all_chunks():
    x = torch.zeros(10, 3)
    x[1, 0] = float("nan")
    x[8, 2] = float("inf")
    acc = stats.StreamingStats(10)
    for start in range(0, 10, 4):
        acc.update(x[start:start + 4])
    assert acc.nonfinite == {"nan": 1, "inf": 1, "nonfinite": 2}


def test_sample_spread_and_cosine_match_a_direct_computation():
    g = torch.Generator().manual_seed(3)
    x = torch.randn(7, 5, generator=g) + 0.5
    x[3] = 0.0  # a zero row: similarity 0 to every other
    a = x.double().numpy()
    spread = np.sqrt(a.var(axis=0).mean())
    unit = [r / np.linalg.norm(r) if np.linalg.norm(r) > 0 else r * 0 for r in a]
    pairs = [float(unit[i] @ unit[j]) for i in range(7) for j in range(7) if i != j]
    assert stats.sample_spread(x) == pytest.approx(spread, rel=1e-12)
    assert stats.sample_cosine(x) == pytest.approx(np.mean(pairs), rel=1e-12)


def test_identical_samples_have_spread_0_and_cosine_1_whatever_their_own_spread():
    row = torch.linspace(-3, 3, 50)
    x = row.repeat(10, 1)
    assert stats.sample_spread(x) == 0.0
    assert stats.sample_cosine(x) == pytest.approx(1.0, abs=1e-12)
    assert np.isnan(stats.sample_cosine(x[:1]))
