"""Tests of dscore.augment: crop/flip, DSA and IDC DiffAug (Siamese draws, per-sample draws)."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore.augment import (DSA_FAMILIES, DSA_STRATEGY, AugParams, DiffAugConfig, aug_apply, dsa_apply,
                            dsa_sample_params, get_augmentation, idc_apply, idc_sample_params, list_augmentations,
                            random_crop_flip, siamese_dsa, siamese_idc)

OPS = ("brightness", "saturation", "contrast", "crop", "cutout", "flip", "scale", "rotate")
WIDTH = {"brightness": 1, "saturation": 1, "contrast": 1, "crop": 2, "cutout": 2, "flip": 1, "scale": 2, "rotate": 1}


def images(n=3, c=3, h=8, w=8, seed=0):
    return torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed))


def fixed(op, u, n=1):
    """AugParams for one op with all uniforms equal to ``u``."""
    return AugParams(ops=(op,), values={op: torch.full((n, WIDTH[op]), float(u))}, n=n)


# ----------------------------------------------------------------------------------- naive refs

def naive_op(img, op, u, cfg=DiffAugConfig()):
    """One image (C, H, W), explicit per-pixel loops / formulas — reference for the vectorised ops."""
    c, h, w = img.shape
    if op == "brightness":
        return img + (u[0] - 0.5) * cfg.brightness
    if op == "saturation":
        m = img.mean(0, keepdim=True)
        return (img - m) * (u[0] * cfg.saturation) + m
    if op == "contrast":
        m = img.mean()
        return (img - m) * (u[0] + cfg.contrast) + m
    if op == "crop":
        sh, sw = int(h * cfg.crop_ratio + 0.5), int(w * cfg.crop_ratio + 0.5)
        ty = min(int(u[0] * (2 * sh + 1)), 2 * sh) - sh
        tx = min(int(u[1] * (2 * sw + 1)), 2 * sw) - sw
        out = torch.zeros_like(img)
        for r in range(h):
            for q in range(w):
                if 0 <= r + ty < h and 0 <= q + tx < w:
                    out[:, r, q] = img[:, r + ty, q + tx]
        return out
    if op == "cutout":
        ch, cw = int(h * cfg.cutout_ratio + 0.5), int(w * cfg.cutout_ratio + 0.5)
        cy = min(int(u[0] * (h + 1 - ch % 2)), h - ch % 2)
        cx = min(int(u[1] * (w + 1 - cw % 2)), w - cw % 2)
        out = img.clone()
        for r in range(max(cy - ch // 2, 0), min(cy - ch // 2 + ch, h)):
            for q in range(max(cx - cw // 2, 0), min(cx - cw // 2 + cw, w)):
                out[:, r, q] = 0
        return out
    if op == "flip":
        return img.flip(2) if u[0] < cfg.flip_p else img
    if op in ("scale", "rotate"):
        if op == "scale":
            lo = 1 / cfg.scale_ratio
            sx, sy = u[0] * (cfg.scale_ratio - lo) + lo, u[1] * (cfg.scale_ratio - lo) + lo
            a, b, cc, d = sx, 0.0, 0.0, sy
        else:
            t = (u[0] - 0.5) * 2 * cfg.rotate_degrees * math.pi / 180
            a, b, cc, d = math.cos(t), -math.sin(t), math.sin(t), math.cos(t)
        out = torch.zeros_like(img)
        for r in range(h):
            for q in range(w):
                # output pixel → normalised coords (align_corners=True) → source position
                xn, yn = -1 + 2 * q / (w - 1), -1 + 2 * r / (h - 1)
                xs, ys = a * xn + b * yn, cc * xn + d * yn
                px, py = (xs + 1) * (w - 1) / 2, (ys + 1) * (h - 1) / 2
                x0, y0 = math.floor(px), math.floor(py)
                for yy, wy in ((y0, 1 - (py - y0)), (y0 + 1, py - y0)):
                    for xx, wx in ((x0, 1 - (px - x0)), (x0 + 1, px - x0)):
                        if 0 <= yy < h and 0 <= xx < w:
                            out[:, r, q] += wy * wx * img[:, yy, xx]
        return out
    raise AssertionError(op)


@pytest.mark.parametrize("op", OPS)
def test_per_sample_ops_match_naive_reference(op):
    x = images(n=3, h=8, w=6, seed=1)
    u = torch.rand(3, WIDTH[op], generator=torch.Generator().manual_seed(2))
    u[0] = 0.999                                       # extremes of the ranges
    u[1] = 0.0
    got = aug_apply(x, AugParams(ops=(op,), values={op: u}, n=3))
    for i in range(3):
        ref = naive_op(x[i], op, u[i].tolist())
        assert torch.allclose(got[i], ref, atol=1e-5), (op, i)


@pytest.mark.parametrize("op,u", [("brightness", 0.5), ("saturation", 0.5), ("contrast", 0.5), ("crop", 0.5),
                                  ("scale", (1 - 1 / 1.2) / (1.2 - 1 / 1.2)), ("rotate", 0.5), ("flip", 0.9)])
def test_identity_settings(op, u):
    x = images()
    assert torch.allclose(aug_apply(x, fixed(op, u)), x, atol=1e-5)


def test_flip_twice_is_identity_and_cutout_zeroes_half_side_square():
    x = images(h=8, w=8)
    flip = fixed("flip", 0.0)
    assert torch.equal(aug_apply(x, flip), x.flip(3))
    assert torch.equal(aug_apply(aug_apply(x, flip), flip), x)
    cut = aug_apply(x + 1, AugParams(ops=("cutout",), values={"cutout": torch.tensor([[0.5, 0.5]])}, n=1))
    zero = (cut == 0).all(dim=1)                      # (N, H, W)
    assert zero.sum(dim=(1, 2)).tolist() == [16, 16, 16]   # a 4×4 square inside the 8×8 image


def test_rotate_inverse_roughly_restores_centre():
    x = F.interpolate(images(n=2, h=4, w=4), size=(32, 32), mode="bilinear")   # smooth images
    fwd = fixed("rotate", 0.9)
    back = fixed("rotate", 0.1)
    out = aug_apply(aug_apply(x, fwd), back)
    assert (out[..., 10:22, 10:22] - x[..., 10:22, 10:22]).abs().max() < 0.05


@pytest.mark.parametrize("family", list(DSA_FAMILIES))
def test_siamese_same_transform_on_both_batches(family):
    real, syn = images(n=4, seed=3), images(n=2, seed=4)
    params = dsa_sample_params(family, 1, torch.Generator().manual_seed(5))
    both = dsa_apply(torch.cat([real, syn]), params)
    assert torch.allclose(both, torch.cat([dsa_apply(real, params), dsa_apply(syn, params)]), atol=1e-6)
    # a batch concatenated with itself gets the identical transform on both halves
    doubled = dsa_apply(torch.cat([syn, syn]), params)
    assert torch.equal(doubled[:2], doubled[2:])


@pytest.mark.parametrize("fn", [siamese_dsa, siamese_idc])
def test_siamese_helpers_share_one_draw_and_pass_gradients(fn):
    real = images(n=5, seed=6)
    syn = real[:2].clone().requires_grad_(True)
    real_aug, syn_aug = fn(real, syn, torch.Generator().manual_seed(7))
    assert torch.allclose(real_aug[:2], syn_aug, atol=1e-6)      # same pixels in → same pixels out
    syn_aug.pow(2).sum().backward()
    assert syn.grad is not None and syn.grad.abs().sum() > 0
    again = fn(real, syn.detach(), torch.Generator().manual_seed(7))
    assert torch.equal(again[0], real_aug) and torch.equal(again[1], syn_aug.detach())


def test_seed_reproduces_and_draws_vary():
    x = images(n=6, h=16, w=16)
    outs = [get_augmentation("dsa")(x, torch.Generator().manual_seed(s)) for s in (0, 0, 1, 2, 3)]
    assert torch.equal(outs[0], outs[1])
    assert any(not torch.allclose(outs[0], o) for o in outs[2:])
    p1 = dsa_sample_params(DSA_STRATEGY, 6, torch.Generator().manual_seed(9))
    p2 = dsa_sample_params(DSA_STRATEGY, 6, torch.Generator().manual_seed(9))
    assert p1.ops == p2.ops and all(torch.equal(p1.values[k], p2.values[k]) for k in p1.ops)


def test_dsa_picks_one_family_per_call_and_covers_all():
    seen = set()
    gen = torch.Generator().manual_seed(0)
    for _ in range(60):
        p = dsa_sample_params(DSA_STRATEGY, 1, gen)
        assert p.ops in DSA_FAMILIES.values()
        seen.add(p.ops)
    assert seen == set(DSA_FAMILIES.values())


def test_idc_chain_order_and_choices():
    gen = torch.Generator().manual_seed(0)
    middles = set()
    for _ in range(30):
        p = idc_sample_params(1, gen)
        assert p.ops[:3] == ("brightness", "saturation", "contrast") and p.ops[-1] == "cutout"
        assert len(p.ops) == 5
        middles.add(p.ops[3])
    assert middles == {"crop", "scale", "rotate"}
    assert idc_sample_params(1, gen, choices=("crop",), cutout=False).ops == ("brightness", "saturation",
                                                                              "contrast", "crop")
    assert idc_sample_params(1, gen, flip=True).ops[0] == "flip"
    x = images()
    p = idc_sample_params(3, torch.Generator().manual_seed(1))
    assert torch.equal(idc_apply(x, p), aug_apply(x, p))


def test_per_sample_draw_equals_individual_application():
    x = images(n=4, h=12, w=12)
    p = idc_sample_params(4, torch.Generator().manual_seed(2))
    out = idc_apply(x, p)
    for i in range(4):
        single = AugParams(ops=p.ops, values={k: v[i:i + 1] for k, v in p.values.items()}, n=1)
        assert torch.allclose(out[i:i + 1], idc_apply(x[i:i + 1], single), atol=1e-6)


def test_registry_and_evaluation_augmentations():
    assert {"none", "crop_flip", "dsa", "idc", "idc_noflip", "idc_cutout", "idc_net"} <= set(list_augmentations())
    x = images(n=5, h=16, w=16)
    for name in ("dsa", "idc", "idc_noflip", "idc_cutout", "idc_net"):
        fn = get_augmentation(name)
        a = fn(x, torch.Generator().manual_seed(3))
        assert a.shape == x.shape and torch.isfinite(a).all()
        assert torch.equal(a, fn(x, torch.Generator().manual_seed(3)))


def test_crop_flip_still_works():
    x = images(n=4, h=16, w=16)
    a = random_crop_flip(x, torch.Generator().manual_seed(0))
    assert a.shape == x.shape
    assert torch.equal(a, random_crop_flip(x, torch.Generator().manual_seed(0)))
    # each output is a shifted (and maybe flipped) copy: its non-zero pixels are pixels of the input
    for i in range(4):
        vals = set(x[i].flatten().tolist())
        assert set(a[i][a[i] != 0].flatten().tolist()) <= vals
    assert torch.equal(get_augmentation("crop_flip")(x, torch.Generator().manual_seed(0)), a)


def test_validation():
    x = images()
    with pytest.raises(ValueError, match="unknown family"):
        dsa_sample_params("color_warp")
    with pytest.raises(ValueError, match="n="):
        dsa_sample_params(DSA_STRATEGY, 0)
    with pytest.raises(ValueError, match="batch has"):
        aug_apply(x, dsa_sample_params("color", 2))
    with pytest.raises(ValueError, match="shape"):
        aug_apply(x[0], dsa_sample_params("color", 1))
    with pytest.raises(ValueError, match="same"):
        siamese_dsa(x, images(h=6, w=6))
    with pytest.raises(ValueError, match="choices"):
        idc_sample_params(1, choices=("warp",))
    with pytest.raises(ValueError, match="augmentation="):
        get_augmentation("nope")


@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 10_000), n_real=st.integers(1, 4), n_syn=st.integers(1, 3),
       strategy=st.sampled_from([DSA_STRATEGY, "crop_scale_rotate", "color_cutout"]))
def test_property_siamese_draw_is_batch_independent(seed, n_real, n_syn, strategy):
    real = images(n=n_real, h=8, w=8, seed=seed)
    syn = images(n=n_syn, h=8, w=8, seed=seed + 1)
    ra, sa = siamese_dsa(real, syn, torch.Generator().manual_seed(seed), strategy)
    params = dsa_sample_params(strategy, 1, torch.Generator().manual_seed(seed))
    joint = dsa_apply(torch.cat([real, syn]), params)
    assert torch.allclose(joint, torch.cat([ra, sa]), atol=1e-6)


def test_paper_augmentations_act_in_normalised_space():
    from dscore.augment import aug_apply, in_normalised_space, siamese_dsa

    real, syn = torch.rand(4, 3, 8, 8), torch.rand(2, 3, 8, 8)
    mean, std = (0.5, 0.4, 0.3), (0.2, 0.25, 0.3)
    got_real, got_syn = siamese_dsa(real, syn, torch.Generator().manual_seed(7), mean=mean, std=std)
    from dscore.augment import DSA_STRATEGY, dsa_sample_params

    params = dsa_sample_params(DSA_STRATEGY, 1, torch.Generator().manual_seed(7), real.device)
    m, s = torch.tensor(mean).view(1, 3, 1, 1), torch.tensor(std).view(1, 3, 1, 1)
    assert torch.allclose(got_real, aug_apply((real - m) / s, params) * s + m, atol=1e-6)
    assert torch.allclose(got_syn, aug_apply((syn - m) / s, params) * s + m, atol=1e-6)
    # without statistics it is the plain transform; a constant shift of one normalised unit is one std in pixels
    assert torch.equal(in_normalised_space(lambda z: z + 1.0, real), real + 1.0)
    shifted = in_normalised_space(lambda z: z + 1.0, real, mean, std)
    assert torch.allclose(shifted - real, s.expand_as(real), atol=1e-6)
    with pytest.raises(ValueError, match="one per channel"):
        in_normalised_space(lambda z: z, real, (0.1, 0.2), (1.0, 1.0))


def test_train_applies_paper_augmentations_with_the_models_statistics():
    from dscore import train as train_mod

    seen = []

    def probe(x, generator=None):
        seen.append(x.detach().clone())
        return x

    probe.normalised_space = True
    model = nn.Sequential(nn.Flatten(), nn.Linear(4, 2))
    model.register_buffer("mean", torch.full((1, 1, 1, 1), 0.5))
    model.register_buffer("std", torch.full((1, 1, 1, 1), 0.25))
    x = torch.full((4, 1, 2, 2), 0.75)
    train_mod.train_model(model, x, torch.tensor([0, 1, 0, 1]), {"epochs": 1, "batch_size": 4, "lr": 0.1},
                          augment=probe, progress=False)
    assert torch.allclose(seen[0], torch.ones_like(seen[0]))     # (0.75 − 0.5) / 0.25


def test_choice_generator_picks_the_family_and_keeps_the_draw_reproducible():
    from dscore.augment import dsa_sample_params

    families = set()
    for seed in range(30):
        a = dsa_sample_params(DSA_STRATEGY, 1, torch.Generator().manual_seed(1),
                              choice_generator=torch.Generator().manual_seed(seed))
        b = dsa_sample_params(DSA_STRATEGY, 1, torch.Generator().manual_seed(1),
                              choice_generator=torch.Generator().manual_seed(seed))
        assert a.ops == b.ops and all(torch.equal(a.values[k], b.values[k]) for k in a.values)
        families.add(a.ops)
    assert len(families) == len(DSA_FAMILIES)      # the choice really comes from choice_generator


def test_idc_evaluation_augmentation_flips_per_sample_like_the_authors(monkeypatch):
    """The "idc" evaluation chain (PROTOCOLS["idc"]) is the authors' per-sample DiffAug: flip → colour →
    one of crop/scale/rotate, no cutout (CutMix replaces it); "idc_noflip" (SVHN/MNIST) drops the flip."""
    import dscore.augment as A
    from dscore.train import PROTOCOLS

    assert PROTOCOLS["idc"].augment == "idc" and PROTOCOLS["idc"].cutmix_p == 0.5
    drawn = []
    real_apply = A.aug_apply

    def spy(x, params):
        drawn.append(params)
        return real_apply(x, params)

    monkeypatch.setattr(A, "aug_apply", spy)
    x = images(n=64, h=8, w=8)
    for seed in range(30):
        get_augmentation("idc")(x, torch.Generator().manual_seed(seed))
    assert all(p.ops[:4] == ("flip", "brightness", "saturation", "contrast") and len(p.ops) == 5 and p.n == 64
               for p in drawn)
    assert {p.ops[4] for p in drawn} == {"crop", "scale", "rotate"}
    # the flip is drawn per sample: about half of a batch is mirrored
    flipped = (drawn[0].values["flip"][:, 0] < 0.5).float().mean()
    assert 0.2 < float(flipped) < 0.8
    drawn.clear()
    get_augmentation("idc_noflip")(x, torch.Generator().manual_seed(0))
    get_augmentation("idc_cutout")(x, torch.Generator().manual_seed(0))
    assert "flip" not in drawn[0].ops and drawn[1].ops[0] == "flip" and drawn[1].ops[-1] == "cutout"
    # with only the flip in effect the output is the mirrored image for exactly the flagged samples
    p = A.AugParams(ops=("flip",), values={"flip": torch.tensor([[0.1], [0.9]])}, n=2)
    two = images(n=2, h=8, w=8)
    out = real_apply(two, p)
    assert torch.equal(out[0], two[0].flip(2)) and torch.equal(out[1], two[1])
