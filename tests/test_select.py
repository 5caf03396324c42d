"""Tests for dscore.select: GraphCut, Herding, k-Center greedy, random and per-class selection.

Each greedy selector is compared with a textbook reference written here that builds the dense
N×N (or per-step) quantities explicitly.
"""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore.features import GradientFeatures
from dscore.select import graphcut, herding, kcenter_greedy, per_class, random_subset


# ----------------------------------------------------------------------------------- references

def dense_similarity(x: torch.Tensor) -> torch.Tensor:
    """s(a,b) = 0.5 + 0.5·cos(a,b) for all pairs (zero rows: cos = 0), float64."""
    x = x.double()
    n = x.shape[0]
    norms = x.norm(dim=1)
    cos = torch.zeros(n, n, dtype=torch.float64)
    nz = norms > 0
    unit = x[nz] / norms[nz].unsqueeze(1)
    cos[nz.unsqueeze(1) & nz.unsqueeze(0)] = (unit @ unit.T).flatten()
    return 0.5 + 0.5 * cos


def naive_graphcut(sim: torch.Tensor, budget: int, lam: float, tie_tol: float = 1e-9) -> list[int]:
    """Greedy on a dense similarity matrix, recomputing every gain from the matrix at every step.

    Gains within ``tie_tol`` of the best count as ties (lowest index wins): small inputs have exact
    structural ties (e.g. N = 2, or lam = 2 with one element left outside S) that float round-off
    would otherwise break arbitrarily. Random inputs never have distinct gains that close.
    """
    n = sim.shape[0]
    col_sum = sim.sum(dim=0)
    selected: list[int] = []
    for _ in range(budget):
        gains = lam * col_sum - 2 * (sim[selected].sum(dim=0) if selected else torch.zeros(n, dtype=sim.dtype))
        gains[selected] = -math.inf
        best = gains.max()
        selected.append(next(i for i in range(n) if gains[i] >= best - tie_tol))
    return selected


def materialise(g: GradientFeatures) -> torch.Tensor:
    """The explicit (N, C·(1+d)) matrix [δ, δ⊗e], built in float64."""
    g = g.to(dtype=torch.float64)
    n = len(g)
    return torch.cat([g.delta, (g.delta.unsqueeze(2) * g.embedding.unsqueeze(1)).reshape(n, -1)], dim=1)


def naive_herding(x: torch.Tensor, budget: int) -> list[int]:
    x = x.double()
    mu = x.mean(0)
    selected: list[int] = []
    for t in range(budget):
        base = x[selected].sum(0) if selected else torch.zeros_like(mu)
        best, best_val = None, math.inf
        for i in range(x.shape[0]):
            if i in selected:
                continue
            val = float(((mu * (t + 1) - base - x[i]) ** 2).sum())
            if val < best_val:
                best, best_val = i, val
        selected.append(best)
    return selected


def naive_kcenter(x: torch.Tensor, budget: int, first: int) -> list[int]:
    x = x.double()
    dist = ((x.unsqueeze(1) - x.unsqueeze(0)) ** 2).sum(-1)     # full N×N squared distances
    selected = [first]
    while len(selected) < budget:
        d = dist[:, selected].min(dim=1).values
        d[selected] = -math.inf
        selected.append(int(torch.argmax(d)))
    return selected[:budget]


def randn(seed: int, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ graphcut

def test_torch_argmax_returns_first_maximum():
    # graphcut's tie rule relies on this documented behaviour
    assert int(torch.argmax(torch.tensor([0, 3, 1, 3, 3], dtype=torch.uint8))) == 1
    assert int(torch.argmax(torch.tensor([2.0, 5.0, 5.0]))) == 1
    assert int(torch.argmax(torch.ones(100_000, dtype=torch.uint8))) == 0


@settings(max_examples=60, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 40), d=st.integers(1, 8), data=st.data(),
       lam=st.sampled_from([0.5, 1.0, 2.0]))
def test_graphcut_dense_matches_naive(seed, n, d, data, lam):
    budget = data.draw(st.integers(0, n))
    x = randn(seed, n, d)
    got = graphcut(x, budget, lam=lam)
    assert got.dtype == torch.long and got.shape == (budget,)
    assert got.tolist() == naive_graphcut(dense_similarity(x), budget, lam)


@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 30), c=st.integers(1, 5), d=st.integers(1, 6),
       data=st.data(), lam=st.sampled_from([0.5, 1.0, 2.0]))
def test_graphcut_gradient_features_match_naive_on_materialised_g(seed, n, c, d, data, lam):
    budget = data.draw(st.integers(0, n))
    gen = torch.Generator().manual_seed(seed)
    logits = torch.randn(n, c, generator=gen)
    labels = torch.randint(c, (n,), generator=gen)
    delta = torch.softmax(logits, 1) - torch.nn.functional.one_hot(labels, c).float()
    g = GradientFeatures(delta, torch.randn(n, d, generator=gen))
    assert graphcut(g, budget, lam=lam).tolist() == naive_graphcut(dense_similarity(materialise(g)), budget, lam)


def test_graphcut_float32_and_float64_inputs_agree_on_generic_data():
    x = randn(3, 200, 16)
    assert torch.equal(graphcut(x, 50), graphcut(x.double(), 50))


def test_graphcut_ties_go_to_lowest_index():
    x = randn(0, 1, 5).repeat(12, 1)             # all rows identical: every gain ties at every step
    assert graphcut(x, 12).tolist() == list(range(12))
    y = randn(1, 15, 4)
    twins = torch.cat([y, y])                     # row i and row i + 15 are identical
    picks = graphcut(twins, 30).tolist()
    # (a dense reference may rank exact twins either way: its two columns can differ in the last bit)
    for pos, p in enumerate(picks):
        if p >= 15:
            assert (p - 15) in picks[:pos], f"twin {p} picked before its lower-index copy {p - 15}"


def test_graphcut_duplicates_with_scaled_rows_tie():
    # positive power-of-two multiples have exactly the same direction: lower index first
    base = randn(7, 6, 3)
    x = torch.cat([base, 4.0 * base, 0.5 * base])
    picks = graphcut(x, 18).tolist()
    for pos, p in enumerate(picks):
        if p >= 6:
            assert any(q % 6 == p % 6 and q < p for q in picks[:pos])


def test_graphcut_budget_zero_and_full():
    x = randn(2, 9, 3)
    assert graphcut(x, 0).tolist() == []
    full = graphcut(x, 9)
    assert sorted(full.tolist()) == list(range(9))
    assert graphcut(x, 4).tolist() == full[:4].tolist()      # greedy: prefixes agree


def test_graphcut_zero_rows_count_as_cosine_zero():
    x = randn(4, 8, 3)
    x[[2, 5]] = 0
    assert graphcut(x, 8).tolist() == naive_graphcut(dense_similarity(x), 8, 1.0)


def test_graphcut_lam_changes_preference():
    # lam weighs coverage: with big lam the central point comes first, with lam=0 only diversity counts
    x = torch.tensor([[1.0, 0.0], [0.7, 0.7], [0.0, 1.0], [0.9, 0.3]])
    assert graphcut(x, 1, lam=5.0).tolist() == naive_graphcut(dense_similarity(x), 1, 5.0)
    assert graphcut(x, 4, lam=0.0).tolist() == naive_graphcut(dense_similarity(x), 4, 0.0)


def test_graphcut_errors():
    x = randn(0, 5, 3)
    with pytest.raises(ValueError, match=r"budget=6.*0 <= budget <= 5"):
        graphcut(x, 6)
    with pytest.raises(ValueError, match="budget=-1"):
        graphcut(x, -1)
    with pytest.raises(ValueError, match="budget"):
        graphcut(x, 2.0)
    with pytest.raises(ValueError, match="2-D"):
        graphcut(x[0], 1)
    bad = x.clone()
    bad[1, 1] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        graphcut(bad, 1)
    bad[1, 1] = float("inf")
    with pytest.raises(ValueError, match="finite"):
        graphcut(bad, 1)
    with pytest.raises(ValueError, match="lam"):
        graphcut(x, 1, lam=float("nan"))
    with pytest.raises(ValueError, match="lam"):
        graphcut(x, 1, lam=float("inf"))
    g = GradientFeatures(torch.full((3, 2), float("nan")), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="NaN"):
        graphcut(g, 1)
    with pytest.raises(ValueError, match="features"):
        graphcut([[1.0, 2.0]], 1)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_graphcut_on_cuda_matches_cpu():
    x = randn(5, 300, 16)
    got = graphcut(x.cuda(), 40)
    assert got.device.type == "cuda"
    assert torch.equal(got.cpu(), graphcut(x, 40))


# ------------------------------------------------------------------------------------- herding

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 30), d=st.integers(1, 6), data=st.data())
def test_herding_matches_naive(seed, n, d, data):
    budget = data.draw(st.integers(0, n))
    x = randn(seed, n, d) * 3 + 1
    assert herding(x, budget).tolist() == naive_herding(x, budget)


def test_herding_first_pick_is_nearest_to_mean_and_ties_lowest():
    x = torch.tensor([[0.0, 0.0], [10.0, 0.0], [4.0, 1.0], [6.0, -1.0]])
    assert herding(x, 1).tolist() == [2]          # mean (5, 0): rows 2 and 3 tie at distance √2
    with pytest.raises(ValueError, match="budget"):
        herding(x, 5)


# ------------------------------------------------------------------------------------ k-center

@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 100_000), n=st.integers(1, 30), d=st.integers(1, 6), data=st.data())
def test_kcenter_matches_naive(seed, n, d, data):
    budget = data.draw(st.integers(1, n))
    first = data.draw(st.integers(0, n - 1))
    x = randn(seed, n, d)
    assert kcenter_greedy(x, budget, initial=first).tolist() == naive_kcenter(x, budget, first)


def test_kcenter_seeded_first_centre_and_reproducibility():
    x = randn(9, 50, 4)
    a = kcenter_greedy(x, 10, seed=3)
    assert torch.equal(a, kcenter_greedy(x, 10, seed=3))
    assert a.tolist() == naive_kcenter(x, 10, int(a[0]))
    firsts = {int(kcenter_greedy(x, 1, seed=s)[0]) for s in range(20)}
    assert len(firsts) > 5, "the seed should move the random first centre"
    assert kcenter_greedy(x, 0).tolist() == []


def test_kcenter_initial_sequence_and_duplicates():
    x = torch.zeros(6, 2)                       # all identical: every remaining distance is 0
    assert kcenter_greedy(x, 6, initial=[4, 1]).tolist() == [4, 1, 0, 2, 3, 5]
    with pytest.raises(ValueError, match="distinct"):
        kcenter_greedy(x, 3, initial=[1, 1])
    with pytest.raises(ValueError, match="budget"):
        kcenter_greedy(x, 1, initial=[0, 1])
    with pytest.raises(ValueError, match="initial"):
        kcenter_greedy(x, 2, initial=6)


# ------------------------------------------------------------------------------- random, per class

def test_random_subset_properties():
    a = random_subset(100, 30, seed=1)
    assert a.shape == (30,) and torch.equal(a, a.sort().values) and a.unique().numel() == 30
    assert int(a.min()) >= 0 and int(a.max()) < 100
    assert torch.equal(a, random_subset(100, 30, seed=1))
    assert not torch.equal(a, random_subset(100, 30, seed=2))
    assert random_subset(torch.zeros(7, 2), 7).tolist() == list(range(7))
    with pytest.raises(ValueError, match="budget"):
        random_subset(5, 6)


def test_per_class_runs_selector_inside_each_class():
    x = randn(11, 40, 3)
    labels = torch.tensor([3, 1, 2] * 13 + [1])
    got = per_class(graphcut, x, labels, 4, lam=2.0)
    expected = []
    for c in (1, 2, 3):
        members = (labels == c).nonzero().flatten()
        expected += members[graphcut(x[members], 4, lam=2.0)].tolist()
    assert got.tolist() == expected
    sizes = per_class(random_subset, x, labels, [2, 0, 5], seed=4)
    assert [int((labels[sizes] == c).sum()) for c in (1, 2, 3)] == [2, 0, 5]
    assert torch.equal(sizes, per_class(random_subset, x, labels, [2, 0, 5], seed=4))
    g = GradientFeatures(randn(1, 40, 3), randn(2, 40, 2))
    assert per_class(graphcut, g, labels, 2).shape == (6,)
    with pytest.raises(ValueError, match=r"class 2 \(13 samples\)"):
        per_class(graphcut, x, labels, 14)
    with pytest.raises(ValueError, match="3 classes"):
        per_class(graphcut, x, labels, [1, 2])
    with pytest.raises(ValueError, match="length"):
        per_class(graphcut, x, labels[:-1], 1)


def test_never_learned_marks_exactly_the_samples_never_classified_correctly():
    from dscore.select import ForgettingTracker, never_learned

    # 4 samples over 4 epochs: learned and kept, learned then forgotten twice, never learned, learned late
    history = torch.tensor([[1, 1, 0, 0], [1, 0, 0, 0], [1, 1, 0, 0], [1, 0, 0, 1]], dtype=torch.bool)
    tracker = ForgettingTracker(4)
    for row in history:
        tracker.update(torch.arange(4), row)
    assert never_learned(tracker.scores(), 4).tolist() == [False, False, True, False]
    with pytest.raises(ValueError, match="epochs"):
        never_learned(tracker.scores(), 0)
