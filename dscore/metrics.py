"""Diagnostics for selection and distillation: MMD, gradient/feature differences, feature
migration and t-SNE.

All functions take torch tensors on any device and return Python floats (scalar metrics) or
tensors on the input's device (curves), except :func:`tsne`, which runs scikit-learn on the
CPU and returns a CPU tensor.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np
import torch

from .utils import check_float, check_int

__all__ = ["mmd2", "mmd2_multi", "median_bandwidth", "gradient_difference", "feature_difference",
           "feature_migration", "tsne"]


def _check_samples(x, name: str, min_rows: int = 1) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not torch.is_tensor(x):
        raise ValueError(f"{name} must be a torch.Tensor (or NumPy array) of shape (N, D), got {type(x).__name__}")
    if x.dim() != 2:
        raise ValueError(f"{name} must have shape (N, D), got shape {tuple(x.shape)}")
    if x.shape[0] < min_rows:
        raise ValueError(f"{name} has {x.shape[0]} rows; at least {min_rows} are needed")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values")
    return x


def _kernel_sums(a: torch.Tensor, b: torch.Tensor, inv_two_sigma2: torch.Tensor, chunk_size: int) -> torch.Tensor:
    """Σ_ij exp(−‖a_i − b_j‖² / (2σ²)) for every σ at once → (S,) float64.

    Works in float64, one (chunk, M) distance block at a time."""
    b_sq = b.pow(2).sum(1)
    total = torch.zeros_like(inv_two_sigma2)
    for start in range(0, a.shape[0], chunk_size):
        ab = a[start:start + chunk_size]
        d2 = torch.addmm(b_sq.unsqueeze(0), ab, b.T, alpha=-2.0).add_(ab.pow(2).sum(1, keepdim=True)).clamp_(min=0)
        total += torch.exp(-d2.unsqueeze(0) * inv_two_sigma2.view(-1, 1, 1)).sum(dim=(1, 2))
    return total


def mmd2_multi(x: torch.Tensor, y: torch.Tensor, sigmas: Sequence[float], *, chunk_size: int = 1024,
               unbiased: bool = True) -> float:
    """Sum over bandwidths of the Gaussian-kernel MMD² (see :func:`mmd2`)."""
    min_rows = 2 if unbiased else 1
    if torch.is_tensor(x) and torch.is_tensor(y) and x.device != y.device:
        raise ValueError(f"x is on {x.device} but y is on {y.device}; put both on one device")
    x = _check_samples(x, "x", min_rows)
    y = _check_samples(y, "y", min_rows)
    if x.shape[1] != y.shape[1]:
        raise ValueError(f"x has dimension {x.shape[1]} but y has dimension {y.shape[1]}; they must match")
    sigmas = [check_float("sigma", s, low=0.0, low_open=True) for s in sigmas]
    if not sigmas:
        raise ValueError("sigmas is empty; give at least one bandwidth")
    chunk_size = check_int("chunk_size", chunk_size, low=1)
    x = x.detach().to(torch.float64)
    y = y.detach().to(torch.float64)
    m, n = x.shape[0], y.shape[0]
    inv = torch.tensor([1.0 / (2.0 * s * s) for s in sigmas], dtype=torch.float64, device=x.device)
    if unbiased:
        # k(a, a) = 1 exactly, so removing the diagonal from a full sum subtracts the row count
        kxx = (_kernel_sums(x, x, inv, chunk_size) - m) / (m * (m - 1))
        kyy = (_kernel_sums(y, y, inv, chunk_size) - n) / (n * (n - 1))
    else:
        kxx = _kernel_sums(x, x, inv, chunk_size) / (m * m)
        kyy = _kernel_sums(y, y, inv, chunk_size) / (n * n)
    kxy = _kernel_sums(x, y, inv, chunk_size) / (m * n)
    return float((kxx + kyy - 2.0 * kxy).sum())


def mmd2(x: torch.Tensor, y: torch.Tensor, sigma: float, *, chunk_size: int = 1024, unbiased: bool = True) -> float:
    """Unbiased squared maximum mean discrepancy with the Gaussian kernel.

    ``k(a, b) = exp(−‖a − b‖² / (2σ²))``;
    ``MMD² = Σ_{i≠j} k(x_i,x_j)/(m(m−1)) + Σ_{i≠j} k(y_i,y_j)/(n(n−1)) − 2 Σ_ij k(x_i,y_j)/(mn)``.
    Shapes: x (m, D), y (n, D) with m, n >= 2. The estimate can be negative: it is, for example,
    systematically below 0 for a batch whose members are more spread out than an i.i.d. draw (such
    as DREAM's cluster-centre batches). ``unbiased=False`` gives the biased V-statistic
    ``‖μ̂_x − μ̂_y‖²`` in the kernel's feature space (diagonals included; >= 0; m, n >= 1).
    Computed in float64, in (chunk_size, ·) blocks: time O((m+n)²·D), memory O(chunk_size·(m+n)).
    """
    return mmd2_multi(x, y, [sigma], chunk_size=chunk_size, unbiased=unbiased)


def median_bandwidth(x: torch.Tensor, y: torch.Tensor | None = None, *, max_points: int = 1000, seed: int = 0) -> float:
    """Median heuristic: σ = median Euclidean distance between distinct rows of the pooled sample.

    At most ``max_points`` pooled rows are used (a seeded random subset), so memory is
    O(max_points²). Returns a float > 0 (falls back to 1.0 if all points coincide).
    """
    x = _check_samples(x, "x", 1)
    pooled = x
    if y is not None:
        y = _check_samples(y, "y", 1)
        if x.shape[1] != y.shape[1]:
            raise ValueError(f"x has dimension {x.shape[1]} but y has dimension {y.shape[1]}; they must match")
        pooled = torch.cat([x, y.to(x.device)])
    max_points = check_int("max_points", max_points, low=2)
    if pooled.shape[0] < 2:
        raise ValueError("median_bandwidth needs at least 2 rows in x and y together")
    if pooled.shape[0] > max_points:
        gen = torch.Generator().manual_seed(check_int("seed", seed, low=0))
        pooled = pooled[torch.randperm(pooled.shape[0], generator=gen)[:max_points].to(pooled.device)]
    p = pooled.detach().to(torch.float64)
    d = torch.cdist(p, p)
    iu = torch.triu_indices(p.shape[0], p.shape[0], offset=1, device=p.device)
    med = float(d[iu[0], iu[1]].median())
    return med if med > 0 else 1.0


def _check_grad_lists(grads_a, grads_b) -> None:
    if len(grads_a) != len(grads_b):
        raise ValueError(f"gradient lists differ in length: {len(grads_a)} vs {len(grads_b)}; they must align per layer")
    for i, (ga, gb) in enumerate(zip(grads_a, grads_b)):
        if ga.shape != gb.shape:
            raise ValueError(f"layer {i}: gradient shapes {tuple(ga.shape)} and {tuple(gb.shape)} differ")


def gradient_difference(grads_a: Sequence[torch.Tensor], grads_b: Sequence[torch.Tensor]) -> float:
    """Σ over layers of ‖g_a − g_b‖² (squared Frobenius norm), as a float.

    The DREAM+ "gradient difference" curve: ``grads_a`` are the parameter gradients of the loss
    on a real batch and ``grads_b`` those on the synthetic images, aligned layer by layer.
    """
    _check_grad_lists(grads_a, grads_b)
    if len(grads_a) == 0:
        raise ValueError("gradient lists are empty; give at least one layer")
    return float(sum((ga.detach().to(torch.float64) - gb.detach().to(torch.float64)).pow(2).sum()
                     for ga, gb in zip(grads_a, grads_b)))


def feature_difference(features_a: torch.Tensor, features_b: torch.Tensor) -> float:
    """‖mean(features_a) − mean(features_b)‖², as a float (the DM distance between two sets).

    Shapes: (N_a, D) and (N_b, D)."""
    fa = _check_samples(features_a, "features_a", 1)
    fb = _check_samples(features_b, "features_b", 1)
    if fa.shape[1] != fb.shape[1]:
        raise ValueError(f"features_a has dimension {fa.shape[1]} but features_b has {fb.shape[1]}; they must match")
    diff = fa.detach().to(torch.float64).mean(0) - fb.detach().to(torch.float64).to(fa.device).mean(0)
    return float(diff.pow(2).sum())


def feature_migration(snapshots: Sequence[torch.Tensor]) -> torch.Tensor:
    """Mean L2 displacement of each row between consecutive snapshots.

    ``snapshots``: T >= 2 tensors of the same shape (N, D) — embeddings of the same synthetic
    images saved at T moments. Returns (T−1,) float tensor: entry t is
    ``mean_i ‖s_{t+1,i} − s_{t,i}‖``. Time O(T·N·D).
    """
    if len(snapshots) < 2:
        raise ValueError(f"feature_migration needs at least 2 snapshots, got {len(snapshots)}")
    first = _check_samples(snapshots[0], "snapshots[0]", 1)
    for t, s in enumerate(snapshots):
        if not torch.is_tensor(s) or s.shape != first.shape:
            shape = tuple(s.shape) if torch.is_tensor(s) else type(s).__name__
            raise ValueError(f"snapshots[{t}] has shape {shape}; all snapshots must have shape {tuple(first.shape)}")
    stack = torch.stack([s.detach().to(device=first.device, dtype=torch.float32) for s in snapshots])  # (T, N, D)
    return (stack[1:] - stack[:-1]).norm(dim=2).mean(dim=1)


def tsne(x: torch.Tensor, *, seed: int = 0, perplexity: float = 30.0, max_iter: int = 1000) -> torch.Tensor:
    """2-D t-SNE embedding of the rows of x (scikit-learn, PCA init, automatic learning rate).

    Shapes: (N, D) → (N, 2) float32 on the CPU. Requires 0 < perplexity < N. Time about
    O(max_iter·N·log N) (Barnes–Hut); use a few thousand points at most.
    """
    from sklearn.manifold import TSNE

    x = _check_samples(x, "x", 2)
    perplexity = check_float("perplexity", perplexity, low=0.0, low_open=True)
    if perplexity >= x.shape[0]:
        raise ValueError(f"perplexity={perplexity} must be smaller than the number of points N={x.shape[0]}")
    max_iter = check_int("max_iter", max_iter, low=250)
    model = TSNE(n_components=2, perplexity=perplexity, init="pca", learning_rate="auto",
                 random_state=check_int("seed", seed, low=0), max_iter=max_iter)
    out = model.fit_transform(x.detach().cpu().to(torch.float32).numpy())
    return torch.from_numpy(out).to(torch.float32)
