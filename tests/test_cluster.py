"""Tests of dscore.cluster: k-means++ seeding, Lloyd iterations, warm starts, helpers."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.cluster import KMeans as SKKMeans
from sklearn.datasets import make_blobs
from sklearn.metrics import adjusted_rand_score

from dscore.cluster import KMeans, assign, fit_kmeans, kmeans, kmeans_plusplus, nearest_to_centroids


def blobs(n=240, d=5, centers=4, std=0.4, seed=0):
    x, y = make_blobs(n_samples=n, n_features=d, centers=centers, cluster_std=std, random_state=seed,
                      center_box=(-10, 10))
    return torch.tensor(x, dtype=torch.float32), y


def naive_lloyd(x: torch.Tensor, init: torch.Tensor, iters: int = 500):
    """Textbook Lloyd in float64 with Python loops, stopping when labels stop changing."""
    x = x.double()
    c = init.double().clone()
    labels = None
    for _ in range(iters):
        dist = torch.stack([((x - c[j]) ** 2).sum(1) for j in range(c.shape[0])], dim=1)
        new = dist.argmin(1)
        if labels is not None and torch.equal(new, labels):
            break
        labels = new
        for j in range(c.shape[0]):
            members = x[labels == j]
            if len(members):
                c[j] = members.mean(0)
    return c, labels


def test_matches_sklearn_on_separated_blobs():
    x, y = blobs()
    centroids, labels = kmeans(x, 4, seed=0)
    sk = SKKMeans(4, n_init=10, random_state=0).fit(x.numpy())
    assert adjusted_rand_score(labels.numpy(), sk.labels_) == 1.0
    assert adjusted_rand_score(labels.numpy(), y) == 1.0
    ours = fit_kmeans(x, 4, seed=0).inertia
    assert abs(ours - sk.inertia_) <= 1e-4 * sk.inertia_
    assert centroids.shape == (4, 5) and centroids.dtype == x.dtype
    assert labels.dtype == torch.int64 and labels.shape == (x.shape[0],)


@pytest.mark.parametrize("seed", [0, 3])
def test_deterministic_for_a_seed(seed):
    x = torch.randn(150, 3, generator=torch.Generator().manual_seed(1))
    c1, l1 = kmeans(x, 6, seed=seed)
    c2, l2 = kmeans(x, 6, seed=seed)
    assert torch.equal(c1, c2) and torch.equal(l1, l2)
    assert torch.equal(kmeans_plusplus(x, 6, seed=seed), kmeans_plusplus(x, 6, seed=seed))


def test_kmeans_plusplus_never_repeats_and_skips_duplicates():
    base = torch.randn(3, 4, generator=torch.Generator().manual_seed(0))
    x = base.repeat(10, 1)                      # 30 rows, 3 distinct points
    for seed in range(5):
        picks = kmeans_plusplus(x, 3, seed=seed)
        assert len(set(picks.tolist())) == 3
        # D² sampling gives zero weight to copies of chosen points: all three distinct points are chosen
        assert len({tuple(r) for r in x[picks].tolist()}) == 3
        more = kmeans_plusplus(x, 7, seed=seed)  # only duplicates remain: uniform among unchosen indices
        assert len(set(more.tolist())) == 7


def test_k_equals_n_every_point_its_own_centroid():
    x = torch.randn(12, 3, generator=torch.Generator().manual_seed(2)) * 5
    centroids, labels = kmeans(x, 12, seed=0)
    assert sorted(labels.tolist()) == list(range(12))
    assert torch.allclose(centroids[labels], x)


def test_empty_cluster_is_reseeded_at_farthest_point():
    x, _ = blobs(n=90, centers=3, seed=1)
    x = x + 50.0                                   # keep the data far from the origin
    good = fit_kmeans(x, 3, seed=0).centroids
    init = torch.cat([good[:2], torch.full((1, 5), 1e4)])   # third centroid attracts no point
    labels0, d0 = assign(x, init)
    assert (labels0 == 2).sum() == 0
    one = fit_kmeans(x, 3, init=init, iters=1)
    assert torch.equal(one.centroids[2], x[d0.argmax()])   # moved onto the worst-served point
    final = fit_kmeans(x, 3, init=init, iters=100)
    counts = torch.bincount(final.labels, minlength=3)
    assert (counts > 0).all()
    assert final.centroids.norm(dim=1).min() > 10      # no centroid parked at the origin
    assert final.converged


def test_warm_start_needs_no_more_iterations_than_cold():
    x, _ = blobs(n=300, centers=5, std=1.5, seed=4)
    cold = fit_kmeans(x, 5, seed=0, tol=0.0)
    noisy = cold.centroids + 0.05 * torch.randn(cold.centroids.shape, generator=torch.Generator().manual_seed(0))
    warm = fit_kmeans(x, 5, init=noisy, tol=0.0)
    assert warm.n_iter <= cold.n_iter
    again = fit_kmeans(x, 5, init=cold.centroids, tol=0.0)
    assert again.n_iter == 1 and torch.equal(again.labels, cold.labels)


def test_chunked_equals_unchunked():
    x = torch.randn(203, 6, generator=torch.Generator().manual_seed(5))
    a = fit_kmeans(x, 7, seed=2, chunk_size=4096)
    b = fit_kmeans(x, 7, seed=2, chunk_size=17)
    assert torch.equal(a.labels, b.labels)
    assert torch.allclose(a.centroids, b.centroids, atol=1e-5)
    la, da = assign(x, a.centroids, chunk_size=1)
    lb, db = assign(x, a.centroids, chunk_size=1000)
    assert torch.equal(la, lb) and torch.allclose(da, db, atol=1e-5)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_naive_lloyd_from_same_init(seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(120, 4, generator=gen)
    init = x[torch.randperm(120, generator=gen)[:5]].clone()
    ours = fit_kmeans(x, 5, init=init, tol=0.0, iters=500)
    ref_c, ref_l = naive_lloyd(x, init)
    assert torch.equal(ours.labels, ref_l)
    assert torch.allclose(ours.centroids.double(), ref_c, atol=1e-5)
    assert ours.converged


def test_cluster_sum_paths_agree():
    # the CUDA path (one-hot matmul, deterministic) and the CPU path (index_add_) give the same sums
    from dscore.cluster import _cluster_sums

    gen = torch.Generator().manual_seed(8)
    x = torch.randn(50, 3, generator=gen)
    labels = torch.randint(0, 4, (50,), generator=gen)
    ref = torch.stack([x[labels == j].double().sum(0) for j in range(4)])
    a = _cluster_sums(x, labels, 4, None, chunk_size=7, use_matmul=False)
    b = _cluster_sums(x, labels, 4, None, chunk_size=7, use_matmul=True)
    assert torch.allclose(a, ref, atol=1e-10)
    assert torch.allclose(b.double(), ref, atol=1e-5)


def test_assign_and_nearest_vs_brute_force():
    gen = torch.Generator().manual_seed(7)
    x = torch.randn(64, 3, generator=gen)
    c = torch.randn(5, 3, generator=gen)
    dist = torch.cdist(x.double(), c.double()) ** 2
    labels, sq = assign(x, c, chunk_size=10)
    assert torch.equal(labels, dist.argmin(1))
    assert torch.allclose(sq.double(), dist.min(1).values, atol=1e-5)
    near = nearest_to_centroids(x, c, n=4, chunk_size=9)
    assert near.shape == (5, 4)
    assert torch.equal(near, dist.T.argsort(dim=1, stable=True)[:, :4])
    for row in near.tolist():
        assert len(set(row)) == 4


def test_nearest_ties_go_to_lowest_index():
    x = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 0.0], [5.0, 5.0]])
    c = torch.tensor([[1.0, 0.0]])
    assert nearest_to_centroids(x, c, n=2, chunk_size=1).tolist() == [[0, 2]]


def test_estimator_class():
    x, y = blobs(n=120, centers=3, seed=2)
    km = KMeans(3, seed=0).fit(x)
    assert km.cluster_centers_.shape == (3, 5)
    assert torch.equal(km.predict(x), km.labels_)
    assert km.inertia_ > 0 and km.n_iter_ >= 1
    warm = KMeans(3, warm_start=True).fit(x)
    first = warm.cluster_centers_.clone()
    warm.fit(x)
    assert warm.n_iter_ == 1 and torch.allclose(warm.cluster_centers_, first)
    with pytest.raises(ValueError, match="before fit"):
        KMeans(2).predict(x)


@pytest.mark.parametrize("k", [0, 11, 2.5])
def test_bad_k(k):
    with pytest.raises(ValueError, match="k="):
        kmeans(torch.randn(10, 2), k)


def test_bad_inputs():
    with pytest.raises(ValueError, match="shape"):
        kmeans(torch.randn(10), 2)
    bad = torch.randn(10, 2)
    bad[3, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        kmeans(bad, 2)
    with pytest.raises(ValueError, match="init"):
        kmeans(torch.randn(10, 2), 3, init=torch.randn(2, 2))
    with pytest.raises(ValueError, match="dimension"):
        kmeans(torch.randn(10, 2), 2, init=torch.randn(2, 3))
    with pytest.raises(ValueError, match="tol"):
        kmeans(torch.randn(10, 2), 2, tol=-1)
    with pytest.raises(ValueError, match="n="):
        nearest_to_centroids(torch.randn(4, 2), torch.randn(2, 2), n=5)


@settings(max_examples=15, deadline=None)
@given(n=st.integers(2, 40), d=st.integers(1, 4), k_frac=st.floats(0.05, 1.0), seed=st.integers(0, 1000))
def test_properties(n, d, k_frac, seed):
    x = torch.randn(n, d, generator=torch.Generator().manual_seed(seed))
    k = max(1, min(n, int(round(k_frac * n))))
    res = fit_kmeans(x, k, seed=seed, tol=0.0)
    # labels are the nearest-centroid assignment of the returned centroids
    labels, sq = assign(x, res.centroids)
    assert torch.equal(labels, res.labels)
    assert res.inertia == pytest.approx(float(sq.double().sum()), rel=1e-6, abs=1e-6)
    # Lloyd never does worse than its own seeding
    seeds = x[kmeans_plusplus(x, k, seed=seed)]
    assert res.inertia <= float(assign(x, seeds)[1].double().sum()) * (1 + 1e-5) + 1e-6
    # converged runs have no empty cluster (points are distinct almost surely)
    if res.converged:
        assert int(torch.bincount(res.labels, minlength=k).min()) > 0
    assert np.isfinite(res.centroids.numpy()).all()


def test_kmeans_and_mmd2_accept_numpy_arrays():
    import numpy as np

    from dscore.metrics import mmd2

    rng = np.random.default_rng(0)
    pts = np.concatenate([rng.normal(0, 0.1, (20, 2)), rng.normal(5, 0.1, (20, 2))]).astype(np.float32)
    centroids, labels = kmeans(pts, 2, seed=0)
    assert centroids.shape == (2, 2) and labels.shape == (40,)
    assert len(set(labels[:20].tolist())) == 1 and labels[0] != labels[-1]
    assert mmd2(pts[:20], pts[20:], 1.0) == pytest.approx(mmd2(torch.from_numpy(pts[:20]),
                                                                torch.from_numpy(pts[20:]), 1.0))


def test_kmeans_plusplus_samples_proportionally_to_squared_distance():
    # points 0, 1, 10 on a line, k = 2: the first start is uniform, the second ∝ D². The chance that the
    # far point (index 2) is among the starts is (1/3)(100/101 + 81/82 + 1) ≈ 0.9929 under D² sampling,
    # 0.936 under D sampling and 0.667 under uniform sampling.
    x = torch.tensor([[0.0], [1.0], [10.0]])
    trials = 3000
    hits = sum(2 in kmeans_plusplus(x, 2, seed=s).tolist() for s in range(trials))
    expected = (100 / 101 + 81 / 82 + 1) / 3
    sd = (expected * (1 - expected) / trials) ** 0.5
    assert abs(hits / trials - expected) < 5 * sd, (hits / trials, expected)
    # given the first start at 0, the second is index 1 with probability 1/101
    firsts = [kmeans_plusplus(x, 2, seed=s).tolist() for s in range(trials)]
    from_zero = [p[1] for p in firsts if p[0] == 0]
    assert 0 < len(from_zero) and sum(i == 1 for i in from_zero) / len(from_zero) < 0.05


def test_kmeans_tolerance_is_relative_to_the_data_scale():
    gen = torch.Generator().manual_seed(0)
    x = torch.cat([torch.randn(200, 2, generator=gen) + 4, torch.randn(200, 2, generator=gen) - 4])
    small = fit_kmeans(x, 3, seed=1, tol=1e-4)
    scaled = fit_kmeans(x * 1000.0, 3, seed=1, tol=1e-4)
    assert torch.equal(small.labels, scaled.labels) and small.n_iter == scaled.n_iter
    loose = fit_kmeans(x, 3, seed=1, tol=10.0)
    assert loose.n_iter <= small.n_iter


@pytest.mark.parametrize("n,d,k,seed", [(400, 5, 7, 0), (600, 32, 24, 1), (120, 3, 40, 2), (300, 8, 1, 3)])
def test_elkan_bounds_give_plain_lloyd_results(n, d, k, seed):
    gen = torch.Generator().manual_seed(seed)
    x = torch.randn(n, d, generator=gen).relu() + 0.05 * torch.randn(n, d, generator=gen)
    plain = fit_kmeans(x, k, seed=seed, algorithm="lloyd")
    fast = fit_kmeans(x, k, seed=seed, algorithm="elkan")
    assert torch.equal(plain.centroids, fast.centroids) and torch.equal(plain.labels, fast.labels)
    assert plain.n_iter == fast.n_iter and plain.converged == fast.converged
    assert fast.inertia == pytest.approx(plain.inertia, rel=1e-12)
    # warm starts and tol = 0 go through the same iterations too
    init = plain.centroids + 0.3
    a = fit_kmeans(x, k, init=init, tol=0.0, algorithm="lloyd")
    b = fit_kmeans(x, k, init=init, tol=0.0, algorithm="elkan")
    assert torch.equal(a.centroids, b.centroids) and torch.equal(a.labels, b.labels) and a.n_iter == b.n_iter


def test_elkan_handles_duplicates_and_empty_clusters_like_lloyd():
    # duplicated points and a far warm start leave clusters empty: both re-seed them from the farthest points
    x = torch.cat([torch.zeros(20, 2), torch.ones(20, 2), torch.tensor([[5.0, 5.0]] * 3)])
    init = torch.tensor([[0.0, 0.0], [100.0, 100.0], [-100.0, 50.0], [1.0, 1.0]])
    a = fit_kmeans(x, 4, init=init, algorithm="lloyd")
    b = fit_kmeans(x, 4, init=init, algorithm="elkan")
    assert torch.equal(a.centroids, b.centroids) and torch.equal(a.labels, b.labels) and a.n_iter == b.n_iter
    assert int(torch.bincount(b.labels, minlength=4).min()) >= 0 and torch.isfinite(b.centroids).all()


def test_kmeans_algorithm_is_checked():
    x = torch.randn(10, 2)
    with pytest.raises(ValueError, match="algorithm='fast'.*'elkan'.*'lloyd'"):
        fit_kmeans(x, 2, algorithm="fast")
    with pytest.raises(ValueError, match="algorithm"):
        KMeans(2, algorithm="hartigan")
    assert torch.equal(KMeans(2, algorithm="lloyd").fit(x).labels_, KMeans(2).fit(x).labels_)


@pytest.mark.parametrize("chunk", [4096, 37, 5])
def test_nearest_single_sample_matches_a_stable_sort_with_ties(chunk):
    gen = torch.Generator().manual_seed(4)
    x = torch.randint(0, 3, (300, 3), generator=gen).float()            # many exact ties
    c = torch.randint(0, 3, (9, 3), generator=gen).float()
    brute = ((x[None] - c[:, None]) ** 2).sum(-1).sort(dim=1, stable=True).indices[:, :1]
    assert torch.equal(nearest_to_centroids(x, c, 1, chunk), brute)
    assert torch.equal(nearest_to_centroids(x, c, 2, chunk)[:, :1], brute)
