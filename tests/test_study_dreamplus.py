"""The DREAM+ chapter's study on tiny data: what its helpers return, shared runs computed once, parameter errors."""
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from dscore.cache import ArtifactCache
from dscore.studies import dreamplus as dp


def tiny_setup(**changes):
    s = dict(dataset="fashion_mnist", pool_per_class=12, val_fraction=0.25, test_per_class=5, split_seed=0,
             network={"arch": "convnet3", "width": 4},
             distill={"common": {},
                      "idc": {"iterations": 2, "outer_loops": 2, "n_data": 16, "batch_real": 4, "net_batch": 4,
                              "interval": 1, "snapshot_every": 1, "diag_every": 1},
                      "rm": {"batch_real": 4},
                      "dc": {"iterations": 1, "outer_loops": 1, "inner_loops": 1, "batch_real": 4, "snapshot_every": 1},
                      "dsa": {"iterations": 1, "outer_loops": 1, "inner_loops": 1, "batch_real": 4},
                      "dm": {"iterations": 2, "batch_real": 4, "interval": 1, "snapshot_every": 1}},
             evaluation={"seeds": [0, 1, 2], "check_every": 1, "idc": {"epochs": 1}, "dsa": {"epochs": 1},
                         "dc": {"epochs": 1}},
             coresets={"family": "dsa", "feature_epochs": 1, "forgetting_epochs": 1}, device="cpu")
    s.update(changes)
    return s


@pytest.fixture(scope="module")
def study(tmp_path_factory):
    return dp.DreamStudy(tiny_setup(), cache=ArtifactCache(tmp_path_factory.mktemp("dream")), progress=False)


def computed(cache, kind):
    return sum(1 for e in cache.ledger if e["computed"] and e["kind"] == kind)


def test_grid_rows_and_shared_runs_are_computed_once(study):
    df = study.grid(["random", "herding", "idc", "dreamplus"], [1], [0, 1])
    # herding: one selection seed; random: a selection seed per distillation seed; idc / dreamplus: two distillation
    # seeds; three evaluation seeds each
    assert len(df) == (2 + 1 + 2 + 2) * 3
    assert sorted(set(df[df.method == "random"].seed)) == [0, 1] and set(df[df.method == "herding"].seed) == {0}
    assert set(df.columns) >= {"method", "label", "ipc", "seed", "eval_seed", "acc", "best_of_checks"}
    assert df.acc.between(0, 1).all()
    runs, evals = computed(study.cache, "distill_run"), computed(study.cache, "evaluation")
    assert runs == 4
    again = study.grid(["random", "herding", "idc", "dreamplus"], [1], [0, 1])
    assert computed(study.cache, "distill_run") == runs and computed(study.cache, "evaluation") == evals
    pd.testing.assert_frame_equal(df.drop(columns="seconds"), again.drop(columns="seconds"))
    s = dp.summarise(df)
    row = s[s.method == "dreamplus"].iloc[0]
    assert row["n"] == 6 and row["n_distill"] == 2 and math.isclose(row["mean"], df[df.method == "dreamplus"].acc.mean())


def test_grid_caps_the_seeds_of_one_ipc(study):
    df = study.grid(["random", "idc"], [1], [0, 1], seeds_at={1: 1})
    assert set(df.seed) == {0} and len(df) == 2 * len(study.setup.eval_seeds)
    with pytest.raises(ValueError, match="seeds_at"):
        study.grid(["idc"], [1], [0, 1], seeds_at={1: 0})


def test_seeds_at_ipc_parameter_is_checked():
    from dscore.book.rules import ParameterError, RULES

    RULES["seeds_at_ipc"]("seeds_at_ipc", {1: 3})
    with pytest.raises(ParameterError, match="mapping"):
        RULES["seeds_at_ipc"]("seeds_at_ipc", [1, 3])
    with pytest.raises(ValueError, match=r"seeds_at_ipc\[1\]"):
        RULES["seeds_at_ipc"]("seeds_at_ipc", {1: 0})


def test_curves_reuse_the_runs_and_the_final_snapshot_is_the_final_set(study):
    before = computed(study.cache, "distill_run")
    cv = study.curves(["idc", "dreamplus"], 1, [0], [0])
    assert computed(study.cache, "distill_run") == before          # the grid's runs, not new ones
    assert sorted(cv.iteration.unique()) == [0, 1, 2]
    assert (cv.groupby(["method"]).seconds.apply(lambda s: s.is_monotonic_increasing)).all()
    final = cv[(cv.method == "idc") & (cv.iteration == 2)].acc.iloc[0]
    assert final == study.evaluate("idc", 1, 0, 0)["acc"]
    sp = dp.curve_speedups(cv, "idc", "dreamplus")
    assert len(sp) == 1 and set(sp.columns) >= {"factor", "reason", "method_x"}
    rows = dp.claims.efficiency_claims(cv)
    # three snapshots cannot resolve a 15x factor nor tell whether IDC flattened: untestable, with the reason
    assert [r.word for r in rows] == ["untestable here"] * 2 and "snapshot" in rows[0].judgement.reason


def test_speedup_table_on_constructed_curves():
    # IDC reaches its final 0.6 at iteration 4; DREAM+ crosses 0.6 halfway between 1 and 2 (factor 4 / 1.5),
    # DREAM never gets there; seconds run twice as fast as iterations for every method
    def curve(method, accs):
        return [{"method": method, "seed": 0, "eval_seed": 0, "iteration": i, "seconds": 2.0 * i, "acc": a}
                for i, a in enumerate(accs)]

    curves = pd.DataFrame(curve("idc", [0.1, 0.3, 0.4, 0.5, 0.6]) + curve("dream", [0.1, 0.2, 0.3, 0.4, 0.5])
                          + curve("dreamplus", [0.1, 0.5, 0.7, 0.7, 0.7]))
    table = dp.speedup_table(curves).set_index(["method", "in"])
    assert list(table.index) == [("DREAM", "iteration"), ("DREAM", "seconds"), ("DREAM+", "iteration"),
                                 ("DREAM+", "seconds")]
    plus = table.loc[("DREAM+", "iteration")]
    assert plus["factor (mean of reached)"] == round(4 / 1.5, 2) and plus["per curve"] == f"{4 / 1.5:.2f}"
    assert plus["outcomes"] == "crossed" and plus["baseline"] == "IDC"
    assert table.loc[("DREAM+", "seconds"), "factor (mean of reached)"] == round(4 / 1.5, 2)
    never = table.loc[("DREAM", "iteration")]
    assert pd.isna(never["factor (mean of reached)"]) and never["per curve"] == "—" and never["outcomes"] == "never reached"


def test_a_prefill_process_starts_with_its_own_runs_and_returns_the_same_table(study, monkeypatch):
    # as the second of two prefill processes: the grid visits the runs it owns first, the table is unchanged
    single = study.grid(["idc", "dreamplus"], [1], [0, 1])
    visited = []
    inner = study.evaluate
    monkeypatch.setattr(study, "evaluate", lambda m, ipc, s, e, **kw: visited.append((m, s)) or inner(m, ipc, s, e, **kw))
    monkeypatch.setenv("DSCORE_WORK_WORLD", "2")
    monkeypatch.setenv("DSCORE_WORK_RANK", "1")
    second = study.grid(["idc", "dreamplus"], [1], [0, 1])
    pd.testing.assert_frame_equal(single, second)
    assert visited[0] == ("idc", 1)            # runs (idc, 0), (idc, 1), (dreamplus, 0), … alternate owners: rank 1
    assert [v for i, v in enumerate(visited) if i % 3 == 0] == [("idc", 1), ("dreamplus", 1), ("dreamplus", 0),
                                                              ("idc", 0)]


def test_costs_diagnostics_migration_and_probe(study):
    costs = dp.costs(study, ["idc", "dreamplus"], 1, [0])
    assert len(costs) == 2 * 2                          # one row per iteration
    assert (costs[costs.method == "idc"].clustering == 0).all()
    assert (costs[costs.method == "dreamplus"].pretrain > 0).all()
    assert ((costs.whole - costs.clustering - costs.image_update - costs.network_update - costs.pretrain).abs() < 1e-9).all()
    diag = dp.diagnostics(study, ["idc", "dreamplus"], 1, [0])
    assert len(diag) == 2 * 4 and diag.grad_diff.ge(0).all()
    mig = dp.migration(study, "dreamplus", 1, 0)
    assert list(mig.iteration) == [1, 2] and mig.migration.ge(0).all()
    probe = dp.batch_mmd_probe(study, [0, 1], batch=3, pretrain_epochs=0)
    assert len(probe) == 2 * 10 * 3 and set(probe.kind) == {"random", "representative", "boundary"}
    n = computed(study.cache, "dream_batch_mmd")
    dp.batch_mmd_probe(study, [0, 1], batch=3, pretrain_epochs=0)
    assert computed(study.cache, "dream_batch_mmd") == n
    assert len(dp.claims.mmd_claims(probe, diag)) == 1              # no DREAM run in diag: the probe only
    drawn = dp.batch_mmd_probe(study, [0], batch=3, pretrain_epochs=0, draws=3)
    assert len(drawn) == 10 * 3 * 3 and sorted(set(drawn.draw)) == [0, 1, 2]
    first = drawn[drawn.draw == 0].drop(columns="draw").reset_index(drop=True)
    pd.testing.assert_frame_equal(first, probe[probe.seed == 0].drop(columns="draw").reset_index(drop=True))
    assert drawn[drawn.kind == "random"].groupby("class").mmd2.nunique().gt(1).all()   # fresh batches per draw
    common = dp.common_probe(study, ["idc", "dreamplus"], 1, [0], [0, 1], batch=3, pretrain_epochs=0)
    assert len(common) == 2 * 2 * 10 and common.grad_diff.gt(0).all() and common.feature_diff.ge(0).all()
    alone = dp.common_probe(study, ["idc"], 1, [0], [0, 1], batch=3, pretrain_epochs=0)    # one footing: the other
    pd.testing.assert_frame_equal(alone, common[common.method == "idc"].reset_index(drop=True))   # arms change nothing
    with pytest.raises(ValueError, match="coreset"):
        dp.common_probe(study, ["herding"], 1, [0], [0], batch=3)
    traj = dp.mmd_trajectory(study, ["idc", "dreamplus"], 1, [0], [0, 1], pretrain_epochs=0)
    snaps = [it for it, _ in study.run("idc", 1, 0).snapshots]
    assert len(traj) == 2 * 2 * len(snaps) * 10 and sorted(set(traj.iteration)) == sorted(snaps)
    assert np.isfinite(traj.mmd2).all()
    one = traj[(traj.method == "idc") & (traj.iteration == snaps[-1]) & (traj.probe_seed == 0)]
    images, labels = study.training_set("idc", 1, 0)                   # the last snapshot is the final set
    from dscore.features import extract_embeddings
    from dscore.metrics import median_bandwidth, mmd2
    net, train = dp.probe_network(study, 0, 0), study.splits.train
    real = extract_embeddings(net, train.images, progress=False).cpu().float()
    syn = extract_embeddings(net, images, progress=False).cpu().float()
    e3 = real[train.labels == 3]
    assert one.mmd2.iloc[3] == pytest.approx(mmd2(syn[labels == 3], e3, median_bandwidth(e3)), rel=1e-6)
    seen = len(study.cache.ledger)                                       # one probe per (seed, epochs): an artefact
    again_net = dp.probe_network(study, 0, 0)
    assert [r["computed"] for r in study.cache.ledger[seen:] if r["kind"] == "dream_probe"] == [False]
    assert all(torch.equal(a, b) for a, b in zip(again_net.state_dict().values(), net.state_dict().values()))
    alone = dp.mmd_trajectory(study, ["dreamplus"], 1, [0], [1], pretrain_epochs=0)
    pd.testing.assert_frame_equal(alone, traj[(traj.method == "dreamplus") & (traj.probe_seed == 1)]
                                  .reset_index(drop=True))
    assert [r.id for r in dp.claims.mmd_claims(probe, diag)] == ["dream_why.mmd_probe"]
    assert dp.claims.mmd_claims(probe, diag)[0].judgement.n == 2      # the two probe seeds are the units
    again = dp.costs(study, ["idc", "dreamplus"], 1, [0])                 # the runs are served from the cache now
    assert again.attrs["from_cache"] == ["idc seed 0", "dreamplus seed 0"]
    stale = dp.claims.cost_claims(again)
    assert {r.word for r in stale} == {"untestable here"} and "not timed here" in stale[0].judgement.reason
    fresh = again.copy()
    fresh.attrs["from_cache"] = []                                    # as if distilled in this process
    timed = dp.claims.cost_claims(fresh)
    assert [r.id for r in timed] == ["dream_cost.inner_loop_vs_idc", "dream_cost.clustering_vs_update"]
    assert all(r.word == "underpowered" and r.unit == "s" for r in timed)        # one distillation seed


def test_cumulative_seconds_adds_init_pretraining_and_steps():
    h = {"iteration": [0, 0, 1, 1], "time_clustering": [0.5, 0, 0.5, 0], "time_matching": [1, 1, 1, 1],
         "time_network_update": [0.25, 0, 0.25, 0], "time_pretrain": [2, 2], "time_init": [3]}
    assert dp.cumulative_seconds(h, 2) == [3, 3 + 4.75, 3 + 9.5]
    c = dp.per_step_costs(h, 2)
    assert c["clustering"] == 0.25 and c["pretrain"] == 1.0 and math.isclose(c["whole"], 9.5 / 4)


def test_method_labels():
    assert dp.method_label("dreamplus") == "DREAM+"
    assert dp.method_label("idc+rm") == "IDC + RM"
    assert dp.method_label("dsa+rm+init+bm") == "DSA + RM + Init + BM"
    assert dp.method_label("kcenter") == "K-Center"


@pytest.mark.parametrize("key, value, word", [
    ("dataset", "nope", "dataset"),
    ("network", {"arch": "convnet3", "depth_typo": 3}, "depth_typo"),
    ("distill", {"idc": {"iterationz": 3}}, "iterationz"),
    ("distill", {"gm": {}}, "gm"),
    ("evaluation", {"idc": {"epochz": 1}}, "epochz"),
    ("evaluation", {"seeds": []}, "seeds"),
    ("coresets", {"family": "xyz"}, "family"),
    ("val_fraction", 1.5, "val_fraction"),
])
def test_bad_parameters_raise_naming_the_key(key, value, word):
    with pytest.raises(ValueError, match=word):
        dp.DreamStudy(tiny_setup(**{key: value}), cache=ArtifactCache(enabled=False), progress=False)


def test_the_setup_is_one_checked_frozen_object_and_its_dry_version_is_tiny():
    raw = tiny_setup(distill={**tiny_setup()["distill"], "lr_img": {"scales": [1, 10], "seeds": [100, 101]}},
                     pool_per_class=None)
    setup = dp.DreamSetup.from_params(raw)
    assert dp.DreamSetup.from_params(setup) is setup
    assert setup.arch == "convnet3" and setup.arch_kwargs == {"width": 4} and setup.eval_seeds == (0, 1, 2)
    assert setup.protocols["idc"].epochs == 1 and setup.lr_tuning.ipc == 10 and setup.lr_tuning.scales == (1.0, 10.0)
    with pytest.raises(Exception):
        setup.dataset = "mnist"                                    # frozen
    dry = setup.dry()
    assert dry.pool_per_class == 20 and dry.test_per_class == 5 and dry.eval_seeds == (0,)
    assert dry.lr_tuning.scales == (1.0,) and dry.lr_tuning.seeds == (100,) and dry.feature_epochs == 1
    study = dp.DreamStudy(raw, cache=ArtifactCache(enabled=False), progress=False, dry_run=True)
    assert study.setup == dry and study.describe()["dry run"].startswith("one tiny step")
    with pytest.raises(ValueError, match="lr_img"):
        dp.DreamSetup.from_params(tiny_setup(distill={"lr_img": {"scales": [1]}}))


def test_missing_setup_key_is_named():
    s = tiny_setup()
    del s["coresets"]
    with pytest.raises(ValueError, match="coresets"):
        dp.DreamStudy(s, progress=False)
    with pytest.raises(ValueError, match="coresets"):
        dp.setup_from(s)


def test_coreset_has_no_run(study):
    with pytest.raises(ValueError, match="coreset"):
        study.run("herding", 1)
    with pytest.raises(ValueError, match="iteration"):
        study.training_set("idc", 1, 0, iteration=7)


def test_coverage_rows_points_and_claims(study):
    out = dp.coverage(study, ["idc", "dreamplus"], 1, [0], real_per_class=3, perplexity=5.0)
    cov, pts = out["coverage"], out["points"]
    assert len(cov) == 2 * 10 and (cov.coverage > 0).all() and (cov.centre > 0).all()
    # 3 real images per class + 4 decoded synthetic images per class and method
    assert len(pts) == 30 + 2 * 40 and set(pts.kind) == {"real", "IDC", "DREAM+"}
    rows = dp.claims.coverage_claims(cov)
    assert len(rows) == 1 and rows[0].judgement.n == 1 and rows[0].word == "underpowered"   # one distillation seed


# ----------------------------------------------------------------------------- interval, sampling, cross-arch, continual

def test_variant_overrides_reuse_the_shared_run(study):
    assert study.variant_overrides("dreamplus", 1, interval=1) == {}              # the setup's interval
    assert study.variant_overrides("dreamplus", 1, interval=2) == {"interval": 2}
    assert study.variant_overrides("dreamplus", 1, num_clusters=4, subsample=1) == {}   # K = batch_real // 1
    assert study.variant_overrides("dreamplus", 1, num_clusters=2, subsample=2) == {"num_clusters": 2, "subsample": 2}
    assert study.config("dreamplus", 1, overrides={"interval": 2}).interval == 2
    with pytest.raises(ValueError, match="seed"):
        study.config("idc", 1, overrides={"seed": 3})
    with pytest.raises(ValueError, match="interval"):
        study.variant_overrides("dreamplus", 1, interval=0)


def test_interval_grid_and_curves_share_the_main_run(study):
    study.run("dreamplus", 1, 0)
    before = computed(study.cache, "distill_run")
    grid = dp.interval_grid(study, "dreamplus", 1, [1, 2], [0])
    assert computed(study.cache, "distill_run") == before + 1                     # only interval 2 is new
    assert len(grid) == 2 * 3 and grid.acc.between(0, 1).all() and (grid.top5 >= grid.acc).all()
    assert list(grid.once_per_network.unique()) == [False, True]                 # 2 image steps per network
    cv = dp.interval_curves(study, "dreamplus", 1, [1, 2], [0], [0])
    assert set(cv.interval) == {1, 2} and computed(study.cache, "distill_run") == before + 1
    rows = dp.claims.interval_claims(grid, cv, margin=1.0)
    assert [r.id for r in rows] == ["dream_interval.top1", "dream_interval.top5", "dream_interval.early_efficiency"]
    assert all(r.word == "underpowered" and r.judgement.n == 1 for r in rows)      # one distillation seed
    n = computed(study.cache, "dream_topk")
    dp.interval_grid(study, "dreamplus", 1, [1, 2], [0])
    assert computed(study.cache, "dream_topk") == n


def test_sampling_grid_rows_and_claims(study):
    grid = dp.sampling_grid(study, ["dreamplus", "dream"], 1, [[4, 1], [2, 2]], [0])
    assert len(grid) == 2 * 2 * 3 and set(grid.batch) == {4}
    with pytest.raises(ValueError, match="representative"):
        dp.sampling_grid(study, ["idc"], 1, [[4, 1]], [0])
    base = study.grid(["idc"], [1], [0])
    rows = dp.claims.sampling_claims(grid, base, default_cell=(4, 1))
    assert [r.id for r in rows] == ["dream_sampling.vs_dream_4x1", "dream_sampling.vs_idc_4x1",   # the default first
                                    "dream_sampling.vs_dream_2x2", "dream_sampling.vs_idc_2x2"]
    # with a (2, 1) cell the "most sub-clusters beat the fewest" and "samples marginal" rows come first
    more = pd.concat([grid, dp.sampling_grid(study, ["dreamplus"], 1, [[2, 1]], [0])], ignore_index=True)
    rows = dp.claims.sampling_claims(more, base, default_cell=(4, 1), ipc=1)
    assert rows[0].id == "dream_sampling.default_vs_fewest" and rows[0].judgement.claimed == pytest.approx(2.5)
    assert rows[1].id == "dream_sampling.samples_marginal" and rows[1].judgement.margin == 1.0
    assert "IPC 1" in rows[0].note


def test_cross_arch_evaluates_the_shared_runs_on_other_networks(study):
    before = computed(study.cache, "distill_run")
    archs = {"ConvNet-3": {"arch": "convnet3", "width": 4}, "ResNet-10 (width 4)": {"arch": "resnet10", "width": 4}}
    df = dp.cross_arch(study, ["idc", "dreamplus"], 1, [0], archs)
    assert computed(study.cache, "distill_run") == before
    assert len(df) == 2 * 2 * 3 and set(df.eval_model) == {"convnet3", "resnet10"}
    same = df[(df.eval_arch == "ConvNet-3") & (df.method == "idc") & (df.eval_seed == 0)].acc.iloc[0]
    assert same == study.evaluate("idc", 1, 0, 0)["acc"]                    # the main table's evaluation
    rows = dp.claims.cross_arch_claims(df)
    assert len(rows) == 2 and "Tab. IV" in rows[1].paper and "Res-10" in rows[1].paper
    with pytest.raises(ValueError, match="depth_typo"):
        dp.cross_arch(study, ["idc"], 1, [0], {"x": {"arch": "convnet3", "depth_typo": 1}})


def test_continual_rows_cache_and_claims(study):
    df = dp.continual(study, ["herding", "idc", "dreamplus"], 1, 0, steps=5)
    assert len(df) == 3 * 3 * 5 and list(df[df.method == "idc"].classes.unique()) == [2, 4, 6, 8, 10]
    assert df.acc.between(0, 1).all() and len(df.attrs["class_order"]) == 10
    n = computed(study.cache, "dream_continual")
    dp.continual(study, ["herding", "idc", "dreamplus"], 1, 0, steps=5)
    assert computed(study.cache, "dream_continual") == n
    rows = dp.claims.continual_claims(df, seed=0)
    assert len(rows) == 2 * 3 and rows[0].judgement.n == 1        # one distilled set: one unit, not 3 eval seeds
    with pytest.raises(ValueError, match="steps=3"):
        dp.continual(study, ["idc"], 1, 0, steps=3)


def test_continual_claims_on_constructed_curves():
    rows = []
    for e in range(3):
        for step, (a, b) in enumerate([(0.9, 0.88), (0.8, 0.7), (0.7, 0.5)], start=1):
            rows += [{"method": "dreamplus", "eval_seed": e, "step": step, "classes": 2 * step, "acc": a + 0.001 * e},
                     {"method": "idc", "eval_seed": e, "step": step, "classes": 2 * step, "acc": b - 0.002 * e}]
    df = pd.DataFrame(rows)
    # one distilled set per method: the evaluation seeds are not units, so nothing can be judged
    out = dp.claims.continual_claims(df, seed=0)
    assert [r.word for r in out] == ["underpowered"] * 3 and out[0].judgement.diff == pytest.approx(20.3)
    # eight distilled sets (units) with the same pattern: reproduced, paired by distillation seed
    eight = pd.concat([df.assign(seed=s, acc=df.acc + 0.001 * s * (df.method == "dreamplus")) for s in range(8)])
    out = dp.claims.continual_claims(eight)
    assert [r.word for r in out] == ["reproduced"] * 3 and out[0].judgement.n == 8
    # three: the exact test cannot reach 0.05 (smallest p 0.25), whatever the pattern
    three = eight[eight.seed < 3]
    assert {r.word for r in dp.claims.continual_claims(three)} == {"underpowered"}


def test_interval_claims_margin_on_constructed_values():
    grid = pd.DataFrame([{"interval": v, "seed": s, "eval_seed": e, "acc": 0.8 + d + 0.001 * e + 0.0001 * s * v,
                          "top5": 0.99} for v, d in ((1, 0.0), (8, -0.003)) for s in range(8) for e in range(3)])
    rows = dp.claims.interval_claims(grid, margin=1.0)
    assert rows[0].word == "equivalent" and rows[0].judgement.diff == pytest.approx(-0.3 + 0.07 * 3.5)
    assert "margin ±1" in rows[0].note
    far = grid.assign(acc=grid.acc - 0.1 * (grid.interval == 8))
    assert dp.claims.interval_claims(far, margin=1.0)[0].word == "not equivalent"


DREAM_PAGES = sorted(p.stem for p in (Path(__file__).resolve().parent.parent / "notebooks").glob("dream_*.ipynb"))


@pytest.mark.parametrize("profile", ["smoke", "default", "paper"])
def test_every_dream_page_of_a_profile_reads_the_chapter_setup(profile, repo_root):
    """The chapter's setup lives once per profile (``params/<profile>/_dreamplus.yaml``), holds exactly the setup
    keys, makes a valid study, and no page overrides it: the pages reuse each other's distillation runs."""
    import yaml

    from dscore import book

    assert {"dream_main", "dream_interval", "dream_sampling", "dream_crossarch", "dream_continual"} <= set(DREAM_PAGES)
    shared = yaml.safe_load((repo_root / "params" / profile / "_dreamplus.yaml").read_text())
    assert set(shared) == set(dp.SETUP_KEYS)
    dp.DreamStudy(shared, cache=ArtifactCache(enabled=False), progress=False)   # validates it
    for page in DREAM_PAGES:
        setup = dp.setup_from(book.load_params(repo_root, profile, page))
        assert setup == shared, f"params/{profile}/{page}.yaml overrides the chapter's setup"


def test_main_ablation_and_stability_claims_on_the_study_frames(study):
    methods = ["idc", "idc+rm", "dream", "dreamplus"]
    grid = study.grid(methods, [1], [0, 1], multi_seed=methods)
    main = dp.claims.main_claims(grid, "fashion_mnist", [1], dp.initial_sets(study, grid))
    assert [r.id for r in main] == ["dream_main.dreamplus_vs_idc_ipc1", "dream_main.dream_vs_idc_ipc1",
                                    "dream_main.dreamplus_vs_dream_ipc1", "dream_main.init_advantage_ipc1"]
    # two distillation seeds: IDC's gate cannot pass (no test at n 2), the rest cannot be decided
    assert [r.word for r in main[:2]] == ["untestable here"] * 2 and "gate failed" in main[0].judgement.reason
    assert all(r.judgement.n == 2 and r.word == "underpowered" and r.judgement.ci is not None for r in main[2:])
    ablation = dp.claims.ablation_claims(grid, 1, ["idc", "idc+rm", "dream", "dreamplus"])
    assert [r.id for r in ablation] == ["dream_ablation.idc_rm_ipc1"]
    diag = dp.diagnostics(study, ["idc", "dream", "dreamplus"], 1, [0, 1])
    migration = pd.concat([dp.migration(study, m, 1, s) for m in ("idc", "dreamplus") for s in (0, 1)])
    stab = dp.claims.stability_claims(diag, migration)
    assert {r.judgement.n for r in stab} == {2} and all(r.unit for r in stab)


def test_every_idc_family_arm_trains_its_networks_at_one_batch(study):
    """IDC's default network batch (64) and the representative presets' (batch_real) differ: the setup must state
    one, and then every arm uses it, so no arm takes more SGD steps per epoch."""
    assert {study.config(m, 10).net_batch for m in ("idc", "dream", "dreamplus", "idc+bm", "idc+pt")} == {4}
    base = tiny_setup()
    setup = {**base, "distill": {**base["distill"], "idc": {k: v for k, v in base["distill"]["idc"].items()
                                                             if k != "net_batch"}}}
    with pytest.raises(ValueError, match="different batch sizes .*net_batch"):
        dp.DreamStudy(setup, cache=ArtifactCache(enabled=False), progress=False)


def test_pixel_change_lists_every_run_the_page_used(study):
    study = dp.DreamStudy(tiny_setup(), cache=study.cache, progress=False)     # a fresh page on the shared cache
    assert dp.pixel_change(study).empty
    study.run("idc", 1, 0)
    study.run("dreamplus", 1, 0)
    study.run("idc", 1, 0)                                  # counted once
    moved = dp.pixel_change(study)
    assert list(moved.method) == ["IDC", "DREAM+"] and len(moved) == 2
    first = study.run("idc", 1, 0)
    expect = float((first.images - dict(first.snapshots)[0]).abs().mean())
    assert moved["mean |Δpixel|"].iloc[0] == pytest.approx(expect) and expect > 0
    assert moved["image steps"].iloc[0] == first.config.iterations * first.config.outer_loops


def test_the_image_learning_rate_is_chosen_on_the_validation_split(tmp_path):
    setup = tiny_setup()
    setup["distill"] = {**setup["distill"], "lr_img": {"scales": [1, 1000], "seeds": [100, 101], "ipc": 1}}
    study = dp.DreamStudy(setup, cache=ArtifactCache(tmp_path / "c"), progress=False)
    authors = study.config("idc", 1, scale_lr=False).lr_img
    choice = study.lr_img_choice()
    table = choice["table"]
    assert list(table.factor) == [1, 1000] and table.chosen.sum() == 1
    assert choice["scale"] == table.factor[table.chosen].item()
    assert choice["scale"] == table.factor[table["val acc (mean)"].idxmax()]       # the best validation mean
    # every IDC-family arm, at every ipc, gets the same factor; other families keep their own rate
    for m in ("idc", "dream", "dreamplus"):
        assert study.config(m, 1).lr_img == pytest.approx(authors * choice["scale"])
    assert study.config("idc", 10).lr_img == pytest.approx(study.config("idc", 10, scale_lr=False).lr_img *
                                                            choice["scale"])
    assert study.config("dm", 1).lr_img == study.config("dm", 1, scale_lr=False).lr_img
    # only the validation split was scored, and only with the tuning seeds
    evals = [r for r in study.cache.ledger if r["kind"] == "evaluation"]
    assert len(evals) == 4
    # the tuning seeds cannot judge a claim
    with pytest.raises(ValueError, match="seeds the image learning rate was chosen with"):
        study.run("dreamplus", 1, 100)
    with pytest.raises(ValueError, match="'scales' and 'seeds'"):
        dp.DreamStudy({**setup, "distill": {**setup["distill"], "lr_img": {"scales": [1]}}},
                      cache=ArtifactCache(enabled=False), progress=False)
    assert "chosen on the validation split" in study.describe()["image learning rate"]


def test_class_fraction_cells_scale_the_papers_sub_clusters_to_the_class(study):
    n = int(study.splits.train.class_counts().min())
    cells = dp.class_fraction_cells(study, [[32, 1], [128, 1], [256, 1], [32, 2]], 256)
    expect = [max(1, round(k * n / 256)) for k in (32, 128, 256)]
    assert list(cells.paper_subclusters) == [32, 128, 256, 32][:len(cells)]
    assert list(cells.subclusters[:3]) == expect and list(cells.samples) == [1, 1, 1, 2][:len(cells)]
    assert cells.fraction.tolist() == pytest.approx([k / n for k in cells.subclusters])
    same = dp.class_fraction_cells(study, [[4, 1], [2, 1]], None)
    assert list(same.subclusters) == [4, 2]                                  # None: the cells as given
    dup = dp.class_fraction_cells(study, [[1, 1], [2, 1]], 10_000)             # both land on K = 1: the first kept
    assert len(dup) == 1 and dup.paper_subclusters.iloc[0] == 1
    capped = dp.class_fraction_cells(study, [[n, 2]], None)                   # K · s cannot exceed the class
    assert capped.subclusters.iloc[0] == n // 2
    with pytest.raises(ValueError, match="must be \\[sub-clusters"):
        dp.class_fraction_cells(study, [[4]], None)
