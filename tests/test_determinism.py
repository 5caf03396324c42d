"""Determinism: the same seed on the same device gives identical results for every page's main artefact.

Each page's computation (the study call its notebook makes, at a tiny scale on the CPU) runs twice, each
time in a fresh, empty cache, and the results must agree exactly: selected indices, bins and bin scores,
synthetic images, accuracy tables, diagnostics, embeddings. Wall times are the only columns left out
(they are measurements of the machine, not results).
"""
from __future__ import annotations

import math

import pandas as pd
import pytest
import torch

from dscore import data, models, train
from dscore.cache import ArtifactCache
from dscore.studies import adq, dreamplus as dp

ADQ_SETUP = dict(dataset="digits", pool_per_class=30, val_fraction=0.25, test_per_class=10, split_seed=0,
                 extractor={"arch": "convnet", "arch_kwargs": {"width": 8, "depth": 2}, "epochs": 1,
                            "batch_size": 64, "lr": 0.05},
                 num_bins=3, scores={"patch": 8, "head_epochs": 1, "hidden_dim": 16, "out_dim": 8, "seed": 0},
                 evaluation={"epochs": 1, "batch_size": 32, "lr": 0.05, "check_every": 1},
                 tuning={"ratios": [0.2], "betas": [0.6], "temperatures": [1.0], "seeds": [100, 101], "arch": "tiny"},
                 dm={"iterations": 2, "batch_real": 8, "arch": "convnet", "arch_kwargs": {"width": 8, "depth": 2}},
                 device="cpu")
ADQ_ARCHS = {"tiny": {"arch": "convnet", "width": 8, "depth": 2}}
DREAM_SETUP = dict(
    dataset="fashion_mnist", pool_per_class=12, val_fraction=0.25, test_per_class=5, split_seed=0,
    network={"arch": "convnet3", "width": 4},
    distill={"common": {},
             "idc": {"iterations": 2, "outer_loops": 2, "n_data": 16, "batch_real": 4, "net_batch": 4, "interval": 1,
                     "snapshot_every": 1, "diag_every": 1},
             "rm": {"batch_real": 4},
             "dc": {"iterations": 1, "outer_loops": 1, "inner_loops": 1, "batch_real": 4, "snapshot_every": 1},
             "dsa": {"iterations": 1, "outer_loops": 1, "inner_loops": 1, "batch_real": 4, "snapshot_every": 1},
             "dm": {"iterations": 2, "batch_real": 4, "interval": 1, "snapshot_every": 1}},
    evaluation={"seeds": [0, 1], "check_every": 1, "idc": {"epochs": 1}, "dsa": {"epochs": 1}, "dc": {"epochs": 1}},
    coresets={"family": "dsa", "feature_epochs": 1, "forgetting_epochs": 1}, device="cpu")
DREAM_METHODS = ["random", "herding", "kcenter", "forgetting", "dc", "dsa", "dm", "idc", "dream", "dreamplus"]


def _is_timing(column: str) -> bool:
    name = str(column).lower()
    return "second" in name or "time" in name


def timeless(df: pd.DataFrame, also=()) -> pd.DataFrame:
    """``df`` without its wall-time columns (and ``also``), rows in a canonical order."""
    drop = [c for c in df.columns if _is_timing(c) or c in also]
    return df.drop(columns=drop).reset_index(drop=True)


def assert_identical(a, b, where: str = "result") -> None:
    """Exact equality: tensors bit for bit, DataFrames cell for cell (NaN equals NaN), recursively."""
    if isinstance(a, pd.DataFrame):
        assert isinstance(b, pd.DataFrame), where
        pd.testing.assert_frame_equal(a, b, check_exact=True, obj=where)
    elif torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a.nan_to_num(), b.nan_to_num()) and torch.equal(a.isnan(), b.isnan()), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), where
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), where
        for i, (x, y) in enumerate(zip(a, b)):
            assert_identical(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and math.isnan(a):
        assert isinstance(b, float) and math.isnan(b), where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


@pytest.fixture(scope="module", autouse=True)
def default_cache(tmp_path_factory):
    """An empty default cache: nothing may reach it (every artefact goes to its study's own cache)."""
    root = tmp_path_factory.mktemp("default-cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DSCORE_CACHE", str(root))
        yield root


@pytest.fixture(scope="module")
def adq_pair(tmp_path_factory):
    """Two ADQ studies with the same setup, each with its own empty cache."""
    return [adq.ADQStudy(ADQ_SETUP, ADQ_ARCHS, cache=ArtifactCache(tmp_path_factory.mktemp(f"adq{i}")), progress=False)
            for i in range(2)]


@pytest.fixture(scope="module")
def dream_pair(tmp_path_factory):
    return [dp.DreamStudy(DREAM_SETUP, cache=ArtifactCache(tmp_path_factory.mktemp(f"dream{i}")), progress=False)
            for i in range(2)]


def _selections(study, methods, ratio, seed):
    out = {}
    for m in methods:
        s = study.select(m, ratio, seed)
        out[m] = {"indices": s["indices"], "images": s["images"] if s["indices"] is None else None,
                  "budgets": s.get("budgets")}
    return out


ADQ_PAGES = {
    # accuracy against training length for random subsets and the full part, on the validation split
    "adq_calibration": lambda s: timeless(s.calibration([0.2], [2, 4], [100], arch="tiny")),
    # the bins and their RS / DS / IS scores (ADQ Fig. 2, 3)
    "adq_bins": lambda s: {"bins": s.bins(), "scores": s.scores(), "curves": timeless(s.bin_score_curves([0]))},
    # expert and texture-level student trajectories (Fig. 4)
    "adq_texture": lambda s: timeless(s.texture_trajectories("tiny", [0], epochs=1, lr=0.01, batch_size=32, patch=8)),
    # every method's subset (DM's synthetic set) and the accuracy of every run (Tab. 1)
    "adq_main": lambda s: {"selected": _selections(s, ["random", "graphcut", "dm", "dq", "adq"], 0.2, 0),
                           "runs": timeless(s.grid(["random", "graphcut", "dm", "dq", "adq", "full"], [0.2], ["tiny"],
                                                   [0]))},
    "adq_low_ratio": lambda s: timeless(s.grid(["random", "graphcut", "dq", "adq"], [0.1], ["tiny"], [0])),
    "adq_ablation": lambda s: {"selected": _selections(s, ["adq_rs", "adq_ds"], 0.2, 0),
                               "runs": timeless(s.grid(["dq", "adq_rs", "adq_ds", "adq"], [0.2], ["tiny"], [0]))},
    "adq_beta": lambda s: {"sweep": timeless(s.beta_sweep(["tiny"], [0.2], [0.0, 0.6], [0])),
                           "temperatures": timeless(s.temperature_sweep("tiny", 0.2, [1.0, 4.0], [0]))},
    "adq_pq": lambda s: {
        "example": s.pixel_quantized("adq", 0.2, 0, theta=0.25, patch=4, mae=PQ_MAE),
        "runs": timeless(s.pq_grid(["dq", "adq"], [0.2], "tiny", [0], theta=0.25, patch=4, mae=PQ_MAE))},
    # the cost page's numbers are wall times; what it computes besides them (selections, runs) must agree
    "adq_cost": lambda s: timeless(s.cost_table([0.2], [0])),
}
PQ_MAE = {"epochs": 1, "embed_dim": 16, "depth": 1, "num_heads": 2, "decoder_dim": 16, "decoder_depth": 1,
          "decoder_heads": 2}


def _runs(study, methods, ipc=1, seed=0):
    out = {}
    for m in methods:
        r = study.run(m, ipc, seed)
        out[m] = {"images": r.images, "labels": r.labels, "snapshots": r.snapshots,
                  "history": {k: v for k, v in r.history.items() if not _is_timing(k)}}
    return out


DREAM_PAGES = {
    # accuracy against evaluation epochs for random real images, on the validation split
    "dream_calibration": lambda s: timeless(dp.calibration(s, [1], [1, 2], [100], families=["idc", "dsa"])),
    # synthetic sets of every method, the coresets, and the accuracy of every evaluation (Tab. I)
    "dream_main": lambda s: {"runs": _runs(s, ["dc", "dsa", "dm", "idc", "dream", "dreamplus"]),
                             "coresets": {m: dp.coreset(s, m, 1, 0) for m in ("random", "herding", "kcenter", "forgetting")},
                             "grid": timeless(s.grid(DREAM_METHODS, [1], [0]))},
    # accuracy along the iterations (Fig. 4; its x axis in seconds is a measurement, left out)
    "dream_efficiency": lambda s: timeless(s.curves(["idc", "dream", "dreamplus", "idc+feat"], 1, [0], [0])),
    "dream_ablation": lambda s: {"runs": _runs(s, ["idc+rm", "idc+init", "idc+bm", "dsa+rm+init"]),
                                 "grid": timeless(s.grid(["idc", "idc+rm", "idc+init", "idc+bm", "dream", "dreamplus"],
                                                         [1], [0]))},
    # the cost table is wall time per step; the re-clustering counts beside them must agree
    "dream_cost": lambda s: timeless(dp.costs(s, ["idc", "dreamplus"], 1, [0]),
                                     also=("clustering", "image_update", "network_update", "pretrain", "whole")),
    "dream_why": lambda s: {"probe": timeless(dp.batch_mmd_probe(s, [0, 1], batch=3, pretrain_epochs=1)),
                            "diagnostics": timeless(dp.diagnostics(s, ["idc", "dream"], 1, [0]))},
    "dream_images": lambda s: _runs(s, ["idc", "dream", "dreamplus"]),
    "dream_stability": lambda s: {"diagnostics": timeless(dp.diagnostics(s, ["idc", "dreamplus"], 1, [0])),
                                  "migration": timeless(dp.migration(s, "dreamplus", 1, 0)),
                                  "mmd": timeless(dp.mmd_trajectory(s, ["idc", "dreamplus"], 1, [0], [0]))},
    "dream_tsne": lambda s: {k: timeless(v) for k, v in
                             dp.coverage(s, ["idc", "dreamplus"], 1, [0], real_per_class=3, perplexity=5.0).items()},
    "dream_sampling": lambda s: timeless(dp.sampling_grid(s, ["dreamplus"], 1, [[2, 1], [2, 2]], [0])),
    "dream_interval": lambda s: {"grid": timeless(dp.interval_grid(s, "dreamplus", 1, [1, 2], [0])),
                                 "curves": timeless(dp.interval_curves(s, "dreamplus", 1, [1, 2], [0], [0]))},
    "dream_crossarch": lambda s: timeless(dp.cross_arch(s, ["idc", "dreamplus"], 1, [0],
                                                       {"ConvNet": {"arch": "convnet3", "width": 4},
                                                        "ResNet": {"arch": "resnet10", "width": 2}})),
    "dream_continual": lambda s: timeless(dp.continual(s, ["herding", "dreamplus"], 1, 0, steps=2)),
    # Tab. II runs DM and DREAM+ on every distillation seed (TinyImageNet under the paper profile; the same calls)
    "dream_tiny": lambda s: timeless(s.grid(["dm", "dreamplus"], [1], [0], multi_seed=["dm", "dreamplus"])),
}


#: pages whose main artefact is a measurement of the machine (wall times, speed-ups), not a seeded result
MEASUREMENT_PAGES = {"perf_bench": "speed and memory benchmarks of the library's kernels"}
#: pages that compute nothing: a chapter overview judges what its pages recorded (tests/test_ledger.py)
OVERVIEW_PAGES = {"overview_adq", "overview_dreamplus"}


def test_every_page_is_covered(repo_root):
    from dscore.book import notebook_names

    assert set(notebook_names(repo_root)) == (set(ADQ_PAGES) | set(DREAM_PAGES) | {"tour"} | set(MEASUREMENT_PAGES)
                                              | OVERVIEW_PAGES)


@pytest.mark.slow
@pytest.mark.parametrize("page", list(ADQ_PAGES))
def test_adq_page_artefacts_are_identical_for_the_same_seed(adq_pair, page):
    first, second = (ADQ_PAGES[page](study) for study in adq_pair)
    assert_identical(first, second, page)


@pytest.mark.slow
@pytest.mark.parametrize("page", list(DREAM_PAGES))
def test_dreamplus_page_artefacts_are_identical_for_the_same_seed(dream_pair, page):
    first, second = (DREAM_PAGES[page](study) for study in dream_pair)
    assert_identical(first, second, page)


@pytest.mark.slow
def test_tour_training_is_identical_for_the_same_seed():
    ds = data.load_dataset("fashion_mnist", "train", progress=False)
    test = data.load_dataset("fashion_mnist", "test", progress=False)
    subset = data.stratified_subset(ds, 10, seed=0)
    test_subset = test.subset(torch.randperm(len(test), generator=torch.Generator().manual_seed(0))[:200])
    results = []
    for _ in range(2):
        net = models.create_model("convnet3", num_classes=10, in_channels=1, image_size=28, mean=ds.mean, std=ds.std,
                                  width=8, seed=0)
        r = train.train_model(net, subset.images, subset.labels, {"epochs": 2, "batch_size": 32, "lr": 0.01, "schedule": "cosine", "augment": "crop_flip"},
                              test=(test_subset.images, test_subset.labels), device="cpu", seed=0, eval_every=1, progress=False)
        results.append({"history": pd.DataFrame(r.history).pipe(timeless), "final": r.final_test_acc,
                        "weights": {k: v.clone() for k, v in net.state_dict().items()}})
    assert_identical(results[0], results[1], "tour")


@pytest.mark.slow
def test_the_two_runs_were_independent(adq_pair, dream_pair, default_cache):
    """Run after the page tests: both caches of a pair hold the same artefacts, each computed by its own
    study (none served from the other or from a shared default cache), so the equalities above compared
    two computations."""
    for first, second in (adq_pair, dream_pair):
        computed = [sorted(e["key"] for e in s.cache.ledger if e["computed"]) for s in (first, second)]
        assert computed[0] and computed[0] == computed[1]
        files = [sorted(p.relative_to(s.cache.root) for p in s.cache.root.rglob("*.pt")) for s in (first, second)]
        assert files[0] == files[1]
    assert not list(default_cache.rglob("*.pt"))
