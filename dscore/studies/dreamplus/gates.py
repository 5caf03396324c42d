"""What the DREAM+ chapter's gates measure: a distillation run's initial set against its final set, on the evaluation
the judged rows use. A comparison against IDC says something about distillation only when IDC's final set beats its
own initialisation (the gate of :func:`dscore.studies.dreamplus.claims.main_claims`); the same rows also test the
paper's "clustering-based initialisation shows a huge performance advantage before training starts"."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from ...utils import tqdm

__all__ = ["initial_sets"]


def initial_sets(study, runs: pd.DataFrame, methods: Sequence[str] = ("idc", "dreamplus")) -> pd.DataFrame:
    """The iteration-0 snapshot (the initialisation) of every run of ``methods`` in ``runs`` (a
    :meth:`DreamStudy.grid` frame), evaluated exactly as ``runs`` evaluated the final set (same evaluation seeds,
    protocol and network; cached). The default ``methods`` are the two the main claims read: IDC's (the gate) and
    DREAM+'s (the clustering-based initialisation against IDC's random one). Rows: ``method, ipc, seed,
    eval_seed, stage, acc`` with ``stage`` "initial" for these and "final" for the matching rows of ``runs``.
    Cost: one evaluation per row of ``runs`` of ``methods``."""
    cells = runs[runs.method.isin(list(methods))][["method", "ipc", "seed", "eval_seed", "acc"]]
    rows = []
    for m, ipc, s, e, acc in tqdm(list(cells.itertuples(index=False)), desc="initial sets", leave=False,
                                  disable=not getattr(study, "progress", True)):
        first = study.evaluate(m, int(ipc), int(s), int(e), iteration=0)["acc"]
        rows.append({"method": m, "ipc": int(ipc), "seed": int(s), "eval_seed": int(e), "stage": "initial",
                     "acc": first})
        rows.append({"method": m, "ipc": int(ipc), "seed": int(s), "eval_seed": int(e), "stage": "final", "acc": acc})
    return pd.DataFrame(rows, columns=["method", "ipc", "seed", "eval_seed", "stage", "acc"])
