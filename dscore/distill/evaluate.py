"""Evaluation of distilled sets and of one-shot coresets at the same images-per-class budget.

* :func:`evaluate_synthetic` trains fresh networks on a synthetic set with the evaluation protocol
  of its family (:data:`dscore.train.PROTOCOLS` "idc" | "dsa" | "dc") and reports the **final-epoch**
  test accuracy, mean ± std over seeds (never the best epoch chosen on the test set);
  :func:`evaluate_result` does the same for a :class:`~dscore.distill.engine.DistillResult`. Beside
  it they record ``best_of_checks``, the authors' reporting protocol (best of periodic test checks),
  as a labelled diagnostic; :func:`evaluate_snapshots` gives DREAM+'s "best over the evaluations
  during distillation" the same way. Neither is ever used to choose anything.
* :func:`select_coreset_ipc` picks ``ipc`` real images per class by random / herding / k-center
  (:mod:`dscore.select` on embeddings) / forgetting (:func:`forgetting_scores`), and
  :func:`evaluate_coreset_ipc` evaluates that subset with the same protocol as the distilled sets
  (the coreset rows of the DREAM+ tables).
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn

from .. import models as _models
from ..select import forgetting_scores, select_coreset
from ..features import extract_embeddings
from ..train import PROTOCOLS, train_many
from ..utils import check_choice, check_int
from .init import idc_decode, idc_decode_labels

__all__ = ["FAMILIES", "METHOD_FAMILY", "CORESET_METHODS", "AUTHORS_CHECKS", "family_of", "evaluate_synthetic",
           "evaluate_result", "evaluate_snapshots", "forgetting_scores", "select_coreset_ipc", "evaluate_coreset_ipc"]

FAMILIES = ("idc", "dsa", "dc")
# Which evaluation protocol a distillation method's sets are reported with: DM is evaluated like DSA.
METHOD_FAMILY = {"dc": "dc", "dsa": "dsa", "dm": "dsa", "idc": "idc"}
CORESET_METHODS = ("random", "herding", "kcenter", "forgetting")
#: Test checks per evaluation training in the authors' scripts: IDC/DREAM's ``test_data`` checks every
#: ``epochs // 4`` epochs and keeps the best; DC/DSA/DM's ``evaluate_synset`` tests once, at the end.
AUTHORS_CHECKS = {"idc": 4, "dsa": 1, "dc": 1}
BEST_OF_CHECKS_LABEL = ("authors' protocol: best of the periodic test checks — a diagnostic shown beside the "
                        "final-epoch accuracy, never used to choose anything")


def family_of(method: str) -> str:
    """Evaluation family of a distillation method: dc → "dc", dsa/dm → "dsa", idc → "idc"."""
    check_choice("method", method, METHOD_FAMILY)
    return METHOD_FAMILY[method]


def _check_set(what: str, images, labels) -> None:
    if not torch.is_tensor(images) or images.dim() != 4 or not images.is_floating_point() or images.shape[0] == 0:
        got = f"shape {tuple(images.shape)} dtype {images.dtype}" if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{what} images must be a non-empty float tensor (N, C, H, W); got {got}")
    if (not torch.is_tensor(labels) or labels.dim() != 1 or labels.dtype != torch.int64
            or labels.shape[0] != images.shape[0]):
        got = f"shape {tuple(labels.shape)} dtype {labels.dtype}" if torch.is_tensor(labels) else type(labels).__name__
        raise ValueError(f"{what} labels must be an int64 tensor of shape ({images.shape[0]},); got {got}")
    if int(labels.min()) < 0:
        raise ValueError(f"{what} labels must be >= 0; found {int(labels.min())}")


def _check_seeds(seeds) -> list[int]:
    if isinstance(seeds, (int, np.integer)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise ValueError(f"seeds={seeds!r} must be a non-empty sequence of non-negative integers")
    return [check_int("seed", s, low=0) for s in seeds]


def evaluate_synthetic(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor,
                       test_labels: torch.Tensor, *, method_family: str, factor: int = 1, arch: str = "convnet3",
                       arch_kwargs: Mapping[str, Any] | None = None, num_classes: int | None = None,
                       mean: Sequence[float] | float | None = None, std: Sequence[float] | float | None = None,
                       epochs: int | None = None, batch_size: int | None = None, seeds: Sequence[int] = (0, 1, 2),
                       check_every: int | None = None, device: str | torch.device | None = None,
                       progress: bool = True) -> dict[str, Any]:
    """Train ``arch`` from scratch on a synthetic set, once per seed, and test on the real test set.

    ``method_family`` picks the protocol of :data:`dscore.train.PROTOCOLS`: "idc" (SGD lr 0.01, batch 64,
    1000 epochs, LR ×0.2 at ⅔ and ⅚, per-sample DiffAug + CutMix p 0.5), "dsa" (batch 256, 1000 epochs
    with DSA augmentation, LR ×0.1 after half) or "dc" (the same, 300 epochs, no augmentation).
    ``epochs``/``batch_size`` override the protocol's. For the "idc" family, ``factor`` > 1 decodes the
    stored images first (each into f² images, :func:`~dscore.distill.init.idc_decode`); other families
    need factor 1.

    Shapes: images (M, C, H, W) in [0, 1], labels (M,) int64; test set likewise. ``mean``/``std`` are
    the dataset's (the networks normalise internally). Returns ``{"mean", "std", "accs", "seeds",
    "family", "epochs", "best_of_checks", "best_of_checks_mean", "check_every", "best_of_checks_label"}``
    with accuracies in [0, 1]; ``mean``/``std``/``accs`` are of the **final** epoch (our number; std
    over seeds, ddof 1). ``best_of_checks`` (per seed) and its mean are the authors' protocol: the
    best test accuracy over checks every ``check_every`` epochs (default: the authors' interval,
    ``epochs // 4`` for the IDC family, ``epochs`` — i.e. only the final epoch — for DC/DSA/DM); a
    labelled diagnostic, never used to choose anything. Cost: len(seeds) trainings of ``epochs``
    epochs on M·f² images plus one test pass per check.
    """
    check_choice("method_family", method_family, FAMILIES)
    factor = check_int("factor", factor, low=1)
    if factor > 1 and method_family != "idc":
        raise ValueError(f"factor={factor} (IDC multi-formation decode) needs method_family='idc'; "
                         f"allowed for method_family={method_family!r}: factor=1")
    _check_set("synthetic", images, labels)
    _check_set("test", test_images, test_labels)
    if images.shape[1:] != test_images.shape[1:]:
        raise ValueError(f"synthetic images {tuple(images.shape[1:])} and test images {tuple(test_images.shape[1:])} "
                         "must have the same (C, H, W)")
    if images.shape[2] != images.shape[3]:
        raise ValueError(f"images must be square (H == W); got {tuple(images.shape[2:])}")
    top = max(int(labels.max()), int(test_labels.max())) + 1
    num_classes = top if num_classes is None else check_int("num_classes", num_classes, low=top)
    seeds = _check_seeds(seeds)
    overrides: dict[str, Any] = {}
    if epochs is not None:
        overrides["epochs"] = check_int("epochs", epochs, low=1)
    if batch_size is not None:
        overrides["batch_size"] = check_int("batch_size", batch_size, low=1)
    total_epochs = overrides.get("epochs", PROTOCOLS[method_family].epochs)
    if check_every is None:
        check_every = max(1, total_epochs // AUTHORS_CHECKS[method_family])
    check_every = check_int("check_every", check_every, low=1)
    arch_kwargs = dict(arch_kwargs or {})
    allowed = _models.model_kwargs(arch)            # unknown arch → ValueError before any work
    unknown = sorted(set(arch_kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"arch_kwargs {unknown} are not accepted by model {arch!r}; allowed: {', '.join(allowed)}")

    if factor > 1:
        images, labels = idc_decode(images, factor), idc_decode_labels(labels, factor)
    channels, size = images.shape[1], images.shape[2]

    def model_fn(seed: int) -> nn.Module:
        return _models.create_model(arch, num_classes=num_classes, in_channels=channels, image_size=size,
                                    mean=mean, std=std, seed=seed, **arch_kwargs)

    out = train_many(model_fn, images.detach().float(), labels, seeds=seeds, test=(test_images, test_labels),
                     protocol=method_family, device=device, progress=progress, eval_every=check_every, **overrides)
    return {"mean": out["mean"], "std": out["std"], "accs": out["accs"], "seeds": out["seeds"],
            "family": method_family, "epochs": total_epochs,
            "best_of_checks": out["best_of_checks"], "best_of_checks_mean": out["best_of_checks_mean"],
            "check_every": check_every, "best_of_checks_label": BEST_OF_CHECKS_LABEL}


def evaluate_result(result, test_images: torch.Tensor, test_labels: torch.Tensor, **kwargs) -> dict[str, Any]:
    """:func:`evaluate_synthetic` for a :class:`~dscore.distill.engine.DistillResult`: family, factor and
    (unless given) arch/arch_kwargs are taken from ``result.config``; other keywords are passed on."""
    cfg = result.config
    kwargs.setdefault("arch", cfg.arch)
    kwargs.setdefault("arch_kwargs", cfg.arch_kwargs)
    return evaluate_synthetic(result.images, result.labels, test_images, test_labels,
                              method_family=family_of(cfg.method), factor=cfg.factor if cfg.method == "idc" else 1,
                              **kwargs)


def evaluate_snapshots(result, test_images: torch.Tensor, test_labels: torch.Tensor, **kwargs) -> dict[str, Any]:
    """Evaluate every snapshot of a :class:`~dscore.distill.engine.DistillResult` (``snapshot_every``)
    with :func:`evaluate_result`'s settings — DREAM+'s authors evaluate during distillation and report
    the best of those evaluations.

    Returns ``{"iterations", "means", "final", "best_over_snapshots", "best_iteration", "label",
    "runs"}``: ``final`` is the mean final-epoch accuracy of the last snapshot (our number);
    ``best_over_snapshots`` the highest mean over snapshots (the authors' protocol) — a labelled
    diagnostic that peeks at the test set, never used to choose a snapshot or anything else.
    ``runs``: the per-snapshot :func:`evaluate_synthetic` dicts. No snapshots → ValueError.
    """
    if not result.snapshots:
        raise ValueError("the result has no snapshots; distil with snapshot_every > 0 to evaluate during distillation")
    cfg = result.config
    kwargs.setdefault("arch", cfg.arch)
    kwargs.setdefault("arch_kwargs", cfg.arch_kwargs)
    runs, iterations = [], []
    for iteration, images in result.snapshots:
        runs.append(evaluate_synthetic(images, result.labels, test_images, test_labels,
                                       method_family=family_of(cfg.method),
                                       factor=cfg.factor if cfg.method == "idc" else 1, **kwargs))
        iterations.append(int(iteration))
    means = [r["mean"] for r in runs]
    best = int(np.argmax(means))
    return {"iterations": iterations, "means": means, "final": means[-1], "best_over_snapshots": means[best],
            "best_iteration": iterations[best], "runs": runs,
            "label": "authors' protocol (DREAM+): best over the evaluations during distillation — a diagnostic "
                     "shown beside the final set's accuracy, never used to choose anything"}


# ------------------------------------------------------------------------------------ coresets

def select_coreset_ipc(train_labels: torch.Tensor, ipc: int, method: str, *, embeddings: torch.Tensor | None = None,
                       scores: torch.Tensor | None = None, seed: int = 0) -> torch.Tensor:
    """``ipc`` real samples per class → global indices (classes ascending, each in pick order).

    A thin IPC-budget front to :func:`dscore.select.select_coreset`: "random" (seeded uniform),
    "herding" and "kcenter" on ``embeddings`` (N, D), "forgetting" on ``scores`` (N,) from
    :func:`dscore.select.forgetting_scores` (most forgotten first).
    """
    check_choice("method", method, CORESET_METHODS)
    if not torch.is_tensor(train_labels) or train_labels.dim() != 1 or train_labels.numel() == 0:
        raise ValueError("train_labels must be a non-empty 1-D integer tensor")
    ipc = check_int("ipc", ipc, low=1)
    n = train_labels.shape[0]
    present = torch.bincount(train_labels.cpu())
    present = present[present > 0]
    if ipc > int(present.min()):
        raise ValueError(f"ipc={ipc} exceeds the smallest class ({int(present.min())} images); "
                         f"allowed: ipc <= {int(present.min())}")
    if method in ("herding", "kcenter") and (embeddings is None or not torch.is_tensor(embeddings)
                                             or embeddings.dim() != 2 or embeddings.shape[0] != n):
        raise ValueError(f"method={method!r} needs embeddings of shape ({n}, D)")
    if method == "forgetting" and (scores is None or not torch.is_tensor(scores) or scores.shape != (n,)):
        raise ValueError(f"method='forgetting' needs scores of shape ({n},) from forgetting_scores")
    return select_coreset(method, train_labels.cpu(), budget_per_class=ipc, features=embeddings,
                          forgetting=scores, seed=seed)


def evaluate_coreset_ipc(train_images: torch.Tensor, train_labels: torch.Tensor, test_images: torch.Tensor,
                         test_labels: torch.Tensor, *, ipc: int, method: str, method_family: str = "dsa",
                         embeddings: torch.Tensor | None = None, feature_model: nn.Module | None = None,
                         forgetting_epochs: int = 10, arch: str = "convnet3",
                         arch_kwargs: Mapping[str, Any] | None = None, num_classes: int | None = None,
                         mean: Sequence[float] | float | None = None, std: Sequence[float] | float | None = None,
                         epochs: int | None = None, batch_size: int | None = None, seeds: Sequence[int] = (0, 1, 2),
                         select_seed: int = 0, device: str | torch.device | None = None,
                         progress: bool = True) -> dict[str, Any]:
    """Coreset baseline at ``ipc`` images per class, evaluated like the distilled sets.

    Selection by :func:`select_coreset_ipc`. herding/kcenter use ``embeddings`` or, when None,
    ``feature_model``'s embeddings of the training images; forgetting trains a fresh ``arch``
    (seed ``select_seed``) for ``forgetting_epochs`` epochs to count forgetting events. The subset is
    then evaluated by :func:`evaluate_synthetic` with ``method_family`` ("dsa" for the DC/DSA/DM tables,
    "idc" for the IDC/DREAM ones). Returns evaluate_synthetic's dict plus ``"indices"`` (global, CPU).
    """
    check_choice("method", method, CORESET_METHODS)
    check_choice("method_family", method_family, FAMILIES)
    _check_set("train", train_images, train_labels)
    ipc = check_int("ipc", ipc, low=1)
    if method in ("herding", "kcenter") and embeddings is None:
        if feature_model is None:
            raise ValueError(f"method={method!r} needs embeddings (N, D) or a feature_model to compute them")
        embeddings = extract_embeddings(feature_model, train_images, device=device, progress=progress)
    scores = None
    if method == "forgetting":
        top = int(train_labels.max()) + 1 if num_classes is None else num_classes
        net = _models.create_model(arch, num_classes=top, in_channels=train_images.shape[1],
                                   image_size=train_images.shape[2], mean=mean, std=std, seed=select_seed,
                                   **dict(arch_kwargs or {}))
        scores = forgetting_scores(net, train_images, train_labels, epochs=forgetting_epochs, seed=select_seed,
                                   device=device, progress=progress)
    idx = select_coreset_ipc(train_labels, ipc, method, embeddings=embeddings, scores=scores, seed=select_seed).cpu()
    out = evaluate_synthetic(train_images[idx.to(train_images.device)], train_labels[idx.to(train_labels.device)],
                             test_images, test_labels, method_family=method_family, factor=1, arch=arch,
                             arch_kwargs=arch_kwargs, num_classes=num_classes, mean=mean, std=std, epochs=epochs,
                             batch_size=batch_size, seeds=seeds, device=device, progress=progress)
    out["indices"] = idx
    return out
