"""Initialisation of synthetic images and IDC's multi-formation (stored image → f² training images).

Images are float (N, C, H, W) in [0, 1]. The k-means initialisers implement DREAM's
"cluster-centre" initialisation: the real samples nearest to k-means centroids of the class
embeddings (distinct samples, one per centroid, in centroid order).
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F

from ..cluster import fit_kmeans, nearest_to_centroids
from ..utils import check_int, make_generator

__all__ = ["init_random_real", "init_noise", "init_kmeans_centres", "idc_decode", "idc_decode_labels",
           "idc_mix_init", "init_kmeans_mix", "distinct_nearest"]

_PAD_VALUE = 0.5  # IDC pads images whose side is not a multiple of the factor with mid-grey


def _check_images(images, name: str = "images") -> torch.Tensor:
    if not torch.is_tensor(images) or images.dim() != 4 or images.shape[0] == 0:
        shape = tuple(images.shape) if torch.is_tensor(images) else type(images).__name__
        raise ValueError(f"{name} must be a non-empty tensor of shape (N, C, H, W), got {shape}")
    return images


def _random_indices(n: int, count: int, seed: int, device) -> torch.Tensor:
    gen = make_generator(check_int("seed", seed, low=0))
    return torch.randperm(n, generator=gen)[:count].to(device)


def init_random_real(class_images: torch.Tensor, ipc: int, seed: int = 0, *, return_indices: bool = False):
    """``ipc`` distinct real images of one class, chosen uniformly with ``seed`` → (ipc, C, H, W) copy
    (and the (ipc,) indices if ``return_indices``)."""
    class_images = _check_images(class_images, "class_images")
    n = class_images.shape[0]
    ipc = check_int("ipc", ipc, low=1)
    if ipc > n:
        raise ValueError(f"ipc={ipc} exceeds the {n} images of the class; allowed: 1 <= ipc <= {n}")
    idx = _random_indices(n, ipc, seed, class_images.device)
    out = class_images[idx].clone()
    return (out, idx) if return_indices else out


def init_noise(shape: Sequence[int], seed: int = 0, device: str | torch.device = "cpu") -> torch.Tensor:
    """Uniform noise in [0, 1) of ``shape`` (N, C, H, W), float32, seeded (pixel-space analogue of
    DC's Gaussian "noise" init, which lives in normalised space)."""
    shape = tuple(check_int("shape entry", s, low=1) for s in shape)
    if len(shape) != 4:
        raise ValueError(f"shape={shape} must have 4 entries (N, C, H, W)")
    gen = make_generator(check_int("seed", seed, low=0), device)
    return torch.rand(shape, generator=gen, device=device)


def distinct_nearest(embeddings: torch.Tensor, centroids: torch.Tensor, chunk_size: int = 4096) -> torch.Tensor:
    """(k,) distinct sample indices: centroid j gets its nearest sample not already taken by
    centroids 0..j−1. Needs k <= N. Time O(N·k·d) plus an O(k²) greedy pass over k candidates each."""
    k = centroids.shape[0]
    if k > embeddings.shape[0]:
        raise ValueError(f"{k} centroids but only {embeddings.shape[0]} samples; need k <= N")
    cand = nearest_to_centroids(embeddings, centroids, n=k, chunk_size=chunk_size).cpu().tolist()
    taken: set[int] = set()
    picks = []
    for row in cand:          # k rows of k candidates: at most j are taken before row j
        choice = next(i for i in row if i not in taken)
        taken.add(choice)
        picks.append(choice)
    return torch.tensor(picks, dtype=torch.long, device=embeddings.device)


def _kmeans_indices(embeddings: torch.Tensor, count: int, seed: int, iters: int) -> torch.Tensor:
    if not torch.is_tensor(embeddings) or embeddings.dim() != 2:
        raise ValueError(f"embeddings must have shape (N, D), got "
                         f"{tuple(embeddings.shape) if torch.is_tensor(embeddings) else type(embeddings).__name__}")
    n = embeddings.shape[0]
    if count > n:
        raise ValueError(f"{count} cluster centres requested but the class has only {n} samples; "
                         f"allowed: ipc·factor² <= {n}")
    emb = embeddings.detach().float()
    centroids = fit_kmeans(emb, count, iters=iters, seed=check_int("seed", seed, low=0)).centroids
    return distinct_nearest(emb, centroids)


def init_kmeans_centres(embeddings: torch.Tensor, images: torch.Tensor, ipc: int, seed: int = 0, *,
                        iters: int = 100, return_indices: bool = False):
    """DREAM init: k-means (k = ipc) on the class embeddings (N, D); the distinct real images nearest
    to the centroids → (ipc, C, H, W) copy (and indices if ``return_indices``)."""
    images = _check_images(images)
    ipc = check_int("ipc", ipc, low=1)
    if embeddings.shape[0] != images.shape[0]:
        raise ValueError(f"embeddings has {embeddings.shape[0]} rows but images has {images.shape[0]}; they must match")
    idx = _kmeans_indices(embeddings, ipc, seed, iters).to(images.device)
    out = images[idx].clone()
    return (out, idx) if return_indices else out


def _patch_size(h: int, w: int, factor: int) -> tuple[int, int]:
    if factor > min(h, w):
        raise ValueError(f"factor={factor} exceeds the image side min(H, W)={min(h, w)}; "
                         f"allowed: 1 <= factor <= {min(h, w)}")
    return math.ceil(h / factor), math.ceil(w / factor)


def idc_decode(images: torch.Tensor, factor: int) -> torch.Tensor:
    """IDC multi-formation: each stored image is cut into factor×factor patches, each upsampled
    (bilinear, align_corners=False) to the full size.

    Shapes: (N, C, H, W) → (N·f², C, H, W), image-major then patch row-major: output
    ``i·f² + a·f + b`` is patch (row a, column b) of stored image i. Sides that are not multiples of
    f are padded bottom/right with 0.5 (as IDC does) to ``f·ceil(H/f)``. Differentiable; O(N·f²·C·H·W).
    """
    images = _check_images(images)
    factor = check_int("factor", factor, low=1)
    n, c, h, w = images.shape
    sh, sw = _patch_size(h, w, factor)
    x = images
    if (sh * factor, sw * factor) != (h, w):
        x = F.pad(x, (0, sw * factor - w, 0, sh * factor - h), value=_PAD_VALUE)
    if factor == 1:
        return x
    patches = (x.reshape(n, c, factor, sh, factor, sw).permute(0, 2, 4, 1, 3, 5)
               .reshape(n * factor * factor, c, sh, sw))
    return F.interpolate(patches, size=(h, w), mode="bilinear", align_corners=False)


def idc_decode_labels(labels: torch.Tensor, factor: int) -> torch.Tensor:
    """Labels matching :func:`idc_decode`'s order: each label repeated f² times in place."""
    factor = check_int("factor", factor, low=1)
    return labels.repeat_interleave(factor * factor)


def idc_mix_init(real_images: torch.Tensor, ipc: int, factor: int, seed: int = 0, *,
                 indices: torch.Tensor | None = None) -> torch.Tensor:
    """IDC "mix" init: ipc·f² real images, each nearest-resized to (ceil(H/f), ceil(W/f)) and tiled
    f×f into ipc stored images → (ipc, C, H, W).

    Real image ``j·f² + a·f + b`` of the selection fills patch (a, b) of stored image j — the same
    order :func:`idc_decode` produces, so decoding returns (upsampled) the selected images in order.
    The selection is ``indices`` (ipc·f² distinct indices into real_images) or a seeded uniform draw.
    """
    real_images = _check_images(real_images, "real_images")
    ipc = check_int("ipc", ipc, low=1)
    factor = check_int("factor", factor, low=1)
    n, c, h, w = real_images.shape
    sh, sw = _patch_size(h, w, factor)
    need = ipc * factor * factor
    if indices is None:
        if need > n:
            raise ValueError(f"ipc·factor² = {ipc}·{factor}² = {need} exceeds the {n} real images; "
                             f"allowed: ipc·factor² <= {n}")
        indices = _random_indices(n, need, seed, real_images.device)
    else:
        indices = torch.as_tensor(indices, dtype=torch.long, device=real_images.device).reshape(-1)
        if indices.numel() != need:
            raise ValueError(f"indices has {indices.numel()} entries; ipc·factor² = {need} are needed")
        if bool((indices < 0).any()) or bool((indices >= n).any()):
            raise ValueError(f"indices must lie in [0, {n - 1}]")
    small = F.interpolate(real_images[indices], size=(sh, sw), mode="nearest")            # (ipc·f², C, sh, sw)
    tiled = (small.reshape(ipc, factor, factor, c, sh, sw).permute(0, 3, 1, 4, 2, 5)
             .reshape(ipc, c, factor * sh, factor * sw))
    return tiled[:, :, :h, :w].contiguous()


def init_kmeans_mix(embeddings: torch.Tensor, images: torch.Tensor, ipc: int, factor: int, seed: int = 0, *,
                    iters: int = 100) -> torch.Tensor:
    """DREAM init for IDC: k-means with ipc·f² centroids on the class embeddings; the distinct samples
    nearest to them are mixed into patches by :func:`idc_mix_init` → (ipc, C, H, W)."""
    images = _check_images(images)
    ipc = check_int("ipc", ipc, low=1)
    factor = check_int("factor", factor, low=1)
    if embeddings.shape[0] != images.shape[0]:
        raise ValueError(f"embeddings has {embeddings.shape[0]} rows but images has {images.shape[0]}; they must match")
    idx = _kmeans_indices(embeddings, ipc * factor * factor, seed, iters)
    return idc_mix_init(images, ipc, factor, indices=idx)
