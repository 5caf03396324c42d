"""Evaluation training: train a network from scratch on a (compressed) set, test on the real test set.

Every table of the book ends here (final-epoch test accuracy, mean ± std over seeds):

* :func:`train_model` — SGD with momentum and weight decay, a per-iteration learning-rate schedule
  (:func:`make_lr_schedule`), batched on-device augmentation (:mod:`dscore.augment`), optional CutMix
  (:func:`cutmix`), bf16 autocast and ``channels_last`` on CUDA, plain fp32 on CPU. The reported number
  is the **final-epoch** test accuracy; periodic test checks (``eval_every``) only draw curves and are
  never used to choose anything.
* :func:`evaluate` — top-1 accuracy of a model on a labelled set.
* :data:`PROTOCOLS` — the papers' evaluation recipes as frozen :class:`TrainProtocol` values, run by
  :func:`train_with_protocol`; :func:`train_many` repeats a run over seeds and reports mean ± std.

Randomness. The caller seeds model initialisation (use :func:`seeded_model`, or let :func:`train_many`
do it). Everything random inside training — batch order, augmentation, CutMix, and in-model randomness
such as dropout — comes from generators derived from ``seed`` alone, with torch's global RNG forked
and restored, so the same seed gives the same history and weights on the same device (on CUDA,
bit-identical only where the kernels are deterministic).

Distributed. If ``torch.distributed`` is initialised with more than one process (e.g. under
``torchrun``), :func:`train_model` wraps the model in ``DistributedDataParallel``: every rank draws the
same batch order and takes its share of each global batch of ``batch_size`` samples, so the optimisation
matches a single process with the same batch size (BatchNorm statistics stay per rank; no SyncBN).
"""
from __future__ import annotations

import dataclasses
import math
import time
import warnings
from dataclasses import dataclass, field
from numbers import Real
from typing import Any, Callable, Mapping, Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .augment import get_augmentation, in_normalised_space
from .utils import autocast, check_choice, check_float, check_int, resolve_device, tqdm

__all__ = [
    "SCHEDULES", "TrainResult", "TrainProtocol", "PROTOCOLS",
    "make_lr_schedule", "resolve_milestones", "batch_indices", "cutmix", "mixed_targets",
    "seeded_model", "train_model", "evaluate", "inference_batch_size", "train_with_protocol", "train_many", "coreset_protocol",
    "epochs_for_steps",
]

SCHEDULES = ("cosine", "multistep", "step", "constant")

# Fraction of free GPU memory the training set may take when it is copied to the device once.
_DEVICE_COPY_FRACTION = 0.3


# --------------------------------------------------------------------------------------------------
# Learning-rate schedules
# --------------------------------------------------------------------------------------------------

def resolve_milestones(milestones: Sequence[float | int], epochs: int) -> tuple[int, ...]:
    """Turn milestones into sorted epoch indices (0-based) at which the LR is multiplied by ``gamma``.

    A float in (0, 1) is a fraction of ``epochs``: ``max(1, floor(f·epochs))`` (IDC's ``2·E//3``, ``5·E//6``
    for ``f = 2/3, 5/6``). An int is an epoch directly and must lie in ``[1, epochs]``. From epoch
    index ``m`` on (i.e. after ``m`` full epochs) the decay applies.
    """
    epochs = check_int("epochs", epochs, low=1)
    if isinstance(milestones, (str, bytes)) or not isinstance(milestones, Sequence):
        raise ValueError(f"milestones={milestones!r} must be a sequence of fractions in (0, 1) or integer epochs")
    out = []
    for m in milestones:
        if isinstance(m, bool) or not isinstance(m, (Real, np.integer)):
            raise ValueError(f"milestone {m!r} must be a fraction in (0, 1) or an integer epoch in [1, {epochs}]")
        if isinstance(m, (int, np.integer)):
            out.append(check_int("milestone", m, low=1, high=epochs))
        else:
            f = check_float("milestone", m, low=0.0, high=1.0, low_open=True, high_open=True)
            # The epsilon keeps exact fractions such as 2/3·300 from landing one epoch early.
            out.append(max(1, math.floor(f * epochs + 1e-9)))
    return tuple(sorted(out))


def make_lr_schedule(schedule: str, *, lr: float, epochs: int, iters_per_epoch: int,
                     milestones: Sequence[float | int] = (), gamma: float = 0.1) -> Callable[[int], float]:
    """Return ``lr_at(iteration) -> float``, the learning rate used at global iteration ``t`` (0-based).

    With ``T = epochs·iters_per_epoch`` iterations and ``e = t // iters_per_epoch`` the epoch:

    * ``"cosine"``: ``lr·½(1 + cos(π t / T))`` — per iteration, from ``lr`` down towards 0 at ``T``;
    * ``"multistep"``: ``lr·gamma^#{m ∈ milestones : e ≥ m}`` (see :func:`resolve_milestones`);
    * ``"step"``: ``lr`` for the first ``⌈epochs/2⌉`` epochs, then ``lr·gamma`` (DC/DSA/DM protocol);
    * ``"constant"``: ``lr``.

    ``milestones`` are used only by ``"multistep"``, which needs at least one. O(1) per call.
    """
    check_choice("schedule", schedule, SCHEDULES)
    lr = check_float("lr", lr, low=0.0, low_open=True)
    epochs = check_int("epochs", epochs, low=1)
    iters_per_epoch = check_int("iters_per_epoch", iters_per_epoch, low=1)
    gamma = check_float("gamma", gamma, low=0.0, high=1.0, low_open=True)
    total = epochs * iters_per_epoch

    if schedule == "cosine":
        return lambda t: lr * 0.5 * (1.0 + math.cos(math.pi * t / total))
    if schedule == "constant":
        return lambda t: lr
    if schedule == "step":
        steps: tuple[int, ...] = ((epochs + 1) // 2,)
    else:
        steps = resolve_milestones(milestones, epochs)
        if not steps:
            raise ValueError("schedule='multistep' needs milestones, e.g. (2/3, 5/6) or integer epochs; got ()")

    def lr_at(t: int) -> float:
        epoch = t // iters_per_epoch
        return lr * gamma ** sum(epoch >= m for m in steps)

    return lr_at


# --------------------------------------------------------------------------------------------------
# Batching and CutMix
# --------------------------------------------------------------------------------------------------

def batch_indices(num_samples: int, batch_size: int, *, generator: torch.Generator | None = None,
                  min_batch: int = 2) -> list[torch.Tensor]:
    """One epoch of shuffled mini-batches: a seeded permutation of ``range(num_samples)`` cut into
    chunks of ``batch_size`` (the last may be smaller, like ``DataLoader(drop_last=False)``).

    A trailing chunk smaller than ``min(min_batch, batch_size)`` is merged into the previous one (a batch
    of one sample breaks BatchNorm; under DDP every rank needs a sample). Every index appears exactly once.
    Returns CPU LongTensors. O(num_samples).
    """
    num_samples = check_int("num_samples", num_samples, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    min_batch = check_int("min_batch", min_batch, low=1)
    perm = torch.randperm(num_samples, generator=generator)
    chunks = list(perm.split(batch_size))
    if len(chunks) > 1 and len(chunks[-1]) < min(min_batch, batch_size):
        chunks[-2:] = [torch.cat(chunks[-2:])]
    return chunks


def cutmix(images: torch.Tensor, labels: torch.Tensor, *, p: float = 1.0,
           generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor, float]:
    """CutMix on one batch (Yun et al. 2019, as in IDC's training loop): with probability ``p``, paste one
    random box from a shuffled copy of the batch into every image.

    Draws, in this order, from ``generator`` (a CPU generator; ``None`` = global RNG): ``u ~ U[0,1)``
    (CutMix applies iff ``u < p``), then ``λ ~ Beta(1,1) = U[0,1)``, the box centre row ``cy`` and
    column ``cx`` (uniform integers), and the partner permutation. The box has sides
    ``⌊H√(1−λ)⌋ × ⌊W√(1−λ)⌋`` centred at (cy, cx), clipped to the image; λ is then set to the exact
    kept-area fraction ``1 − box_area/(H·W)``.

    Shapes: images (N, C, H, W), labels (N,) → (mixed images (N, C, H, W), partner labels (N,), λ).
    The training target is ``λ·onehot(labels) + (1−λ)·onehot(partner)`` (:func:`mixed_targets`).
    When CutMix is not applied the input tensor itself is returned with ``partner = labels`` and λ = 1.
    Cost O(N·C·H·W); no per-sample loop.
    """
    p = check_float("cutmix_p", p, low=0.0, high=1.0)
    if images.dim() != 4:
        raise ValueError(f"cutmix expects images of shape (N, C, H, W), got shape {tuple(images.shape)}")
    if labels.shape != images.shape[:1]:
        raise ValueError(f"labels shape {tuple(labels.shape)} does not match {images.shape[0]} images")
    if p == 0.0 or float(torch.rand(1, generator=generator)) >= p:
        return images, labels, 1.0
    n, _, h, w = images.shape
    lam = float(torch.rand(1, generator=generator))
    cut = math.sqrt(1.0 - lam)
    cut_h, cut_w = int(h * cut), int(w * cut)
    cy = int(torch.randint(h, (1,), generator=generator))
    cx = int(torch.randint(w, (1,), generator=generator))
    perm = torch.randperm(n, generator=generator).to(images.device)
    y1, y2 = min(max(cy - cut_h // 2, 0), h), min(max(cy + cut_h // 2, 0), h)
    x1, x2 = min(max(cx - cut_w // 2, 0), w), min(max(cx + cut_w // 2, 0), w)
    mixed = images.clone()
    mixed[:, :, y1:y2, x1:x2] = images[perm, :, y1:y2, x1:x2]
    lam = 1.0 - (y2 - y1) * (x2 - x1) / (h * w)
    return mixed, labels[perm.to(labels.device)], lam


def mixed_targets(labels: torch.Tensor, partner: torch.Tensor, lam: float, num_classes: int) -> torch.Tensor:
    """Soft targets ``λ·onehot(labels) + (1−λ)·onehot(partner)``, shape (N, num_classes); rows sum to 1."""
    num_classes = check_int("num_classes", num_classes, low=1)
    lam = check_float("lam", lam, low=0.0, high=1.0)
    return lam * F.one_hot(labels, num_classes).float() + (1.0 - lam) * F.one_hot(partner, num_classes).float()


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

@dataclass
class TrainResult:
    """Outcome of :func:`train_model`.

    ``history``: one dict per epoch ``{epoch (1-based), lr (at the epoch's first iteration), train_loss,
    train_acc (running, on the augmented batches), seconds, [test_acc]}``; ``final_test_acc``: test
    accuracy after the last epoch (None without a test set) — the number this project reports;
    ``final_train_acc``: the last epoch's ``train_acc``; ``seconds``: total wall time; ``model``: the
    trained model (in eval mode).

    ``best_of_checks``: the highest ``test_acc`` over the periodic checks (every ``check_every``
    epochs, plus the final epoch) — the number the authors' scripts report (IDC/DREAM print the best
    of their periodic test checks). It is a **diagnostic** to show beside the final accuracy, labelled
    as the authors' protocol; it peeks at the test set and must never be used to choose anything.
    None when there are no periodic checks (``eval_every == 0``) or no test set.
    """

    history: list[dict[str, float]]
    final_test_acc: float | None
    final_train_acc: float
    seconds: float
    model: nn.Module = field(repr=False)
    best_of_checks: float | None = None
    check_every: int = 0


def seeded_model(factory: Callable[[], nn.Module], seed: int) -> nn.Module:
    """Build ``factory()`` with torch's global RNG seeded by ``seed`` and restored afterwards,
    so the initial weights depend on ``seed`` only."""
    seed = check_int("seed", seed, low=0)
    devices = list(range(torch.cuda.device_count())) if torch.cuda.is_available() else []
    with torch.random.fork_rng(devices=devices):
        torch.manual_seed(seed)
        return factory()


def _derived_seeds(seed: int, rank: int) -> tuple[int, int, int, int]:
    """Independent seeds for batch order (shared by all ranks), and per rank: augmentation, CutMix, global RNG."""
    order = int(np.random.SeedSequence([seed, 0]).generate_state(1, dtype=np.uint64)[0] >> 1)
    aug, mix, glob = (int(s >> 1) for s in np.random.SeedSequence([seed, 1, rank]).generate_state(3, dtype=np.uint64))
    return order, aug, mix, glob


def _distributed() -> tuple[int, int]:
    """(rank, world size) of an initialised process group, else (0, 1)."""
    dist = torch.distributed
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def _check_images_labels(what: str, images, labels) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() < 2 or not images.is_floating_point():
        desc = f"tensor of shape {tuple(images.shape)} and dtype {images.dtype}" if isinstance(images, torch.Tensor) \
            else type(images).__name__
        raise ValueError(f"{what} images must be a floating tensor of shape (N, C, H, W); got {desc}")
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype != torch.int64:
        desc = f"tensor of shape {tuple(labels.shape)} and dtype {labels.dtype}" if isinstance(labels, torch.Tensor) \
            else type(labels).__name__
        raise ValueError(f"{what} labels must be an int64 tensor of shape (N,); got {desc}")
    if len(images) != len(labels):
        raise ValueError(f"{what} has {len(images)} images but {len(labels)} labels")
    if len(images) == 0:
        raise ValueError(f"{what} set is empty")
    if int(labels.min()) < 0:
        raise ValueError(f"{what} labels must be >= 0; found {int(labels.min())}")


def _check_test(test):
    if test is None:
        return None
    if not isinstance(test, (tuple, list)) or len(test) != 2:
        raise ValueError(f"test must be an (images, labels) pair or None; got {type(test).__name__}")
    _check_images_labels("test", *test)
    return tuple(test)


def _resolve_augment(augment, model: nn.Module | None = None) -> Callable:
    if callable(augment):
        fn = augment
    elif augment is None or isinstance(augment, str):
        fn = get_augmentation(augment)
    else:
        raise ValueError(f"augment={augment!r} must be an augmentation name or a callable aug(x, generator)")
    mean, std = getattr(model, "mean", None), getattr(model, "std", None)
    if getattr(fn, "normalised_space", False) and torch.is_tensor(mean) and torch.is_tensor(std):
        # paper augmentations (DSA, IDC DiffAug) act on normalised images: use the model's statistics
        return lambda x, generator=None: in_normalised_space(lambda z: fn(z, generator), x,
                                                             mean.to(x.device), std.to(x.device))
    return fn


def _to_device_if_fits(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """Copy ``x`` to ``device`` once when it fits comfortably; otherwise keep it (pinned) on the host."""
    if x.device == device or device.type != "cuda":
        return x.to(device)
    free, _ = torch.cuda.mem_get_info(device)
    if x.numel() * x.element_size() <= _DEVICE_COPY_FRACTION * free:
        return x.to(device)
    return x.cpu().pin_memory()


def _to_model_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, dtype=torch.float32, non_blocking=True)
    if device.type == "cuda" and x.dim() == 4:
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def _model_device(model: nn.Module) -> torch.device | None:
    for t in model.parameters():
        return t.device
    for t in model.buffers():
        return t.device
    return None


@torch.no_grad()
def _probe_num_classes(model: nn.Module, images: torch.Tensor, device: torch.device) -> int:
    """One eval-mode forward of two samples: checks the model accepts the inputs, returns the logit width."""
    was_training = model.training
    model.eval()
    try:
        out = model(_to_model_input(images[:2], device))
    finally:
        model.train(was_training)
    if out.dim() != 2:
        raise ValueError(f"the model must return logits of shape (N, num_classes); got shape {tuple(out.shape)}")
    return out.shape[1]


def train_model(model: nn.Module, train_images: torch.Tensor, train_labels: torch.Tensor,
                protocol: "TrainProtocol | Mapping[str, Any]", *, test: tuple[torch.Tensor, torch.Tensor] | None = None,
                augment: str | Callable | None = None, device: str | torch.device | None = None, seed: int = 0,
                amp: bool = True, progress: bool = True, eval_every: int = 0,
                label_smoothing: float = 0.0) -> TrainResult:
    """Train ``model`` in place on ``(train_images, train_labels)`` with the recipe ``protocol`` and report the
    final-epoch accuracy.

    ``protocol``: a :class:`TrainProtocol` or a mapping of its fields (``epochs``, ``batch_size``, ``lr`` required;
    ``momentum``, ``weight_decay``, ``schedule``, ``milestones``, ``gamma``, ``augment``, ``cutmix_p`` default to
    SGD momentum 0.9, weight decay 5e-4, cosine, crop/flip, no CutMix), e.g. ``{"epochs": 5, "batch_size": 64,
    "lr": 0.05}`` or ``PROTOCOLS["coreset"]``. ``augment`` (a registry name of :mod:`dscore.augment` or a callable
    ``aug(x, generator)``) replaces the protocol's augmentation when given.

    Shapes: train_images (N, C, H, W) float in [0, 1] (the model normalises internally), train_labels
    (N,) int64; ``test`` an optional (images, labels) pair of the same kinds. The model is moved to
    ``device`` (``None`` → CUDA when available) and trained with SGD(momentum, weight_decay, no Nesterov)
    on cross-entropy (``label_smoothing``), the LR set every iteration by :func:`make_lr_schedule`.

    Per iteration: batch from :func:`batch_indices` (seeded per epoch) → the augmentation on the device →
    :func:`cutmix` with probability ``cutmix_p`` → forward/backward (bf16 autocast and ``channels_last`` on CUDA when
    ``amp``; fp32 on CPU). The training set is copied to the device once if it fits.

    ``final_test_acc`` is measured once, after the last epoch. ``eval_every = k > 0`` also records
    ``test_acc`` every k epochs for learning curves and for ``best_of_checks`` (the authors' reporting
    protocol, a labelled diagnostic); those numbers are never used to select anything.
    The caller seeds the model's initialisation (:func:`seeded_model`); ``seed`` fixes everything else.

    Cost: epochs·⌈N/batch_size⌉ forward/backward passes, plus one test pass per evaluation.
    Raises ValueError for bad arguments before any training.
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    _check_images_labels("train", train_images, train_labels)
    test = _check_test(test)
    recipe = TrainProtocol.of(protocol)
    epochs, batch_size, lr, momentum, weight_decay = (recipe.epochs, recipe.batch_size, recipe.lr, recipe.momentum,
                                                      recipe.weight_decay)
    schedule, milestones, gamma, cutmix_p = recipe.schedule, recipe.milestones, recipe.gamma, recipe.cutmix_p
    augment = recipe.augment if augment is None else augment
    label_smoothing = check_float("label_smoothing", label_smoothing, low=0.0, high=1.0, high_open=True)
    seed = check_int("seed", seed, low=0)
    eval_every = check_int("eval_every", eval_every, low=0)
    if not isinstance(amp, bool) or not isinstance(progress, bool):
        raise ValueError(f"amp={amp!r} and progress={progress!r} must be booleans")
    if cutmix_p > 0 and train_images.dim() != 4:
        raise ValueError(f"cutmix_p={cutmix_p} needs images of shape (N, C, H, W); got shape {tuple(train_images.shape)}")
    aug = _resolve_augment(augment, model)
    device = resolve_device(device)
    if device.type == "cuda" and device.index is None:
        device = torch.device("cuda", torch.cuda.current_device())

    rank, world = _distributed()
    n = len(train_images)
    if min(n, batch_size) < world:
        raise ValueError(f"{n} training samples in batches of batch_size={batch_size} cannot be shared by "
                         f"{world} distributed processes; each process needs at least one sample per batch")
    batches_per_epoch = len(batch_indices(n, batch_size, generator=torch.Generator().manual_seed(0),
                                          min_batch=max(2, world)))
    lr_at = make_lr_schedule(schedule, lr=lr, epochs=epochs, iters_per_epoch=batches_per_epoch,
                             milestones=milestones, gamma=gamma)

    model.to(device)
    if device.type == "cuda":
        model.to(memory_format=torch.channels_last)
    num_classes = _probe_num_classes(model, train_images, device)
    for what, labels in (("train", train_labels),) + ((("test", test[1]),) if test else ()):
        if int(labels.max()) >= num_classes:
            raise ValueError(f"{what} label {int(labels.max())} is out of range for a model with {num_classes} outputs")

    order_seed, aug_seed, mix_seed, global_seed = _derived_seeds(seed, rank)
    order_gen = torch.Generator().manual_seed(order_seed)
    mix_gen = torch.Generator().manual_seed(mix_seed)
    aug_gen = torch.Generator(device=device).manual_seed(aug_seed)
    images = _to_device_if_fits(train_images, device)
    labels = train_labels.to(images.device)

    net: nn.Module = model
    if world > 1:
        net = nn.parallel.DistributedDataParallel(model, device_ids=[device.index] if device.type == "cuda" else None)
    optimizer = torch.optim.SGD(model.parameters(), lr=lr_at(0), momentum=momentum, weight_decay=weight_decay)
    use_amp = amp and device.type == "cuda"

    history: list[dict[str, float]] = []
    warned_nonfinite = False
    start = time.perf_counter()
    with torch.random.fork_rng(devices=[device.index] if device.type == "cuda" else []):
        torch.manual_seed(global_seed)
        bar = tqdm(range(epochs), desc="train", unit="ep", disable=not progress or rank != 0, leave=False)
        iteration = 0
        for epoch in bar:
            t0 = time.perf_counter()
            epoch_lr = lr_at(iteration)
            model.train()
            loss_sum = torch.zeros((), device=device)
            correct = torch.zeros((), device=device, dtype=torch.int64)
            seen = 0
            for batch in batch_indices(n, batch_size, generator=order_gen, min_batch=max(2, world)):
                idx = batch.tensor_split(world)[rank] if world > 1 else batch
                x = _to_model_input(images[idx.to(images.device)], device)
                y = labels[idx.to(labels.device)].to(device, non_blocking=True)
                with torch.no_grad():
                    x = aug(x, aug_gen)
                partner, lam = y, 1.0
                if cutmix_p > 0:
                    x, partner, lam = cutmix(x, y, p=cutmix_p, generator=mix_gen)
                if device.type == "cuda" and x.dim() == 4:
                    x = x.contiguous(memory_format=torch.channels_last)
                for group in optimizer.param_groups:
                    group["lr"] = lr_at(iteration)
                with autocast(device, use_amp):
                    logits = net(x)
                logits = logits.float()
                per_sample = F.cross_entropy(logits, y, reduction="none", label_smoothing=label_smoothing)
                if lam < 1.0:
                    per_sample = lam * per_sample + (1.0 - lam) * F.cross_entropy(
                        logits, partner, reduction="none", label_smoothing=label_smoothing)
                # Sum / global batch size, times world: DDP's gradient averaging then gives the exact
                # mean over the global batch even when the shards differ in size.
                loss = per_sample.sum() * (world / len(batch))
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                loss_sum += per_sample.detach().sum()
                correct += (logits.detach().argmax(1) == y).sum()
                seen += len(y)
                iteration += 1
            stats = torch.stack([loss_sum.float(), correct.float(), torch.tensor(float(seen), device=device)])
            if world > 1:
                torch.distributed.all_reduce(stats)
            loss_total, correct_total, seen_total = stats.tolist()
            record = {"epoch": epoch + 1, "lr": epoch_lr, "train_loss": loss_total / seen_total,
                      "train_acc": correct_total / seen_total, "seconds": time.perf_counter() - t0}
            if not math.isfinite(record["train_loss"]) and not warned_nonfinite:
                warnings.warn(f"training loss became {record['train_loss']} in epoch {epoch + 1} "
                              f"(lr={lr}, seed={seed}); the run diverged", RuntimeWarning, stacklevel=2)
                warned_nonfinite = True
            last = epoch + 1 == epochs
            if test is not None and (last or (eval_every and (epoch + 1) % eval_every == 0)):
                record["test_acc"] = evaluate(model, *test, device=device, amp=use_amp)
            history.append(record)
            bar.set_postfix(loss=f"{record['train_loss']:.3f}", acc=f"{record['train_acc']:.3f}",
                            **({"test": f"{record['test_acc']:.3f}"} if "test_acc" in record else {}))
        bar.close()
    model.eval()
    final_test = history[-1]["test_acc"] if test is not None else None
    checks = [h["test_acc"] for h in history if "test_acc" in h]
    best = max(checks) if (test is not None and eval_every and checks) else None
    return TrainResult(history=history, final_test_acc=final_test, final_train_acc=history[-1]["train_acc"],
                       seconds=time.perf_counter() - start, model=model, best_of_checks=best,
                       check_every=eval_every)


def inference_batch_size(device: str | torch.device) -> int:
    """The batch size :func:`evaluate` uses by default on ``device``: 512 on CUDA (the GPU is filled), 64
    elsewhere (a CPU runs these small networks fastest when a batch's activations fit in its caches)."""
    return 512 if torch.device(device).type == "cuda" else 64


@torch.no_grad()
def evaluate(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
             device: str | torch.device | None = None, batch_size: int | None = None, amp: bool = True) -> float:
    """Top-1 accuracy in [0, 1] of ``model`` on (images (N, C, H, W), labels (N,)).

    Eval mode, no gradients, ``batch_size`` samples at a time (bf16 autocast when ``amp`` and
    channels_last on CUDA). ``batch_size=None`` takes :func:`inference_batch_size` of the device: 512 on a GPU,
    64 on a CPU, where small batches keep the activations in cache (measured on a 2-core machine: ConvNet-3 of
    width 16 on 4000 Fashion-MNIST test images 2.3× faster at 64 than at 512, ResNet-18 1.4×). The batch size
    changes how the forward pass is cut, not the accuracy;
    the model's train/eval mode is restored afterwards. ``device=None`` uses the device the model's
    parameters are on (CPU for a parameter-free model); another device moves the model there.
    Cost: one forward pass over N samples; memory O(batch_size).
    """
    if not isinstance(model, nn.Module):
        raise ValueError(f"model must be a torch.nn.Module; got {type(model).__name__}")
    _check_images_labels("evaluation", images, labels)
    if device is None:
        device = _model_device(model) or torch.device("cpu")
    else:
        device = resolve_device(device)
        model.to(device)
    batch_size = inference_batch_size(device) if batch_size is None else check_int("batch_size", batch_size, low=1)
    was_training = model.training
    model.eval()
    correct = torch.zeros((), dtype=torch.int64, device=device)
    try:
        for start in range(0, len(images), batch_size):
            x = _to_model_input(images[start:start + batch_size], device)
            y = labels[start:start + batch_size].to(device, non_blocking=True)
            with autocast(device, amp):
                logits = model(x)
            if logits.dim() != 2 or len(logits) != len(y):
                raise ValueError(f"the model must return logits of shape ({len(y)}, num_classes); "
                                 f"got shape {tuple(logits.shape)}")
            correct += (logits.argmax(1) == y).sum()
    finally:
        model.train(was_training)
    return int(correct) / len(images)


# --------------------------------------------------------------------------------------------------
# Protocols and multi-seed runs
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class TrainProtocol:
    """A named evaluation recipe: the keyword arguments of :func:`train_model` that the papers fix.

    ``replace(**overrides)`` returns a copy with some fields changed (validated again). The augmentation
    name is resolved only when training, so protocols may name augmentations registered later.
    """

    epochs: int
    batch_size: int
    lr: float
    momentum: float = 0.9
    weight_decay: float = 5e-4
    schedule: str = "cosine"
    milestones: tuple[float | int, ...] = ()
    gamma: float = 0.1
    augment: str = "crop_flip"
    cutmix_p: float = 0.0

    def __post_init__(self):
        check_int("epochs", self.epochs, low=1)
        check_int("batch_size", self.batch_size, low=1)
        check_float("momentum", self.momentum, low=0.0, high=1.0, high_open=True)
        check_float("weight_decay", self.weight_decay, low=0.0)
        check_float("cutmix_p", self.cutmix_p, low=0.0, high=1.0)
        if not isinstance(self.augment, str):
            raise ValueError(f"augment={self.augment!r}: a protocol names its augmentation by a string")
        if isinstance(self.milestones, (str, bytes)) or not isinstance(self.milestones, Sequence):
            raise ValueError(f"milestones={self.milestones!r} must be a sequence of epoch fractions or epochs")
        object.__setattr__(self, "milestones", tuple(self.milestones))
        make_lr_schedule(self.schedule, lr=self.lr, epochs=self.epochs, iters_per_epoch=1,
                         milestones=self.milestones, gamma=self.gamma)

    @classmethod
    def of(cls, value) -> "TrainProtocol":
        """``value`` as a protocol: a TrainProtocol as is, or a mapping of its fields (``epochs``, ``batch_size``,
        ``lr`` required); unknown or missing fields are a ValueError naming them."""
        if isinstance(value, cls):
            return value
        names = [f.name for f in dataclasses.fields(cls)]
        if not isinstance(value, Mapping):
            raise ValueError(f"protocol={value!r} must be a TrainProtocol or a mapping of its fields ({', '.join(names)})")
        unknown = sorted(set(value) - set(names))
        missing = sorted({"epochs", "batch_size", "lr"} - set(value))
        if unknown or missing:
            raise ValueError(f"protocol has unknown field(s) {unknown} / lacks {missing}; fields: {', '.join(names)} "
                             "(epochs, batch_size and lr required)")
        return cls(**dict(value))

    def replace(self, **overrides) -> "TrainProtocol":
        unknown = set(overrides) - {f.name for f in dataclasses.fields(self)}
        if unknown:
            raise ValueError(f"unknown protocol field(s) {sorted(unknown)}; "
                             f"allowed: {[f.name for f in dataclasses.fields(self)]}")
        return dataclasses.replace(self, **overrides)

    def as_kwargs(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def epochs_for_steps(steps: int, num_samples: int, batch_size: int) -> int:
    """The number of epochs that gives a training set of ``num_samples`` images about ``steps`` SGD steps at
    ``batch_size``: ``max(1, round(steps / ceil(num_samples / batch_size)))`` (an epoch is ``ceil(N / B)`` steps,
    as :func:`batch_indices` cuts it). Used to compare sets of different sizes at equal training rather than at
    equal epochs. O(1)."""
    steps = check_int("steps", steps, low=1)
    num_samples = check_int("num_samples", num_samples, low=1)
    batch_size = check_int("batch_size", batch_size, low=1)
    per_epoch = -(-num_samples // batch_size)
    return max(1, int(round(steps / per_epoch)))


PROTOCOLS: dict[str, TrainProtocol] = {
    # DQ/ADQ coreset evaluation: batch 128 as the ADQ paper (DQ's batch 16 below 10%: coreset_protocol).
    "coreset": TrainProtocol(epochs=200, batch_size=128, lr=0.1, schedule="cosine", augment="crop_flip"),
    # IDC family (IDC, DREAM, DREAM+): per-sample DiffAug flip → colour → crop/scale/rotate (the authors'
    # evaluation augmentation, "idc") + CutMix, LR ×0.2 at 2/3 and 5/6.
    "idc": TrainProtocol(epochs=1000, batch_size=64, lr=0.01, schedule="multistep", milestones=(2 / 3, 5 / 6),
                         gamma=0.2, augment="idc", cutmix_p=0.5),
    # DC/DSA/DM family with DSA augmentation: LR ×0.1 after half.
    "dsa": TrainProtocol(epochs=1000, batch_size=256, lr=0.01, schedule="step", gamma=0.1, augment="dsa"),
    # The same without augmentation (DC's original evaluation), 300 epochs.
    "dc": TrainProtocol(epochs=300, batch_size=256, lr=0.01, schedule="step", gamma=0.1, augment="none"),
}

_RUN_OPTIONS = ("amp", "eval_every", "label_smoothing")


def coreset_protocol(keep_ratio: float, *, small_batch_below: float | None = None, small_batch: int = 16,
                     **overrides) -> TrainProtocol:
    """The DQ/ADQ evaluation protocol for a subset kept at ``keep_ratio`` of the training set.

    Default: ``PROTOCOLS["coreset"]`` with batch 128 at every keep ratio — the ADQ paper's setting
    (it trains every subset with batch 128). ``small_batch_below=r`` applies DQ's rule instead:
    batch ``small_batch`` (DQ's README: 16) for keep ratios strictly below ``r`` (DQ: 0.1), 128
    otherwise. ``overrides`` change other protocol fields (an explicit ``batch_size`` wins over both).
    """
    keep_ratio = check_float("keep_ratio", keep_ratio, low=0.0, high=1.0, low_open=True)
    if small_batch_below is not None:
        small_batch_below = check_float("small_batch_below", small_batch_below, low=0.0, high=1.0, low_open=True)
    small_batch = check_int("small_batch", small_batch, low=1)
    batch = PROTOCOLS["coreset"].batch_size
    if small_batch_below is not None and keep_ratio < small_batch_below:
        batch = small_batch
    overrides.setdefault("batch_size", batch)
    return PROTOCOLS["coreset"].replace(**overrides)


def _resolve_protocol(protocol: str | TrainProtocol) -> TrainProtocol:
    if isinstance(protocol, TrainProtocol):
        return protocol
    if isinstance(protocol, str):
        check_choice("protocol", protocol, PROTOCOLS)
        return PROTOCOLS[protocol]
    raise ValueError(f"protocol={protocol!r} must be a TrainProtocol or one of {sorted(PROTOCOLS)}")


def train_with_protocol(model: nn.Module, images: torch.Tensor, labels: torch.Tensor,
                        protocol: str | TrainProtocol, *, test=None, device=None, seed: int = 0,
                        progress: bool = True, **overrides) -> TrainResult:
    """:func:`train_model` with the settings of ``protocol`` (a :data:`PROTOCOLS` name or a
    :class:`TrainProtocol`). ``overrides`` may change protocol fields (e.g. ``epochs=2``) or pass the
    run options ``amp``, ``eval_every``, ``label_smoothing``; anything else is a ValueError."""
    proto = _resolve_protocol(protocol)
    field_names = {f.name for f in dataclasses.fields(TrainProtocol)}
    unknown = set(overrides) - field_names - set(_RUN_OPTIONS)
    if unknown:
        raise ValueError(f"unknown override(s) {sorted(unknown)}; allowed: {sorted(field_names | set(_RUN_OPTIONS))}")
    run_options = {k: v for k, v in overrides.items() if k in _RUN_OPTIONS}
    if callable(overrides.get("augment")):            # a callable augmentation is a run option, not a protocol field
        run_options["augment"] = overrides.pop("augment")
    proto = proto.replace(**{k: v for k, v in overrides.items() if k in field_names})
    return train_model(model, images, labels, proto, test=test, device=device, seed=seed, progress=progress,
                       **run_options)


def train_many(model_fn: Callable[[int], nn.Module], images: torch.Tensor, labels: torch.Tensor, *,
               seeds: Sequence[int] = (0, 1, 2), test: tuple[torch.Tensor, torch.Tensor],
               protocol: str | TrainProtocol | None = None, device=None, progress: bool = True,
               **kwargs) -> dict[str, Any]:
    """Train one fresh model per seed and summarise the final-epoch test accuracies.

    For each seed ``s``: ``model = model_fn(s)`` built with torch seeded by ``s`` (:func:`seeded_model`),
    then trained with ``seed=s`` by :func:`train_with_protocol`: with ``protocol`` (``kwargs`` are overrides), or
    with the protocol that ``kwargs`` spell (``epochs``, ``batch_size``, ``lr`` and any other protocol field or run
    option of :func:`train_model`).

    Returns ``{"mean", "std", "accs", "histories", "seeds", "best_of_checks", "best_of_checks_mean"}``:
    accuracies in [0, 1] of the final epoch; ``std`` is the sample standard deviation (ddof = 1) over
    runs, 0.0 for a single run. ``best_of_checks`` (per seed, None without ``eval_every``) and its mean
    are the authors' best-of-periodic-checks numbers: a labelled diagnostic, never used to choose.
    """
    if not callable(model_fn):
        raise ValueError(f"model_fn must be a callable seed -> nn.Module; got {type(model_fn).__name__}")
    if isinstance(seeds, (int, np.integer)) or len(seeds) == 0:
        raise ValueError(f"seeds={seeds!r} must be a non-empty sequence of non-negative integers")
    seeds = [check_int("seed", s, low=0) for s in seeds]
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"seeds={seeds!r} contains duplicates; every run needs its own seed")
    if test is None:
        raise ValueError("train_many needs a test set: test=(images, labels)")
    if protocol is None:
        fields = {f.name for f in dataclasses.fields(TrainProtocol)}
        recipe = {k: v for k, v in kwargs.items() if k in fields and not (k == "augment" and callable(v))}
        protocol = TrainProtocol.of(recipe)
        kwargs = {k: v for k, v in kwargs.items() if k not in recipe}
    accs, bests, histories = [], [], []
    for s in tqdm(seeds, desc="seeds", disable=not progress or len(seeds) == 1):
        model = seeded_model(lambda: model_fn(s), s)
        result = train_with_protocol(model, images, labels, protocol, test=test, device=device, seed=s,
                                     progress=progress, **kwargs)
        accs.append(result.final_test_acc)
        bests.append(result.best_of_checks)
        histories.append(result.history)
    arr = np.asarray(accs, dtype=np.float64)
    out = {"mean": float(arr.mean()), "std": float(arr.std(ddof=1)) if len(arr) > 1 else 0.0,
           "accs": accs, "histories": histories, "seeds": seeds, "best_of_checks": bests,
           "best_of_checks_mean": None}
    if all(b is not None for b in bests):
        out["best_of_checks_mean"] = float(np.mean(bests))
    return out
