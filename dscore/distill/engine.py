"""The distillation loop: DC, DSA, DM and IDC with DREAM/DREAM+'s pluggable sampler, initialiser
and matching objective (the differences from the authors' code are listed in book/fidelity.md).

One call of :func:`distill` runs ``config.iterations`` outer iterations. Each builds a fresh random
network (``create_model(arch, seed=…)``), optionally trains it ``pretrain_real_epochs`` epochs on
the real data (DREAM+), then

* **gradient methods** (dc, dsa, idc) take ``outer_loops`` image steps; in each, for every class,
  a real batch from the sampler and the synthetic images of the class (IDC: decoded, at most
  ``batch_syn``) get one shared augmentation draw (DSA / IDC DiffAug; none for DC), and the
  class loss (gradient, embedding or bidirectional) is formed. DC/DSA sum the class losses into
  one SGD step on the images; IDC takes one step per class (one optimiser over all images, as the
  IDC code does). After every image step but the last, the network trains ``inner_loops``
  rounds: DC/DSA epochs over the synthetic set, IDC ``n_data`` real samples with CutMix;
* **DM** takes one image step per (frozen) network: per class, squared L2 between the mean
  embeddings of the Siamese-DSA-augmented real batch and synthetic images.

For the IDC family (``config.clamp_images``) pixels of the stored images are clamped to [0, 1] at the
start of every outer iteration and at the end; dc/dsa/dm are not clamped by default (their authors
never clamp), so their images may leave [0, 1]. Decision: dc/dsa/dm optimise the images in the *normalised* space of the paper codes
(``z = (x − mean) / std``; the model sees ``x = z·std + mean``, which it normalises back to
``z``), so the papers' image learning rates (0.1, 1.0) keep their meaning; IDC optimises pixels
in [0, 1] as its code does.

Randomness is a pure function of ``(seed, iteration, step, class)``: networks, batches,
augmentation draws, k-means seeds and network-training orders are each drawn from a generator
seeded with a value derived from these integers. The same seed therefore gives the same images
on the CPU (on CUDA, only where the kernels are deterministic: the backward passes of bilinear
interpolation and grid sampling are not, unless ``torch.use_deterministic_algorithms(True)``), and a run resumed from a checkpoint (taken between iterations) continues
exactly as an uninterrupted run — no RNG state needs saving.

Costs per image step: O(C) forward/backward passes with double backward (gradient objectives) on
``batch_real + min(ipc·f², batch_syn)`` images per class; the representative sampler adds, every
``interval`` steps, one forward pass over each class and a k-means (O(iters·N_c·K·D)).
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass
from os import PathLike
from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from .. import models as _models
from ..augment import IDC_CHOICES, get_augmentation, in_normalised_space, siamese_dsa, siamese_idc
from ..cache import config_key
from ..metrics import feature_difference, gradient_difference, median_bandwidth, mmd2
from ..train import batch_indices, cutmix
from ..utils import atomic_path, autocast, check_int, make_generator, resolve_device, tqdm
from . import init as dinit
from .config import DistillConfig
from .losses import bidirectional_loss, conv_parameters, embedding_distance, gradient_matching_loss, matching_parameters
from .sampler import RandomSampler, RegionSampler, RepresentativeSampler, embed_images

__all__ = ["distill", "DistillResult", "HISTORY_KEYS", "CHECKPOINT_VERSION", "derive_seed"]

CHECKPOINT_VERSION = 1
HISTORY_KEYS = (
    # one entry per image step
    "iteration", "step", "loss", "grad_loss", "embed_loss", "reclusters",
    "time_clustering", "time_matching", "time_network_update",
    # one entry per diagnostic step (every diag_every image steps)
    "diag_step", "grad_diff", "feature_diff", "batch_mmd", "time_diagnostics",
    # one entry per outer iteration / per run
    "time_pretrain", "time_init",
)
_MMD_CLASS_POINTS = 512     # class sample the batch MMD compares against (bounded cost per class)

# stream tags for derive_seed: every random draw has its own stream
_NET, _PRETRAIN, _AUG, _NETTRAIN, _SYN_SUBSET, _INIT, _DIAG, _SAMPLER, _CHOICE = range(1, 10)
_INIT_NETWORK = 2**31        # "iteration index" of the network that embeds the data for k-means init


def derive_seed(*parts: int) -> int:
    """A 63-bit seed from non-negative integers (NumPy SeedSequence), independent across tuples."""
    state = np.random.SeedSequence([int(p) for p in parts]).generate_state(1, dtype=np.uint64)[0]
    return int(state >> np.uint64(1))


@dataclass
class DistillResult:
    """Outcome of :func:`distill`.

    ``images``: (C·ipc, ch, H, W) float32 stored synthetic images in [0, 1] on the CPU, class-major
    (class c owns rows c·ipc … (c+1)·ipc − 1); ``labels``: (C·ipc,) int64. For IDC these are the
    *stored* images; :meth:`training_set` decodes them into the ipc·f² images per class a network
    is trained on. ``snapshots``: (completed iterations, images) pairs (every ``snapshot_every``
    iterations, with the initialisation as iteration 0). ``history``: dict of lists, keys
    :data:`HISTORY_KEYS` (per image step: loss, the gradient / embedding parts of it, number of
    re-clusterings, seconds spent clustering, matching and updating the network; per diagnostic
    step: gradient difference, feature difference, batch MMD; per iteration: pretraining seconds).
    """

    images: torch.Tensor
    labels: torch.Tensor
    snapshots: list[tuple[int, torch.Tensor]]
    history: dict[str, list]
    config: DistillConfig

    def training_set(self) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) to train on: IDC-decoded (ipc·f² per class) when factor > 1."""
        if self.config.method == "idc" and self.config.factor > 1:
            return (dinit.idc_decode(self.images, self.config.factor),
                    dinit.idc_decode_labels(self.labels, self.config.factor))
        return self.images, self.labels

    @property
    def timings(self) -> dict[str, float]:
        """Total seconds per phase: clustering, matching, network_update, pretrain, init, diagnostics."""
        h = self.history
        return {"clustering": float(sum(h["time_clustering"])), "matching": float(sum(h["time_matching"])),
                "network_update": float(sum(h["time_network_update"])), "pretrain": float(sum(h["time_pretrain"])),
                "init": float(sum(h["time_init"])), "diagnostics": float(sum(h["time_diagnostics"]))}


# ------------------------------------------------------------------------------------ validation

def _check_stats(name: str, value, channels: int) -> list[float] | None:
    if value is None:
        return None
    t = torch.as_tensor(value, dtype=torch.float64).flatten()
    if t.numel() == 1:
        t = t.expand(channels)
    if t.numel() != channels or not bool(torch.isfinite(t).all()) or (name == "std" and bool((t <= 0).any())):
        allowed = "positive finite numbers" if name == "std" else "finite numbers"
        raise ValueError(f"{name}={value!r} must be one value or {channels} values (one per channel) of {allowed}")
    return [float(v) for v in t]


def _validate(train_images, train_labels, config, num_classes, mean, std, checkpoint_path):
    if not isinstance(config, DistillConfig):
        raise ValueError(f"config must be a DistillConfig (see default_config / preset), got {type(config).__name__}")
    if not torch.is_tensor(train_images) or train_images.dim() != 4 or not train_images.is_floating_point():
        got = (f"shape {tuple(train_images.shape)} dtype {train_images.dtype}" if torch.is_tensor(train_images)
               else type(train_images).__name__)
        raise ValueError(f"train_images must be a float tensor (N, C, H, W) with pixels in [0, 1]; got {got}")
    if train_images.shape[2] != train_images.shape[3]:
        raise ValueError(f"train_images must be square (H == W) for the networks; got H={train_images.shape[2]}, "
                         f"W={train_images.shape[3]}")
    if (not torch.is_tensor(train_labels) or train_labels.dim() != 1 or train_labels.dtype != torch.int64
            or train_labels.shape[0] != train_images.shape[0]):
        got = (f"shape {tuple(train_labels.shape)} dtype {train_labels.dtype}" if torch.is_tensor(train_labels)
               else type(train_labels).__name__)
        raise ValueError(f"train_labels must be an int64 tensor of shape ({train_images.shape[0]},); got {got}")
    if train_labels.numel() == 0:
        raise ValueError("the training set is empty")
    lo, hi = int(train_labels.min()), int(train_labels.max())
    if num_classes is None:
        num_classes = hi + 1
    num_classes = check_int("num_classes", num_classes, low=1)
    if lo < 0 or hi >= num_classes:
        raise ValueError(f"train_labels must lie in [0, {num_classes - 1}] (num_classes={num_classes}); "
                         f"found [{lo}, {hi}]")
    channels = train_images.shape[1]
    mean = _check_stats("mean", mean, channels)
    std = _check_stats("std", std, channels)
    config.check_arch()
    sizes = torch.bincount(train_labels.cpu(), minlength=num_classes).tolist()
    config.check_data(sizes)
    if checkpoint_path is not None and not isinstance(checkpoint_path, (str, PathLike)):
        raise ValueError(f"checkpoint_path={checkpoint_path!r} must be a path or None")
    return num_classes, mean, std, sizes


# ------------------------------------------------------------------------------------ the run

class _Distillation:
    """State of one run; see :func:`distill`."""

    def __init__(self, images, labels, cfg: DistillConfig, num_classes, mean, std, sizes, progress):
        self.cfg = cfg
        self.device = resolve_device(cfg.device)
        self.progress = progress
        self.num_classes = num_classes
        self.mean, self.std = mean, std
        order = torch.argsort(labels.cpu(), stable=True)
        self.real = images[order.to(images.device)].to(self.device, torch.float32)
        self.real_labels = labels[order.to(labels.device)].to(self.device)
        self.offsets = [0] + np.cumsum(sizes).tolist()
        self.channels, self.size = images.shape[1], images.shape[2]
        self.per_class_step = cfg.method == "idc"

        # optimisation space (see the module docstring): normalised for dc/dsa/dm, pixels for idc
        shape = (1, self.channels, 1, 1)
        if cfg.method == "idc":
            m, s = torch.zeros(shape), torch.ones(shape)
        else:
            m = torch.tensor(mean if mean is not None else [0.0] * self.channels).reshape(shape)
            s = torch.tensor(std if std is not None else [1.0] * self.channels).reshape(shape)
        self.space_mean, self.space_std = m.to(self.device), s.to(self.device)
        self.space_low, self.space_high = (0 - self.space_mean) / self.space_std, (1 - self.space_mean) / self.space_std

        self.syn_labels = torch.arange(num_classes, device=self.device).repeat_interleave(cfg.ipc)
        self.param = torch.zeros((num_classes * cfg.ipc, self.channels, self.size, self.size),
                                 device=self.device, requires_grad=True)
        self.optimizer = torch.optim.SGD([self.param], lr=cfg.lr_img, momentum=cfg.momentum_img)
        if cfg.sampler == "representative":
            self.sampler = RepresentativeSampler(cfg.clusters, cfg.subsample, cfg.interval,
                                                 seed=derive_seed(cfg.seed, _SAMPLER) & 0x7FFFFFFF,
                                                 warm_start=cfg.warm_start, kmeans_iters=cfg.kmeans_iters,
                                                 amp=cfg.amp)
        elif cfg.sampler in ("centre", "boundary"):
            self.sampler = RegionSampler(cfg.sampler, cfg.batch_real, cfg.region_fraction, cfg.interval,
                                         seed=derive_seed(cfg.seed, _SAMPLER) & 0x7FFFFFFF, amp=cfg.amp)
        else:
            self.sampler = RandomSampler(batch_size=cfg.batch_real, seed=derive_seed(cfg.seed, _SAMPLER) & 0x7FFFFFFF)
        self.net_augment = get_augmentation(cfg.net_augment)
        self.history: dict[str, list] = {k: [] for k in HISTORY_KEYS}
        self.snapshots: list[tuple[int, torch.Tensor]] = []
        self._dm_block: int | None = None
        self._dm_batches: list[torch.Tensor] = []
        diag_gen = make_generator(derive_seed(cfg.seed, _DIAG))
        self.diag_subsets = [torch.randperm(self.class_size(c), generator=diag_gen)[:_MMD_CLASS_POINTS].to(self.device)
                             for c in range(num_classes)]

    # ---------------------------------------------------------------- helpers

    def tick(self) -> float:
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return time.perf_counter()

    def class_size(self, c: int) -> int:
        return self.offsets[c + 1] - self.offsets[c]

    def class_images(self, c: int) -> torch.Tensor:
        return self.real[self.offsets[c]:self.offsets[c + 1]]

    def to_pixels(self, p: torch.Tensor) -> torch.Tensor:
        return p * self.space_std + self.space_mean

    def model_input(self, x: torch.Tensor) -> torch.Tensor:
        if self.device.type == "cuda":
            return x.contiguous(memory_format=torch.channels_last)
        return x

    def stored_pixels(self) -> torch.Tensor:
        """(C·ipc, ch, H, W) pixels on the CPU (clamped to [0, 1] when the config clamps)."""
        with torch.no_grad():
            pixels = self.to_pixels(self.param)
            if self.cfg.clamp_images:
                pixels = pixels.clamp(0, 1)
            return pixels.float().cpu()

    def clamp_(self) -> None:
        if not self.cfg.clamp_images:
            return
        with torch.no_grad():
            self.param.copy_(torch.maximum(torch.minimum(self.param, self.space_high), self.space_low))

    def syn_class(self, c: int, step: int) -> tuple[torch.Tensor, torch.Tensor]:
        """Synthetic training images of class c (differentiable w.r.t. ``param``): decoded for IDC,
        then at most ``batch_syn`` of them (seeded by step and class)."""
        cfg = self.cfg
        x = self.to_pixels(self.param[c * cfg.ipc:(c + 1) * cfg.ipc])
        if cfg.method == "idc" and cfg.factor > 1:
            x = dinit.idc_decode(x, cfg.factor)
        if cfg.batch_syn is not None and x.shape[0] > cfg.batch_syn:
            gen = make_generator(derive_seed(cfg.seed, _SYN_SUBSET, step, c))
            x = x[torch.randperm(x.shape[0], generator=gen)[:cfg.batch_syn].to(self.device)]
        return x, torch.full((x.shape[0],), c, dtype=torch.long, device=self.device)

    def siamese(self, real: torch.Tensor, syn: torch.Tensor, gen: torch.Generator, choice_gen: torch.Generator):
        kind = self.cfg.siamese_augment
        # the augmentations act in the dataset's normalised space, as in the authors' codes; the
        # family is drawn from a CPU generator so that CUDA never waits on a host sync here
        if kind == "dsa":
            return siamese_dsa(real, syn, gen, mean=self.mean, std=self.std, choice_generator=choice_gen)
        if kind == "idc":          # the authors' colour → crop → cutout
            return siamese_idc(real, syn, gen, mean=self.mean, std=self.std, choice_generator=choice_gen)
        if kind == "idc_multi":    # colour → one of crop/scale/rotate → cutout
            return siamese_idc(real, syn, gen, choices=IDC_CHOICES, mean=self.mean, std=self.std,
                               choice_generator=choice_gen)
        return real, syn

    def augment_for_network(self, x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        if getattr(self.net_augment, "normalised_space", False):
            return in_normalised_space(lambda z: self.net_augment(z, gen), x, self.mean, self.std)
        return self.net_augment(x, gen)

    def matched_params(self, net: nn.Module) -> list[nn.Parameter]:
        return matching_parameters(net) if self.cfg.grad_metric == "dc" else conv_parameters(net)

    # ---------------------------------------------------------------- networks

    def new_network(self, index: int) -> tuple[nn.Module, torch.optim.Optimizer]:
        """Network number ``index`` (seeded by it) with its optimiser, pretrained if configured."""
        cfg = self.cfg
        net = _models.create_model(cfg.arch, num_classes=self.num_classes, in_channels=self.channels,
                                   image_size=self.size, mean=self.mean, std=self.std,
                                   seed=derive_seed(cfg.seed, _NET, index) & 0x7FFFFFFF, **cfg.arch_kwargs)
        net.to(self.device)
        if self.device.type == "cuda":
            net.to(memory_format=torch.channels_last)
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=cfg.lr_net, momentum=cfg.momentum_net,
                              weight_decay=cfg.weight_decay_net)
        if cfg.pretrain_real_epochs > 0:
            t0 = self.tick()
            gen = make_generator(derive_seed(cfg.seed, _PRETRAIN, index))
            batches = [b for _ in range(cfg.pretrain_real_epochs)
                       for b in batch_indices(self.real.shape[0], cfg.net_batch, generator=gen)]
            if cfg.pretrain_steps is not None:
                batches = batches[:cfg.pretrain_steps]
            self.train_network(net, opt, self.real, self.real_labels, batches, derive_seed(cfg.seed, _PRETRAIN, index, 1))
            if index != _INIT_NETWORK:
                self.history["time_pretrain"].append(self.tick() - t0)
        return net, opt

    def train_network(self, net, opt, images, labels, batches: Sequence[torch.Tensor], seed: int) -> None:
        """One SGD step per batch of indices: per-sample augmentation, optional CutMix, cross-entropy."""
        cfg = self.cfg
        aug_gen = make_generator(derive_seed(seed, 0), self.device)
        mix_gen = make_generator(derive_seed(seed, 1))
        net.train()
        for idx in batches:
            idx = idx.to(self.device)
            x, y = images[idx], labels[idx]
            with torch.no_grad():
                x = self.augment_for_network(x, aug_gen)
            partner, lam = y, 1.0
            if cfg.cutmix_p > 0:
                x, partner, lam = cutmix(x, y, p=cfg.cutmix_p, generator=mix_gen)
            with autocast(self.device, cfg.amp):
                logits = net(self.model_input(x))
            logits = logits.float()
            loss = F.cross_entropy(logits, y)
            if lam < 1.0:
                loss = lam * loss + (1.0 - lam) * F.cross_entropy(logits, partner)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

    def update_network(self, net, opt, iteration: int, ol: int) -> None:
        """Network training after an image step: IDC on real data, DC/DSA on the synthetic set."""
        cfg = self.cfg
        gen = make_generator(derive_seed(cfg.seed, _NETTRAIN, iteration, ol))
        seed = derive_seed(cfg.seed, _NETTRAIN, iteration, ol, 1)
        if cfg.method == "idc":
            batches = []
            for _ in range(cfg.inner_loops):
                chosen = torch.randperm(self.real.shape[0], generator=gen)[:cfg.n_data]
                chunks = list(chosen.split(cfg.net_batch))
                if len(chunks) > 1 and len(chunks[-1]) < 2:      # a batch of one breaks BatchNorm
                    chunks[-2:] = [torch.cat(chunks[-2:])]
                batches += chunks
            self.train_network(net, opt, self.real, self.real_labels, batches, seed)
        else:
            with torch.no_grad():
                syn = self.to_pixels(self.param).detach().clone()
            batches = [b for _ in range(cfg.inner_loops)
                       for b in batch_indices(syn.shape[0], cfg.net_batch, generator=gen)]
            self.train_network(net, opt, syn, self.syn_labels, batches, seed)

    # ---------------------------------------------------------------- matching

    def real_batch(self, c: int, step: int, local_step: int, net: nn.Module, iteration: int) -> torch.Tensor:
        if isinstance(self.sampler, RandomSampler):
            return self.sampler.batch(step, c, self.class_images(c))
        return self.sampler.batch(local_step, c, self.class_images(c), net, iteration=iteration)

    def dm_real_batches(self, iteration: int, net: nn.Module) -> list[torch.Tensor]:
        """DM's batches: random per iteration, or representative re-clustered every ``interval``
        iterations with the network of the block's first iteration (rebuilt when resuming)."""
        if isinstance(self.sampler, RandomSampler):
            return [self.sampler.batch(iteration, c, self.class_images(c)) for c in range(self.num_classes)]
        block = iteration - iteration % self.cfg.interval
        if self._dm_block != block:
            block_net = net if block == iteration else self.new_network(block)[0]
            self._dm_batches = [self.sampler.batch(block, c, self.class_images(c), block_net, iteration=block)
                                for c in range(self.num_classes)]
            self._dm_block = block
        return self._dm_batches

    def class_loss(self, net, params, real, y_real, syn, y_syn):
        cfg = self.cfg
        with autocast(self.device, cfg.amp):
            if cfg.objective == "gradient":
                return gradient_matching_loss(net, real, y_real, syn, y_syn, params=params, metric=cfg.grad_metric)
            if cfg.objective == "bidirectional":
                return bidirectional_loss(net, real, y_real, syn, y_syn, params=params, grad_metric=cfg.grad_metric,
                                          embed_weight=cfg.embed_weight, embed_metric=cfg.embedding_metric)
            with torch.no_grad():
                emb_real = net.embed(real).float()
            emb_syn = net.embed(syn).float()
        embed = embedding_distance(emb_real, emb_syn, cfg.embedding_metric)
        return embed, {"embed": embed.detach()}

    def image_step(self, net, iteration: int, ol: int, step: int) -> None:
        """One synthetic-image update (all classes) plus its bookkeeping."""
        cfg = self.cfg
        t0 = self.tick()
        clustering0, count0 = self._sampler_clock()
        gen = make_generator(derive_seed(cfg.seed, _AUG, step), self.device)
        choice_gen = make_generator(derive_seed(cfg.seed, _AUG, step, _CHOICE))
        params = self.matched_params(net) if cfg.objective != "embedding" else None
        dm_batches = self.dm_real_batches(iteration, net) if cfg.method == "dm" else None
        total = torch.zeros((), device=self.device)
        grad_part = torch.zeros((), device=self.device)
        embed_part = torch.zeros((), device=self.device)
        grad_acc = None
        batches = []
        for c in range(self.num_classes):
            idx = dm_batches[c] if dm_batches is not None else self.real_batch(c, step, ol, net, iteration)
            batches.append(idx)
            real = self.class_images(c)[idx]
            y_real = torch.full((real.shape[0],), c, dtype=torch.long, device=self.device)
            syn, y_syn = self.syn_class(c, step)
            real_aug, syn_aug = self.siamese(real, syn, gen, choice_gen)
            loss, parts = self.class_loss(net, params, self.model_input(real_aug), y_real,
                                          self.model_input(syn_aug), y_syn)
            grad = torch.autograd.grad(loss, self.param)[0]
            if self.per_class_step:                         # IDC: one optimiser step per class
                self.param.grad = grad
                self.optimizer.step()
            else:                                           # DC/DSA/DM: one step on the summed loss
                grad_acc = grad if grad_acc is None else grad_acc + grad
            total += loss.detach()
            grad_part += parts.get("grad", 0.0)
            embed_part += parts.get("embed", 0.0)
        if not self.per_class_step:
            self.param.grad = grad_acc
            self.optimizer.step()
        self.param.grad = None
        clustering1, count1 = self._sampler_clock()
        t1 = self.tick()

        if cfg.diag_every and step % cfg.diag_every == 0:
            self.diagnostics(net, step, batches)      # timed separately, in history["time_diagnostics"]
        h = self.history
        h["iteration"].append(iteration)
        h["step"].append(step)
        h["loss"].append(float(total))
        h["grad_loss"].append(float(grad_part) if cfg.objective != "embedding" else math.nan)
        h["embed_loss"].append(float(embed_part) if cfg.objective != "gradient" else math.nan)
        h["reclusters"].append(int(count1 - count0))
        h["time_clustering"].append(clustering1 - clustering0)
        h["time_matching"].append(max(0.0, (t1 - t0) - (clustering1 - clustering0)))

    def _sampler_clock(self) -> tuple[float, int]:
        if isinstance(self.sampler, RepresentativeSampler):
            return self.sampler.clustering_seconds, int(self.sampler.timings["count"])
        return 0.0, 0

    def diagnostics(self, net, step: int, batches: list[torch.Tensor]) -> float:
        """Gradient difference Σ‖g_real − g_syn‖², feature difference ‖μ_real − μ_syn‖² and the MMD²
        between the real batch and (a fixed sample of) its class in the current embedding, averaged
        over classes. Runs on unaugmented images and restores the network's buffers, so it never
        changes the distillation itself."""
        t0 = self.tick()
        buffers = [b.detach().clone() for b in net.buffers()]
        params = self.matched_params(net)
        gdiff, fdiff, mmds = [], [], []
        for c in range(self.num_classes):
            real = self.class_images(c)[batches[c]]
            y_real = torch.full((real.shape[0],), c, dtype=torch.long, device=self.device)
            with torch.no_grad():
                syn, y_syn = self.syn_class(c, step)
            grads, embs = [], []
            for x, y in ((real, y_real), (syn, y_syn)):
                emb = net.embed(self.model_input(x))
                loss = F.cross_entropy(net.classify(emb), y)
                grads.append(torch.autograd.grad(loss, params))
                embs.append(emb.detach().float())
            gdiff.append(gradient_difference(grads[0], grads[1]))
            fdiff.append(feature_difference(embs[0], embs[1]))
            if real.shape[0] >= 2:
                class_emb = embed_images(net, self.class_images(c)[self.diag_subsets[c]], amp=self.cfg.amp)
                batch_emb = embed_images(net, real, amp=self.cfg.amp)
                sigma = median_bandwidth(batch_emb, class_emb)
                mmds.append(mmd2(batch_emb, class_emb, sigma))
        with torch.no_grad():
            for b, saved in zip(net.buffers(), buffers):
                b.copy_(saved)
        seconds = self.tick() - t0
        h = self.history
        h["diag_step"].append(step)
        h["grad_diff"].append(float(np.mean(gdiff)))
        h["feature_diff"].append(float(np.mean(fdiff)))
        h["batch_mmd"].append(float(np.mean(mmds)) if mmds else math.nan)
        h["time_diagnostics"].append(seconds)
        return seconds

    # ---------------------------------------------------------------- init, loop, checkpoints

    def initialise(self) -> None:
        cfg = self.cfg
        t0 = self.tick()
        shape = (self.num_classes * cfg.ipc, self.channels, self.size, self.size)
        if cfg.init == "noise" and cfg.method != "idc":
            # DC/DSA/DM: standard Gaussian in the normalised space, as the authors' torch.randn init
            gen = make_generator(derive_seed(cfg.seed, _INIT) & 0x7FFFFFFF, self.device)
            with torch.no_grad():
                self.param.copy_(torch.randn(shape, generator=gen, device=self.device))
            self.history["time_init"].append(self.tick() - t0)
            return
        if cfg.init == "noise":
            pixels = dinit.init_noise(shape, seed=derive_seed(cfg.seed, _INIT) & 0x7FFFFFFF, device=self.device)
        else:
            net = self.new_network(_INIT_NETWORK)[0] if cfg.init in ("kmeans", "kmeans_mix") else None
            parts = []
            for c in range(self.num_classes):
                images = self.class_images(c)
                seed = derive_seed(cfg.seed, _INIT, c) & 0x7FFFFFFF
                if cfg.init == "real":
                    parts.append(dinit.init_random_real(images, cfg.ipc, seed))
                elif cfg.init == "mix":
                    parts.append(dinit.idc_mix_init(images, cfg.ipc, cfg.factor, seed))
                else:
                    emb = embed_images(net, images, amp=cfg.amp)
                    if cfg.init == "kmeans":
                        parts.append(dinit.init_kmeans_centres(emb, images, cfg.ipc, seed, iters=cfg.kmeans_iters))
                    else:
                        parts.append(dinit.init_kmeans_mix(emb, images, cfg.ipc, cfg.factor, seed,
                                                           iters=cfg.kmeans_iters))
            pixels = torch.cat(parts)
        with torch.no_grad():
            self.param.copy_((pixels.to(self.device) - self.space_mean) / self.space_std)
        self.history["time_init"].append(self.tick() - t0)

    def run_iteration(self, iteration: int) -> None:
        cfg = self.cfg
        self.clamp_()
        net, opt = self.new_network(iteration)
        outer = 1 if cfg.method == "dm" else cfg.outer_loops
        for ol in range(outer):
            step = iteration * outer + ol
            self.image_step(net, iteration, ol, step)
            t0 = self.tick()
            if cfg.method != "dm" and cfg.inner_loops > 0 and ol < outer - 1:
                self.update_network(net, opt, iteration, ol)
            self.history["time_network_update"].append(self.tick() - t0)

    def checkpoint_state(self, iteration: int, key: str) -> dict:
        return {"version": CHECKPOINT_VERSION, "config_hash": key, "iteration": iteration,
                "param": self.param.detach().cpu(), "optimizer": self.optimizer.state_dict(),
                "history": self.history, "snapshots": self.snapshots}

    def load_checkpoint(self, state: dict) -> int:
        with torch.no_grad():
            self.param.copy_(state["param"].to(self.device))
        self.optimizer.load_state_dict(state["optimizer"])
        self.history = {k: list(state["history"].get(k, [])) for k in HISTORY_KEYS}
        self.snapshots = [(int(i), t) for i, t in state["snapshots"]]
        return int(state["iteration"])


def _checkpoint_key(cfg: DistillConfig, images: torch.Tensor, labels: torch.Tensor, num_classes: int,
                    mean, std) -> str:
    """Hash of everything that determines the run (checkpoint_every excluded) plus a data fingerprint."""
    config = {k: v for k, v in cfg.to_dict().items() if k != "checkpoint_every"}
    data = {"shape": list(images.shape), "pixel_sum": float(images.double().sum()),
            "label_sum": int(labels.sum()), "num_classes": num_classes, "mean": mean, "std": std}
    return config_key("distill-checkpoint", {"config": config, "data": data}, str(CHECKPOINT_VERSION))


def _save_checkpoint(path: Path, state: dict) -> None:
    with atomic_path(path) as tmp:
        torch.save(state, tmp)


def distill(train_images: torch.Tensor, train_labels: torch.Tensor, config: DistillConfig, *,
            num_classes: int | None = None, mean: Sequence[float] | float | None = None,
            std: Sequence[float] | float | None = None, progress: bool = True,
            checkpoint_path: str | PathLike | None = None) -> DistillResult:
    """Distil ``(train_images, train_labels)`` into ``config.ipc`` stored images per class.

    Args:
        train_images: (N, C, H, W) float in [0, 1], square; moved to ``config.device`` once.
        train_labels: (N,) int64 in [0, num_classes).
        config: a :class:`DistillConfig` (:func:`default_config`, :func:`preset`).
        num_classes: default ``max(label) + 1``; every class needs at least ``ipc`` images.
        mean, std: per-channel statistics the networks normalise with (the dataset's; None = 0/1).
        progress: tqdm bar over the outer iterations.
        checkpoint_path: if given, the state (images, optimiser, iteration, history, snapshots) is
            saved there atomically every ``config.checkpoint_every`` iterations and at the end, and a
            run finds it and resumes when its config hash (config + data fingerprint) matches; a
            checkpoint of another run is ignored with a warning and overwritten.

    Returns a :class:`DistillResult`. Every argument is checked before any work (ValueError).
    Memory: the training set on the device, plus one network and the per-class graphs of one step.
    """
    num_classes, mean, std, sizes = _validate(train_images, train_labels, config, num_classes, mean, std,
                                              checkpoint_path)
    if not isinstance(progress, bool):
        raise ValueError(f"progress={progress!r} must be True or False")
    cfg = config
    run = _Distillation(train_images, train_labels, cfg, num_classes, mean, std, sizes, progress)
    path = Path(checkpoint_path) if checkpoint_path is not None else None
    key = _checkpoint_key(cfg, train_images, train_labels, num_classes, mean, std) if path is not None else ""

    start = 0
    if path is not None and path.exists():
        state = torch.load(path, map_location="cpu", weights_only=True)
        if state.get("config_hash") == key and state.get("version") == CHECKPOINT_VERSION:
            start = run.load_checkpoint(state)
        else:
            warnings.warn(f"checkpoint {path} belongs to another configuration or data; starting afresh "
                          "(it will be overwritten)", RuntimeWarning, stacklevel=2)
    if start == 0:
        run.initialise()
        if cfg.snapshot_every:
            run.snapshots.append((0, run.stored_pixels()))

    bar = tqdm(range(start, cfg.iterations), initial=start, total=cfg.iterations, desc=f"distill {cfg.method}",
               unit="it", disable=not progress, leave=False)
    for it in bar:
        run.run_iteration(it)
        done = it + 1
        if cfg.snapshot_every and (done % cfg.snapshot_every == 0 or done == cfg.iterations):
            run.snapshots.append((done, run.stored_pixels()))
        if path is not None and (done % cfg.checkpoint_every == 0 or done == cfg.iterations):
            _save_checkpoint(path, run.checkpoint_state(done, key))
        if run.history["loss"]:
            bar.set_postfix(loss=f"{run.history['loss'][-1]:.4g}")
    bar.close()
    run.clamp_()
    return DistillResult(images=run.stored_pixels(), labels=run.syn_labels.cpu(), snapshots=list(run.snapshots),
                         history=run.history, config=cfg)
