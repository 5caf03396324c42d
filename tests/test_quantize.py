"""Tests for dscore.quantize: DQ bins, ADQ budgets, texture level, scores and samplers."""
from __future__ import annotations

import math
from fractions import Fraction

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore.features import GradientFeatures
from dscore.select import budget_from_ratio
from dscore.quantize import (
    adq_select,
    bin_budgets,
    dq_select,
    generate_bins,
    importance_scores,
    representativeness_scores,
    sample_from_bins,
    texture_level,
    texture_level_patches,
    zscore,
)


def randn(seed: int, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ references

def naive_graphcut(x: torch.Tensor, budget: int, lam: float, tie_tol: float = 1e-9) -> list[int]:
    """Dense-matrix greedy GraphCut (s = 0.5 + 0.5·cos, zero rows cos = 0), ties to the lowest index."""
    x = x.double()
    norms = x.norm(dim=1, keepdim=True)
    unit = torch.where(norms > 0, x / torch.where(norms > 0, norms, torch.ones_like(norms)), torch.zeros_like(x))
    sim = 0.5 + 0.5 * unit @ unit.T
    col_sum = sim.sum(0)
    selected: list[int] = []
    for _ in range(budget):
        gains = lam * col_sum - 2 * (sim[selected].sum(0) if selected else 0)
        gains[selected] = -math.inf
        best = gains.max()
        selected.append(next(i for i in range(len(gains)) if gains[i] >= best - tie_tol))
    return selected


def naive_bins(x: torch.Tensor, labels: torch.Tensor, k: int, lam: float = 1.0) -> list[list[int]]:
    bins: list[list[int]] = [[] for _ in range(k)]
    for c in sorted(set(labels.tolist())):
        remaining = [i for i in range(len(labels)) if labels[i] == c]
        size = len(remaining) // k
        for b in range(k - 1):
            local = naive_graphcut(x[remaining], size, lam)
            bins[b] += [remaining[i] for i in local]
            remaining = [r for j, r in enumerate(remaining) if j not in set(local)]
        bins[k - 1] += remaining
    return bins


def naive_budgets(sizes: list[int], budget: int, importance, beta: float) -> list[int]:
    """One unit at a time, literally as the bin_budgets docstring states it (r_n·M evaluated like the library): the
    leftover units go to the largest remainder, ties to the lowest bin, the remainders compared exactly for β = 0
    (fractions) and, for β > 0, rounded to 1e-9 of a unit (so a float round-off cannot break an exact tie)."""
    k, total = len(sizes), sum(sizes)
    w = torch.softmax(torch.tensor(importance, dtype=torch.float64), 0).tolist() if importance is not None else [0.0] * k
    if beta == 0:
        scaled = [Fraction(sizes[n] * budget, total) for n in range(k)]
        keys = [s for s in scaled]
    else:
        scaled = [(beta * budget) * w[n] + (1.0 - beta) * (sizes[n] * budget / total) for n in range(k)]
        keys = [round(s * 1e9) for s in scaled]
    unit = 1 if beta == 0 else 10**9
    q = [min(math.floor(s), sizes[n]) for n, s in enumerate(scaled)]
    while sum(q) < budget:
        best = None
        for n in range(k):
            if q[n] < sizes[n] and (best is None or keys[n] - q[n] * unit > keys[best] - q[best] * unit):
                best = n
        q[best] += 1
    return q


def naive_texture(img: torch.Tensor) -> float:
    """Texture level of one 2-D grayscale tile by explicit loops, reflect-101 borders."""
    h, w = img.shape

    def at(r, c):
        r = -r if r < 0 else (2 * (h - 1) - r if r >= h else r)
        c = -c if c < 0 else (2 * (w - 1) - c if c >= w else c)
        return float(img[r, c])

    kx = [[-1, 0, 1], [-2, 0, 2], [-1, 0, 1]]
    total = 0.0
    for r in range(h):
        for c in range(w):
            gx = sum(kx[i][j] * at(r + i - 1, c + j - 1) for i in range(3) for j in range(3))
            gy = sum(kx[j][i] * at(r + i - 1, c + j - 1) for i in range(3) for j in range(3))
            total += 0.5 * abs(gx) + 0.5 * abs(gy)
    return total / (h * w)


# ------------------------------------------------------------------------------------------- bins

def _toy(seed=0, n_per_class=(13, 11, 17), d=4):
    labels = torch.cat([torch.full((m,), c) for c, m in zip((2, 0, 5), n_per_class)])
    labels = labels[torch.randperm(len(labels), generator=torch.Generator().manual_seed(seed))]
    return randn(seed + 1, len(labels), d), labels


def test_bins_partition_and_sizes():
    x, labels = _toy()
    k = 4
    bins = generate_bins(x, labels, k)
    assert len(bins) == k and all(b.dtype == torch.long for b in bins)
    flat = torch.cat(bins)
    assert sorted(flat.tolist()) == list(range(len(labels))), "bins must be disjoint and cover everything"
    for c in (0, 2, 5):
        n_c = int((labels == c).sum())
        per_bin = [int((labels[b] == c).sum()) for b in bins]
        assert per_bin[:-1] == [n_c // k] * (k - 1)
        assert per_bin[-1] == n_c - (k - 1) * (n_c // k)
    # class order inside a bin is ascending: labels of bin 0 are 0…0 2…2 5…5
    assert labels[bins[0]].tolist() == sorted(labels[bins[0]].tolist())
    # the last bin's part of each class is in ascending index order
    for c in (0, 2, 5):
        part = bins[-1][labels[bins[-1]] == c]
        assert torch.equal(part, part.sort().values)


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 10_000), k=st.integers(1, 5), lam=st.sampled_from([0.5, 1.0, 2.0]))
def test_bins_equal_naive_repeated_graphcut(seed, k, lam):
    x, labels = _toy(seed, n_per_class=(9, 6, 12), d=3)
    got = [b.tolist() for b in generate_bins(x, labels, k, lam=lam)]
    assert got == naive_bins(x, labels, k, lam)


def test_bins_with_gradient_features_match_materialised():
    x, labels = _toy(3, n_per_class=(8, 10, 7), d=3)
    delta = torch.softmax(randn(9, len(labels), 4), 1) - torch.nn.functional.one_hot(labels % 4, 4).float()
    g = GradientFeatures(delta, x)
    dense = torch.cat([g.delta, (g.delta.unsqueeze(2) * g.embedding.unsqueeze(1)).reshape(len(g), -1)], 1)
    assert [b.tolist() for b in generate_bins(g, labels, 3)] == naive_bins(dense.double(), labels, 3)


def test_bins_errors():
    x, labels = _toy()
    with pytest.raises(ValueError, match=r"num_bins=12.*1 <= num_bins <= 11.*label 0, has 11"):
        generate_bins(x, labels, 12)
    with pytest.raises(ValueError, match="num_bins=0"):
        generate_bins(x, labels, 0)
    with pytest.raises(ValueError, match="num_bins"):
        generate_bins(x, labels, 2.5)
    with pytest.raises(ValueError, match="length"):
        generate_bins(x, labels[:-1], 2)
    with pytest.raises(ValueError, match="integer"):
        generate_bins(x, labels.float(), 2)
    with pytest.raises(ValueError, match="1-D"):
        generate_bins(x, labels.view(-1, 1), 2)


# ---------------------------------------------------------------------------------------- budgets

def test_bin_budgets_hand_examples():
    assert bin_budgets([10, 10, 10], 15).tolist() == [5, 5, 5]
    assert bin_budgets([100, 50, 50], 20).tolist() == [10, 5, 5]
    # x = (1.5, 1.5, 2.0) → floors (1, 1, 2), one leftover; remainders tie 0.5 / 0.5 → lowest bin
    assert bin_budgets([3, 3, 4], 5).tolist() == [2, 1, 2]
    # Î = (1/2, 1/4, 1/4), β = 1, M = 7: x = (3.5, 1.75, 1.75) → (3, 1, 1); remainders .5/.75/.75 → bins 1, 2
    assert bin_budgets([10, 10, 10], 7, [math.log(2.0), 0.0, 0.0], beta=1.0).tolist() == [3, 2, 2]
    # β = 0.5, equal importance and sizes: r = 0.5 → x = 1.5 each → (1, 1) + 1 to bin 0
    assert bin_budgets([4, 4], 3, [0.0, 0.0], beta=0.5).tolist() == [2, 1]
    # capacity clipping: bin 0 wants ≈12 but holds 2; ten leftovers alternate between the tied bins 1, 2
    assert bin_budgets([2, 10, 10], 12, [10.0, 0.0, 0.0], beta=1.0).tolist() == [2, 5, 5]
    # clipping with unequal remainders: Î ≈ (0.9999, 4.5e-5, 0) → bin 1 has the larger key first
    assert bin_budgets([1, 5, 5], 4, [20.0, 10.0, 0.0], beta=1.0).tolist() == [1, 2, 1]
    assert bin_budgets([3, 0, 2], 5).tolist() == [3, 0, 2]
    assert bin_budgets([3, 4], 0, [1.0, 2.0], beta=0.3).tolist() == [0, 0]
    assert bin_budgets([7], 7).dtype == torch.long


def test_bin_budgets_beta_zero_is_exact_for_integer_shares():
    # N(n)·M/ΣN is an integer here, floating-point r_n·M must not lose a unit
    for sizes, m in [([3, 3, 3], 3), ([7, 14, 21], 6), ([10] * 10, 30), ([49, 98, 147], 150)]:
        expect = [s * m // sum(sizes) for s in sizes]
        assert bin_budgets(sizes, m).tolist() == expect


def test_bin_budgets_break_a_float_tie_as_documented():
    """Bins 2 and 3 have the same remainder 0.1788 up to float round-off; the keys are compared at 1e-9 of a unit, so
    the tie goes to the lower bin (a case property testing found against the naive reference)."""
    sizes, importance = [0, 5, 35, 3, 33, 36, 36], [0.0, 5.25, 0.0, 0.0, 0.0, 0.0, 5.0]
    assert bin_budgets(sizes, 74, importance, beta=0.25).tolist() == [0, 5, 15, 2, 14, 15, 23]
    assert naive_budgets(sizes, 74, importance, 0.25) == [0, 5, 15, 2, 14, 15, 23]


@settings(max_examples=80, deadline=None)
@given(sizes=st.lists(st.integers(0, 40), min_size=1, max_size=12), data=st.data(),
       beta=st.sampled_from([0.0, 0.25, 0.5, 0.6, 0.7, 1.0]) | st.floats(0.0, 1.0))
def test_bin_budgets_properties_and_naive_equivalence(sizes, data, beta):
    total = sum(sizes)
    budget = data.draw(st.integers(0, total))
    importance = data.draw(st.lists(st.floats(-6.0, 6.0), min_size=len(sizes), max_size=len(sizes)))
    q = bin_budgets(sizes, budget, importance, beta=beta)
    assert int(q.sum()) == budget
    assert all(0 <= a <= s for a, s in zip(q.tolist(), sizes))
    if total:
        assert q.tolist() == naive_budgets(sizes, budget, importance, beta)
    q0 = bin_budgets(sizes, budget)
    if total:
        for a, s in zip(q0.tolist(), sizes):       # β = 0: proportional up to one unit
            share = Fraction(s * budget, total)
            assert math.floor(share) <= a <= math.floor(share) + 1


def test_bin_budgets_errors():
    with pytest.raises(ValueError, match="beta=1.5"):
        bin_budgets([3, 3], 2, [0.0, 0.0], beta=1.5)
    with pytest.raises(ValueError, match="beta"):
        bin_budgets([3, 3], 2, [0.0, 0.0], beta=-0.1)
    with pytest.raises(ValueError, match=r"budget=7.*0 <= budget <= 6"):
        bin_budgets([3, 3], 7)
    with pytest.raises(ValueError, match="budget=-1"):
        bin_budgets([3, 3], -1)
    with pytest.raises(ValueError, match="importance is required"):
        bin_budgets([3, 3], 2, beta=0.5)
    with pytest.raises(ValueError, match=r"shape \(3,\).*2 bins"):
        bin_budgets([3, 3], 2, [0.0, 1.0, 2.0], beta=0.5)
    with pytest.raises(ValueError, match="finite"):
        bin_budgets([3, 3], 2, [0.0, float("nan")], beta=0.5)
    with pytest.raises(ValueError, match="negative"):
        bin_budgets([3, -1], 1)
    with pytest.raises(ValueError, match="integers"):
        bin_budgets([3.0, 1.0], 1)
    with pytest.raises(ValueError, match="empty"):
        bin_budgets([], 0)


# ---------------------------------------------------------------------------------- texture level

def ramp(a: float, h: int = 32, w: int = 32, horizontal: bool = True) -> torch.Tensor:
    r = torch.arange(w if horizontal else h, dtype=torch.float32) * a
    img = r.view(1, w).expand(h, w) if horizontal else r.view(h, 1).expand(h, w)
    return img.reshape(1, 1, h, w).clone()


def test_texture_flat_is_zero_and_ramp_has_known_value():
    assert texture_level(torch.full((2, 1, 32, 32), 0.3)).tolist() == [0.0, 0.0]
    a = 1 / 64
    # |Gx| = (1+2+1)·2a = 8a inside; reflect-101 makes the two border columns 0; Gy = 0: TL = 0.5·8a·(W−2)/W
    expected = 4 * a * 30 / 32
    assert texture_level(ramp(a)).item() == pytest.approx(expected, rel=1e-6)
    assert texture_level(ramp(a, horizontal=False)).item() == pytest.approx(expected, rel=1e-6)
    # with 16×16 tiles the reflection happens inside every tile: 4a·14/16
    assert texture_level(ramp(a), patch=16).item() == pytest.approx(4 * a * 14 / 16, rel=1e-6)
    # a 20-wide ramp smaller than the patch is one tile: 4a·18/20
    assert texture_level(ramp(a, 20, 20)).item() == pytest.approx(4 * a * 18 / 20, rel=1e-6)


def test_texture_matches_naive_loops_and_checkerboard_beats_ramp():
    img = torch.rand(1, 1, 9, 7, generator=torch.Generator().manual_seed(0))
    assert texture_level(img).item() == pytest.approx(naive_texture(img[0, 0]), rel=1e-5)
    yy, xx = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    checker = (((yy // 2) + (xx // 2)) % 2).float().view(1, 1, 32, 32)
    assert texture_level(checker).item() == pytest.approx(naive_texture(checker[0, 0]), rel=1e-5)
    assert texture_level(checker).item() > texture_level(ramp(1 / 32)).item()


def test_texture_tiles_and_rgb_weights():
    img = torch.rand(3, 1, 64, 64, generator=torch.Generator().manual_seed(1))
    tiles = [img[:, :, r : r + 32, c : c + 32] for r in (0, 32) for c in (0, 32)]
    per_tile = torch.stack([texture_level(t) for t in tiles], 1)
    assert torch.allclose(texture_level_patches(img, 32), per_tile, atol=1e-6)
    assert torch.allclose(texture_level(img, 32), per_tile.mean(1), atol=1e-6)
    # incomplete edge tiles are dropped: a 40×40 image with patch 32 uses its top-left tile only
    big = torch.rand(2, 1, 40, 40, generator=torch.Generator().manual_seed(2))
    assert texture_level_patches(big, 32).shape == (2, 1)
    assert torch.allclose(texture_level(big), texture_level(big[:, :, :32, :32]), atol=1e-6)
    rgb = torch.rand(2, 3, 16, 16, generator=torch.Generator().manual_seed(3))
    gray = (0.299 * rgb[:, 0] + 0.587 * rgb[:, 1] + 0.114 * rgb[:, 2]).unsqueeze(1)
    assert torch.allclose(texture_level(rgb), texture_level(gray), atol=1e-6)
    red_only = torch.zeros(1, 3, 32, 32)
    red_only[:, 0] = ramp(1 / 64)[:, 0]
    assert texture_level(red_only).item() == pytest.approx(0.299 * texture_level(ramp(1 / 64)).item(), rel=1e-5)


def test_texture_errors():
    with pytest.raises(ValueError, match="shape"):
        texture_level(torch.rand(1, 32, 32))
    with pytest.raises(ValueError, match="C=2"):
        texture_level(torch.rand(1, 2, 32, 32))
    with pytest.raises(ValueError, match="floating"):
        texture_level(torch.zeros(1, 1, 32, 32, dtype=torch.uint8))
    with pytest.raises(ValueError, match="patch"):
        texture_level(torch.rand(1, 1, 32, 32), patch=1)
    with pytest.raises(ValueError, match="2×2"):
        texture_level(torch.rand(1, 1, 1, 32))


def test_representativeness_is_mean_patch_texture_per_bin():
    images = torch.rand(10, 3, 64, 32, generator=torch.Generator().manual_seed(4))
    bins = [torch.tensor([0, 3, 5]), torch.tensor([1, 2]), torch.tensor([9, 8, 7, 6, 4])]
    rs = representativeness_scores(images, bins, patch=32, batch_size=3)
    patches = texture_level_patches(images, 32).double()
    expected = torch.stack([patches[b].mean() for b in bins])
    assert rs.shape == (3,) and torch.allclose(rs, expected, atol=1e-6)
    with pytest.raises(ValueError, match="bin 1 is empty"):
        representativeness_scores(images, [bins[0], torch.tensor([], dtype=torch.long)])
    with pytest.raises(ValueError, match="outside"):
        representativeness_scores(images, [torch.tensor([10])])


# ----------------------------------------------------------------------------------------- scores

def test_zscore_and_importance():
    x = torch.tensor([1.0, 2.0, 4.0, 7.0])
    z = zscore(x)
    expected = (x.double() - x.double().mean()) / x.double().std(unbiased=False)
    assert torch.allclose(z, expected)
    assert zscore([0.1, 0.1, 0.1]).tolist() == [0.0, 0.0, 0.0]
    assert zscore([5.0]).tolist() == [0.0]
    assert torch.allclose(importance_scores([1.0, 2.0, 3.0], [0.5, 0.5, 0.5]), zscore([1.0, 2.0, 3.0]))
    assert torch.allclose(importance_scores([1.0, 2.0, 3.0], [3.0, 2.0, 1.0]), torch.zeros(3, dtype=torch.float64))
    with pytest.raises(ValueError, match="shape"):
        importance_scores([1.0, 2.0], [1.0, 2.0, 3.0])


# --------------------------------------------------------------------------------------- sampling

def _bins_and_labels():
    labels = torch.tensor([0, 1, 1, 2, 0, 0, 1, 2, 2, 2, 0, 1, 1, 0, 2, 1, 0, 0, 2, 1])
    bins = [torch.tensor([0, 1, 2, 3, 4, 5, 6]), torch.tensor([7, 8, 9, 10, 11, 12]), torch.tensor([13, 14, 15, 16, 17, 18, 19])]
    return bins, labels


def _naive_class_quotas(bins, labels, budgets):
    """Reference: per bin, floors of q·n_c/s, then one unit at a time to the class with the largest
    cumulative shortfall (ideal so far − given so far), ties to the smaller label, with room."""
    from fractions import Fraction
    shortfall, out = {}, []
    for b, q in zip(bins, budgets):
        lab = labels[b].tolist()
        classes = sorted(set(lab))
        n = {c: lab.count(c) for c in classes}
        ideal = {c: Fraction(q * n[c], len(lab)) for c in classes}
        give = {c: min(int(ideal[c]), n[c]) for c in classes}
        for _ in range(q - sum(give.values())):
            room = [c for c in classes if give[c] < n[c]]
            best = max(room, key=lambda c: (shortfall.get(c, 0) + ideal[c] - give[c], -c))
            give[best] += 1
        for c in classes:
            shortfall[c] = shortfall.get(c, 0) + ideal[c] - give[c]
        out.append(give)
    return out


def test_sample_from_bins_stratified_counts():
    bins, labels = _bins_and_labels()
    budgets = [4, 3, 5]
    chosen = sample_from_bins(bins, labels, budgets, seed=0)
    assert torch.equal(chosen, chosen.sort().values) and chosen.unique().numel() == chosen.numel()
    for b, q, expect in zip(bins, budgets, _naive_class_quotas(bins, labels, budgets)):
        inside = chosen[torch.isin(chosen, b)]
        assert inside.numel() == q
        got = {c: int((labels[inside] == c).sum()) for c in expect}
        assert got == expect


@settings(max_examples=60, deadline=None)
@given(st.integers(0, 10_000), st.integers(1, 8), st.integers(2, 6), st.floats(0.0, 1.0))
def test_sample_from_bins_class_totals_stay_proportional(seed, num_bins, num_classes, ratio):
    g = torch.Generator().manual_seed(seed)
    n = 40 * num_bins
    labels = torch.randint(num_classes, (n,), generator=g)
    cut = torch.sort(torch.randperm(n - 1, generator=g)[: num_bins - 1] + 1).values.tolist()
    perm = torch.randperm(n, generator=g)
    bins = list(torch.tensor_split(perm, cut))
    sizes = torch.tensor([b.numel() for b in bins])
    budgets = bin_budgets(sizes, int(round(ratio * n)))
    chosen = sample_from_bins(bins, labels, budgets, seed=seed)
    ideal = torch.zeros(num_classes, dtype=torch.float64)
    for b, q, expect in zip(bins, budgets.tolist(), _naive_class_quotas(bins, labels, budgets.tolist())):
        if b.numel():
            ideal += torch.bincount(labels[b], minlength=num_classes).double() * q / b.numel()
        inside = chosen[torch.isin(chosen, b)]
        assert {c: int((labels[inside] == c).sum()) for c in expect} == expect
    got = torch.bincount(labels[chosen], minlength=num_classes).double()
    assert torch.all((got - ideal).abs() < 1 + 1e-9), (got, ideal)


def test_sample_from_bins_small_budget_reaches_every_class():
    # ten bins, ten classes spread evenly, one unit per class in all: a per-bin largest-remainder rule
    # would give every bin's unit to class 0; the carried shortfall gives one to each class
    labels = torch.arange(1000) % 10
    bins = list(torch.arange(1000).view(10, 100))
    chosen = sample_from_bins(bins, labels, [1] * 10, seed=3)
    assert torch.equal(torch.bincount(labels[chosen], minlength=10), torch.ones(10, dtype=torch.long))


def test_sample_from_bins_seeds_and_uniformity():
    bins, labels = _bins_and_labels()
    a = sample_from_bins(bins, labels, [3, 2, 2], seed=5)
    assert torch.equal(a, sample_from_bins(bins, labels, [3, 2, 2], seed=5))
    draws = [sample_from_bins(bins, labels, [3, 2, 2], seed=s) for s in range(300)]
    assert len({tuple(d.tolist()) for d in draws}) > 50
    # bin 0, class 0 = {0, 4, 5}: it gets 1 of the 3 budget units (counts 3/2/2 → floors 1/0/0 + 2 leftovers
    # to classes 1 and 2) … every member should be drawn about 1/3 of the time
    freq = torch.stack([torch.isin(torch.tensor([0, 4, 5]), d) for d in draws]).float().mean(0)
    assert torch.all((freq - 1 / 3).abs() < 0.1), freq


def test_sample_from_bins_errors():
    bins, labels = _bins_and_labels()
    with pytest.raises(ValueError, match=r"budgets\[1\]=7 exceeds bin 1's size 6"):
        sample_from_bins(bins, labels, [1, 7, 1], seed=0)
    with pytest.raises(ValueError, match="3 bins"):
        sample_from_bins(bins, labels, [1, 1], seed=0)
    with pytest.raises(ValueError, match="overlap"):
        sample_from_bins([bins[0], bins[0]], labels, [1, 1], seed=0)
    with pytest.raises(ValueError, match="outside"):
        sample_from_bins([torch.tensor([25])], labels, [1], seed=0)


def test_dq_and_adq_select():
    x, labels = _toy(7, n_per_class=(20, 30, 25), d=5)
    n = len(labels)
    chosen = dq_select(x, labels, 0.2, num_bins=5, seed=1)
    assert chosen.numel() == round(0.2 * n) == budget_from_ratio(0.2, n)
    assert torch.equal(chosen, dq_select(x, labels, 0.2, num_bins=5, seed=1))
    bins = generate_bins(x, labels, 5)
    per_bin = [int(torch.isin(chosen, b).sum()) for b in bins]
    assert per_bin == bin_budgets([b.numel() for b in bins], chosen.numel()).tolist()
    # β = 0 is DQ whatever the importance
    same = adq_select(bins, labels, 0.2, [9.0, -3.0, 0.0, 1.0, 2.0], beta=0.0, seed=1)
    assert torch.equal(same, chosen)
    adq, budgets = adq_select(bins, labels, 0.2, [3.0, 0.0, 0.0, 0.0, -3.0], beta=0.6, seed=1, return_budgets=True)
    assert adq.numel() == int(budgets.sum()) == chosen.numel()
    assert budgets[0] > budgets[4]
    flat = adq_select(bins, labels, 0.2, [3.0, 0.0, 0.0, 0.0, -3.0], beta=0.6, temperature=1e6, seed=1,
                      return_budgets=True)[1]
    assert (flat - bin_budgets([b.numel() for b in bins], chosen.numel())).abs().max() <= 1
    for bad in (0.0, 1.5, float("nan"), -0.1):
        with pytest.raises(ValueError, match="ratio"):
            dq_select(x, labels, bad)
        with pytest.raises(ValueError, match="ratio"):
            adq_select(bins, labels, bad, [0.0] * 5)
    with pytest.raises(ValueError, match="temperature"):
        adq_select(bins, labels, 0.2, [0.0] * 5, temperature=0.0)
    with pytest.raises(ValueError, match="ratio"):
        budget_from_ratio(0.001, 10)
    g = GradientFeatures(torch.softmax(randn(2, n, 3), 1), x)
    assert dq_select(g, labels, 0.5, num_bins=2).numel() == round(0.5 * n)


def _exact_bin_budgets(sizes, budget, importance=None, beta=0.0):
    """The bin_budgets rule in exact rational arithmetic (β = 0) — the reference for ties."""
    from fractions import Fraction

    total = sum(sizes)
    r = [Fraction(n * budget, total) for n in sizes]
    q = [min(int(x), n) for x, n in zip(r, sizes)]
    while sum(q) < budget:
        best = max((i for i in range(len(sizes)) if q[i] < sizes[i]), key=lambda i: (r[i] - q[i], -i))
        q[best] += 1
    return q


@pytest.mark.parametrize("sizes,budget", [([1, 1, 7], 3), ([1] * 9 + [6], 9), ([3, 3, 3, 5], 7), ([10] * 9 + [14], 17)])
def test_bin_budgets_exact_ties_go_to_the_lowest_bin(sizes, budget):
    assert bin_budgets(sizes, budget).tolist() == _exact_bin_budgets(sizes, budget)


@settings(max_examples=200, deadline=None)
@given(st.integers(1, 12), st.integers(1, 30), st.integers(0, 30), st.data())
def test_bin_budgets_beta0_equals_exact_rational_rule(k, equal_size, extra, data):
    sizes = [equal_size] * (k - 1) + [equal_size + extra]      # DQ-shaped: equal bins, a larger last one
    budget = data.draw(st.integers(0, sum(sizes)))
    assert bin_budgets(sizes, budget).tolist() == _exact_bin_budgets(sizes, budget)


def test_adq_select_defaults_are_the_pipelines_tuned_ones():
    import inspect

    import dscore.quantize.pipeline as pipeline

    params = inspect.signature(adq_select).parameters
    assert params["beta"].default == pipeline.ADQ_BETA and params["temperature"].default == pipeline.ADQ_TEMPERATURE
