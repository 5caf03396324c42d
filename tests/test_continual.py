"""Class-incremental learning with a memory (dscore.continual): the pieces against naive references, and the
protocol's behaviour on tiny data."""
import math

import pytest
import torch
import torch.nn as nn

from dscore import continual
from dscore.models import create_model
from dscore.train import TrainProtocol


def test_class_steps_splits_the_order_and_rejects_bad_input():
    assert continual.class_steps([3, 1, 0, 2], 2) == [[3, 1], [0, 2]]
    with pytest.raises(ValueError, match="steps=3"):
        continual.class_steps([0, 1, 2, 3], 3)
    with pytest.raises(ValueError, match="permutation"):
        continual.class_steps([0, 0, 1, 2], 2)


def test_distillation_loss_matches_a_naive_kl():
    g = torch.Generator().manual_seed(0)
    student, teacher = torch.randn(5, 6, generator=g), torch.randn(5, 4, generator=g)
    T = 2.0
    naive = 0.0
    for i in range(5):
        q = torch.softmax(teacher[i] / T, 0)
        p = torch.softmax(student[i, :4] / T, 0)
        naive += float((q * (q.log() - p.log())).sum())
    naive = 0.5 * T * T * naive / 5
    got = float(continual.distillation_loss(student, teacher, temperature=T, weight=0.5))
    assert math.isclose(got, naive, rel_tol=1e-5)
    assert float(continual.distillation_loss(teacher, teacher)) == pytest.approx(0.0, abs=1e-6)
    with pytest.raises(ValueError, match="cover"):
        continual.distillation_loss(student[:, :3], teacher)


def test_expand_head_keeps_the_old_logits():
    net = create_model("convnet3", num_classes=2, in_channels=1, image_size=28, width=4, seed=0)
    x = torch.rand(3, 1, 28, 28)
    grown = continual.expand_head(net, 3, seed=1)
    assert grown.fc.out_features == 5 and net.fc.out_features == 2
    with torch.no_grad():
        assert torch.allclose(grown(x)[:, :2], net(x), atol=1e-6)
    with pytest.raises(ValueError, match="fc"):
        continual.expand_head(nn.Sequential(nn.Flatten(), nn.Linear(4, 2)), 1)


def test_topk_accuracy_by_hand():
    class Fixed(nn.Module):
        def forward(self, x):
            return x.flatten(1)
    logits = torch.tensor([[0.1, 0.5, 0.4], [0.9, 0.05, 0.05], [0.2, 0.3, 0.5]])
    out = continual.topk_accuracy(Fixed(), logits.view(3, 1, 1, 3), torch.tensor([2, 0, 0]), (1, 2, 5), device="cpu")
    assert out == {1: 1 / 3, 2: 2 / 3, 5: 1.0}


def _blobs(per_class, classes=4, seed=0):
    """Tiny images whose class is a bright quadrant: a network learns them in a few epochs."""
    g = torch.Generator().manual_seed(seed)
    xs, ys = [], []
    for c in range(classes):
        x = 0.1 * torch.rand(per_class, 1, 8, 8, generator=g)
        r, q = divmod(c, 2)
        x[:, :, r * 4:(r + 1) * 4, q * 4:(q + 1) * 4] += 0.8
        xs.append(x)
        ys.append(torch.full((per_class,), c))
    return torch.cat(xs), torch.cat(ys)


PROTO = TrainProtocol(epochs=15, batch_size=8, lr=0.05, schedule="constant", augment="none")


def _model_fn(k):
    return create_model("convnet", num_classes=k, in_channels=1, image_size=8, depth=1, width=8)


def test_protocol_rows_seen_classes_and_memory():
    train_x, train_y = _blobs(6)
    test_x, test_y = _blobs(10, seed=1)
    memory = {c: train_x[train_y == c] for c in range(4)}
    rows = continual.class_incremental(memory, test_x, test_y, model_fn=_model_fn, protocol=PROTO,
                                       class_order=[2, 0, 3, 1], steps=2, seed=0, device="cpu", progress=False)
    assert [r["step"] for r in rows] == [1, 2] and [r["classes"] for r in rows] == [2, 4]
    assert [r["num_memory"] for r in rows] == [12, 24]
    assert all(0.0 <= r["acc"] <= 1.0 and r["top5"] == 1.0 for r in rows)      # k capped at the classes seen
    assert rows[-1]["acc"] > 0.6 and rows[0]["acc"] > 0.8                      # the quadrants are learnt
    again = continual.class_incremental(memory, test_x, test_y, model_fn=_model_fn, protocol=PROTO,
                                        class_order=[2, 0, 3, 1], steps=2, seed=0, device="cpu", progress=False)
    assert [r["acc"] for r in again] == [r["acc"] for r in rows]


def test_forgetting_without_old_memory_and_the_from_scratch_reading():
    train_x, train_y = _blobs(6)
    test_x, test_y = _blobs(10, seed=1)
    full = {c: train_x[train_y == c] for c in range(4)}
    # an empty-looking memory of the old classes: a single black image each, so the second step learns the new
    # classes only and forgets the old ones, unlike the run that keeps their images
    poor = dict(full)
    for c in (0, 1):
        poor[c] = torch.zeros(1, 1, 8, 8)
    kw = dict(model_fn=_model_fn, protocol=PROTO, class_order=[0, 1, 2, 3], steps=2, seed=0, device="cpu",
              progress=False)
    no_teacher = {"temperature": 2.0, "weight": 0.0}
    good = continual.class_incremental(full, test_x, test_y, kd=no_teacher, **kw)
    bad = continual.class_incremental(poor, test_x, test_y, kd=no_teacher, **kw)
    assert good[-1]["acc"] > bad[-1]["acc"]
    scratch = continual.class_incremental(full, test_x, test_y, kd=None, **kw)
    assert len(scratch) == 2 and scratch[-1]["acc"] > 0.6
    with pytest.raises(ValueError, match="memory"):
        continual.class_incremental({0: full[0]}, test_x, test_y, **kw)
    with pytest.raises(ValueError, match="kd="):
        continual.class_incremental(full, test_x, test_y, kd={"temperature": 2.0}, **kw)
