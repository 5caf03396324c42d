"""Speed of dscore's hot paths against baselines run in the same process: the performance page and
``python -m benchmarks``.

Every comparison times the library and its baseline one after the other on the same data in one
process, so the page reports ratios, which travel between machines better than seconds do.

* :func:`graphcut_speed` — :func:`dscore.select.graphcut` (incremental, O(B·N·d) time, O(N·d) memory)
  against :func:`naive_graphcut`, the dense greedy of the authors' code (an N×N similarity matrix,
  gains recomputed from it at every step); picks compared one by one.
* :func:`graphcut_memory` — the incremental greedy at a large N: seconds and peak memory *measured*
  (resident memory sampled every millisecond on CPU, ``max_memory_allocated`` on CUDA) beside the dense
  matrix the baseline would need, *computed* from its formula N²·8 bytes (never allocated).
* :func:`bins_benchmark` — DQ bins (:func:`dscore.quantize.generate_bins`) of a whole training split,
  on the pixels projected onto their leading principal components.
* :func:`clustering_benchmark` — DREAM's re-clustering of one class at the DREAM+ settings: the
  embedding pass, :func:`dscore.cluster.fit_kmeans` with plain Lloyd iterations ("before") and with
  Elkan's bounds ("after") and scikit-learn's ``KMeans`` on the same embeddings and K; the picked
  samples of the two variants compared; the clustering share of an IDC inner loop before and after.
* :func:`training_throughput` — images per second of evaluation training (forward, backward, SGD
  step) per architecture.
* :func:`matching_step_benchmark` — one IDC / DREAM+ image step of the distillation engine at the DREAM+
  chapter's setting, its FLOP rate as a share of a large matmul measured in the same process
  (:func:`matmul_rate`), and its speed-up over :func:`reference_image_step`, the plain per-class loop.
* :func:`evaluation_epoch_benchmark` — one epoch of an IDC-protocol evaluation (DiffAug, CutMix) against a bare
  training loop of the same network on the same images, both as shares of the in-process matmul.
* :func:`side_by_side_benchmark` — independent evaluation runs one after another in this process (torch's own
  thread count) against the same runs side by side, one process and one thread each: how a CPU book build runs
  its pages' cells (:mod:`dscore.book.workers`). The one comparison that needs other processes; both halves are
  timed in this call.
"""
from __future__ import annotations

import copy
import threading
import time
from typing import Any, Callable, Mapping, Sequence

import torch
import torch.nn.functional as F

from ..augment import get_augmentation, siamese_idc
from ..cluster import fit_kmeans, kmeans_plusplus, nearest_to_centroids
from ..distill import distill, preset
from ..distill.init import idc_decode, idc_mix_init
from ..distill.losses import bidirectional_loss, conv_parameters, gradient_matching_loss
from ..distill.sampler import embed_images
from ..features import as_unit_rows
from ..models import AvgPool2x2, create_model
from ..quantize import generate_bins
from ..select import graphcut
from ..train import PROTOCOLS, cutmix, train_model
from ..utils import check_int, resolve_device

__all__ = ["naive_graphcut", "timed", "PeakMemory", "clustered_features", "graphcut_speed", "graphcut_memory",
           "bins_benchmark", "clustering_benchmark", "training_throughput", "matmul_rate", "reference_image_step",
           "MATCHING_SETTING", "matching_step_benchmark", "EVALUATION_SETTING", "evaluation_epoch_benchmark",
           "side_by_side_benchmark", "TARGETS", "summary", "DRY_CAPS", "dry", "run_suite"]

#: the performance targets the page checks: (metric, comparison, threshold)
TARGETS = {
    "graphcut_speedup": (">=", 30.0),
    "graphcut_picks_identical": ("==", True),
    "kmeans_picks_agreement": (">=", 0.99),
    "clustering_overhead_after": ("<=", 0.5),
    # the distillation image step and the evaluation epoch, as shares of the in-process matmul rate
    "image_step_share_of_matmul": (">=", 0.14),
    "evaluation_share_of_matmul": (">=", 0.11),
    # independent evaluation runs side by side (one thread each) against one after another (all threads)
    "side_by_side_speedup": (">=", 1.5),
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def timed(fn: Callable[[], Any], device: torch.device | str = "cpu") -> tuple[float, Any]:
    """(wall seconds, result) of ``fn()``; CUDA work is synchronised before and after."""
    device = torch.device(device)
    _sync(device)
    start = time.perf_counter()
    out = fn()
    _sync(device)
    return time.perf_counter() - start, out


class PeakMemory:
    """``with PeakMemory(device) as m: ...`` then ``m.mib``: the peak memory growth during the block, MiB.

    CPU: the process's resident set size sampled every ``interval`` seconds by a thread (psutil), minus
    its value on entry — a streaming estimate that can miss a peak shorter than the interval.
    CUDA: ``torch.cuda.max_memory_allocated`` growth (exact for tensors)."""

    def __init__(self, device: torch.device | str = "cpu", interval: float = 0.001):
        self.device = torch.device(device)
        self.interval = interval
        self.mib = float("nan")

    def __enter__(self):
        if self.device.type == "cuda":
            _sync(self.device)
            torch.cuda.reset_peak_memory_stats(self.device)
            self._base = torch.cuda.memory_allocated(self.device)
            return self
        import psutil

        self._proc = psutil.Process()
        self._base = self._peak = self._proc.memory_info().rss
        self._stop = threading.Event()

        def sample():
            while not self._stop.is_set():
                self._peak = max(self._peak, self._proc.memory_info().rss)
                time.sleep(self.interval)

        self._thread = threading.Thread(target=sample, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        if self.device.type == "cuda":
            _sync(self.device)
            self.mib = (torch.cuda.max_memory_allocated(self.device) - self._base) / 2**20
            return False
        self._stop.set()
        self._thread.join()
        self._peak = max(self._peak, self._proc.memory_info().rss)
        self.mib = (self._peak - self._base) / 2**20
        return False


def naive_graphcut(features: torch.Tensor, budget: int, lam: float = 1.0) -> tuple[list[int], float]:
    """The dense greedy of the authors' code: the full N×N similarity ``0.5 + 0.5·cos`` (float64), then
    at every step ``lam·colsum − 2·Σ_{j∈S} s(j,·)`` recomputed over the unselected columns. Returns
    (picks in order, seconds spent building the matrix). Memory O(N²): small N only."""
    budget = check_int("budget", budget, low=1, high=features.shape[0])
    start = time.perf_counter()
    unit = as_unit_rows(features.double())
    sim = 0.5 + 0.5 * (unit @ unit.T)
    col_sum = sim.sum(dim=0)
    _sync(sim.device)
    matrix_seconds = time.perf_counter() - start
    n = sim.shape[0]
    selected: list[int] = []
    unselected = torch.ones(n, dtype=torch.bool, device=sim.device)
    for _ in range(budget):
        candidates = unselected.nonzero().flatten()
        covered = (sim[selected][:, candidates].sum(dim=0) if selected
                   else torch.zeros(len(candidates), dtype=sim.dtype, device=sim.device))
        pick = int(candidates[torch.argmax(lam * col_sum[candidates] - 2.0 * covered)])
        selected.append(pick)
        unselected[pick] = False
    return selected, matrix_seconds


def clustered_features(n: int, d: int, classes: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """A seeded Gaussian mixture (one component per class), float32, like embeddings of a labelled set."""
    gen = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=gen) * 2.0
    labels = torch.arange(n) % classes
    labels = labels[torch.randperm(n, generator=gen)]
    return centres[labels] + torch.randn(n, d, generator=gen), labels


def _row(section: str, case: str, metric: str, value, unit: str = "") -> dict:
    return {"section": section, "case": case, "metric": metric, "value": value, "unit": unit}


def graphcut_speed(n: int = 5000, d: int = 64, budget: int = 500, *, seed: int = 3, device=None) -> list[dict]:
    """dscore's GraphCut vs :func:`naive_graphcut` on the same features: seconds, speed-up (with and
    without the baseline's matrix build), whether the picks are identical, the baseline's measured
    peak memory beside its N²·8-byte matrix."""
    device = resolve_device(device)
    x, _ = clustered_features(n, d, 10, seed)
    x = x.to(device)
    graphcut(x[:64], 8)                                            # warm up kernels and allocator
    t_fast, fast = timed(lambda: graphcut(x, budget).tolist(), device)
    with PeakMemory(device) as mem:
        t_naive, (naive, matrix_s) = timed(lambda: naive_graphcut(x, budget), device)
    case = f"N={n} d={d} B={budget} ({device.type})"
    rows = [_row("graphcut", case, "fast_seconds", t_fast, "s"), _row("graphcut", case, "naive_seconds", t_naive, "s"),
            _row("graphcut", case, "graphcut_speedup", t_naive / t_fast, "x"),
            _row("graphcut", case, "speedup_without_matrix", (t_naive - matrix_s) / t_fast, "x"),
            _row("graphcut", case, "graphcut_picks_identical", fast == naive),
            _row("graphcut", case, "naive_peak_memory", mem.mib, "MiB"),
            _row("graphcut", case, "naive_matrix_formula", n * n * 8 / 2**20, "MiB")]
    return rows


def graphcut_memory(n: int = 60000, d: int = 64, budget: int = 600, *, seed: int = 1, device=None) -> list[dict]:
    """The incremental GraphCut at a large N: seconds and measured peak memory growth (see
    :class:`PeakMemory`) beside the N×N float64 matrix of the dense baseline, computed from its size."""
    device = resolve_device(device)
    x, _ = clustered_features(n, d, 10, seed)
    x = x.to(device)
    with PeakMemory(device) as mem:
        seconds, picks = timed(lambda: graphcut(x, budget), device)
    if picks.unique().numel() != budget:
        raise RuntimeError(f"graphcut returned {picks.unique().numel()} distinct picks, expected {budget}")
    case = f"N={n} d={d} B={budget} ({device.type})"
    dense = n * n * 8 / 2**20
    return [_row("graphcut memory", case, "seconds", seconds, "s"),
            _row("graphcut memory", case, "peak_memory_measured", mem.mib, "MiB"),
            _row("graphcut memory", case, "input_features", x.numel() * x.element_size() / 2**20, "MiB"),
            _row("graphcut memory", case, "dense_matrix_formula", dense, "MiB"),
            _row("graphcut memory", case, "memory_ratio", dense / max(mem.mib, x.numel() * x.element_size() / 2**20),
                 "x")]


def _load(dataset: str):
    from ..data import load_dataset

    return load_dataset(dataset, "train", download=False, progress=False)


def bins_benchmark(dataset: str = "fashion_mnist", *, dim: int = 64, num_bins: int = 10, limit: int | None = None,
                   device=None) -> list[dict]:
    """DQ bins of a whole training split (or its first ``limit`` images): the pixels projected onto their
    ``dim`` leading principal components (seeded low-rank PCA), then :func:`generate_bins`; seconds and
    measured peak memory growth."""
    device = resolve_device(device)
    ds = _load(dataset)
    images, labels = (ds.images, ds.labels) if limit is None else (ds.images[:limit], ds.labels[:limit])
    flat = images.reshape(images.shape[0], -1).float()
    torch.manual_seed(0)
    _, _, v = torch.pca_lowrank(flat, q=dim, center=True, niter=2)
    feats = ((flat - flat.mean(0)) @ v[:, :dim]).to(device)
    with PeakMemory(device) as mem:
        seconds, bins = timed(lambda: generate_bins(feats, labels.to(device), num_bins), device)
    if sum(b.numel() for b in bins) != feats.shape[0]:
        raise RuntimeError("bins do not cover the data")
    case = f"{dataset} N={feats.shape[0]} d={dim} K={num_bins} ({device.type})"
    return [_row("bins", case, "seconds", seconds, "s"), _row("bins", case, "peak_memory_measured", mem.mib, "MiB"),
            _row("bins", case, "images_per_second", feats.shape[0] / seconds, "1/s")]


def _class_data(dataset: str, n: int, pool: int):
    try:
        ds = _load(dataset)
        cls = ds.images[ds.labels == 0][:n]
        order = torch.randperm(len(ds), generator=torch.Generator().manual_seed(0))[:pool]
        return cls, ds.images[order], ds.labels[order], ds.num_classes, f"{dataset} class 0"
    except Exception:   # without the data set: seeded random images (timings do not depend on pixel values)
        gen = torch.Generator().manual_seed(0)
        return (torch.rand(n, 1, 28, 28, generator=gen), torch.rand(pool, 1, 28, 28, generator=gen),
                torch.randint(10, (pool,), generator=gen), 10, "random images")


#: the scale of :func:`clustering_benchmark` (DREAM+'s own setting), which its ``setting`` mapping changes
CLUSTERING_SETTING = {"dataset": "fashion_mnist", "n": 6000, "width": 128, "clusters": 128, "interval": 10,
                      "n_data": 500, "ipc": 10, "factor": 2, "match_steps": 3, "net_rounds": 2, "kmeans_iters": 100,
                      "seed": 0}


def clustering_benchmark(setting: Mapping[str, Any] | None = None, *, sklearn: bool = True, label: str = "",
                         device=None) -> list[dict]:
    """DREAM's re-clustering of one class against the IDC inner loop it is added to.

    ``setting``: the keys of :data:`CLUSTERING_SETTING` to change (unknown keys are a ValueError naming them).

    One class of ``n`` images, ConvNet-3 of ``width`` (DREAM+'s defaults: K = ``clusters`` = batch_real,
    one sample per sub-cluster, re-clustering every ``interval`` image steps). The network first takes
    ``net_rounds`` IDC network updates (``n_data`` real samples in batches of 64, colour + crop, CutMix
    p 0.5), timed. Then the class is embedded once (timed) and clustered from the same k-means++ seed
    with plain Lloyd iterations ("before", the earlier implementation) and with Elkan's bounds ("after");
    both pick the sample nearest to each centroid and the picks are compared. scikit-learn's ``KMeans``
    (k-means++, one init, same iteration cap and tolerance) clusters the same embeddings. Finally
    ``match_steps`` IDC matching steps (L1 gradient matching of the picked batch against ``ipc`` images
    decoded ×``factor``², one shared DiffAug draw, one image step) are timed.

    The IDC inner loop per class is one matching step plus a ``1/num_classes`` share of the network
    update that follows every image step; clustering adds ``(embed + k-means + selection) / interval``.
    Reported: ``clustering_overhead`` = added clustering / IDC inner loop (the paper's "+50%") and
    ``clustering_share`` = clustering / (IDC inner loop + clustering), before and after. ``label`` (e.g. "chapter
    default") starts every row's case, so two settings can be told apart in one table."""
    unknown = sorted(set(setting or {}) - set(CLUSTERING_SETTING))
    if unknown:
        raise ValueError(f"setting has unknown key(s) {unknown}; allowed: {', '.join(CLUSTERING_SETTING)}")
    s = {**CLUSTERING_SETTING, **(setting or {})}
    dataset, n, width, clusters, interval = s["dataset"], s["n"], s["width"], s["clusters"], s["interval"]
    n_data, ipc, factor, match_steps, net_rounds = s["n_data"], s["ipc"], s["factor"], s["match_steps"], s["net_rounds"]
    kmeans_iters, seed = s["kmeans_iters"], s["seed"]
    device = resolve_device(device)
    class_x, pool_x, pool_y, num_classes, source = _class_data(dataset, n, max(n_data * net_rounds, 64))
    class_x, pool_x, pool_y = class_x.to(device), pool_x.to(device), pool_y.to(device)
    n = class_x.shape[0]
    net = create_model("convnet3", num_classes=num_classes, in_channels=class_x.shape[1],
                       image_size=class_x.shape[-1], width=width, seed=seed).to(device)
    net.train()
    gen = torch.Generator().manual_seed(seed)
    aug_gen = torch.Generator(device=device).manual_seed(seed + 1)
    net_aug = get_augmentation("idc_net")
    opt_net = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

    def net_update(r: int):
        chosen = torch.arange(r * n_data, (r + 1) * n_data, device=device) % pool_x.shape[0]
        for b in chosen.split(64):
            x = net_aug(pool_x[b], aug_gen)
            x, partner, lam = cutmix(x, pool_y[b], p=0.5, generator=gen)
            logits = net(x)
            loss = lam * F.cross_entropy(logits, pool_y[b]) + (1 - lam) * F.cross_entropy(logits, partner)
            opt_net.zero_grad(set_to_none=True)
            loss.backward()
            opt_net.step()

    embed_images(net, class_x[:64])                                     # warm-up
    net_s = [timed(lambda r=r: net_update(r), device)[0] for r in range(net_rounds)]
    net_s = sum(net_s) / len(net_s)
    embed_s, emb = timed(lambda: embed_images(net, class_x), device)
    k = min(clusters, n)
    seed_s, start_idx = timed(lambda: kmeans_plusplus(emb, k, seed=seed), device)
    init = emb[start_idx].clone()
    results, picks, seconds = {}, {}, {}
    for name, algorithm in (("before", "lloyd"), ("after", "elkan")):
        t, res = timed(lambda a=algorithm: fit_kmeans(emb, k, iters=kmeans_iters, init=init, algorithm=a), device)
        ts, idx = timed(lambda r=res: nearest_to_centroids(emb, r.centroids, 1).reshape(-1), device)
        results[name], picks[name], seconds[name] = res, idx, (seed_s + t, ts)
    agreement = len(set(picks["before"].tolist()) & set(picks["after"].tolist())) / k
    identical = bool(torch.equal(picks["before"], picks["after"]))

    # IDC matching steps on the picked batch
    stored = idc_mix_init(class_x, ipc, factor, seed=seed).requires_grad_(True)
    opt_img = torch.optim.SGD([stored], lr=1e-4 * (28 / 32) ** 2, momentum=0.5)
    labels = torch.zeros(max(k, ipc * factor * factor), dtype=torch.long, device=device)
    real = class_x[picks["after"]]

    def matching_step():
        syn = idc_decode(stored, factor)
        real_aug, syn_aug = siamese_idc(real, syn, aug_gen)
        loss, _ = gradient_matching_loss(net, real_aug, labels[:len(real)], syn_aug, labels[:len(syn)], metric="l1")
        stored.grad = torch.autograd.grad(loss, stored)[0]
        opt_img.step()

    matching_step()                                                     # warm-up
    match_s = sum(timed(matching_step, device)[0] for _ in range(match_steps)) / match_steps
    idc_loop = match_s + net_s / num_classes
    case = f"{label + ': ' if label else ''}N={n} K={k} width={width} interval={interval} ({device.type})"
    rows = [_row("clustering", case, "data", source), _row("clustering", case, "embed_seconds", embed_s, "s"),
            _row("clustering", case, "matching_seconds_per_step", match_s, "s"),
            _row("clustering", case, "network_update_seconds_per_step", net_s, "s"),
            _row("clustering", case, "idc_inner_loop_per_class", idc_loop, "s")]
    for name in ("before", "after"):
        km_s, sel_s = seconds[name]
        per_step = (embed_s + km_s + sel_s) / interval
        rows += [_row("clustering", case, f"kmeans_seconds_{name}", km_s, "s"),
                 _row("clustering", case, f"kmeans_iterations_{name}", results[name].n_iter),
                 _row("clustering", case, f"select_seconds_{name}", sel_s, "s"),
                 _row("clustering", case, f"clustering_per_step_{name}", per_step, "s"),
                 _row("clustering", case, f"clustering_overhead_{name}", per_step / idc_loop, "x"),
                 _row("clustering", case, f"clustering_share_{name}", per_step / (per_step + idc_loop), "")]
    rows += [_row("clustering", case, "kmeans_speedup_after_vs_before", seconds["before"][0] / seconds["after"][0], "x"),
             _row("clustering", case, "kmeans_picks_agreement", agreement),
             _row("clustering", case, "kmeans_picks_identical", identical),
             _row("clustering", case, "inertia_ratio_after_vs_before",
                  results["after"].inertia / results["before"].inertia)]
    if sklearn:
        from sklearn.cluster import KMeans as SKKMeans

        data = emb.detach().cpu().numpy()
        sk_s, sk = timed(lambda: SKKMeans(k, init="k-means++", n_init=1, max_iter=kmeans_iters, tol=1e-4,
                                          random_state=seed).fit(data))
        ours_s = seconds["after"][0]
        rows += [_row("kmeans vs scikit-learn", case, "sklearn_seconds", sk_s, "s"),
                 _row("kmeans vs scikit-learn", case, "dscore_seconds", ours_s, "s"),
                 _row("kmeans vs scikit-learn", case, "kmeans_speed_ratio_vs_sklearn", sk_s / ours_s, "x"),
                 _row("kmeans vs scikit-learn", case, "kmeans_inertia_ratio_vs_sklearn",
                      results["after"].inertia / float(sk.inertia_)),
                 _row("kmeans vs scikit-learn", case, "sklearn_iterations", int(sk.n_iter_))]
    return rows


def training_throughput(archs: Mapping[str, Mapping[str, Any]], *, batch: int = 64, steps: int = 3,
                        channels: int = 1, image_size: int = 28, num_classes: int = 10, device=None) -> list[dict]:
    """Images per second of evaluation training (forward, cross-entropy, backward, SGD step with momentum
    and weight decay) per architecture, on seeded random images after one warm-up step."""
    device = resolve_device(device)
    batch, steps = check_int("batch", batch, low=1), check_int("steps", steps, low=1)
    gen = torch.Generator().manual_seed(0)
    x = torch.rand(batch, channels, image_size, image_size, generator=gen).to(device)
    y = torch.randint(num_classes, (batch,), generator=gen).to(device)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    rows = []
    for name, kwargs in archs.items():
        net = create_model(name, num_classes=num_classes, in_channels=channels, image_size=image_size,
                           **dict(kwargs)).to(device)
        if device.type == "cuda":
            net = net.to(memory_format=torch.channels_last)
        net.train()
        opt = torch.optim.SGD(net.parameters(), lr=0.01, momentum=0.9, weight_decay=5e-4)

        def step():
            loss = F.cross_entropy(net(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()

        step()
        seconds = sum(timed(step, device)[0] for _ in range(steps))
        rows.append(_row("training throughput", f"{name} batch={batch} {channels}x{image_size}px ({device.type})",
                         "images_per_second", batch * steps / seconds, "1/s"))
    return rows


def matmul_rate(size: int = 2048, repeats: int = 5, device=None) -> float:
    """FLOP/s of a ``size``×``size`` fp32 matmul on ``device``: the best of ``repeats`` timed products after one
    warm-up (2·size³ FLOPs each). The yardstick every "share of matmul" row divides by, measured in the same
    process as the loop it judges, because it differs between machines of the same kind."""
    device = resolve_device(device)
    size, repeats = check_int("size", size, low=1), check_int("repeats", repeats, low=1)
    gen = torch.Generator().manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device)
    b = torch.randn(size, size, generator=gen).to(device)
    a @ b
    best = min(timed(lambda: a @ b, device)[0] for _ in range(repeats))
    return 2.0 * size ** 3 / best


def _flops(fn: Callable[[], Any]) -> int:
    """FLOPs that torch's counter (matmuls and convolutions, forward and backward) sees while ``fn`` runs."""
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return int(counter.get_total_flops())


def _counting_copy(net: torch.nn.Module) -> torch.nn.Module:
    """A copy of ``net`` whose :class:`~dscore.models.AvgPool2x2` layers call the pooling kernel, so that the FLOP
    counter sees the network's own arithmetic and not the small matrix products that pooling runs as on the CPU."""
    twin = copy.deepcopy(net)
    for module in list(twin.modules()):
        for name, child in module.named_children():
            if isinstance(child, AvgPool2x2):
                setattr(module, name, torch.nn.AvgPool2d(2))
    return twin


#: the scale of :func:`matching_step_benchmark` and the chapter default it mirrors (the DREAM+ chapter of the
#: default profile: Fashion-MNIST-sized images, 240 training images per class, ConvNet-3 of width 16, IPC 10
#: decoded ×2², real batch 32, IDC network updates of 128 real samples in batches of 32)
MATCHING_SETTING = {"classes": 10, "n": 240, "channels": 1, "image_size": 28, "width": 16, "ipc": 10, "factor": 2,
                    "batch_real": 32, "n_data": 128, "net_batch": 32, "steps": 4, "seed": 0}


def _setting(name: str, given: Mapping[str, Any] | None, defaults: Mapping[str, Any]) -> dict:
    unknown = sorted(set(given or {}) - set(defaults))
    if unknown:
        raise ValueError(f"{name} has unknown key(s) {unknown}; allowed: {', '.join(defaults)}")
    out = {**defaults, **(given or {})}
    for key, value in out.items():
        check_int(f"{name}[{key!r}]", value, low=0 if key == "seed" else 1)
    return out


def reference_image_step(net: torch.nn.Module, real: Sequence[torch.Tensor], stored: torch.Tensor,
                         optimizer: torch.optim.Optimizer, *, ipc: int, factor: int, objective: str = "gradient",
                         metric: str = "l1", generator: torch.Generator | None = None) -> None:
    """The plain per-class image step of the IDC family, kept as the benchmark's reference.

    For each class c: decode its ``ipc`` stored images (rows c·ipc … of ``stored``, a leaf of shape (C·ipc, ch, H,
    W)), draw one Siamese IDC augmentation for the real batch ``real[c]`` and the decoded images, form the class
    loss (``objective`` "gradient": conv-weight gradient matching with ``metric``; "bidirectional": DREAM+'s
    embedding + gradient term) and take one optimiser step on ``stored`` (IDC's one step per class). One forward and
    backward per batch and a double backward per class: O(C·(batch_real + ipc·f²)) network passes."""
    params = conv_parameters(net)
    for c, real_c in enumerate(real):
        syn = idc_decode(stored[c * ipc:(c + 1) * ipc], factor)
        real_aug, syn_aug = siamese_idc(real_c, syn, generator)
        y_real = torch.full((real_c.shape[0],), c, dtype=torch.long, device=real_c.device)
        y_syn = torch.full((syn.shape[0],), c, dtype=torch.long, device=real_c.device)
        if objective == "bidirectional":
            loss, _ = bidirectional_loss(net, real_aug, y_real, syn_aug, y_syn, params=params, grad_metric=metric)
        else:
            loss, _ = gradient_matching_loss(net, real_aug, y_real, syn_aug, y_syn, params=params, metric=metric)
        stored.grad = torch.autograd.grad(loss, stored)[0]
        optimizer.step()
    stored.grad = None


def matching_step_benchmark(setting: Mapping[str, Any] | None = None, *, methods: Sequence[str] = ("idc", "dreamplus"),
                            label: str = "chapter setting", device=None) -> list[dict]:
    """One distillation image step of each of ``methods`` (IDC-family presets) at :data:`MATCHING_SETTING` (keys of
    ``setting`` change it; unknown keys are a ValueError naming them), against the machine and a reference.

    Data: seeded random images of the setting's shape (the cost of a step does not depend on pixel values).
    The engine (:func:`dscore.distill.distill`, one iteration of ``steps`` + 1 image steps, with the IDC network
    update between them) reports the seconds of every image step without clustering, network updates or
    pretraining; the first step is a warm-up and the median of the others is the step time. The reference is
    :func:`reference_image_step` on a fresh network of the same shape, timed the same way; its FLOPs (torch's
    counter over one reference step: the engine computes the same per-class losses) divided by the step time give
    the FLOP rate, reported as a share of :func:`matmul_rate` measured in the same process. DREAM+'s
    representative sampling is excluded from the step time (it is the clustering benchmark's subject).
    Rows: ``image_step_seconds``, ``reference_step_seconds``, ``image_step_gflop``, ``image_step_gflops``,
    ``matmul_gflops``, ``image_step_share_of_matmul``, ``reference_share_of_matmul``,
    ``image_step_speedup_vs_reference``."""
    s = _setting("setting", setting, MATCHING_SETTING)
    device = resolve_device(device)
    classes, n, ch, size, ipc, factor = s["classes"], s["n"], s["channels"], s["image_size"], s["ipc"], s["factor"]
    if ipc > n:
        raise ValueError(f"setting['ipc']={ipc} exceeds setting['n']={n}; allowed: 1 <= ipc <= n")
    gen = torch.Generator().manual_seed(s["seed"])
    images = torch.rand(classes * n, ch, size, size, generator=gen)
    labels = torch.arange(classes).repeat_interleave(n)
    peak = matmul_rate(device=device)
    rows: list[dict] = []
    for method in methods:
        cfg = preset(method, "fashion_mnist", ipc, arch="convnet3", arch_kwargs={"width": s["width"]}, iterations=1,
                     outer_loops=s["steps"] + 1, factor=factor, batch_real=s["batch_real"], n_data=s["n_data"],
                     net_batch=s["net_batch"], pretrain_steps=1, interval=s["steps"] + 1, init="mix",
                     diag_every=0, snapshot_every=0, seed=s["seed"], device=str(device))
        result = distill(images, labels, cfg, num_classes=classes, progress=False)
        step = float(torch.tensor(result.history["time_matching"][1:]).median())

        net = create_model("convnet3", num_classes=classes, in_channels=ch, image_size=size, width=s["width"],
                           seed=s["seed"]).to(device)
        stored = idc_mix_init(images.to(device), classes * ipc, factor, seed=s["seed"]).requires_grad_(True)
        optimizer = torch.optim.SGD([stored], lr=cfg.lr_img, momentum=cfg.momentum_img)
        batch = min(cfg.batch_real, n)
        real = [images[c * n:c * n + batch].to(device) for c in range(classes)]
        aug_gen = torch.Generator(device=device).manual_seed(s["seed"])

        def reference(model=net):
            reference_image_step(model, real, stored, optimizer, ipc=ipc, factor=factor, objective=cfg.objective,
                                 metric=cfg.grad_metric, generator=aug_gen)

        reference()                                                         # warm-up
        ref = sorted(timed(reference, device)[0] for _ in range(s["steps"]))[s["steps"] // 2]
        flop = _flops(lambda: reference(_counting_copy(net)))
        case = f"{label}: {method} image step, N={n}/class width={s['width']} IPC={ipc} ({device.type})"
        rows += [_row("matching step", case, "image_step_seconds", step, "s"),
                 _row("matching step", case, "reference_step_seconds", ref, "s"),
                 _row("matching step", case, "image_step_gflop", flop / 1e9, "GFLOP"),
                 _row("matching step", case, "image_step_gflops", flop / step / 1e9, "GFLOP/s"),
                 _row("matching step", case, "matmul_gflops", peak / 1e9, "GFLOP/s"),
                 _row("matching step", case, "image_step_share_of_matmul", flop / step / peak, ""),
                 _row("matching step", case, "reference_share_of_matmul", flop / ref / peak, ""),
                 _row("matching step", case, "image_step_speedup_vs_reference", ref / step, "x")]
    return rows


#: the scale of :func:`evaluation_epoch_benchmark`: an IPC-10 set decoded ×2² (40 images per class) evaluated with
#: ConvNet-3 of width 16 under the IDC protocol (batch 64, DiffAug flip → colour → crop/scale/rotate, CutMix p 0.5)
EVALUATION_SETTING = {"classes": 10, "images_per_class": 40, "channels": 1, "image_size": 28, "width": 16,
                      "epochs": 4, "seed": 0}


def evaluation_epoch_benchmark(setting: Mapping[str, Any] | None = None, *, label: str = "chapter setting",
                               device=None) -> list[dict]:
    """One epoch of an IDC-protocol evaluation (:func:`dscore.train.train_model` with ``PROTOCOLS["idc"]``: per-sample
    DiffAug, CutMix, SGD with momentum and weight decay, the learning rate set every step) against a bare loop of
    the same network on the same images (forward, cross-entropy, backward, SGD step; no augmentation), at
    :data:`EVALUATION_SETTING` (keys of ``setting`` change it; unknown keys are a ValueError naming them).

    Both run ``epochs`` epochs on seeded random images; the first epoch is a warm-up and the median of the others
    is the epoch time. The FLOPs of one bare epoch (torch's counter; augmentation and CutMix add none it counts)
    over each epoch time give the FLOP rates, reported as shares of :func:`matmul_rate` in the same process.
    Rows: ``evaluation_epoch_seconds``, ``bare_epoch_seconds``, ``epoch_gflop``, ``evaluation_share_of_matmul``,
    ``bare_share_of_matmul``, ``evaluation_over_bare`` (seconds per epoch, evaluation / bare)."""
    s = _setting("setting", setting, EVALUATION_SETTING)
    if s["epochs"] < 2:
        raise ValueError(f"setting['epochs']={s['epochs']} must be >= 2 (the first epoch is a warm-up)")
    device = resolve_device(device)
    classes, ch, size = s["classes"], s["channels"], s["image_size"]
    gen = torch.Generator().manual_seed(s["seed"])
    images = torch.rand(classes * s["images_per_class"], ch, size, size, generator=gen)
    labels = torch.arange(classes).repeat_interleave(s["images_per_class"])
    protocol = PROTOCOLS["idc"].replace(epochs=s["epochs"])
    peak = matmul_rate(device=device)

    def model():
        return create_model("convnet3", num_classes=classes, in_channels=ch, image_size=size, width=s["width"],
                            seed=s["seed"])

    result = train_model(model(), images, labels, protocol, device=device, seed=s["seed"], progress=False)
    evaluation = float(torch.tensor([h["seconds"] for h in result.history[1:]]).median())

    net = model().to(device)
    x, y = images.to(device), labels.to(device)
    opt = torch.optim.SGD(net.parameters(), lr=protocol.lr, momentum=protocol.momentum,
                          weight_decay=protocol.weight_decay)
    order = torch.Generator().manual_seed(s["seed"])

    def bare_epoch(model=net, optimizer=opt):
        for idx in torch.randperm(len(x), generator=order).split(protocol.batch_size):
            idx = idx.to(device)
            loss = F.cross_entropy(model(x[idx]), y[idx])
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

    seconds = [timed(bare_epoch, device)[0] for _ in range(s["epochs"])]
    bare = float(torch.tensor(seconds[1:]).median())                        # the first epoch is the warm-up
    twin = _counting_copy(net)
    flop = _flops(lambda: bare_epoch(twin, torch.optim.SGD(twin.parameters(), lr=protocol.lr)))
    case = f"{label}: IDC-protocol evaluation epoch, {len(x)} images width={s['width']} ({device.type})"
    return [_row("evaluation epoch", case, "evaluation_epoch_seconds", evaluation, "s"),
            _row("evaluation epoch", case, "bare_epoch_seconds", bare, "s"),
            _row("evaluation epoch", case, "epoch_gflop", flop / 1e9, "GFLOP"),
            _row("evaluation epoch", case, "matmul_gflops", peak / 1e9, "GFLOP/s"),
            _row("evaluation epoch", case, "evaluation_share_of_matmul", flop / evaluation / peak, ""),
            _row("evaluation epoch", case, "bare_share_of_matmul", flop / bare / peak, ""),
            _row("evaluation epoch", case, "evaluation_over_bare", evaluation / bare, "x")]


def _evaluation_run(s: Mapping[str, Any], seed: int) -> float:
    """One IDC-protocol evaluation of :data:`EVALUATION_SETTING`'s set with ``seed``; its final accuracy."""
    gen = torch.Generator().manual_seed(s["seed"])
    images = torch.rand(s["classes"] * s["images_per_class"], s["channels"], s["image_size"], s["image_size"],
                        generator=gen)
    labels = torch.arange(s["classes"]).repeat_interleave(s["images_per_class"])
    net = create_model("convnet3", num_classes=s["classes"], in_channels=s["channels"], image_size=s["image_size"],
                       width=s["width"], seed=seed)
    return train_model(net, images, labels, PROTOCOLS["idc"].replace(epochs=s["epochs"]), device="cpu", seed=seed,
                       progress=False).final_train_acc


def _side_by_side_child(s: dict, seed: int, barrier, times) -> None:
    torch.set_num_threads(1)
    _evaluation_run({**s, "epochs": 1}, seed)            # warm-up, before the common start
    barrier.wait()
    start = time.time()
    _evaluation_run(s, seed)
    times.put((start, time.time()))


def side_by_side_benchmark(setting: Mapping[str, Any] | None = None, *, runs: int = 2,
                           label: str = "chapter setting") -> list[dict]:
    """``runs`` independent IDC-protocol evaluations (seeds 0 … runs − 1, :data:`EVALUATION_SETTING` changed by
    ``setting``) one after another in this process with torch's own thread count, against the same runs side by side
    in ``runs`` processes with one intra-op thread each, started together after a warm-up (the wall time from the
    first start to the last end). CPU only. Rows: ``sequential_seconds``, ``side_by_side_seconds``,
    ``side_by_side_speedup`` (sequential / side by side)."""
    import multiprocessing

    s = _setting("setting", setting, EVALUATION_SETTING)
    runs = check_int("runs", runs, low=1)
    _evaluation_run({**s, "epochs": 1}, 0)                                  # warm-up
    sequential = timed(lambda: [_evaluation_run(s, seed) for seed in range(runs)])[0]
    ctx = multiprocessing.get_context("spawn")
    barrier, times = ctx.Barrier(runs), ctx.Queue()
    procs = [ctx.Process(target=_side_by_side_child, args=(dict(s), seed, barrier, times)) for seed in range(runs)]
    for p in procs:
        p.start()
    spans = [times.get(timeout=3600) for _ in procs]
    for p in procs:
        p.join()
    side = max(end for _, end in spans) - min(start for start, _ in spans)
    case = (f"{label}: {runs} IDC-protocol evaluations of {s['classes'] * s['images_per_class']} images, "
            f"{s['epochs']} epochs, width={s['width']} (cpu)")
    return [_row("side by side", case, "sequential_seconds", sequential, "s"),
            _row("side by side", case, "side_by_side_seconds", side, "s"),
            _row("side by side", case, "side_by_side_speedup", sequential / side, "x")]


def summary(rows: Sequence[dict]) -> list[dict]:
    """The targeted ratios among ``rows`` with their target and whether it is met."""
    out = []
    for r in rows:
        if r["metric"] in TARGETS:
            op, threshold = TARGETS[r["metric"]]
            value = r["value"]
            met = {">=": lambda: value >= threshold, "<=": lambda: value <= threshold,
                   "==": lambda: value == threshold}[op]()
            out.append({"case": r["case"], "metric": r["metric"], "value": value, "target": f"{op} {threshold}",
                        "met": bool(met)})
    return out


#: A dry run's caps on :func:`run_suite`'s settings (the smoke profile's sizes): every benchmark, architecture and
#: device still runs, each on a problem this small, so a profile's page is checked end to end in about a minute.
DRY_CAPS: dict[str, dict[str, int]] = {
    "graphcut": {"n": 400, "d": 16, "budget": 40},
    "graphcut_large": {"n": 3000, "d": 16, "budget": 30},
    "bins": {"dim": 8, "num_bins": 5, "limit": 1000},
    "clustering": {"n": 300, "width": 16, "clusters": 16, "n_data": 64, "ipc": 2, "match_steps": 1, "net_rounds": 1},
    "clustering_chapter": {"n": 60, "width": 8, "clusters": 8, "n_data": 32, "ipc": 2, "match_steps": 1,
                           "net_rounds": 1},
    "throughput": {"batch": 8, "steps": 1},
    "matching": {"classes": 3, "n": 40, "width": 4, "ipc": 2, "batch_real": 8, "n_data": 16, "net_batch": 8,
                 "steps": 2},
    "evaluation": {"classes": 3, "images_per_class": 8, "width": 4, "epochs": 2},
    "side_by_side": {"classes": 3, "images_per_class": 8, "width": 4, "epochs": 2, "runs": 2},
}


def dry(settings: Mapping[str, Mapping[str, Any] | None]) -> dict[str, Any]:
    """:func:`run_suite`'s keyword ``settings`` shrunk for a dry run: each integer named in :data:`DRY_CAPS` capped
    there (the other values, such as the architectures of ``throughput``, kept). ``None`` settings stay None."""
    out: dict[str, Any] = {}
    for name, value in settings.items():
        if value is None or name not in DRY_CAPS:
            out[name] = value
            continue
        caps = DRY_CAPS[name]
        out[name] = {k: (min(v, caps[k]) if k in caps and isinstance(v, int) and not isinstance(v, bool) else v)
                     for k, v in value.items()}
    return out


def run_suite(*, graphcut: Mapping[str, Any], graphcut_large: Mapping[str, Any], bins: Mapping[str, Any],
              clustering: Mapping[str, Any], throughput: Mapping[str, Any], device: str = "auto",
              clustering_chapter: Mapping[str, Any] | None = None, matching: Mapping[str, Any] | None = None,
              evaluation: Mapping[str, Any] | None = None, side_by_side: Mapping[str, Any] | None = None,
              log: Callable[[str], None] | None = print) -> list[dict]:
    """Every benchmark of the performance page with the given keyword settings, on the CPU and, when
    ``device`` is "auto" and CUDA is present (or ``device`` is "cuda"), once more on the GPU (without the
    scikit-learn comparison, which runs on the CPU). ``clustering`` is DREAM+'s own setting (a whole class,
    the paper's network), its cases labelled "DREAM+ setting"; ``clustering_chapter`` (optional) the same
    benchmark at the DREAM+ chapter's profile settings, labelled "chapter setting". ``matching`` and ``evaluation``
    (optional) are the settings of :func:`matching_step_benchmark` and :func:`evaluation_epoch_benchmark`;
    ``side_by_side`` (optional) that of :func:`side_by_side_benchmark` (its ``runs`` among them), run on the CPU
    only. Returns the rows (section, case, metric, value, unit)."""
    if device not in ("auto", "cpu", "cuda"):
        raise ValueError(f"device={device!r} is not supported; allowed: 'auto', 'cpu', 'cuda'")
    devices = ["cpu"]
    if device == "cuda" or (device == "auto" and torch.cuda.is_available()):
        devices.append("cuda")
    rows: list[dict] = []
    steps = [("graphcut", lambda dev: graphcut_speed(**graphcut, device=dev)),
             ("graphcut at large N", lambda dev: graphcut_memory(**graphcut_large, device=dev)),
             ("bins", lambda dev: bins_benchmark(**bins, device=dev)),
             ("clustering", lambda dev: clustering_benchmark(clustering, sklearn=dev == "cpu", device=dev,
                                                             label="DREAM+ setting")),
             ("training throughput", lambda dev: training_throughput(**throughput, device=dev))]
    if clustering_chapter is not None:
        steps.insert(4, ("clustering (chapter setting)", lambda dev: clustering_benchmark(
            clustering_chapter, sklearn=False, device=dev, label="chapter setting")))
    if matching is not None:
        steps.append(("matching step", lambda dev: matching_step_benchmark(matching, device=dev)))
    if evaluation is not None:
        steps.append(("evaluation epoch", lambda dev: evaluation_epoch_benchmark(evaluation, device=dev)))
    if side_by_side is not None:
        setting = {k: v for k, v in side_by_side.items() if k != "runs"}
        steps.append(("side by side", lambda dev: side_by_side_benchmark(setting, runs=side_by_side.get("runs", 2))
                      if dev == "cpu" else []))
    from ..utils import tqdm

    for dev in devices:
        for name, step in tqdm(steps, desc=f"benchmarks ({dev})", leave=False):
            start = time.perf_counter()
            rows += step(dev)
            if log is not None:
                log(f"{name} ({dev}): {time.perf_counter() - start:.1f} s")
    return rows
