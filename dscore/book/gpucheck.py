"""``make gpu-check`` (``python -m dscore.book gpu-check``): what to run first on a GPU machine.

Three parts, printed as one table:

1. **Engines.** Training, GraphCut, k-means and each distillation method (DC, DSA, DM, IDC, DREAM, DREAM+) run a few
   steps on the CPU and, where CUDA is present, the same short run on the GPU; the table shows one number of each
   (a loss, an inertia, an image statistic, a selection's overlap) and whether the two agree within the check's
   stated tolerance. Deterministic computations (k-means, GraphCut) must agree closely; a few steps of stochastic
   training must only land near each other (cuDNN kernels and the GPU's summation order differ from the CPU's).
2. **Benchmarks.** The matching-step, evaluation-epoch and matmul benchmarks of :mod:`dscore.studies.perf` on each
   device, as a share of the device's own matmul rate.
3. **A page.** One short page executed with the ``paper`` profile in dry-run mode (every code path of the page on a
   tiny problem), on the GPU when there is one, with Fashion-MNIST in place of a dataset not installed here.

Without CUDA every GPU cell says so and the CPU half still runs, so the script is tested on CPU machines. The whole
check takes a few minutes. Its data are scikit-learn's digits (shipped with scikit-learn) and, for the page,
whatever the page needs.
"""
from __future__ import annotations

import math
import tempfile
import time
from pathlib import Path
from typing import Any, Callable

import torch

__all__ = ["NO_CUDA", "COLUMNS", "ENGINE_CHECKS", "compare", "engine_checks", "benchmark_checks", "page_check", "run_check", "format_table"]

NO_CUDA = "skipped: no CUDA on this machine"


def _digits(n_per_class: int = 30):
    from ..data import load_dataset, stratified_subset

    return stratified_subset(load_dataset("digits", "train"), n_per_class, seed=0)


def _train(device: str) -> float:
    from ..models import create_model
    from ..train import TrainProtocol, train_model

    ds = _digits()
    torch.manual_seed(0)
    net = create_model("convnet3", num_classes=ds.num_classes, in_channels=ds.channels, image_size=ds.image_size,
                       width=16)
    out = train_model(net, ds.images, ds.labels, TrainProtocol(epochs=3, batch_size=64, lr=0.01), device=device,
                      seed=0, progress=False, amp=False)
    return float(out.history[-1]["train_loss"])


def _features(n: int = 2000, d: int = 32) -> torch.Tensor:
    return torch.randn(n, d, generator=torch.Generator().manual_seed(0))


def _graphcut(device: str) -> torch.Tensor:
    from ..select.greedy import graphcut

    return graphcut(_features().to(device), 100).cpu()


def _kmeans(device: str) -> float:
    from ..cluster import fit_kmeans

    return float(fit_kmeans(_features().to(device), 16, iters=20, seed=0).inertia)


def _distill(method: str) -> Callable[[str], float]:
    def run(device: str) -> float:
        from ..distill import distill, preset
        from ..distill.config import preset_components

        ds = _digits(20)
        base: dict[str, Any] = dict(iterations=2, batch_real=16, arch="convnet", arch_kwargs={"width": 16, "depth": 2},
                                    device=device, seed=0)
        family, _ = preset_components(method)
        if family in ("dc", "dsa"):
            base.update(outer_loops=2, inner_loops=1, net_batch=32)
        if family == "idc":
            base.update(outer_loops=3, n_data=32, net_batch=16, batch_syn=8)
        result = distill(ds.images, ds.labels, preset(method, "digits", 2, **base), mean=ds.mean, std=ds.std,
                         progress=False)
        return float(result.images.float().mean())
    return run


#: name → (the computation, what its number is, how the CPU and GPU numbers are compared, the tolerance)
ENGINE_CHECKS: dict[str, tuple[Callable[[str], Any], str, str, float]] = {
    "training (ConvNet-3, 3 epochs)": (_train, "final training loss", "abs", 0.25),
    "GraphCut (2000 points, 100 picks)": (_graphcut, "overlap of the selections", "overlap", 0.95),
    "k-means (2000 points, k 16)": (_kmeans, "inertia", "rel", 1e-3),
    **{f"distillation: {m} (2 iterations)": (_distill(m), "mean pixel of the set", "abs", 0.05)
       for m in ("dc", "dsa", "dm", "idc", "dream", "dreamplus")},
}


def _timed(fn: Callable[[str], Any], device: str) -> tuple[Any, float]:
    if device == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    value = fn(device)
    if device == "cuda":
        torch.cuda.synchronize()
    return value, time.perf_counter() - start


def compare(kind: str, cpu: Any, gpu: Any, tol: float) -> tuple[float, float, float, bool]:
    """``(cpu number, gpu number, difference, agree)`` for one check: ``kind`` "abs" or "rel" compares two numbers
    (agree when the absolute or relative difference is finite and at most ``tol``), "overlap" two selections (index
    tensors; the share of the CPU's picks the GPU also made, agree when at least ``tol``)."""
    if kind == "overlap":
        a, b = set(cpu.tolist()), set(gpu.tolist())
        share = len(a & b) / max(len(a), 1)
        return 1.0, share, 1.0 - share, share >= tol
    diff = abs(cpu - gpu) if kind == "abs" else abs(cpu - gpu) / max(abs(cpu), 1e-12)
    return cpu, gpu, diff, bool(math.isfinite(diff) and diff <= tol)


def engine_checks(cuda: bool, log=print) -> list[dict]:
    """Part 1: one row per :data:`ENGINE_CHECKS` entry (CPU always; GPU when ``cuda``)."""
    rows = []
    for name, (fn, what, kind, tol) in ENGINE_CHECKS.items():
        log(f"[gpu-check] {name}")
        cpu, t_cpu = _timed(fn, "cpu")
        row = {"part": "engine", "check": name, "measure": what, "cpu": 1.0 if kind == "overlap" else cpu,
               "result": NO_CUDA, "cpu s": round(t_cpu, 2)}
        if cuda:
            gpu, t_gpu = _timed(fn, "cuda")
            c, g, diff, ok = compare(kind, cpu, gpu, tol)
            tol_text = f"overlap >= {tol}" if kind == "overlap" else f"{'relative ' if kind == 'rel' else ''}" \
                                                                      f"difference <= {tol}"
            row.update(cpu=c, cuda=g, difference=diff, **{"cuda s": round(t_gpu, 2)},
                       result=("agree" if ok else "DIFFER") + f" ({tol_text})")
        rows.append(row)
    return rows


def benchmark_checks(cuda: bool, log=print) -> list[dict]:
    """Part 2: the matmul rate, one matching step and one evaluation epoch per device, each as a share of the
    device's own matmul (:mod:`dscore.studies.perf`)."""
    from ..studies import perf

    rows = []
    for device in ["cpu"] + (["cuda"] if cuda else []):
        log(f"[gpu-check] benchmarks on {device}")
        rate = perf.matmul_rate(device=device)
        rows.append({"part": "benchmark", "check": "matmul 2048² fp32", "measure": "GFLOP/s",
                     device: rate / 1e9, "result": "measured"})
        found = perf.matching_step_benchmark({"steps": 2}, methods=("idc",), device=device) \
            + perf.evaluation_epoch_benchmark({"epochs": 2}, device=device)
        for r in found:
            if "share" in r["metric"]:
                rows.append({"part": "benchmark", "check": r["section"], "measure": r["metric"],
                             device: r["value"], "result": "measured"})
    if not cuda:
        rows.append({"part": "benchmark", "check": "the benchmarks on the GPU", "result": NO_CUDA})
    return rows


def page_check(root: Path, page: str, cuda: bool, log=print) -> list[dict]:
    """Part 3: ``page`` executed with the ``paper`` profile in dry-run mode, in a fresh cache (on the GPU when
    ``cuda``); the dataset is swapped for Fashion-MNIST when the profile's is not installed here."""
    import os

    from .. import data
    from .params import declared_parameters, load_params
    from .runner import execute

    params = load_params(root, "paper", page)
    pairs = {"device": "cuda" if cuda else "cpu"}
    name = params.get("dataset")
    if name is not None:
        try:
            data.load_dataset(name, "test", download=False, progress=False)
        except data.DatasetNotFoundError:                    # not installed here: the check is of the code
            pairs["dataset"] = "fashion_mnist"
    pairs = {k: v for k, v in pairs.items() if k in declared_parameters(root / "notebooks" / f"{page}.ipynb")}
    log(f"[gpu-check] page {page} (paper profile, dry run) with {pairs}")
    old = os.environ.get("DSCORE_CACHE")
    with tempfile.TemporaryDirectory() as cache:
        os.environ["DSCORE_CACHE"] = cache
        start = time.perf_counter()
        try:
            execute(root, page, "paper", force=True, overrides=pairs, dry_run=True, log=log)
            result = "ran" + (" on the GPU" if cuda else " on the CPU (no CUDA)")
        except Exception as exc:                              # reported in the table, the script goes on
            result = f"FAILED: {str(exc).splitlines()[0][:120]}"
        finally:
            if old is None:
                os.environ.pop("DSCORE_CACHE", None)
            else:
                os.environ["DSCORE_CACHE"] = old
        seconds = time.perf_counter() - start
    return [{"part": "page", "check": f"{page} (paper, dry run)", "measure": "executed",
             ("cuda s" if cuda else "cpu s"): round(seconds, 1), "result": result}]


COLUMNS = ("part", "check", "measure", "cpu", "cuda", "difference", "cpu s", "cuda s", "result")


def format_table(rows: list[dict]) -> str:
    """``rows`` as one plain-text table (the columns of :data:`COLUMNS`, empty where a row has no value)."""
    def cell(v):
        if v is None:
            return ""
        if isinstance(v, float):
            return f"{v:.4g}"
        return str(v)

    table = [list(COLUMNS)] + [[cell(r.get(c)) for c in COLUMNS] for r in rows]
    widths = [max(len(row[i]) for row in table) for i in range(len(COLUMNS))]
    lines = ["  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in table]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def run_check(root: Path, *, page: str = "dream_interval", engines: bool = True, benchmarks: bool = True,
              log=print) -> tuple[list[dict], bool]:
    """Run the three parts; returns ``(rows, ok)``, ``ok`` False when an engine's CPU and GPU numbers differ beyond
    its tolerance or the page failed."""
    cuda = torch.cuda.is_available()
    log(f"[gpu-check] CUDA: {torch.cuda.get_device_name(0) if cuda else 'not available (the GPU half is skipped)'}")
    rows: list[dict] = []
    if engines:
        rows += engine_checks(cuda, log=log)
    if benchmarks:
        rows += benchmark_checks(cuda, log=log)
    if page:
        rows += page_check(root, page, cuda, log=log)
    ok = not any(str(r.get("result", "")).startswith(("DIFFER", "FAILED")) for r in rows)
    return rows, ok
