"""Class-incremental continual learning with a fixed memory per class (DREAM+ Fig. 11; DC / IDC's protocol).

The classes arrive in ``steps`` groups of equal size, in ``class_order``. At step t the learner may use only
its *memory*: the stored images of every class seen so far (a coreset or a synthetic set per class, made
before training; nothing else of the old or new classes). After each step it is scored on the test images
of all classes seen so far. :func:`class_incremental` runs the protocol; :func:`expand_head` and
:func:`distillation_loss` are its two pieces.

The default follows the released continual-learning code of IDC (which DREAM+ says it follows): the network is
**not** retrained from scratch at each step. Its classifier grows by the new classes (the old rows of the last
linear layer are kept, the new ones freshly initialised), a frozen copy of the previous step's network is the
teacher, and the loss on every batch of memory images is cross-entropy over all seen classes plus a
knowledge-distillation term on the old classes' logits::

    KD = beta · T² · mean_batch KL( softmax(teacher / T) ‖ softmax(student[:, :old] / T) )

(T = 2, beta = 1 in the authors' code), with the optimiser, schedule, augmentation and CutMix of the
evaluation protocol restarted at every step. ``kd=None`` instead trains a fresh network on the
memory of all seen classes at every step (no teacher): the simpler "memory replay" reading.
"""
from __future__ import annotations

import copy
import math
import time
from types import MappingProxyType
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import get_augmentation, in_normalised_space
from .train import TrainProtocol, batch_indices, cutmix, evaluate, make_lr_schedule
from .utils import check_float, check_int, resolve_device, tqdm

__all__ = ["class_steps", "expand_head", "distillation_loss", "class_incremental", "topk_accuracy",
           "KNOWLEDGE_DISTILLATION"]


def class_steps(class_order: Sequence[int], steps: int) -> list[list[int]]:
    """Split ``class_order`` (a permutation of ``range(C)``) into ``steps`` consecutive groups of C / steps classes.

    Raises ValueError when the order is not a permutation or C is not a multiple of ``steps``."""
    order = [int(c) for c in class_order]
    steps = check_int("steps", steps, low=1)
    if sorted(order) != list(range(len(order))) or not order:
        raise ValueError(f"class_order={list(class_order)!r} must be a permutation of range(num_classes)")
    if len(order) % steps:
        raise ValueError(f"steps={steps} must divide the number of classes ({len(order)}); allowed: "
                         f"{[d for d in range(1, len(order) + 1) if len(order) % d == 0]}")
    k = len(order) // steps
    return [order[i * k:(i + 1) * k] for i in range(steps)]


def expand_head(model: nn.Module, extra: int, *, seed: int = 0) -> nn.Module:
    """A deep copy of ``model`` whose last linear layer ``model.fc`` has ``extra`` more outputs: the old rows
    (weights and biases) are copied, the new ones initialised as a fresh ``nn.Linear`` seeded by ``seed``.
    The old classes' logits of the copy equal the model's."""
    extra = check_int("extra", extra, low=1)
    fc = getattr(model, "fc", None)
    if not isinstance(fc, nn.Linear):
        raise ValueError(f"{type(model).__name__} has no final linear layer `fc`; class-incremental learning grows "
                         "that layer (every dscore ConvNet / ResNet / DenseNet has one)")
    new = copy.deepcopy(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        grown = nn.Linear(fc.in_features, fc.out_features + extra, bias=fc.bias is not None)
    grown = grown.to(device=fc.weight.device, dtype=fc.weight.dtype)
    with torch.no_grad():
        grown.weight[:fc.out_features] = fc.weight
        if fc.bias is not None:
            grown.bias[:fc.out_features] = fc.bias
    new.fc = grown
    return new


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, *, temperature: float = 2.0,
                      weight: float = 1.0) -> torch.Tensor:
    """Knowledge distillation on the old classes: ``weight · T² · mean over the batch of
    KL(softmax(teacher/T) ‖ softmax(student[:, :old]/T))`` with ``old = teacher_logits.shape[1]``.

    (The authors' ``KLDivLoss()`` averages over batch × old classes and multiplies by the number of old classes,
    which is this batch mean.)"""
    temperature = check_float("temperature", temperature, low=0.0, low_open=True)
    weight = check_float("weight", weight, low=0.0)
    old = teacher_logits.shape[1]
    if student_logits.dim() != 2 or student_logits.shape[0] != teacher_logits.shape[0] or student_logits.shape[1] < old:
        raise ValueError(f"student logits {tuple(student_logits.shape)} must cover the teacher's "
                         f"{tuple(teacher_logits.shape)} (same batch, at least as many classes)")
    log_p = F.log_softmax(student_logits[:, :old] / temperature, dim=1)
    q = F.softmax(teacher_logits.detach() / temperature, dim=1)
    return weight * temperature ** 2 * F.kl_div(log_p, q, reduction="batchmean")


@torch.no_grad()
def topk_accuracy(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, k: Sequence[int] = (1, 5), *,
                  device=None, batch_size: int = 512) -> dict[int, float]:
    """Top-k accuracies in [0, 1] of ``model`` on (images, labels) for every k (k capped at the number of
    classes), in eval mode; ``{k: acc}``."""
    ks = [check_int("k", v, low=1) for v in k]
    device = resolve_device(device)
    model.to(device)
    was = model.training
    model.eval()
    hits = {v: 0 for v in ks}
    try:
        for s in range(0, len(images), batch_size):
            logits = model(images[s:s + batch_size].to(device, torch.float32)).float()
            y = labels[s:s + batch_size].to(device)
            top = logits.topk(min(max(ks), logits.shape[1]), dim=1).indices
            for v in ks:
                hits[v] += int((top[:, :min(v, logits.shape[1])] == y[:, None]).any(1).sum())
    finally:
        model.train(was)
    return {v: hits[v] / len(images) for v in ks}


def _augmenter(name: str, model: nn.Module) -> Callable:
    fn = get_augmentation(name)
    mean, std = getattr(model, "mean", None), getattr(model, "std", None)
    if getattr(fn, "normalised_space", False) and torch.is_tensor(mean) and torch.is_tensor(std):
        return lambda x, g: in_normalised_space(lambda z: fn(z, g), x, mean.to(x.device), std.to(x.device))
    return fn


def _train_step(model: nn.Module, teacher: nn.Module | None, images: torch.Tensor, labels: torch.Tensor,
                protocol: TrainProtocol, *, temperature: float, kd_weight: float, seed: int,
                device: torch.device) -> None:
    """One step's training on the memory: the protocol's SGD / schedule / augmentation / CutMix, + KD."""
    n = len(images)
    order_gen = torch.Generator().manual_seed(seed * 4 + 1)
    mix_gen = torch.Generator().manual_seed(seed * 4 + 2)
    aug_gen = torch.Generator(device=device).manual_seed(seed * 4 + 3)
    per_epoch = len(batch_indices(n, protocol.batch_size, generator=torch.Generator().manual_seed(0), min_batch=2))
    lr_at = make_lr_schedule(protocol.schedule, lr=protocol.lr, epochs=protocol.epochs, iters_per_epoch=per_epoch,
                             milestones=protocol.milestones, gamma=protocol.gamma)
    aug = _augmenter(protocol.augment, model)
    opt = torch.optim.SGD(model.parameters(), lr=lr_at(0), momentum=protocol.momentum,
                          weight_decay=protocol.weight_decay)
    images, labels = images.to(device), labels.to(device)
    it = 0
    with torch.random.fork_rng(devices=[device.index] if device.type == "cuda" and device.index is not None else []):
        torch.manual_seed(seed * 4)
        for _ in range(protocol.epochs):
            model.train()
            for batch in batch_indices(n, protocol.batch_size, generator=order_gen, min_batch=2):
                b = batch.to(device)
                x, y = images[b], labels[b]
                with torch.no_grad():
                    x = aug(x, aug_gen)
                partner, lam = y, 1.0
                if protocol.cutmix_p > 0:
                    x, partner, lam = cutmix(x, y, p=protocol.cutmix_p, generator=mix_gen)
                for g in opt.param_groups:
                    g["lr"] = lr_at(it)
                logits = model(x).float()
                loss = F.cross_entropy(logits, y)
                if lam < 1.0:
                    loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits, partner)
                if teacher is not None and kd_weight > 0:
                    with torch.no_grad():
                        ref = teacher(x).float()
                    loss = loss + distillation_loss(logits, ref, temperature=temperature, weight=kd_weight)
                opt.zero_grad(set_to_none=True)
                loss.backward()
                opt.step()
                it += 1
    model.eval()


#: the default ``kd`` of :func:`class_incremental`: the previous step's network teaches at temperature 2, weight 1
KNOWLEDGE_DISTILLATION = MappingProxyType({"temperature": 2.0, "weight": 1.0})


def class_incremental(memory: Mapping[int, tuple[torch.Tensor, ...] | torch.Tensor], test_images: torch.Tensor,
                      test_labels: torch.Tensor, *, model_fn: Callable[[int], nn.Module], protocol: TrainProtocol,
                      class_order: Sequence[int], steps: int = 5,
                      kd: Mapping[str, float] | None = KNOWLEDGE_DISTILLATION, seed: int = 0, device=None,
                      topk: Sequence[int] = (1, 5), progress: bool = True) -> list[dict[str, Any]]:
    """Run class-incremental learning over ``steps`` groups of ``class_order`` with a per-class memory.

    ``memory``: ``{class: images}`` (N_c, C, H, W) in [0, 1], for every class of ``class_order`` (labels are the
    original class ids). ``test_images``/``test_labels``: the real test set (original ids). ``model_fn(k)``
    builds a network with k outputs (called once — or at every step when ``kd`` is None); it is seeded here
    with ``seed``. ``protocol``: the evaluation training recipe, restarted at every step. ``kd``: the network grows
    from step to step and its previous self teaches the old classes by knowledge distillation at ``temperature``
    with ``weight`` (weight 0: it grows without a teacher's loss); None: every step trains a fresh network from
    scratch (the from-scratch reading).

    Inside the run, class ``class_order[i]`` is output ``i``. Returns one row per step: ``step`` (1-based),
    ``classes`` (seen so far), ``num_memory`` (training images of the step), ``acc`` (top-1 on the test images
    of the seen classes), ``top<k>`` for each ``topk``, ``seconds``. Same arguments → same rows on one device.
    """
    groups = class_steps(class_order, steps)
    if not isinstance(protocol, TrainProtocol):
        raise ValueError(f"protocol must be a dscore.train.TrainProtocol, got {type(protocol).__name__}")
    from_scratch = kd is None
    if not from_scratch:
        if not isinstance(kd, Mapping) or set(kd) != {"temperature", "weight"}:
            raise ValueError(f"kd={kd!r} must be None (from scratch) or a mapping with exactly 'temperature' and "
                             "'weight'")
        temperature = check_float("kd['temperature']", kd["temperature"], low=0.0, low_open=True)
        kd_weight = check_float("kd['weight']", kd["weight"], low=0.0)
    else:
        temperature, kd_weight = KNOWLEDGE_DISTILLATION["temperature"], 0.0
    seed = check_int("seed", seed, low=0)
    missing = [c for g in groups for c in g if c not in memory]
    if missing:
        raise ValueError(f"memory has no images for class(es) {missing}; every class of class_order needs a memory")
    mem = {int(c): (v if torch.is_tensor(v) else v[0]) for c, v in memory.items()}
    for c, v in mem.items():
        if not torch.is_tensor(v) or v.dim() != 4 or v.shape[0] == 0:
            raise ValueError(f"memory[{c}] must be a non-empty (N, C, H, W) image tensor")
    device = resolve_device(device)
    position = {c: i for i, c in enumerate(c for g in groups for c in g)}
    test_pos = torch.tensor([position.get(int(c), -1) for c in test_labels.tolist()], dtype=torch.int64)

    def build(k: int, s: int) -> nn.Module:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(s)
            return model_fn(k)

    rows, model, seen = [], None, []
    for t, group in enumerate(tqdm(groups, desc="continual steps", disable=not progress, leave=False)):
        start = time.perf_counter()
        seen = seen + list(group)
        teacher = None
        if model is None or from_scratch:
            model = build(len(seen), seed + 1000 * t if from_scratch else seed).to(device)
        else:
            teacher = copy.deepcopy(model).eval()
            for p in teacher.parameters():
                p.requires_grad_(False)
            model = expand_head(model, len(group), seed=seed * 1000 + t)
        x = torch.cat([mem[c] for c in seen]).float()
        y = torch.cat([torch.full((mem[c].shape[0],), position[c], dtype=torch.int64) for c in seen])
        _train_step(model, teacher, x, y, protocol, temperature=temperature, kd_weight=kd_weight,
                    seed=seed * 100 + t, device=device)
        sel = (test_pos >= 0) & (test_pos < len(seen))
        if not bool(sel.any()):
            raise ValueError(f"the test set has no images of the classes seen by step {t + 1}: {seen}")
        accs = topk_accuracy(model, test_images[sel], test_pos[sel], topk, device=device)
        row = {"step": t + 1, "classes": len(seen), "num_memory": int(len(x)),
               "acc": evaluate(model, test_images[sel], test_pos[sel], device=device, amp=False),
               "seconds": time.perf_counter() - start}
        row.update({f"top{k}": v for k, v in accs.items()})
        if not all(math.isfinite(v) for v in accs.values()):
            raise RuntimeError(f"step {t + 1}: non-finite accuracy")
        rows.append(row)
    return rows
