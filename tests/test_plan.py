"""The cost plan (`python -m dscore.book plan`): pass counts on constructed inputs, the distillation formula against
torch's FLOP counter on the real engine, a plan that never touches data, and (slow) the plan's requests against the
artefacts a smoke build actually asks the cache for."""
import math

import pytest
import torch

from dscore import data as data_module
from dscore.book import plan
from dscore.book.prefill import prefill, read_cache_log
from dscore.distill import distill, preset
from dscore.paths import repo_root


def test_evaluation_passes_counts_epochs_images_and_checks():
    assert plan.evaluation_passes(10, 100, 50, 0) == {"train": 1000.0, "forward": 50.0}
    # checks after epochs 4 and 8, then the final score at 10
    assert plan.evaluation_passes(10, 100, 50, 4) == {"train": 1000.0, "forward": 150.0}
    # a check that falls on the last epoch is the final score, counted once
    assert plan.evaluation_passes(8, 100, 50, 4) == {"train": 800.0, "forward": 100.0}


def test_distill_passes_by_hand():
    """IDC at a setting small enough to count on paper: 2 iterations × 3 image steps, 10 classes."""
    cfg = preset("idc", "fashion_mnist", 2, iterations=2, outer_loops=3, inner_loops=1, n_data=20, batch_real=8,
                 batch_syn=None, net_batch=10, init="real", diag_every=0, pretrain_real_epochs=0)
    assert cfg.factor == 2 and cfg.sampler == "random"
    p = plan.distill_passes(cfg, class_size=50, classes=10)
    steps = 2 * 3
    assert p["match"] == steps * 10 * 2 * 4                      # decoded synthetic images per class
    assert p["train"] == steps * 10 * 8 + 2 * 2 * 20              # real batches + n_data per network update
    assert p["forward"] == 0
    dm = preset("dm", "fashion_mnist", 3, iterations=5, batch_real=4, init="real")
    q = plan.distill_passes(dm, class_size=50, classes=10)
    assert q == {"train": 5 * 10 * 3, "forward": 5 * 10 * 4, "match": 0.0}


def _counted_flops(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


@pytest.mark.parametrize("method", ["dc", "dsa", "dm", "idc", "dream", "dreamplus"])
def test_distill_passes_agree_with_the_flop_counter(method):
    """The plan's passes × the measured per-image FLOPs against torch's FLOP counter over the real engine: within a
    factor of 1.6 either way (k-means and the samplers' bookkeeping are outside the formula)."""
    classes, per_class, size = 4, 24, 16
    gen = torch.Generator().manual_seed(0)
    images = torch.rand(classes * per_class, 1, size, size, generator=gen)
    labels = torch.arange(classes).repeat_interleave(per_class)
    fields = dict(arch="convnet3", arch_kwargs={"width": 8}, iterations=2, device="cpu", seed=0)
    if method in ("dc", "dsa"):
        fields.update(outer_loops=2, inner_loops=1, batch_real=8, net_batch=8)
    elif method == "dm":
        fields.update(batch_real=8)
    else:
        fields.update(outer_loops=3, inner_loops=1, n_data=16, batch_real=8, net_batch=8, pretrain_steps=2,
                      interval=2)
    cfg = preset(method, "fashion_mnist", 2, **fields)
    if cfg.sampler == "representative":
        cfg = cfg.replace(batch_real=8, net_batch=8, num_clusters=4, subsample=2)
    counted = _counted_flops(lambda: distill(images, labels, cfg, num_classes=classes, progress=False))
    shape = plan.DataShape(classes * per_class, 10, 1, size, classes)
    net = plan.Net.of("convnet3", {"width": 8}, shape)
    unit = plan.measure_units([net], batch=4, timed_batch=4, repeats=1)[net]
    passes = plan.distill_passes(cfg, per_class, classes)
    predicted = sum(n * unit.flops[k] for k, n in passes.items())
    assert 1 / 1.6 <= predicted / counted <= 1.6, (method, predicted, counted, passes)


def test_plan_never_loads_data_or_computes(monkeypatch):
    """Planning the paper profile (CIFAR-10, not on this machine) needs neither the data nor any training."""
    def refuse(*args, **kwargs):
        raise AssertionError("the plan loaded a dataset")

    monkeypatch.setattr(data_module, "load_dataset", refuse)
    monkeypatch.setattr("dscore.studies.common.load_dataset", refuse, raising=False)
    for profile in ("smoke", "default", "paper"):
        names, ledger = plan.plan_pages(profile)
        assert ledger.works, profile
        assert set(ledger.owner.values()) <= set(names)
    names, ledger = plan.plan_pages("paper")
    kinds = {w.kind for w in ledger.works.values()}
    assert kinds == {"evaluation", "distillation", "network", "summary"}
    # the main table's IDC runs are asked for again by the efficiency and cost pages, and charged once
    main = {k for k in ledger.asked["dream_main"] if k[0] == "distill"}
    cost = {k for k in ledger.asked["dream_cost"] if k[0] == "distill"}
    assert cost and cost <= main and all(ledger.owner[k] != "dream_cost" for k in cost)


def test_estimate_total_is_the_sum_of_what_each_page_adds():
    shape = plan.DataShape(100, 10, 1, 8, 2)
    net = plan.Net.of("convnet3", {"width": 4}, shape)
    unit = plan.UnitCost(flops={"train": 3.0, "forward": 1.0, "match": 6.0}, seconds_per_train_image=0.5)
    ledger = plan._Ledger()
    ledger.page = "a"
    ledger.add(plan.Work("evaluation", ("e", 1), net, {"train": 10.0, "forward": 4.0}, epochs_images=10.0))
    ledger.page = "b"
    ledger.add(plan.Work("evaluation", ("e", 1), net, {"train": 10.0, "forward": 4.0}, epochs_images=10.0))
    ledger.add(plan.Work("distillation", ("d", 1), net, {"match": 2.0}, steps=7))
    rows = plan.estimate(["a", "b"], ledger, {net: unit}, gpu={"name": "x", "tflops": 1e-12, "utilisation": 1.0})
    a, b, total = rows
    assert (a["artefacts asked"], a["new"], b["artefacts asked"], b["new"]) == (1, 1, 2, 1)
    assert a["TFLOP"] * 1e12 == 34.0 and b["TFLOP"] * 1e12 == 12.0 and total["TFLOP"] * 1e12 == 46.0
    # seconds: each pass at the training rate scaled by its FLOPs (forward 1/3, match 2× a training pass)
    assert math.isclose(a["hours here"] * 3600, 10 * 0.5 + 4 * 0.5 / 3)
    assert math.isclose(b["hours here"] * 3600, 2 * 0.5 * 2)
    assert math.isclose(total["hours on GPU"] * 3600, 46.0)
    assert total["image steps"] == 7 and total["evaluations"] == 1


def test_plan_command_prints_the_table(capsys):
    assert plan.main("smoke", pages=["dream_images", "adq_texture"], utilisation=0.5) == 0
    out = capsys.readouterr().out
    assert "ESTIMATE" in out and "| dream_images |" in out and "| adq_texture |" in out and "| total |" in out
    assert "50%" in out
    with pytest.raises(ValueError, match="utilisation"):
        plan.main("smoke", pages=["dream_images"], utilisation=2.0)


#: the cache kinds that stand for each kind of planned work
_KINDS = {"distillation": {"distill_run"}, "evaluation": {"evaluation", "dream_topk", "dream_continual"}}


@pytest.mark.slow
def test_plan_matches_what_a_smoke_build_asks_the_cache_for(tmp_path, monkeypatch):
    """Every page of the smoke profile executed once (a prefill, which logs every artefact request): per page, the
    distinct distillation runs and evaluations it asked for against the plan's. The plan keys work by what the page
    asked, the cache by content, so the plan may count a few more (two arms whose initial sets coincide share one
    evaluation); it must never count fewer."""
    monkeypatch.setenv("DSCORE_CACHE", str(tmp_path / "cache"))
    root = repo_root()
    names, ledger = plan.plan_pages("smoke", root=root)
    names = [n for n in names if n in plan.PAGES]          # the pages that compute (an overview reads the others)
    prefill(names, "smoke", root=root, log=lambda s: None)
    logs = root / "book" / "nb" / ".prefill" / "rank0"
    mismatches = []
    for page in names:
        records = read_cache_log(logs / f"{page}.cache.jsonl")
        for kind, cache_kinds in _KINDS.items():
            seen = len({r["key"] for r in records if r["kind"] in cache_kinds})
            planned = sum(1 for k in ledger.asked.get(page, []) if ledger.works[k].kind == kind)
            if not (seen <= planned <= math.ceil(1.3 * seen) + 2):
                mismatches.append((page, kind, planned, seen))
    assert not mismatches, mismatches
