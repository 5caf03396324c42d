"""ADQ's texture-trajectory check (ADQ Fig. 4).

Split the images into tertiles by texture level (:func:`texture_tertiles`). From one shared
initialisation θ₀, train an *expert* on all images and one *student* per tertile with the same
optimiser settings and number of epochs (:func:`texture_trajectories`); after every epoch t record

    d_t = ‖θ_student,t − θ_expert,t‖² / ‖θ_expert,t − θ₀‖²

over all trainable parameters. ADQ observes that students trained on high-texture images stay
closest to the expert, which motivates texture level as the representativeness score.
"""
from __future__ import annotations

import copy
from typing import Callable, Mapping

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..augment import get_augmentation
from ..train import TrainProtocol, batch_indices, seeded_model
from ..utils import autocast, check_float, check_int, make_generator, resolve_device, tqdm
from .texture import texture_level

__all__ = ["texture_tertiles", "texture_trajectories", "parameter_vector"]

TERTILES = ("high", "medium", "low")


def texture_tertiles(images: torch.Tensor, patch: int = 32, *, labels: torch.Tensor | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Indices of the high / medium / low texture-level thirds of ``images`` (N, C, H, W), N >= 3.

    TL per image is :func:`dscore.quantize.texture_level` (mean over its L×L patches, L = ``patch``).
    Images are ranked by TL descending (ties: lower index first) and cut into three parts of sizes
    ``⌈N/3⌉``-ish as ``torch.tensor_split`` does (the first parts take the remainder). With ``labels`` (N,)
    the cut is made **within every class** and the classes' thirds are joined, so the three parts hold the same
    class mix and texture is not confounded with class. Each returned int64 tensor lists its indices in
    ascending order; together they partition ``range(N)``. O(N·H·W).
    """
    if not torch.is_tensor(images) or images.dim() != 4:
        raise ValueError(f"images must be a tensor of shape (N, C, H, W), got "
                         f"{tuple(images.shape) if torch.is_tensor(images) else type(images).__name__}")
    if images.shape[0] < 3:
        raise ValueError(f"texture_tertiles needs at least 3 images, got {images.shape[0]}")
    tl = texture_level(images, patch).double().cpu()
    if labels is None:
        groups = [torch.arange(images.shape[0])]
    else:
        labels = torch.as_tensor(labels).long().cpu().flatten()
        if labels.numel() != images.shape[0]:
            raise ValueError(f"labels must have one entry per image ({images.shape[0]}), got {labels.numel()}")
        groups = [torch.nonzero(labels == c).flatten() for c in labels.unique()]
        small = [int(c) for c, g in zip(labels.unique(), groups) if g.numel() < 3]
        if small:
            raise ValueError(f"classes {small} have fewer than 3 images; a within-class split needs 3 per class")
    parts = ([], [], [])
    for g in groups:
        order = g[torch.sort(-tl[g], stable=True).indices]
        for part, chunk in zip(parts, torch.tensor_split(order, 3)):
            part.append(chunk)
    high, medium, low = (torch.cat(p).sort().values for p in parts)
    return high, medium, low


def parameter_vector(model: nn.Module) -> torch.Tensor:
    """All trainable parameters of ``model`` flattened into one float64 vector (buffers excluded)."""
    return torch.cat([p.detach().double().flatten() for p in model.parameters() if p.requires_grad])


class _Trainee:
    """One network with its own SGD optimiser and batch-order generator (seeded identically for all)."""

    def __init__(self, model: nn.Module, indices: torch.Tensor, *, lr, momentum, weight_decay, seed: int):
        self.model = model
        self.indices = indices
        self.optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
        self.order = make_generator(seed)

    def epoch(self, images, labels, *, batch_size: int, augment, aug_gen, device: torch.device) -> None:
        self.model.train()
        for batch in batch_indices(self.indices.numel(), batch_size, generator=self.order):
            idx = self.indices[batch]
            x = images[idx.to(images.device)].to(device, dtype=torch.float32, non_blocking=True)
            y = labels[idx.to(labels.device)].to(device)
            with torch.no_grad():
                x = augment(x, aug_gen)
            if device.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(device):
                logits = self.model(x)
            loss = F.cross_entropy(logits.float(), y)
            self.optimizer.zero_grad(set_to_none=True)
            loss.backward()
            self.optimizer.step()


#: what a mapping ``protocol`` of :func:`texture_trajectories` starts from: constant-LR SGD, no augmentation
TRAJECTORY_DEFAULTS = {"batch_size": 128, "lr": 0.01, "schedule": "constant", "augment": "none"}


def texture_trajectories(images: torch.Tensor, labels: torch.Tensor, model_fn: Callable[[], nn.Module],
                         protocol: TrainProtocol | Mapping, *, patch: int = 32,
                         students: Mapping[str, torch.Tensor] | None = None, within_class: bool = True,
                         augment: str | Callable | None = None, device=None, seed: int = 0,
                         progress: bool = True) -> dict[str, torch.Tensor]:
    """Parameter distance of tertile students to the all-data expert, epoch by epoch.

    ``protocol``: the trainees' recipe, a :class:`dscore.train.TrainProtocol` with the ``"constant"`` schedule or a
    mapping of its fields on top of :data:`TRAJECTORY_DEFAULTS` (e.g. ``{"epochs": 3, "lr": 0.05}``): ``epochs``,
    ``batch_size``, ``lr``, ``momentum``, ``weight_decay``, ``augment`` (replaced by the ``augment`` argument, a name
    or a callable, when given).

    ``images`` (N, C, H, W) in [0, 1], ``labels`` (N,) int64; ``model_fn()`` builds the network, called
    once with torch seeded by ``seed`` to give θ₀; the expert and every student start from deep copies
    of it. ``students`` maps a name to the indices it trains on (default: :func:`texture_tertiles` as
    ``{"high", "medium", "low"}``, cut within every class when ``within_class``, else over the whole set). Every
    trainee runs ``epochs`` epochs of plain SGD (constant ``lr``,
    ``momentum``, ``weight_decay``, cross-entropy, ``augment`` applied per batch, no test set) with its
    own batch-order generator seeded by ``seed``, so a student given all the data follows the expert
    exactly. After each epoch t the result records, per student,
    ``‖θ_student,t − θ_expert,t‖² / ‖θ_expert,t − θ₀‖²`` and, under ``"expert_travel"``,
    ``‖θ_expert,t − θ₀‖²`` (NaN ratios mean the expert has not moved). Returns float64 (epochs,) CPU
    tensors. Cost: (1 + #students) trainings; memory: 2 + #students copies of the network.
    """
    if not torch.is_tensor(images) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError("images must be a float tensor of shape (N, C, H, W)")
    if not torch.is_tensor(labels) or labels.dim() != 1 or labels.shape[0] != images.shape[0] \
            or labels.is_floating_point():
        raise ValueError(f"labels must be an integer tensor of shape ({images.shape[0]},)")
    if not callable(model_fn):
        raise ValueError("model_fn must be a callable returning a fresh nn.Module")
    recipe = TrainProtocol.of({**TRAJECTORY_DEFAULTS, **protocol} if isinstance(protocol, Mapping) else protocol)
    if recipe.schedule != "constant" or recipe.cutmix_p:
        raise ValueError(f"protocol={recipe!r}: the trajectories train with a constant learning rate and no CutMix")
    epochs, batch_size, lr, momentum, weight_decay = (recipe.epochs, recipe.batch_size, recipe.lr, recipe.momentum,
                                                      recipe.weight_decay)
    check_float("lr", lr, low=0.0, low_open=True)
    seed = check_int("seed", seed, low=0)
    augment = recipe.augment if augment is None else augment
    aug = augment if callable(augment) else get_augmentation(augment)
    n = images.shape[0]
    if students is None:
        students = dict(zip(TERTILES, texture_tertiles(images, patch, labels=labels if within_class else None)))
    if not isinstance(students, Mapping) or not students:
        raise ValueError("students must be a non-empty mapping name -> index tensor")
    subsets = {}
    for name, idx in students.items():
        if name == "expert_travel":
            raise ValueError("'expert_travel' is reserved for the expert's own distance; rename that student")
        idx = torch.as_tensor(idx).long().cpu().flatten()
        if idx.numel() == 0 or int(idx.min()) < 0 or int(idx.max()) >= n:
            raise ValueError(f"student {name!r} must train on a non-empty set of indices in [0, {n})")
        subsets[str(name)] = idx
    dev = resolve_device(device)
    labels = labels.long()

    theta0 = seeded_model(model_fn, seed).to(dev)
    if dev.type == "cuda":
        theta0 = theta0.to(memory_format=torch.channels_last)
    start = parameter_vector(theta0)
    opt = dict(lr=lr, momentum=momentum, weight_decay=weight_decay, seed=seed)
    expert = _Trainee(copy.deepcopy(theta0), torch.arange(n), **opt)
    learners = {name: _Trainee(copy.deepcopy(theta0), idx, **opt) for name, idx in subsets.items()}
    del theta0
    out = {name: torch.empty(epochs, dtype=torch.float64) for name in [*subsets, "expert_travel"]}
    with torch.random.fork_rng(devices=[dev.index or 0] if dev.type == "cuda" else []):
        for t in tqdm(range(epochs), desc="trajectories", unit="ep", disable=not progress, leave=False):
            # Every trainee sees identically seeded augmentation and global-RNG streams (dropout etc.)
            # in epoch t, so that only the data distinguishes them.
            for trainee in (expert, *learners.values()):
                torch.manual_seed(seed + 7919 * (t + 1))
                trainee.epoch(images, labels, batch_size=batch_size, augment=aug,
                              aug_gen=make_generator(seed + 104729 * (t + 1), dev), device=dev)
            theta_e = parameter_vector(expert.model)
            travel = (theta_e - start).pow(2).sum()
            out["expert_travel"][t] = float(travel)
            for name, learner in learners.items():
                gap = (parameter_vector(learner.model) - theta_e).pow(2).sum()
                out[name][t] = float(gap / travel) if float(travel) > 0 else float("nan")
    return out
