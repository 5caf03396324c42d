"""Fidelity of the distillers to the authors' codes (IDC, DREAM/DREAM+, DC/DSA/DM): re-clustering
seeds, the representative batch convention, network training during distillation, the matching
augmentation, equal iteration budgets, the DC-metric bidirectional term, init/clamping, precision of
the clustering pass and the best-of-checks diagnostic. Runs on sklearn's digits at 16 px with a small
ConvNet, except the gradient-ratio reference, which uses ConvNet-3 at 28 px."""
from __future__ import annotations

import pytest
import torch

import dscore.augment as A
from dscore.distill import DistillConfig, default_config, distill, evaluate_snapshots, evaluate_synthetic, preset
from dscore.distill import engine as E
from dscore.distill import sampler as S
from dscore.distill.config import AUTHORS_STATS, authors_stats, preset_components
from dscore.distill.losses import _forward_grads, dc_gradient_distance, embedding_distance, matching_parameters
from dscore.models import create_model

ARCH = dict(arch="convnet", arch_kwargs={"width": 16, "depth": 2})


def small(name: str, ipc: int = 2, **overrides) -> DistillConfig:
    base = dict(iterations=2, batch_real=16, **ARCH)
    method, _ = preset_components(name)
    if method in ("dc", "dsa"):
        base.update(outer_loops=2, inner_loops=1, net_batch=32)
    if method == "idc":
        base.update(outer_loops=3, n_data=32, batch_syn=8)
    base.update(overrides)
    return preset(name, "digits", ipc, **base)


def run(ds, cfg, **kw):
    return distill(ds.images, ds.labels, cfg, mean=ds.mean, std=ds.std, progress=False, **kw)


class _Flat(torch.nn.Module):
    def embed(self, x):
        return x.reshape(x.shape[0], -1)


# ------------------------------------------------------------------------------ 6. re-clustering

def test_reclustering_is_cold_by_default_with_seeds_from_iteration_step_and_class(monkeypatch):
    assert DistillConfig().warm_start is False and preset("dream").warm_start is False
    assert S.RepresentativeSampler().warm_start is False
    inits, seeds = [], []
    real_fit = S.fit_kmeans

    def spy(*args, **kwargs):
        inits.append(kwargs.get("init"))
        seeds.append(kwargs["seed"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(S, "fit_kmeans", spy)
    x = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    model = _Flat()
    sampler = S.RepresentativeSampler(num_clusters=4, interval=5, seed=7)
    for it in range(2):
        for step in range(10):
            sampler.batch(step, 0, x, model, iteration=it)
    assert len(inits) == 4 and all(i is None for i in inits)           # cold every time
    assert len(set(seeds)) == 4                                         # (it, step) = (0,0), (0,5), (1,0), (1,5)
    assert seeds == [sampler.clustering_seed(i, s, 0) for i, s in ((0, 0), (0, 5), (1, 0), (1, 5))]
    assert sampler.clustering_seed(0, 0, 0) != sampler.clustering_seed(0, 0, 1)       # class enters the seed
    other = S.RepresentativeSampler(num_clusters=4, interval=5, seed=8)
    assert other.clustering_seed(0, 0, 0) != sampler.clustering_seed(0, 0, 0)        # so does the run seed
    # the option: warm start from the previous centroids of the class
    inits.clear()
    warm = S.RepresentativeSampler(num_clusters=4, interval=5, seed=7, warm_start=True)
    for step in range(10):
        warm.batch(step, 0, x, model)
    assert inits[0] is None and inits[1] is not None


def test_engine_reclusters_with_distinct_seeds_across_iterations_and_steps(digits, monkeypatch):
    seeds = []
    real_fit = S.fit_kmeans

    def spy(*args, **kwargs):
        assert kwargs.get("init") is None
        seeds.append(kwargs["seed"])
        return real_fit(*args, **kwargs)

    monkeypatch.setattr(S, "fit_kmeans", spy)
    run(digits, small("dream", interval=2, outer_loops=4, iterations=2, num_clusters=4))
    # per iteration: steps 0 and 2, ten classes each → 2 iterations × 2 × 10 clusterings, all seeds distinct
    assert len(seeds) == 40 and len(set(seeds)) == 40


# ------------------------------------------------------------------------------ 7. batch convention

def test_clusters_follow_batch_real_over_subsample_so_the_batch_stays_batch_real(digits, monkeypatch):
    cfg = preset("dream", "cifar10", 10, subsample=4)
    assert (cfg.batch_real, cfg.clusters, cfg.clusters * cfg.subsample) == (128, 32, 128)
    assert preset("dream", "cifar10", 10).clusters == 128
    assert preset("dream", "cifar10", 10, subsample=4, num_clusters=10).clusters == 10       # override
    assert preset("dream", "cifar10", 10, subsample=3).clusters == 42                       # floor, as the authors
    with pytest.raises(ValueError, match="subsample=200 exceeds batch_real=128"):
        preset("dream", "cifar10", 10, subsample=200)
    s = S.RepresentativeSampler.for_batch(128, 4)
    assert (s.num_clusters, s.subsample) == (32, 4)
    with pytest.raises(ValueError, match="subsample=5 exceeds batch_real=4"):
        S.RepresentativeSampler.for_batch(4, 5)

    sizes = []
    real_batch = S.RepresentativeSampler.batch

    def spy(self, *args, **kwargs):
        idx = real_batch(self, *args, **kwargs)
        sizes.append((self.num_clusters, idx.shape[0]))
        return idx

    monkeypatch.setattr(S.RepresentativeSampler, "batch", spy)
    run(digits, small("dream", batch_real=16, subsample=4, iterations=1, outer_loops=1))
    assert sizes and all(s == (4, 16) for s in sizes)


# ------------------------------------------------------------------------------ 8. network training

def test_dream_trains_networks_on_real_data_with_batch_real_and_colour_crop(digits, monkeypatch):
    for name in ("dream", "dreamplus"):
        cfg = preset(name, "cifar10", 10)
        assert (cfg.batch_real, cfg.net_batch, cfg.net_augment, cfg.cutmix_p) == (128, 128, "idc_net", 0.5)
    assert preset("dream", "cifar10", 10, batch_real=32).net_batch == 32
    idc = default_config("idc", "cifar10", 10)
    assert (idc.batch_real, idc.net_batch, idc.net_augment) == (64, 64, "idc_net")      # IDC: its batch 64

    seen = []
    real_train = E._Distillation.train_network

    def spy(self, net, opt, images, labels, batches, seed):
        seen.append(([len(b) for b in batches], self.net_augment))
        return real_train(self, net, opt, images, labels, batches, seed)

    monkeypatch.setattr(E._Distillation, "train_network", spy)
    cfg = preset("dreamplus", "digits", 2, iterations=1, outer_loops=2, n_data=64, batch_real=32, num_clusters=8,
                 batch_syn=8, **ARCH)
    assert cfg.net_batch == 32
    run(digits, cfg)
    # the k-means-init network's pretraining epoch, iteration 0's pretraining epoch, one n_data round
    assert len(seen) == 3
    for sizes, aug in seen:
        assert aug is A.idc_net_augment
        assert max(sizes) <= 33 and sizes[0] == 32          # batch_real (a trailing single merges into the last)
    assert sum(seen[-1][0]) == 64                           # the n_data round


def test_idc_net_augmentation_is_per_sample_colour_then_crop(monkeypatch):
    drawn = []
    real_apply = A.aug_apply

    def spy(x, params):
        drawn.append(params)
        return real_apply(x, params)

    monkeypatch.setattr(A, "aug_apply", spy)
    x = torch.rand(6, 3, 8, 8)
    for seed in range(5):
        A.get_augmentation("idc_net")(x, torch.Generator().manual_seed(seed))
    assert all(p.ops == ("brightness", "saturation", "contrast", "crop") and p.n == 6 for p in drawn)


# ------------------------------------------------------------------------------ 9. matching augmentation

def test_idc_matching_augmentation_is_colour_crop_cutout_shared_by_both_batches(monkeypatch):
    drawn = []
    real_draw = A._draw

    def spy(ops, n, *args, **kwargs):
        drawn.append((ops, n))
        return real_draw(ops, n, *args, **kwargs)

    monkeypatch.setattr(A, "_draw", spy)
    real, syn = torch.rand(5, 3, 8, 8), torch.rand(2, 3, 8, 8)
    for seed in range(6):
        A.siamese_idc(real, syn, torch.Generator().manual_seed(seed))
    assert set(drawn) == {(("brightness", "saturation", "contrast", "crop", "cutout"), 1)}
    drawn.clear()
    for seed in range(30):                       # the earlier variant stays available
        A.siamese_idc(real, syn, torch.Generator().manual_seed(seed), choices=A.IDC_CHOICES)
    assert {ops[3] for ops, _ in drawn} == {"crop", "scale", "rotate"}
    assert default_config("idc", "cifar10", 10).siamese_augment == "idc"
    assert DistillConfig(siamese_augment="idc_multi").siamese_augment == "idc_multi"


# ------------------------------------------------------------------------------ 11. equal iterations

@pytest.mark.parametrize("dataset", ["cifar10", "cifar100", "svhn", "fashion_mnist", "tinyimagenet"])
def test_idc_dream_and_dreamplus_get_the_same_iterations(dataset):
    its = {name: preset(name, dataset, 10).iterations for name in ("idc", "dream", "dreamplus")}
    assert set(its.values()) == {2000}, its


def test_n_data_and_tinyimagenet_settings_follow_the_reproduce_script():
    assert default_config("idc", "cifar10", 10).n_data == 2000
    assert default_config("idc", "cifar100", 10).n_data == 2000
    assert default_config("idc", "svhn", 10).n_data == 500
    tiny = default_config("idc", "tinyimagenet", 10)
    assert (tiny.n_data, tiny.arch) == (1000, "convnet4")
    assert tiny.lr_img == pytest.approx(5e-3 * 4)                               # ×(64/32)²
    assert default_config("idc", "tinyimagenet", 50).lr_img == pytest.approx(1e-6 * 5 * 4)
    assert preset("dream", "tinyimagenet", 10).batch_real == 64


# ------------------------------------------------------------------------------ 12. DC bidirectional term

def _reference_gradient_norms(embed_metric: str, embed_weight: float) -> tuple[float, float]:
    """Gradient norms on the synthetic images of the embedding term and of DC's gradient term, on
    ConvNet-3, one class, 64 real / 10 synthetic 28×28 images (random, seed 0)."""
    gen = torch.Generator().manual_seed(0)
    real = torch.rand(64, 1, 28, 28, generator=gen)
    syn = torch.rand(10, 1, 28, 28, generator=gen).requires_grad_(True)
    net = create_model("convnet3", num_classes=10, in_channels=1, image_size=28, mean=0.2861, std=0.3530, seed=0)
    params = matching_parameters(net)
    y_real, y_syn = torch.zeros(64, dtype=torch.long), torch.zeros(10, dtype=torch.long)
    emb_real, _, g_real = _forward_grads(net, real, y_real, params, create_graph=False)
    emb_syn, _, g_syn = _forward_grads(net, syn, y_syn, params, create_graph=True)
    grad_term = dc_gradient_distance([g.detach() for g in g_real], g_syn)
    embed_term = embed_weight * embedding_distance(emb_real.detach(), emb_syn, embed_metric)
    (g_grad,) = torch.autograd.grad(grad_term, syn, retain_graph=True)
    (g_embed,) = torch.autograd.grad(embed_term, syn)
    return float(g_embed.norm()), float(g_grad.norm())


def test_dc_bidirectional_embedding_term_has_a_gradient_comparable_to_the_gradient_term():
    for method in ("dc", "dsa"):
        cfg = preset(f"{method}+bm", "fashion_mnist", 10)
        assert (cfg.grad_metric, cfg.embedding_metric, cfg.embed_weight) == ("dc", "mse", 1.0)
    cfg = preset("dc+bm", "fashion_mnist", 10)
    embed, grad = _reference_gradient_norms(cfg.embedding_metric, cfg.embed_weight)
    assert 0.1 <= embed / grad <= 10, (embed, grad)
    # the 1 − cos form (kept as an option) is negligible next to the gradient term
    embed_cos, _ = _reference_gradient_norms("dc", 1.0)
    assert embed_cos / grad < 0.01
    assert preset("dreamplus", "cifar10", 10).embedding_metric == "mse"          # IDC metrics: same metric, 1:1
    assert preset("dreamplus", "fashion_mnist", 10).embedding_metric == "l1"
    assert preset("dc+bm", "cifar10", 10, embed_metric="dc").embedding_metric == "dc"
    with pytest.raises(ValueError, match="embed_metric"):
        DistillConfig(embed_metric="cos")


# ------------------------------------------------------------------------------ 13. DC/DSA/DM init, clamping

def test_init_follows_the_readme_commands_and_only_the_idc_family_clamps():
    assert default_config("dc", "cifar10", 10).init == "noise"
    assert default_config("dsa", "cifar10", 10).init == "real"
    assert default_config("dm", "cifar10", 10).init == "real"
    for m in ("dc", "dsa", "dm"):
        assert default_config(m, "cifar10", 10).clamp_images is False
        assert default_config(m, "cifar10", 10, clamp=True).clamp_images is True
    for name in ("idc", "dream", "dreamplus"):
        assert preset(name, "cifar10", 10).clamp_images is True
    with pytest.raises(ValueError, match="clamp="):
        DistillConfig(clamp="yes")
    assert authors_stats("cifar10") == ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010))
    assert set(AUTHORS_STATS) >= {"cifar10", "cifar100", "svhn", "mnist", "fashion_mnist"}
    with pytest.raises(ValueError, match="dataset_name"):
        authors_stats("digits")


def test_dc_noise_init_is_gaussian_in_normalised_space_and_never_clamped(digits):
    cfg = small("dc", ipc=10, iterations=1, outer_loops=1, snapshot_every=1)
    result = run(digits, cfg)
    init = result.snapshots[0][1]
    z = (init - digits.mean[0]) / digits.std[0]
    assert abs(float(z.mean())) < 0.05 and abs(float(z.std()) - 1) < 0.05
    assert float(result.images.min()) < 0 or float(result.images.max()) > 1       # not clamped
    clamped = run(digits, cfg.replace(clamp=True))
    assert float(clamped.images.min()) >= 0 and float(clamped.images.max()) <= 1


# ------------------------------------------------------------------------------ 14. precision

def test_clustering_embedding_pass_follows_amp(digits, monkeypatch):
    flags = []
    real_autocast = S.autocast

    def spy(device, enabled=True):
        flags.append(enabled)
        return real_autocast(device, enabled)

    monkeypatch.setattr(S, "autocast", spy)
    S.embed_images(_Flat(), torch.rand(3, 1, 2, 2))
    S.embed_images(_Flat(), torch.rand(3, 1, 2, 2), amp=True)
    assert flags == [False, True]
    with pytest.raises(ValueError, match="amp="):
        S.embed_images(_Flat(), torch.rand(3, 1, 2, 2), amp="no")
    flags.clear()
    run(digits, small("dream", iterations=1, outer_loops=1, num_clusters=4))
    assert flags and not any(flags)                      # amp=False: no bf16 anywhere in the clustering


# ------------------------------------------------------------------------------ 15. best of checks

def test_evaluate_synthetic_reports_final_and_labelled_best_of_checks(digits, digits_test):
    imgs, labels = digits.images[:20], torch.arange(10).repeat_interleave(2)
    out = evaluate_synthetic(imgs, labels, digits_test.images, digits_test.labels,
                             dict(family="idc", epochs=8, seeds=(0, 1), mean=digits.mean, std=digits.std, **ARCH),
                             progress=False)
    assert out["check_every"] == 2                                 # the authors' epochs // 4
    assert len(out["best_of_checks"]) == 2
    for best, final in zip(out["best_of_checks"], out["accs"]):
        assert best >= final
    assert out["best_of_checks_mean"] == pytest.approx(sum(out["best_of_checks"]) / 2)
    assert "authors' protocol" in out["best_of_checks_label"] and "never used to choose" in out["best_of_checks_label"]
    dsa = evaluate_synthetic(imgs, labels, digits_test.images, digits_test.labels,
                             dict(family="dsa", epochs=3, seeds=(0,), mean=digits.mean, std=digits.std, **ARCH),
                             progress=False)
    assert dsa["check_every"] == 3 and dsa["best_of_checks"] == dsa["accs"]      # DC/DSA: the final test only
    with pytest.raises(ValueError, match="check_every"):
        evaluate_synthetic(imgs, labels, digits_test.images, digits_test.labels, {"family": "dsa", "check_every": 0})


def test_evaluate_snapshots_reports_final_and_best_over_distillation(digits, digits_test):
    result = run(digits, small("dreamplus", iterations=2, outer_loops=1, num_clusters=4, snapshot_every=1))
    out = evaluate_snapshots(result, digits_test.images, digits_test.labels, epochs=1, seeds=(0,),
                             mean=digits.mean, std=digits.std, progress=False)
    assert out["iterations"] == [0, 1, 2] and len(out["means"]) == 3
    assert out["final"] == out["means"][-1] and out["best_over_snapshots"] == max(out["means"])
    assert out["best_iteration"] in out["iterations"] and "never used to choose" in out["label"]
    result.snapshots.clear()
    with pytest.raises(ValueError, match="snapshot_every"):
        evaluate_snapshots(result, digits_test.images, digits_test.labels)
