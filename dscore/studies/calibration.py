"""Calibration: how long an evaluation network must train before a chapter's reference sets stop improving.

A verdict compares compressed training sets through networks trained on them. If those networks stop far before
convergence, every set is squeezed towards the same accuracy and what a method adds is hidden. Each chapter
therefore measures, before it compares anything, the accuracy of its *reference sets* (random real images at each
images-per-class for DREAM+; random subsets and the full training part for ADQ) against the training length, on
the **validation split** carved from the training set and with seeds disjoint from the seeds that judge a claim.

The rule that turns a curve into a length (:func:`plateau_lengths`):

- the *plateau* of a reference set is the highest mean accuracy (over seeds) among the lengths measured;
- the *chosen* length is the shortest length whose mean accuracy is within ``within`` (a fraction, e.g. 0.02 = two
  points) of that plateau;
- a chapter's configured length is then reported beside it: its mean accuracy, its distance from the plateau and
  whether it is at least the chosen length (``converged``).

The longest length measured stands for convergence: a curve still rising at its end makes the plateau a lower
bound, which the table says (``rising_at_end``: the last length is the best and more than ``within`` above the
one before it).
"""
from __future__ import annotations

from typing import Callable, Sequence

import pandas as pd

from ..distributed import ordered_map
from ..utils import check_float, check_int

__all__ = ["length_curve", "plateau_lengths"]


def length_curve(score: Callable[[tuple, int, int], float], groups: Sequence[tuple], lengths: Sequence[int],
                 seeds: Sequence[int], *, group_names: Sequence[str], progress: bool = False) -> pd.DataFrame:
    """Accuracy against training length: ``score(group, length, seed)`` for every group, length and seed.

    ``groups``: tuples naming one reference set each (their fields are ``group_names``); ``lengths``: positive
    training lengths (epochs or SGD steps, as ``score`` reads them); ``seeds``: one unit each (a seed draws the
    set and initialises the network). Returns one row per (group, length, seed) with the group's fields,
    ``length``, ``seed`` and ``acc``. ``score`` is called once per row, through
    :func:`dscore.distributed.ordered_map` (a prefill's processes share the cells). Cost: that of the calls.
    """
    lengths = sorted({check_int("length", n, low=1) for n in lengths})
    seeds = [check_int("seed", s, low=0) for s in seeds]
    groups = [tuple(g) for g in groups]
    names = list(group_names)
    if not lengths or not seeds or not groups:
        raise ValueError(f"lengths={lengths}, seeds={seeds} and groups={groups} must all be non-empty")
    if any(len(g) != len(names) for g in groups):
        raise ValueError(f"every group must have one field per name in group_names={names}; got {groups}")
    cells = [(g, n, s) for g in groups for s in seeds for n in lengths]

    def one(cell):
        g, n, s = cell
        return {**dict(zip(names, g)), "length": n, "seed": s, "acc": float(score(g, n, s))}

    # the lengths of one (set, seed) stay together: they share the selection
    rows = ordered_map(one, cells, group=lambda c: (c[0], c[2]), desc="calibration", progress=progress)
    return pd.DataFrame(rows)


def plateau_lengths(curve: pd.DataFrame, *, within: float, by: Sequence[str], configured: dict | None = None
                    ) -> pd.DataFrame:
    """The plateau rule of the module docstring, one row per reference set.

    ``curve``: rows with the columns ``by``, ``length`` and ``acc`` (e.g. from :func:`length_curve`);
    ``within``: the distance from the plateau that counts as converged, a fraction in [0, 1); ``configured``:
    ``{group tuple (values of by): length}`` the chapter runs at (optional). Returns ``by`` columns, ``n_seeds``,
    ``plateau`` (best mean accuracy), ``plateau_length``, ``chosen`` (shortest length within ``within`` of the
    plateau), ``acc_chosen``, ``rising_at_end`` and, with ``configured``: ``configured``, ``acc_configured``
    (NaN if that length was not measured), ``below_plateau`` (plateau − acc_configured) and ``converged``
    (configured ≥ chosen).
    """
    within = check_float("within", within, low=0.0, high=1.0, high_open=True)
    by = list(by)
    missing = sorted({*by, "length", "acc"} - set(curve.columns))
    if missing:
        raise ValueError(f"curve lacks the column(s) {missing}; it has {list(curve.columns)}")
    if curve.empty:
        raise ValueError("curve is empty")
    rows = []
    for key, g in curve.groupby(by, sort=False):
        key = key if isinstance(key, tuple) else (key,)
        means = g.groupby("length")["acc"].mean().sort_index()
        plateau = float(means.max())
        chosen = int(means.index[means >= plateau - within - 1e-12][0])
        rising = len(means) > 1 and means.iloc[-1] == plateau and means.iloc[-1] - means.iloc[-2] > within
        row = {**dict(zip(by, key)), "n_seeds": int(g["seed"].nunique()) if "seed" in g else 1,
               "plateau": plateau, "plateau_length": int(means.idxmax()), "chosen": chosen,
               "acc_chosen": float(means[chosen]), "rising_at_end": bool(rising)}
        if configured is not None:
            length = configured.get(key if len(key) > 1 else key[0], configured.get(key))
            if length is None:
                raise ValueError(f"configured has no length for {dict(zip(by, key))}; keys: {list(configured)}")
            length = check_int("configured length", length, low=1)
            acc = float(means[length]) if length in means.index else float("nan")
            row.update(configured=length, acc_configured=acc, below_plateau=plateau - acc,
                       converged=bool(length >= chosen))
        rows.append(row)
    return pd.DataFrame(rows)
