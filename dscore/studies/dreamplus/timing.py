"""Seconds of a distillation run from its history: the wall time after each iteration (the x-axis of the efficiency
curves in seconds) and the mean cost of an image step by phase (Tab. VI's "inner loop").

Its own module because :class:`~dscore.studies.dreamplus.DreamStudy` computes with it: what the study imports is part
of its artefacts' cache keys, and the chapter's presentation code (tables, claims, report) is not.
"""
from __future__ import annotations

from typing import Mapping

import numpy as np

from ...utils import check_int

__all__ = ["cumulative_seconds", "per_step_costs"]


def cumulative_seconds(history: Mapping[str, list], iterations: int) -> list[float]:
    """Distillation wall time after each number of iterations 0 … ``iterations`` from a run's history:
    the initialisation, then per iteration its pretraining and the clustering + matching + network-update
    time of its image steps (the diagnostics are excluded)."""
    iterations = check_int("iterations", iterations, low=0)
    per_it = np.zeros(iterations)
    its = np.asarray(history.get("iteration", []), dtype=int)
    steps = (np.asarray(history["time_clustering"], dtype=float) + np.asarray(history["time_matching"], dtype=float)
             + np.asarray(history["time_network_update"], dtype=float)) if len(its) else np.zeros(0)
    if len(its):
        np.add.at(per_it, its, steps)
    pre = list(history.get("time_pretrain", []))
    if pre:
        per_it[:len(pre)] += np.asarray(pre[:iterations], dtype=float)
    init = float(sum(history.get("time_init", [])))
    return [init] + (init + np.cumsum(per_it)).tolist()

def per_step_costs(history: Mapping[str, list], iterations: int) -> dict[str, float]:
    """Mean seconds per image step ("inner loop" of Tab. VI): clustering, image update (matching), network
    update, the pretraining of each network spread over its steps, and the whole step."""
    n = len(history["time_matching"])
    if n == 0:
        raise ValueError("the history has no image steps")
    clus = float(np.sum(history["time_clustering"])) / n
    upd = float(np.sum(history["time_matching"])) / n
    net = float(np.sum(history["time_network_update"])) / n
    pre = float(np.sum(history.get("time_pretrain", []))) / n
    return {"clustering": clus, "image_update": upd, "network_update": net, "pretrain": pre,
            "whole": clus + upd + net + pre}
