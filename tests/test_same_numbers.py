"""Speed-ups change how, never what: a distillation and an evaluation of a fixed seed run with the fast paths and
with the kernels they replace, on a small run, agree within the tolerance the fast paths state.

Fast paths covered: :class:`dscore.models.AvgPool2x2` (2×2 pooling by matrix products on the CPU, equal to the
pooling kernel up to the order of four additions).

Stated tolerance: distilled images within 1e-4 (pixels in [0, 1]) and losses within 1e-3 relative after a few
iterations; evaluation losses within 1e-4 relative and the same final accuracy. This holds for the paths without a
discrete choice (IDC, the bidirectional objective, pretraining). DREAM's k-means steps (representative sampling,
k-means initialisation) turn a rounding difference in an embedding into another picked sample once a sample lies
within rounding of two centroids, and the runs then part: those runs are equal in distribution, not in value, under
any change of floating-point order (this one, a new torch, another machine)."""
from __future__ import annotations

import pytest
import torch

from dscore import models
from dscore.distill import distill, preset
from dscore.train import PROTOCOLS, train_model


def _data(classes=3, per_class=24, size=16, seed=0):
    gen = torch.Generator().manual_seed(seed)
    # class-dependent blobs, so that training has something to learn
    base = torch.rand(classes, 1, size, size, generator=gen)
    x = (base.repeat_interleave(per_class, 0) + 0.3 * torch.rand(classes * per_class, 1, size, size, generator=gen))
    return (x / x.amax()).clamp(0, 1), torch.arange(classes).repeat_interleave(per_class)


def _kernel_pooling(monkeypatch):
    monkeypatch.setattr(models, "MATMUL_POOL_MIN_SIDE", 10**9)


@pytest.mark.parametrize("method", ["idc", "idc+bm+pt"])
def test_distillation_agrees_with_the_pooling_kernel(method, monkeypatch):
    x, y = _data()
    cfg = preset(method, "fashion_mnist", 2, arch="convnet3", arch_kwargs={"width": 4}, iterations=2, outer_loops=3,
                 batch_real=8, n_data=16, net_batch=8, pretrain_steps=2, interval=2, kmeans_iters=5, seed=3,
                 device="cpu", lr_img=0.05)
    fast = distill(x, y, cfg, progress=False)
    with monkeypatch.context() as m:
        _kernel_pooling(m)
        slow = distill(x, y, cfg, progress=False)
    moved = (slow.images - slow.snapshots[0][1]).abs().max() if slow.snapshots else slow.images.abs().max()
    assert moved > 1e-3                                    # the images did move, so the comparison means something
    torch.testing.assert_close(fast.images, slow.images, rtol=0, atol=1e-4)
    assert fast.history["loss"] == pytest.approx(slow.history["loss"], rel=1e-3)


def test_evaluation_agrees_with_the_pooling_kernel(monkeypatch):
    x, y = _data(per_class=16)
    tx, ty = _data(per_class=20, seed=1)
    protocol = PROTOCOLS["idc"].replace(epochs=6)

    def run():
        net = models.create_model("convnet3", num_classes=3, in_channels=1, image_size=16, width=4, seed=0)
        return train_model(net, x, y, protocol, test=(tx, ty), seed=0, progress=False)

    fast = run()
    with monkeypatch.context() as m:
        _kernel_pooling(m)
        slow = run()
    assert [h["train_loss"] for h in fast.history] == pytest.approx([h["train_loss"] for h in slow.history], rel=1e-4)
    assert fast.final_test_acc == slow.final_test_acc
