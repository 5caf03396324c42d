"""Tests for dscore.features: implicit gradient features and batched extraction."""
from __future__ import annotations

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

from dscore.features import GradientFeatures, as_unit_rows, extract_embeddings, extract_gradient_features


def materialise(g: GradientFeatures) -> torch.Tensor:
    """The explicit (N, C·(1+d)) gradient matrix [δ, δ⊗e] (tests only)."""
    n = len(g)
    outer = (g.delta.unsqueeze(2) * g.embedding.unsqueeze(1)).reshape(n, -1)
    return torch.cat([g.delta, outer], dim=1)


def naive_cosine(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """cos between every row of a and of b, 0 when either row is zero, by explicit loops."""
    out = torch.zeros(a.shape[0], b.shape[0], dtype=torch.float64)
    for i in range(a.shape[0]):
        for j in range(b.shape[0]):
            na, nb = a[i].norm(), b[j].norm()
            if na > 0 and nb > 0:
                out[i, j] = (a[i] @ b[j]) / (na * nb)
    return out


def random_gradient_features(seed: int, n: int, c: int, d: int, zero_rows=()) -> GradientFeatures:
    gen = torch.Generator().manual_seed(seed)
    delta = torch.randn(n, c, generator=gen, dtype=torch.float64)
    emb = torch.randn(n, d, generator=gen, dtype=torch.float64) * 2
    for i in zero_rows:
        delta[i] = 0
    return GradientFeatures(delta, emb)


class TinyNet(nn.Module):
    """A model with the dscore interface: embed / classify / forward, num_classes attribute."""

    def __init__(self, num_classes=3, embed_dim=5):
        super().__init__()
        self.num_classes = num_classes
        self.embed_dim = embed_dim
        self.body = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(),
                                  nn.AdaptiveAvgPool2d(2), nn.Flatten(), nn.Linear(16, embed_dim))
        self.head = nn.Linear(embed_dim, num_classes)

    def embed(self, x):
        return self.body(x)

    def classify(self, e):
        return self.head(e)

    def forward(self, x):
        return self.classify(self.embed(x))


def test_as_unit_rows_normalises_and_keeps_zero_rows():
    x = torch.tensor([[3.0, 4.0], [0.0, 0.0], [-1.0, 0.0]])
    u = as_unit_rows(x)
    assert torch.allclose(u, torch.tensor([[0.6, 0.8], [0.0, 0.0], [-1.0, 0.0]]))
    assert not torch.isnan(u).any()
    with pytest.raises(ValueError, match="2-D"):
        as_unit_rows(torch.ones(3))


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 10_000), n=st.integers(1, 12), c=st.integers(1, 5), d=st.integers(0, 6),
       zero=st.booleans())
def test_gradient_features_match_explicit_materialisation(seed, n, c, d, zero):
    g = random_gradient_features(seed, n, c, d, zero_rows=(0,) if zero else ())
    explicit = materialise(g)
    assert g.dim == explicit.shape[1]
    assert torch.allclose(g.norms(), explicit.norm(dim=1), atol=1e-10)
    dense_cos = naive_cosine(explicit, explicit)
    idx = torch.arange(n).flip(0)[: max(1, n // 2)]
    assert torch.allclose(g.cosine_rows(idx), dense_cos[idx], atol=1e-10)
    assert torch.allclose(g.cosine_sum(), dense_cos.sum(dim=0), atol=1e-9)


def test_zero_gradient_rows_have_zero_cosine():
    g = random_gradient_features(0, 5, 3, 4, zero_rows=(2,))
    rows = g.cosine_rows([2, 0])
    assert torch.equal(rows[0], torch.zeros(5, dtype=torch.float64))
    assert rows[1, 2] == 0 and not torch.isnan(rows).any()
    assert g.norms()[2] == 0 and not torch.isnan(g.cosine_sum()).any()


def test_gradient_features_subset_len_and_mask():
    g = random_gradient_features(1, 6, 2, 3)
    assert len(g) == 6
    s = g.subset([4, 1])
    assert len(s) == 2 and torch.equal(s.delta, g.delta[[4, 1]]) and torch.equal(s.embedding, g.embedding[[4, 1]])
    m = g.subset(torch.tensor([True, False, True, False, False, False]))
    assert torch.equal(m.embedding, g.embedding[[0, 2]])
    assert g.to(dtype=torch.float32).dtype == torch.float32


def test_gradient_features_validation():
    with pytest.raises(ValueError, match="rows"):
        GradientFeatures(torch.zeros(3, 2), torch.zeros(4, 2))
    with pytest.raises(ValueError, match="shape"):
        GradientFeatures(torch.zeros(3), torch.zeros(3, 2))
    with pytest.raises(ValueError, match="floating"):
        GradientFeatures(torch.zeros(3, 2, dtype=torch.long), torch.zeros(3, 2, dtype=torch.long))
    with pytest.raises(ValueError, match="out of range"):
        GradientFeatures(torch.zeros(3, 2), torch.zeros(3, 2)).cosine_rows([3])


def test_extract_embeddings_matches_direct_call_and_restores_mode():
    torch.manual_seed(0)
    model = TinyNet()
    model.train()
    images = torch.rand(11, 1, 8, 8)
    out = extract_embeddings(model, images, batch_size=4, progress=False)
    assert model.training, "train/eval mode must be restored"
    model.eval()
    with torch.no_grad():
        expected = model.embed(images)
    assert out.shape == (11, 5) and out.dtype == torch.float32 and out.device.type == "cpu"
    assert torch.allclose(out, expected, atol=1e-6)
    again = extract_embeddings(model, images, batch_size=11, progress=False)
    assert torch.allclose(out, again, atol=1e-6)
    with pytest.raises(ValueError, match="batch_size"):
        extract_embeddings(model, images, batch_size=0, progress=False)
    with pytest.raises(ValueError, match="shape"):
        extract_embeddings(model, images[0], progress=False)


def test_extract_gradient_features_is_softmax_minus_onehot():
    torch.manual_seed(1)
    model = TinyNet().eval()
    images = torch.rand(7, 1, 8, 8)
    labels = torch.tensor([0, 1, 2, 2, 1, 0, 1])
    g = extract_gradient_features(model, images, labels, batch_size=3, progress=False)
    with torch.no_grad():
        emb = model.embed(images)
        expected = torch.softmax(model.classify(emb), 1) - F.one_hot(labels, 3).float()
    assert torch.allclose(g.delta, expected, atol=1e-6)
    assert torch.allclose(g.embedding, emb, atol=1e-6)
    # δ of a softmax minus a one-hot sums to zero over classes
    assert torch.allclose(g.delta.sum(1), torch.zeros(7), atol=1e-6)
    # the last-layer weight gradient of the summed CE loss is Σ_i δ_i e_iᵀ: check against autograd
    head = model.head
    loss = F.cross_entropy(head(emb), labels, reduction="sum")
    grad_w, grad_b = torch.autograd.grad(loss, [head.weight, head.bias])
    assert torch.allclose(grad_w, g.delta.T @ g.embedding, atol=1e-5)
    assert torch.allclose(grad_b, g.delta.sum(0), atol=1e-5)


def test_extract_gradient_features_rejects_bad_labels():
    model = TinyNet()
    images = torch.rand(4, 1, 8, 8)
    with pytest.raises(ValueError, match="labels"):
        extract_gradient_features(model, images, torch.tensor([0, 1, 2]), progress=False)
    with pytest.raises(ValueError, match="labels"):
        extract_gradient_features(model, images, torch.tensor([0, 1, 2, 3]), progress=False)
    with pytest.raises(ValueError, match="labels"):
        extract_gradient_features(model, images, torch.tensor([0.0, 1, 2, 1]), progress=False)
