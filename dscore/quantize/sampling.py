"""DQ/ADQ sampling: importance per bin, adaptive per-bin budgets, class-stratified sampling from bins.

* :func:`zscore`, :func:`importance_scores` — ADQ's IS = z(RS) + z(DS);
* :func:`bin_budgets` — ADQ's adaptive per-bin budgets (β = 0 is DQ's proportional split);
* :func:`sample_from_bins`, :func:`dq_select`, :func:`adq_select` — class-stratified sampling.

The budget formula is stated on :func:`bin_budgets`; book/fidelity.md lists where it differs from the authors'
code.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch

from ..features import GradientFeatures
from ..select import budget_from_ratio, proportional_budgets
from ..select.budget import hand_out_remainder, int_vector
from ..select.greedy import Features, check_labels, num_rows
from ..utils import check_float, check_int, make_generator
from .bins import check_bins, generate_bins

__all__ = ["zscore", "importance_scores", "bin_budgets", "sample_from_bins", "dq_select", "adq_select"]


def zscore(x) -> torch.Tensor:
    """Standardise a 1-D score vector: (x − mean) / std with the population std (ddof = 0).

    A constant vector (all deviations within float round-off of zero) maps to zeros, never NaN.
    Returns float64 on the input's device.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"zscore expects a non-empty 1-D vector, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"zscore expects finite values, got {x.tolist()}")
    dev = x - x.mean()
    scale = float(x.abs().max())
    if float(dev.abs().max()) <= 16 * torch.finfo(torch.float64).eps * scale:
        return torch.zeros_like(x)
    return dev / dev.pow(2).mean().sqrt()


def importance_scores(rs, ds) -> torch.Tensor:
    """ADQ importance per bin: ``IS = z(RS) + z(DS)`` (population z-scores over bins). (K,) float64."""
    rs = torch.as_tensor(rs, dtype=torch.float64)
    ds = torch.as_tensor(ds, dtype=torch.float64)
    if rs.shape != ds.shape:
        raise ValueError(f"rs has shape {tuple(rs.shape)} but ds has {tuple(ds.shape)}; one value per bin each")
    return zscore(rs) + zscore(ds.to(rs.device))


def bin_budgets(bin_sizes, budget: int, importance=None, *, beta: float = 0.0) -> torch.Tensor:
    """ADQ per-bin budgets; β = 0 gives DQ's proportional split. Returns an int64 (K,) CPU tensor.

    With bin sizes N(n), total budget M and ``Î = softmax(importance)`` over the K bins:
    ``r_n = β·Î_n + (1−β)·N(n)/Σ_m N(m)``, ``q_n = min(⌊r_n·M⌋, N(n))``; then the remaining
    ``M − Σq`` units go one at a time to the bin with the largest ``r_n·M − q_n`` among bins with
    room (``q_n < N(n)``), ties to the lowest bin index. Hence Σq = M and q_n <= N(n) exactly.

    The one-at-a-time hand-out is done in one vectorised pass: bin n's j-th extra unit has key
    ``r_n·M − (q_n + j)``, keys fall by one per unit, so the process hands out the ``M − Σq`` largest
    keys (stable sort: equal keys in bin order). For β = 0 (DQ) everything is exact integer arithmetic
    (keys scaled by ΣN), so equal remainders tie exactly and go to the lowest bin; for β > 0 the keys
    are float64 rounded to 1e-9 of a unit before the comparison.

    Raises ValueError for β ∉ [0, 1], M ∉ [0, ΣN], importance missing while β > 0, or an
    importance whose shape is not (K,) or that is not finite.
    """
    sizes = int_vector("bin_sizes", bin_sizes)
    if sizes.numel() == 0:
        raise ValueError("bin_sizes is empty; at least one bin is required")
    total = int(sizes.sum())
    budget = check_int("budget", budget, low=0, high=total)
    beta = check_float("beta", beta, low=0.0, high=1.0)
    k = sizes.numel()
    if importance is None:
        if beta > 0:
            raise ValueError(f"importance is required when beta={beta} > 0 (beta=0 needs none)")
        weights = torch.zeros(k, dtype=torch.float64)
    else:
        imp = torch.as_tensor(importance, dtype=torch.float64).cpu()
        if imp.shape != (k,):
            raise ValueError(f"importance has shape {tuple(imp.shape)} but there are {k} bins; expected shape ({k},)")
        if not bool(torch.isfinite(imp).all()):
            raise ValueError(f"importance={imp.tolist()} must be finite")
        weights = torch.softmax(imp, dim=0)
    if budget == 0:
        return torch.zeros(k, dtype=torch.long)
    if beta == 0.0:
        # DQ: exact integer arithmetic, so equal remainders really are equal and the tie rule holds.
        return proportional_budgets(sizes, budget)
    scaled = (beta * budget) * weights + (1.0 - beta) * (sizes.double() * budget / total)    # r_n·M
    quota = torch.minimum(torch.floor(scaled).long(), sizes)
    while int(quota.sum()) > budget:    # only reachable through round-off in r_n·M; take from the smallest key
        key = (scaled - quota.double()).masked_fill(quota == 0, math.inf)
        drop = (key.numel() - 1) - int(torch.argmin(key.flip(0)))
        quota[drop] -= 1
    # keys rounded to 1e-9 of a unit so that round-off cannot break an exact tie
    return hand_out_remainder(sizes, quota, torch.round(scaled * 1e9).long(), 10**9, budget)


def sample_from_bins(bins: Sequence[torch.Tensor], labels, budgets, *, seed: int = 0) -> torch.Tensor:
    """Class-stratified uniform sampling of ``budgets[k]`` items from every bin k.

    Inside bin k its budget q_k is split over the classes present in proportion to their counts:
    class c's ideal share is ``t_kc = q_k·n_kc/s_k``; it first gets ``⌊t_kc⌋``, then the leftover
    units go one at a time to the class with the largest *cumulative* shortfall
    ``Σ_{j≤k} t_jc − (units c already has)``, never more than a class holds in the bin; equal keys go
    to the smaller label. Carrying the shortfall over bins (bins in the given order) keeps every
    class's total within one unit of its ideal ``Σ_k t_kc`` — a per-bin largest-remainder rule would
    hand every bin's leftovers to the same low labels, and at small budgets starve the high ones.
    Each (bin, class) group is then sampled uniformly without replacement. One seeded stream of random
    keys over all items (in bin order) drives every group, so the result depends only on (bins, labels,
    budgets, seed). Returns the sorted global indices (int64, on the labels' device).
    Time O(Σ|bins| log Σ|bins| + K·C) for K bins and C classes.
    """
    labels = torch.as_tensor(labels)
    labels = check_labels(labels, labels.shape[0] if labels.dim() == 1 else -1)
    bins = check_bins(bins, labels.shape[0])
    budgets = int_vector("budgets", budgets)
    seed = check_int("seed", seed, low=0)
    if budgets.numel() != len(bins):
        raise ValueError(f"budgets has {budgets.numel()} entries but there are {len(bins)} bins")
    sizes = [b.numel() for b in bins]
    for k, (q, s) in enumerate(zip(budgets.tolist(), sizes)):
        if q > s:
            raise ValueError(f"budgets[{k}]={q} exceeds bin {k}'s size {s}; allowed: 0 <= budget <= {s}")
    items = torch.cat([b.cpu() for b in bins])
    if torch.unique(items).numel() != items.numel():
        raise ValueError("bins overlap; every index may appear in at most one bin")
    item_labels = labels.cpu()[items]
    group = torch.empty(items.numel(), dtype=torch.long)
    all_classes = torch.unique(item_labels)
    shortfall = torch.zeros(all_classes.numel(), dtype=torch.float64)   # Σ_{j<k} t_jc − units given
    quotas, offset, pos = [], 0, 0
    for k, s in enumerate(sizes):    # one pass per bin (K bins), vectorised over classes
        classes, inverse, counts = torch.unique(item_labels[pos : pos + s], return_inverse=True, return_counts=True)
        group[pos : pos + s] = inverse + offset
        if s:
            q = int(budgets[k])
            where = torch.searchsorted(all_classes, classes)
            ideal = counts.double() * q / s                              # t_kc
            floor = torch.minimum((counts * q) // s, counts)
            key = shortfall[where] + ideal                               # before any unit of this bin
            # keys rounded to 1e-9 of a unit so that round-off cannot break an exact tie
            quota = hand_out_remainder(counts, floor, torch.round(key * 1e9).long(), 10**9, q)
            shortfall[where] = key - quota.double()
            quotas.append(quota)
        offset += classes.numel()
        pos += s
    if not quotas:
        return torch.zeros(0, dtype=torch.long, device=labels.device)
    quota = torch.cat(quotas)
    keys = torch.rand(items.numel(), generator=make_generator(seed), dtype=torch.float64)
    order = torch.argsort(keys, stable=True)
    order = order[torch.argsort(group[order], stable=True)]                 # by group, random inside
    group_counts = torch.bincount(group, minlength=quota.numel())
    group_start = torch.cumsum(group_counts, 0) - group_counts
    rank = torch.arange(items.numel()) - group_start[group[order]]
    chosen = items[order[rank < quota[group[order]]]]
    return chosen.sort().values.to(labels.device)


def dq_select(features: Features, labels, ratio: float, *, num_bins: int = 10, lam: float = 1.0, seed: int = 0,
              progress: bool = False) -> torch.Tensor:
    """Dataset Quantization selection: GraphCut bins, then the same fraction from every bin.

    ``M = round(ratio·N)`` split over bins by :func:`bin_budgets` with β = 0 (proportional), then
    :func:`sample_from_bins` with ``seed``. Returns sorted global indices (int64).
    """
    check_float("ratio", ratio, low=0.0, high=1.0, low_open=True)
    if isinstance(features, np.ndarray):
        features = torch.from_numpy(features)
    if not isinstance(features, (torch.Tensor, GradientFeatures)):
        raise ValueError(f"features must be a tensor (N, d) or GradientFeatures, got {type(features).__name__}")
    budget = budget_from_ratio(ratio, num_rows(features))
    seed = check_int("seed", seed, low=0)
    bins = generate_bins(features, labels, num_bins, lam=lam, progress=progress)
    budgets = bin_budgets([b.numel() for b in bins], budget)
    return sample_from_bins(bins, labels, budgets, seed=seed)


def adq_select(bins: Sequence[torch.Tensor], labels, ratio: float, importance, *, beta: float = 0.3,
               temperature: float = 2.0, seed: int = 0, return_budgets: bool = False):
    """Adaptive Dataset Quantization selection from precomputed bins.

    ``M = round(ratio·Σ|bins|)``; per-bin budgets ``bin_budgets(sizes, M, importance / temperature,
    beta=beta)``; then class-stratified uniform sampling inside each bin with ``seed``. β = 0 gives
    exactly :func:`dq_select`'s result for the same bins and seed. Returns sorted global indices, or
    ``(indices, budgets)`` when ``return_budgets``. The defaults β = 0.3, T = 2 are those of
    :func:`dscore.quantize.pipeline.adq_indices`, chosen on a validation split (see there).
    """
    labels = torch.as_tensor(labels)
    bins = check_bins(bins, labels.shape[0] if labels.dim() == 1 else 0)
    temperature = check_float("temperature", temperature, low=0.0, high=math.inf, low_open=True, high_open=True)
    sizes = [b.numel() for b in bins]
    budget = budget_from_ratio(ratio, sum(sizes))
    if importance is None:
        raise ValueError("importance is required for adq_select (use beta=0 to ignore it)")
    importance = torch.as_tensor(importance, dtype=torch.float64).cpu() / temperature
    budgets = bin_budgets(sizes, budget, importance, beta=beta)
    chosen = sample_from_bins(bins, labels, budgets, seed=seed)
    return (chosen, budgets) if return_budgets else chosen
