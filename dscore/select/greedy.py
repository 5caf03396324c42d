"""One-shot subset selection: GraphCut (DQ's bin generator), Herding, k-Center greedy, random.

All greedy selectors return indices **in pick order** as an int64 tensor on the device of the
features, run in O(B·N·d) time and O(N·d) memory for N rows of dimension d and budget B (never an
N×N or B×N matrix), and are deterministic (k-Center's random first centre comes from ``seed``).
Scores are computed in float64 whatever the input dtype, so that the picks agree with a dense
textbook implementation on generic inputs; ties go to the lowest index.
"""
from __future__ import annotations

import math
from typing import Callable, Sequence

import numpy as np
import torch

from ..features import GradientFeatures
from ..utils import check_float, check_int, make_generator, tqdm

__all__ = ["graphcut", "graphcut_order", "herding", "kcenter_greedy", "random_subset", "per_class", "TIE_RTOL",
           "Features", "CosineOracle", "check_features", "check_labels", "num_rows", "subset_rows"]

# Two GraphCut gains closer than TIE_RTOL · (largest possible |gain|) are treated as equal and the
# lower index wins. Float64 round-off in the O(N·d) sums is far below this (~1e-14 relative), so
# exact ties (duplicate rows, whose BLAS dot products may still differ in the last bit) resolve to the
# lowest index, while distinct gains on real data are never merged.
TIE_RTOL = 1e-12

Features = torch.Tensor | GradientFeatures


def _check_dense(name: str, x) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not isinstance(x, torch.Tensor):
        raise ValueError(f"{name} must be a tensor (or NumPy array) of shape (N, d) or GradientFeatures, "
                         f"got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must be 2-D (N, d), got shape {tuple(x.shape)}")
    if x.dtype == torch.bool or x.is_complex():
        raise ValueError(f"{name} must hold real numbers, got dtype {x.dtype}")
    if x.numel() and not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values; all entries must be finite")
    return x


def check_features(x) -> Features:
    if isinstance(x, GradientFeatures):
        if not x.is_finite():
            raise ValueError("features (GradientFeatures) contain NaN or infinite values; all entries must be finite")
        return x
    return _check_dense("features", x)


def num_rows(x: Features) -> int:
    return len(x) if isinstance(x, GradientFeatures) else x.shape[0]


def _device(x: Features) -> torch.device:
    return x.device


class CosineOracle:
    """float64 cosine geometry of the rows: Σ_v cos(v, ·) and one row cos(j, ·) at a time."""

    def __init__(self, features: Features):
        if isinstance(features, GradientFeatures):
            g = features.to(dtype=torch.float64)
            self._delta, self._emb = g.delta, g.embedding
            self._inv = g.inverse_norms()
            self._cos_sum = g.cosine_sum()
            self._unit = None
        else:
            unit = features.to(torch.float64, copy=True)          # one float64 copy, normalised in place
            norms = torch.linalg.vector_norm(unit, dim=1, keepdim=True)
            self._unit = unit.div_(torch.where(norms > 0, norms, torch.ones_like(norms)))
            self._cos_sum = self._unit @ self._unit.sum(dim=0)

    @property
    def cos_sum(self) -> torch.Tensor:
        return self._cos_sum

    def subtract_row_(self, out: torch.Tensor, j: torch.Tensor) -> torch.Tensor:
        """``out -= cos(row j, all rows)`` in place (one fused mat-vec for dense features)."""
        if self._unit is not None:
            return out.addmv_(self._unit, self._unit.index_select(0, j).squeeze(0), alpha=-1.0)
        return out.sub_(self.row(j))

    def row(self, j: torch.Tensor) -> torch.Tensor:
        """cos(row j, all rows) as an (N,) tensor; ``j`` is a 1-element index tensor (no host sync)."""
        if self._unit is not None:
            return self._unit @ self._unit.index_select(0, j).squeeze(0)
        dj = self._delta.index_select(0, j).squeeze(0)
        ej = self._emb.index_select(0, j).squeeze(0)
        return (self._delta @ dj) * (1.0 + self._emb @ ej) * (self._inv.index_select(0, j) * self._inv)


def _first_within(scores: torch.Tensor, tol: float) -> torch.Tensor:
    """Index (1-element tensor) of the first entry within ``tol`` of the maximum of ``scores``."""
    return torch.argmax(scores.ge(scores.max() - tol).view(torch.uint8)).reshape(1)


def graphcut_order(oracle: CosineOracle, n: int, budget: int, lam: float, device: torch.device,
              progress: bool) -> torch.Tensor:
    picks = torch.empty(budget, dtype=torch.long, device=device)
    if budget == 0:
        return picks
    # gain(x) = lam·Σ_v s(v,x) − 2·Σ_{j∈S} s(j,x) with s = ½ + ½cos equals
    # ½·lam·Σ_v cos(v,x) − Σ_{j∈S} cos(j,x) plus a term that does not depend on x; argmax on the latter.
    gains = (0.5 * lam) * oracle.cos_sum
    tol = TIE_RTOL * (0.5 * abs(lam) * n + budget + 1.0)
    chosen = []
    for t in tqdm(range(budget), desc="graphcut", disable=not progress, leave=False):
        pick = _first_within(gains, tol)
        chosen.append(pick)
        if t + 1 < budget:
            oracle.subtract_row_(gains, pick)
        gains.index_fill_(0, pick, -math.inf)
    return torch.cat(chosen)


def graphcut(features: Features, budget: int, *, lam: float = 1.0, progress: bool = False) -> torch.Tensor:
    """Greedy GraphCut selection (Iyer et al. 2021) as used by DQ; returns indices in pick order.

    Args:
        features: dense (N, d) tensor, or :class:`~dscore.features.GradientFeatures` (cosine taken
            implicitly on ``g = [δ, δ⊗e]``). Zero rows have cosine 0 with everything.
        budget: number of picks B, 0 <= B <= N.
        lam: weight of the coverage term (any finite float).

    With ``s(a,b) = 0.5 + 0.5·cos(a,b)`` and ground set V = all rows, step t picks
    ``argmax_{x∉S} lam·Σ_{v∈V} s(v,x) − 2·Σ_{j∈S} s(j,x)``, ties to the lowest index (gains within
    ``TIE_RTOL`` of each other count as ties). The V-sum is one mat-vec on unit rows; the S-sum is a
    running vector updated with one similarity row per pick.

    Returns an int64 (B,) tensor on the features' device. Time O(B·N·d), memory O(N·d).
    """
    features = check_features(features)
    n = num_rows(features)
    budget = check_int("budget", budget, low=0, high=n)
    lam = check_float("lam", lam, low=-math.inf, high=math.inf, low_open=True, high_open=True)
    progress = bool(progress)
    if budget == 0:
        return torch.empty(0, dtype=torch.long, device=_device(features))
    return graphcut_order(CosineOracle(features), n, budget, lam, _device(features), progress)


def herding(features: torch.Tensor, budget: int, *, progress: bool = False) -> torch.Tensor:
    """Herding (Welling 2009; the coreset variant): greedily match the mean of the selection to the mean.

    ``features``: (N, d) dense tensor (used as given, not normalised). With μ the mean of all rows
    and S the first t picks, step t picks ``argmin_{x∉S} ‖μ − (Σ_{j∈S} x_j + x)/(t+1)‖``, i.e. the row
    nearest to ``r_t = (t+1)·μ − Σ_S x_j`` (ties to the lowest index). The running sum is updated
    incrementally. Returns (B,) int64 indices in pick order. Time O(B·N·d), memory O(N·d).
    """
    x = _check_dense("features", features).to(torch.float64)
    n = x.shape[0]
    budget = check_int("budget", budget, low=0, high=n)
    picks = torch.empty(budget, dtype=torch.long, device=x.device)
    if budget == 0:
        return picks
    mean = x.mean(dim=0)
    selected_sum = torch.zeros_like(mean)
    taken = torch.zeros(n, dtype=torch.bool, device=x.device)
    for t in tqdm(range(budget), desc="herding", disable=not progress, leave=False):
        target = mean * (t + 1) - selected_sum
        dist = ((x - target) ** 2).sum(dim=1).masked_fill_(taken, math.inf)
        pick = torch.argmin(dist).reshape(1)
        picks[t : t + 1] = pick
        taken.index_fill_(0, pick, True)
        selected_sum += x.index_select(0, pick).squeeze(0)
    return picks


def _initial_centres(initial, n: int, budget: int, generator: torch.Generator) -> list[int]:
    if initial is None:
        return [int(torch.randint(n, (1,), generator=generator))] if budget > 0 else []
    if isinstance(initial, torch.Tensor):
        initial = initial.reshape(-1).tolist()
    elif not isinstance(initial, Sequence):
        initial = [initial]
    centres = [check_int("initial", i, low=0, high=n - 1) for i in initial]
    if len(set(centres)) != len(centres):
        raise ValueError(f"initial={centres} contains repeated indices; initial centres must be distinct")
    if len(centres) > budget:
        raise ValueError(f"initial has {len(centres)} centres but budget={budget}; allowed: len(initial) <= budget")
    return centres


def kcenter_greedy(features: torch.Tensor, budget: int, *, seed: int = 0, initial=None,
                   progress: bool = False) -> torch.Tensor:
    """k-Center greedy (Sener & Savarese 2018): repeatedly take the row farthest from the chosen centres.

    ``features``: (N, d) dense tensor; Euclidean distance. The first centre is ``initial`` (an index
    or a sequence of distinct indices, which become the first picks) or, if None, drawn uniformly with
    ``seed``. Then each step picks ``argmax_{x∉S} min_{c∈S} ‖x − c‖`` (ties to the lowest index),
    keeping a running-min distance vector. Returns (B,) int64 indices in pick order.
    Time O(B·N·d), memory O(N·d).
    """
    x = _check_dense("features", features).to(torch.float64)
    n = x.shape[0]
    budget = check_int("budget", budget, low=0, high=n)
    seed = check_int("seed", seed, low=0)
    centres = _initial_centres(initial, n, budget, make_generator(seed))
    picks = torch.empty(budget, dtype=torch.long, device=x.device)
    if budget == 0:
        return picks
    picks[: len(centres)] = torch.tensor(centres, dtype=torch.long, device=x.device)
    taken = torch.zeros(n, dtype=torch.bool, device=x.device)
    min_dist = torch.full((n,), math.inf, dtype=torch.float64, device=x.device)
    bar = tqdm(total=budget, desc="k-center", disable=not progress, leave=False)
    for t in range(budget):
        if t >= len(centres):
            pick = torch.argmax(min_dist.masked_fill(taken, -math.inf)).reshape(1)
            picks[t : t + 1] = pick
        else:
            pick = picks[t : t + 1]
        taken.index_fill_(0, pick, True)
        if t + 1 < budget:
            torch.minimum(min_dist, ((x - x.index_select(0, pick)) ** 2).sum(dim=1), out=min_dist)
        bar.update(1)
    bar.close()
    return picks


def random_subset(n, budget: int, seed: int = 0) -> torch.Tensor:
    """``budget`` distinct indices drawn uniformly from range(n) with ``seed``; sorted ascending.

    ``n`` is an int or anything with ``len`` (a feature tensor, GradientFeatures), so it can be used
    with :func:`per_class`. Returns an int64 CPU tensor. O(n) time.
    """
    if isinstance(n, (torch.Tensor, GradientFeatures)):
        n = len(n)
    n = check_int("n", n, low=0)
    budget = check_int("budget", budget, low=0, high=n)
    seed = check_int("seed", seed, low=0)
    return torch.randperm(n, generator=make_generator(seed))[:budget].sort().values


def check_labels(labels, n: int) -> torch.Tensor:
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.is_floating_point() or labels.is_complex() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer tensor, got dtype {labels.dtype} and shape {tuple(labels.shape)}")
    if labels.shape[0] != n:
        raise ValueError(f"labels has length {labels.shape[0]} but features has {n} rows; they must match")
    return labels.long()


def subset_rows(features, idx: torch.Tensor):
    if isinstance(features, GradientFeatures):
        return features.subset(idx)
    return features.index_select(0, idx.to(features.device))


def per_class(selector: Callable, features: Features, labels, budget_per_class, **kw) -> torch.Tensor:
    """Run ``selector(class_features, budget, **kw)`` inside every class; return global indices.

    ``budget_per_class`` is one int for all classes or a sequence with one int per class (classes
    = the distinct labels in ascending order). If ``seed`` is among ``kw``, class number c (0-based in
    that order) gets ``seed + c`` so that classes draw independently. Output: int64 tensor on the
    labels' device, classes in ascending label order, each class's indices in the selector's order.
    """
    if not callable(selector):
        raise ValueError(f"selector={selector!r} must be callable")
    if isinstance(features, np.ndarray):
        features = torch.from_numpy(features)
    if not isinstance(features, (torch.Tensor, GradientFeatures)):
        raise ValueError(f"features must be a tensor or GradientFeatures, got {type(features).__name__}")
    n = num_rows(features)
    labels = check_labels(labels, n)
    classes = torch.unique(labels).tolist()
    if isinstance(budget_per_class, (Sequence, torch.Tensor)):
        budgets = [check_int("budget_per_class", b, low=0) for b in list(budget_per_class)]
        if len(budgets) != len(classes):
            raise ValueError(f"budget_per_class has {len(budgets)} entries but there are {len(classes)} classes")
    else:
        budgets = [check_int("budget_per_class", budget_per_class, low=0)] * len(classes)
    members = [(labels == c).nonzero().flatten() for c in classes]
    for c, idx, b in zip(classes, members, budgets):
        if b > idx.numel():
            raise ValueError(f"budget_per_class={b} exceeds the size of class {c} ({idx.numel()} samples); "
                             f"allowed: 0 <= budget <= {idx.numel()}")
    out = []
    for k, (idx, b) in enumerate(zip(members, budgets)):
        kwargs = dict(kw)
        if "seed" in kwargs:
            kwargs["seed"] = kwargs["seed"] + k
        local = selector(subset_rows(features, idx), b, **kwargs)
        out.append(idx[torch.as_tensor(local, dtype=torch.long).to(idx.device)])
    if not out:
        return torch.zeros(0, dtype=torch.long, device=labels.device)
    return torch.cat(out)
