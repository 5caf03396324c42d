"""Evaluation runs as cached artefacts: train a fresh network on a (compressed) training set and score it.

Every table of both papers is a grid of such runs — (method, budget, architecture, seed) — and several
pages share cells of that grid (the ADQ main table, its ablation and its low-ratio curve all contain DQ at
10 %). :func:`evaluate_cached` makes one run an artefact keyed by *what was trained on* (a digest of the
images and labels), *what it was scored on* (the evaluation set's fingerprint), the architecture, the
training protocol, the seed, the precision and the code version, so no run is ever computed twice.

The number a run reports is the **final-epoch** accuracy. With ``eval_every = k > 0`` the evaluation set is
also scored every k epochs, and the best of those checks is stored as ``best_of_checks``: the authors'
protocol, kept only so that a page can show it beside ours and beside the paper; nothing may choose by it.
"""
from __future__ import annotations

import hashlib
from typing import Any, Mapping

import torch

from .cache import ArtifactCache, as_cache
from .data import ImageDataset
from .fingerprint import code_version, dataset_fingerprint, jsonable, precision_tag, tensor_bytes
from .models import create_model, list_models, model_kwargs
from .train import TrainProtocol, seeded_model, train_with_protocol
from .utils import check_choice, check_int, resolve_device

__all__ = ["evaluate_cached", "train_set_digest", "summarise_runs"]


def train_set_digest(images: torch.Tensor, labels: torch.Tensor) -> str:
    """SHA-256 of a training set's pixels (as float32) and labels (as int64): its identity in cache keys."""
    h = hashlib.sha256()
    h.update(str(tuple(images.shape)).encode())
    for start in range(0, images.shape[0], 8192):
        h.update(tensor_bytes(images[start:start + 8192].float()))
    h.update(tensor_bytes(labels.long()))
    return h.hexdigest()


def evaluate_cached(train_images: torch.Tensor, train_labels: torch.Tensor, evaluation: ImageDataset, *,
                    arch: str, protocol: TrainProtocol, seed: int, arch_kwargs: Mapping[str, Any] | None = None,
                    eval_every: int = 0, device=None, cache: ArtifactCache | None = None,
                    progress: bool = False) -> dict[str, Any]:
    """Train ``create_model(arch, **arch_kwargs)`` (initialised from ``seed``) on the given set with
    ``protocol`` and score it on ``evaluation`` (the test set, or a validation split when tuning); cached.

    ``train_images``: (N, C, H, W) in [0, 1]; ``train_labels``: (N,) int64. The network is sized by
    ``evaluation`` (classes, channels, image size) and normalises with its mean/std (the training split's).
    Returns ``{"acc": final-epoch accuracy in [0, 1], "best_of_checks": max over the periodic checks or
    None (authors' protocol, diagnostic only), "checks": [(epoch, acc)…], "seconds": training wall time,
    "num_train": N, "seed", "arch"}``. Cost: one ``train_with_protocol`` run the first time, a file read after.
    """
    check_choice("arch", arch, list_models())
    if not isinstance(protocol, TrainProtocol):
        raise ValueError(f"protocol must be a dscore.train.TrainProtocol, got {type(protocol).__name__}")
    if not isinstance(evaluation, ImageDataset):
        raise ValueError(f"evaluation must be an ImageDataset, got {type(evaluation).__name__}")
    seed = check_int("seed", seed, low=0)
    eval_every = check_int("eval_every", eval_every, low=0)
    kwargs = dict(arch_kwargs or {})
    unknown = sorted(set(kwargs) - set(model_kwargs(arch)))
    if unknown:
        raise ValueError(f"arch_kwargs has unknown key(s) {unknown} for arch={arch!r}; "
                         f"allowed: {', '.join(model_kwargs(arch)) or 'none'}")
    if not torch.is_tensor(train_images) or train_images.dim() != 4 or train_images.shape[0] == 0:
        raise ValueError("train_images must be a non-empty (N, C, H, W) tensor")
    if not torch.is_tensor(train_labels) or train_labels.shape != (train_images.shape[0],):
        raise ValueError(f"train_labels must have shape ({train_images.shape[0]},)")
    dev = resolve_device(device)
    store = as_cache(cache)
    key = {"train": train_set_digest(train_images, train_labels), "evaluation": dataset_fingerprint(evaluation),
           "arch": arch, "arch_kwargs": jsonable(kwargs), "protocol": jsonable(protocol.as_kwargs()), "seed": seed,
           "eval_every": eval_every, "precision": precision_tag(dev)}

    def compute():
        model = seeded_model(lambda: create_model(arch, num_classes=evaluation.num_classes,
                                                  in_channels=evaluation.channels, image_size=evaluation.image_size,
                                                  mean=evaluation.mean, std=evaluation.std, **kwargs), seed)
        result = train_with_protocol(model, train_images, train_labels, protocol,
                                     test=(evaluation.images, evaluation.labels), device=dev, seed=seed,
                                     progress=progress, eval_every=eval_every)
        checks = [[int(h["epoch"]), float(h["test_acc"])] for h in result.history if "test_acc" in h]
        return {"acc": float(result.final_test_acc), "checks": checks, "best_of_checks": result.best_of_checks,
                "seconds": float(result.seconds), "num_train": int(train_images.shape[0])}

    value = store.get_or_compute("evaluation", key, compute, version=code_version(__name__))
    return {**value, "seed": seed, "arch": arch}


def summarise_runs(runs: list[Mapping[str, Any]]) -> dict[str, Any]:
    """Mean and sample std (ddof = 1; 0 for one run) of the final accuracies of ``runs`` (and of their
    best-of-checks, when every run has one), plus the per-seed values."""
    if not runs:
        raise ValueError("runs is empty; summarise at least one evaluation")
    accs = torch.tensor([float(r["acc"]) for r in runs], dtype=torch.float64)
    out = {"mean": float(accs.mean()), "std": float(accs.std()) if len(runs) > 1 else 0.0,
           "accs": accs.tolist(), "seeds": [r.get("seed") for r in runs], "n": len(runs)}
    best = [r.get("best_of_checks") for r in runs]
    if all(b is not None for b in best):
        b = torch.tensor(best, dtype=torch.float64)
        out.update(best_mean=float(b.mean()), best_std=float(b.std()) if len(runs) > 1 else 0.0)
    return out
