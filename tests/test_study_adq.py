"""Tests of dscore.studies.adq: the ADQ chapter's study on scikit-learn's digits with tiny networks."""
from pathlib import Path

import pandas as pd
import pytest
import torch

from dscore.cache import ArtifactCache
from dscore.studies import adq

SETUP = dict(dataset="digits", pool_per_class=30, val_fraction=0.25, test_per_class=10, split_seed=0,
             extractor={"arch": "convnet", "arch_kwargs": {"width": 8, "depth": 2}, "epochs": 1, "batch_size": 64,
                        "lr": 0.05},
             num_bins=3, scores={"patch": 8, "head_epochs": 1, "hidden_dim": 16, "out_dim": 8, "seed": 0},
             evaluation={"epochs": 1, "batch_size": 32, "lr": 0.05, "check_every": 1},
             tuning={"ratios": [0.2], "betas": [0.6], "temperatures": [1.0], "seeds": [100, 101], "arch": "tiny"},
             dm={"iterations": 1, "batch_real": 8, "arch": "convnet", "arch_kwargs": {"width": 8, "depth": 2}},
             device="cpu")
ARCHS = {"tiny": {"arch": "convnet", "width": 8, "depth": 2}}


@pytest.fixture
def study(tmp_path):
    return adq.ADQStudy(SETUP, ARCHS, cache=ArtifactCache(tmp_path / "cache"), progress=False)


def test_setup_is_validated_before_any_work(tmp_path):
    with pytest.raises(ValueError, match="missing \\['device'\\]"):
        adq.ADQStudy({k: v for k, v in SETUP.items() if k != "device"}, ARCHS)
    with pytest.raises(ValueError, match="dataset='imagenet22k'"):
        adq.ADQStudy({**SETUP, "dataset": "imagenet22k"}, ARCHS)
    with pytest.raises(ValueError, match="val_fraction"):
        adq.ADQStudy({**SETUP, "val_fraction": 1.5}, ARCHS)
    with pytest.raises(ValueError, match="unknown key"):
        adq.ADQStudy(SETUP, {"tiny": {"arch": "convnet", "widht": 8}})
    with pytest.raises(ValueError, match="tuning\\['arch'\\]"):
        adq.ADQStudy({**SETUP, "tuning": {**SETUP["tuning"], "arch": "ResNet"}}, ARCHS)
    with pytest.raises(ValueError, match="does not define the setup parameter"):
        adq.setup_from({"dataset": "digits"})


def test_splits_are_disjoint_and_stratified(study):
    s = study.splits
    assert len(s.train) + len(s.val) == 10 * 30
    assert torch.bincount(s.val.labels, minlength=10).tolist() == [8] * 10   # round(0.25·30) per class
    assert len(s.test) == 100


def test_selections_follow_the_methods(study):
    dq = study.select("dq", 0.2, 0)
    same = study.select("adq", 0.2, 0, beta=0.0, temperature=1.0)
    assert torch.equal(dq["indices"], same["indices"])               # β = 0 is DQ
    assert dq["budgets"] == same["budgets"]
    n = len(study.splits.train)
    for method in ("random", "graphcut", "adq", "adq_rs", "adq_ds"):
        out = study.select(method, 0.2, 1)
        assert out["indices"].numel() == round(0.2 * n)
        assert torch.unique(out["indices"]).numel() == out["indices"].numel()
    assert study.select("full", 0.2, 0)["images"].shape[0] == n
    dm = study.select("dm", 0.2, 0)
    assert dm["indices"] is None and dm["images"].shape[0] == 10 * round(0.2 * 22)
    with pytest.raises(ValueError, match="method='coreset'"):
        study.select("coreset", 0.2, 0)


def test_every_seed_redraws_the_whole_pipeline(study, tmp_path):
    """Unit s trains its own feature network and computes its own bins and DS head; DQ and ADQ at s share them."""
    assert study.pipeline_seed(3) == {"extractor": 3, "scores": 3}
    assert study.pipeline_seed(None) == {"extractor": 0, "scores": 0}
    w0 = next(study.feature_net(0).parameters()).detach()
    w1 = next(study.feature_net(1).parameters()).detach()
    assert not torch.equal(w0, w1)
    assert not torch.equal(study.scores(0)["ds"], study.scores(1)["ds"])
    # DQ at seed 1 samples from seed 1's bins: every bin's budget is its share of seed 1's bin sizes
    sizes = [b.numel() for b in study.bins(1)]
    dq = study.select("dq", 0.2, 1)
    members = [set(b.tolist()) for b in study.bins(1)]
    picked = dq["indices"].tolist()
    assert [sum(i in m for i in picked) for m in members] == dq["budgets"]
    assert sum(dq["budgets"]) == round(0.2 * sum(sizes))
    # the authors' way: one pipeline for every seed
    shared = adq.ADQStudy(SETUP, ARCHS, cache=ArtifactCache(tmp_path / "cache"), progress=False, redraw=False)
    assert shared.pipeline_seed(7) == {"extractor": 0, "scores": 0}
    assert torch.equal(next(shared.feature_net(7).parameters()).detach(), w0)
    with pytest.raises(ValueError, match="redraw='yes'"):
        adq.ADQStudy(SETUP, ARCHS, redraw="yes")


def test_adq_paper_runs_at_the_stated_setting(study):
    out = study.select("adq_paper", 0.2, 0)
    assert (out["beta"], out["temperature"]) == (0.6, 1.0) == tuple(adq.PAPER_SETTING.values())
    same = study.select("adq", 0.2, 0, beta=0.6, temperature=1.0)
    assert torch.equal(out["indices"], same["indices"])
    with pytest.raises(ValueError, match="stated setting"):
        study.select("adq_paper", 0.2, 0, beta=0.3)
    study.check_test_seeds(["adq_paper"], [100])        # not tuned: any seed may judge it


def test_tuning_redraws_the_pipeline_per_tuning_seed(study):
    study.choice(0.2)
    nets = [r for r in study.cache.ledger if r["kind"] == "feature_net" and r["computed"]]
    assert len(nets) == len(SETUP["tuning"]["seeds"]) == 2
    grid = study.choice(0.2)["grid"]
    assert all(len(row["accs"]) == 2 and len(row["rates"]) == SETUP["num_bins"] for row in grid)


def test_importance_variants(study):
    s = study.scores()
    assert torch.equal(study.importance("adq"), s["is_"])
    from dscore.quantize import zscore
    assert torch.allclose(study.importance("adq_rs"), zscore(s["rs"]))
    assert torch.allclose(study.importance("adq_ds"), zscore(s["ds"]))


def test_grid_is_computed_once_and_shared(study, tmp_path):
    df = study.grid(["dq", "adq", "full"], [0.2], ["tiny"], [0, 1])
    assert set(df.method) == {"dq", "adq", "full"} and len(df) == 6
    assert df.acc.between(0, 1).all() and df.best_of_checks.notna().all()
    again = adq.ADQStudy(SETUP, ARCHS, cache=ArtifactCache(tmp_path / "cache"), progress=False)
    df2 = again.grid(["dq", "adq", "full"], [0.2], ["tiny"], [0, 1])
    assert not any(r["computed"] for r in again.cache.ledger), "a second study must compute nothing"
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), df2.drop(columns="seconds"))


def test_grid_runs_context_rows_on_context_seeds_only(study):
    df = study.grid(["random", "dq", "adq_paper", "graphcut", "full"], [0.2], ["tiny"], [0, 1, 2], context_seeds=[0])
    seeds = df.groupby("method").seed.apply(lambda s: sorted(s)).to_dict()
    assert seeds == {"dq": [0, 1, 2], "adq_paper": [0, 1, 2], "random": [0, 1, 2], "graphcut": [0], "full": [0]}
    assert set(adq.JUDGED_ARMS) == {"random", "dq", "adq_paper", "adq"}
    for bad in ([3], []):
        with pytest.raises(ValueError, match="context_seeds=.* must be a non-empty subset of seeds"):
            study.grid(["random"], [0.2], ["tiny"], [0, 1], context_seeds=bad)


def test_tuned_ratio_is_the_nearest_on_a_log_scale(tmp_path):
    setup = dict(SETUP, tuning={**SETUP["tuning"], "ratios": [0.1, 0.2, 0.3]})
    study = adq.ADQStudy(setup, ARCHS, cache=ArtifactCache(tmp_path / "c"), progress=False)
    assert study.tuned_ratio(0.2) == 0.2
    assert study.tuned_ratio(0.01) == 0.1
    assert study.tuned_ratio(0.6) == 0.3
    assert study.tuned_ratio(0.25) == 0.3          # |log(0.25/0.3)| < |log(0.25/0.2)|


def test_lossless_ratio_on_constructed_runs(study):
    rows = [{"method": "full", "arch": "a", "ratio": 1.0, "seed": s, "acc": a} for s, a in enumerate([0.90, 0.91, 0.89])]
    # full: mean 0.90, std 0.01 → the line is 0.89
    for ratio, accs in ((0.01, [0.95, 0.60, 0.98]), (0.1, [0.70, 0.71, 0.69]), (0.3, [0.85, 0.86, 0.84]),
                        (0.6, [0.90, 0.885, 0.91])):
        rows += [{"method": "dq", "arch": "a", "ratio": ratio, "seed": s, "acc": a} for s, a in enumerate(accs)]
    df = pd.DataFrame(rows)
    assert study.lossless_ratio(df, "dq", "a") == 0.6          # 1% is above the line by chance, 10% and 30% are not
    assert study.lossless_ratio(df[(df.ratio < 0.5) | (df.method == "full")], "dq", "a") is None
    with pytest.raises(ValueError, match="full-data"):
        study.lossless_ratio(df[df.method != "full"], "dq", "a")


def test_per_seed_values_and_tables():
    df = pd.DataFrame([{"method": m, "arch": a, "ratio": 0.1, "seed": s, "acc": base + s * 0.01}
                       for m, base in (("dq", 0.5), ("adq", 0.6)) for a in ("x", "y") for s in range(3)])
    assert adq.per_seed(df, method="adq") == pytest.approx([0.6, 0.61, 0.62])
    assert adq.per_unit(df, method="adq") == pytest.approx({0: 0.6, 1: 0.61, 2: 0.62})
    t = adq.mean_std_table(df, "arch", "method")
    assert t.loc["x", "adq"] == "61.0\u00a0±\u00a01.0"
    g = adq.gain_table(df)
    assert g.loc["Average", "ADQ − DQ at 10%"] == pytest.approx(10.0)


def test_dry_run_caps_the_work(tmp_path):
    setup = {**SETUP, "evaluation": {"epochs": 50, "batch_size": 32, "lr": 0.05}}
    s = adq.ADQStudy(setup, ARCHS, cache=ArtifactCache(tmp_path / "dry"), progress=False, dry_run=True)
    assert s.protocol.epochs == 1 and s.setup.extractor.epochs == 1 and s.setup.scores.head_epochs == 1
    assert len(s.tuning.betas) == 1 and s.setup.dm["iterations"] == 1 and s.setup.pool_per_class <= 20
    full = adq.ADQStudy(setup, ARCHS, cache=ArtifactCache(tmp_path / "dry"), progress=False)
    assert full.protocol.epochs == 50 and not full.dry_run
    with pytest.raises(ValueError, match="dry_run"):
        adq.ADQStudy(setup, ARCHS, dry_run="yes")


ADQ_PAGES = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "notebooks").glob("adq_*.ipynb"))


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_every_adq_page_of_a_profile_reads_the_chapter_setup(profile, repo_root):
    """The chapter's setup lives once per profile (``params/<profile>/_adq.yaml``) and holds exactly the setup keys;
    every page's merged parameters make a valid study, and no page overrides the setup, so the pages share one
    feature network, one set of bins and one tuning."""
    import yaml

    from dscore import book

    assert ADQ_PAGES, "no ADQ notebooks found"
    shared = yaml.safe_load((repo_root / "params" / profile / "_adq.yaml").read_text())
    assert set(shared) == set(adq.SETUP_KEYS)
    for page in ADQ_PAGES:
        params = book.load_params(repo_root, profile, page)
        setup = adq.setup_from(params)
        adq.ADQStudy(setup, params["archs"])           # validates every setup and arch before any work
        assert params["archs"], page
        assert setup["tuning"]["arch"] in params["archs"], f"{page}: the tuning architecture must be one of its archs"
        assert setup == shared, f"params/{profile}/{page}.yaml overrides the chapter's setup"
        study = adq.ADQStudy(setup, params["archs"])
        assert study.reference_arch == setup["tuning"]["arch"] and study.reference_arch in params["archs"]
        seen = study.dm_seen_archs            # the labels of DM's own network, explicit: never looked up by name
        assert all(params["archs"][a]["arch"] == setup["dm"].get("arch", "convnet3") for a in seen)
        if profile == "default":
            assert seen == ["ConvNet-3"]
        if profile == "paper":
            assert seen == []


def test_pq_diagnostics_name_the_overlap_and_the_refill_error(study):
    mae = {"epochs": 1, "embed_dim": 16, "depth": 1, "num_heads": 1, "decoder_dim": 8, "decoder_depth": 1,
           "decoder_heads": 1}
    d = study.pq_diagnostics(["dq", "adq"], [0.1], [0], theta=0.25, patch=4, mae=mae)
    assert list(d.method) == ["dq", "adq"]
    assert d.overlap_with_dq.iloc[0] == 1.0 and 0.0 <= d.overlap_with_dq.iloc[1] <= 1.0
    assert (d[["mae_error", "mean_fill_error", "zero_fill_error"]] >= 0).all().all()
    # the naive reference: zero fill errs by the mean dropped pixel value
    q = study.pixel_quantized("dq", 0.1, 0, theta=0.25, patch=4, mae=mae)
    from dscore.quantize.pixelquant import pixel_mask
    n, c, h, w = q["original"].shape
    dropped = ~pixel_mask(q["record"]["mask"], 4, h, w).expand(n, c, h, w)
    assert d.zero_fill_error.iloc[0] == pytest.approx(float(q["original"].float()[dropped].abs().mean()))


def test_downloaded_selections_are_positions_in_the_whole_training_split(study, tmp_path, monkeypatch):
    import numpy as np

    from dscore import data
    from dscore.book import page as pages

    monkeypatch.setenv(pages.PAGE_FILES_ENV, str(tmp_path / "files"))
    files = pages.Downloads("adq_main")
    files.selections(study, ["random", "dq"], [0.2], [0])
    full = data.load_dataset("digits", "train")
    for method in ("random", "dq"):
        idx = torch.as_tensor(np.load(tmp_path / "files" / f"{method}_ratio0.2_seed0.npy"))
        chosen = study.select(method, 0.2, 0)
        assert torch.equal(full.images[idx], chosen["images"]) and torch.equal(full.labels[idx], chosen["labels"])
