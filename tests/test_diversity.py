"""Tests for dscore.quantize.diversity: contrastive diversity score DS, its head, views, NT-Xent and the cosine proxy."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore.models import create_model
from dscore.quantize import importance_scores, representativeness_scores
from dscore.quantize.diversity import (
    ContrastiveHead,
    ProxyHead,
    adq_scores,
    contrastive_views,
    cosine_proxy_diversity,
    cosine_proxy_from_views,
    random_resized_crop_boxes,
    random_resized_crop_flip,
    diversity_from_embeddings,
    diversity_scores,
    feature_dim,
    intermediate_and_embedding,
    nt_xent_loss,
    project,
    train_contrastive_head,
)


def rand(seed: int, *shape) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def randn(seed: int, *shape) -> torch.Tensor:
    return torch.randn(*shape, generator=torch.Generator().manual_seed(seed))


@pytest.fixture(scope="module")
def tiny_net():
    return create_model("convnet", depth=2, width=8, num_classes=4, in_channels=1, image_size=16, seed=0).eval()


# ------------------------------------------------------------------------------------ references

def naive_ds(z: torch.Tensor, z_pos: torch.Tensor, members: list[int], negatives: list[int], tau: float) -> float:
    """Per-sample double loop: mean_i [cos(zᵢ,zᵢ⁺)/τ − log(1/|Nᵢ| Σ_j exp(cos(zᵢ,zⱼ)/τ))], Nᵢ = negatives \\ {i}."""
    def cos(a, b):
        a, b = a.double(), b.double()
        return float(a @ b / (a.norm() * b.norm()))

    total = 0.0
    for i in members:
        others = [j for j in negatives if j != i]
        s = sum(math.exp(cos(z[i], z[j]) / tau) for j in others)
        total += cos(z[i], z_pos[i]) / tau - math.log(s / len(others))
    return total / len(members)


def naive_nt_xent(z1: torch.Tensor, z2: torch.Tensor, tau: float) -> float:
    z = torch.cat([z1, z2]).double()
    z = z / z.norm(dim=1, keepdim=True)
    b = z1.shape[0]
    total = 0.0
    for a in range(2 * b):
        p = a + b if a < b else a - b
        denom = sum(math.exp(float(z[a] @ z[k]) / tau) for k in range(2 * b) if k != a)
        total += -float(z[a] @ z[p]) / tau + math.log(denom)
    return total / (2 * b)


# ------------------------------------------------------------------------------ intermediate layer

def test_intermediate_is_gap_of_block_depth_minus_one(tiny_net):
    x = rand(0, 5, 1, 16, 16)
    with torch.no_grad():
        mid, emb = intermediate_and_embedding(tiny_net, x)
        layers = list(tiny_net.layers)
        second_conv = [i for i, m in enumerate(layers) if isinstance(m, nn.Conv2d)][1]
        block1 = nn.Sequential(*layers[:second_conv])(tiny_net.normalize(x))
    assert torch.allclose(mid, block1.mean(dim=(2, 3)), atol=1e-6)
    assert torch.allclose(emb, tiny_net.embed(x).detach(), atol=1e-6)
    assert feature_dim(tiny_net) == tiny_net.embed_dim + 8


def test_unknown_model_falls_back_to_embedding_only():
    class Plain(nn.Module):
        in_channels, image_size = 1, 4

        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(16, 3)

        def embed(self, x):
            return self.lin(x.flatten(1))

    model = Plain()
    mid, emb = intermediate_and_embedding(model, rand(1, 2, 1, 4, 4))
    assert mid.shape == (2, 0) and emb.shape == (2, 3)
    assert feature_dim(model) == 3


# ------------------------------------------------------------------------------------- the loss

def test_nt_xent_matches_naive():
    z1, z2 = randn(2, 6, 5), randn(3, 6, 5)
    assert nt_xent_loss(z1, z2, 0.3).item() == pytest.approx(naive_nt_xent(z1, z2, 0.3), rel=1e-5)


def test_nt_xent_rejects_bad_input():
    with pytest.raises(ValueError, match="tau"):
        nt_xent_loss(randn(0, 4, 3), randn(1, 4, 3), 0.0)
    with pytest.raises(ValueError, match="at least 2"):
        nt_xent_loss(randn(0, 1, 3), randn(1, 1, 3))


# ------------------------------------------------------------------------------------ the formula

def test_ds_matches_naive_double_loop_without_subsampling():
    z, zp = randn(4, 12, 6), randn(5, 12, 6)
    bins = [torch.tensor([0, 3, 5, 7]), torch.tensor([1, 2]), torch.tensor([4, 6, 8, 9, 10, 11])]
    got = diversity_from_embeddings(z, zp, bins, tau=0.2)
    want = [naive_ds(z, zp, b.tolist(), b.tolist(), 0.2) for b in bins]
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), atol=1e-9)


def test_ds_matches_naive_with_one_shared_negative_subsample_per_bin():
    z, zp = randn(6, 20, 4), randn(7, 20, 4)
    bins = [torch.arange(0, 12), torch.arange(12, 16), torch.arange(16, 20)]
    got = diversity_from_embeddings(z, zp, bins, tau=0.5, max_negatives=5, seed=11)
    gen = torch.Generator().manual_seed(11)                            # the documented draw order
    want = []
    for b in bins:
        negatives = b[torch.randperm(b.numel(), generator=gen)[:5]] if b.numel() - 1 > 5 else b
        want.append(naive_ds(z, zp, b.tolist(), negatives.tolist(), 0.5))
    assert torch.allclose(got, torch.tensor(want, dtype=torch.float64), atol=1e-9)


@settings(max_examples=15, deadline=None)
@given(st.integers(2, 14), st.integers(1, 5), st.integers(0, 2**16), st.floats(0.05, 2.0))
def test_chunked_equals_unchunked(n, chunk, seed, tau):
    z, zp = randn(seed, n + 3, 3), randn(seed + 1, n + 3, 3)
    bins = [torch.arange(n), torch.arange(n, n + 3)]
    full = diversity_from_embeddings(z, zp, bins, tau=tau, max_negatives=4, seed=seed, chunk_size=4096)
    chunked = diversity_from_embeddings(z, zp, bins, tau=tau, max_negatives=4, seed=seed, chunk_size=chunk)
    assert torch.allclose(full, chunked, atol=1e-10, rtol=1e-10)


def test_negative_subsampling_is_seeded():
    z, zp = randn(8, 40, 5), randn(9, 40, 5)
    bins = [torch.arange(40)]
    a = diversity_from_embeddings(z, zp, bins, max_negatives=6, seed=3)
    b = diversity_from_embeddings(z, zp, bins, max_negatives=6, seed=3)
    c = diversity_from_embeddings(z, zp, bins, max_negatives=6, seed=4)
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    # without subsampling the seed plays no role
    assert torch.equal(diversity_from_embeddings(z, zp, bins, seed=3), diversity_from_embeddings(z, zp, bins, seed=4))


def test_ds_higher_for_spread_embeddings_than_for_clustered_ones():
    spread = randn(10, 16, 8)
    clustered = randn(11, 1, 8) + 0.01 * randn(12, 16, 8)
    z = torch.cat([spread, clustered])
    ds = diversity_from_embeddings(z, z.clone(), [torch.arange(16), torch.arange(16, 32)])
    assert ds[0] > ds[1] + 1.0


def test_formula_rejects_bad_bins_and_parameters():
    z = randn(0, 5, 3)
    with pytest.raises(ValueError, match="at least 2"):
        diversity_from_embeddings(z, z, [torch.tensor([0])])
    with pytest.raises(ValueError, match="twice"):
        diversity_from_embeddings(z, z, [torch.tensor([0, 0, 1])])
    with pytest.raises(ValueError, match="outside"):
        diversity_from_embeddings(z, z, [torch.tensor([0, 5])])
    with pytest.raises(ValueError, match="max_negatives"):
        diversity_from_embeddings(z, z, [torch.tensor([0, 1])], max_negatives=1)
    with pytest.raises(ValueError, match="tau"):
        diversity_from_embeddings(z, z, [torch.tensor([0, 1])], tau=-1.0)


# ---------------------------------------------------------------------------------------- views

def test_views_are_seeded_in_range_and_random():
    x = rand(13, 6, 3, 12, 12)
    a = contrastive_views(x, torch.Generator().manual_seed(0))
    b = contrastive_views(x, torch.Generator().manual_seed(0))
    c = contrastive_views(x, torch.Generator().manual_seed(1))
    assert a.shape == x.shape and torch.equal(a, b) and not torch.equal(a, c)
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert not torch.allclose(a, x, atol=1e-3)


def test_views_identity_settings_reproduce_the_image_up_to_flip():
    x = rand(14, 8, 1, 10, 10)
    out = contrastive_views(x, torch.Generator().manual_seed(5), min_scale=1.0, max_degrees=0.0, jitter=0.0)
    same = (out - x).abs().flatten(1).amax(1) < 1e-5
    flipped = (out - x.flip(3)).abs().flatten(1).amax(1) < 1e-5
    assert bool((same | flipped).all()) and bool(same.any()) and bool(flipped.any())


# ----------------------------------------------------------------------------- network pipeline

def distinct_and_duplicate_images(n: int = 24):
    distinct = rand(20, n, 1, 16, 16)
    base = rand(21, 1, 1, 16, 16)
    duplicates = (base + 0.02 * rand(22, n, 1, 16, 16)).clamp(0, 1)
    images = torch.cat([distinct, duplicates])
    return images, [torch.arange(n), torch.arange(n, 2 * n)]


def test_ds_distinct_bin_beats_near_duplicates_untrained_and_trained(tiny_net):
    images, bins = distinct_and_duplicate_images()
    head = ContrastiveHead.for_model(tiny_net, hidden_dim=64, seed=0)
    untrained = diversity_scores(tiny_net, head, images, bins, device="cpu")
    assert untrained[0] > untrained[1]
    trained_head = train_contrastive_head(tiny_net, images[:24], {"epochs": 2, "batch_size": 12, "seed": 0,
                                                                  "hidden_dim": 64}, device="cpu", progress=False)
    trained = diversity_scores(tiny_net, trained_head, images, bins, device="cpu")
    assert trained[0] > trained[1]


def test_diversity_scores_equals_formula_on_projected_embeddings(tiny_net):
    images, bins = distinct_and_duplicate_images(8)
    head = ContrastiveHead.for_model(tiny_net, hidden_dim=32, seed=1)
    got = diversity_scores(tiny_net, head, images, bins, seed=2, device="cpu", batch_size=5)
    z = project(tiny_net, head, images, device="cpu")
    zp = project(tiny_net, head, images, views=True, generator=torch.Generator().manual_seed(2), device="cpu",
                 batch_size=5)
    assert torch.allclose(got, diversity_from_embeddings(z, zp, bins), atol=1e-6)
    assert torch.equal(got, diversity_scores(tiny_net, head, images, bins, seed=2, device="cpu", batch_size=5))


def test_head_training_is_seeded_lowers_loss_and_leaves_the_net_alone(tiny_net):
    images = rand(30, 16, 1, 16, 16)
    before = {k: v.clone() for k, v in tiny_net.state_dict().items()}
    cfg = dict(epochs=6, batch_size=8, lr=3e-3, seed=4, hidden_dim=32)
    a = train_contrastive_head(tiny_net, images, cfg, device="cpu", progress=False)
    b = train_contrastive_head(tiny_net, images, cfg, device="cpu", progress=False)
    for p, q in zip(a.parameters(), b.parameters()):
        assert torch.equal(p, q)
    assert len(a.loss_history) == 6
    # on one fixed pair of views, the trained head separates instances better than its initialisation
    gen = torch.Generator().manual_seed(9)
    v1, v2 = contrastive_views(images, gen), contrastive_views(images, gen)
    with torch.no_grad():
        f1, f2 = (torch.cat([e, m], 1) for m, e in (intermediate_and_embedding(tiny_net, v) for v in (v1, v2)))
        init = ContrastiveHead.for_model(tiny_net, hidden_dim=32, seed=4)
        assert nt_xent_loss(a(f1), a(f2)) < nt_xent_loss(init(f1), init(f2)) - 0.05
    assert all(torch.equal(v, tiny_net.state_dict()[k]) for k, v in before.items())
    assert not tiny_net.training


def test_head_outputs_unit_vectors():
    head = ContrastiveHead(7, hidden_dim=5, out_dim=3)
    out = head(randn(0, 4, 7))
    assert out.shape == (4, 3) and torch.allclose(out.norm(dim=1), torch.ones(4), atol=1e-6)
    with pytest.raises(ValueError, match="expected"):
        head(randn(0, 4, 6))


# ------------------------------------------------------------------------------------ cosine proxy

def test_crop_boxes_follow_torchvisions_rule():
    boxes = random_resized_crop_boxes(4000, 20, 20, torch.Generator().manual_seed(0))
    top, left, h, w = boxes.T
    assert bool((top >= 0).all() and (left >= 0).all() and (top + h <= 20).all() and (left + w <= 20).all())
    area = (h * w).double() / 400
    # rounding of w and h moves the area and aspect a little beyond the nominal bounds
    assert float(area.min()) >= 0.05 and float(area.max()) <= 1.0 and float(area.min()) < 0.15
    aspect = w.double() / h.double()
    assert float(aspect.min()) >= 0.6 and float(aspect.max()) <= 1.6
    assert len({tuple(b) for b in boxes.tolist()}) > 500
    again = random_resized_crop_boxes(4000, 20, 20, torch.Generator().manual_seed(0))
    assert torch.equal(boxes, again)
    # no candidate fits (scale > 1 of a tall ratio) → torchvision's centred fallback
    fallback = random_resized_crop_boxes(3, 10, 10, torch.Generator().manual_seed(0), scale=(5.0, 6.0))
    assert fallback.tolist() == [[0, 0, 10, 10]] * 3


def test_resized_crop_flip_matches_per_image_interpolate():
    x = rand(1, 5, 2, 9, 7)
    gen = torch.Generator().manual_seed(3)
    got = random_resized_crop_flip(x, gen)
    ref_gen = torch.Generator().manual_seed(3)
    boxes = random_resized_crop_boxes(5, 9, 7, ref_gen)
    flips = torch.rand(5, generator=ref_gen, dtype=torch.float64) < 0.5
    for i, (t, l, h, w) in enumerate(boxes.tolist()):
        crop = x[i:i + 1, :, t:t + h, l:l + w]
        want = torch.nn.functional.interpolate(crop, size=(9, 7), mode="bilinear", align_corners=False)[0]
        if flips[i]:
            want = want.flip(-1)
        assert torch.allclose(got[i], want, atol=1e-5), i
    full = random_resized_crop_flip(x, torch.Generator().manual_seed(0), scale=(1.0, 1.0), ratio=(7 / 9, 7 / 9),
                                    flip_p=0.0)
    assert torch.allclose(full, x, atol=1e-6)


def naive_proxy(e: torch.Tensor) -> float:
    """1 / mean of the full Gram matrix of L2-normalised rows, the diagonal included."""
    rows = [r.double() / r.double().norm() for r in e]
    gram = [[float(a @ b) for b in rows] for a in rows]
    return 1.0 / (sum(map(sum, gram)) / len(rows) ** 2)


def test_cosine_proxy_from_views_matches_naive():
    z1, z2 = randn(0, 12, 5), randn(1, 12, 5) + 0.5
    bins = [torch.tensor([0, 2, 4, 9]), torch.tensor([1]), torch.tensor([3, 5, 6, 7, 8, 10, 11])]
    got = cosine_proxy_from_views(z1, z2, bins)
    for k, b in enumerate(bins):
        e = torch.cat([z1[b], z2[b]])
        assert got[k].item() == pytest.approx(naive_proxy(e), rel=1e-9)
    assert got[1].item() == pytest.approx(1.0 / ((1 + float(torch.nn.functional.cosine_similarity(
        z1[1], z2[1], dim=0))) / 2), rel=1e-6)


def test_cosine_proxy_is_the_authors_quantity_on_a_tiny_net(tiny_net):
    images = rand(2, 10, 1, 16, 16)
    bins = [torch.tensor([0, 3, 5]), torch.tensor([1, 2, 4, 6, 7, 8, 9])]
    got = cosine_proxy_diversity(tiny_net, images, bins, seed=4, batch_size=4, device="cpu")
    # reference: the same seeded head and the same view stream, one image at a time
    head = ProxyHead.for_model(tiny_net, seed=4)
    d = tiny_net.embed(images[:1]).shape[1]
    assert (head.in_dim, head.hidden_dim, head.out_dim) == (d, d, 128)
    gen = torch.Generator().manual_seed(5)
    views = {}
    for start in range(0, 10, 4):
        batch = images[start:start + 4]
        v1, v2 = random_resized_crop_flip(batch, gen), random_resized_crop_flip(batch, gen)
        for j in range(batch.shape[0]):
            with torch.no_grad():
                views[start + j] = [head(tiny_net.embed(v[j:j + 1]))[0] for v in (v1, v2)]
    for k, b in enumerate(bins):
        e = torch.stack([z for i in b.tolist() for z in views[i]])
        assert got[k].item() == pytest.approx(naive_proxy(e), rel=1e-5)
    again = cosine_proxy_diversity(tiny_net, images, bins, seed=4, batch_size=4, device="cpu")
    assert torch.equal(got, again)
    other = cosine_proxy_diversity(tiny_net, images, bins, seed=5, batch_size=4, device="cpu")
    assert not torch.equal(got, other)
    # constant images: every crop and flip of them is the same image, so the proxy is exactly 1
    flat = cosine_proxy_diversity(tiny_net, torch.full((4, 1, 16, 16), 0.5), [torch.arange(4)], device="cpu")
    assert flat.item() == pytest.approx(1.0, rel=1e-5)


def test_cosine_proxy_rejects_bad_input(tiny_net):
    images = rand(2, 4, 1, 16, 16)
    with pytest.raises(ValueError, match="seed"):
        cosine_proxy_diversity(tiny_net, images, [torch.arange(4)], seed=-1)
    with pytest.raises(ValueError, match="images"):
        cosine_proxy_diversity(tiny_net, images[0], [torch.arange(4)])
    with pytest.raises(ValueError):
        cosine_proxy_diversity(tiny_net, images, [torch.tensor([0, 9])])
    with pytest.raises(ValueError, match="z1"):
        cosine_proxy_from_views(randn(0, 3, 2), randn(0, 3, 3), [torch.arange(3)])


# ---------------------------------------------------------------------------------------- bundle

def test_adq_scores_bundle(tiny_net):
    images, bins = distinct_and_duplicate_images(6)
    head = ContrastiveHead.for_model(tiny_net, hidden_dim=16, seed=0)
    out = adq_scores(images, bins, tiny_net, head, patch=8, seed=1, device="cpu")
    assert set(out) == {"rs", "ds", "is_"}
    assert torch.allclose(out["rs"], representativeness_scores(images, bins, 8).double())
    assert torch.allclose(out["ds"], diversity_scores(tiny_net, head, images, bins, seed=1, device="cpu"))
    assert torch.allclose(out["is_"], importance_scores(out["rs"], out["ds"]))
    with pytest.raises(ValueError, match="patch"):
        adq_scores(images, bins, tiny_net, head, patch=1)
