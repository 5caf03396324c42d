"""The DREAM+ chapter's one tuned value: the factor on the authors' IDC image learning rate, chosen on the
validation split with seeds disjoint from those that judge the claims."""
from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

__all__ = ["lr_img_choice"]


def lr_img_choice(study) -> dict[str, Any]:
    """The factor on the authors' image learning rate, chosen on the **validation split**: for every factor of
    ``distill['lr_img']['scales']`` and every tuning seed (disjoint from the distillation seeds that judge the
    claims), IDC at ``distill['lr_img']['ipc']`` with the setup's budget, evaluated once (init = the tuning seed)
    on the validation part. The highest mean validation accuracy wins (ties: the smaller factor, nearer the
    authors'). The authors' lr_img is sized for 2000 × 100 image steps; at a budget thousands of times smaller it
    barely moves the images. Returns ``{"scale", "lr_img" (at that ipc), "ipc", "table" (one row per factor:
    factor, lr_img, mean and std of the validation accuracy, per-seed values, chosen)}``. Every evaluation is a
    cached artefact; :meth:`DreamStudy.lr_img_choice` calls this once per study."""
    t = study.setup.lr_tuning
    if t is None:
        raise ValueError("the setup does not tune the image learning rate (distill['lr_img'] is not set)")
    authors = study.config("idc", t.ipc, scale_lr=False).lr_img
    cells = [(x, sd) for x in t.scales for sd in t.seeds]

    def one(cell):
        x, sd = cell
        return study.evaluate("idc", t.ipc, sd, sd, split="val", overrides={"lr_img": authors * x})["acc"]

    accs = study.map_cells(one, cells, "lr_img on the validation split", group=lambda c: c)
    rows = []
    for x in t.scales:
        vals = [a for (y, _), a in zip(cells, accs) if y == x]
        rows.append({"factor": x, "lr_img": authors * x, "val acc (mean)": float(np.mean(vals)),
                     "val acc (std)": float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan"),
                     "per seed": [round(v, 4) for v in vals]})
    best = max(range(len(rows)), key=lambda i: (rows[i]["val acc (mean)"], -rows[i]["factor"]))
    table = pd.DataFrame(rows).assign(chosen=[i == best for i in range(len(rows))])
    return {"scale": rows[best]["factor"], "lr_img": rows[best]["lr_img"], "ipc": t.ipc, "table": table}
