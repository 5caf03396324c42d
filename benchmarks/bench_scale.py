"""What each DQ/ADQ stage costs, measured small and extrapolated by its complexity to CIFAR-10 and ImageNet.

Stages (synthetic 3×32×32 images, 10 classes, the ConvNet-3 of width 32 as feature and evaluation network):

* ``features`` — :func:`dscore.features.extract_gradient_features`, one forward pass: linear in N;
* ``bins`` — :func:`dscore.quantize.generate_bins` on the gradient features, K = 10: per class O(n_c²·d) (n_c/K
  GraphCut picks per bin, each O(n_c·d)); measured at two class sizes — the fitted exponent is reported, and the
  extrapolation uses the algorithm's exponent 2 (at small n_c a fixed cost per pick still dominates, so the fitted
  exponent is lower and would underestimate large classes);
* ``head`` — :func:`dscore.quantize.diversity.train_contrastive_head`, one epoch: linear in N·epochs;
* ``evaluation`` — :func:`dscore.train.train_model`, one epoch: linear in N·epochs.

Times are CPU seconds of the benchmark process (run it with ``--threads 1``: the cost on one core). Every
``*_extrapolated`` row is *not a measurement*: it is the measured rate times the work of the target (CIFAR-10:
5 000 images per class; ImageNet: 1 281 per class, 1 000 classes, counted at 32×32 — at 224×224 a convolutional
network does about (224/32)² = 49× the work per image), on one process of the measuring machine. With W
data-parallel processes (``torchrun``), features, head and evaluation divide by about W and the bins by about
min(W, classes) (classes are dealt out by their cost n_c²).
"""
from __future__ import annotations

import math
import sys
import time

import torch

from dscore.features import extract_gradient_features
from dscore.models import create_model
from dscore.quantize import generate_bins
from dscore.quantize.diversity import train_contrastive_head
from dscore.train import train_model

from . import cli

NAME = "scale"
TARGETS = {"CIFAR-10": (10, 5000), "ImageNet (32 px)": (1000, 1281)}   # classes, images per class
EVAL_EPOCHS = 200           # the papers' evaluation schedule (ADQ: 200 epochs)
HEAD_EPOCHS = 5


class Timer:
    """CPU seconds of this process (``time.process_time``): on a shared machine the wall time also counts the
    other processes' turns; with ``--threads 1`` this is the cost on one idle core."""

    def __enter__(self):
        self._start = time.process_time()
        return self

    def __exit__(self, *exc):
        self.seconds = time.process_time() - self._start
        return False


def row(case: str, metric: str, value, unit: str = "") -> dict:
    return {"case": case, "metric": metric, "value": value, "unit": unit}


def _data(n: int, classes: int, seed: int):
    gen = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % classes
    base = torch.rand(classes, 3, 32, 32, generator=gen)
    images = (0.6 * base[labels] + 0.4 * torch.rand(n, 3, 32, 32, generator=gen)).clamp(0, 1)
    return images, labels


def _net(classes: int):
    return create_model("convnet3", num_classes=classes, in_channels=3, image_size=32, mean=(0.5,) * 3,
                        std=(0.25,) * 3, seed=0, width=32).eval()


def run(quick: bool = False) -> dict:
    classes = 10
    n = 256 if quick else 1024
    sizes = (40, 80) if quick else (100, 200)
    images, labels = _data(n, classes, 0)
    model = _net(classes)
    rows = []

    extract_gradient_features(model, images[:64], labels[:64], batch_size=64, progress=False)   # warm-up
    with Timer() as t:
        g = extract_gradient_features(model, images, labels, batch_size=256, progress=False)
    feat_rate = t.seconds / n
    rows += [row(f"features N={n}", "cpu_seconds", t.seconds, "s"), row(f"features N={n}", "per_image", feat_rate, "s")]

    # bins: two class sizes → exponent of n_c (expected ≈ 2), cost per class at the larger size
    per_class = []
    for nc in sizes:
        imgs, labs = _data(nc * classes, classes, 1)
        gg = extract_gradient_features(model, imgs, labs, batch_size=256, progress=False)
        with Timer() as t:
            generate_bins(gg, labs, 10)
        per_class.append(t.seconds / classes)
        rows.append(row(f"bins n_c={nc} classes={classes} K=10", "seconds_per_class", t.seconds / classes, "s"))
    exponent = math.log(per_class[1] / per_class[0]) / math.log(sizes[1] / sizes[0])
    rows.append(row("bins", "fitted_exponent_of_n_c", exponent))
    exponent = 2.0

    with Timer() as t:
        train_contrastive_head(model, images, {"epochs": 1, "batch_size": 256, "hidden_dim": 512, "out_dim": 128},
                               progress=False)
    head_rate = t.seconds / n
    rows.append(row(f"head N={n} 1 epoch", "per_image_epoch", head_rate, "s"))

    net = _net(classes)
    with Timer() as t:
        train_model(net, images, labels, {"epochs": 1, "batch_size": 128, "lr": 0.05}, device="cpu", progress=False)
    eval_rate = t.seconds / n
    rows.append(row(f"evaluation N={n} 1 epoch", "per_image_epoch", eval_rate, "s"))

    for name, (c, nc) in TARGETS.items():
        total = c * nc
        case = f"{name}: {total} images"
        rows += [row(case, "features_extrapolated", feat_rate * total, "s"),
                 row(case, "bins_extrapolated", c * per_class[1] * (nc / sizes[1]) ** exponent, "s"),
                 row(case, "head_extrapolated", head_rate * total * HEAD_EPOCHS, "s"),
                 row(case, f"evaluation_10pct_{EVAL_EPOCHS}ep_extrapolated", eval_rate * 0.1 * total * EVAL_EPOCHS, "s")]
    ok = all(math.isfinite(r["value"]) for r in rows if isinstance(r["value"], float)) and len(g) == n
    return {"quick": quick, "rows": rows, "ok": ok}


def main(argv: list[str] | None = None) -> int:
    return cli(NAME, run, argv, description=__doc__)


if __name__ == "__main__":
    sys.exit(main())
