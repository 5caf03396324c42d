"""The DREAM+ chapter's tables: summaries over runs, efficiency curves and their speed-up factors, step costs.

Pure functions of the frames :class:`~dscore.studies.dreamplus.DreamStudy` returns; no verdicts here (those are in
:mod:`dscore.studies.dreamplus.claims`).
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from ...utils import check_choice
from .timing import cumulative_seconds, per_step_costs

__all__ = ["summarise", "cumulative_seconds", "per_step_costs", "curve_speedups", "speedup_table", "accs_of",
           "paper_cell", "finite", "iterations_to_baseline", "unit_means", "stability_summary",
           "probe_summary", "mmd_summary", "cost_summary", "beside_paper"]


def _label(method: str) -> str:
    from .study import method_label

    return method_label(method)


def unit_means(df: pd.DataFrame, col: str = "acc", unit: str = "seed") -> dict[int, float]:
    """One value per unit of replication (a distillation seed): ``col`` averaged over everything else that varies
    inside the unit (evaluation seeds, diagnostic steps, classes), ``{unit id: mean}``, units ascending. A unit with
    a missing cell (a NaN, or fewer rows than the most complete unit) gets NaN, never an average over fewer cells;
    :func:`dscore.ledger.claim` drops it from both arms and says so on the row."""
    if unit not in df:
        raise ValueError(f"the frame has no unit column {unit!r}; columns: {list(df.columns)}")
    g = df.groupby(unit)[col]
    means, counts, nans = g.mean().sort_index(), g.size(), g.apply(lambda x: x.isna().any())
    full = int(counts.max()) if len(counts) else 0
    return {int(k) if isinstance(k, (int, np.integer)) else k: (float(v) if counts[k] == full and not nans[k]
                                                                else float("nan")) for k, v in means.items()}


def summarise(df: pd.DataFrame, by: Sequence[str] = ("method", "ipc")) -> pd.DataFrame:
    """Mean ± sample std of ``acc`` (and best-of-checks) per group of :meth:`DreamStudy.grid` rows, over all
    (distillation seed, evaluation seed) runs of the group; ``n`` counts them, ``n_distill`` the distillation seeds."""
    out = []
    for key, g in df.groupby(list(by), sort=False):
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        accs = g.acc.to_numpy(dtype=float)
        row.update(label=g.label.iloc[0] if "label" in g else None, mean=float(accs.mean()),
                   std=float(accs.std(ddof=1)) if len(accs) > 1 else 0.0, n=len(accs),
                   n_distill=int(g.seed.nunique()), accs=accs.tolist())
        best = g.best_of_checks.to_numpy(dtype=float) if "best_of_checks" in g else np.array([np.nan])
        if not np.isnan(best).any():
            row.update(best_mean=float(best.mean()), best_std=float(best.std(ddof=1)) if len(best) > 1 else 0.0)
        out.append(row)
    return pd.DataFrame(out)

def curve_speedups(curves: pd.DataFrame, base: str, method: str, *, x: str = "iteration") -> pd.DataFrame:
    """Speed-up of ``method`` over ``base`` (:func:`dscore.report.speedup_factor`) per (distillation seed, evaluation
    seed) curve pair with the same seeds, along ``x`` ("iteration" or "seconds"): target = the baseline's final
    accuracy on that pair. Rows: ``seed, eval_seed, factor`` (None when the method never reaches the target),
    ``reason, base_x, method_x, target, lower_bound``."""
    from ...report import speedup_factor

    check_choice("x", x, ("iteration", "seconds"))
    rows = []
    b_all, m_all = curves[curves.method == base], curves[curves.method == method]
    if b_all.empty or m_all.empty:
        raise ValueError(f"curves need rows for both {base!r} and {method!r}")
    for (s, e), b in b_all.groupby(["seed", "eval_seed"]):
        m = m_all[(m_all.seed == s) & (m_all.eval_seed == e)]
        if m.empty:
            continue
        b, m = b.sort_values("iteration"), m.sort_values("iteration")
        mx = m[x].to_numpy()
        sp = speedup_factor(b[x].to_numpy(), b.acc.to_numpy(), mx, m.acc.to_numpy())
        factor, reason, method_x, lower = sp.factor, sp.reason, sp.method_x, sp.lower_bound
        if sp.reason == "reached at x = 0" and sp.base_x and (mx > 0).any():
            # already there at the initialisation: the next snapshot bounds the factor from below
            method_x = float(mx[mx > 0][0])
            factor, reason, lower = sp.base_x / method_x, "reached at initialisation (lower bound)", True
        rows.append({"seed": s, "eval_seed": e, "factor": factor, "reason": reason, "base_x": sp.base_x,
                     "method_x": method_x, "target": sp.target, "lower_bound": lower})
    return pd.DataFrame(rows)

def speedup_table(curves: pd.DataFrame, feat_curves: pd.DataFrame | None = None,
                  other_curves: pd.DataFrame | None = None) -> pd.DataFrame:
    """The efficiency page's table: DREAM and DREAM+ over IDC in ``curves`` (and DREAM+ over feature-matching IDC,
    ``idc+feat``, in ``feat_curves``;
    ``<base>+rm+init+bm`` over DC / DSA in ``other_curves``), along iterations and seconds (:func:`curve_speedups`).
    One row per (method, x): ``method, baseline, in,
    factor (mean of reached)`` (mean of the finite per-curve factors, None if there is none), ``per curve``
    ("—" where a pair has no finite factor) and ``outcomes`` (the distinct reasons)."""
    pairs = [("dream", "idc", curves), ("dreamplus", "idc", curves)]
    if feat_curves is not None and {"idc+feat", "dreamplus"} <= set(feat_curves.method):
        pairs.append(("dreamplus", "idc+feat", feat_curves))
    if other_curves is not None:
        pairs += [(f"{b}+rm+init+bm", b, other_curves) for b in ("dc", "dsa")
                  if {b, f"{b}+rm+init+bm"} <= set(other_curves.method)]
    rows = []
    for method, base, df in pairs:
        for x in ("iteration", "seconds"):
            sp = curve_speedups(df, base, method, x=x)
            finite = [float(v) for v in sp.factor if v is not None and not pd.isna(v)]
            rows.append({"method": _label(method), "baseline": _label(base), "in": x,
                         "factor (mean of reached)": round(float(np.mean(finite)), 2) if finite else None,
                         "per curve": ", ".join("—" if v is None or pd.isna(v) else f"{v:.2f}" for v in sp.factor),
                         "outcomes": ", ".join(sorted(set(sp.reason)))})
    return pd.DataFrame(rows)


def accs_of(df: pd.DataFrame, method: str, ipc: int | None = None) -> list[float]:
    """Per-run accuracies of ``method`` (at ``ipc``) in a :meth:`DreamStudy.grid` frame."""
    sel = df[df.method == method] if ipc is None else df[(df.method == method) & (df.ipc == ipc)]
    return sel.acc.astype(float).tolist()

def beside_paper(runs: pd.DataFrame, methods: Sequence[str], ipcs: Sequence[int], paper_dataset: str | None,
                 table_id: str = "I") -> pd.DataFrame:
    """Our accuracy beside the paper's, one row per (method, ipc) of a :meth:`DreamStudy.grid` frame, in percent:
    ``method`` (table name), ``ipc``, ``ours`` and ``std`` (final epoch, over every run of the cell), ``authors'
    protocol`` (best of the periodic checks, NaN when not recorded), ``paper`` (Tab. ``table_id``'s cell for
    ``paper_dataset``; NaN when it has none), ``ours − paper`` and ``runs``. A (method, ipc) without runs is a
    ValueError naming it."""
    summary = summarise(runs)
    rows = []
    for method in methods:
        for ipc in ipcs:
            s = summary[(summary.method == method) & (summary.ipc == ipc)]
            if s.empty:
                raise ValueError(f"runs has no row for method={method!r} at ipc={ipc}")
            s = s.iloc[0]
            published = paper_cell(table_id, _label(method), (paper_dataset, ipc)) if paper_dataset else None
            best = s.get("best_mean")
            ours = 100 * s["mean"]
            rows.append({"method": _label(method), "ipc": int(ipc), "ours": ours, "std": 100 * s["std"],
                         "authors' protocol": 100 * best if finite(best) else float("nan"),
                         "paper": float("nan") if published is None else float(published),
                         "ours − paper": float("nan") if published is None else ours - float(published),
                         "runs": int(s["n"])})
    return pd.DataFrame(rows)


def paper_cell(table_id: str, row, col) -> float | None:
    """A published value of :mod:`dscore.papers.dreamplus` (None when the paper has no such cell)."""
    from ...papers import dreamplus as paper

    try:
        c = paper.cell(table_id, row, col)
    except (KeyError, ValueError):
        return None
    return None if c is None else c.value

def finite(v) -> bool:
    return v is not None and not (isinstance(v, float) and math.isnan(v))

def iterations_to_baseline(curves: pd.DataFrame, base: str, methods: Sequence[str]) -> pd.DataFrame:
    """Tab. III's "Iter" column measured: per method, the iterations each curve needs to reach the baseline's
    final accuracy (same seeds; :func:`dscore.report.speedup_factor`), median over curves, and how many reach it."""
    rows = []
    for m in methods:
        sp = curve_speedups(curves, base, m)
        xs = [v for v in sp.method_x if finite(v)]
        rows.append({"method": m, "label": _label(m), "curves": len(sp), "reached": len(xs),
                     "median iterations": float(np.median(xs)) if xs else None,
                     "baseline iterations": float(np.median([v for v in sp.base_x if finite(v)])) if len(sp) else None})
    return pd.DataFrame(rows)


def stability_summary(diag: pd.DataFrame, migration: pd.DataFrame) -> pd.DataFrame:
    """Per method (its label): the mean gradient difference, feature difference and batch MMD² over every diagnostic
    step of every run, and the mean feature migration in the second half of the runs (iterations after half of the
    last)."""
    summary = diag.groupby("label", sort=False)[["grad_diff", "feature_diff", "batch_mmd"]].mean()
    late = migration[migration.iteration > migration.iteration.max() / 2]
    summary["late migration"] = late.groupby("label").migration.mean()
    return summary


def probe_summary(common: pd.DataFrame) -> pd.DataFrame:
    """Per method (its label) of :func:`~dscore.studies.dreamplus.probes.common_probe` rows: mean and std over distillation seeds of the
    gradient and feature difference, each seed's value the mean over its probe seeds and classes."""
    per_unit = common.groupby(["label", "seed"], sort=False)[["grad_diff", "feature_diff"]].mean()
    return per_unit.groupby("label", sort=False).agg(["mean", "std"])


def mmd_summary(mmd: pd.DataFrame) -> pd.DataFrame:
    """Per method (its label) × snapshot iteration of :func:`~dscore.studies.dreamplus.probes.mmd_trajectory` rows: the mean over
    distillation seeds of the MMD² to the real data, each seed's value the mean over its probe seeds and classes
    (Fig. 6d as a table; lower is better)."""
    per_unit = mmd.groupby(["label", "iteration", "seed"], sort=False).mmd2.mean()
    return per_unit.groupby(["label", "iteration"], sort=False).mean().unstack("iteration")


def cost_summary(costs: pd.DataFrame) -> tuple[pd.DataFrame, float | None]:
    """Seconds per inner loop of :func:`~dscore.studies.dreamplus.runs.costs` rows: a table method × phase of "mean ± std" over every
    iteration of every run, and DREAM+'s whole inner loop ÷ IDC's (None unless both ran)."""
    cols = ["clustering", "image_update", "network_update", "pretrain", "whole"]
    g = costs.groupby("label", sort=False)[cols]
    table = g.mean().round(4).astype(str) + "\u00a0±\u00a0" + g.std().round(4).astype(str)
    table.columns = ["clustering", "image update", "network update", "real-data epoch (spread)", "whole inner loop"]
    m = costs.groupby("method").whole.mean()
    ratio = float(m["dreamplus"] / m["idc"]) if {"idc", "dreamplus"} <= set(m.index) else None
    return table, ratio
