"""Tests for dscore.select's forgetting and coreset modules: forgetting events, forgetting selection and the coreset dispatcher."""
from __future__ import annotations

import math

import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore.select import (
    METHODS,
    ForgettingTracker,
    class_budgets,
    count_forgetting_events,
    forgetting_scores,
    forgetting_select,
    select_coreset,
)
from dscore.features import GradientFeatures
from dscore.models import create_model
from dscore.select import graphcut, herding, kcenter_greedy, per_class


def randn(seed: int, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


# ------------------------------------------------------------------------------------ references

def naive_forgetting(history: list[tuple[list[int], list[bool]]], n: int) -> tuple[list[int], list[bool], list[int]]:
    """Per-sample lists of correctness in presentation order; count True→False transitions."""
    seen: list[list[bool]] = [[] for _ in range(n)]
    for idx, correct in history:
        for i, c in zip(idx, correct):
            seen[i].append(c)
    events = [sum(1 for a, b in zip(s, s[1:]) if a and not b) for s in seen]
    return events, [any(s) for s in seen], [len(s) for s in seen]


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 12), st.integers(1, 8), st.integers(0, 2**16))
def test_tracker_matches_naive_on_synthetic_histories(n, rounds, seed):
    gen = torch.Generator().manual_seed(seed)
    history = []
    for _ in range(rounds):                                 # each round: a random subset in random batches
        presented = torch.randperm(n, generator=gen)[: int(torch.randint(0, n + 1, (1,), generator=gen))]
        for batch in presented.split(3):
            correct = torch.rand(batch.numel(), generator=gen) < 0.6
            history.append((batch.tolist(), correct.tolist()))
    tracker = ForgettingTracker(n)
    for idx, correct in history:
        tracker.update(torch.tensor(idx, dtype=torch.long), torch.tensor(correct, dtype=torch.bool))
    events, learned, counts = naive_forgetting(history, n)
    assert tracker.events.tolist() == events
    assert tracker.ever_correct.tolist() == learned
    assert tracker.presentations.tolist() == counts
    scores = tracker.scores()
    top = max(max(counts), 1)
    assert scores.tolist() == [float(e) if ok else float(top) for e, ok in zip(events, learned)]
    learned_scores = [e for e, ok in zip(events, learned) if ok]
    if learned_scores and not all(learned):
        assert float(top) > max(learned_scores)


def test_full_history_counting():
    correct = torch.tensor([[1, 0, 1, 0], [0, 0, 1, 1], [1, 0, 0, 0], [0, 1, 1, 1]], dtype=torch.bool)
    assert count_forgetting_events(correct).tolist() == [2, 0, 1, 1]
    tracker = ForgettingTracker(4)
    for row in correct:
        tracker.update(torch.arange(4), row)
    assert torch.equal(tracker.events, count_forgetting_events(correct))


def test_tracker_validation():
    tracker = ForgettingTracker(3)
    with pytest.raises(ValueError, match="distinct"):
        tracker.update(torch.tensor([0, 0]), torch.tensor([True, False]))
    with pytest.raises(ValueError, match="same length"):
        tracker.update(torch.tensor([0, 1]), torch.tensor([True]))
    with pytest.raises(ValueError, match=r"\[0, 3\)"):
        tracker.update(torch.tensor([3]), torch.tensor([True]))


def test_forgetting_scores_train_and_are_seeded():
    images = torch.rand(24, 1, 8, 8, generator=torch.Generator().manual_seed(0))
    labels = torch.arange(24) % 3

    def run(seed):
        model = create_model("convnet", depth=1, width=4, num_classes=3, in_channels=1, image_size=8, seed=0)
        return forgetting_scores(model, images, labels, {"epochs": 4, "batch_size": 8, "lr": 0.05}, device="cpu",
                                 seed=seed, progress=False)

    a, b = run(1), run(1)
    assert a.shape == (24,) and a.dtype == torch.float64
    assert torch.equal(a, b)
    assert float(a.min()) >= 0 and float(a.max()) <= 4
    assert bool(((a == a.round())).all())


# --------------------------------------------------------------------------------- forgetting pick

def test_forgetting_select_picks_most_forgotten_per_class_ties_low_index():
    scores = torch.tensor([1.0, 3.0, 3.0, 0.0, 2.0, 5.0, 5.0, 1.0])
    labels = torch.tensor([0, 0, 0, 0, 1, 1, 1, 1])
    assert forgetting_select(scores, labels, 2).tolist() == [1, 2, 5, 6]
    assert forgetting_select(scores, labels, [3, 1]).tolist() == [1, 2, 0, 5]
    with pytest.raises(ValueError, match="exceeds"):
        forgetting_select(scores, labels, 5)


# -------------------------------------------------------------------------------------- dispatcher

@pytest.fixture
def data():
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 13)
    return labels, randn(1, 30, 5)


@pytest.mark.parametrize("method", METHODS)
def test_dispatcher_sizes_classes_and_seed(method, data):
    labels, feats = data
    forgetting = torch.rand(30, generator=torch.Generator().manual_seed(2))
    kw = dict(features=feats, forgetting=forgetting)
    picks = select_coreset(method, labels, budget_per_class=[3, 2, 4], seed=5, **kw)
    assert picks.dtype == torch.long and torch.unique(picks).numel() == 9
    assert torch.bincount(labels[picks], minlength=3).tolist() == [3, 2, 4]
    assert torch.equal(picks, select_coreset(method, labels, budget_per_class=[3, 2, 4], seed=5, **kw))
    by_ratio = select_coreset(method, labels, ratio=0.3, seed=5, **kw)
    assert by_ratio.numel() == 9
    assert torch.bincount(labels[by_ratio], minlength=3).tolist() == class_budgets(labels, 0.3).tolist()


def test_dispatcher_uses_the_select_functions(data):
    labels, feats = data
    assert torch.equal(select_coreset("herding", labels, budget_per_class=3, features=feats),
                       per_class(herding, feats, labels, 3))
    assert torch.equal(select_coreset("kcenter", labels, budget_per_class=3, features=feats, seed=4),
                       per_class(kcenter_greedy, feats, labels, 3, seed=4))
    g = GradientFeatures(randn(3, 30, 3), randn(4, 30, 5))
    assert torch.equal(select_coreset("graphcut", labels, budget_per_class=2, features=g, lam=0.5),
                       per_class(graphcut, g, labels, 2, lam=0.5))


def test_random_depends_on_seed(data):
    labels, _ = data
    a = select_coreset("random", labels, budget_per_class=3, seed=0)
    b = select_coreset("random", labels, budget_per_class=3, seed=1)
    assert not torch.equal(a, b)


def test_dispatcher_errors(data):
    labels, feats = data
    with pytest.raises(ValueError, match="method='dm'"):
        select_coreset("dm", labels, budget_per_class=1)
    with pytest.raises(ValueError, match="exactly one"):
        select_coreset("random", labels)
    with pytest.raises(ValueError, match="exactly one"):
        select_coreset("random", labels, budget_per_class=1, ratio=0.1)
    with pytest.raises(ValueError, match="needs features"):
        select_coreset("herding", labels, budget_per_class=1)
    with pytest.raises(ValueError, match="forgetting="):
        select_coreset("forgetting", labels, budget_per_class=1)
    with pytest.raises(ValueError, match="exceeds"):
        select_coreset("kcenter", labels, budget_per_class=8, features=feats)
    with pytest.raises(ValueError, match="ratio"):
        select_coreset("random", labels, ratio=1.5)
    with pytest.raises(ValueError, match="rows"):
        select_coreset("herding", labels, budget_per_class=1, features=feats[:5])


def test_class_budgets_sum():
    labels = torch.tensor([0] * 10 + [1] * 7 + [2] * 13)
    for ratio in (0.1, 0.25, 0.5, 1.0):
        b = class_budgets(labels, ratio)
        assert int(b.sum()) == math.floor(ratio * 30 + 0.5) and bool((b <= torch.tensor([10, 7, 13])).all())
