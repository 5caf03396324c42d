"""Tests for dscore.quantize.pixelquant: Grad-CAM patch importance, patch dropping, the MAE and storage accounting."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore.quantize.config import MAEConfig
from dscore.models import create_model
from dscore.quantize.pixelquant import (
    MaskedAutoencoder,
    drop_mask,
    DEFAULT_THETA,
    effective_keep_ratio,
    image_fraction_for,
    gradcam,
    gradcam_patch_importance,
    patchify,
    pixel_mask,
    quantize_pixels,
    random_keep_mask,
    reconstruct,
    restore_pixels,
    sincos_pos_embed_2d,
    storage_ratio,
    train_mae,
    unpatchify,
)


def rand(seed: int, *shape) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def tiny_mae(**kw) -> MaskedAutoencoder:
    torch.manual_seed(0)
    args = dict(image_size=8, in_channels=1, patch=2, embed_dim=16, depth=1, num_heads=2, decoder_dim=16,
                decoder_depth=1, decoder_heads=2)
    args.update(kw)
    return MaskedAutoencoder(**args)


# ------------------------------------------------------------------------------------- Grad-CAM

class QuadrantNet(nn.Module):
    """Logits depend only on the top-left quadrant: channel 0 of the feature map is the image there."""

    class Split(nn.Module):
        def __init__(self, size: int, pool: int):
            super().__init__()
            mask = torch.zeros(1, 1, size, size)
            mask[..., : size // 2, : size // 2] = 1.0
            self.register_buffer("mask", mask)
            self.pool = pool

        def forward(self, x):
            return F.avg_pool2d(torch.cat([x * self.mask, x * (1 - self.mask)], dim=1), self.pool)

    def __init__(self, size: int = 16, pool: int = 1):
        super().__init__()
        self.features = self.Split(size, pool)
        self.weights = nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))

    def forward(self, x):
        a = self.features(x)
        return a[:, 0].mean(dim=(1, 2)).unsqueeze(1) * self.weights + 0.0 * a[:, 1].mean(dim=(1, 2)).unsqueeze(1)


@pytest.mark.parametrize("pool", [1, 4])
def test_gradcam_finds_the_quadrant_the_logit_depends_on(pool):
    model = QuadrantNet(16, pool)
    images = rand(0, 5, 1, 16, 16) + 0.1
    labels = torch.tensor([0, 1, 2, 0, 1])
    scores = gradcam_patch_importance(model, images, labels, 4, target_layer="features", device="cpu")
    assert scores.shape == (5, 16)
    top = scores.topk(4, dim=1).indices.sort(dim=1).values
    assert torch.equal(top, torch.tensor([[0, 1, 4, 5]] * 5))
    if pool == 1:  # no upsampling blur: everything outside the quadrant scores exactly 0
        outside = [i for i in range(16) if i not in (0, 1, 4, 5)]
        assert float(scores[:, outside].abs().max()) == 0.0


def naive_gradcam_patches(model, layer, images, labels, patch):
    """One image at a time: retain the activation's gradient, weight channels, upsample, loop over patches."""
    rows = []
    for x, y in zip(images, labels):
        store = {}
        handle = layer.register_forward_hook(lambda m, i, o: store.__setitem__("a", o))
        logits = model(x.unsqueeze(0))
        handle.remove()
        a = store["a"]
        grad, = torch.autograd.grad(logits[0, int(y)], a)
        alpha = grad.mean(dim=(2, 3), keepdim=True)
        cam = F.relu((alpha * a).sum(1, keepdim=True))
        cam = F.interpolate(cam, size=x.shape[1:], mode="bilinear", align_corners=False)[0, 0].detach()
        h, w = cam.shape
        rows.append([float(cam[r:r + patch, c:c + patch].mean()) for r in range(0, h, patch)
                     for c in range(0, w, patch)])
    return torch.tensor(rows)


def test_gradcam_matches_per_sample_reference_on_a_convnet():
    model = create_model("convnet", depth=2, width=6, num_classes=3, in_channels=1, image_size=16, seed=0,
                         act="leakyrelu").eval()
    images, labels = rand(1, 7, 1, 16, 16), torch.tensor([0, 1, 2, 2, 1, 0, 1])
    layer = model.layers[-2]                                   # the last block's activation (default layer)
    got = gradcam_patch_importance(model, images, labels, 4, device="cpu", batch_size=3)
    want = naive_gradcam_patches(model, layer, images, labels, 4)
    assert torch.allclose(got, want, atol=1e-6, rtol=1e-4)
    assert float(got.max()) > 0


def test_gradcam_needs_a_map_layer_and_valid_inputs():
    vit = create_model("vit", num_classes=2, in_channels=1, image_size=8, depth=1, embed_dim=16, num_heads=2, seed=0)
    with pytest.raises(ValueError, match="target_layer"):
        gradcam(vit, rand(0, 1, 1, 8, 8), torch.tensor([0]))
    model = QuadrantNet(16)
    with pytest.raises(ValueError, match="not divisible"):
        gradcam_patch_importance(model, rand(0, 1, 1, 16, 16), torch.tensor([0]), 5, target_layer="features")
    with pytest.raises(ValueError, match="not a submodule"):
        gradcam(model, rand(0, 1, 1, 16, 16), torch.tensor([0]), target_layer="nope")
    with pytest.raises(ValueError, match="labels"):
        gradcam(model, rand(0, 2, 1, 16, 16), torch.tensor([0]), target_layer="features")


def test_gradcam_leaves_parameters_and_mode_alone():
    model = create_model("convnet", depth=2, width=4, num_classes=3, in_channels=1, image_size=8, seed=1)
    model.train()
    gradcam(model, rand(2, 3, 1, 8, 8), torch.tensor([0, 1, 2]), device="cpu")
    assert model.training
    assert all(p.grad is None for p in model.parameters())


# ------------------------------------------------------------------------------------ drop mask

def test_drop_mask_counts_and_order():
    imp = torch.tensor([[0.5, 0.1, 0.9, 0.3], [4.0, 3.0, 2.0, 1.0]])
    keep = drop_mask(imp, 0.5)
    assert keep.tolist() == [[True, False, True, False], [True, True, False, False]]
    assert drop_mask(imp, 0.0).all()
    assert drop_mask(imp, 0.74).sum().item() == 4          # ⌊0.74·4⌋ = 2 dropped per row
    assert drop_mask(imp, 0.76).tolist() == [[False, False, True, False], [True, False, False, False]]


def test_drop_mask_ties_drop_the_lowest_index_first():
    imp = torch.tensor([[1.0, 1.0, 1.0, 1.0, 0.0, 1.0]])
    assert drop_mask(imp, 0.5).tolist() == [[False, False, True, True, False, True]]


@pytest.mark.parametrize("theta", [1.0, -0.1, float("nan")])
def test_drop_mask_rejects_theta(theta):
    with pytest.raises(ValueError, match="theta"):
        drop_mask(torch.zeros(1, 4), theta)


@settings(max_examples=25, deadline=None)
@given(st.integers(1, 5), st.integers(1, 20), st.floats(0.0, 0.999), st.integers(0, 2**16))
def test_drop_mask_drops_exactly_the_least_important(n, p, theta, seed):
    imp = torch.randint(0, 4, (n, p), generator=torch.Generator().manual_seed(seed)).float()  # many ties
    keep = drop_mask(imp, theta)
    dropped = math.floor(theta * p)
    assert (keep.sum(1) == p - dropped).all()
    for row, k in zip(imp, keep):
        if 0 < dropped < p:
            assert row[~k].max() <= row[k].min()
            # among equal values at the boundary, the dropped ones have the lower indices
            level = row[~k].max()
            tied = (row == level).nonzero().flatten()
            assert (~k[tied]).tolist() == sorted((~k[tied]).tolist(), reverse=True)


# ----------------------------------------------------------------------------- patches and MAE

def test_patchify_roundtrip_and_pixel_mask():
    x = rand(3, 2, 3, 8, 12)
    p = patchify(x, 4)
    assert p.shape == (2, 6, 48)
    assert torch.equal(p[0, 1].view(3, 4, 4), x[0, :, 0:4, 4:8])       # patch 1 = row 0, column 1
    assert torch.equal(unpatchify(p, 4, 3, 8, 12), x)
    keep = torch.zeros(2, 6, dtype=torch.bool)
    keep[0, 4] = True                                                  # row 1, column 1
    m = pixel_mask(keep, 4, 8, 12)
    assert m.shape == (2, 1, 8, 12) and m.sum() == 16 and bool(m[0, 0, 4:8, 4:8].all())


def test_sincos_embeddings():
    e = sincos_pos_embed_2d(8, 3, 2)
    assert e.shape == (6, 8)
    assert torch.unique(e, dim=0).shape[0] == 6
    with pytest.raises(ValueError, match="multiple of 4"):
        sincos_pos_embed_2d(6, 2, 2)


def test_random_keep_mask_counts_and_seed():
    a = random_keep_mask(5, 16, 0.75, generator=torch.Generator().manual_seed(0))
    b = random_keep_mask(5, 16, 0.75, generator=torch.Generator().manual_seed(0))
    assert torch.equal(a, b) and (a.sum(1) == 4).all()
    assert (random_keep_mask(3, 4, 0.99).sum(1) == 1).all()          # at least one visible
    assert (random_keep_mask(3, 4, 0.01).sum(1) == 3).all()          # at least one hidden
    with pytest.raises(ValueError, match="mask_ratio"):
        random_keep_mask(1, 4, 1.0)


def test_mae_shapes_and_validation():
    mae = tiny_mae()
    x = rand(4, 3, 1, 8, 8)
    keep = random_keep_mask(3, 16, 0.5, generator=torch.Generator().manual_seed(1))
    assert mae(x, keep).shape == (3, 16, 4)
    assert mae.loss(x, keep).dim() == 0
    uneven = keep.clone()
    uneven[0] = True
    with pytest.raises(ValueError, match="same number"):
        mae(x, uneven)
    with pytest.raises(ValueError, match="not divisible"):
        MaskedAutoencoder(image_size=10, in_channels=1, patch=4)
    with pytest.raises(ValueError, match="do not fit"):
        mae(rand(0, 1, 3, 8, 8), keep[:1])


def test_mae_encoder_sees_only_visible_patches():
    mae = tiny_mae().eval()
    x = rand(5, 2, 1, 8, 8)
    keep = random_keep_mask(2, 16, 0.5, generator=torch.Generator().manual_seed(2))
    changed = torch.where(pixel_mask(keep, 2, 8, 8), x, torch.rand_like(x))
    with torch.no_grad():
        assert torch.allclose(mae(x, keep), mae(changed, keep), atol=1e-6)


def test_mae_loss_decreases_on_a_tiny_dataset():
    images = rand(6, 16, 1, 8, 8)
    keep = random_keep_mask(16, 16, 0.5, generator=torch.Generator().manual_seed(3))
    init = tiny_mae()
    with torch.no_grad():
        before = float(init.loss(images, keep))
    mae = train_mae(images, {"patch": 2, "mask_ratio": 0.5, "epochs": 15, "batch_size": 8, "lr": 3e-3, "seed": 0},
                    device="cpu", progress=False, mae=tiny_mae())
    with torch.no_grad():
        after = float(mae.loss(images, keep))
    assert after < 0.8 * before
    assert len(mae.loss_history) == 15 and not mae.training


def test_train_mae_is_seeded():
    images = rand(7, 6, 1, 8, 8)
    cfg = MAEConfig(patch=4, epochs=2, batch_size=4, seed=5, embed_dim=8, depth=1, num_heads=2, decoder_dim=8,
                    decoder_depth=1, decoder_heads=2)
    a, b = train_mae(images, cfg, device="cpu", progress=False), train_mae(images, cfg, device="cpu", progress=False)
    assert all(torch.equal(p, q) for p, q in zip(a.state_dict().values(), b.state_dict().values()))
    with pytest.raises(ValueError, match="not divisible"):
        train_mae(images, cfg.replace(patch=3), device="cpu")


def test_reconstruct_keeps_kept_patches_exactly():
    mae = tiny_mae()
    x = rand(8, 4, 1, 8, 8)
    keep = torch.ones(4, 16, dtype=torch.bool)
    keep[0, :8] = False                         # rows keep different numbers of patches
    keep[1, ::3] = False
    keep[2, 5] = False                          # row 3 keeps everything
    out = reconstruct(mae, x, keep, batch_size=1)
    m = pixel_mask(keep, 2, 8, 8)
    assert torch.equal(out[m], x[m])
    assert torch.equal(out[3], x[3])
    assert not torch.equal(out[0], x[0])
    assert float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    with pytest.raises(ValueError, match="keeps no patch"):
        reconstruct(mae, x[:1], torch.zeros(1, 16, dtype=torch.bool))


# ------------------------------------------------------------------------------------- storage

def test_quantize_and_restore_pixels():
    x = rand(9, 3, 2, 8, 8)
    keep = drop_mask(rand(10, 3, 4), 0.5)
    record = quantize_pixels(x, keep, 4)
    assert record["patches"].shape == (6, 2, 4, 4)
    assert record["shape"] == [3, 2, 8, 8] and record["patch"] == 4
    restored = restore_pixels(record, fill=-1.0)
    m = pixel_mask(keep, 4, 8, 8).expand_as(x)
    assert torch.equal(restored[m], x[m]) and bool((restored[~m] == -1.0).all())
    mae = tiny_mae(in_channels=2, patch=4, image_size=8)
    assert torch.equal(restore_pixels(record, mae), reconstruct(mae, restored, keep))
    with pytest.raises(ValueError, match="patch"):
        restore_pixels(record, tiny_mae(in_channels=2))


def test_storage_accounting():
    keep = torch.tensor([[True, True, False, True], [True, False, False, True]])
    assert storage_ratio(keep) == pytest.approx(5 / 8)
    assert effective_keep_ratio(0.3, 0.25) == pytest.approx(0.225)
    assert effective_keep_ratio(1.0, 0.0) == 1.0
    with pytest.raises(ValueError, match="sample_ratio"):
        effective_keep_ratio(0.0, 0.25)
    with pytest.raises(ValueError, match="theta"):
        effective_keep_ratio(0.5, 1.0)


def test_default_theta_is_the_authors_mask_ratio_everywhere():
    import inspect

    import dscore.quantize as quantize
    import dscore.quantize.pipeline as pipeline

    assert DEFAULT_THETA == quantize.DEFAULT_THETA == 0.2
    for fn in (pipeline.pixel_quantize, effective_keep_ratio, image_fraction_for, drop_mask):
        assert inspect.signature(fn).parameters["theta"].default == 0.2, fn.__name__
    assert quantize.effective_keep_ratio is effective_keep_ratio and quantize.image_fraction_for is image_fraction_for


@pytest.mark.parametrize("effective, theta, fraction", [(0.1, 0.2, 0.125), (0.8, 0.2, 1.0), (0.3, 0.0, 0.3),
                                                        (0.05, 0.5, 0.1), (0.01, 0.2, 0.0125)])
def test_image_fraction_for_inverts_effective_keep_ratio(effective, theta, fraction):
    # the authors' "10%" CIFAR-10 set: 12.5% of the images, 80% of their patches
    got = image_fraction_for(effective, theta)
    assert got == pytest.approx(fraction, rel=1e-12)
    assert effective_keep_ratio(got, theta) == pytest.approx(effective, rel=1e-12)
    for sample in (0.125, 0.37, 1.0):
        assert image_fraction_for(effective_keep_ratio(sample, theta), theta) == pytest.approx(sample, rel=1e-12)
    assert image_fraction_for(0.1) == pytest.approx(0.125) and effective_keep_ratio(0.125) == pytest.approx(0.1)


@pytest.mark.parametrize("effective, theta, word", [(0.0, 0.2, "effective_ratio"), (0.81, 0.2, "effective_ratio"),
                                                    (-0.1, 0.2, "effective_ratio"), (0.1, 1.0, "theta"),
                                                    (0.1, -0.1, "theta"), (float("nan"), 0.2, "effective_ratio")])
def test_image_fraction_for_rejects_impossible_targets(effective, theta, word):
    with pytest.raises(ValueError, match=word):
        image_fraction_for(effective, theta)
