"""Tests of dscore.train (evaluation training) and dscore.augment.random_crop_flip.

All models here are tiny nn.Modules defined in this file (embed/classify/forward contract), on CPU.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore import train as T
from dscore.augment import random_crop_flip


# --------------------------------------------------------------------------------------------------
# Tiny models and data
# --------------------------------------------------------------------------------------------------

class TinyMLP(nn.Module):
    def __init__(self, in_features: int = 16, hidden: int = 16, num_classes: int = 2):
        super().__init__()
        self.body = nn.Sequential(nn.Flatten(), nn.Linear(in_features, hidden), nn.ReLU())
        self.head = nn.Linear(hidden, num_classes)
        self.embed_dim = hidden

    def embed(self, x):
        return self.body(x)

    def classify(self, emb):
        return self.head(emb)

    def forward(self, x):
        return self.classify(self.embed(x))


class TinyConvNet(nn.Module):
    """conv → BatchNorm → ReLU → pool → dropout → linear: exercises BN and in-model randomness."""

    def __init__(self, in_channels: int = 1, num_classes: int = 3, width: int = 4):
        super().__init__()
        self.features = nn.Sequential(nn.Conv2d(in_channels, width, 3, padding=1), nn.BatchNorm2d(width), nn.ReLU(),
                                      nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Dropout(0.3))
        self.head = nn.Linear(4 * width, num_classes)
        self.embed_dim = 4 * width

    def embed(self, x):
        return self.features(x)

    def classify(self, emb):
        return self.head(emb)

    def forward(self, x):
        return self.classify(self.embed(x))


class LinearProbe(nn.Module):
    """logits = W·flatten(x) + b; no hidden layer, so its weights can be set by hand."""

    def __init__(self, in_features: int = 16, num_classes: int = 2):
        super().__init__()
        self.head = nn.Linear(in_features, num_classes)
        self.embed_dim = in_features

    def embed(self, x):
        return x.flatten(1)

    def classify(self, emb):
        return self.head(emb)

    def forward(self, x):
        return self.classify(self.embed(x))


def blobs(n: int, seed: int, size: int = 4, channels: int = 1):
    """Two Gaussian blobs as (n, channels, size, size) images: class 0 around 0.3, class 1 around 0.7."""
    g = torch.Generator().manual_seed(seed)
    labels = torch.arange(n) % 2
    centre = 0.3 + 0.4 * labels.float()
    images = (centre.view(n, 1, 1, 1) + 0.1 * torch.randn(n, channels, size, size, generator=g)).clamp(0, 1)
    return images, labels


def history_without_time(history):
    return [{k: v for k, v in rec.items() if k != "seconds"} for rec in history]


# --------------------------------------------------------------------------------------------------
# Training works and is reproducible
# --------------------------------------------------------------------------------------------------

def test_loss_decreases_on_two_blobs():
    x, y = blobs(64, seed=0)
    xt, yt = blobs(64, seed=1)
    model = T.seeded_model(TinyMLP, 0)
    result = T.train_model(model, x, y, {"epochs": 12, "batch_size": 16, "lr": 0.1, "augment": "crop_flip"},
                           test=(xt, yt), device="cpu", progress=False)
    assert len(result.history) == 12
    assert [r["epoch"] for r in result.history] == list(range(1, 13))
    assert set(result.history[0]) == {"epoch", "lr", "train_loss", "train_acc", "seconds"}
    assert result.history[-1]["train_loss"] < 0.5 * result.history[0]["train_loss"]
    assert result.final_test_acc > 0.9
    assert result.final_train_acc == result.history[-1]["train_acc"]
    assert result.model is model and not model.training
    assert result.final_test_acc == T.evaluate(model, xt, yt)


def _train_conv(init_seed: int, train_seed: int):
    x = torch.rand(20, 1, 8, 8, generator=torch.Generator().manual_seed(5))
    y = torch.arange(20) % 3
    model = T.seeded_model(lambda: TinyConvNet(), init_seed)
    result = T.train_model(model, x, y, {"epochs": 3, "batch_size": 8, "lr": 0.05, "augment": "crop_flip", "cutmix_p": 0.5},
                           test=(x[:6], y[:6]), device="cpu", seed=train_seed, progress=False, eval_every=1)
    return result


def test_same_seed_same_history_and_weights_different_seed_differs():
    rng_before = torch.get_rng_state()
    a = _train_conv(0, 7)
    assert torch.equal(torch.get_rng_state(), rng_before), "training must not consume the caller's global RNG"
    torch.manual_seed(999)  # the caller's global RNG state must not matter either (dropout)
    b = _train_conv(0, 7)
    assert history_without_time(a.history) == history_without_time(b.history)
    for (ka, va), (kb, vb) in zip(a.model.state_dict().items(), b.model.state_dict().items()):
        assert ka == kb and torch.equal(va, vb), ka
    c = _train_conv(0, 8)
    assert any(not torch.equal(va, vc) for va, vc in zip(a.model.state_dict().values(), c.model.state_dict().values()))
    d = _train_conv(1, 7)  # other initialisation, same training seed
    assert not torch.equal(a.model.head.weight, d.model.head.weight)


def test_seeded_model_depends_on_seed_only():
    torch.manual_seed(123)
    a = T.seeded_model(TinyMLP, 3)
    torch.rand(10)
    b = T.seeded_model(TinyMLP, 3)
    c = T.seeded_model(TinyMLP, 4)
    assert torch.equal(a.head.weight, b.head.weight)
    assert not torch.equal(a.head.weight, c.head.weight)


def test_small_set_and_trailing_single_sample():
    x, y = blobs(3, seed=0)
    r = T.train_model(T.seeded_model(TinyMLP, 0), x, y, {"epochs": 2, "batch_size": 128, "lr": 0.1, "schedule": "constant", "augment": "none"},
                      device="cpu", progress=False)
    assert len(r.history) == 2 and r.final_test_acc is None
    # 9 samples in batches of 4 leaves one sample: it joins the previous batch, so BatchNorm never sees 1 sample.
    x = torch.rand(9, 1, 4, 4)
    y = torch.arange(9) % 3
    bn_mlp = nn.Sequential(nn.Flatten(), nn.Linear(16, 8), nn.BatchNorm1d(8), nn.Linear(8, 3))
    T.train_model(bn_mlp, x, y, {"epochs": 2, "batch_size": 4, "lr": 0.1, "augment": "none"},
                  device="cpu", progress=False)


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 60), batch_size=st.integers(1, 20), min_batch=st.integers(1, 4), seed=st.integers(0, 99))
def test_batch_indices_partition(n, batch_size, min_batch, seed):
    chunks = T.batch_indices(n, batch_size, generator=torch.Generator().manual_seed(seed), min_batch=min_batch)
    again = T.batch_indices(n, batch_size, generator=torch.Generator().manual_seed(seed), min_batch=min_batch)
    assert all(torch.equal(a, b) for a, b in zip(chunks, again))
    assert torch.equal(torch.cat(chunks).sort().values, torch.arange(n))
    assert all(len(c) <= batch_size for c in chunks[:-1])
    assert len(chunks[-1]) <= batch_size + min_batch - 1
    if len(chunks) > 1:
        assert len(chunks[-1]) >= min(min_batch, batch_size)


# --------------------------------------------------------------------------------------------------
# Learning-rate schedules and the optimiser against a hand-written loop
# --------------------------------------------------------------------------------------------------

def test_cosine_schedule_hand_values():
    lr_at = T.make_lr_schedule("cosine", lr=0.1, epochs=2, iters_per_epoch=5)
    assert lr_at(0) == pytest.approx(0.1)
    assert lr_at(5) == pytest.approx(0.05)
    assert lr_at(9) == pytest.approx(0.05 * (1 + math.cos(math.pi * 9 / 10)))
    assert lr_at(10) == pytest.approx(0.0, abs=1e-12)


def test_multistep_step_constant_hand_values():
    frac = T.make_lr_schedule("multistep", lr=0.01, epochs=12, iters_per_epoch=3, milestones=(2 / 3, 5 / 6), gamma=0.2)
    # milestones at epochs 8 and 10 → iterations 24 and 30
    assert [frac(t) for t in (0, 23, 24, 29, 30, 35)] == pytest.approx([0.01, 0.01, 0.002, 0.002, 0.0004, 0.0004])
    ints = T.make_lr_schedule("multistep", lr=1.0, epochs=10, iters_per_epoch=2, milestones=(7, 3), gamma=0.5)
    assert [ints(t) for t in (5, 6, 13, 14)] == pytest.approx([1.0, 0.5, 0.5, 0.25])
    assert T.resolve_milestones((2 / 3, 5 / 6), 1000) == (666, 833)
    assert T.resolve_milestones((2 / 3,), 300) == (200,)
    step = T.make_lr_schedule("step", lr=0.01, epochs=10, iters_per_epoch=4, gamma=0.1)
    assert [step(t) for t in (19, 20, 39)] == pytest.approx([0.01, 0.001, 0.001])
    const = T.make_lr_schedule("constant", lr=0.3, epochs=3, iters_per_epoch=2)
    assert {const(t) for t in range(6)} == {0.3}


def test_history_lr_follows_schedule():
    x, y = blobs(20, seed=0)
    r = T.train_model(T.seeded_model(TinyMLP, 0), x, y, {"epochs": 6, "batch_size": 8, "lr": 0.1, "schedule": "multistep", "milestones": (2, 4), "gamma": 0.5, "augment": "none"},
                      device="cpu", progress=False)
    assert [h["lr"] for h in r.history] == pytest.approx([0.1, 0.1, 0.05, 0.05, 0.025, 0.025])
    r = T.train_model(T.seeded_model(TinyMLP, 0), x, y, {"epochs": 3, "batch_size": 8, "lr": 0.1, "augment": "none"},
                      device="cpu", progress=False)  # cosine, 3 batches per epoch (8, 8, 4)
    assert [h["lr"] for h in r.history] == pytest.approx([0.05 * (1 + math.cos(math.pi * t / 9)) for t in (0, 3, 6)])


def test_full_batch_training_matches_naive_sgd_loop():
    x, y = blobs(24, seed=3)
    epochs, lr, momentum, wd, smooth = 5, 0.2, 0.9, 5e-4, 0.1
    model = T.seeded_model(TinyMLP, 0)
    reference = T.seeded_model(TinyMLP, 0)
    T.train_model(model, x, y, {"epochs": epochs, "batch_size": len(x), "lr": lr, "momentum": momentum, "weight_decay": wd, "schedule": "multistep", "milestones": (0.6,), "gamma": 0.1, "augment": "none"},
                  label_smoothing=smooth, device="cpu", progress=False)

    params = list(reference.parameters())
    buffers = [torch.zeros_like(p) for p in params]
    for epoch in range(epochs):
        step_lr = lr * (0.1 if epoch >= 3 else 1.0)
        k = 2
        log_p = F.log_softmax(reference(x), dim=1)
        target = torch.full((len(x), k), smooth / k)
        target[torch.arange(len(x)), y] += 1 - smooth
        loss = -(target * log_p).sum(1).mean()
        grads = torch.autograd.grad(loss, params)
        with torch.no_grad():
            for p, g, buf in zip(params, grads, buffers):
                d = g + wd * p
                buf.mul_(momentum).add_(d) if epoch > 0 else buf.copy_(d)
                p.sub_(step_lr * buf)
    for p, q in zip(model.parameters(), reference.parameters()):
        torch.testing.assert_close(p, q, rtol=1e-5, atol=1e-6)


# --------------------------------------------------------------------------------------------------
# evaluate
# --------------------------------------------------------------------------------------------------

class MeanThreshold(nn.Module):
    """Predicts class 1 iff the image mean exceeds 0.5 (known outputs), with a BatchNorm to watch the mode."""

    def __init__(self):
        super().__init__()
        self.bn = nn.BatchNorm1d(1)

    def embed(self, x):
        return x.flatten(1).mean(1, keepdim=True)

    def classify(self, emb):
        if self.training:
            self.bn(emb)  # would update running stats if evaluate left the model in train mode
        return torch.cat([0.5 - emb, emb - 0.5], dim=1)

    def forward(self, x):
        return self.classify(self.embed(x))


def test_evaluate_known_outputs_and_mode_restored():
    means = torch.tensor([0.1, 0.9, 0.2, 0.8, 0.6])
    images = means.view(5, 1, 1, 1).expand(5, 1, 3, 3).clone()
    labels = torch.tensor([0, 1, 1, 0, 1])  # predictions 0, 1, 0, 1, 1 → 3 of 5 right
    model = MeanThreshold()
    model.train()
    assert T.evaluate(model, images, labels, batch_size=2) == pytest.approx(0.6)
    assert model.training
    assert int(model.bn.num_batches_tracked) == 0
    model.eval()
    assert T.evaluate(model, images, labels, batch_size=512, device="cpu") == pytest.approx(0.6)
    assert not model.training



def test_inference_batch_size_changes_how_not_what():
    """The CPU default (64) and the GPU default (512) cut the forward pass differently and count the same hits."""
    from dscore.models import create_model
    assert T.inference_batch_size("cpu") == 64 and T.inference_batch_size(torch.device("cuda", 0)) == 512
    gen = torch.Generator().manual_seed(0)
    x, y = torch.rand(700, 1, 12, 12, generator=gen), torch.randint(0, 4, (700,), generator=gen)
    model = create_model("convnet3", num_classes=4, in_channels=1, image_size=12, width=8, seed=0)
    T.train_model(model, x[:200], y[:200], {"epochs": 2, "batch_size": 32, "lr": 0.05}, progress=False)
    accs = {bs: T.evaluate(model, x, y, batch_size=bs) for bs in (None, 1, 64, 512, 700)}
    assert len(set(accs.values())) == 1, accs

# --------------------------------------------------------------------------------------------------
# CutMix
# --------------------------------------------------------------------------------------------------

def naive_cutmix(images, labels, p, seed):
    """Per-sample reference with the same draws as dscore.train.cutmix (documented order)."""
    g = torch.Generator().manual_seed(seed)
    if p == 0 or float(torch.rand(1, generator=g)) >= p:
        return images.clone(), labels.clone(), 1.0
    n, _, h, w = images.shape
    lam = float(torch.rand(1, generator=g))
    cut_h, cut_w = int(h * math.sqrt(1 - lam)), int(w * math.sqrt(1 - lam))
    cy = int(torch.randint(h, (1,), generator=g))
    cx = int(torch.randint(w, (1,), generator=g))
    perm = torch.randperm(n, generator=g)
    y1, y2 = np.clip(cy - cut_h // 2, 0, h), np.clip(cy + cut_h // 2, 0, h)
    x1, x2 = np.clip(cx - cut_w // 2, 0, w), np.clip(cx + cut_w // 2, 0, w)
    out = images.clone()
    for i in range(n):
        for r in range(y1, y2):
            for c in range(x1, x2):
                out[i, :, r, c] = images[perm[i], :, r, c]
    return out, labels[perm], 1 - (y2 - y1) * (x2 - x1) / (h * w)


@settings(max_examples=30, deadline=None)
@given(n=st.integers(1, 6), h=st.integers(1, 9), w=st.integers(1, 9), p=st.sampled_from([0.0, 0.5, 1.0]),
       seed=st.integers(0, 1000))
def test_cutmix_matches_naive_and_keeps_label_mass(n, h, w, p, seed):
    images = torch.rand(n, 2, h, w, generator=torch.Generator().manual_seed(seed))
    labels = torch.randint(4, (n,), generator=torch.Generator().manual_seed(seed + 1))
    mixed, partner, lam = T.cutmix(images, labels, p=p, generator=torch.Generator().manual_seed(seed))
    ref_mixed, ref_partner, ref_lam = naive_cutmix(images, labels, p, seed)
    assert torch.equal(mixed, ref_mixed) and torch.equal(partner, ref_partner)
    assert lam == pytest.approx(ref_lam) and 0.0 <= lam <= 1.0
    targets = T.mixed_targets(labels, partner, lam, 4)
    torch.testing.assert_close(targets.sum(1), torch.ones(n))
    # The pasted box covers exactly 1 − λ of every image whose partner is another image.
    ids = torch.arange(n).float().view(n, 1, 1, 1).expand(n, 1, h, w).clone()
    ids_mixed, ids_partner, ids_lam = T.cutmix(ids, labels, p=p, generator=torch.Generator().manual_seed(seed))
    assert ids_lam == lam and torch.equal(ids_partner, partner)
    pasted = (ids_mixed != ids).flatten(1)
    has_partner = pasted.any(1)
    if lam == 1.0:
        assert not has_partner.any()
    torch.testing.assert_close(pasted[has_partner].float().mean(1), torch.full((int(has_partner.sum()),), 1 - lam))


def test_cutmix_p0_returns_batch_unchanged():
    images = torch.rand(4, 3, 5, 5)
    labels = torch.tensor([0, 1, 2, 3])
    g = torch.Generator().manual_seed(0)
    state = g.get_state()
    mixed, partner, lam = T.cutmix(images, labels, p=0.0, generator=g)
    assert mixed is images and partner is labels and lam == 1.0
    assert torch.equal(g.get_state(), state)


# --------------------------------------------------------------------------------------------------
# Final-epoch accuracy is reported, never the best
# --------------------------------------------------------------------------------------------------

def test_final_test_acc_is_last_epoch_not_best():
    x, y = blobs(40, seed=0)
    xt, yt = blobs(40, seed=1)
    model = LinearProbe()
    with torch.no_grad():  # starts as the right classifier for the test set
        model.head.weight.copy_(torch.stack([-0.5 * torch.ones(16), 0.5 * torch.ones(16)]))
        model.head.bias.copy_(torch.tensor([4.0, -4.0]))
    assert T.evaluate(model, xt, yt) > 0.95
    result = T.train_model(model, x, 1 - y, {"epochs": 8, "batch_size": 8, "lr": 0.5, "schedule": "constant", "augment": "none"},
                           test=(xt, yt), device="cpu", progress=False, eval_every=2)
    curve = [h.get("test_acc") for h in result.history]
    assert [c is not None for c in curve] == [False, True] * 4
    assert max(c for c in curve if c is not None) > result.final_test_acc
    assert result.final_test_acc == curve[-1] == T.evaluate(model, xt, yt)


# --------------------------------------------------------------------------------------------------
# Protocols and multi-seed runs
# --------------------------------------------------------------------------------------------------

def test_protocol_values_and_replace():
    P = T.PROTOCOLS
    assert (P["coreset"].lr, P["coreset"].schedule, P["coreset"].batch_size, P["coreset"].augment,
            P["coreset"].epochs) == (0.1, "cosine", 128, "crop_flip", 200)
    assert (P["idc"].lr, P["idc"].batch_size, P["idc"].epochs, P["idc"].schedule, P["idc"].milestones,
            P["idc"].gamma, P["idc"].augment, P["idc"].cutmix_p) == (0.01, 64, 1000, "multistep", (2 / 3, 5 / 6),
                                                                     0.2, "idc", 0.5)
    assert (P["dsa"].batch_size, P["dsa"].lr, P["dsa"].epochs, P["dsa"].schedule, P["dsa"].gamma,
            P["dsa"].augment) == (256, 0.01, 1000, "step", 0.1, "dsa")
    assert (P["dc"].epochs, P["dc"].augment, P["dc"].schedule) == (300, "none", "step")
    assert all(p.momentum == 0.9 and p.weight_decay == 5e-4 for p in P.values())
    short = P["idc"].replace(epochs=3)
    assert short.epochs == 3 and P["idc"].epochs == 1000 and short.milestones == P["idc"].milestones
    with pytest.raises(Exception):
        P["idc"].epochs = 2
    with pytest.raises(ValueError, match="epochs"):
        P["idc"].replace(epochs=0)
    with pytest.raises(ValueError, match="unknown protocol field"):
        P["idc"].replace(epoch=3)


def test_train_with_protocol_applies_overrides():
    x, y = blobs(20, seed=0)
    r = T.train_with_protocol(T.seeded_model(TinyMLP, 0), x, y, "coreset", test=(x, y), device="cpu",
                              progress=False, epochs=2, batch_size=10, eval_every=1)
    assert len(r.history) == 2 and r.history[0]["lr"] == pytest.approx(0.1)
    assert "test_acc" in r.history[0]
    with pytest.raises(ValueError, match="unknown override"):
        T.train_with_protocol(TinyMLP(), x, y, "coreset", epochz=2)


def test_train_many_mean_std_over_seeds():
    x, y = blobs(32, seed=0)
    xt, yt = blobs(32, seed=1)
    kwargs = dict(epochs=2, batch_size=8, lr=0.05, augment="crop_flip", device="cpu", progress=False)
    out = T.train_many(lambda s: TinyMLP(), x, y, seeds=(0, 1, 2), test=(xt, yt), **kwargs)
    assert set(out) >= {"mean", "std", "accs", "histories"}
    assert len(out["accs"]) == 3 and len(out["histories"]) == 3
    assert out["mean"] == pytest.approx(np.mean(out["accs"]))
    assert out["std"] == pytest.approx(np.std(out["accs"], ddof=1))
    # each seed seeds the model's initialisation: a single run reproduces the first run
    one = T.train_many(lambda s: TinyMLP(), x, y, seeds=(0,), test=(xt, yt), **kwargs)
    assert one["accs"] == out["accs"][:1] and one["std"] == 0.0
    assert history_without_time(one["histories"][0]) == history_without_time(out["histories"][0])
    via_protocol = T.train_many(lambda s: TinyMLP(), x, y, seeds=(5,), test=(xt, yt), protocol="dc", epochs=2,
                                device="cpu", progress=False)
    assert 0.0 <= via_protocol["mean"] <= 1.0


# --------------------------------------------------------------------------------------------------
# Bad input → ValueError before any work
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kwargs, match", [
    (dict(schedule="linear"), "schedule"),
    (dict(augment="no_such_aug"), "augmentation"),
    (dict(augment=3), "augment"),
    (dict(epoch=3), "unknown field"),
    (dict(epochs=0), "epochs"),
    (dict(batch_size=0), "batch_size"),
    (dict(lr=0.0), "lr"),
    (dict(momentum=1.0), "momentum"),
    (dict(cutmix_p=1.5), "cutmix_p"),
    (dict(schedule="multistep"), "milestones"),
    (dict(schedule="multistep", milestones=(1.5,)), "milestone"),
    (dict(schedule="multistep", milestones=(9,)), "milestone"),
    (dict(schedule="multistep", milestones="2/3"), "milestones"),
    (dict(gamma=0.0), "gamma"),
    (dict(eval_every=-1), "eval_every"),
    (dict(label_smoothing=1.0), "label_smoothing"),
    (dict(seed=-1), "seed"),
    (dict(test=(torch.rand(3, 1, 4, 4),)), "test"),
    (dict(device="nonsense"), "device"),
])
def test_bad_arguments_raise_before_training(kwargs, match):
    x, y = blobs(8, seed=0)
    model = T.seeded_model(TinyMLP, 0)
    before = [p.clone() for p in model.parameters()]
    fields = {"epochs", "batch_size", "lr", "momentum", "weight_decay", "schedule", "milestones", "gamma", "augment",
              "cutmix_p", "epoch"}
    recipe = dict(epochs=3, batch_size=4, lr=0.1) | {k: v for k, v in kwargs.items() if k in fields}
    options = dict(device="cpu", progress=False) | {k: v for k, v in kwargs.items() if k not in fields}
    with pytest.raises(ValueError, match=match):
        T.train_model(model, x, y, recipe, **options)
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))


def test_bad_data_raise():
    x, y = blobs(8, seed=0)
    recipe, common = dict(epochs=1, batch_size=4, lr=0.1), dict(device="cpu", progress=False)
    with pytest.raises(ValueError, match="8 images but 7 labels"):
        T.train_model(TinyMLP(), x, y[:7], recipe, **common)
    with pytest.raises(ValueError, match="int64"):
        T.train_model(TinyMLP(), x, y.int(), recipe, **common)
    with pytest.raises(ValueError, match="out of range for a model with 2 outputs"):
        T.train_model(TinyMLP(), x, y + 1, recipe, **common)
    with pytest.raises(ValueError, match="floating"):
        T.train_model(TinyMLP(), (x * 255).to(torch.uint8), y, recipe, **common)
    with pytest.raises(ValueError, match="nn.Module"):
        T.train_model(lambda z: z, x, y, recipe, **common)
    with pytest.raises(ValueError, match="lacks \\['lr'\\]"):
        T.train_model(TinyMLP(), x, y, dict(epochs=1, batch_size=4), **common)
    with pytest.raises(ValueError, match="protocol"):
        T.train_with_protocol(TinyMLP(), x, y, "imagenet")
    with pytest.raises(ValueError, match="seeds"):
        T.train_many(lambda s: TinyMLP(), x, y, seeds=(), test=(x, y))
    with pytest.raises(ValueError, match="duplicates"):
        T.train_many(lambda s: TinyMLP(), x, y, seeds=(1, 1), test=(x, y))
    with pytest.raises(ValueError, match="test set"):
        T.train_many(lambda s: TinyMLP(), x, y, seeds=(1,), test=None)
    with pytest.raises(ValueError, match="batch_size"):
        T.evaluate(TinyMLP(), x, y, batch_size=0)


# --------------------------------------------------------------------------------------------------
# dscore.augment.random_crop_flip against a per-sample reference
# --------------------------------------------------------------------------------------------------

def naive_crop_flip(x, seed, padding, flip=True):
    g = torch.Generator().manual_seed(seed)
    n, c, h, w = x.shape
    out = x.clone()
    if padding > 0:
        offsets = (torch.rand((2, n), generator=g) * (2 * padding + 1)).long().clamp(max=2 * padding)
        for i in range(n):
            padded = torch.zeros(c, h + 2 * padding, w + 2 * padding)
            padded[:, padding:padding + h, padding:padding + w] = x[i]
            oy, ox = int(offsets[0, i]), int(offsets[1, i])
            out[i] = padded[:, oy:oy + h, ox:ox + w]
    if flip:
        coins = torch.rand((n,), generator=g)
        for i in range(n):
            if coins[i] < 0.5:
                out[i] = out[i].flip(-1)
    return out


@settings(max_examples=25, deadline=None)
@given(n=st.integers(1, 5), c=st.integers(1, 3), h=st.integers(1, 10), w=st.integers(1, 10),
       padding=st.integers(0, 4), flip=st.booleans(), seed=st.integers(0, 1000))
def test_random_crop_flip_matches_naive(n, c, h, w, padding, flip, seed):
    x = torch.rand(n, c, h, w, generator=torch.Generator().manual_seed(seed + 1))
    got = random_crop_flip(x, torch.Generator().manual_seed(seed), padding=padding, flip=flip)
    assert torch.equal(got, naive_crop_flip(x, seed, padding, flip))


def test_random_crop_flip_default_padding_is_h_over_8():
    x = torch.rand(3, 3, 16, 16)
    got = random_crop_flip(x, torch.Generator().manual_seed(4))
    assert torch.equal(got, naive_crop_flip(x, 4, padding=2))


# --------------------------------------------------------------------------------------------------
# DistributedDataParallel (gloo, 2 CPU processes) equals one process with the same global batch
# --------------------------------------------------------------------------------------------------

def _ddp_worker(rank: int, world: int, store_path: str, out_path: str):
    import torch.distributed as dist

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"file://{store_path}", rank=rank, world_size=world)
    try:
        x, y = blobs(26, seed=0)
        model = T.seeded_model(TinyMLP, 0)
        r = T.train_model(model, x, y, {"epochs": 3, "batch_size": 8, "lr": 0.1, "augment": "none"},
                          test=(x, y), device="cpu", progress=False)
        if rank == 0:
            torch.save({"state": model.state_dict(), "history": history_without_time(r.history),
                        "test": r.final_test_acc}, out_path)
    finally:
        dist.destroy_process_group()


@pytest.mark.slow
def test_ddp_two_processes_match_single_process(tmp_path):
    import torch.multiprocessing as mp

    out = tmp_path / "ddp.pt"
    mp.spawn(_ddp_worker, args=(2, str(tmp_path / "store"), str(out)), nprocs=2, join=True)
    ddp = torch.load(out, weights_only=True)
    x, y = blobs(26, seed=0)
    model = T.seeded_model(TinyMLP, 0)
    single = T.train_model(model, x, y, {"epochs": 3, "batch_size": 8, "lr": 0.1, "augment": "none"},
                           test=(x, y), device="cpu", progress=False)
    for k, v in model.state_dict().items():
        torch.testing.assert_close(ddp["state"][k], v, rtol=1e-5, atol=1e-6)
    for a, b in zip(ddp["history"], history_without_time(single.history)):
        assert a["lr"] == b["lr"] and a["train_loss"] == pytest.approx(b["train_loss"], rel=1e-5)
    assert ddp["test"] == single.final_test_acc


def test_coreset_protocol_defaults_to_the_adq_batch_and_offers_dqs_small_batch_rule():
    from dscore.train import PROTOCOLS, coreset_protocol

    # ADQ's paper: batch 128 at every keep ratio (the default)
    assert coreset_protocol(0.05).batch_size == 128
    assert coreset_protocol(0.01).batch_size == 128
    # DQ's README rule as a parameter: batch 16 strictly below the threshold
    assert coreset_protocol(0.05, small_batch_below=0.1).batch_size == 16
    assert coreset_protocol(0.1, small_batch_below=0.1).batch_size == 128
    assert coreset_protocol(0.05, small_batch_below=0.1, small_batch=8).batch_size == 8
    assert coreset_protocol(0.05, small_batch_below=0.1, batch_size=32).batch_size == 32   # explicit wins
    assert coreset_protocol(0.3, epochs=5).epochs == 5
    assert coreset_protocol(0.3).lr == PROTOCOLS["coreset"].lr
    with pytest.raises(ValueError, match="keep_ratio"):
        coreset_protocol(0)
    with pytest.raises(ValueError, match="small_batch_below"):
        coreset_protocol(0.5, small_batch_below=1.5)


def test_best_of_checks_is_the_max_of_the_periodic_checks_and_never_the_reported_number():
    x, y = blobs(40, seed=0)
    xt, yt = blobs(30, seed=1)
    torch.manual_seed(0)
    model = TinyMLP()
    res = T.train_model(model, x, y, {"epochs": 6, "batch_size": 8, "lr": 0.5, "augment": "none"},
                        test=(xt, yt), device="cpu", progress=False, eval_every=2)
    checks = [h["test_acc"] for h in res.history if "test_acc" in h]
    assert [h["epoch"] for h in res.history if "test_acc" in h] == [2, 4, 6]
    assert res.best_of_checks == max(checks) and res.check_every == 2
    assert res.final_test_acc == checks[-1]                 # the reported number stays the final epoch
    res0 = T.train_model(TinyMLP(), x, y, {"epochs": 2, "batch_size": 8, "lr": 0.5, "augment": "none"},
                         test=(xt, yt), device="cpu", progress=False)
    assert res0.best_of_checks is None and res0.check_every == 0
    out = T.train_many(lambda s: TinyMLP(), x, y, seeds=(0, 1), test=(xt, yt), epochs=4, batch_size=8, lr=0.5,
                     device="cpu", progress=False, eval_every=2, augment="none")
    assert len(out["best_of_checks"]) == 2 and all(b >= a for a, b in zip(out["accs"], out["best_of_checks"]))
    assert out["best_of_checks_mean"] == pytest.approx(sum(out["best_of_checks"]) / 2)
    assert out["mean"] == pytest.approx(sum(out["accs"]) / 2)
