"""Tests of the DREAM/DREAM+ pieces: matching losses, real-batch samplers, initialisers, IDC decode."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from dscore.cluster import fit_kmeans, nearest_to_centroids
from dscore.distill import init as dinit
from dscore.distill import losses as L
from dscore.distill import sampler as S
from dscore.metrics import mmd2


# --------------------------------------------------------------------------------- tiny models

class TinyLinear(nn.Module):
    """embed(x) = flatten(x) @ Aᵀ ; classify(e) = e @ Bᵀ (no biases) — easy to differentiate by hand."""

    def __init__(self, d_in=4, d_emb=3, classes=2, seed=0):
        super().__init__()
        gen = torch.Generator().manual_seed(seed)
        self.A = nn.Parameter(torch.randn(d_emb, d_in, generator=gen) * 0.5)
        self.B = nn.Parameter(torch.randn(classes, d_emb, generator=gen) * 0.5)

    def embed(self, x):
        return x.flatten(1) @ self.A.T

    def classify(self, e):
        return e @ self.B.T

    def forward(self, x):
        return self.classify(self.embed(x))


class TinyConv(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 2, 3, padding=1)
        self.norm = nn.GroupNorm(2, 2)
        self.fc = nn.Linear(2 * 4 * 4, 3)

    def embed(self, x):
        return F.relu(self.norm(self.conv(x))).flatten(1)

    def classify(self, e):
        return self.fc(e)

    def forward(self, x):
        return self.classify(self.embed(x))


class Flatten(nn.Module):
    """Identity embedding: the sampler then clusters the raw points."""

    def __init__(self):
        super().__init__()
        self.calls = 0

    def embed(self, x):
        self.calls += 1
        return x.flatten(1)


# ---------------------------------------------------------------------------------------- losses

def hand_ce_grads(model: TinyLinear, x, y):
    """Cross-entropy gradients of TinyLinear written out: δ = softmax − onehot, dB = δᵀe/N, dA = (δB)ᵀx/N."""
    x = x.flatten(1)
    e = x @ model.A.T
    p = torch.softmax(e @ model.B.T, dim=1)
    delta = p - F.one_hot(y, p.shape[1]).to(p.dtype)
    n = x.shape[0]
    return e, [(delta @ model.B).T @ x / n, delta.T @ e / n]


def test_dc_distance_is_sum_of_one_minus_row_cosines():
    gr = [torch.tensor([[1.0, 0.0], [1.0, 1.0]]), torch.tensor([5.0, 5.0])]       # bias ignored
    gs = [torch.tensor([[0.0, 2.0], [2.0, 2.0]]), torch.tensor([-5.0, 1.0])]
    # row 0: cos = 0 → 1 ; row 1: cos = 1 → 0
    assert L.dc_gradient_distance(gr, gs).item() == pytest.approx(1.0, abs=1e-5)
    conv_r = torch.randn(3, 2, 2, 2, generator=torch.Generator().manual_seed(0))
    conv_s = torch.randn(3, 2, 2, 2, generator=torch.Generator().manual_seed(1))
    ref = sum(1 - torch.dot(conv_r[o].flatten(), conv_s[o].flatten())
              / (conv_r[o].norm() * conv_s[o].norm() + 1e-6) for o in range(3))
    assert L.dc_gradient_distance([conv_r], [conv_s]).item() == pytest.approx(ref.item(), rel=1e-5)
    with pytest.raises(ValueError, match="1-D"):
        L.dc_gradient_distance([torch.ones(3)], [torch.ones(3)])


def test_idc_distance_and_embedding_distance_by_hand():
    gr = [torch.tensor([[1.0, 2.0]]), torch.tensor([3.0])]
    gs = [torch.tensor([[0.0, 4.0]]), torch.tensor([1.0])]
    assert L.idc_gradient_distance(gr, gs, "mse").item() == pytest.approx(1 + 4 + 4)
    assert L.idc_gradient_distance(gr, gs, "l1").item() == pytest.approx(1 + 2 + 2)
    er = torch.tensor([[0.0, 2.0], [2.0, 0.0]])      # mean (1, 1)
    es = torch.tensor([[3.0, 1.0]])
    assert L.embedding_mean_distance(er, es).item() == pytest.approx(4.0)
    assert L.embedding_distance(er, es, "l1").item() == pytest.approx(2.0)
    cos = (1 * 3 + 1 * 1) / (2 ** 0.5 * 10 ** 0.5)
    assert L.embedding_distance(er, es, "dc").item() == pytest.approx(1 - cos, abs=1e-5)
    with pytest.raises(ValueError, match="metric"):
        L.idc_gradient_distance(gr, gs, "cos")
    with pytest.raises(ValueError, match="differs"):
        L.idc_gradient_distance(gr, [gs[0], torch.zeros(2)])


def test_parameter_selection():
    model = TinyConv()
    assert [p.shape for p in L.matching_parameters(model)] == [model.conv.weight.shape, model.fc.weight.shape]
    assert [p.shape for p in L.conv_parameters(model)] == [model.conv.weight.shape]
    with pytest.raises(ValueError, match="convolution"):
        L.conv_parameters(TinyLinear())


@pytest.mark.parametrize("metric, embed_metric, expected_embed", [
    ("dc", None, "mse"),     # DC's metric gets the squared-L2 embedding term by default
    ("dc", "dc", "dc"),      # the 1 − cos form on request
    ("mse", None, "mse"), ("l1", None, "l1"), ("mse", "l1", "l1")])
def test_bidirectional_loss_equals_hand_computation(metric, embed_metric, expected_embed):
    model = TinyLinear()
    gen = torch.Generator().manual_seed(3)
    real_x, real_y = torch.randn(6, 4, generator=gen), torch.tensor([0, 1, 0, 1, 1, 0])
    syn_x = torch.randn(2, 4, generator=gen).requires_grad_(True)
    syn_y = torch.tensor([0, 1])
    params = [model.A, model.B]
    loss, parts = L.bidirectional_loss(model, real_x, real_y, syn_x, syn_y, params=params, grad_metric=metric,
                                       embed_metric=embed_metric, embed_weight=0.7)

    e_r, g_r = hand_ce_grads(model, real_x, real_y)
    e_s, g_s = hand_ce_grads(model, syn_x, syn_y)
    mr, ms = e_r.detach().mean(0), e_s.mean(0)
    if expected_embed == "dc":
        embed = 1 - (mr @ ms) / (mr.norm() * ms.norm() + 1e-6)
    elif expected_embed == "mse":
        embed = ((mr - ms) ** 2).sum()
    else:
        embed = (mr - ms).abs().sum()
    if metric == "dc":
        grad = sum((1 - (a.detach() * b).sum(1) / (a.detach().norm(dim=1) * b.norm(dim=1) + 1e-6)).sum()
                   for a, b in zip(g_r, g_s))
    elif metric == "mse":
        grad = sum(((a.detach() - b) ** 2).sum() for a, b in zip(g_r, g_s))
    else:
        grad = sum((a.detach() - b).abs().sum() for a, b in zip(g_r, g_s))
    expected = 0.7 * embed + grad
    assert loss.item() == pytest.approx(expected.item(), rel=1e-5)
    assert parts["embed"].item() == pytest.approx(embed.item(), rel=1e-5)
    assert parts["grad"].item() == pytest.approx(grad.item(), rel=1e-5)
    # the synthetic images receive the gradient of the same function
    (ours,) = torch.autograd.grad(loss, syn_x)
    (ref,) = torch.autograd.grad(expected, syn_x)
    assert torch.allclose(ours, ref, atol=1e-5)


def test_real_side_is_a_detached_target_and_gradient_only_variant():
    model = TinyLinear()
    gen = torch.Generator().manual_seed(4)
    real_x = torch.randn(5, 4, generator=gen).requires_grad_(True)
    real_y = torch.tensor([0, 1, 1, 0, 1])
    syn_x = torch.randn(3, 4, generator=gen).requires_grad_(True)
    syn_y = torch.tensor([1, 0, 1])
    loss, _ = L.bidirectional_loss(model, real_x, real_y, syn_x, syn_y, params=[model.A, model.B], grad_metric="mse")
    loss.backward()
    assert real_x.grad is None and syn_x.grad is not None
    g_only, parts = L.gradient_matching_loss(model, real_x, real_y, syn_x, syn_y, params=[model.A, model.B],
                                             metric="mse")
    no_embed, _ = L.bidirectional_loss(model, real_x, real_y, syn_x, syn_y, params=[model.A, model.B],
                                       grad_metric="mse", embed_weight=0.0)
    assert g_only.item() == pytest.approx(no_embed.item(), rel=1e-6)
    assert set(parts) == {"grad", "ce_real", "ce_syn"}
    # default params: conv weights for IDC metrics, conv+linear weights for DC
    conv = TinyConv()
    x = torch.rand(4, 1, 4, 4)
    y = torch.tensor([0, 1, 2, 0])
    a, _ = L.gradient_matching_loss(conv, x, y, x[:2], y[:2], metric="mse")
    b, _ = L.gradient_matching_loss(conv, x, y, x[:2], y[:2], metric="mse", params=[conv.conv.weight])
    assert a.item() == pytest.approx(b.item(), rel=1e-6)
    with pytest.raises(ValueError, match="grad_metric"):
        L.bidirectional_loss(conv, x, y, x, y, grad_metric="cos")


# -------------------------------------------------------------------------------------- samplers

def clustered(n_per=(60, 25, 10, 5), d=2, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centres = torch.tensor([[0.0, 0.0], [6.0, 0.0], [0.0, 6.0], [6.0, 6.0]])[:len(n_per)]
    return torch.cat([c + 0.6 * torch.randn(n, d, generator=gen) for c, n in zip(centres, n_per)])


def test_representative_batch_is_nearest_sample_per_centroid():
    x = clustered()
    sampler = S.RepresentativeSampler(num_clusters=8, subsample=2, interval=5, seed=0)
    idx = sampler.batch(0, 0, x, Flatten())
    cents = sampler.centroids(0)
    brute = torch.cdist(x.double(), cents.double()).T.argsort(dim=1, stable=True)[:, :2]
    assert torch.equal(idx, brute.reshape(-1))
    assert idx.shape == (16,)


def test_reclusters_exactly_every_interval_steps_and_on_restart(monkeypatch):
    x = clustered()
    model = Flatten()
    calls = []
    real_fit = S.fit_kmeans

    def spy(*args, **kwargs):
        calls.append(kwargs.get("init"))
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(S, "fit_kmeans", spy)
    sampler = S.RepresentativeSampler(num_clusters=4, interval=10, seed=0, warm_start=True)
    batches = [sampler.batch(step, 0, x, model) for step in range(25)]
    assert len(calls) == 3 and sampler.timings["count"] == 3 and model.calls == 3      # steps 0, 10, 20
    assert all(torch.equal(batches[s], batches[0]) for s in range(10))
    assert calls[0] is None and calls[1] is not None                                 # warm start
    sampler.batch(3, 0, x, model)                     # step went back: a new inner loop
    assert len(calls) == 4
    sampler.batch(3, 1, x, model)                     # another class clusters on its own schedule
    assert len(calls) == 5
    sampler.batch(4, 0, x, Flatten())                 # a different model object: fresh clustering, no warm start
    assert len(calls) == 6 and calls[-1] is None
    assert sampler.clustering_seconds == pytest.approx(sum(sampler.timings[k] for k in ("embed", "kmeans", "select")))
    assert sampler.timings["embed"] > 0 and sampler.timings["kmeans"] > 0          # six clusterings were timed


def test_representative_lowers_batch_mmd_vs_random():
    # four equally sized sub-populations; K=12 centre samples vs 12 random samples, over 6 seeds
    x = clustered(n_per=(50, 50, 50, 50), seed=1)
    sigma = 1.0
    rep_idx = [S.RepresentativeSampler(num_clusters=12, seed=s).batch(0, 0, x, Flatten()) for s in range(6)]
    rnd_idx = [S.RandomSampler(batch_size=12, seed=s).batch(0, 0, x) for s in range(6)]
    # kernel mean-embedding distance to the class (biased MMD², >= 0): much lower for centre samples
    rep = torch.tensor([mmd2(x[i], x, sigma, unbiased=False) for i in rep_idx])
    rnd = torch.tensor([mmd2(x[i], x, sigma, unbiased=False) for i in rnd_idx])
    assert rep.mean() < 0.5 * rnd.mean()
    # and the unbiased estimate fluctuates less from draw to draw (DREAM+ Fig. 2b)
    rep_u = torch.tensor([mmd2(x[i], x, sigma) for i in rep_idx])
    rnd_u = torch.tensor([mmd2(x[i], x, sigma) for i in rnd_idx])
    assert rep_u.std() < rnd_u.std()


def test_region_sampler_draws_from_the_centre_or_the_boundary_of_the_class():
    x = clustered(n_per=(40, 40), seed=2)                    # 80 points; Flatten embeds them as they are
    dist = (x - x.mean(0)).pow(2).sum(1)
    order = torch.argsort(dist, stable=True)                 # naive reference: rank by distance to the class mean
    for region, ref in (("centre", order[:20]), ("boundary", order.flip(0)[:20])):
        sampler = S.RegionSampler(region, batch_size=8, fraction=0.25, interval=5, seed=0)
        idx = sampler.batch(0, 0, x, Flatten())
        assert idx.shape == (8,) and len(set(idx.tolist())) == 8
        assert set(idx.tolist()) <= set(ref.tolist()) and torch.equal(sampler.pool(0), ref)
        again = S.RegionSampler(region, batch_size=8, fraction=0.25, interval=5, seed=0).batch(0, 0, x, Flatten())
        assert torch.equal(idx, again)                       # a pure function of (seed, iteration, step, class)
        assert not torch.equal(idx, sampler.batch(1, 0, x, Flatten()))   # another step, another draw
    centre = S.RegionSampler("centre", batch_size=8, seed=0).batch(0, 0, x, Flatten())
    boundary = S.RegionSampler("boundary", batch_size=8, seed=0).batch(0, 0, x, Flatten())
    assert dist[centre].max() < dist[boundary].min()
    assert S.RegionSampler("centre", batch_size=30, fraction=0.1).region_size(80) == 30      # at least the batch
    model = Flatten()
    sampler = S.RegionSampler("centre", batch_size=4, interval=10)
    for step in range(25):
        sampler.batch(step, 0, x, model)
    assert model.calls == 3                                  # re-ranked at steps 0, 10 and 20
    with pytest.raises(ValueError, match="region='middle'"):
        S.RegionSampler("middle")
    with pytest.raises(ValueError, match="fraction=0"):
        S.RegionSampler("centre", fraction=0)
    with pytest.raises(ValueError, match="embed"):
        S.RegionSampler("centre").batch(0, 0, x, None)


def test_random_sampler():
    x = torch.rand(30, 3)
    s = S.RandomSampler([30, 10], batch_size=8, seed=1)
    a = s.batch(2, 0, x)
    assert a.shape == (8,) and len(set(a.tolist())) == 8 and a.max() < 30
    assert torch.equal(a, S.RandomSampler(batch_size=8, seed=1).batch(2, 0, x))        # order-independent
    assert not torch.equal(a, s.batch(3, 0, x))
    assert s.batch(0, 1, x[:10]).shape == (8,)
    assert S.RandomSampler(batch_size=50).batch(0, 0, x).shape == (30,)                # whole class if smaller
    with pytest.raises(ValueError, match="declared"):
        s.batch(0, 1, x)


def test_sampler_validation():
    x = torch.rand(5, 2)
    with pytest.raises(ValueError, match=r"num_clusters=8.*5"):
        S.RepresentativeSampler(num_clusters=8).batch(0, 0, x, Flatten())
    with pytest.raises(ValueError, match="interval"):
        S.RepresentativeSampler(interval=0)
    with pytest.raises(ValueError, match="embed"):
        S.RepresentativeSampler(num_clusters=2).batch(0, 0, x, None)


def test_embed_images_restores_training_mode():
    model = TinyConv().train()
    emb = S.embed_images(model, torch.rand(5, 1, 4, 4), batch_size=2)
    assert emb.shape == (5, 32) and model.training


# ----------------------------------------------------------------------------------- initialisers

def test_random_real_and_noise_init():
    imgs = torch.rand(20, 1, 4, 4)
    out, idx = dinit.init_random_real(imgs, 5, seed=3, return_indices=True)
    assert out.shape == (5, 1, 4, 4) and len(set(idx.tolist())) == 5
    assert torch.equal(out, imgs[idx])
    assert torch.equal(out, dinit.init_random_real(imgs, 5, seed=3))
    with pytest.raises(ValueError, match="ipc=21"):
        dinit.init_random_real(imgs, 21)
    noise = dinit.init_noise((2, 3, 4, 4), seed=1)
    assert noise.shape == (2, 3, 4, 4) and noise.min() >= 0 and noise.max() < 1
    assert torch.equal(noise, dinit.init_noise((2, 3, 4, 4), seed=1))


def test_kmeans_centre_init_picks_distinct_nearest_samples():
    emb = clustered()
    images = torch.arange(len(emb), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    out, idx = dinit.init_kmeans_centres(emb, images, 4, seed=0, return_indices=True)
    cents = fit_kmeans(emb, 4, seed=0).centroids
    assert torch.equal(idx, nearest_to_centroids(emb, cents, 1)[:, 0])    # well separated: no conflicts
    assert torch.equal(out, images[idx])
    # forced conflict: two identical centroids still get two different samples
    dup = torch.cat([cents[:1], cents[:1]])
    picks = dinit.distinct_nearest(emb, dup)
    near2 = nearest_to_centroids(emb, cents[:1], 2)[0]
    assert picks.tolist() == near2.tolist()


def test_idc_decode_layout_and_gradient():
    # stored image i has constant value 10·i + (2a + b) in patch (a, b)
    stored = torch.zeros(2, 1, 4, 4)
    for i in range(2):
        for a in range(2):
            for b in range(2):
                stored[i, :, 2 * a:2 * a + 2, 2 * b:2 * b + 2] = 10 * i + 2 * a + b
    stored.requires_grad_(True)
    out = dinit.idc_decode(stored, 2)
    assert out.shape == (8, 1, 4, 4)
    expected = torch.tensor([0, 1, 2, 3, 10, 11, 12, 13], dtype=torch.float32)
    assert torch.allclose(out.detach(), expected.view(8, 1, 1, 1).expand(8, 1, 4, 4))
    out.sum().backward()
    assert torch.allclose(stored.grad, torch.full_like(stored, 4.0))     # each pixel upsampled 2×2
    assert dinit.idc_decode_labels(torch.tensor([3, 7]), 2).tolist() == [3, 3, 3, 3, 7, 7, 7, 7]
    assert torch.equal(dinit.idc_decode(stored.detach(), 1), stored.detach())
    odd = dinit.idc_decode(torch.zeros(1, 3, 5, 5), 2)                  # padded with 0.5 to 6×6
    assert odd.shape == (4, 3, 5, 5)
    assert odd[3].max() > 0                                             # bottom-right patch holds padding


def test_idc_mix_init_layout_and_roundtrip():
    real = torch.arange(8, dtype=torch.float32).view(8, 1, 1, 1).expand(8, 1, 4, 4).contiguous()
    stored = dinit.idc_mix_init(real, ipc=2, factor=2, indices=torch.arange(8))
    assert stored.shape == (2, 1, 4, 4)
    assert stored[0, 0].tolist() == [[0, 0, 1, 1], [0, 0, 1, 1], [2, 2, 3, 3], [2, 2, 3, 3]]
    assert stored[1, 0, 3, 3].item() == 7
    assert torch.equal(dinit.idc_decode(stored, 2), real)               # decode(mix(x)) = x for flat images
    rand_real = torch.rand(20, 3, 8, 8)
    assert torch.equal(dinit.idc_mix_init(rand_real, 2, 2, seed=5), dinit.idc_mix_init(rand_real, 2, 2, seed=5))
    with pytest.raises(ValueError, match="ipc·factor²"):
        dinit.idc_mix_init(torch.rand(7, 1, 4, 4), ipc=2, factor=2)
    with pytest.raises(ValueError, match="indices"):
        dinit.idc_mix_init(real, ipc=2, factor=2, indices=torch.arange(4))


def test_kmeans_mix_init():
    emb = clustered(n_per=(30, 30, 30, 30))
    images = torch.arange(len(emb), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 4, 4).contiguous()
    stored = dinit.init_kmeans_mix(emb, images, ipc=1, factor=2, seed=0)
    assert stored.shape == (1, 1, 4, 4)
    cents = fit_kmeans(emb, 4, seed=0).centroids
    expected = dinit.distinct_nearest(emb, cents)
    assert dinit.idc_decode(stored, 2)[:, 0, 0, 0].long().tolist() == expected.tolist()
