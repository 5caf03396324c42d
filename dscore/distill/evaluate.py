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

import dataclasses
from dataclasses import dataclass, field
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

__all__ = ["FAMILIES", "METHOD_FAMILY", "CORESET_METHODS", "AUTHORS_CHECKS", "Evaluation", "family_of",
           "evaluate_synthetic",
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


def _check_seeds(seeds) -> tuple[int, ...]:
    if isinstance(seeds, (int, np.integer)) or not isinstance(seeds, Sequence) or len(seeds) == 0:
        raise ValueError(f"seeds={seeds!r} must be a non-empty sequence of non-negative integers")
    return tuple(check_int("seed", s, low=0) for s in seeds)


@dataclass(frozen=True)
class Evaluation:
    """How a set is evaluated, checked when made.

    ``family`` picks the protocol of :data:`dscore.train.PROTOCOLS`: "idc" (SGD lr 0.01, batch 64, 1000 epochs, LR
    ×0.2 at ⅔ and ⅚, per-sample DiffAug + CutMix p 0.5), "dsa" (batch 256, 1000 epochs with DSA augmentation, LR ×0.1
    after half) or "dc" (the same, 300 epochs, no augmentation); ``epochs`` / ``batch_size`` override the protocol's.
    The network: ``create_model(arch, **arch_kwargs)`` with ``num_classes`` outputs (None: from the labels) and the
    dataset's ``mean`` / ``std`` (the networks normalise internally), one per seed of ``seeds``. ``check_every``:
    the authors' periodic test checks (default: their interval, ``epochs // 4`` for the IDC family, ``epochs`` —
    i.e. only the final epoch — for DC/DSA/DM). ``Evaluation.of(mapping)`` builds one from a mapping of its fields.
    """

    family: str
    arch: str = "convnet3"
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    num_classes: int | None = None
    mean: Sequence[float] | float | None = None
    std: Sequence[float] | float | None = None
    epochs: int | None = None
    batch_size: int | None = None
    seeds: Sequence[int] = (0, 1, 2)
    check_every: int | None = None

    def __post_init__(self):
        check_choice("method_family", self.family, FAMILIES)
        kwargs = dict(self.arch_kwargs or {})
        allowed = _models.model_kwargs(self.arch)            # unknown arch → ValueError before any work
        unknown = sorted(set(kwargs) - set(allowed))
        if unknown:
            raise ValueError(f"arch_kwargs {unknown} are not accepted by model {self.arch!r}; allowed: "
                             f"{', '.join(allowed)}")
        object.__setattr__(self, "arch_kwargs", kwargs)
        for name in ("num_classes", "epochs", "batch_size", "check_every"):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_int(name, getattr(self, name), low=1))
        object.__setattr__(self, "seeds", _check_seeds(self.seeds))

    @classmethod
    def of(cls, value) -> "Evaluation":
        """An Evaluation as is, or one made from a mapping of its fields (``family`` required)."""
        if isinstance(value, cls):
            return value
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(value, Mapping):
            raise ValueError(f"evaluation={value!r} must be an Evaluation or a mapping of its fields ({', '.join(names)})")
        unknown = sorted(set(value) - set(names))
        if unknown or "family" not in value:
            raise ValueError(f"evaluation has unknown key(s) {unknown}{' and no family' if 'family' not in value else ''}"
                             f"; fields: {', '.join(names)} (family required)")
        return cls(**dict(value))

    @property
    def total_epochs(self) -> int:
        return self.epochs if self.epochs is not None else PROTOCOLS[self.family].epochs


def evaluate_synthetic(images: torch.Tensor, labels: torch.Tensor, test_images: torch.Tensor,
                       test_labels: torch.Tensor, evaluation: Evaluation | Mapping[str, Any], *, factor: int = 1,
                       device: str | torch.device | None = None, progress: bool = True) -> dict[str, Any]:
    """Train fresh networks on a synthetic set, once per seed, and test on the real test set, as ``evaluation``
    (an :class:`Evaluation` or a mapping of its fields) says.

    For the "idc" family, ``factor`` > 1 decodes the stored images first (each into f² images,
    :func:`~dscore.distill.init.idc_decode`); other families need factor 1.

    Shapes: images (M, C, H, W) in [0, 1], labels (M,) int64; test set likewise. Returns ``{"mean", "std", "accs", "seeds",
    "family", "epochs", "best_of_checks", "best_of_checks_mean", "check_every", "best_of_checks_label"}``
    with accuracies in [0, 1]; ``mean``/``std``/``accs`` are of the **final** epoch (our number; std
    over seeds, ddof 1). ``best_of_checks`` (per seed) and its mean are the authors' protocol: the
    best test accuracy over checks every ``check_every`` epochs (default: the authors' interval,
    ``epochs // 4`` for the IDC family, ``epochs`` — i.e. only the final epoch — for DC/DSA/DM); a
    labelled diagnostic, never used to choose anything. Cost: len(seeds) trainings of ``epochs``
    epochs on M·f² images plus one test pass per check.
    """
    ev = Evaluation.of(evaluation)
    method_family = ev.family
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
    num_classes = top if ev.num_classes is None else check_int("num_classes", ev.num_classes, low=top)
    overrides = {k: getattr(ev, k) for k in ("epochs", "batch_size") if getattr(ev, k) is not None}
    total_epochs = ev.total_epochs
    check_every = ev.check_every if ev.check_every is not None else \
        max(1, total_epochs // AUTHORS_CHECKS[method_family])

    if factor > 1:
        images, labels = idc_decode(images, factor), idc_decode_labels(labels, factor)
    channels, size = images.shape[1], images.shape[2]

    def model_fn(seed: int) -> nn.Module:
        return _models.create_model(ev.arch, num_classes=num_classes, in_channels=channels, image_size=size,
                                    mean=ev.mean, std=ev.std, seed=seed, **ev.arch_kwargs)

    out = train_many(model_fn, images.detach().float(), labels, seeds=list(ev.seeds), test=(test_images, test_labels),
                     protocol=method_family, device=device, progress=progress, eval_every=check_every, **overrides)
    return {"mean": out["mean"], "std": out["std"], "accs": out["accs"], "seeds": out["seeds"],
            "family": method_family, "epochs": total_epochs,
            "best_of_checks": out["best_of_checks"], "best_of_checks_mean": out["best_of_checks_mean"],
            "check_every": check_every, "best_of_checks_label": BEST_OF_CHECKS_LABEL}


def _evaluation_of(result, fields: Mapping[str, Any]) -> Evaluation:
    """The :class:`Evaluation` of a distillation result: its family, and (unless ``fields`` give them) its arch and
    arch_kwargs, with the other ``fields`` (Evaluation fields but ``family``)."""
    if "family" in fields:
        raise ValueError("the family of a distillation result is its method's; do not pass family")
    cfg = result.config
    return Evaluation.of({"family": family_of(cfg.method), "arch": cfg.arch, "arch_kwargs": cfg.arch_kwargs,
                          **fields})


def evaluate_result(result, test_images: torch.Tensor, test_labels: torch.Tensor, *, device=None,
                    progress: bool = True, **fields) -> dict[str, Any]:
    """:func:`evaluate_synthetic` for a :class:`~dscore.distill.engine.DistillResult`: family, factor and
    (unless given) arch/arch_kwargs are taken from ``result.config``; ``fields`` are the other
    :class:`Evaluation` fields (``epochs``, ``seeds``, ``mean``, ``std`` …)."""
    cfg = result.config
    return evaluate_synthetic(result.images, result.labels, test_images, test_labels, _evaluation_of(result, fields),
                              factor=cfg.factor if cfg.method == "idc" else 1, device=device, progress=progress)


def evaluate_snapshots(result, test_images: torch.Tensor, test_labels: torch.Tensor, *, device=None,
                       progress: bool = True, **fields) -> dict[str, Any]:
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
    evaluation = _evaluation_of(result, fields)
    runs, iterations = [], []
    for iteration, images in result.snapshots:
        runs.append(evaluate_synthetic(images, result.labels, test_images, test_labels, evaluation,
                                       factor=cfg.factor if cfg.method == "idc" else 1, device=device,
                                       progress=progress))
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
                         test_labels: torch.Tensor, evaluation: Evaluation | Mapping[str, Any], *, ipc: int,
                         method: str, features: torch.Tensor | nn.Module | None = None, forgetting_epochs: int = 10,
                         select_seed: int = 0, device: str | torch.device | None = None,
                         progress: bool = True) -> dict[str, Any]:
    """Coreset baseline at ``ipc`` images per class, evaluated like the distilled sets.

    Selection by :func:`select_coreset_ipc`. herding/kcenter use ``features``: embeddings (N, D), or a feature
    network whose embeddings of the training images are taken; forgetting trains a fresh network of
    ``evaluation``'s architecture (seed ``select_seed``) for ``forgetting_epochs`` epochs to count forgetting
    events. The subset is then evaluated by :func:`evaluate_synthetic` with ``evaluation`` (family "dsa" for the
    DC/DSA/DM tables, "idc" for the IDC/DREAM ones). Returns evaluate_synthetic's dict plus ``"indices"`` (global,
    CPU).
    """
    ev = Evaluation.of(evaluation)
    check_choice("method", method, CORESET_METHODS)
    _check_set("train", train_images, train_labels)
    ipc = check_int("ipc", ipc, low=1)
    embeddings = features if torch.is_tensor(features) else None
    if method in ("herding", "kcenter") and embeddings is None:
        if not isinstance(features, nn.Module):
            raise ValueError(f"method={method!r} needs features: embeddings (N, D) or a feature network")
        embeddings = extract_embeddings(features, train_images, device=device, progress=progress)
    scores = None
    if method == "forgetting":
        top = int(train_labels.max()) + 1 if ev.num_classes is None else ev.num_classes
        net = _models.create_model(ev.arch, num_classes=top, in_channels=train_images.shape[1],
                                   image_size=train_images.shape[2], mean=ev.mean, std=ev.std, seed=select_seed,
                                   **ev.arch_kwargs)
        scores = forgetting_scores(net, train_images, train_labels, {"epochs": forgetting_epochs}, seed=select_seed,
                                   device=device, progress=progress)
    idx = select_coreset_ipc(train_labels, ipc, method, embeddings=embeddings, scores=scores, seed=select_seed).cpu()
    out = evaluate_synthetic(train_images[idx.to(train_images.device)], train_labels[idx.to(train_labels.device)],
                             test_images, test_labels, ev, device=device, progress=progress)
    out["indices"] = idx
    return out
