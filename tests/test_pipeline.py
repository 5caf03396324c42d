"""Tests for dscore.quantize.pipeline on scikit-learn's digits (upscaled to 16 px) with tiny networks and a tmp cache."""
from __future__ import annotations

import math
from collections import Counter

import pytest
import torch

import dscore.fingerprint as fingerprint
import dscore.quantize.pipeline as pipeline
from dscore.quantize.config import BinConfig, ExtractorConfig, MAEConfig, SamplingConfig, ScoreConfig, TuningConfig
from dscore.distill import dm_at_ratio
from dscore.cache import ArtifactCache
from dscore.features import extract_gradient_features
from dscore.models import create_model
from dscore.quantize.pixelquant import restore_pixels

SIZE = 16
EXTRACTOR = {"arch": "convnet3", "arch_kwargs": {"width": 8}, "epochs": 1, "batch_size": 256}
SCORES = {"patch": 8, "head_epochs": 1, "head_batch_size": 64, "head_max_images": 128, "hidden_dim": 32,
          "max_negatives": 64}
COMMON = dict(extractor=EXTRACTOR, bins={"num_bins": 4}, device="cpu", progress=False)
COUNTED = ("train_model", "extract_gradient_features", "generate_bins", "train_contrastive_head", "diversity_scores",
           "gradcam_patch_importance", "train_mae")


@pytest.fixture(scope="module")
def shared_cache(tmp_path_factory):
    return ArtifactCache(tmp_path_factory.mktemp("pipeline-cache"))


@pytest.fixture
def calls(monkeypatch, tmp_path):
    """A fresh $DSCORE_CACHE and a counter of every expensive step the pipeline runs."""
    monkeypatch.setenv("DSCORE_CACHE", str(tmp_path / "cache"))
    counter: Counter = Counter()
    for name in COUNTED:
        original = getattr(pipeline, name)

        def wrapper(*args, __name=name, __original=original, **kwargs):
            counter[__name] += 1
            return __original(*args, **kwargs)

        monkeypatch.setattr(pipeline, name, wrapper)
    return counter


def test_adq_runs_end_to_end_and_the_second_call_hits_the_cache(calls, digits, tmp_path):
    first, report = pipeline.adq_indices(digits, 0.2, seed=1, sampling={"beta": 0.6}, scores=SCORES, **COMMON)
    assert dict(calls) == {"train_model": 1, "extract_gradient_features": 1, "generate_bins": 1,
                           "train_contrastive_head": 1, "diversity_scores": 1}
    assert any((tmp_path / "cache").rglob("*.pt"))
    n = len(digits)
    assert first.numel() == math.floor(0.2 * n + 0.5) == report["budget"] == sum(report["budgets"])
    assert torch.unique(first).numel() == first.numel() and int(first.max()) < n
    assert all(q <= s for q, s in zip(report["budgets"], report["bin_sizes"]))
    assert sum(report["bin_sizes"]) == n and len(report["is"]) == 4
    assert report["temperature"] == pipeline.ADQ_TEMPERATURE
    assert report["importance"] == pytest.approx(
        torch.softmax(torch.tensor(report["is"]) / report["temperature"], 0).tolist())

    calls.clear()
    second, report2 = pipeline.adq_indices(digits, 0.2, seed=1, sampling={"beta": 0.6}, scores=SCORES, **COMMON)
    assert sum(calls.values()) == 0
    assert torch.equal(first, second) and report == report2

    # a different selection seed reuses every artefact; a different extractor seed recomputes them
    pipeline.adq_indices(digits, 0.2, seed=2, sampling={"beta": 0.6}, scores=SCORES, **COMMON)
    assert sum(calls.values()) == 0
    pipeline.dq_indices(digits, 0.2, extractor={**EXTRACTOR, "seed": 1}, bins={"num_bins": 4}, device="cpu",
                        progress=False)
    assert calls["train_model"] == 1 and calls["generate_bins"] == 1


def test_beta_zero_gives_dq(digits, shared_cache):
    kw = dict(COMMON, cache=shared_cache)
    dq, dq_report = pipeline.dq_indices(digits, 0.3, seed=3, **kw)
    adq0, adq_report = pipeline.adq_indices(digits, 0.3, seed=3, sampling={"beta": 0.0}, scores=SCORES, **kw)
    assert dq_report["budgets"] == adq_report["budgets"]
    assert torch.equal(dq, adq0)
    sizes = torch.tensor(dq_report["bin_sizes"])
    expected = torch.floor(sizes.double() * dq_report["budget"] / sizes.sum())
    assert bool(((torch.tensor(dq_report["budgets"]) - expected).abs() <= 1).all())
    adq1, report1 = pipeline.adq_indices(digits, 0.3, seed=3, sampling={"beta": 1.0, "temperature": 0.5},
                                         scores=SCORES, **kw)
    assert adq1.numel() == dq.numel() and report1["budgets"] != dq_report["budgets"]


@pytest.mark.parametrize("ratio", [0.05, 0.37, 1.0])
def test_sizes_sum_to_the_rounded_budget(ratio, digits, shared_cache):
    idx, report = pipeline.dq_indices(digits, ratio, seed=0, cache=shared_cache, **COMMON)
    assert idx.numel() == math.floor(ratio * len(digits) + 0.5) == sum(report["budgets"])
    # class-stratified: every class keeps about the same fraction
    kept = torch.bincount(digits.labels[idx], minlength=10).double()
    assert bool(((kept / digits.class_counts().double() - ratio).abs() < 0.05 + 2 * 4 / 130).all())


@pytest.mark.parametrize("kwargs, word", [
    ({"ratio": 0.0}, "ratio"), ({"ratio": 1.5}, "ratio"), ({"sampling": {"beta": -0.1}}, "beta"),
    ({"sampling": {"beta": 1.2}}, "beta"), ({"sampling": {"temperature": 0.0}}, "temperature"),
    ({"sampling": {"betta": 0.5}}, "unknown"), ({"sampling": 0.5}, "SamplingConfig"),
    ({"bins": {"num_bins": 0}}, "num_bins"), ({"bins": {"num_bins": 1000}}, "num_bins"),
    ({"bins": {"feature": "pixels"}}, "feature"), ({"seed": -1}, "seed"),
    ({"extractor": {"arch": "nope"}}, "arch"), ({"extractor": {"epochs": 0}}, "epochs"),
    ({"scores": {"num_bins": 3}}, "num_bins"), ({"scores": {"seed": -2}}, "seed"),
    ({"scores": {"tau": 0.0}}, "tau"), ({"ratio": 1e-6}, "ratio"),
    ({"extractor": {"epoch": 1}}, "unknown"), ({"extractor": {"arch_kwargs": {"widht": 8}}}, "widht"), ({"scores": {"head_epoch": 1}}, "unknown"),
    ({"extractor": {"seed": 0}, "model": torch.nn.Linear(2, 2)}, "model"),
    ({"extractor": {"head": "frozen"}}, "head"),
])
def test_bad_arguments_fail_before_any_work(kwargs, word, calls, digits):
    args = dict(ratio=0.2, seed=0, sampling={"beta": 0.6}, scores=SCORES, **COMMON)
    args.update(kwargs)
    with pytest.raises(ValueError, match=word):
        pipeline.adq_indices(digits, **args)
    assert sum(calls.values()) == 0


def test_unknown_dataset_is_rejected(calls):
    with pytest.raises(ValueError, match="name"):
        pipeline.dq_indices("no-such-set", 0.1, bins={"num_bins": 2}, device="cpu", progress=False)
    assert sum(calls.values()) == 0


def test_feature_extractor_checkpoint(digits, tmp_path, calls):
    ref = create_model("convnet3", width=8, num_classes=10, in_channels=1, image_size=SIZE, seed=7)
    path = tmp_path / "net.pt"
    torch.save({"state_dict": ref.state_dict()}, path)
    net = pipeline.feature_extractor(digits, {"arch": "convnet3", "arch_kwargs": {"width": 8}, "checkpoint": path},
                                     device="cpu", progress=False)
    assert calls["train_model"] == 0
    for name, value in ref.state_dict().items():
        if name not in ("mean", "std"):
            assert torch.equal(net.state_dict()[name], value)
    with pytest.raises(ValueError, match="does not fit"):
        pipeline.feature_extractor(digits, {"arch": "convnet3", "arch_kwargs": {"width": 4}, "checkpoint": path},
                                   device="cpu")
    with pytest.raises(ValueError, match="not a file"):
        pipeline.feature_extractor(digits, {"checkpoint": tmp_path / "missing.pt"}, device="cpu")


def test_feature_extractor_subset_is_cached_and_seeded(digits, shared_cache):
    cfg = ExtractorConfig(arch="convnet3", arch_kwargs={"width": 8}, epochs=1, train_per_class=5)
    kw = dict(device="cpu", cache=shared_cache, progress=False)
    a = pipeline.feature_extractor(digits, cfg, **kw)
    b = pipeline.feature_extractor(digits, cfg.replace(seed=0), **kw)
    c = pipeline.feature_extractor(digits, cfg.replace(seed=1), **kw)
    assert fingerprint.model_fingerprint(a) == fingerprint.model_fingerprint(b) != fingerprint.model_fingerprint(c)
    with pytest.raises(ValueError, match="train_per_class"):
        pipeline.feature_extractor(digits, cfg.replace(train_per_class=10_000), **kw)


def test_dataset_features_match_direct_extraction(digits, shared_cache):
    net = create_model("convnet3", width=8, num_classes=10, in_channels=1, image_size=SIZE, seed=0).eval()
    feats = pipeline.dataset_features(digits, net, device="cpu", cache=shared_cache, progress=False)
    direct = extract_gradient_features(net, digits.images, digits.labels, device="cpu", progress=False)
    assert torch.allclose(feats["gradient"].delta, direct.delta)
    assert torch.allclose(feats["embeddings"], direct.embedding)
    bins = pipeline.dataset_bins(digits, net, BinConfig(num_bins=3, feature="embedding"), device="cpu",
                                 cache=shared_cache, progress=False)
    assert torch.equal(torch.sort(torch.cat(bins)).values, torch.arange(len(digits)))


def test_fingerprints_track_content(digits):
    a = create_model("convnet3", width=8, num_classes=10, in_channels=1, image_size=SIZE, seed=0)
    b = create_model("convnet3", width=8, num_classes=10, in_channels=1, image_size=SIZE, seed=0)
    assert fingerprint.model_fingerprint(a) == fingerprint.model_fingerprint(b)
    with torch.no_grad():
        b.fc.bias[0] += 1e-3
    assert fingerprint.model_fingerprint(a) != fingerprint.model_fingerprint(b)
    fp = fingerprint.dataset_fingerprint(digits)
    assert fp == fingerprint.dataset_fingerprint(digits)
    assert fp["sha256"] != fingerprint.dataset_fingerprint(digits.subset(torch.arange(100)))["sha256"]


def test_pixel_quantize_and_mae(digits, calls):
    net = create_model("convnet3", width=8, num_classes=10, in_channels=1, image_size=SIZE, seed=0).eval()
    idx = torch.arange(0, 60, 3)
    record, report = pipeline.pixel_quantize(digits, idx, net, patch=4, theta=0.25, device="cpu", progress=False)
    assert record["mask"].shape == (20, 16) and record["patches"].shape == (20 * 12, 1, 4, 4)
    assert report["storage_ratio"] == pytest.approx(0.75)
    assert report["effective_keep_ratio"] == pytest.approx(20 / len(digits) * 0.75)
    mae_cfg = MAEConfig(patch=4, epochs=1, batch_size=256, embed_dim=16, depth=1, num_heads=2, decoder_dim=16,
                        decoder_depth=1, decoder_heads=2)
    mae = pipeline.mae_model(digits, mae_cfg, device="cpu", progress=False)
    restored = restore_pixels(record, mae)
    assert restored.shape == (20, 1, SIZE, SIZE)
    calls.clear()
    pipeline.pixel_quantize(digits, idx, net, patch=4, theta=0.25, device="cpu", progress=False)
    pipeline.mae_model(digits, mae_cfg, device="cpu", progress=False)
    assert sum(calls.values()) == 0
    with pytest.raises(ValueError, match="theta"):
        pipeline.pixel_quantize(digits, idx, net, theta=1.0)
    with pytest.raises(ValueError, match="divisible"):
        pipeline.pixel_quantize(digits, idx, net, patch=5)


def test_dm_at_ratio_matches_the_budget_and_is_cached(digits, tmp_path, monkeypatch):
    import dscore.distill.cached as cached

    store = ArtifactCache(tmp_path / "dm-cache")
    runs = []
    original = cached.distill
    monkeypatch.setattr(cached, "distill", lambda *a, **k: runs.append(1) or original(*a, **k))
    kwargs = dict(iterations=2, seed=0, cache=store, progress=False, arch="convnet", arch_kwargs={"width": 8, "depth": 2},
                  batch_real=16)
    images, labels, report = dm_at_ratio(digits, 0.05, **kwargs)
    n_min = int(digits.class_counts().min())
    assert report["ipc"] == round(0.05 * n_min) and report["budget"] == report["ipc"] * 10
    assert images.shape == (report["budget"], *digits.image_shape)
    assert torch.equal(torch.bincount(labels, minlength=10), torch.full((10,), report["ipc"]))
    assert bool(torch.isfinite(images).all())       # DM is never clamped to [0, 1] (as the authors)
    again, _, _ = dm_at_ratio(digits, 0.05, **kwargs)
    assert torch.equal(images, again) and len(runs) == 1
    with pytest.raises(ValueError, match="ratio=1.5"):
        dm_at_ratio(digits, 1.5, **kwargs)


def test_cache_version_follows_the_import_graph_of_the_computing_module(tmp_path):
    pkg = tmp_path / "pkg"
    (pkg / "sub").mkdir(parents=True)
    (pkg / "__init__.py").write_text("")
    (pkg / "sub" / "__init__.py").write_text("from . import engine\n")
    (pkg / "sub" / "engine.py").write_text("from ..util import f\n\ndef g():\n    from .. import maths\n")
    (pkg / "util.py").write_text("def f():\n    return 1\n")
    (pkg / "maths.py").write_text("import pkg.util\n")
    (pkg / "report.py").write_text("from .sub.engine import g\n")
    closure = fingerprint.import_closure(pkg, "pkg.sub.engine")
    assert set(closure) == {"pkg.sub.engine", "pkg.util", "pkg.maths"}      # function-level and absolute imports too
    assert set(fingerprint.import_closure(pkg, "pkg.report")) == {"pkg.report", "pkg.sub.engine", "pkg.util",
                                                                 "pkg.maths"}

    def digest():
        for f in (fingerprint._package_files, fingerprint._direct_imports, fingerprint._closure_digest):
            f.cache_clear()
        return fingerprint._closure_digest(pkg, "pkg.sub.engine")

    base = digest()
    (pkg / "report.py").write_text("from .sub.engine import g\nx = 2\n")  # a module that only uses the engine
    assert digest() == base
    (pkg / "maths.py").write_text("import pkg.util\ny = 3\n")              # code the engine reaches: new keys
    assert digest() != base
    with pytest.raises(ValueError, match="module='pkg.nothing'"):
        fingerprint.import_closure(pkg, "pkg.nothing")
    for f in (fingerprint._package_files, fingerprint._direct_imports, fingerprint._closure_digest):
        f.cache_clear()
    assert fingerprint.code_version("dscore.evaluation").startswith("2+")
    reach = set(fingerprint.import_closure(fingerprint.Path(fingerprint.__file__).parent, "dscore.evaluation"))
    assert {"dscore.train", "dscore.models", "dscore.data"} <= reach
    assert not reach & {"dscore.distill.engine", "dscore.ledger", "dscore.book", "dscore.book.page", "dscore.report"}


def _computing_modules() -> list[str]:
    """Every dscore module that versions its artefacts with ``code_version(__name__)``."""
    pkg = fingerprint.Path(fingerprint.__file__).parent
    out = []
    for path in sorted(pkg.rglob("*.py")):
        if "code_version(__name__)" in path.read_text():
            rel = path.relative_to(pkg.parent).with_suffix("")
            out.append(".".join(p for p in rel.parts if p != "__init__"))
    return out


def test_every_artefact_key_covers_what_computes_it_and_nothing_of_the_presentation():
    """Editing the book (runner, rules, page helpers), the report, the ledger, the statistics, the papers' numbers or a
    chapter's tables and claims changes no artefact key; the two methods' artefacts do not depend on each other or on
    the studies; a study's artefacts depend on the study's own module."""
    pkg = fingerprint.Path(fingerprint.__file__).parent
    modules = _computing_modules()
    assert {"dscore.evaluation", "dscore.quantize.pipeline", "dscore.distill.cached",
            "dscore.studies.dreamplus.coresets", "dscore.studies.dreamplus.probes",
            "dscore.studies.dreamplus.variants", "dscore.studies.dreamplus.incremental"} <= set(modules)
    presentation = ("dscore.book", "dscore.report", "dscore.ledger", "dscore.stats", "dscore.papers")
    for module in modules:
        reach = set(fingerprint.import_closure(pkg, module))
        assert module in reach
        shown = sorted(m for m in reach if m.startswith(presentation) or m.endswith((".claims", ".tables")))
        assert not shown, f"{module}'s artefact keys change when {shown} change (presentation code)"
        if module.startswith("dscore.quantize"):
            assert not {m for m in reach if m.startswith(("dscore.distill", "dscore.studies"))}
        if module.startswith("dscore.distill"):
            assert not {m for m in reach if m.startswith(("dscore.quantize", "dscore.studies"))}


class _KeyRecorded(Exception):
    pass


def _key(monkeypatch, kind, fn, *args, **kwargs):
    """The cache key ``fn(*args, **kwargs)`` asks ``kind`` for (dependencies still run for real)."""
    real = ArtifactCache.get_or_compute

    def recording(self, k, config, compute, version="1"):
        if k == kind:
            raise _KeyRecorded(config)
        return real(self, k, config, compute, version)

    monkeypatch.setattr(ArtifactCache, "get_or_compute", recording)
    try:
        fn(*args, **kwargs)
    except _KeyRecorded as rec:
        return rec.args[0]
    finally:
        monkeypatch.setattr(ArtifactCache, "get_or_compute", real)
    raise AssertionError(f"{fn.__name__} never asked the cache for {kind!r}")


def _assert_each_change_moves_the_key(monkeypatch, kind, fn, args, base, changes):
    reference = _key(monkeypatch, kind, fn, *args, **base)
    assert _key(monkeypatch, kind, fn, *args, **base) == reference
    for name, value in changes.items():
        changed = _key(monkeypatch, kind, fn, *args, **{**base, name: value})
        assert changed != reference, f"changing {name} leaves the {kind!r} key unchanged"


def _assert_each_field_moves_the_key(monkeypatch, kind, call, config, changes):
    """Each field change of ``config`` (a pipeline config) moves the key ``call(config)`` asks ``kind`` for."""
    reference = _key(monkeypatch, kind, call, config)
    assert _key(monkeypatch, kind, call, config.replace()) == reference
    for name, value in changes.items():
        assert _key(monkeypatch, kind, call, config.replace(**{name: value})) != reference, \
            f"changing {name} leaves the {kind!r} key unchanged"


def test_every_argument_that_changes_an_artefact_changes_its_key(digits, monkeypatch, tmp_path):
    store = ArtifactCache(tmp_path / "keys")
    net = create_model("convnet", num_classes=10, in_channels=1, image_size=SIZE, width=8, depth=2, seed=0)
    other = create_model("convnet", num_classes=10, in_channels=1, image_size=SIZE, width=8, depth=2, seed=1)
    common = dict(device="cpu", progress=False, cache=store)
    _assert_each_field_moves_the_key(
        monkeypatch, "feature_net", lambda cfg: pipeline.feature_extractor(digits, cfg, **common),
        ExtractorConfig.of(EXTRACTOR),
        {"epochs": 2, "arch_kwargs": {"width": 16}, "train_per_class": 20, "lr": 0.1, "seed": 1, "batch_size": 64,
         "head": "random"})
    _assert_each_field_moves_the_key(
        monkeypatch, "bins", lambda cfg: pipeline.dataset_bins(digits, net, cfg, **common), BinConfig(num_bins=4),
        {"num_bins": 3, "feature": "embedding", "lam": 0.5})
    assert _key(monkeypatch, "bins", pipeline.dataset_bins, digits, other, {"num_bins": 4}, **common) != \
        _key(monkeypatch, "bins", pipeline.dataset_bins, digits, net, {"num_bins": 4}, **common)
    score_base = ScoreConfig(patch=8, head_epochs=1, head_batch_size=64, head_max_images=64, hidden_dim=16,
                             max_negatives=32)
    _assert_each_field_moves_the_key(
        monkeypatch, "bin_scores", lambda cfg: pipeline.bin_scores(digits, net, {"num_bins": 4}, cfg, **common),
        score_base, {"patch": 4, "tau": 0.2, "max_negatives": 16, "head_epochs": 2, "head_lr": 1e-2,
                     "head_max_images": 32, "hidden_dim": 8, "out_dim": 64, "seed": 1})
    _assert_each_field_moves_the_key(
        monkeypatch, "bin_scores", lambda cfg: pipeline.bin_scores(digits, net, cfg, score_base, **common),
        BinConfig(num_bins=4), {"num_bins": 3, "feature": "embedding", "lam": 2.0})
    _assert_each_field_moves_the_key(
        monkeypatch, "mae", lambda cfg: pipeline.mae_model(digits, cfg, **common),
        MAEConfig(patch=4, epochs=1, embed_dim=16, depth=1, num_heads=2, decoder_dim=16, decoder_depth=1,
                  decoder_heads=2),
        {"patch": 8, "mask_ratio": 0.5, "epochs": 2, "lr": 1e-2, "embed_dim": 32, "depth": 2, "seed": 1})
    idx = torch.arange(20)
    _assert_each_change_moves_the_key(
        monkeypatch, "pixelquant", pipeline.pixel_quantize, (digits,),
        dict(indices=idx, model=net, patch=4, theta=0.25, **common),
        {"indices": torch.arange(1, 21), "patch": 8, "theta": 0.5, "model": other})
    _assert_each_change_moves_the_key(
        monkeypatch, "distill_run", dm_at_ratio, (digits, 0.05),
        dict(iterations=1, seed=0, arch="convnet", arch_kwargs={"width": 8, "depth": 2}, **common),
        {"iterations": 2, "seed": 1, "arch_kwargs": {"width": 16, "depth": 2}, "lr_img": 0.5})
    # CPU (fp32) and CUDA (bf16) artefacts never stand in for each other
    cpu_key = _key(monkeypatch, "features", pipeline.dataset_features, digits, net, **common)
    monkeypatch.setattr(pipeline, "precision_tag", lambda device: "bf16")
    assert _key(monkeypatch, "features", pipeline.dataset_features, digits, net, **common) != cpu_key


# ------------------------------------------------------------------------------ random classifier head

def test_random_head_keeps_the_trained_body_and_reinitialises_the_classifier(digits, shared_cache):
    cfg = ExtractorConfig(arch="convnet3", arch_kwargs={"width": 8}, epochs=1, seed=3)
    kw = dict(device="cpu", cache=shared_cache, progress=False)
    trained = pipeline.feature_extractor(digits, cfg, **kw)
    rand_a = pipeline.feature_extractor(digits, cfg.replace(head="random"), **kw)
    rand_b = pipeline.feature_extractor(digits, {**cfg.key(), "head": "random"}, **kw)
    t_state, r_state = trained.state_dict(), rand_a.state_dict()
    for name, value in t_state.items():
        if not name.startswith("fc."):
            assert torch.equal(r_state[name], value), name
    assert not torch.equal(r_state["fc.weight"], t_state["fc.weight"])
    assert torch.equal(rand_b.state_dict()["fc.weight"], r_state["fc.weight"])
    torch.manual_seed(3)
    fresh = torch.nn.Linear(trained.fc.in_features, trained.fc.out_features)
    assert torch.equal(r_state["fc.weight"], fresh.weight) and torch.equal(r_state["fc.bias"], fresh.bias)
    # δ of the gradient feature comes from the random classifier
    feats = pipeline.dataset_features(digits, rand_a, device="cpu", cache=shared_cache, progress=False)
    logits = fresh(feats["embeddings"])
    want = torch.softmax(logits, 1) - torch.nn.functional.one_hot(digits.labels, 10).float()
    assert torch.allclose(feats["gradient"].delta, want, atol=1e-5)


def test_random_head_reaches_the_selection_functions_and_the_checkpoint_path(digits, tmp_path, calls):
    idx, report = pipeline.dq_indices(digits, 0.2, extractor={**EXTRACTOR, "head": "random"}, bins={"num_bins": 4},
                                      device="cpu", progress=False)
    assert calls["train_model"] == 1 and idx.numel() == report["budget"]
    calls.clear()
    pipeline.dq_indices(digits, 0.2, extractor=EXTRACTOR, bins={"num_bins": 4}, device="cpu", progress=False)
    assert calls["train_model"] == 0 and calls["generate_bins"] == 1      # same body, different δ → new bins
    ref = create_model("convnet3", width=8, num_classes=10, in_channels=1, image_size=SIZE, seed=7)
    path = tmp_path / "net.pt"
    torch.save(ref.state_dict(), path)
    net = pipeline.feature_extractor(digits, ExtractorConfig(arch_kwargs={"width": 8}, checkpoint=path, head="random",
                                                             seed=5), device="cpu", progress=False)
    assert torch.equal(net.layers[0].weight, ref.layers[0].weight)
    torch.manual_seed(5)
    assert torch.equal(net.fc.weight, torch.nn.Linear(ref.fc.in_features, 10).weight)
    with pytest.raises(ValueError, match="head"):
        pipeline.feature_extractor(digits, {"head": "imagenet"})


# ----------------------------------------------------------------------------------- rates and tuning

def test_bin_rates_match_naive():
    sizes, budgets = [100, 50, 30, 20], [14, 4, 2, 0]
    m, total = sum(budgets), sum(sizes)
    assert pipeline.bin_rates(sizes, budgets) == pytest.approx([q / (m * n / total) for q, n in zip(budgets, sizes)])
    assert pipeline.bin_rates([10, 10], [0, 0]) == [1.0, 1.0]
    with pytest.raises(ValueError):
        pipeline.bin_rates([10, 10], [11, 0])


def test_adq_report_records_rates_and_how_the_defaults_were_chosen(digits, shared_cache):
    kw = dict(COMMON, cache=shared_cache, scores=SCORES)
    _, report = pipeline.adq_indices(digits, 0.2, sampling={"beta": 0.9, "temperature": 0.5}, **kw)
    assert report["rates"] == pytest.approx(pipeline.bin_rates(report["bin_sizes"], report["budgets"]))
    assert max(report["rates"]) > 1.05 and min(report["rates"]) < 0.95
    _, flat = pipeline.adq_indices(digits, 0.2, sampling={"beta": 0.0}, **kw)
    assert all(abs(r - 1) < 0.05 for r in flat["rates"])
    assert report["defaults"] == pipeline.ADQ_TUNING
    assert SamplingConfig().beta == pipeline.ADQ_BETA == pipeline.ADQ_TUNING["beta"]
    assert SamplingConfig().temperature == pipeline.ADQ_TEMPERATURE == pipeline.ADQ_TUNING["temperature"]
    _, default = pipeline.adq_indices(digits, 0.2, **kw)
    assert default["beta"] == pipeline.ADQ_BETA and default["temperature"] == pipeline.ADQ_TEMPERATURE


def _row(mean, std, strength):
    return {"mean": mean, "std": std, "strength": strength}


def test_choose_adq_setting_rule():
    rows = [_row(0.80, 0.01, 0.9), _row(0.79, 0.01, 0.2), _row(0.70, 0.01, 0.15), _row(0.795, 0.01, 0.5)]
    assert pipeline.choose_adq_setting(rows, 3, choose="best") == (0, 0)
    pick, best = pipeline.choose_adq_setting(rows, 3)
    # within 2·sqrt(2·0.01²/3) ≈ 0.0163 of the best: rows 0, 1, 3; closest strength to 0.15 is row 1
    assert (pick, best) == (1, 0) and [r["within_noise"] for r in rows] == [True, True, False, True]
    assert pipeline.choose_adq_setting(rows, 1) == (0, 0)           # one seed: no noise estimate
    assert pipeline.choose_adq_setting(rows, 3, authors_strength=0.6) == (3, 0)
    with pytest.raises(ValueError, match="choose"):
        pipeline.choose_adq_setting(rows, 3, choose="median")


TUNING = dict(betas=(0.5, 1.0), temperatures=(0.5, 4.0), seeds=(0, 1), eval_arch_kwargs={"width": 8}, eval_epochs=1,
              val_fraction=0.25)
TUNE = dict(bins={"num_bins": 3}, extractor=EXTRACTOR, scores=SCORES, device="cpu", progress=False)


def test_tune_adq_uses_only_the_validation_split_and_is_cached(digits, calls, monkeypatch):
    seen = []
    original = pipeline.evaluate_cached

    def recording(images, labels, evaluation, **kwargs):
        seen.append((images.shape[0], len(evaluation), evaluation.labels.clone()))
        return original(images, labels, evaluation, **kwargs)

    monkeypatch.setattr(pipeline, "evaluate_cached", recording)
    out = pipeline.tune_adq(digits, 0.2, TuningConfig(**TUNING), **TUNE)
    from dscore.data import train_val_split
    train, val = train_val_split(digits, 0.25, 0)
    assert out["train_size"] == len(train) and out["val_size"] == len(val) and out["budget"] == round(0.2 * len(train))
    assert seen and all(n_test == len(val) and torch.equal(lab, val.labels) for _, n_test, lab in seen)
    assert all(n == out["budget"] for n, _, _ in seen)
    assert calls["train_model"] == 1                       # the feature network, on the train part only
    assert [(r["beta"], r["temperature"]) for r in out["grid"]] == [(0.5, 0.5), (0.5, 4.0), (1.0, 0.5), (1.0, 4.0)]
    for r in out["grid"]:
        assert len(r["accs"]) == 2 and r["mean"] == pytest.approx(sum(r["accs"]) / 2)
        assert r["rates"] == pytest.approx(pipeline.bin_rates(out["bin_sizes"], r["budgets"]))
        assert sum(r["budgets"]) == out["budget"]
    sharp, soft = out["grid"][2], out["grid"][3]
    assert sharp["strength"] > soft["strength"]           # a higher temperature samples closer to uniform
    assert out["dq"]["beta"] == 0.0 and all(abs(x - 1) < 0.05 for x in out["dq"]["rates"])
    assert (out["beta"], out["temperature"]) in [(r["beta"], r["temperature"]) for r in out["grid"]]
    seen.clear()
    calls.clear()
    again = pipeline.tune_adq(digits, 0.2, TUNING, **TUNE)
    assert not seen and sum(calls.values()) == 0 and again["grid"] == out["grid"]


@pytest.mark.parametrize("kwargs, word", [({"betas": ()}, "betas"), ({"betas": (0.5, 1.5)}, "beta"),
                                          ({"temperatures": (0.0,)}, "temperature"), ({"val_fraction": 1.0}, "val_fraction"),
                                          ({"seeds": (0, 0)}, "seeds"), ({"choose": "worst"}, "choose"),
                                          ({"eval_arch": "nope"}, "eval_arch"), ({"eval_epochs": 0}, "eval_epochs"),
                                          ({"eval_arch_kwargs": {"widht": 2}}, "widht"), ({"ratio": 0.0}, "ratio")])
def test_tune_adq_rejects_bad_arguments_before_any_work(kwargs, word, calls, digits):
    tuning = dict(TUNING, ratio=0.2)
    tuning.update(kwargs)
    ratio = tuning.pop("ratio")
    with pytest.raises(ValueError, match=word):
        pipeline.tune_adq(digits, ratio, tuning, **TUNE)
    assert sum(calls.values()) == 0


# ----------------------------------------------------------------------------------- the configs

def test_configs_are_checked_once_when_made():
    assert ExtractorConfig.of(None) == ExtractorConfig()
    cfg = ExtractorConfig.of({"epochs": 3, "arch_kwargs": {"width": 8}})
    assert ExtractorConfig.of(cfg) is cfg and cfg.epochs == 3
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['epoch'\]; allowed: arch, arch_kwargs, epochs"):
        ExtractorConfig.of({"epoch": 3})
    with pytest.raises(ValueError, match="epochs=0"):
        cfg.replace(epochs=0)                                   # a copy is checked again
    with pytest.raises(ValueError, match="no field"):
        cfg.replace(epoch=2)
    with pytest.raises(ValueError, match="must be a ExtractorConfig or a mapping"):
        ExtractorConfig.of([("epochs", 3)])
    with pytest.raises(Exception):
        cfg.epochs = 4                                          # frozen
    assert "checkpoint" not in ExtractorConfig(checkpoint="net.pt").key()
    assert ExtractorConfig(checkpoint="net.pt").key() == ExtractorConfig().key()
    # the scores' flat page names map onto the head they train
    s = ScoreConfig(head_epochs=2, tau=0.2, seed=4, head_max_images=10)
    assert s.head.key() == {"epochs": 2, "batch_size": 256, "tau": 0.2, "lr": 1e-3, "hidden_dim": 512, "out_dim": 128,
                            "max_images": 10, "seed": 4}
    with pytest.raises(ValueError, match="head_batch_size=1"):
        ScoreConfig(head_batch_size=1)
    t = TuningConfig(betas=[0.5], seeds=[3, 4])
    assert t.betas == (0.5,) and t.seeds == (3, 4) and t.key()["seeds"] == [3, 4]
    for bad, word in (({"seeds": [1, 1]}, "seeds"), ({"betas": []}, "betas"), ({"include_dq": 1}, "include_dq"),
                      ({"eval_arch_kwargs": {"widht": 2}}, "widht")):
        with pytest.raises(ValueError, match=word):
            TuningConfig(**bad)
    assert MAEConfig(patch=8).architecture()["patch"] == 8


def test_no_pipeline_function_takes_a_long_argument_list():
    import inspect

    for name in pipeline.__all__:
        fn = getattr(pipeline, name)
        if inspect.isfunction(fn):
            assert len(inspect.signature(fn).parameters) <= 12, f"{name} takes {len(inspect.signature(fn).parameters)}"
