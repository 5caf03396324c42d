"""DQ bins: split every class into K disjoint bins by repeated GraphCut (DQ's construction: bin k is a GraphCut
selection of ⌊n_c/K⌋ samples of what bins 0..k−1 left, the last bin takes the rest)."""
from __future__ import annotations

import math
from typing import Sequence

import torch

from .. import distributed as dist_utils
from ..select import graphcut_order
from ..select.greedy import CosineOracle, Features, check_features, check_labels, num_rows, subset_rows
from ..utils import check_float, tqdm

__all__ = ["generate_bins", "check_bins"]


def generate_bins(features: Features, labels, num_bins: int, *, lam: float = 1.0,
                  progress: bool = False, distributed: bool = True) -> list[torch.Tensor]:
    """DQ bin generation: split every class into ``num_bins`` = K bins by repeated GraphCut.

    For each class c (ascending label order) with n_c samples, bin k < K−1 is a
    :func:`~dscore.select.graphcut` selection of ⌊n_c/K⌋ samples whose ground set is the class
    samples not in bins 0..k−1; bin K−1 takes the rest (ascending index order). Returns K int64
    tensors of global indices on the features' device; bin k is the concatenation of every class's
    k-th part (classes ascending, each part in pick order). The bins are disjoint and cover all rows.

    ``features``: (N, d) tensor or :class:`~dscore.features.GradientFeatures`; ``labels``: (N,) ints.
    Requires 1 <= K <= the smallest class size. Time O(Σ_c n_c²·d / 2), memory O(N·d).

    Distributed: under an initialised ``torch.distributed`` process group with several processes (and
    ``distributed=True``), the classes are dealt to the ranks by their cost n_c²
    (:func:`dscore.distributed.balanced_assignment`), every rank bins its own classes and the per-class parts
    are all-gathered and assembled in ascending class order — every rank returns exactly the bins of one
    process (GraphCut is deterministic per class). Every rank must pass the same features and labels.
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
    sharded = distributed and dist_utils.is_distributed()
    if sharded:
        owner = dist_utils.balanced_assignment([float(c) ** 2 for c in counts.tolist()], dist_utils.world_size())
        mine = [i for i, r in enumerate(owner) if r == dist_utils.rank()]
    else:
        mine = list(range(len(classes)))
    per_class: dict[int, list[torch.Tensor]] = {}
    bar = tqdm(total=len(mine) * num_bins, desc="bins", disable=not progress, leave=False)
    for i in mine:
        per_class[i] = _class_parts(features, (labels == classes[i]).nonzero().flatten(), num_bins, lam, device, bar)
    bar.close()
    if sharded:   # every rank's classes, assembled in ascending class order whoever computed them
        gathered = dist_utils.gather_objects({i: [p.cpu() for p in ps] for i, ps in per_class.items()})
        per_class = {i: [p.to(device) for p in ps] for part in gathered for i, ps in part.items()}
    return [torch.cat([per_class[i][k] for i in range(len(classes))]) for k in range(num_bins)]


def _class_parts(features: Features, members: torch.Tensor, num_bins: int, lam: float, device, bar
                 ) -> list[torch.Tensor]:
    """One class's K parts: K−1 GraphCut selections of ⌊n_c/K⌋ from what is left, then the rest."""
    size = members.numel() // num_bins
    remaining = members                                               # ascending global indices
    parts = []
    for _ in range(num_bins - 1):
        local = graphcut_order(CosineOracle(subset_rows(features, remaining)), remaining.numel(), size, lam,
                               device, False)
        parts.append(remaining[local])
        keep = torch.ones(remaining.numel(), dtype=torch.bool, device=device)
        keep[local] = False
        remaining = remaining[keep]
        bar.update(1)
    parts.append(remaining)
    bar.update(1)
    return parts



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


