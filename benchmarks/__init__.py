"""Micro-benchmarks for dscore's hot paths.

``python -m benchmarks`` runs every ``benchmarks/bench_*.py`` module in its own process (so that
peak-memory numbers of one do not leak into another) and prints one table. Each module exposes
``run(quick: bool = False) -> dict`` and, when executed, writes its result as JSON to
``benchmarks/results/<name>.json`` (git-ignored) through an atomic write.
"""
from __future__ import annotations

import argparse
import json
import platform
import resource
import time
from pathlib import Path

import torch

from dscore.utils import atomic_write_text

RESULTS_DIR = Path(__file__).resolve().parent / "results"


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, in MiB (Linux reports ru_maxrss in KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


class Timer:
    """``with Timer() as t: ...`` then ``t.seconds`` (CUDA work is synchronised before reading)."""

    def __enter__(self):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self._start = time.perf_counter()
        return self

    def __exit__(self, *exc):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        self.seconds = time.perf_counter() - self._start
        return False


def environment() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "machine": platform.machine(),
        "processor": platform.processor() or platform.machine(),
    }


def write_result(name: str, result: dict) -> Path:
    """Write ``result`` (with the environment added) to ``benchmarks/results/<name>.json`` atomically."""
    path = RESULTS_DIR / f"{name}.json"
    atomic_write_text(path, json.dumps({"name": name, "environment": environment(), **result}, indent=2) + "\n")
    return path


def cli(name: str, run, argv: list[str] | None = None, *, description: str | None = None) -> int:
    """Command line shared by every ``bench_*.py``: ``[--quick] [--threads N]``, then print and save."""
    parser = argparse.ArgumentParser(prog=f"python -m benchmarks.bench_{name}", description=description,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes, for a smoke run")
    parser.add_argument("--threads", type=int, default=None, help="torch intra-op threads (default: torch's)")
    args = parser.parse_args(argv)
    if args.threads is not None:
        torch.set_num_threads(args.threads)
    result = run(quick=args.quick)
    path = write_result(name, result)
    for r in result["rows"]:
        value = f"{r['value']:.4g}" if isinstance(r["value"], float) else r["value"]
        print(f"{r['case']:<48} {r['metric']:<36} {value} {r.get('unit', '')}")
    print(f"written: {path}")
    return 0 if result["ok"] else 1
