"""Tests of dscore.metrics: MMD², bandwidth heuristic, gradient/feature differences, migration, t-SNE."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore.metrics import (feature_difference, feature_migration, gradient_difference, median_bandwidth, mmd2,
                            mmd2_multi, tsne)


def naive_mmd2(x, y, sigma):
    """Unbiased MMD² with explicit double loops over Python floats."""
    def k(a, b):
        return math.exp(-sum((ai - bi) ** 2 for ai, bi in zip(a, b)) / (2 * sigma ** 2))
    x, y = x.tolist(), y.tolist()
    m, n = len(x), len(y)
    kxx = sum(k(x[i], x[j]) for i in range(m) for j in range(m) if i != j) / (m * (m - 1))
    kyy = sum(k(y[i], y[j]) for i in range(n) for j in range(n) if i != j) / (n * (n - 1))
    kxy = sum(k(a, b) for a in x for b in y) / (m * n)
    return kxx + kyy - 2 * kxy


@pytest.mark.parametrize("sigma", [0.5, 1.0, 3.0])
def test_mmd2_matches_naive(sigma):
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(6, 3, generator=gen)
    y = torch.randn(5, 3, generator=gen) + 0.7
    assert mmd2(x, y, sigma) == pytest.approx(naive_mmd2(x, y, sigma), rel=1e-9, abs=1e-12)


def test_mmd2_small_for_same_distribution_large_for_shift():
    gen = torch.Generator().manual_seed(1)
    x = torch.randn(400, 4, generator=gen)
    y = torch.randn(400, 4, generator=gen)
    same = mmd2(x, y, 1.0)
    near = mmd2(x, x + 1e-3 * torch.randn(400, 4, generator=gen), 1.0)
    shifted = mmd2(x, y + 1.0, 1.0)
    assert abs(same) < 0.01 and abs(near) < 0.01
    assert shifted > 0.1 and shifted > 20 * abs(same)


def test_biased_mmd2_is_feature_space_distance():
    gen = torch.Generator().manual_seed(6)
    x, y = torch.randn(4, 2, generator=gen), torch.randn(3, 2, generator=gen)

    def k(a, b):
        return torch.exp(-torch.cdist(a.double(), b.double()) ** 2 / 2)

    expected = k(x, x).mean() + k(y, y).mean() - 2 * k(x, y).mean()
    assert mmd2(x, y, 1.0, unbiased=False) == pytest.approx(expected.item(), rel=1e-10)
    assert mmd2(x[:1], y, 1.0, unbiased=False) >= 0
    assert mmd2(x, x, 1.0, unbiased=False) == pytest.approx(0.0, abs=1e-12)


def test_mmd2_chunked_equals_unchunked_and_symmetric():
    gen = torch.Generator().manual_seed(2)
    x = torch.randn(37, 5, generator=gen)
    y = torch.randn(23, 5, generator=gen) * 1.3
    full = mmd2(x, y, 1.5, chunk_size=10_000)
    assert mmd2(x, y, 1.5, chunk_size=4) == pytest.approx(full, rel=1e-10, abs=1e-13)
    assert mmd2(y, x, 1.5) == pytest.approx(full, rel=1e-10, abs=1e-13)


def test_mmd2_multi_is_sum_over_bandwidths():
    gen = torch.Generator().manual_seed(3)
    x, y = torch.randn(10, 2, generator=gen), torch.randn(12, 2, generator=gen) + 0.3
    sigmas = [0.3, 1.0, 4.0]
    assert mmd2_multi(x, y, sigmas) == pytest.approx(sum(mmd2(x, y, s) for s in sigmas), rel=1e-10)


def test_mmd2_validation():
    x = torch.randn(5, 2)
    with pytest.raises(ValueError, match="at least 2"):
        mmd2(x[:1], x, 1.0)
    with pytest.raises(ValueError, match="at least 2"):
        mmd2(x, x[:1], 1.0)
    with pytest.raises(ValueError, match="sigma"):
        mmd2(x, x, 0.0)
    with pytest.raises(ValueError, match="dimension"):
        mmd2(x, torch.randn(5, 3), 1.0)
    with pytest.raises(ValueError, match="sigmas"):
        mmd2_multi(x, x, [])


def test_median_bandwidth():
    gen = torch.Generator().manual_seed(4)
    x, y = torch.randn(8, 3, generator=gen), torch.randn(6, 3, generator=gen)
    pooled = torch.cat([x, y]).double().numpy()
    d = np.sqrt(((pooled[:, None] - pooled[None]) ** 2).sum(-1))
    vals = np.sort(d[np.triu_indices(14, 1)])        # the 91 distinct pairs
    assert median_bandwidth(x, y) == pytest.approx(vals[45], rel=1e-9)
    big = torch.randn(3000, 2, generator=gen)
    assert median_bandwidth(big, max_points=200, seed=0) == median_bandwidth(big, max_points=200, seed=0)
    assert median_bandwidth(torch.zeros(4, 2)) == 1.0


def test_gradient_and_feature_difference_by_hand():
    ga = [torch.tensor([[1.0, 2.0], [3.0, 4.0]]), torch.tensor([1.0, -1.0])]
    gb = [torch.tensor([[0.0, 2.0], [3.0, 2.0]]), torch.tensor([0.0, 1.0])]
    assert gradient_difference(ga, gb) == pytest.approx(1 + 4 + 1 + 4)
    fa = torch.tensor([[0.0, 0.0], [2.0, 2.0]])      # mean (1, 1)
    fb = torch.tensor([[4.0, 1.0]])                  # mean (4, 1)
    assert feature_difference(fa, fb) == pytest.approx(9.0)
    with pytest.raises(ValueError, match="length"):
        gradient_difference(ga, gb[:1])
    with pytest.raises(ValueError, match="shapes"):
        gradient_difference(ga, [gb[0], torch.zeros(3)])


def test_feature_migration_by_hand():
    s0 = torch.zeros(2, 2)
    s1 = torch.tensor([[3.0, 4.0], [0.0, 1.0]])      # displacements 5 and 1 → mean 3
    s2 = s1.clone()                                  # no movement
    out = feature_migration([s0, s1, s2])
    assert out.shape == (2,)
    assert torch.allclose(out, torch.tensor([3.0, 0.0]))
    with pytest.raises(ValueError, match="at least 2"):
        feature_migration([s0])
    with pytest.raises(ValueError, match="shape"):
        feature_migration([s0, torch.zeros(3, 2)])


def test_tsne_shape_seed_and_perplexity_check():
    gen = torch.Generator().manual_seed(5)
    x = torch.cat([torch.randn(15, 6, generator=gen), torch.randn(15, 6, generator=gen) + 8])
    # 500 iterations: scikit-learn spends the first 250 in early exaggeration, where a point can still
    # sit between the blobs depending on the BLAS build
    a = tsne(x, seed=0, perplexity=5.0, max_iter=500)
    b = tsne(x, seed=0, perplexity=5.0, max_iter=500)
    assert a.shape == (30, 2) and a.dtype == torch.float32
    assert torch.equal(a, b)
    # the two blobs stay apart: every point is nearer its own blob's mean
    m0, m1 = a[:15].mean(0), a[15:].mean(0)
    assert ((a[:15] - m0).norm(dim=1) < (a[:15] - m1).norm(dim=1)).all()
    assert ((a[15:] - m1).norm(dim=1) < (a[15:] - m0).norm(dim=1)).all()
    with pytest.raises(ValueError, match="perplexity"):
        tsne(x, perplexity=30.0)


@settings(max_examples=10, deadline=None)
@given(m=st.integers(2, 7), n=st.integers(2, 7), d=st.integers(1, 3), sigma=st.floats(0.2, 5.0),
       seed=st.integers(0, 10_000))
def test_mmd2_property_matches_naive(m, n, d, sigma, seed):
    gen = torch.Generator().manual_seed(seed)
    x, y = torch.randn(m, d, generator=gen), torch.randn(n, d, generator=gen)
    assert mmd2(x, y, sigma, chunk_size=3) == pytest.approx(naive_mmd2(x, y, sigma), rel=1e-8, abs=1e-10)


def test_mmd2_mixed_devices_get_a_clear_error():
    x = torch.randn(4, 2)
    y = torch.randn(4, 2, device="meta")
    with pytest.raises(ValueError, match="put both on one device"):
        mmd2(x, y, 1.0)
