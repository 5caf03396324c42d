"""The ADQ chapter's tables: mean ± std over seeds, pivots, per-unit values. No verdicts here (those are in
:mod:`dscore.studies.adq.claims`)."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from ...evaluation import summarise_runs

__all__ = ["summarise", "mean_std_table", "per_seed", "per_unit", "gain_table", "cost_summary", "best_beta"]


def summarise(df: pd.DataFrame, by: Sequence[str] = ("method", "ratio", "arch")) -> pd.DataFrame:
    """Mean ± sample std of the final accuracy (and of the best-of-checks) per group of :meth:`ADQStudy.grid` rows."""
    out = []
    for key, g in df.groupby(list(by), sort=False):
        s = summarise_runs(g.to_dict("records"))
        row = dict(zip(by, key if isinstance(key, tuple) else (key,)))
        row.update(mean=s["mean"], std=s["std"], n=s["n"], accs=s["accs"])
        if "best_mean" in s:
            row.update(best_mean=s["best_mean"], best_std=s["best_std"])
        out.append(row)
    return pd.DataFrame(out)



def mean_std_table(df: pd.DataFrame, index: str | Sequence[str], columns: str | Sequence[str], *, value: str = "acc",
                   scale: float = 100.0, digits: int = 1) -> pd.DataFrame:
    """``"mean ± std"`` strings (sample std over seeds, ×``scale``) of ``value`` pivoted by ``index`` × ``columns``."""
    g = df.groupby(([index] if isinstance(index, str) else list(index)) +
                   ([columns] if isinstance(columns, str) else list(columns)), sort=False)[value]
    stats = g.agg(["mean", "std", "count"]).reset_index()
    stats["cell"] = [f"{m * scale:.{digits}f}\u00a0±\u00a0{(0.0 if pd.isna(s) else s) * scale:.{digits}f}"
                     for m, s in zip(stats["mean"], stats["std"])]
    return stats.pivot(index=index, columns=columns, values="cell")


def per_seed(df: pd.DataFrame, value: str = "acc", **where) -> list[float]:
    """Per-seed values of ``value`` among the rows matching ``where`` (column = value), averaged over any other
    varying column (e.g. over architectures or ratios), seeds ascending."""
    mask = pd.Series(True, index=df.index)
    for col, v in where.items():
        mask &= df[col].isin(v) if isinstance(v, (list, tuple, set)) else (df[col] == v)
    return df[mask].groupby("seed")[value].mean().sort_index().tolist()


def per_unit(df: pd.DataFrame, value: str = "acc", **where) -> dict[int, float]:
    """``{seed: value}`` among the rows matching ``where`` (column = value or list of values), averaged over every
    other varying column (architectures, keep ratios); the seed (a selection seed: the whole pipeline's draw) is the
    unit of replication, and arms are paired by it, never by position.

    A seed with a missing cell (a NaN value, or fewer rows than the most complete seed) gets NaN, never an average
    over fewer cells; :func:`dscore.ledger.claim` then drops it from both arms and says so on the row."""
    mask = pd.Series(True, index=df.index)
    for col, v in where.items():
        mask &= df[col].isin(v) if isinstance(v, (list, tuple, set)) else (df[col] == v)
    return _complete_means(df[mask], "seed", value)


def _complete_means(df: pd.DataFrame, unit: str, value: str) -> dict:
    g = df.groupby(unit)[value]
    means, counts, nans = g.mean().sort_index(), g.size(), g.apply(lambda x: x.isna().any())
    full = int(counts.max()) if len(counts) else 0
    return {int(k): (float(v) if counts[k] == full and not nans[k] else float("nan")) for k, v in means.items()}


def _short(method: str) -> str:
    """A method's name in a column header: both ADQ rows (tuned, paper setting) are "ADQ"."""
    return "ADQ" if method.startswith("adq") and method not in ("adq_rs", "adq_ds") else (
        method.upper() if len(method) <= 3 else method)


def gain_table(df: pd.DataFrame, a: str = "adq", b: str = "dq", *, scale: float = 100.0) -> pd.DataFrame:
    """Mean over seeds of the paired per-seed gain ``a − b`` (×``scale``) per architecture × keep ratio, with an
    "Average" row over architectures; columns "A − B at r%". Seeds present in only one arm are left out."""
    ka = df[df.method == a].set_index(["arch", "ratio", "seed"]).acc
    kb = df[df.method == b].set_index(["arch", "ratio", "seed"]).acc
    gain = (ka - kb).dropna().reset_index()
    table = (scale * gain.groupby(["arch", "ratio"]).acc.mean()).unstack("ratio").round(2)
    table.loc["Average"] = table.mean()
    table.columns = [f"{_short(a)} − {_short(b)} at {int(round(100 * r))}%" for r in table.columns]
    return table


def cost_summary(cost: pd.DataFrame) -> pd.DataFrame:
    """Total generation seconds per (method, ratio, seed) from :meth:`ADQStudy.cost_table` rows."""
    return cost.groupby(["method", "ratio", "seed"], sort=False).seconds.sum().reset_index()


def best_beta(sweep: pd.DataFrame) -> pd.DataFrame:
    """The β with the highest mean validation accuracy (over seeds) per architecture × keep ratio of a β sweep
    (rows ``arch, ratio, beta, seed, acc``): a table architecture × keep ratio of β."""
    peaks = sweep.groupby(["arch", "ratio", "beta"]).acc.mean().reset_index()
    best = peaks.loc[peaks.groupby(["arch", "ratio"]).acc.idxmax()][["arch", "ratio", "beta"]]
    return best.pivot(index="arch", columns="ratio", values="beta")
