"""k-means in torch: seeded k-means++ seeding, chunked Lloyd iterations, warm starts.

Used by DREAM/DREAM+ (representative real batches and cluster-centre initialisation) and
anywhere else the project needs sub-clusters. Everything runs on the device of the input;
memory is bounded by ``chunk_size × k`` distance blocks — never an N×N (or N×k for
N > chunk_size) matrix.

Conventions: ``x`` is a 2-D float tensor (N, d); ``centroids`` is (k, d) with the same
dtype and device; labels are int64 (N,). Squared distances are computed as
``‖x‖² − 2·x·c + ‖c‖²`` clamped at 0.

Example::

    centroids, labels = kmeans(embeddings, k=10, seed=0)
    reps = nearest_to_centroids(embeddings, centroids, n=1)[:, 0]   # one sample per cluster
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from .utils import check_choice, check_float, check_int

__all__ = ["kmeans", "fit_kmeans", "kmeans_plusplus", "assign", "nearest_to_centroids", "KMeans", "KMeansResult", "ALGORITHMS", "ELKAN_MAX_BOUNDS"]


def _check_points(x, name: str = "x") -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(x)
    if not torch.is_tensor(x):
        raise ValueError(f"{name} must be a torch.Tensor (or NumPy array) of shape (N, d), got {type(x).__name__}")
    if x.dim() != 2 or x.shape[0] == 0 or x.shape[1] == 0:
        raise ValueError(f"{name} must have shape (N, d) with N, d >= 1, got shape {tuple(x.shape)}")
    if not x.is_floating_point():
        raise ValueError(f"{name} must be a floating-point tensor, got dtype {x.dtype}")
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or infinite values; only finite points can be clustered")
    return x


def _check_centroids(centroids, x: torch.Tensor, name: str = "centroids", k: int | None = None) -> torch.Tensor:
    centroids = _check_points(centroids, name)
    if centroids.shape[1] != x.shape[1]:
        raise ValueError(f"{name} has dimension {centroids.shape[1]} but x has dimension {x.shape[1]}; they must match")
    if k is not None and centroids.shape[0] != k:
        raise ValueError(f"{name} has {centroids.shape[0]} rows but k={k}; a warm start needs exactly k centroids")
    return centroids.to(device=x.device, dtype=x.dtype)


def _sq_dist_block(xb: torch.Tensor, xb_sq: torch.Tensor, c: torch.Tensor, c_sq: torch.Tensor) -> torch.Tensor:
    """(b, k) squared distances between the rows of ``xb`` and ``c`` (clamped at 0)."""
    d = torch.addmm(c_sq.unsqueeze(0), xb, c.T, alpha=-2.0)
    return d.add_(xb_sq.unsqueeze(1)).clamp_(min=0)


def assign(x: torch.Tensor, centroids: torch.Tensor, chunk_size: int = 4096) -> tuple[torch.Tensor, torch.Tensor]:
    """Nearest centroid of every point.

    Shapes: x (N, d), centroids (k, d) → labels (N,) int64, sq_dist (N,) squared distance to
    that centroid (x's dtype). Ties go to the lowest centroid index. Time O(N·k·d), memory
    O(chunk_size·k).
    """
    x = _check_points(x)
    centroids = _check_centroids(centroids, x)
    chunk_size = check_int("chunk_size", chunk_size, low=1)
    return _assign(x, centroids, chunk_size)


def _assign(x: torch.Tensor, centroids: torch.Tensor, chunk_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    c_sq = centroids.pow(2).sum(1)
    labels = torch.empty(x.shape[0], dtype=torch.long, device=x.device)
    sq_dist = torch.empty(x.shape[0], dtype=x.dtype, device=x.device)
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start:start + chunk_size]
        d = _sq_dist_block(xb, xb.pow(2).sum(1), centroids, c_sq)
        best, idx = d.min(dim=1)
        labels[start:start + chunk_size] = idx
        sq_dist[start:start + chunk_size] = best
    return labels, sq_dist


def nearest_to_centroids(x: torch.Tensor, centroids: torch.Tensor, n: int = 1, chunk_size: int = 4096) -> torch.Tensor:
    """Indices of the ``n`` samples nearest to each centroid.

    Shapes: x (N, d), centroids (k, d) → (k, n) int64, each row sorted by increasing distance;
    the ``n`` indices of one row are distinct (a sample may appear in several rows). Ties go to
    the lowest sample index. Time O(N·k·d + N·k·log(n + chunk)), memory O(k·(chunk_size + n)).
    """
    x = _check_points(x)
    centroids = _check_centroids(centroids, x)
    n = check_int("n", n, low=1, high=x.shape[0])
    chunk_size = check_int("chunk_size", chunk_size, low=1)
    k = centroids.shape[0]
    c_sq = centroids.pow(2).sum(1)
    if n == 1:      # argmin per centroid: the first minimum of a chunk, kept unless a later chunk is strictly closer
        best_d = torch.full((k,), float("inf"), dtype=x.dtype, device=x.device)
        best_i = torch.zeros(k, dtype=torch.long, device=x.device)
        for start in range(0, x.shape[0], chunk_size):
            xb = x[start:start + chunk_size]
            d, i = _sq_dist_block(xb, xb.pow(2).sum(1), centroids, c_sq).min(dim=0)
            closer = d < best_d
            best_d = torch.where(closer, d, best_d)
            best_i = torch.where(closer, i + start, best_i)
        return best_i.unsqueeze(1)
    best_d = torch.empty(k, 0, dtype=x.dtype, device=x.device)
    best_i = torch.empty(k, 0, dtype=torch.long, device=x.device)
    for start in range(0, x.shape[0], chunk_size):
        xb = x[start:start + chunk_size]
        d = _sq_dist_block(xb, xb.pow(2).sum(1), centroids, c_sq).T            # (k, b)
        idx = torch.arange(start, start + xb.shape[0], device=x.device).expand(k, -1)
        cand_d = torch.cat([best_d, d], dim=1)
        cand_i = torch.cat([best_i, idx], dim=1)
        # stable sort: candidates are kept in increasing index order, so ties keep the lowest index
        order = cand_d.sort(dim=1, stable=True).indices[:, :n]
        best_d = cand_d.gather(1, order)
        best_i = cand_i.gather(1, order)
    return best_i


def kmeans_plusplus(x: torch.Tensor, k: int, *, seed: int = 0, generator: torch.Generator | None = None) -> torch.Tensor:
    """Indices (k,) int64 of k distinct starting points chosen by k-means++ D² sampling.

    The first point is uniform; each next point is drawn with probability proportional to its
    squared distance to the nearest point already chosen. A point already chosen is never
    drawn again; when every remaining D² is 0 (duplicated points), the next index is uniform
    among the not-yet-chosen ones. Randomness: ``generator`` (on x.device) or a fresh one
    seeded with ``seed``. Time O(N·k·d), memory O(N·d) (a centred copy of x). Squared distances
    within float rounding of zero count as exact duplicates.
    """
    x = _check_points(x)
    k = check_int("k", k, low=1, high=x.shape[0])
    if generator is None:
        generator = torch.Generator(device=x.device).manual_seed(check_int("seed", seed, low=0))
    n = x.shape[0]
    xc = x - x.mean(dim=0, keepdim=True)          # translation-invariant; centring reduces cancellation
    xc_sq = xc.pow(2).sum(1)
    # D² below this (relative to the norms) is rounding noise: such points count as duplicates
    noise = 8 * torch.finfo(x.dtype).eps
    chosen = torch.zeros(n, dtype=torch.bool, device=x.device)
    picks = torch.empty(k, dtype=torch.long, device=x.device)
    min_d2 = torch.full((n,), float("inf"), dtype=torch.float64, device=x.device)
    for j in range(k):
        if j == 0:
            weights = torch.ones(n, dtype=torch.float64, device=x.device)
        else:
            weights = min_d2.masked_fill(chosen, 0.0)
            if not bool(weights.sum() > 0):
                weights = (~chosen).to(torch.float64)
        cdf = weights.cumsum(0)
        u = torch.rand(1, generator=generator, device=x.device, dtype=torch.float64) * cdf[-1:]
        # first index whose cdf exceeds u is always a point of positive weight; if rounding made
        # u reach the total, take the last positive-weight point instead
        idx = torch.searchsorted(cdf, u, right=True)
        idx = torch.where(idx >= n, torch.searchsorted(cdf, cdf[-1:], right=False), idx)
        picks[j] = idx[0]
        chosen[idx] = True
        c = xc[idx]                                                            # (1, d)
        c_sq = xc_sq[idx]
        d2 = torch.addmv(xc_sq + c_sq, xc, c[0], alpha=-2.0)
        d2 = torch.where(d2 <= noise * (xc_sq + c_sq), torch.zeros_like(d2), d2)
        min_d2 = torch.minimum(min_d2, d2.to(torch.float64))
    return picks


@dataclass(frozen=True)
class KMeansResult:
    """Outcome of :func:`fit_kmeans`: centroids (k, d), labels (N,), inertia (sum of squared
    distances to the assigned centroid), Lloyd iterations run, and whether the stopping rule fired."""
    centroids: torch.Tensor
    labels: torch.Tensor
    inertia: float
    n_iter: int
    converged: bool


def _cluster_sums(x: torch.Tensor, labels: torch.Tensor, k: int, accumulate_dtype: torch.dtype | None,
                  chunk_size: int, use_matmul: bool | None = None) -> torch.Tensor:
    """(k, d) per-cluster sums of x, deterministic on every device.

    CPU: ``index_add_`` (sequential, float64 by default). CUDA: ``index_add_`` uses atomics whose
    order varies run to run, so the sums are one-hot matrix products over row chunks instead
    (memory O(chunk_size·k), x's dtype by default). ``use_matmul`` overrides the choice."""
    if use_matmul is None:
        use_matmul = x.device.type != "cpu"
    if not use_matmul:
        dtype = accumulate_dtype or torch.float64
        sums = torch.zeros(k, x.shape[1], dtype=dtype, device=x.device)
        for start in range(0, x.shape[0], chunk_size):
            sums.index_add_(0, labels[start:start + chunk_size], x[start:start + chunk_size].to(dtype))
        return sums
    dtype = accumulate_dtype or x.dtype
    sums = torch.zeros(k, x.shape[1], dtype=dtype, device=x.device)
    cluster_ids = torch.arange(k, device=x.device).unsqueeze(1)
    for start in range(0, x.shape[0], chunk_size):
        onehot = (cluster_ids == labels[start:start + chunk_size].unsqueeze(0)).to(dtype)      # (k, b)
        sums += onehot @ x[start:start + chunk_size].to(dtype)
    return sums


def _update_centroids(x: torch.Tensor, labels: torch.Tensor, sq_dist: torch.Tensor, centroids: torch.Tensor,
                      accumulate_dtype: torch.dtype | None, chunk_size: int) -> tuple[torch.Tensor, int]:
    """Means of the assigned points; empty clusters move to the points farthest from their centroid."""
    k = centroids.shape[0]
    sums = _cluster_sums(x, labels, k, accumulate_dtype, chunk_size)
    counts = torch.bincount(labels, minlength=k)
    new = (sums / counts.clamp(min=1).unsqueeze(1).to(sums.dtype)).to(x.dtype)
    empty = counts == 0
    n_empty = int(empty.sum())
    if n_empty:
        # distinct data points, farthest first (stable: ties to the lowest index) — never the origin
        far = sq_dist.sort(descending=True, stable=True).indices[:n_empty]
        new[empty] = x[far]
    return new, n_empty


ALGORITHMS = ("elkan", "lloyd")
#: the "elkan" algorithm keeps k lower bounds per point (float64); above this many bounds it runs "lloyd"
ELKAN_MAX_BOUNDS = 2**25


def _rounding_gamma(x: torch.Tensor) -> float:
    """Worst-case relative rounding bound of the squared-distance expansion in x's dtype: every value
    :func:`_sq_dist_block` returns is within ``gamma·(‖x‖ + ‖c‖)²`` of the exact squared distance (a dot
    product of length d accumulates at most ``d·u`` relative error; three more roundings follow)."""
    u = torch.finfo(x.dtype).eps / 2
    n = x.shape[1] + 4
    return n * u / (1 - n * u)


def _assign_with_bounds(x: torch.Tensor, x_sq: torch.Tensor, centroids: torch.Tensor, chunk_size: int,
                        margin: torch.Tensor, rows: torch.Tensor | None = None
                        ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Nearest centroid of every point of x (or of x[rows]), exactly as :func:`_assign` picks it, with an
    upper bound (n,) on the exact distance to it and lower bounds (n, k) on the exact distances to all
    centroids, float64, given the rounding ``margin`` of the squared distances of those points."""
    c_sq = centroids.pow(2).sum(1)
    n, k = (x.shape[0] if rows is None else rows.shape[0]), centroids.shape[0]
    labels = torch.empty(n, dtype=torch.long, device=x.device)
    upper = torch.empty(n, dtype=torch.float64, device=x.device)
    lower = torch.empty(n, k, dtype=torch.float64, device=x.device)
    for start in range(0, n, chunk_size):
        sl = slice(start, start + chunk_size)
        if rows is None:
            xb, xb_sq = x[sl], x_sq[sl]
        else:
            xb, xb_sq = x[rows[sl]], x_sq[rows[sl]]
        d = _sq_dist_block(xb, xb_sq, centroids, c_sq)
        best, idx = d.min(dim=1)
        labels[sl] = idx
        e = margin[sl]
        upper[sl] = (best.to(torch.float64) + e).sqrt_()
        lower[sl] = (d.to(torch.float64) - e.unsqueeze(1)).clamp_(min=0).sqrt_()
    return labels, upper, lower


def _own_upper(x: torch.Tensor, labels: torch.Tensor, centroids: torch.Tensor, rows: torch.Tensor,
               gamma: float, block: int = 256) -> torch.Tensor:
    """Upper bounds (float64) on the exact distances of x[rows] to their own centroids, from the direct
    difference ``‖x − c‖²`` in x's dtype (relative rounding at most ``gamma``), in small row blocks."""
    out = torch.empty(rows.shape[0], dtype=torch.float64, device=x.device)
    for start in range(0, rows.shape[0], block):
        r = rows[start:start + block]
        diff = x[r] - centroids[labels[r]]
        out[start:start + block] = (diff * diff).sum(1).to(torch.float64)
    return (out * (1 + 2 * gamma)).sqrt_()


def _half_separation(centroids64: torch.Tensor) -> torch.Tensor:
    """Half the distance from every centroid to its nearest other centroid (inf when k = 1), float64,
    rounded down."""
    k = centroids64.shape[0]
    if k == 1:
        return torch.full((1,), float("inf"), dtype=torch.float64, device=centroids64.device)
    sq = centroids64.pow(2).sum(1)
    d = (sq.unsqueeze(0) + sq.unsqueeze(1) - 2.0 * centroids64 @ centroids64.T).clamp_(min=0)
    d.fill_diagonal_(float("inf"))
    # the float64 expansion can be off by ~1e-13 of the norms: subtract that before the square root
    slack = 1e-12 * (sq.unsqueeze(0) + sq.unsqueeze(1))
    return 0.5 * (d - slack).clamp_(min=0).min(dim=1).values.sqrt()


def _fit_lloyd(x: torch.Tensor, centroids: torch.Tensor, iters: int, tol_abs: float,
               accumulate_dtype: torch.dtype | None, chunk_size: int) -> tuple:
    """Plain Lloyd: every iteration computes all N·k distances. Returns (centroids, labels, sq_dist,
    n_iter, converged)."""
    labels, sq_dist = _assign(x, centroids, chunk_size)
    converged = False
    n_iter = 0
    for n_iter in range(1, iters + 1):
        new_centroids, n_empty = _update_centroids(x, labels, sq_dist, centroids, accumulate_dtype, chunk_size)
        shift = float((new_centroids - centroids).pow(2).sum(1).max())
        centroids = new_centroids
        new_labels, sq_dist = _assign(x, centroids, chunk_size)
        unchanged = bool(torch.equal(new_labels, labels))
        labels = new_labels
        if n_empty == 0 and (unchanged or shift <= tol_abs):
            converged = True
            break
    return centroids, labels, sq_dist, n_iter, converged


def _fit_elkan(x: torch.Tensor, centroids: torch.Tensor, iters: int, tol_abs: float,
               accumulate_dtype: torch.dtype | None, chunk_size: int) -> tuple:
    """Lloyd's iterations with Elkan's bounds (2003): an upper bound on each point's distance to its
    centroid and a lower bound on its distance to every centroid, loosened after each update by how
    far the centroids moved. A point whose bounds prove — with a margin covering the float rounding of
    :func:`_sq_dist_block` — that its centroid is still the nearest keeps its label without computing
    its k distances; the others get a full distance row, as in plain Lloyd. On CPU the centroid sums
    are recomputed, in index order, only for the clusters whose members changed. Centroids, labels
    and iteration count are therefore those of :func:`_fit_lloyd` except where a point lies within
    float rounding of two centroids. Same return value as :func:`_fit_lloyd`."""
    k = centroids.shape[0]
    device = x.device
    f64 = torch.float64
    x_sq = x.pow(2).sum(1)
    x_norm = x_sq.to(f64).sqrt()
    gamma = _rounding_gamma(x)
    incremental = device.type == "cpu"           # CPU sums are sequential index_add_ (see _cluster_sums)

    def margin(c: torch.Tensor) -> torch.Tensor:
        """Bound on |computed − exact| squared distance of each point to any of the centroids c."""
        return gamma * (x_norm + float(c.to(f64).norm(dim=1).max())).pow(2)

    e = margin(centroids)
    labels, upper, lower = _assign_with_bounds(x, x_sq, centroids, chunk_size, e)
    sq_dist: torch.Tensor | None = None          # _assign's distances, only when an empty cluster needs them
    sums: torch.Tensor | None = None
    dirty: torch.Tensor | None = None
    converged = False
    n_iter = 0
    for n_iter in range(1, iters + 1):
        counts = torch.bincount(labels, minlength=k)
        if bool((counts == 0).any()):
            # rare: re-seeding an empty cluster needs every point's distance, as plain Lloyd computes it
            labels, sq_dist = _assign(x, centroids, chunk_size)
            new_centroids, n_empty = _update_centroids(x, labels, sq_dist, centroids, accumulate_dtype, chunk_size)
            _, upper, lower = _assign_with_bounds(x, x_sq, centroids, chunk_size, e)
            sums = None
        else:
            n_empty = 0
            if not incremental or sums is None:
                sums = _cluster_sums(x, labels, k, accumulate_dtype, chunk_size)
            elif dirty is not None and dirty.numel():
                is_dirty = torch.zeros(k, dtype=torch.bool, device=device)
                is_dirty[dirty] = True
                members = is_dirty[labels].nonzero().flatten()          # increasing index order
                sums[dirty] = 0
                for start in range(0, members.shape[0], chunk_size):
                    m = members[start:start + chunk_size]
                    sums.index_add_(0, labels[m], x[m].to(sums.dtype))
            new_centroids = (sums / counts.clamp(min=1).unsqueeze(1).to(sums.dtype)).to(x.dtype)
        moved = new_centroids - centroids
        shift = float(moved.pow(2).sum(1).max())
        delta = moved.to(f64).norm(dim=1) * (1 + 1e-9)
        centroids = new_centroids
        c64 = centroids.to(f64)
        e = margin(centroids)
        upper += delta[labels]
        lower -= delta.unsqueeze(0)
        lower.clamp_(min=0)
        others = lower.scatter(1, labels.unsqueeze(1), float("inf")).min(dim=1).values
        bound = torch.maximum(others, _half_separation(c64)[labels])
        check = (bound * bound - upper * upper <= 2 * e).nonzero().flatten()
        if check.numel():                        # tighten the upper bounds with the exact distances
            upper[check] = _own_upper(x, labels, centroids, check, gamma)
            check = check[bound[check] * bound[check] - upper[check] * upper[check] <= 2 * e[check]]
        changed = check[:0]
        if check.numel():                        # undecided points: a full distance row each
            new_labels, upper[check], lower[check] = _assign_with_bounds(x, x_sq, centroids, chunk_size, e[check],
                                                                         rows=check)
            moved_pts = new_labels != labels[check]
            changed = check[moved_pts]
            if changed.numel():
                dirty = torch.cat([labels[changed], new_labels[moved_pts]]).unique()
                labels = labels.clone()
                labels[changed] = new_labels[moved_pts]
        if not changed.numel():
            dirty = changed
        if n_empty == 0 and (not changed.numel() or shift <= tol_abs):
            converged = True
            break
    # the returned labels and distances are those of a full assignment to the returned centroids
    labels, sq_dist = _assign(x, centroids, chunk_size)
    return centroids, labels, sq_dist, n_iter, converged


def fit_kmeans(x: torch.Tensor, k: int, *, iters: int = 100, tol: float = 1e-4, seed: int = 0,
               init: torch.Tensor | None = None, chunk_size: int = 4096,
               accumulate_dtype: torch.dtype | None = None, algorithm: str = "elkan") -> KMeansResult:
    """Lloyd's k-means with k-means++ seeding (or a warm start) — the full result.

    Args:
        x: (N, d) finite float points.
        k: number of clusters, 1 <= k <= N.
        iters: maximum Lloyd iterations (0 = seeding + one assignment only).
        tol: stop when the largest squared centroid shift is <= ``tol × mean per-feature variance
            of x`` (scale-free, as scikit-learn's tolerance), or when no label changes.
        seed: seeds the k-means++ draw (ignored when ``init`` is given).
        init: optional warm start, (k, d) centroids (e.g. from the previous re-clustering).
        chunk_size: rows per distance block; peak extra memory O(chunk_size·k).
        accumulate_dtype: dtype of the centroid sums; None = float64 on CPU, x's dtype on CUDA.
        algorithm: ``"lloyd"`` computes all N·k distances at every iteration; ``"elkan"`` (default)
            runs the same iterations but skips the points whose distance bounds (Elkan 2003) prove
            that their centroid is still the nearest, with a margin covering float rounding, and on
            CPU re-sums only the clusters whose members changed. Both give the same centroids, labels
            and iteration count except where a point lies within float rounding of two centroids;
            ``"elkan"`` is several times faster once most points have settled. It keeps N·k float64
            bounds; above :data:`ELKAN_MAX_BOUNDS` of them it runs ``"lloyd"``.

    An iteration that had to re-seed an empty cluster never counts as converged. The returned
    labels are the assignment to the returned centroids. Time O(iters·N·k·d) at worst; deterministic
    for a seed on a given device.
    """
    x = _check_points(x)
    k = check_int("k", k, low=1, high=x.shape[0])
    iters = check_int("iters", iters, low=0)
    tol = check_float("tol", tol, low=0.0)
    seed = check_int("seed", seed, low=0)
    chunk_size = check_int("chunk_size", chunk_size, low=1)
    check_choice("algorithm", algorithm, ALGORITHMS)
    if init is None:
        centroids = x[kmeans_plusplus(x, k, seed=seed)].clone()
    else:
        centroids = _check_centroids(init, x, "init", k).clone()
    tol_abs = tol * float(x.var(dim=0, unbiased=False).mean()) if x.shape[0] > 1 else 0.0
    fit = _fit_elkan if algorithm == "elkan" and x.shape[0] * k <= ELKAN_MAX_BOUNDS else _fit_lloyd
    centroids, labels, sq_dist, n_iter, converged = fit(x, centroids, iters, tol_abs, accumulate_dtype, chunk_size)
    return KMeansResult(centroids=centroids, labels=labels, inertia=float(sq_dist.to(torch.float64).sum()),
                        n_iter=n_iter, converged=converged)


def kmeans(x: torch.Tensor, k: int, *, iters: int = 100, tol: float = 1e-4, seed: int = 0,
           init: torch.Tensor | None = None, chunk_size: int = 4096,
           algorithm: str = "elkan") -> tuple[torch.Tensor, torch.Tensor]:
    """k-means clustering → (centroids (k, d) like x, labels (N,) int64). See :func:`fit_kmeans`."""
    result = fit_kmeans(x, k, iters=iters, tol=tol, seed=seed, init=init, chunk_size=chunk_size,
                        algorithm=algorithm)
    return result.centroids, result.labels


class KMeans:
    """Estimator-style wrapper: ``KMeans(k).fit(x)`` then ``cluster_centers_``, ``labels_``,
    ``inertia_``, ``n_iter_``; ``predict(x)`` assigns new points. ``fit(x, init=...)`` warm-starts;
    with ``warm_start=True`` every later ``fit`` starts from the previous centres."""

    def __init__(self, n_clusters: int, *, iters: int = 100, tol: float = 1e-4, seed: int = 0,
                 chunk_size: int = 4096, warm_start: bool = False, algorithm: str = "elkan"):
        self.algorithm = check_choice("algorithm", algorithm, ALGORITHMS)
        self.n_clusters = check_int("n_clusters", n_clusters, low=1)
        self.iters = check_int("iters", iters, low=0)
        self.tol = check_float("tol", tol, low=0.0)
        self.seed = check_int("seed", seed, low=0)
        self.chunk_size = check_int("chunk_size", chunk_size, low=1)
        self.warm_start = bool(warm_start)
        self.cluster_centers_: torch.Tensor | None = None
        self.labels_: torch.Tensor | None = None
        self.inertia_: float | None = None
        self.n_iter_: int | None = None

    def fit(self, x: torch.Tensor, init: torch.Tensor | None = None) -> "KMeans":
        if init is None and self.warm_start and self.cluster_centers_ is not None:
            init = self.cluster_centers_
        result = fit_kmeans(x, self.n_clusters, iters=self.iters, tol=self.tol, seed=self.seed, init=init,
                            chunk_size=self.chunk_size, algorithm=self.algorithm)
        self.cluster_centers_ = result.centroids
        self.labels_ = result.labels
        self.inertia_ = result.inertia
        self.n_iter_ = result.n_iter
        return self

    def predict(self, x: torch.Tensor) -> torch.Tensor:
        if self.cluster_centers_ is None:
            raise ValueError("KMeans.predict called before fit; call fit(x) first")
        return assign(x, self.cluster_centers_, self.chunk_size)[0]

    def fit_predict(self, x: torch.Tensor) -> torch.Tensor:
        return self.fit(x).labels_
