"""DQ bins: split every class into K disjoint bins by repeated GraphCut (DESIGN.md §Bins)."""
from __future__ import annotations

import math
from typing import Sequence

import torch
from tqdm.auto import tqdm

from ..select import Features, CosineOracle, check_features, check_labels, graphcut_order, num_rows, subset_rows
from ..utils import check_float

__all__ = ["generate_bins", "check_bins"]


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
    features = check_features(features)
    n = num_rows(features)
    device = features.device
    labels = check_labels(labels, n).to(device)
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
            local = graphcut_order(CosineOracle(subset_rows(features, remaining)), remaining.numel(), size, lam,
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


