"""The DREAM+ chapter's study on tiny data: what its helpers return, shared runs computed once, parameter errors."""
import math

import pandas as pd
import pytest

from dscore.cache import ArtifactCache
from dscore.studies import dreamplus as dp


def tiny_setup(**changes):
    s = dict(dataset="fashion_mnist", pool_per_class=12, val_fraction=0.25, test_per_class=5, split_seed=0,
             network={"arch": "convnet3", "width": 4},
             distill={"common": {},
                      "idc": {"iterations": 2, "outer_loops": 2, "n_data": 16, "batch_real": 4, "interval": 1,
                              "snapshot_every": 1, "diag_every": 1},
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
    # coresets: one selection seed; idc / dreamplus: two distillation seeds; three evaluation seeds each
    assert len(df) == (1 + 1 + 2 + 2) * 3
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
    row = dp.speedup_claim("x", "y", pd.concat([sp] * 3), 15.0)
    assert row["verdict"] in ("reproduced", "direction only", "not reproduced", "inconclusive")


def test_costs_diagnostics_migration_and_probe(study):
    costs = study.costs(["idc", "dreamplus"], 1, [0])
    assert len(costs) == 2 * 2                          # one row per iteration
    assert (costs[costs.method == "idc"].clustering == 0).all()
    assert (costs[costs.method == "dreamplus"].pretrain > 0).all()
    assert ((costs.whole - costs.clustering - costs.image_update - costs.network_update - costs.pretrain).abs() < 1e-9).all()
    diag = study.diagnostics(["idc", "dreamplus"], 1, [0])
    assert len(diag) == 2 * 4 and diag.grad_diff.ge(0).all()
    mig = study.migration("dreamplus", 1, 0)
    assert list(mig.iteration) == [1, 2] and mig.migration.ge(0).all()
    probe = study.batch_mmd_probe([0, 1], batch=3, pretrain_epochs=0)
    assert len(probe) == 2 * 10 * 3 and set(probe.kind) == {"random", "representative", "boundary"}
    n = computed(study.cache, "dream_batch_mmd")
    study.batch_mmd_probe([0, 1], batch=3, pretrain_epochs=0)
    assert computed(study.cache, "dream_batch_mmd") == n
    assert len(dp.mmd_claims(probe, diag)) == 1                     # no DREAM run in diag: the probe only
    assert len(dp.cost_claims(costs)) == 2


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
    out = study.coverage(["idc", "dreamplus"], 1, [0], real_per_class=3, perplexity=5.0)
    cov, pts = out["coverage"], out["points"]
    assert len(cov) == 2 * 10 and (cov.coverage > 0).all() and (cov.centre > 0).all()
    # 3 real images per class + 4 decoded synthetic images per class and method
    assert len(pts) == 30 + 2 * 40 and set(pts.kind) == {"real", "IDC", "DREAM+"}
    rows = dp.coverage_claims(cov)
    assert len(rows) == 1 and rows[0]["seeds"] == "10 / 10"
