"""DQ/ADQ dataset quantization: GraphCut bins, per-bin budgets, bin scores and samplers.

Pure functions on tensors (no caching, no training):

* :func:`generate_bins` — DQ's recursive GraphCut bins, per class.
* :func:`bin_budgets` — ADQ's adaptive per-bin budgets (β = 0 is DQ's uniform fraction).
* :func:`texture_level`, :func:`texture_level_patches`, :func:`representativeness_scores` — ADQ's RS.
* :func:`zscore`, :func:`importance_scores` — ADQ's IS = z(RS) + z(DS).
* :func:`sample_from_bins`, :func:`dq_select`, :func:`adq_select` — class-stratified sampling.

Formulas follow DESIGN.md §DQ and ADQ.
"""
from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from .features import GradientFeatures
from .select import Features, _check_features, _check_labels, _CosineOracle, _graphcut, _num_rows, _subset_rows
from .utils import check_float, check_int, make_generator, resolve_device

__all__ = [
    "generate_bins",
    "bin_budgets",
    "texture_level",
    "texture_level_patches",
    "representativeness_scores",
    "zscore",
    "importance_scores",
    "sample_from_bins",
    "budget_from_ratio",
    "dq_select",
    "adq_select",
]


# --------------------------------------------------------------------------------------------- bins

def generate_bins(features: Features, labels, num_bins: int, *, lam: float = 1.0,
                  progress: bool = False) -> list[torch.Tensor]:
    """DQ bin generation: split every class into ``num_bins`` = K bins by repeated GraphCut.

    For each class c (ascending label order) with n_c samples, bin k < K−1 is a
    :func:`~dscore.select.graphcut` selection of ⌊n_c/K⌋ samples whose ground set is the class
    samples not in bins 0..k−1; bin K−1 takes the rest (ascending index order). Returns K int64
    tensors of global indices on the features' device; bin k is the concatenation of every class's
    k-th part (classes ascending, each part in pick order). The bins are disjoint and cover all rows.

    ``features``: (N, d) tensor or :class:`~dscore.features.GradientFeatures`; ``labels``: (N,) ints.
    Requires 1 <= K <= the smallest class size. Time O(Σ_c n_c²·d / 2), memory O(N·d).
    """
    features = _check_features(features)
    n = _num_rows(features)
    device = features.device
    labels = _check_labels(labels, n).to(device)
    lam = check_float("lam", lam, low=-math.inf, high=math.inf, low_open=True, high_open=True)
    if n == 0:
        raise ValueError("features is empty; generate_bins needs at least one sample")
    classes, counts = torch.unique(labels, return_counts=True)
    smallest = int(counts.argmin())
    min_size = int(counts[smallest])
    if isinstance(num_bins, bool) or not isinstance(num_bins, int) and not hasattr(num_bins, "__index__"):
        raise ValueError(f"num_bins={num_bins!r} must be an integer")
    num_bins = int(num_bins)
    if not 1 <= num_bins <= min_size:
        raise ValueError(f"num_bins={num_bins} is out of range; allowed: 1 <= num_bins <= {min_size} "
                         f"(the smallest class, label {int(classes[smallest])}, has {min_size} samples)")
    parts: list[list[torch.Tensor]] = [[] for _ in range(num_bins)]
    bar = tqdm(total=len(classes) * num_bins, desc="bins", disable=not progress, leave=False)
    for c in classes.tolist():
        members = (labels == c).nonzero().flatten()                  # ascending global indices
        size = members.numel() // num_bins
        remaining = members
        for k in range(num_bins - 1):
            local = _graphcut(_CosineOracle(_subset_rows(features, remaining)), remaining.numel(), size, lam,
                              device, False)
            parts[k].append(remaining[local])
            keep = torch.ones(remaining.numel(), dtype=torch.bool, device=device)
            keep[local] = False
            remaining = remaining[keep]
            bar.update(1)
        parts[num_bins - 1].append(remaining)
        bar.update(1)
    bar.close()
    return [torch.cat(p) for p in parts]


# ------------------------------------------------------------------------------------------ budgets

def _int_vector(name: str, values) -> torch.Tensor:
    t = torch.as_tensor(values)
    if t.dim() != 1 or (t.numel() and (t.is_floating_point() or t.is_complex() or t.dtype == torch.bool)):
        raise ValueError(f"{name} must be a 1-D sequence of integers, got {values!r}")
    t = t.to(device="cpu", dtype=torch.long)
    if t.numel() and int(t.min()) < 0:
        raise ValueError(f"{name}={t.tolist()} has a negative entry; allowed: every entry >= 0")
    return t


def bin_budgets(bin_sizes, budget: int, importance=None, *, beta: float = 0.0) -> torch.Tensor:
    """ADQ per-bin budgets; β = 0 gives DQ's proportional split. Returns an int64 (K,) CPU tensor.

    With bin sizes N(n), total budget M and ``Î = softmax(importance)`` over the K bins:
    ``r_n = β·Î_n + (1−β)·N(n)/Σ_m N(m)``, ``q_n = min(⌊r_n·M⌋, N(n))``; then the remaining
    ``M − Σq`` units go one at a time to the bin with the largest ``r_n·M − q_n`` among bins with
    room (``q_n < N(n)``), ties to the lowest bin index. Hence Σq = M and q_n <= N(n) exactly.

    The one-at-a-time hand-out is done in one vectorised pass: bin n's j-th extra unit has key
    ``r_n·M − (q_n + j)``, keys fall by one per unit, so the process hands out the ``M − Σq`` largest
    keys (stable sort: equal keys in bin order). For β = 0 (DQ) everything is exact integer arithmetic
    (keys scaled by ΣN), so equal remainders tie exactly and go to the lowest bin; for β > 0 the keys
    are float64 rounded to 1e-9 of a unit before the comparison.

    Raises ValueError for β ∉ [0, 1], M ∉ [0, ΣN], importance missing while β > 0, or an
    importance whose shape is not (K,) or that is not finite.
    """
    sizes = _int_vector("bin_sizes", bin_sizes)
    if sizes.numel() == 0:
        raise ValueError("bin_sizes is empty; at least one bin is required")
    total = int(sizes.sum())
    budget = check_int("budget", budget, low=0, high=total)
    beta = check_float("beta", beta, low=0.0, high=1.0)
    k = sizes.numel()
    if importance is None:
        if beta > 0:
            raise ValueError(f"importance is required when beta={beta} > 0 (beta=0 needs none)")
        weights = torch.zeros(k, dtype=torch.float64)
    else:
        imp = torch.as_tensor(importance, dtype=torch.float64).cpu()
        if imp.shape != (k,):
            raise ValueError(f"importance has shape {tuple(imp.shape)} but there are {k} bins; expected shape ({k},)")
        if not bool(torch.isfinite(imp).all()):
            raise ValueError(f"importance={imp.tolist()} must be finite")
        weights = torch.softmax(imp, dim=0)
    if budget == 0:
        return torch.zeros(k, dtype=torch.long)
    if beta == 0.0:
        # DQ: exact integer arithmetic, r_n·M = N(n)·M/ΣN, so equal remainders really are equal and the
        # tie rule (lowest bin index) is honoured.
        numer = sizes * budget                                          # r_n·M·ΣN
        quota = torch.minimum(numer // total, sizes)
        scaled_keys = numer                                             # key·ΣN = numer − q·ΣN
        unit = total
    else:
        scaled = (beta * budget) * weights + (1.0 - beta) * (sizes.double() * budget / total)    # r_n·M
        quota = torch.minimum(torch.floor(scaled).long(), sizes)
        while int(quota.sum()) > budget:    # only reachable through round-off in r_n·M; take from the smallest key
            key = (scaled - quota.double()).masked_fill(quota == 0, math.inf)
            drop = (key.numel() - 1) - int(torch.argmin(key.flip(0)))
            quota[drop] -= 1
        # keys rounded to 1e-9 of a unit so that round-off cannot break an exact tie
        scaled_keys = torch.round(scaled * 1e9).long()
        unit = 10**9
    left = budget - int(quota.sum())
    if left > 0:
        slots = torch.minimum(sizes - quota, torch.full_like(sizes, left))
        owner = torch.repeat_interleave(torch.arange(k), slots)
        start = torch.cumsum(slots, 0) - slots
        extra = torch.arange(owner.numel()) - start[owner]
        keys = scaled_keys[owner] - (quota[owner] + extra) * unit
        order = torch.sort(keys, descending=True, stable=True).indices[:left]
        quota += torch.bincount(owner[order], minlength=k)
    return quota


# ---------------------------------------------------------------------------------- texture level

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


# ------------------------------------------------------------------------------------------ scores

def zscore(x) -> torch.Tensor:
    """Standardise a 1-D score vector: (x − mean) / std with the population std (ddof = 0).

    A constant vector (all deviations within float round-off of zero) maps to zeros, never NaN.
    Returns float64 on the input's device.
    """
    x = torch.as_tensor(x, dtype=torch.float64)
    if x.dim() != 1 or x.numel() == 0:
        raise ValueError(f"zscore expects a non-empty 1-D vector, got shape {tuple(x.shape)}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"zscore expects finite values, got {x.tolist()}")
    dev = x - x.mean()
    scale = float(x.abs().max())
    if float(dev.abs().max()) <= 16 * torch.finfo(torch.float64).eps * scale:
        return torch.zeros_like(x)
    return dev / dev.pow(2).mean().sqrt()


def importance_scores(rs, ds) -> torch.Tensor:
    """ADQ importance per bin: ``IS = z(RS) + z(DS)`` (population z-scores over bins). (K,) float64."""
    rs = torch.as_tensor(rs, dtype=torch.float64)
    ds = torch.as_tensor(ds, dtype=torch.float64)
    if rs.shape != ds.shape:
        raise ValueError(f"rs has shape {tuple(rs.shape)} but ds has {tuple(ds.shape)}; one value per bin each")
    return zscore(rs) + zscore(ds.to(rs.device))


# ----------------------------------------------------------------------------------------- sampling

def check_bins(bins, n: int, *, min_size: int = 0, distinct: bool = False) -> list[torch.Tensor]:
    """Validate a list of 1-D integer index tensors into a set of ``n`` items; returns them as int64.

    ``min_size``: fewest members a bin may have; ``distinct``: reject a bin that lists an index twice.
    """
    if isinstance(bins, torch.Tensor) or not isinstance(bins, Sequence) or len(bins) == 0:
        raise ValueError("bins must be a non-empty list of 1-D index tensors")
    out = []
    for k, b in enumerate(bins):
        b = torch.as_tensor(b)
        if b.dim() != 1 or (b.numel() and (b.is_floating_point() or b.dtype == torch.bool)):
            raise ValueError(f"bin {k} must be a 1-D tensor of integer indices, got dtype {b.dtype} shape {tuple(b.shape)}")
        b = b.long()
        if b.numel() < min_size:
            raise ValueError(f"bin {k} has {b.numel()} member(s); allowed: at least {min_size}")
        if b.numel() and (int(b.min()) < 0 or int(b.max()) >= n):
            raise ValueError(f"bin {k} has indices outside [0, {n}); allowed: 0 <= index < {n}")
        if distinct and torch.unique(b).numel() != b.numel():
            raise ValueError(f"bin {k} lists an index twice; bin members must be distinct")
        out.append(b)
    return out


def sample_from_bins(bins: Sequence[torch.Tensor], labels, budgets, *, seed: int = 0) -> torch.Tensor:
    """Class-stratified uniform sampling of ``budgets[k]`` items from every bin k.

    Inside bin k its budget is split over the classes present in proportion to their counts with the
    rule of :func:`bin_budgets` (β = 0: floors, then largest remainders, ties to the smaller label,
    never more than a class holds); each (bin, class) group is then sampled uniformly without
    replacement. One seeded stream of random keys over all items (in bin order) drives every group, so
    the result depends only on (bins, labels, budgets, seed). Returns the sorted global indices
    (int64, on the labels' device). Time O(Σ|bins| log Σ|bins|).
    """
    labels = torch.as_tensor(labels)
    labels = _check_labels(labels, labels.shape[0] if labels.dim() == 1 else -1)
    bins = check_bins(bins, labels.shape[0])
    budgets = _int_vector("budgets", budgets)
    seed = check_int("seed", seed, low=0)
    if budgets.numel() != len(bins):
        raise ValueError(f"budgets has {budgets.numel()} entries but there are {len(bins)} bins")
    sizes = [b.numel() for b in bins]
    for k, (q, s) in enumerate(zip(budgets.tolist(), sizes)):
        if q > s:
            raise ValueError(f"budgets[{k}]={q} exceeds bin {k}'s size {s}; allowed: 0 <= budget <= {s}")
    items = torch.cat([b.cpu() for b in bins])
    if torch.unique(items).numel() != items.numel():
        raise ValueError("bins overlap; every index may appear in at most one bin")
    item_labels = labels.cpu()[items]
    group = torch.empty(items.numel(), dtype=torch.long)
    quotas, offset, pos = [], 0, 0
    for k, s in enumerate(sizes):
        classes, inverse, counts = torch.unique(item_labels[pos : pos + s], return_inverse=True, return_counts=True)
        group[pos : pos + s] = inverse + offset
        if s:
            quotas.append(bin_budgets(counts, int(budgets[k])))
        offset += classes.numel()
        pos += s
    if not quotas:
        return torch.zeros(0, dtype=torch.long, device=labels.device)
    quota = torch.cat(quotas)
    keys = torch.rand(items.numel(), generator=make_generator(seed), dtype=torch.float64)
    order = torch.argsort(keys, stable=True)
    order = order[torch.argsort(group[order], stable=True)]                 # by group, random inside
    group_counts = torch.bincount(group, minlength=quota.numel())
    group_start = torch.cumsum(group_counts, 0) - group_counts
    rank = torch.arange(items.numel()) - group_start[group[order]]
    chosen = items[order[rank < quota[group[order]]]]
    return chosen.sort().values.to(labels.device)


def budget_from_ratio(ratio: float, n: int) -> int:
    """Total budget ``M = round(ratio·n)`` (halves round up) for a keep ratio in (0, 1]; M >= 1 required."""
    ratio = check_float("ratio", ratio, low=0.0, high=1.0, low_open=True)
    n = check_int("n", n, low=0)
    m = math.floor(ratio * n + 0.5)
    if m < 1:
        raise ValueError(f"ratio={ratio} keeps round({ratio}·{n}) = 0 samples; allowed: ratio >= {0.5 / max(n, 1):.3g}")
    return min(m, n)


def dq_select(features: Features, labels, ratio: float, *, num_bins: int = 10, lam: float = 1.0, seed: int = 0,
              progress: bool = False) -> torch.Tensor:
    """Dataset Quantization selection: GraphCut bins, then the same fraction from every bin.

    ``M = round(ratio·N)`` split over bins by :func:`bin_budgets` with β = 0 (proportional), then
    :func:`sample_from_bins` with ``seed``. Returns sorted global indices (int64).
    """
    check_float("ratio", ratio, low=0.0, high=1.0, low_open=True)
    if isinstance(features, np.ndarray):
        features = torch.from_numpy(features)
    if not isinstance(features, (torch.Tensor, GradientFeatures)):
        raise ValueError(f"features must be a tensor (N, d) or GradientFeatures, got {type(features).__name__}")
    budget = budget_from_ratio(ratio, _num_rows(features))
    seed = check_int("seed", seed, low=0)
    bins = generate_bins(features, labels, num_bins, lam=lam, progress=progress)
    budgets = bin_budgets([b.numel() for b in bins], budget)
    return sample_from_bins(bins, labels, budgets, seed=seed)


def adq_select(bins: Sequence[torch.Tensor], labels, ratio: float, importance, *, beta: float = 0.6,
               temperature: float = 1.0, seed: int = 0, return_budgets: bool = False):
    """Adaptive Dataset Quantization selection from precomputed bins.

    ``M = round(ratio·Σ|bins|)``; per-bin budgets ``bin_budgets(sizes, M, importance / temperature,
    beta=beta)``; then class-stratified uniform sampling inside each bin with ``seed``. β = 0 gives
    exactly :func:`dq_select`'s result for the same bins and seed. Returns sorted global indices, or
    ``(indices, budgets)`` when ``return_budgets``.
    """
    labels = torch.as_tensor(labels)
    bins = check_bins(bins, labels.shape[0] if labels.dim() == 1 else 0)
    temperature = check_float("temperature", temperature, low=0.0, high=math.inf, low_open=True, high_open=True)
    sizes = [b.numel() for b in bins]
    budget = budget_from_ratio(ratio, sum(sizes))
    if importance is None:
        raise ValueError("importance is required for adq_select (use beta=0 to ignore it)")
    importance = torch.as_tensor(importance, dtype=torch.float64).cpu() / temperature
    budgets = bin_budgets(sizes, budget, importance, beta=beta)
    chosen = sample_from_bins(bins, labels, budgets, seed=seed)
    return (chosen, budgets) if return_budgets else chosen
