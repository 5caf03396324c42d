"""Distillation runs as cached artefacts: a page asks for a run by its config and gets it from the
cache when it was computed before (by this page, another page or an earlier build).

* :func:`distill_cached` — :func:`dscore.distill.distill` on a dataset, cached under kind
  ``distill_run`` (images, labels, snapshots, history), resumable through a checkpoint kept in the
  cache folder while it runs;
* :func:`dm_at_ratio` — the DM row of the ADQ tables: a DM synthetic set at a coreset's keep ratio.
"""
from __future__ import annotations

import math
from typing import Any

import torch

from ..cache import ArtifactCache, as_cache, config_key
from ..data import resolve_dataset
from ..fingerprint import code_version, dataset_fingerprint, jsonable, precision_tag
from ..utils import check_float, check_int, resolve_device
from .config import DistillConfig, default_config
from .engine import DistillResult, distill

__all__ = ["distill_cached", "dm_at_ratio"]


def distill_cached(dataset, config: DistillConfig, *, image_size=None, root=None, cache: ArtifactCache | None = None,
                   progress: bool = True) -> DistillResult:
    """Run (or load) ``distill(dataset.images, dataset.labels, config)``, cached by config and data.

    ``dataset``: a dataset name (its train split) or an :class:`~dscore.data.ImageDataset`. The key
    holds the dataset fingerprint, the full config, the precision and the code version; the run
    checkpoints into ``<cache>/distill_run/partial/<key>.pt`` every ``config.checkpoint_every``
    iterations, so a killed run resumes where it stopped. Returns a :class:`DistillResult`.
    """
    if not isinstance(config, DistillConfig):
        raise ValueError(f"config must be a DistillConfig, got {type(config).__name__}")
    ds = resolve_dataset(dataset, image_size, root)
    config.check_data(ds.class_counts().tolist())
    store = as_cache(cache)
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(config.device),
           "config": jsonable(config.to_dict())}
    version = code_version(__name__)
    partial = store.root / "distill_run" / "partial" / f"{config_key('distill_run', key, version)}.pt"

    def compute():
        partial.parent.mkdir(parents=True, exist_ok=True)
        result = distill(ds.images, ds.labels, config.replace(device=str(resolve_device(config.device))),
                         num_classes=ds.num_classes, mean=ds.mean, std=ds.std, progress=progress,
                         checkpoint_path=partial if store.enabled else None)
        return {"images": result.images, "labels": result.labels,
                "snapshot_iterations": [int(i) for i, _ in result.snapshots],
                "snapshots": [s for _, s in result.snapshots], "history": jsonable(result.history)}

    value = store.get_or_compute("distill_run", key, compute, version=version)
    partial.unlink(missing_ok=True)
    return DistillResult(images=value["images"], labels=value["labels"],
                         snapshots=list(zip(value["snapshot_iterations"], value["snapshots"])),
                         history=value["history"], config=config)


def dm_at_ratio(dataset, ratio: float, *, iterations: int | None = None, seed: int = 0, device=None,
                image_size=None, root=None, cache: ArtifactCache | None = None, progress: bool = True,
                **overrides) -> tuple[torch.Tensor, torch.Tensor, dict[str, Any]]:
    """The DM row of the ADQ tables: a distribution-matching synthetic set at a coreset's keep ratio.

    DM needs the same number of images in every class, so ``ipc = max(1, round(ratio · n_min))`` with
    ``n_min`` the smallest class (on balanced data ``ipc · C = round(ratio · N)`` up to rounding).
    Hyper-parameters are :func:`dscore.distill.default_config` ("dm") with ``iterations`` (default:
    the paper's 20 000) and any other ``overrides``; the run is :func:`distill_cached`.
    Returns (images (C·ipc, ch, H, W), labels, report). As in the authors' DM code the images are not
    clamped to [0, 1] (pass ``clamp=True`` to clamp them).
    """
    ratio = check_float("ratio", ratio, low=0.0, high=1.0, low_open=True)
    seed = check_int("seed", seed, low=0)
    ds = resolve_dataset(dataset, image_size, root)
    n_min = int(ds.class_counts().min())
    ipc = max(1, int(math.floor(ratio * n_min + 0.5)))
    if iterations is not None:
        overrides["iterations"] = check_int("iterations", iterations, low=1)
    if device is not None:
        overrides["device"] = str(resolve_device(device))
    config = default_config("dm", ds.name, ipc, seed=seed, **overrides)
    result = distill_cached(ds, config, cache=cache, progress=progress)
    report = {"method": "dm", "ratio": ratio, "ipc": ipc, "budget": ipc * ds.num_classes,
              "iterations": config.iterations, "seed": seed}
    return result.images, result.labels, report
