"""GraphCut: incremental O(B·N·d) greedy vs. the dense-matrix greedy of the authors' code.

Cases (full size; ``--quick`` shrinks them):

* ``compare`` — N=5000, d=64, B=500: dscore's ``graphcut`` vs. a naive greedy that builds the
  N×N similarity matrix and recomputes ``lam·colsum − 2·Σ_{j∈S} s(j,·)`` over the unselected
  columns at every step (as DeepCore's GraphCut does). Same process, same data; the picks must match.
* ``large`` — N=60000, d=64, B=600 with dense features and with gradient features (C=10): time and
  peak-RSS growth (the dense N×N float64 matrix alone would need N²·8 bytes).
* ``bins`` — ``generate_bins`` on 60000×64 features, 10 classes, K=10 bins.

The large cases run first so that the process's peak RSS before them is only the input data.
"""
from __future__ import annotations

import math
import sys

import torch

from dscore.features import GradientFeatures
from dscore.quantize import generate_bins
from dscore.select import graphcut
from dscore.studies.perf import clustered_features, naive_graphcut

from . import Timer, cli, peak_rss_mib

NAME = "graphcut"


def row(case: str, metric: str, value, unit: str = "") -> dict:
    return {"case": case, "metric": metric, "value": value, "unit": unit}


def run(quick: bool = False) -> dict:
    n_cmp, b_cmp = (1000, 100) if quick else (5000, 500)
    n_big, b_big = (6000, 60) if quick else (60000, 600)
    d, classes, num_bins = 64, 10, 10
    rows = []
    graphcut(torch.randn(64, d), 8)                           # warm up kernels and allocator

    # large, dense features
    x_big, y_big = clustered_features(n_big, d, classes, seed=1)
    rss0 = peak_rss_mib()
    with Timer() as t:
        picks = graphcut(x_big, b_big)
    case = f"large N={n_big} d={d} B={b_big}"
    rows += [row(case, "seconds", t.seconds, "s"), row(case, "peak_rss_growth", peak_rss_mib() - rss0, "MiB"),
             row(case, "dense_matrix_would_need", n_big * n_big * 8 / 2**30, "GiB")]
    assert picks.unique().numel() == b_big

    # large, gradient features (C = 10): δ from random logits
    gen = torch.Generator().manual_seed(2)
    delta = torch.softmax(torch.randn(n_big, classes, generator=gen), 1) - torch.nn.functional.one_hot(y_big, classes)
    g = GradientFeatures(delta.float(), x_big)
    rss0 = peak_rss_mib()
    with Timer() as t:
        graphcut(g, b_big)
    case = f"large-gradient N={n_big} C={classes} d={d} B={b_big}"
    rows += [row(case, "seconds", t.seconds, "s"), row(case, "peak_rss_growth", peak_rss_mib() - rss0, "MiB")]

    # DQ bins
    rss0 = peak_rss_mib()
    with Timer() as t:
        bins = generate_bins(x_big, y_big, num_bins)
    case = f"bins N={n_big} d={d} classes={classes} K={num_bins}"
    rows += [row(case, "seconds", t.seconds, "s"), row(case, "peak_rss_growth", peak_rss_mib() - rss0, "MiB")]
    assert sum(b.numel() for b in bins) == n_big

    # fast vs naive on the same data, same process
    x_cmp, _ = clustered_features(n_cmp, d, classes, seed=3)
    with Timer() as t_fast:
        fast = graphcut(x_cmp, b_cmp).tolist()
    with Timer() as t_naive:
        naive, matrix_seconds = naive_graphcut(x_cmp, b_cmp)
    case = f"compare N={n_cmp} d={d} B={b_cmp}"
    rows += [row(case, "fast_seconds", t_fast.seconds, "s"), row(case, "naive_seconds", t_naive.seconds, "s"),
             row(case, "naive_matrix_seconds", matrix_seconds, "s"),
             row(case, "speedup", t_naive.seconds / t_fast.seconds, "x"),
             row(case, "speedup_greedy_only", (t_naive.seconds - matrix_seconds) / t_fast.seconds, "x"),
             row(case, "picks_identical", fast == naive)]
    if fast != naive:
        first = next(i for i, (a, b) in enumerate(zip(fast, naive)) if a != b)
        rows.append(row(case, "first_difference_at_step", first))
    return {"quick": quick, "rows": rows, "ok": fast == naive and not math.isnan(rows[0]["value"])}


def main(argv: list[str] | None = None) -> int:
    return cli(NAME, run, argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
