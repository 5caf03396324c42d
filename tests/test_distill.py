"""Tests of the distillation engine (DC, DSA, DM, IDC, DREAM, DREAM+), its configuration and the
evaluation of synthetic sets and IPC coresets. Everything runs on sklearn's digits upscaled to
16 px with a ConvNet of width 16 and depth 2."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F
from hypothesis import given, settings
from hypothesis import strategies as st

import dscore.models
from dscore.distill import (DistillConfig, default_config, distill, evaluate_coreset_ipc, evaluate_result,
                            evaluate_synthetic, preset, select_coreset_ipc)
from dscore.distill import engine as E
from dscore.distill.config import preset_components
from dscore.distill.evaluate import forgetting_scores
from dscore.distill.init import idc_decode, idc_mix_init, init_random_real
from dscore.distill.sampler import RandomSampler
from dscore.select import herding

ARCH = dict(arch="convnet", arch_kwargs={"width": 16, "depth": 2})


def small(name: str, ipc: int = 2, **overrides) -> DistillConfig:
    """A preset shrunk to a few cheap steps."""
    base = dict(iterations=2, batch_real=16, **ARCH)
    method, _ = preset_components(name)
    if method in ("dc", "dsa"):
        base.update(outer_loops=2, inner_loops=1, net_batch=32)
    if method == "idc":
        base.update(outer_loops=3, n_data=32, net_batch=16, batch_syn=8)
    base.update(overrides)
    return preset(name, "digits", ipc, **base)


def run(ds, cfg, **kw):
    return distill(ds.images, ds.labels, cfg, mean=ds.mean, std=ds.std, progress=False, **kw)


# ------------------------------------------------------------------------------------ configuration

def test_default_config_follows_the_papers():
    for ipc, loops in [(1, (1, 1)), (10, (10, 50)), (50, (50, 10))]:
        cfg = default_config("dc", "cifar10", ipc)
        assert (cfg.outer_loops, cfg.inner_loops) == loops
        assert (cfg.lr_img, cfg.momentum_img, cfg.lr_net, cfg.batch_real, cfg.grad_metric) == (0.1, 0.5, 0.01, 256, "dc")
    assert default_config("dsa", "cifar10", 10).siamese_augment == "dsa"
    assert default_config("dc", "cifar10", 10).siamese_augment == "none"
    dm = default_config("dm", "cifar10", 10)
    assert (dm.lr_img, dm.batch_real, dm.iterations, dm.objective) == (1.0, 256, 20000, "embedding")
    idc = default_config("idc", "cifar10", 10)
    assert (idc.factor, idc.init, idc.outer_loops, idc.grad_metric, idc.batch_real, idc.batch_syn) == (
        2, "mix", 100, "mse", 64, 128)
    assert idc.lr_img == pytest.approx(5e-3)
    assert default_config("idc", "svhn", 50).lr_img == pytest.approx(2.5e-2)
    fashion = default_config("idc", "fashion_mnist", 10)
    assert fashion.grad_metric == "l1" and fashion.lr_img == pytest.approx(1e-4 * (28 / 32) ** 2)
    assert default_config("idc", "mnist", 1).lr_img == pytest.approx(1e-5)
    assert default_config("idc", "cifar10", 10, seed=3).seed == 3


def test_presets_compose_the_dream_components():
    dream = preset("dream", "cifar10", 10)
    assert (dream.method, dream.sampler, dream.init, dream.objective, dream.clusters) == (
        "idc", "representative", "kmeans_mix", "gradient", 128)
    plus = preset("dreamplus", "cifar10", 10)
    assert (plus.objective, plus.pretrain_real_epochs, plus.iterations) == ("bidirectional", 1, 2000)
    rm = preset("dm+rm", "cifar10", 10)
    assert (rm.method, rm.sampler, rm.init, rm.objective) == ("dm", "representative", "real", "embedding")
    assert preset("dsa+init+bm", "cifar10", 1).init == "kmeans"
    assert preset("dsa+init+bm", "cifar10", 1).objective == "bidirectional"
    assert preset("idc", "cifar10", 10) == default_config("idc", "cifar10", 10)
    assert preset("dreamplus", "cifar10", 10, iterations=5).iterations == 5
    with pytest.raises(ValueError, match="'dc', 'dsa', 'dm', 'idc', 'dream', 'dreamplus'"):
        preset("mtt")
    with pytest.raises(ValueError, match="allowed: 'rm', 'init', 'bm', 'pt'"):
        preset("dm+xyz")


def test_feat_preset_is_idc_with_feature_matching(digits):
    feat, base = preset("idc+feat", "fashion_mnist", 10), preset("idc", "fashion_mnist", 10)
    assert feat == base.replace(objective="embedding", embed_metric="mse")   # IDC's match='feat' forces mse
    for bad in ("dreamplus+feat", "idc+feat+bm", "dm+feat"):
        with pytest.raises(ValueError, match="'feat'"):
            preset(bad)
    result = run(digits, small("idc+feat", iterations=2, outer_loops=2))
    assert all(math.isnan(v) for v in result.history["grad_loss"])
    assert all(math.isfinite(v) for v in result.history["embed_loss"])


def test_region_presets_match_on_the_class_centre_or_boundary(digits):
    centre, boundary = preset("idc+centre", "cifar10", 10), preset("idc+boundary", "cifar10", 10)
    base = preset("idc", "cifar10", 10)
    assert centre == base.replace(sampler="centre") and boundary == base.replace(sampler="boundary")
    assert centre.region_fraction == 0.25
    for bad in ("idc+rm+centre", "idc+centre+boundary"):
        with pytest.raises(ValueError, match="more than one real-batch sampler"):
            preset(bad)
    with pytest.raises(ValueError, match="region_fraction"):
        base.replace(sampler="centre", region_fraction=1.5)
    result = run(digits, small("idc+boundary", iterations=1, outer_loops=2))
    assert result.images.shape[0] == 10 * 2 and torch.isfinite(result.images).all()


@settings(max_examples=20, deadline=None)
@given(st.sampled_from(["dc", "dsa", "dm", "idc"]), st.lists(st.sampled_from(["rm", "init", "bm", "pt"]), max_size=4))
def test_preset_components_set_exactly_their_fields(method, comps):
    cfg = preset("+".join([method] + comps), "cifar10", 10)
    base = default_config(method, "cifar10", 10)
    assert (cfg.sampler == "representative") == ("rm" in comps)
    assert (cfg.init != base.init) == ("init" in comps)
    assert (cfg.objective == "bidirectional") == ("bm" in comps)
    assert cfg.pretrain_real_epochs == (1 if "pt" in comps else 0)


@pytest.mark.parametrize("field,value,allowed", [
    ("method", "mtt", "'dc', 'dsa', 'dm', 'idc'"),
    ("sampler", "herding", "'random', 'representative'"),
    ("init", "zeros", "'real', 'noise', 'kmeans', 'mix', 'kmeans_mix'"),
    ("objective", "trajectory", "'gradient', 'embedding', 'bidirectional'"),
    ("grad_metric", "cos", "'dc', 'mse', 'l1'"),
])
def test_unknown_choices_are_rejected_listing_what_is_allowed(field, value, allowed):
    with pytest.raises(ValueError, match=f"{field}={value!r}.*allowed: {allowed}"):
        DistillConfig(**{field: value})


def test_invalid_numbers_and_combinations_are_rejected():
    with pytest.raises(ValueError, match="ipc=0"):
        DistillConfig(ipc=0)
    with pytest.raises(ValueError, match="lr_img"):
        DistillConfig(lr_img=0.0)
    with pytest.raises(ValueError, match="init='mix' needs IDC"):
        default_config("dm", "cifar10", 10, init="mix")
    with pytest.raises(ValueError, match="factor=2 is only used by method='idc'"):
        default_config("dc", "cifar10", 10, factor=2)
    with pytest.raises(ValueError, match=r"unknown DistillConfig field\(s\) \['speed'\]"):
        default_config("dc", "cifar10", 10, speed=3)
    with pytest.raises(ValueError, match="dataset_name='imagenet1k'"):
        default_config("dc", "imagenet1k", 10)


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(1, 40), min_size=1, max_size=5), st.integers(1, 40), st.integers(1, 40))
def test_check_data_fails_exactly_when_a_class_is_too_small(sizes, ipc, clusters):
    cfg = DistillConfig(method="dm", factor=1, init="real", ipc=ipc, sampler="representative", num_clusters=clusters)
    too_small = ipc > min(sizes) or clusters > min(sizes)
    if too_small:
        with pytest.raises(ValueError, match=f"smallest class .*{min(sizes)} images"):
            cfg.check_data(sizes)
    else:
        cfg.check_data(sizes)


def test_distill_validates_before_building_any_network(digits, monkeypatch):
    def boom(*args, **kwargs):
        raise AssertionError("a network was built before validation finished")

    monkeypatch.setattr(dscore.models, "create_model", boom)
    smallest = int(torch.bincount(digits.labels).min())
    with pytest.raises(ValueError, match=f"ipc={smallest + 1} exceeds the smallest class.*{smallest} images"):
        run(digits, small("dm", ipc=smallest + 1))
    with pytest.raises(ValueError, match=f"num_clusters={smallest + 1} exceeds the smallest class"):
        run(digits, small("dream", num_clusters=smallest + 1))
    with pytest.raises(ValueError, match="ipc·factor²"):
        run(digits, small("idc", ipc=40))
    with pytest.raises(ValueError, match="unknown model name='convnet9'"):
        run(digits, small("dm", arch="convnet9"))
    with pytest.raises(ValueError, match=r"arch_kwargs \['depthh'\]"):
        run(digits, small("dm", arch_kwargs={"depthh": 2}))
    with pytest.raises(ValueError, match="train_labels must be an int64"):
        distill(digits.images, digits.labels.int(), small("dm"), progress=False)
    with pytest.raises(ValueError, match="square"):
        distill(digits.images[:, :, :, :8], digits.labels, small("dm"), progress=False)
    with pytest.raises(ValueError, match="std="):
        distill(digits.images, digits.labels, small("dm"), std=[0.0], progress=False)
    with pytest.raises(ValueError, match="config must be a DistillConfig"):
        distill(digits.images, digits.labels, {"method": "dm"}, progress=False)


# ------------------------------------------------------------------------------------ the methods run

@pytest.mark.parametrize("name", ["dc", "dsa", "dm", "idc", "dream", "dreamplus"])
def test_each_method_runs_and_returns_the_right_shapes(digits, name):
    cfg = small(name, ipc=2, snapshot_every=1)
    result = run(digits, cfg)
    assert result.images.shape == (20, 1, 16, 16) and result.images.dtype == torch.float32
    assert torch.equal(result.labels, torch.arange(10).repeat_interleave(2))
    if cfg.clamp_images:          # IDC family; dc/dsa/dm are not clamped (as their authors)
        assert float(result.images.min()) >= 0 and float(result.images.max()) <= 1
    steps = cfg.iterations * (1 if cfg.method == "dm" else cfg.outer_loops)
    for key in ("iteration", "step", "loss", "grad_loss", "embed_loss", "reclusters", "time_clustering",
                "time_matching", "time_network_update"):
        assert len(result.history[key]) == steps, key
    assert all(math.isfinite(v) for v in result.history["loss"])
    assert [i for i, _ in result.snapshots] == [0, 1, 2]
    assert torch.equal(result.snapshots[-1][1], result.images)
    assert not torch.equal(result.snapshots[0][1], result.images)         # the images moved
    train_x, train_y = result.training_set()
    per_class = 2 * cfg.factor ** 2
    assert train_x.shape == (10 * per_class, 1, 16, 16) and train_y.shape == (10 * per_class,)
    assert set(result.timings) == {"clustering", "matching", "network_update", "pretrain", "init", "diagnostics"}


def test_representative_sampler_reclusters_every_interval(digits):
    cfg = small("dream", num_clusters=8, interval=2, outer_loops=5, iterations=2, pretrain_real_epochs=0)
    result = run(digits, cfg)
    # per network: image steps 0..4 → blocks {0,1}, {2,3}, {4}: re-clustering at steps 0, 2, 4 for each class
    assert result.history["reclusters"] == [10, 0, 10, 0, 10] * 2
    clustered = [t for t, n in zip(result.history["time_clustering"], result.history["reclusters"]) if n]
    assert all(t > 0 for t in clustered)
    assert all(t == 0 for t, n in zip(result.history["time_clustering"], result.history["reclusters"]) if not n)
    assert result.timings["init"] > 0
    random_run = run(digits, small("idc", outer_loops=5))
    assert sum(random_run.history["reclusters"]) == 0 and random_run.timings["clustering"] == 0


def test_dm_with_representative_batches_reclusters_every_interval_iterations(digits):
    result = run(digits, small("dm+rm", num_clusters=4, interval=3, iterations=7))
    assert result.history["reclusters"] == [10, 0, 0, 10, 0, 0, 10]


@pytest.mark.parametrize("name", ["dream", "dm+rm"])
def test_bidirectional_loss_is_used_when_asked(digits, monkeypatch, name):
    calls = []
    original = E.bidirectional_loss

    def spy(*args, **kwargs):
        calls.append(kwargs)
        return original(*args, **kwargs)

    monkeypatch.setattr(E, "bidirectional_loss", spy)
    plain = run(digits, small(name))
    assert not calls and all(math.isnan(v) for v in plain.history[
        "embed_loss" if plain.config.objective == "gradient" else "grad_loss"])
    cfg = small(name + "+bm", embed_weight=0.5)
    both = run(digits, cfg)
    steps = len(both.history["loss"])
    assert len(calls) == steps * 10 and all(c["embed_weight"] == 0.5 for c in calls)
    h = both.history
    for loss, grad, embed in zip(h["loss"], h["grad_loss"], h["embed_loss"]):
        assert embed > 0 and grad > 0
        assert loss == pytest.approx(grad + 0.5 * embed, rel=1e-5)


def test_diagnostics_are_recorded_and_do_not_change_the_images(digits):
    with_diag = run(digits, small("dreamplus", num_clusters=8, diag_every=2))
    without = run(digits, small("dreamplus", num_clusters=8))
    assert torch.equal(with_diag.images, without.images)
    h = with_diag.history
    assert h["diag_step"] == [0, 2, 4]
    for key in ("grad_diff", "feature_diff", "batch_mmd", "time_diagnostics"):
        assert len(h[key]) == 3 and all(math.isfinite(v) for v in h[key]), key
    assert all(v > 0 for v in h["grad_diff"] + h["feature_diff"])


# ------------------------------------------------------------------------------------ reference steps

def _reference_setup(ds, cfg):
    """The engine's network for iteration 0 and its sorted per-class real images."""
    net = dscore.models.create_model(cfg.arch, num_classes=10, in_channels=1, image_size=16, mean=ds.mean,
                                     std=ds.std, seed=E.derive_seed(cfg.seed, E._NET, 0) & 0x7FFFFFFF,
                                     **cfg.arch_kwargs)
    classes = [ds.images[ds.labels == c] for c in range(10)]
    sampler = RandomSampler(batch_size=cfg.batch_real, seed=E.derive_seed(cfg.seed, E._SAMPLER) & 0x7FFFFFFF)
    return net, classes, sampler


def _naive_ce_grads(net, x, y, params, create_graph):
    loss = F.cross_entropy(net(x), y)
    return torch.autograd.grad(loss, params, create_graph=create_graph)


def test_one_dc_step_matches_a_naive_reference(digits):
    """DC with one image step: Σ_classes Σ_layers Σ_rows (1 − cos) summed over classes, one SGD step in
    normalised space — written out with explicit loops over layers and rows."""
    cfg = small("dc", ipc=1, iterations=1, outer_loops=1, init="real")
    result = run(digits, cfg)
    net, classes, sampler = _reference_setup(digits, cfg)
    mean, std = digits.mean[0], digits.std[0]
    init = torch.cat([init_random_real(classes[c], 1, E.derive_seed(cfg.seed, E._INIT, c) & 0x7FFFFFFF)
                      for c in range(10)])
    z = ((init - mean) / std).requires_grad_(True)
    params = [p for p in net.parameters() if p.dim() >= 2]
    total = 0.0
    for c in range(10):
        real = classes[c][sampler.batch(0, c, classes[c])]
        g_real = _naive_ce_grads(net, real, torch.full((len(real),), c), params, False)
        g_syn = _naive_ce_grads(net, z[c:c + 1] * std + mean, torch.tensor([c]), params, True)
        for gr, gs in zip(g_real, g_syn):
            gr, gs = gr.reshape(gr.shape[0], -1), gs.reshape(gs.shape[0], -1)
            for row in range(gr.shape[0]):
                total = total + 1 - (gr[row] @ gs[row]) / (gr[row].norm() * gs[row].norm() + 1e-6)
    (grad,) = torch.autograd.grad(total, z)
    expected = (z.detach() - cfg.lr_img * grad) * std + mean          # DC never clamps
    assert result.history["loss"][0] == pytest.approx(float(total.detach()), rel=1e-4)
    torch.testing.assert_close(result.images, expected, rtol=1e-4, atol=1e-5)


def test_idc_steps_once_per_class_with_momentum_like_a_naive_reference(digits):
    """IDC without augmentation, one image step: per class, decode → summed |g_real − g_syn| over conv
    weights → one step of a single momentum-SGD optimiser over ALL stored images (so the momentum of
    earlier classes keeps moving their images while later classes step)."""
    cfg = small("idc", ipc=1, iterations=1, outer_loops=1, siamese_augment="none", batch_syn=None,
                grad_metric="l1", lr_img=0.01)
    result = run(digits, cfg)
    net, classes, sampler = _reference_setup(digits, cfg)
    x = torch.cat([idc_mix_init(classes[c], 1, 2, E.derive_seed(cfg.seed, E._INIT, c) & 0x7FFFFFFF)
                   for c in range(10)]).requires_grad_(True)
    convs = [m.weight for m in net.modules() if isinstance(m, nn.Conv2d)]
    velocity, total = None, 0.0
    for c in range(10):
        real = classes[c][sampler.batch(0, c, classes[c])]
        g_real = _naive_ce_grads(net, real, torch.full((len(real),), c), convs, False)
        g_syn = _naive_ce_grads(net, idc_decode(x[c:c + 1], 2), torch.full((4,), c), convs, True)
        loss = sum((a - b).abs().sum() for a, b in zip(g_real, g_syn))
        total += float(loss.detach())
        (grad,) = torch.autograd.grad(loss, x)
        with torch.no_grad():
            velocity = grad.clone() if velocity is None else cfg.momentum_img * velocity + grad
            x -= cfg.lr_img * velocity
    assert result.history["loss"][0] == pytest.approx(total, rel=1e-4)
    torch.testing.assert_close(result.images, x.detach().clamp(0, 1), rtol=1e-4, atol=1e-6)


# ------------------------------------------------------------------------------------ determinism, resume

def test_same_seed_same_images_other_seed_other_images(digits):
    cfg = small("dreamplus", num_clusters=8)
    a, b = run(digits, cfg), run(digits, cfg)
    assert torch.equal(a.images, b.images)
    assert a.history["loss"] == b.history["loss"]
    c = run(digits, cfg.replace(seed=1))
    assert not torch.equal(a.images, c.images)


class _Interrupted(Exception):
    pass


@pytest.mark.parametrize("name,overrides", [
    ("dreamplus", dict(num_clusters=8, iterations=3, outer_loops=2)),
    ("dm+rm", dict(num_clusters=4, interval=3, iterations=5)),
])
def test_resume_from_checkpoint_equals_an_uninterrupted_run(digits, tmp_path, monkeypatch, name, overrides):
    cfg = small(name, checkpoint_every=2, snapshot_every=1, **overrides)
    full = run(digits, cfg)
    path = tmp_path / "ckpt.pt"
    original = E._Distillation.run_iteration
    seen = []

    def crash_at_3(self, iteration):
        if iteration == 3 - (name == "dreamplus"):
            raise _Interrupted
        seen.append(iteration)
        return original(self, iteration)

    monkeypatch.setattr(E._Distillation, "run_iteration", crash_at_3)
    with pytest.raises(_Interrupted):
        run(digits, cfg, checkpoint_path=path)
    assert path.exists() and not list(tmp_path.glob(".*.tmp"))
    saved = torch.load(path, weights_only=True)
    assert saved["iteration"] == 2
    monkeypatch.setattr(E._Distillation, "run_iteration", lambda self, it: (seen.append(it), original(self, it))[1])
    seen.clear()
    resumed = run(digits, cfg, checkpoint_path=path)
    assert seen == list(range(2, cfg.iterations))
    assert torch.equal(resumed.images, full.images)
    assert resumed.history["loss"] == full.history["loss"]
    assert [i for i, _ in resumed.snapshots] == [i for i, _ in full.snapshots]
    assert all(torch.equal(a, b) for (_, a), (_, b) in zip(resumed.snapshots, full.snapshots))
    # a finished checkpoint is returned without running anything
    seen.clear()
    again = run(digits, cfg, checkpoint_path=path)
    assert seen == [] and torch.equal(again.images, full.images)


def test_checkpoint_of_another_config_is_ignored_with_a_warning(digits, tmp_path):
    path = tmp_path / "ckpt.pt"
    run(digits, small("dm", checkpoint_every=1), checkpoint_path=path)
    other = small("dm", seed=5, checkpoint_every=1)
    with pytest.warns(RuntimeWarning, match="another configuration"):
        result = run(digits, other, checkpoint_path=path)
    assert torch.equal(result.images, run(digits, other).images)


# ------------------------------------------------------------------------------------ evaluation

def test_dm_distillation_beats_its_noise_initialisation(digits, digits_test):
    cfg = small("dm", ipc=5, init="noise", iterations=25, batch_real=32, snapshot_every=25)
    result = run(digits, cfg)
    ev = dict(family="dc", epochs=30, seeds=(0,), mean=digits.mean, std=digits.std, **ARCH)
    before = evaluate_synthetic(result.snapshots[0][1], result.labels, digits_test.images, digits_test.labels, ev,
                                progress=False)
    after = evaluate_synthetic(result.images, result.labels, digits_test.images, digits_test.labels, ev,
                               progress=False)
    assert before["mean"] < 0.3 and after["mean"] > before["mean"] + 0.3, (before, after)


def test_evaluate_synthetic_decodes_idc_sets_and_reports_mean_std(digits, digits_test, monkeypatch):
    seen = {}
    import dscore.distill.evaluate as EV
    original = EV.train_many

    def spy(model_fn, images, labels, **kw):
        seen.update(n=images.shape[0], protocol=kw["protocol"], epochs=kw.get("epochs"))
        return original(model_fn, images, labels, **kw)

    monkeypatch.setattr(EV, "train_many", spy)
    imgs, labels = digits.images[:20], torch.arange(10).repeat_interleave(2)
    out = evaluate_synthetic(imgs, labels, digits_test.images, digits_test.labels,
                             dict(family="idc", epochs=1, seeds=(0, 1), mean=digits.mean, std=digits.std, **ARCH),
                             factor=2, progress=False)
    assert seen == {"n": 80, "protocol": "idc", "epochs": 1}
    assert len(out["accs"]) == 2 and out["mean"] == pytest.approx(sum(out["accs"]) / 2)
    assert out["std"] == pytest.approx(abs(out["accs"][0] - out["accs"][1]) / 2 ** 0.5)      # ddof = 1 over two
    result = run(digits, small("idc", iterations=1, outer_loops=1))
    evaluate_result(result, digits_test.images, digits_test.labels, epochs=1, seeds=(0,), progress=False,
                    mean=digits.mean, std=digits.std)
    assert seen["n"] == 80 and seen["protocol"] == "idc"
    with pytest.raises(ValueError, match="factor=2 .* needs method_family='idc'"):
        evaluate_synthetic(imgs, labels, digits_test.images, digits_test.labels, {"family": "dsa"}, factor=2)
    with pytest.raises(ValueError, match="method_family='dm'"):
        evaluate_synthetic(imgs, labels, digits_test.images, digits_test.labels, {"family": "dm"})
    with pytest.raises(ValueError, match="family required"):
        evaluate_synthetic(imgs, labels, digits_test.images, digits_test.labels, {"epochs": 3})
    with pytest.raises(ValueError, match="do not pass family"):
        evaluate_result(result, digits_test.images, digits_test.labels, family="dc")


class _Alternating(nn.Module):
    """Predicts the label coded in the pixels on even calls and the next class on odd calls."""

    def __init__(self, classes=3):
        super().__init__()
        self.classes, self.calls, self.w = classes, 0, nn.Parameter(torch.zeros(()))

    def forward(self, x):
        label = x[:, 0, 0, 0].round().long()
        pred = label if self.calls % 2 == 0 else (label + 1) % self.classes
        self.calls += 1
        return F.one_hot(pred, self.classes).float() * 10 + self.w * 0


def test_forgetting_scores_count_correct_to_wrong_flips():
    labels = torch.tensor([0, 1, 2, 0, 1, 2])
    images = labels.float().view(-1, 1, 1, 1).expand(-1, 1, 8, 8).contiguous()
    scores = forgetting_scores(_Alternating(), images, labels, {"epochs": 5, "batch_size": 6, "augment": "none"},
                               progress=False, device="cpu")
    assert scores.tolist() == [2.0] * 6              # right, wrong, right, wrong, right: two forgetting events
    wrong_labels = (labels + 1) % 3                  # the model is right only on odd calls → learned at epoch 2
    scores = forgetting_scores(_Alternating(), images, wrong_labels, {"epochs": 2, "batch_size": 6, "augment": "none"},
                               progress=False, device="cpu")
    assert scores.tolist() == [0.0] * 6
    never = forgetting_scores(_Alternating(), images, wrong_labels, {"epochs": 1, "batch_size": 6, "augment": "none"},
                              progress=False, device="cpu")
    assert never.tolist() == [1.0] * 6               # never learned: the maximum, `epochs`


def test_select_coreset_ipc_methods(digits):
    labels = digits.labels
    emb = digits.images.flatten(1)
    for method in ("random", "herding", "kcenter"):
        idx = select_coreset_ipc(labels, 3, method, embeddings=emb, seed=1)
        assert idx.shape == (30,) and idx.unique().numel() == 30
        assert torch.equal(torch.bincount(labels[idx], minlength=10), torch.full((10,), 3))
    herd = select_coreset_ipc(labels, 3, "herding", embeddings=emb)
    members = (labels == 4).nonzero().flatten()
    assert torch.equal(herd[12:15], members[herding(emb[members], 3)])
    scores = torch.arange(len(labels)).float()
    top = select_coreset_ipc(labels, 2, "forgetting", scores=scores)
    for c in range(10):
        assert sorted(top[2 * c:2 * c + 2].tolist()) == (labels == c).nonzero().flatten()[-2:].tolist()
    with pytest.raises(ValueError, match="needs embeddings"):
        select_coreset_ipc(labels, 3, "herding")
    with pytest.raises(ValueError, match="method='gradmatch'"):
        select_coreset_ipc(labels, 3, "gradmatch")


def test_evaluate_coreset_ipc_runs(digits, digits_test):
    out = evaluate_coreset_ipc(digits.images, digits.labels, digits_test.images, digits_test.labels,
                               dict(family="dsa", epochs=2, seeds=(0,), mean=digits.mean, std=digits.std, **ARCH),
                               ipc=2, method="random", progress=False)
    assert out["indices"].shape == (20,) and 0 <= out["mean"] <= 1


def test_pretrain_steps_caps_the_pretraining_epoch(digits, monkeypatch):
    """``pretrain_steps`` cuts every new network's pretraining to that many SGD steps; None keeps whole epochs."""
    from dscore.distill import engine

    seen = []
    original = engine._Distillation.train_network

    def spy(self, net, opt, images, labels, batches, seed):
        seen.append(len(batches))
        return original(self, net, opt, images, labels, batches, seed)

    monkeypatch.setattr(engine._Distillation, "train_network", spy)
    run(digits, small("dreamplus", iterations=1, outer_loops=1, n_data=16))
    whole = max(seen)
    seen.clear()
    run(digits, small("dreamplus", iterations=1, outer_loops=1, n_data=16, pretrain_steps=3))
    assert max(seen) == 3 < whole
    with pytest.raises(ValueError, match="pretrain_steps"):
        small("dreamplus", pretrain_steps=0)
