"""One-shot coreset baselines of the papers' tables, class-balanced, at a given budget.

* Forgetting (Toneva et al. 2019): train a network and count, per sample, the *forgetting events* —
  presentations at which the sample is misclassified although it was classified correctly at its
  previous presentation (:class:`ForgettingTracker`, :func:`forgetting_scores`); keep the most
  forgotten samples of every class (:func:`forgetting_select`).
* :func:`select_coreset` dispatches over ``random``, ``herding``, ``kcenter``, ``forgetting`` and
  ``graphcut``, running :mod:`dscore.select`'s selectors inside every class on embeddings.
"""
from __future__ import annotations

from typing import Callable

import torch
import torch.nn as nn
import torch.nn.functional as F
from tqdm.auto import tqdm

from .augment import get_augmentation
from .features import GradientFeatures
from .quantize import bin_budgets, budget_from_ratio
from .select import graphcut, herding, kcenter_greedy, per_class, random_subset
from .train import batch_indices, make_lr_schedule
from .utils import autocast, check_choice, check_float, check_int, make_generator, resolve_device

__all__ = [
    "METHODS",
    "ForgettingTracker",
    "count_forgetting_events",
    "forgetting_scores",
    "forgetting_select",
    "class_budgets",
    "select_coreset",
]

METHODS = ("random", "herding", "kcenter", "forgetting", "graphcut")


# ----------------------------------------------------------------------------------- forgetting

class ForgettingTracker:
    """Vectorised bookkeeping of forgetting events for N samples.

    :meth:`update` takes the indices of one mini-batch and whether each was classified correctly.
    State per sample (int64 / bool tensors on ``device``): ``presentations``, ``events`` (number of
    correct → incorrect transitions between consecutive presentations), ``last_correct`` and
    ``ever_correct``. O(batch) per update, O(N) memory.
    """

    def __init__(self, n: int, device="cpu"):
        n = check_int("n", n, low=1)
        dev = torch.device(device)
        self.n = n
        self.events = torch.zeros(n, dtype=torch.long, device=dev)
        self.presentations = torch.zeros(n, dtype=torch.long, device=dev)
        self.last_correct = torch.zeros(n, dtype=torch.bool, device=dev)
        self.ever_correct = torch.zeros(n, dtype=torch.bool, device=dev)

    def update(self, indices: torch.Tensor, correct: torch.Tensor) -> None:
        """Record one presentation of each sample in ``indices`` (distinct) with its ``correct`` flag."""
        indices = torch.as_tensor(indices).to(self.events.device).long().flatten()
        correct = torch.as_tensor(correct).to(self.events.device).bool().flatten()
        if indices.shape != correct.shape:
            raise ValueError(f"indices ({indices.numel()}) and correct ({correct.numel()}) must have the same length")
        if indices.numel() == 0:
            return
        if int(indices.min()) < 0 or int(indices.max()) >= self.n:
            raise ValueError(f"indices must lie in [0, {self.n})")
        if torch.unique(indices).numel() != indices.numel():
            raise ValueError("indices of one update must be distinct (one presentation per sample)")
        forgotten = self.last_correct[indices] & ~correct          # unpresented samples have last_correct False
        self.events.index_add_(0, indices, forgotten.long())
        self.presentations.index_add_(0, indices, torch.ones_like(indices))
        self.last_correct[indices] = correct
        self.ever_correct[indices] |= correct

    def scores(self) -> torch.Tensor:
        """Forgetting score per sample (float64): its event count, and for never-learned samples
        (never correct, including never presented) the largest presentation count of any sample — a
        value no learned sample reaches (k presentations allow at most ⌊k/2⌋ events), so they rank first."""
        top = max(int(self.presentations.max()), 1)
        return torch.where(self.ever_correct, self.events.double(), torch.full_like(self.events, top).double())


def count_forgetting_events(correct: torch.Tensor) -> torch.Tensor:
    """Forgetting events from a full (T, N) bool history (row t = correctness at presentation t).

    Counts ``correct[t-1] & ~correct[t]`` over t per column: (N,) int64. O(T·N).
    """
    if not torch.is_tensor(correct) or correct.dim() != 2:
        raise ValueError("correct must be a (T, N) tensor of booleans")
    c = correct.bool()
    return (c[:-1] & ~c[1:]).sum(dim=0).long()


def _check_images_labels(images, labels) -> torch.Tensor:
    if not torch.is_tensor(images) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError("images must be a float tensor of shape (N, C, H, W)")
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point() \
            or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer tensor with {images.shape[0]} entries")
    if images.shape[0] == 0:
        raise ValueError("images is empty")
    return labels.long()


def forgetting_scores(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, epochs: int,
                      batch_size: int = 128, lr: float = 0.1, momentum: float = 0.9, weight_decay: float = 5e-4,
                      schedule: str = "cosine", augment: str | Callable = "crop_flip", device=None, seed: int = 0,
                      progress: bool = True) -> torch.Tensor:
    """Train ``model`` in place and return each sample's forgetting score, (N,) float64 on CPU.

    SGD (``momentum``, ``weight_decay``) with a per-iteration ``schedule`` from ``lr``; every epoch visits
    all samples in a seeded random order; each batch is augmented (``augment``) and its training forward
    pass decides correctness (argmax == label), as in Toneva et al. Scores: the number of forgetting
    events; samples never classified correctly get ``epochs`` (see :meth:`ForgettingTracker.scores`).
    The caller seeds the model's initialisation; ``seed`` fixes batch order, augmentation and the global
    RNG inside (forked). Cost: ``epochs`` training epochs.
    """
    labels = _check_images_labels(images, labels)
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be an nn.Module, got {type(model).__name__}")
    epochs = check_int("epochs", epochs, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    momentum = check_float("momentum", momentum, low=0.0, high=1.0, high_open=True)
    weight_decay = check_float("weight_decay", weight_decay, low=0.0)
    seed = check_int("seed", seed, low=0)
    aug = augment if callable(augment) else get_augmentation(augment)
    n = images.shape[0]
    dev = resolve_device(device)
    steps = len(batch_indices(n, batch_size, generator=make_generator(0)))
    lr_at = make_lr_schedule(schedule, lr=lr, epochs=epochs, iters_per_epoch=steps)
    model.to(dev)
    if dev.type == "cuda":
        model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr_at(0), momentum=momentum, weight_decay=weight_decay)
    tracker = ForgettingTracker(n, dev)
    order_gen = make_generator(seed)
    aug_gen = make_generator(seed + 1, dev)
    iteration = 0
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        torch.manual_seed(seed + 2)
        model.train()
        for _ in tqdm(range(epochs), desc="forgetting", unit="ep", disable=not progress, leave=False):
            for idx in batch_indices(n, batch_size, generator=order_gen):
                x = images[idx.to(images.device)].to(dev, dtype=torch.float32, non_blocking=True)
                y = labels[idx.to(labels.device)].to(dev)
                with torch.no_grad():
                    x = aug(x, aug_gen)
                if dev.type == "cuda":
                    x = x.contiguous(memory_format=torch.channels_last)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(iteration)
                with autocast(dev):
                    logits = model(x)
                logits = logits.float()
                loss = F.cross_entropy(logits, y)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                tracker.update(idx.to(dev), logits.detach().argmax(1) == y)
                iteration += 1
    model.eval()
    return tracker.scores().cpu()            # every sample is presented once per epoch: never learned → epochs


def _top_scores(scores: torch.Tensor, budget: int) -> torch.Tensor:
    return torch.sort(-scores.double(), stable=True).indices[:budget]


def forgetting_select(scores: torch.Tensor, labels: torch.Tensor, budget_per_class) -> torch.Tensor:
    """The ``budget_per_class`` most forgotten samples of every class (ties: lower index first).

    ``scores``: (N,) from :func:`forgetting_scores`; ``budget_per_class``: one int or one per class
    (classes = distinct labels, ascending). Returns int64 indices, classes ascending, each class's
    samples from most to least forgotten.
    """
    scores = torch.as_tensor(scores)
    if scores.dim() != 1 or scores.dtype == torch.bool or scores.is_complex():
        raise ValueError("scores must be a 1-D numeric tensor (one score per sample)")
    return per_class(_top_scores, scores, labels, budget_per_class)


# -------------------------------------------------------------------------------------- dispatch

def class_budgets(labels: torch.Tensor, ratio: float) -> torch.Tensor:
    """Per-class budgets keeping ``M = round(ratio·N)`` samples in all, proportional to class sizes.

    Floors of ``M·n_c/N`` plus the leftover units to the largest remainders (ties: lower class), as
    :func:`dscore.quantize.bin_budgets` with β = 0 does for bins. Returns int64 (num distinct labels,)
    in ascending label order; sums to M exactly.
    """
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError("labels must be a 1-D integer tensor")
    _, counts = torch.unique(labels.cpu(), return_counts=True)
    return bin_budgets(counts, budget_from_ratio(ratio, labels.numel()))


def select_coreset(method: str, labels: torch.Tensor, *, budget_per_class=None, ratio: float | None = None,
                   features: torch.Tensor | GradientFeatures | None = None, forgetting: torch.Tensor | None = None,
                   seed: int = 0, lam: float = 1.0, progress: bool = False) -> torch.Tensor:
    """Class-balanced one-shot coreset by ``method`` ∈ :data:`METHODS`; returns global int64 indices.

    The budget is ``budget_per_class`` (one int, or one per class in ascending label order) or
    ``ratio`` (per-class budgets from :func:`class_budgets`, summing to round(ratio·N)) — exactly one of
    them. Inside every class (:func:`dscore.select.per_class`):

    * ``random`` — :func:`~dscore.select.random_subset` (class c uses ``seed + c``);
    * ``herding`` — :func:`~dscore.select.herding` on ``features`` (dense (N, d));
    * ``kcenter`` — :func:`~dscore.select.kcenter_greedy` on ``features`` (first centre from ``seed + c``);
    * ``graphcut`` — :func:`~dscore.select.graphcut` on ``features`` (dense or GradientFeatures), ``lam``;
    * ``forgetting`` — :func:`forgetting_select` on ``forgetting`` scores.

    Output order: classes ascending, each class's indices in its selector's pick order.
    Raises ValueError for an unknown method, a missing input, or an impossible budget, before any work.
    """
    check_choice("method", method, METHODS)
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError("labels must be a 1-D integer tensor")
    seed = check_int("seed", seed, low=0)
    if (budget_per_class is None) == (ratio is None):
        raise ValueError("give exactly one of budget_per_class= and ratio=")
    if ratio is not None:
        budget_per_class = class_budgets(labels, ratio).tolist()
    elif isinstance(budget_per_class, torch.Tensor):
        budget_per_class = budget_per_class.tolist()
    n = labels.shape[0]
    if method in ("herding", "kcenter", "graphcut"):
        if features is None:
            raise ValueError(f"method={method!r} needs features= (embeddings of the {n} samples)")
        if method != "graphcut" and isinstance(features, GradientFeatures):
            raise ValueError(f"method={method!r} needs dense features (N, d); GradientFeatures work with graphcut only")
        if len(features) != n:
            raise ValueError(f"features has {len(features)} rows but labels has {n} entries")
    if method == "forgetting":
        if forgetting is None:
            raise ValueError("method='forgetting' needs forgetting= scores from forgetting_scores")
        if torch.as_tensor(forgetting).shape != (n,):
            raise ValueError(f"forgetting must have shape ({n},), got {tuple(torch.as_tensor(forgetting).shape)}")
        return forgetting_select(forgetting, labels, budget_per_class)
    if method == "random":
        return per_class(random_subset, torch.arange(n, device=labels.device), labels, budget_per_class, seed=seed)
    if method == "herding":
        return per_class(herding, features, labels, budget_per_class, progress=progress)
    if method == "kcenter":
        return per_class(kcenter_greedy, features, labels, budget_per_class, seed=seed, progress=progress)
    lam = check_float("lam", lam)
    return per_class(graphcut, features, labels, budget_per_class, lam=lam, progress=progress)
