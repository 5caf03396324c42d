"""ADQ representativeness: texture level of images and L×L patches, RS per bin."""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F

from ..utils import check_int, resolve_device, tqdm
from .bins import check_bins

__all__ = ["texture_level", "texture_level_patches", "representativeness_scores"]

_SOBEL_X = ((-1.0, 0.0, 1.0), (-2.0, 0.0, 2.0), (-1.0, 0.0, 1.0))
_GRAY_WEIGHTS = (0.299, 0.587, 0.114)


def _check_texture_input(images, patch: int) -> tuple[int, int, int]:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (N, C, H, W), got {shape}")
    if images.shape[1] not in (1, 3):
        raise ValueError(f"images must have 1 or 3 channels, got C={images.shape[1]}")
    if not images.is_floating_point():
        raise ValueError(f"images must be floating point with pixels in [0, 1], got dtype {images.dtype}")
    patch = check_int("patch", patch, low=2)
    h, w = images.shape[2], images.shape[3]
    if h < 2 or w < 2:
        raise ValueError(f"images must be at least 2×2 pixels for a 3×3 Sobel with reflect-101 borders, got {h}×{w}")
    return patch, min(patch, h), min(patch, w)


def _tile_texture(gray: torch.Tensor, th: int, tw: int) -> torch.Tensor:
    """gray (n, 1, H, W) → (n, T) texture level of each full th×tw tile, Sobel applied per tile."""
    n, _, h, w = gray.shape
    nh, nw = h // th, w // tw
    tiles = gray[:, :, : nh * th, : nw * tw].reshape(n, nh, th, nw, tw).permute(0, 1, 3, 2, 4)
    tiles = tiles.reshape(n * nh * nw, 1, th, tw)
    sobel_x = torch.tensor(_SOBEL_X, dtype=gray.dtype, device=gray.device)
    weight = torch.stack([sobel_x, sobel_x.T]).unsqueeze(1)                 # (2, 1, 3, 3): Gx, Gy
    grads = F.conv2d(F.pad(tiles, (1, 1, 1, 1), mode="reflect"), weight)    # reflect == reflect-101
    level = 0.5 * grads.abs().sum(dim=1)                                     # 0.5|Gx| + 0.5|Gy|
    return level.mean(dim=(1, 2)).reshape(n, nh * nw)


def texture_level_patches(images: torch.Tensor, patch: int = 32, *, batch_size: int = 256,
                          device=None) -> torch.Tensor:
    """ADQ texture level of every L×L patch (L = ``patch``): shape (N, T).

    ``images``: (N, C, H, W), C ∈ {1, 3}, pixels in [0, 1]. Grayscale = 0.299R + 0.587G + 0.114B.
    Tiles are th×tw with th = min(L, H), tw = min(L, W): an image no larger than L in both
    dimensions is one tile; otherwise only the full tiles of the grid anchored at the top-left corner
    are used (a remainder of fewer than L rows/columns at the bottom/right is dropped), T = ⌊H/th⌋·⌊W/tw⌋.
    Per tile, 3×3 Sobel Gx = [[-1,0,1],[-2,0,2],[-1,0,1]] and Gy = Gxᵀ with reflect-101 borders inside
    the tile, and ``TL = mean(0.5|Gx| + 0.5|Gy|)``.
    Computed in chunks of ``batch_size`` images on ``device`` (default: the images' device); result
    on that device in the images' floating dtype. Time O(N·H·W).
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    _, th, tw = _check_texture_input(images, patch)
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = images.device if device is None else resolve_device(device)
    weights = torch.tensor(_GRAY_WEIGHTS, dtype=images.dtype, device=dev).view(1, 3, 1, 1)
    out = []
    for start in range(0, images.shape[0], batch_size):
        x = images[start : start + batch_size].to(dev)
        gray = (x * weights).sum(dim=1, keepdim=True) if x.shape[1] == 3 else x
        out.append(_tile_texture(gray, th, tw))
    if not out:
        t = (images.shape[2] // th) * (images.shape[3] // tw)
        return torch.zeros(0, t, dtype=images.dtype, device=dev)
    return torch.cat(out)


def texture_level(images: torch.Tensor, patch: int = 32) -> torch.Tensor:
    """ADQ texture level, one value per image: the mean of :func:`texture_level_patches` over its tiles.

    ``images``: (N, C, H, W) in [0, 1] with C ∈ {1, 3} → (N,). A flat image has level 0; a horizontal
    ramp of slope a per pixel on a W-wide tile has ``4a·(W−2)/W`` (|Gx| = 8a inside, 0 on the two
    reflected border columns).
    """
    return texture_level_patches(images, patch).mean(dim=1)


def representativeness_scores(images: torch.Tensor, bins: Sequence[torch.Tensor], patch: int = 32, *,
                              batch_size: int = 256, device=None, progress: bool = False) -> torch.Tensor:
    """ADQ representativeness RS per bin: the mean texture level of the patches of the bin's images.

    ``images``: (N, C, H, W) in [0, 1]; ``bins``: K index tensors into ``images``. Every image has the
    same number of patches, so RS = the mean over the bin's images of their per-image TL. Only the
    images in some bin are processed, ``batch_size`` at a time on ``device``. Returns (K,) float64 on
    that device. Raises ValueError for an empty bin or an out-of-range index.
    """
    if isinstance(images, np.ndarray):
        images = torch.from_numpy(images)
    _check_texture_input(images, patch)
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = images.device if device is None else resolve_device(device)
    bins = check_bins(bins, images.shape[0])
    for k, b in enumerate(bins):
        if b.numel() == 0:
            raise ValueError(f"bin {k} is empty; representativeness is undefined for an empty bin")
    needed = torch.unique(torch.cat(bins)).cpu()
    per_image = torch.zeros(images.shape[0], dtype=torch.float64, device=dev)
    for start in tqdm(range(0, needed.numel(), batch_size), desc="texture level", disable=not progress, leave=False):
        idx = needed[start : start + batch_size]
        chunk = images.index_select(0, idx.to(images.device))
        per_image[idx.to(dev)] = texture_level_patches(chunk, patch, batch_size=batch_size, device=dev).double().mean(1)
    return torch.stack([per_image[b.to(dev)].mean() for b in bins])


