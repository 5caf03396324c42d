"""Forgetting (Toneva et al. 2019), the coreset baseline of both papers' tables.

Train a network and count, per sample, the *forgetting events* — presentations at which the sample
is misclassified although it was classified correctly at its previous presentation
(:class:`ForgettingTracker`, :func:`forgetting_scores`); keep the most forgotten samples of every
class (:func:`forgetting_select`).
"""
from __future__ import annotations

from typing import Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import get_augmentation
from ..train import TrainProtocol, batch_indices, make_lr_schedule
from ..utils import autocast, check_int, make_generator, resolve_device, tqdm
from .greedy import per_class

__all__ = ["ForgettingTracker", "count_forgetting_events", "forgetting_scores", "forgetting_select", "never_learned"]


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


#: what a mapping ``protocol`` of :func:`forgetting_scores` starts from (SGD momentum 0.9, weight decay 5e-4, cosine,
#: crop/flip: the rest of :class:`dscore.train.TrainProtocol`'s defaults)
FORGETTING_DEFAULTS = {"batch_size": 128, "lr": 0.1}


def forgetting_scores(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, protocol, *,
                      augment: str | Callable | None = None, device=None, seed: int = 0,
                      progress: bool = True) -> torch.Tensor:
    """Train ``model`` in place and return each sample's forgetting score, (N,) float64 on CPU.

    ``protocol``: the training recipe, a :class:`dscore.train.TrainProtocol` or a mapping of its fields on top of
    :data:`FORGETTING_DEFAULTS` (e.g. ``{"epochs": 10}``); ``augment`` (a name or a callable) replaces its
    augmentation when given; CutMix is not supported (correctness is judged on each sample's own label).
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
    recipe = TrainProtocol.of({**FORGETTING_DEFAULTS, **protocol} if isinstance(protocol, Mapping) else protocol)
    if recipe.cutmix_p:
        raise ValueError(f"cutmix_p={recipe.cutmix_p}: forgetting events need each sample's own label; use 0")
    epochs, batch_size, lr, momentum, weight_decay = (recipe.epochs, recipe.batch_size, recipe.lr, recipe.momentum,
                                                      recipe.weight_decay)
    seed = check_int("seed", seed, low=0)
    augment = recipe.augment if augment is None else augment
    aug = augment if callable(augment) else get_augmentation(augment)
    n = images.shape[0]
    dev = resolve_device(device)
    steps = len(batch_indices(n, batch_size, generator=make_generator(0)))
    lr_at = make_lr_schedule(recipe.schedule, lr=lr, epochs=epochs, iters_per_epoch=steps,
                             milestones=recipe.milestones, gamma=recipe.gamma)
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


def never_learned(scores: torch.Tensor, epochs: int) -> torch.Tensor:
    """(N,) bool: the samples of :func:`forgetting_scores` (``epochs`` epochs, one presentation each) that were never
    classified correctly. A learned sample has at most ⌊epochs/2⌋ events; a never-learned one scores the presentation
    count, ``epochs``, which is above that for every ``epochs`` ≥ 1."""
    return torch.as_tensor(scores) > check_int("epochs", epochs, low=1) // 2


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


