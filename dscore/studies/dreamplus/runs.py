"""What the DREAM+ chapter's distillation runs did: how far their images moved, their own matching diagnostics, the
seconds of each step, how their features migrated and how their sets cover the classes. Free functions of a
:class:`~.study.DreamStudy`; they read the cached runs and train nothing new but the cached feature network."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import pandas as pd
import torch

from ...distill.init import idc_decode
from .coresets import feature_net
from .labels import method_label
from .study import DreamStudy
from .timing import per_step_costs

__all__ = ["pixel_change", "diagnostics", "costs", "migration", "coverage"]


def pixel_change(study: DreamStudy) -> pd.DataFrame:
    """How far every distillation run this study has loaded moved its images: one row per run (method, ipc,
    seed, variant, iterations, image steps) with the mean absolute change of the stored pixels (in [0, 1])
    between the initialisation (the run's snapshot 0; NaN when the run took no snapshots) and the final set.
    A run whose images barely moved compares initialisations, not matching."""
    cols = ["method", "ipc", "seed", "variant", "iterations", "image steps", "mean |Δpixel|"]
    return pd.DataFrame(list(study.runs_loaded.values()), columns=cols)


def diagnostics(study: DreamStudy, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int]) -> pd.DataFrame:
    """The runs' diagnostics (``diag_every`` image steps): one row per (method, seed, step) with ``grad_diff``,
    ``feature_diff`` and ``batch_mmd`` (MMD² of the real batch to its class in the current network)."""
    rows = []
    for m in methods:
        for s in distill_seeds:
            h = study.run(m, ipc, s).history
            if not h["diag_step"]:
                raise ValueError(f"the {m!r} run has no diagnostics; set diag_every in the distill overrides")
            for i, step in enumerate(h["diag_step"]):
                rows.append({"method": m, "label": method_label(m), "seed": s, "step": int(step),
                             "grad_diff": h["grad_diff"][i], "feature_diff": h["feature_diff"][i],
                             "batch_mmd": h["batch_mmd"][i]})
    return pd.DataFrame(rows)


def costs(study: DreamStudy, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int]) -> pd.DataFrame:
    """Per-iteration mean seconds per image step of each run (:func:`per_step_costs` of every iteration's
    steps): one row per (method, seed, iteration) with ``clustering, image_update, network_update, pretrain,
    whole``."""
    rows, from_cache = [], []
    for m in methods:
        for s in distill_seeds:
            seen = len(study.cache.ledger)
            r = study.run(m, ipc, s)
            if not any(rec["computed"] for rec in study.cache.ledger[seen:]):
                from_cache.append(f"{m} seed {s}")
            h = r.history
            its = np.asarray(h["iteration"], dtype=int)
            pre = list(h.get("time_pretrain", []))
            for it in range(r.config.iterations):
                sel = np.flatnonzero(its == it)
                if not len(sel):
                    continue
                sub = {k: [h[k][j] for j in sel] for k in ("time_clustering", "time_matching",
                                                          "time_network_update")}
                sub["time_pretrain"] = [pre[it]] if it < len(pre) else []
                rows.append({"method": m, "label": method_label(m), "seed": s, "iteration": it,
                             **per_step_costs(sub, 1)})
    df = pd.DataFrame(rows)
    #: the runs served from the cache: their step times were recorded by the run that distilled them
    df.attrs["from_cache"] = from_cache
    return df


def migration(study: DreamStudy, method: str, ipc: int, seed: int) -> pd.DataFrame:
    """Feature migration of a run's synthetic images between consecutive snapshots
    (:func:`dscore.metrics.feature_migration` of their embeddings by the cached feature ConvNet, IDC sets
    decoded): one row per interval with ``iteration`` (the later snapshot) and ``migration``."""
    from ...features import extract_embeddings
    from ...metrics import feature_migration

    result = study.run(method, ipc, seed)
    if len(result.snapshots) < 2:
        raise ValueError(f"the {method!r} run needs at least 2 snapshots for feature migration")
    net = feature_net(study)
    cfg = result.config
    embs = []
    for _, images in result.snapshots:
        if cfg.method == "idc" and cfg.factor > 1:
            images = idc_decode(images, cfg.factor)
        embs.append(extract_embeddings(net, images, device=study.device, progress=False).cpu())
    mig = feature_migration(embs)
    its = [int(i) for i, _ in result.snapshots]
    return pd.DataFrame({"method": method, "label": method_label(method), "seed": seed, "iteration": its[1:],
                         "migration": mig.tolist()})


def coverage(study: DreamStudy, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int], *, tsne_seed: int = 0,
             real_per_class: int = 100, perplexity: float = 30.0) -> dict[str, pd.DataFrame]:
    """How the synthetic sets cover their classes (DREAM+ Fig. 8), in the embedding of the cached feature ConvNet.

    ``"coverage"``: one row per (method, seed, class) with ``coverage`` = the mean distance of the class's real
    training images to their nearest synthetic (IDC-decoded) image of the class, divided by the mean distance
    of the real images to their class mean (lower = the synthetic images spread over the class), and
    ``centre`` = the mean distance of the synthetic images to the real class mean, on the same scale.
    ``"points"``: a 2-D t-SNE (:func:`dscore.metrics.tsne`, seed ``tsne_seed``) of ``real_per_class`` real
    images per class and the synthetic images of the first distillation seed of every method, one row per point
    (``kind`` = "real" or the method label, ``class``, ``x``, ``y``)."""
    from ...data import stratified_subset
    from ...features import extract_embeddings
    from ...metrics import tsne

    train = study.splits.train
    net = feature_net(study)
    real = extract_embeddings(net, train.images, device=study.device, progress=False).cpu().float()
    rows, syn_pts = [], []
    for m in methods:
        for s in distill_seeds:
            images, labels = study.training_set(m, ipc, s)
            emb = extract_embeddings(net, images, device=study.device, progress=False).cpu().float()
            for c in range(train.num_classes):
                r, y = real[train.labels == c], emb[labels == c]
                mu = r.mean(0, keepdim=True)
                scale = float(torch.cdist(r, mu).mean())
                rows.append({"method": m, "label": method_label(m), "seed": s, "class": train.classes[c],
                             "coverage": float(torch.cdist(r, y).min(1).values.mean()) / scale,
                             "centre": float(torch.cdist(y, mu).mean()) / scale})
            if s == distill_seeds[0]:
                syn_pts.append((method_label(m), emb, labels))
    per = min(real_per_class, int(train.class_counts().min()))
    sub = stratified_subset(train, per, seed=tsne_seed)
    sub_emb = extract_embeddings(net, sub.images, device=study.device, progress=False).cpu().float()
    allx = torch.cat([sub_emb] + [e for _, e, _ in syn_pts])
    xy = tsne(allx, seed=tsne_seed, perplexity=min(perplexity, (allx.shape[0] - 1) / 3))
    kinds = ["real"] * sub_emb.shape[0] + [k for k, e, _ in syn_pts for _ in range(e.shape[0])]
    classes = sub.labels.tolist() + [int(v) for _, _, l in syn_pts for v in l]
    points = pd.DataFrame({"kind": kinds, "class": [train.classes[c] for c in classes],
                           "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist()})
    return {"coverage": pd.DataFrame(rows), "points": points}
