"""Budgets shared by every selector: keep ratios → sample counts, and proportional integer splits.

* :func:`budget_from_ratio` — ``M = round(ratio·n)``;
* :func:`proportional_budgets` — split M over groups in proportion to their sizes (largest
  remainders, exact integer arithmetic, ties to the lowest group);
* :func:`hand_out_remainder` — the one-at-a-time largest-remainder hand-out that both the
  proportional split and ADQ's adaptive bin budgets (:func:`dscore.quantize.bin_budgets`) end with;
* :func:`class_budgets` — per-class budgets of a class-balanced coreset at a keep ratio.
"""
from __future__ import annotations

import math

import torch

from ..utils import check_float, check_int

__all__ = ["int_vector", "budget_from_ratio", "hand_out_remainder", "proportional_budgets", "class_budgets"]


def int_vector(name: str, values) -> torch.Tensor:
    """``values`` as a 1-D int64 CPU tensor of non-negative integers, or a ValueError naming ``name``."""
    t = torch.as_tensor(values)
    if t.dim() != 1 or (t.numel() and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)):
        raise ValueError(f"{name} must be a 1-D sequence of integers, got {values!r}")
    t = t.to(device="cpu", dtype=torch.long)
    if t.numel() and int(t.min()) < 0:
        raise ValueError(f"{name}={t.tolist()} has a negative entry; allowed: every entry >= 0")
    return t


def budget_from_ratio(ratio: float, n: int) -> int:
    """Total budget ``M = round(ratio·n)`` (halves round up) for a keep ratio in (0, 1]; M >= 1 required."""
    ratio = check_float("ratio", ratio, low=0.0, high=1.0, low_open=True)
    n = check_int("n", n, low=0)
    m = math.floor(ratio * n + 0.5)
    if m < 1:
        raise ValueError(f"ratio={ratio} keeps round({ratio}·{n}) = 0 samples; allowed: ratio >= {0.5 / max(n, 1):.3g}")
    return min(m, n)


def hand_out_remainder(sizes: torch.Tensor, quota: torch.Tensor, scaled_keys: torch.Tensor, unit: int,
                       budget: int) -> torch.Tensor:
    """Give the ``budget − Σquota`` leftover units one at a time to the group with the largest key.

    Group n's key before its j-th extra unit is ``(scaled_keys[n] − (quota[n] + j)·unit) / unit``
    (its target share minus what it already has); only groups with room (``quota < sizes``) take a
    unit; equal keys go to the lowest group. Keys fall by one per unit, so the process equals handing
    out the largest keys of all (group, j) slots — done here in one stable sort, O(K + M log M).
    All arguments are int64 CPU tensors of shape (K,); returns the new quota (sums to ``budget``).
    """
    left = budget - int(quota.sum())
    if left <= 0:
        return quota
    k = sizes.numel()
    slots = torch.minimum(sizes - quota, torch.full_like(sizes, left))
    owner = torch.repeat_interleave(torch.arange(k), slots)
    start = torch.cumsum(slots, 0) - slots
    extra = torch.arange(owner.numel()) - start[owner]
    keys = scaled_keys[owner] - (quota[owner] + extra) * unit
    order = torch.sort(keys, descending=True, stable=True).indices[:left]
    return quota + torch.bincount(owner[order], minlength=k)


def proportional_budgets(sizes, budget: int) -> torch.Tensor:
    """Split ``budget`` = M over groups of the given ``sizes`` in proportion to their sizes.

    ``q_n = ⌊M·N(n)/ΣN⌋``, then the leftover units to the largest remainders (ties: lowest group),
    never more than a group holds. Exact integer arithmetic. Returns int64 (K,) summing to M.
    """
    sizes = int_vector("sizes", sizes)
    if sizes.numel() == 0:
        raise ValueError("sizes is empty; at least one group is required")
    total = int(sizes.sum())
    budget = check_int("budget", budget, low=0, high=total)
    if budget == 0:
        return torch.zeros_like(sizes)
    numer = sizes * budget                                      # r_n·M·ΣN
    quota = torch.minimum(numer // total, sizes)
    return hand_out_remainder(sizes, quota, numer, total, budget)


def class_budgets(labels, ratio: float) -> torch.Tensor:
    """Per-class budgets keeping ``M = round(ratio·N)`` samples in all, proportional to class sizes.

    :func:`proportional_budgets` over the class counts. Returns int64 (num distinct labels,) in
    ascending label order; sums to M exactly.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError("labels must be a 1-D integer tensor")
    _, counts = torch.unique(labels.cpu(), return_counts=True)
    return proportional_budgets(counts, budget_from_ratio(ratio, labels.numel()))
