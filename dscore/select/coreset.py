"""One-shot, class-balanced coreset baselines of the papers' tables at a given budget.

:func:`select_coreset` dispatches over ``random``, ``herding``, ``kcenter``, ``forgetting`` and
``graphcut``, running the selectors of :mod:`dscore.select` inside every class.
"""
from __future__ import annotations

import torch

from ..features import GradientFeatures
from ..utils import check_choice, check_float, check_int
from .budget import class_budgets
from .forgetting import forgetting_select
from .greedy import graphcut, herding, kcenter_greedy, per_class, random_subset

__all__ = ["METHODS", "select_coreset"]

METHODS = ("random", "herding", "kcenter", "forgetting", "graphcut")


def select_coreset(method: str, labels: torch.Tensor, *, budget_per_class=None, ratio: float | None = None,
                   features: torch.Tensor | GradientFeatures | None = None, forgetting: torch.Tensor | None = None,
                   seed: int = 0, lam: float = 1.0, progress: bool = False) -> torch.Tensor:
    """Class-balanced one-shot coreset by ``method`` ∈ :data:`METHODS`; returns global int64 indices.

    The budget is ``budget_per_class`` (one int, or one per class in ascending label order) or
    ``ratio`` (per-class budgets from :func:`class_budgets`, summing to round(ratio·N)) — exactly one of
    them. Inside every class (:func:`dscore.select.per_class`):

    * ``random`` — :func:`~dscore.select.random_subset` (class c uses ``seed + c``);
    * ``herding`` — :func:`~dscore.select.herding` on ``features`` (dense (N, d));
    * ``kcenter`` — :func:`~dscore.select.kcenter_greedy` on ``features`` (first centre from ``seed + c``);
    * ``graphcut`` — :func:`~dscore.select.graphcut` on ``features`` (dense or GradientFeatures), ``lam``;
    * ``forgetting`` — :func:`forgetting_select` on ``forgetting`` scores.

    Output order: classes ascending, each class's indices in its selector's pick order.
    Raises ValueError for an unknown method, a missing input, or an impossible budget, before any work.
    """
    check_choice("method", method, METHODS)
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError("labels must be a 1-D integer tensor")
    seed = check_int("seed", seed, low=0)
    if (budget_per_class is None) == (ratio is None):
        raise ValueError("give exactly one of budget_per_class= and ratio=")
    if ratio is not None:
        budget_per_class = class_budgets(labels, ratio).tolist()
    elif isinstance(budget_per_class, torch.Tensor):
        budget_per_class = budget_per_class.tolist()
    n = labels.shape[0]
    if method in ("herding", "kcenter", "graphcut"):
        if features is None:
            raise ValueError(f"method={method!r} needs features= (embeddings of the {n} samples)")
        if method != "graphcut" and isinstance(features, GradientFeatures):
            raise ValueError(f"method={method!r} needs dense features (N, d); GradientFeatures work with graphcut only")
        if len(features) != n:
            raise ValueError(f"features has {len(features)} rows but labels has {n} entries")
    if method == "forgetting":
        if forgetting is None:
            raise ValueError("method='forgetting' needs forgetting= scores from forgetting_scores")
        if torch.as_tensor(forgetting).shape != (n,):
            raise ValueError(f"forgetting must have shape ({n},), got {tuple(torch.as_tensor(forgetting).shape)}")
        return forgetting_select(forgetting, labels, budget_per_class)
    if method == "random":
        return per_class(random_subset, torch.arange(n, device=labels.device), labels, budget_per_class, seed=seed)
    if method == "herding":
        return per_class(herding, features, labels, budget_per_class, progress=progress)
    if method == "kcenter":
        return per_class(kcenter_greedy, features, labels, budget_per_class, seed=seed, progress=progress)
    lam = check_float("lam", lam)
    return per_class(graphcut, features, labels, budget_per_class, lam=lam, progress=progress)
