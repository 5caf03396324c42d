"""Real mini-batch samplers for distillation: random (DC/DSA/DM/IDC), representative
(DREAM/DREAM+: samples nearest to k-means sub-cluster centres of the class, re-clustered every
``interval`` steps) and one region of the class, its centre or its boundary (DREAM+ Fig. 2a).

All expose ``batch(step, class_index, class_images, model, *, iteration=0) -> LongTensor`` of
indices into ``class_images`` (on its device), so a distillation loop can switch between them freely.

Batch convention of the representative sampler (the authors' ``query_match(batch_real, subsample)``):
``num_clusters = batch_real // subsample`` sub-clusters and the ``subsample`` samples nearest to each
centre, so the real batch keeps ``batch_real`` samples whatever ``subsample`` is
(:meth:`RepresentativeSampler.for_batch` builds a sampler that way; ``DistillConfig.clusters`` does
the same unless ``num_clusters`` is given).
"""
from __future__ import annotations

import math
import time
import weakref
from typing import Sequence

import torch
import torch.nn as nn

from ..cluster import ALGORITHMS, fit_kmeans, nearest_to_centroids
from ..utils import autocast, check_choice, check_int

__all__ = ["RandomSampler", "RegionSampler", "RepresentativeSampler", "embed_images", "REGIONS"]

#: the class regions :class:`RegionSampler` draws from (DREAM+ Fig. 2a)
REGIONS = ("centre", "boundary")


def _check_class_images(class_images, class_index) -> int:
    check_int("class_index", class_index, low=0)
    if not torch.is_tensor(class_images) or class_images.dim() < 2 or class_images.shape[0] == 0:
        shape = tuple(class_images.shape) if torch.is_tensor(class_images) else type(class_images).__name__
        raise ValueError(f"class_images must be a non-empty tensor (N, ...), got {shape}")
    return class_images.shape[0]


def _mix_seed(*parts: int) -> int:
    """Deterministic 63-bit seed from integers (splitmix-style), so batches do not depend on call order."""
    h = 0x9E3779B97F4A7C15
    for p in parts:
        h = (h ^ (int(p) + 0x9E3779B97F4A7C15 + (h << 6) + (h >> 2))) & 0xFFFFFFFFFFFFFFFF
        h = (h * 0xBF58476D1CE4E5B9) & 0xFFFFFFFFFFFFFFFF
        h ^= h >> 31
    return h & 0x7FFFFFFFFFFFFFFF


@torch.no_grad()
def embed_images(model: nn.Module, images: torch.Tensor, batch_size: int = 512, *, amp: bool = False) -> torch.Tensor:
    """``model.embed`` over ``images`` in batches, in eval mode and without grad → (N, D) float32.

    The model's training flag is restored afterwards. bf16 autocast on CUDA only when ``amp``
    (the distillers pass their ``amp`` setting; fp32 otherwise)."""
    batch_size = check_int("batch_size", batch_size, low=1)
    if not isinstance(amp, bool):
        raise ValueError(f"amp={amp!r} must be True or False")
    was_training = model.training
    model.eval()
    try:
        with autocast(images.device, amp):
            parts = [model.embed(images[i:i + batch_size]).float() for i in range(0, images.shape[0], batch_size)]
    finally:
        model.train(was_training)
    return torch.cat(parts).reshape(images.shape[0], -1)


class RandomSampler:
    """Uniform real batches without replacement, as DC/DSA/DM/IDC draw them.

    ``batch`` returns ``min(batch_size, class size)`` distinct indices. The draw is a pure
    function of ``(seed, class_index, step)``, so the same step gives the same batch whatever
    the call order (the engine passes the global image step, which already identifies the
    iteration). ``images_per_class`` (optional class sizes) is checked against the images passed in.
    ``model`` and ``iteration`` are accepted for interface parity and unused.
    """

    def __init__(self, images_per_class: Sequence[int] | None = None, batch_size: int = 256, seed: int = 0):
        self.images_per_class = None if images_per_class is None else [
            check_int(f"images_per_class[{i}]", n, low=1) for i, n in enumerate(images_per_class)]
        self.batch_size = check_int("batch_size", batch_size, low=1)
        self.seed = check_int("seed", seed, low=0)

    def batch(self, step: int, class_index: int, class_images: torch.Tensor,
              model: nn.Module | None = None, *, iteration: int = 0) -> torch.Tensor:
        n = _check_class_images(class_images, class_index)
        step = check_int("step", step, low=0)
        if self.images_per_class is not None:
            if class_index >= len(self.images_per_class):
                raise ValueError(f"class_index={class_index} is out of range; allowed: 0 <= class_index <= "
                                 f"{len(self.images_per_class) - 1}")
            if self.images_per_class[class_index] != n:
                raise ValueError(f"class {class_index} was declared with {self.images_per_class[class_index]} images "
                                 f"but {n} were passed")
        gen = torch.Generator().manual_seed(_mix_seed(self.seed, class_index, step))
        return torch.randperm(n, generator=gen)[:self.batch_size].to(class_images.device)

    def reset(self) -> None:
        """Nothing cached; present for interface parity with :class:`RepresentativeSampler`."""


class RepresentativeSampler:
    """DREAM's representative matching: the samples nearest to sub-cluster centres.

    For each class, at the first call of every block of ``interval`` steps (``step // interval``
    changes), when ``step`` goes back (a new inner loop), when ``iteration`` or the model object
    changes, or after :meth:`reset`, the class images are embedded with ``model.embed`` (eval mode,
    no grad, batched; bf16 on CUDA only when ``amp``) and clustered with k-means into
    ``num_clusters`` sub-clusters; the batch is the ``subsample`` nearest samples to each centroid,
    (num_clusters·subsample,) indices in centroid order (a sample may serve two centroids, as in
    DREAM's code). Between re-clusterings the cached batch is returned. Call :meth:`reset` when the
    model's weights are re-initialised in place.

    Re-clustering starts fresh by default (``warm_start=False``), as the authors' code runs a new,
    randomly started k-means each time; its k-means++ seed is derived from ``(seed, iteration, step,
    class_index)``, so two re-clusterings in different iterations or steps use different seeds.
    ``warm_start=True`` (an option, not the authors' behaviour) starts from the previous centroids of
    the class when the model is the same object — cheaper, but later clusterings then depend on
    earlier ones.

    Batch size: ``num_clusters·subsample``. The authors keep the real batch at ``batch_real`` by
    clustering into ``batch_real // subsample`` sub-clusters: :meth:`for_batch` does that.

    ``timings``: seconds spent embedding (``"embed"``), clustering (``"kmeans"``), selecting the
    nearest samples (``"select"``), and the number of clusterings (``"count"``), summed over calls;
    ``seeds_used``: the k-means seeds of the clusterings, in order (bookkeeping for tests and logs).
    ``kmeans_algorithm``: ``"elkan"`` (bounded Lloyd iterations) or ``"lloyd"``; both pick the same
    samples except where an embedding lies within float rounding of two centroids
    (:func:`dscore.cluster.fit_kmeans`). Cost per clustering: O(N·forward) + O(iters·N·K·D) at worst.
    """

    def __init__(self, num_clusters: int = 128, subsample: int = 1, interval: int = 10, seed: int = 0,
                 warm_start: bool = False, *, kmeans_iters: int = 100, tol: float = 1e-4, embed_batch_size: int = 512,
                 chunk_size: int = 4096, amp: bool = False, kmeans_algorithm: str = "elkan"):
        self.kmeans_algorithm = check_choice("kmeans_algorithm", kmeans_algorithm, ALGORITHMS)
        self.num_clusters = check_int("num_clusters", num_clusters, low=1)
        self.subsample = check_int("subsample", subsample, low=1)
        self.interval = check_int("interval", interval, low=1)
        self.seed = check_int("seed", seed, low=0)
        if not isinstance(warm_start, bool) or not isinstance(amp, bool):
            raise ValueError(f"warm_start={warm_start!r} and amp={amp!r} must be True or False")
        self.warm_start = warm_start
        self.amp = amp
        self.kmeans_iters = check_int("kmeans_iters", kmeans_iters, low=0)
        self.tol = float(tol)
        self.embed_batch_size = check_int("embed_batch_size", embed_batch_size, low=1)
        self.chunk_size = check_int("chunk_size", chunk_size, low=1)
        self.timings: dict[str, float] = {"embed": 0.0, "kmeans": 0.0, "select": 0.0, "count": 0}
        self.seeds_used: list[int] = []
        self._batches: dict[int, torch.Tensor] = {}
        self._blocks: dict[int, tuple[int, int]] = {}
        self._last_step: dict[int, tuple[int, int]] = {}
        self._centroids: dict[int, torch.Tensor] = {}
        self._model_ref = None

    @classmethod
    def for_batch(cls, batch_real: int, subsample: int = 1, **kwargs) -> "RepresentativeSampler":
        """The authors' convention: ``batch_real // subsample`` sub-clusters × ``subsample`` nearest
        samples each, so the batch keeps ``batch_real`` samples (fewer only when ``subsample`` does
        not divide it). ``subsample > batch_real`` → ValueError."""
        batch_real = check_int("batch_real", batch_real, low=1)
        subsample = check_int("subsample", subsample, low=1)
        if subsample > batch_real:
            raise ValueError(f"subsample={subsample} exceeds batch_real={batch_real}; allowed: "
                             f"1 <= subsample <= batch_real")
        return cls(batch_real // subsample, subsample, **kwargs)

    def clustering_seed(self, iteration: int, step: int, class_index: int) -> int:
        """k-means seed of the clustering at (iteration, step, class): a pure function of these and ``seed``."""
        return _mix_seed(self.seed, iteration, step, class_index) & 0x7FFFFFFF

    @property
    def clustering_seconds(self) -> float:
        """Total seconds spent in embedding + k-means + selection."""
        return self.timings["embed"] + self.timings["kmeans"] + self.timings["select"]

    def reset(self, keep_centroids: bool = False) -> None:
        """Forget cached batches (the next call re-clusters); drop the warm-start centroids too
        unless ``keep_centroids``."""
        self._batches.clear()
        self._blocks.clear()
        self._last_step.clear()
        if not keep_centroids:
            self._centroids.clear()

    def centroids(self, class_index: int) -> torch.Tensor | None:
        """The latest centroids of a class in embedding space (K, D), or None."""
        return self._centroids.get(class_index)

    def _tick(self, device: torch.device) -> float:
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        return time.perf_counter()

    def batch(self, step: int, class_index: int, class_images: torch.Tensor, model: nn.Module, *,
              iteration: int = 0) -> torch.Tensor:
        n = _check_class_images(class_images, class_index)
        step = check_int("step", step, low=0)
        iteration = check_int("iteration", iteration, low=0)
        if self.num_clusters > n:
            raise ValueError(f"num_clusters={self.num_clusters} exceeds the {n} images of class {class_index}; "
                             f"allowed: num_clusters <= class size ({n})")
        if self.subsample > n:
            raise ValueError(f"subsample={self.subsample} exceeds the {n} images of class {class_index}; "
                             f"allowed: subsample <= class size ({n})")
        if model is None or not hasattr(model, "embed"):
            raise ValueError("RepresentativeSampler needs a model with an .embed(x) method")
        if self._model_ref is None or self._model_ref() is not model:
            self.reset()
            self._model_ref = weakref.ref(model)
        block = (iteration, step // self.interval)
        last = self._last_step.get(class_index)
        self._last_step[class_index] = (iteration, step)
        restarted = last is not None and (iteration, step) < last     # a new inner loop began
        if class_index in self._batches and self._blocks[class_index] == block and not restarted:
            return self._batches[class_index]

        device = class_images.device
        t0 = self._tick(device)
        emb = embed_images(model, class_images, self.embed_batch_size, amp=self.amp)
        t1 = self._tick(device)
        init = self._centroids.get(class_index) if self.warm_start else None
        if init is not None and init.shape != (self.num_clusters, emb.shape[1]):
            init = None
        seed = self.clustering_seed(iteration, step, class_index)
        result = fit_kmeans(emb, self.num_clusters, iters=self.kmeans_iters, tol=self.tol, seed=seed, init=init,
                            chunk_size=self.chunk_size, algorithm=self.kmeans_algorithm)
        t2 = self._tick(device)
        idx = nearest_to_centroids(emb, result.centroids, self.subsample, self.chunk_size).reshape(-1)
        t3 = self._tick(device)

        self.timings["embed"] += t1 - t0
        self.timings["kmeans"] += t2 - t1
        self.timings["select"] += t3 - t2
        self.timings["count"] += 1
        self.seeds_used.append(seed)
        self._centroids[class_index] = result.centroids
        self._batches[class_index] = idx
        self._blocks[class_index] = block
        return idx


class RegionSampler:
    """Real batches from one region of the class only: its centre or its boundary (DREAM+ Fig. 2a).

    At the first call of every block of ``interval`` steps (as :class:`RepresentativeSampler`: a new block, a new
    inner loop, a new iteration or a new model object), the class images are embedded with ``model.embed`` and
    ranked by their distance to the class's mean embedding. The region is the ``ceil(fraction · n)`` images
    nearest to the mean (``"centre"``) or farthest from it (``"boundary"``), at least ``batch_size``; each step draws
    ``min(batch_size, n)`` distinct images of the region uniformly, a pure function of ``(seed, iteration, step,
    class_index)``. The paper's centre samples are the confidently classified ones with small gradients, its boundary
    samples the ones near the decision boundary; distance to the class mean in the network's embedding is our
    reading of "closer to the centre of the whole distribution". Cost per re-ranking: one embedding pass over the
    class, O(N·D).
    """

    def __init__(self, region: str, batch_size: int = 256, fraction: float = 0.25, interval: int = 10,
                 seed: int = 0, *, embed_batch_size: int = 512, amp: bool = False):
        self.region = check_choice("region", region, REGIONS)
        self.batch_size = check_int("batch_size", batch_size, low=1)
        if not isinstance(fraction, (int, float)) or isinstance(fraction, bool) or not 0 < fraction <= 1:
            raise ValueError(f"fraction={fraction!r} must be a number in (0, 1]: the share of the class that forms "
                             "the region")
        self.fraction = float(fraction)
        self.interval = check_int("interval", interval, low=1)
        self.seed = check_int("seed", seed, low=0)
        self.embed_batch_size = check_int("embed_batch_size", embed_batch_size, low=1)
        if not isinstance(amp, bool):
            raise ValueError(f"amp={amp!r} must be True or False")
        self.amp = amp
        self._pools: dict[int, torch.Tensor] = {}
        self._blocks: dict[int, tuple[int, int]] = {}
        self._last_step: dict[int, tuple[int, int]] = {}
        self._model_ref = None

    def region_size(self, n: int) -> int:
        """Images in the region of a class of ``n``: ``ceil(fraction · n)``, at least the batch, at most ``n``."""
        return min(n, max(self.batch_size, math.ceil(self.fraction * n)))

    def reset(self) -> None:
        """Forget the regions (the next call re-ranks)."""
        self._pools.clear()
        self._blocks.clear()
        self._last_step.clear()

    def pool(self, class_index: int) -> torch.Tensor | None:
        """The current region of a class (indices into its images, nearest to the mean first), or None."""
        return self._pools.get(class_index)

    def batch(self, step: int, class_index: int, class_images: torch.Tensor, model: nn.Module, *,
              iteration: int = 0) -> torch.Tensor:
        n = _check_class_images(class_images, class_index)
        step = check_int("step", step, low=0)
        iteration = check_int("iteration", iteration, low=0)
        if model is None or not hasattr(model, "embed"):
            raise ValueError("RegionSampler needs a model with an .embed(x) method")
        if self._model_ref is None or self._model_ref() is not model:
            self.reset()
            self._model_ref = weakref.ref(model)
        block = (iteration, step // self.interval)
        last = self._last_step.get(class_index)
        self._last_step[class_index] = (iteration, step)
        restarted = last is not None and (iteration, step) < last
        if class_index not in self._pools or self._blocks[class_index] != block or restarted:
            emb = embed_images(model, class_images, self.embed_batch_size, amp=self.amp)
            dist = (emb - emb.mean(0, keepdim=True)).pow(2).sum(1)
            order = torch.argsort(dist, stable=True)
            m = self.region_size(n)
            self._pools[class_index] = order[:m] if self.region == "centre" else order.flip(0)[:m]
            self._blocks[class_index] = block
        pool = self._pools[class_index]
        gen = torch.Generator().manual_seed(_mix_seed(self.seed, iteration, step, class_index) & 0x7FFFFFFF)
        pick = torch.randperm(pool.numel(), generator=gen)[:min(self.batch_size, n)]
        return pool[pick.to(pool.device)]

