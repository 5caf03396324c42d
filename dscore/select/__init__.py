"""Selection shared by both papers: GraphCut, Herding, k-Center, random, forgetting, budgets.

* :mod:`dscore.select.greedy` — the greedy selectors (GraphCut in pick order, Herding, k-Center),
  random subsets and :func:`per_class`;
* :mod:`dscore.select.budget` — keep ratio → budget, proportional integer splits;
* :mod:`dscore.select.forgetting` — forgetting events and the most-forgotten selection;
* :mod:`dscore.select.coreset` — :func:`select_coreset`, one dispatcher for the coreset baselines.
"""
from __future__ import annotations

from . import budget, coreset, forgetting, greedy
from .budget import budget_from_ratio, class_budgets, proportional_budgets
from .coreset import METHODS, select_coreset
from .forgetting import ForgettingTracker, count_forgetting_events, forgetting_scores, forgetting_select, never_learned
from .greedy import graphcut, graphcut_order, herding, kcenter_greedy, per_class, random_subset

# the selectors and budgets; argument checks and feature oracles stay in their submodules (dscore.select.greedy …)
__all__ = ["greedy", "budget", "forgetting", "coreset", "graphcut", "graphcut_order", "herding", "kcenter_greedy",
           "random_subset", "per_class", "budget_from_ratio", "class_budgets", "proportional_budgets", "METHODS",
           "select_coreset", "ForgettingTracker", "count_forgetting_events", "forgetting_scores", "forgetting_select",
           "never_learned"]
