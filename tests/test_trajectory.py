"""Tests for dscore.quantize.trajectory: texture tertiles and the expert/student parameter distances."""
from __future__ import annotations

import pytest
import torch

from dscore.models import create_model
from dscore.quantize import texture_level
from dscore.quantize.trajectory import parameter_vector, texture_tertiles, texture_trajectories


def rand(seed: int, *shape) -> torch.Tensor:
    return torch.rand(*shape, generator=torch.Generator().manual_seed(seed))


def tiny_data(n: int = 24):
    gen = torch.Generator().manual_seed(0)
    smooth = torch.linspace(0, 1, 8).view(1, 1, 1, 8).expand(n, 1, 8, 8) * torch.rand(n, 1, 1, 1, generator=gen)
    noise = torch.rand(n, 1, 8, 8, generator=gen) * torch.rand(n, 1, 1, 1, generator=gen)
    images = (0.5 * smooth + 0.5 * noise).contiguous()
    labels = torch.arange(n) % 3
    return images, labels


def model_fn():
    return create_model("convnet", depth=1, width=4, num_classes=3, in_channels=1, image_size=8)


@pytest.mark.parametrize("n", [3, 10, 11, 12])
def test_tertiles_partition_and_order(n):
    images = rand(n, n, 1, 8, 8) * rand(n + 1, n, 1, 1, 1)
    high, medium, low = texture_tertiles(images, patch=8)
    assert torch.equal(torch.sort(torch.cat([high, medium, low])).values, torch.arange(n))
    sizes = [high.numel(), medium.numel(), low.numel()]
    assert max(sizes) - min(sizes) <= 1 and sizes == sorted(sizes, reverse=True)
    tl = texture_level(images, 8)
    assert tl[high].min() >= tl[medium].max() and tl[medium].min() >= tl[low].max()
    for part in (high, medium, low):
        assert torch.equal(part, part.sort().values)


def test_tertiles_within_class_keep_the_class_mix():
    """A naive reference: rank each class on its own, cut it in three, join the classes' parts."""
    images = rand(5, 30, 1, 8, 8) * rand(6, 30, 1, 1, 1)
    labels = torch.arange(30) % 3
    high, medium, low = texture_tertiles(images, patch=8, labels=labels)
    tl = texture_level(images, 8)
    for c in range(3):
        members = [i for i in range(30) if labels[i] == c]
        ranked = sorted(members, key=lambda i: (-float(tl[i]), i))
        for part, expect in zip((high, medium, low), (ranked[:4], ranked[4:7], ranked[7:])):
            assert sorted(i for i in part.tolist() if labels[i] == c) == sorted(expect)
    for part in (high, medium, low):                      # every third holds the same class mix
        assert torch.bincount(labels[part], minlength=3).tolist() in ([4, 4, 4], [3, 3, 3])
    assert torch.equal(torch.sort(torch.cat([high, medium, low])).values, torch.arange(30))
    with pytest.raises(ValueError, match="fewer than 3 images"):
        texture_tertiles(images[:7], patch=8, labels=torch.tensor([0, 0, 0, 0, 0, 1, 1]))


def test_tertiles_reject_too_few_images():
    with pytest.raises(ValueError, match="at least 3"):
        texture_tertiles(rand(0, 2, 1, 8, 8))


def test_trajectory_shapes_and_positive_distances():
    images, labels = tiny_data()
    out = texture_trajectories(images, labels, model_fn, {"epochs": 3, "batch_size": 8, "lr": 0.05}, patch=8,
                               device="cpu", progress=False)
    assert set(out) == {"high", "medium", "low", "expert_travel"}
    for v in out.values():
        assert v.shape == (3,) and v.dtype == torch.float64 and bool(torch.isfinite(v).all())
    assert all(float(out[k].min()) > 0 for k in ("high", "medium", "low", "expert_travel"))


def test_student_on_the_same_data_and_seed_stays_on_the_expert():
    images, labels = tiny_data()
    everything = torch.arange(len(labels))
    out = texture_trajectories(images, labels, model_fn, {"epochs": 2, "batch_size": 8, "lr": 0.05},
                               students={"same": everything, "half": everything[:12]}, augment="crop_flip",
                               device="cpu", seed=3, progress=False)
    assert torch.equal(out["same"], torch.zeros(2, dtype=torch.float64))
    assert float(out["half"].min()) > 0


def test_trajectories_are_seeded():
    images, labels = tiny_data()
    recipe, kw = {"epochs": 2, "batch_size": 8, "lr": 0.05}, dict(patch=8, device="cpu", progress=False)
    a = texture_trajectories(images, labels, model_fn, recipe, seed=1, **kw)
    b = texture_trajectories(images, labels, model_fn, recipe, seed=1, **kw)
    c = texture_trajectories(images, labels, model_fn, recipe, seed=2, **kw)
    assert all(torch.equal(a[k], b[k]) for k in a)
    assert not torch.equal(a["high"], c["high"])


def test_distance_definition_against_manual_training():
    """One epoch, one full batch, no momentum: the ratio equals the one computed by hand."""
    images, labels = tiny_data(9)
    students = {"first": torch.arange(4)}
    out = texture_trajectories(images, labels, model_fn, {"epochs": 1, "batch_size": 64, "lr": 0.1, "momentum": 0.0,
                                                          "weight_decay": 0.0}, students=students, device="cpu", seed=5,
                               progress=False)
    torch.manual_seed(5)
    theta0 = model_fn()

    def one_step(idx):
        m = create_model("convnet", depth=1, width=4, num_classes=3, in_channels=1, image_size=8)
        m.load_state_dict(theta0.state_dict())
        loss = torch.nn.functional.cross_entropy(m(images[idx]), labels[idx])
        grads = torch.autograd.grad(loss, list(m.parameters()))
        return torch.cat([(p.detach() - 0.1 * g).double().flatten() for p, g in zip(m.parameters(), grads)])

    expert, student, start = one_step(torch.arange(9)), one_step(torch.arange(4)), parameter_vector(theta0)
    want = float((student - expert).pow(2).sum() / (expert - start).pow(2).sum())
    assert out["first"][0].item() == pytest.approx(want, rel=1e-5)
    assert out["expert_travel"][0].item() == pytest.approx(float((expert - start).pow(2).sum()), rel=1e-5)


def test_trajectory_validation():
    images, labels = tiny_data()
    with pytest.raises(ValueError, match="epochs"):
        texture_trajectories(images, labels, model_fn, {"epochs": 0})
    with pytest.raises(ValueError, match="labels"):
        texture_trajectories(images, labels[:-1], model_fn, {"epochs": 1})
    with pytest.raises(ValueError, match="student"):
        texture_trajectories(images, labels, model_fn, {"epochs": 1}, students={"bad": torch.tensor([100])})
    with pytest.raises(ValueError, match="lr"):
        texture_trajectories(images, labels, model_fn, {"epochs": 1, "lr": 0.0})
    with pytest.raises(ValueError, match="constant learning rate"):
        texture_trajectories(images, labels, model_fn, {"epochs": 1, "schedule": "cosine"})
