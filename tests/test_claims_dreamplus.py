"""The DREAM+ chapter's claim functions on constructed runs: the distillation seed is the unit, evaluation seeds and
steps are averaged inside it, arms are paired by it; the efficiency guards; the words."""
import numpy as np
import pandas as pd
import pytest

from dscore.papers import dreamplus as paper
from dscore.studies.dreamplus import claims


def grid(effects, *, seeds=range(8), eval_seeds=range(3), ipcs=(1, 10), noise=0.002, rng_seed=0):
    """Grid rows: ``effects`` = {method: points over IDC}; a distillation-seed effect shared by every method."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for ipc in ipcs:
        for s in seeds:
            shared = 0.03 * np.sin(2 * s + ipc)
            for m, eff in effects.items():
                for e in eval_seeds:
                    rows.append({"method": m, "ipc": ipc, "seed": s, "eval_seed": e,
                                 "acc": 0.7 + shared + eff / 100 + noise * rng.normal()})
    return pd.DataFrame(rows)


def by_id(rows):
    return {r.id: r for r in rows}


def start(df, moved=5.0, head=0.0):
    """Initial sets for :func:`claims.main_claims`' gate: every run's initialisation ``moved`` points below its final
    set, DREAM+'s initialisation ``head`` points above IDC's."""
    rows = []
    for r in df[df.method.isin(["idc", "dream", "dreamplus"])].itertuples():
        first = r.acc - moved / 100 + (head / 100 if r.method == "dreamplus" else 0.0) - 0.001 * (r.seed % 2)
        rows.append({"method": r.method, "ipc": r.ipc, "seed": r.seed, "eval_seed": r.eval_seed, "stage": "initial",
                     "acc": first - (r.acc - 0.7 if r.method == "dreamplus" else 0.0) * 0})
        rows.append({"method": r.method, "ipc": r.ipc, "seed": r.seed, "eval_seed": r.eval_seed, "stage": "final",
                     "acc": r.acc})
    return pd.DataFrame(rows)


def test_main_claims_average_eval_seeds_inside_a_distillation_seed():
    df = grid({"idc": 0.0, "dream": 1.0, "dreamplus": 1.6})
    rows = by_id(claims.main_claims(df, "fashion_mnist", [1, 10], start(df)))
    r = rows["dream_main.dreamplus_vs_idc_ipc1"]
    assert r.judgement.n == 8                       # 8 distillation seeds, not 24 (seed × evaluation seed) rows
    assert "gate passed: IDC's final set − its initial set at IPC 1" in r.note
    assert r.paper_id == "fashion-vs-idc" and r.judgement.claimed == pytest.approx(1.6)
    assert r.word == "reproduced"
    assert list(rows) == [k for i in (1, 10) for k in
                          [f"dream_main.{a}_vs_{b}_ipc{i}" for a, b in (("dreamplus", "idc"), ("dream", "idc"),
                                                                        ("dreamplus", "dream"))]
                          + [f"dream_main.init_advantage_ipc{i}"]]


def test_main_claims_gate_idc_on_its_own_progress_and_judge_the_initialisation():
    df = grid({"idc": 0.0, "dream": 1.0, "dreamplus": 1.6}, ipcs=(10,))
    # IDC never leaves its initialisation (72.6 → 72.7 …): the rows against IDC compare initialisations
    rows = by_id(claims.main_claims(df, "fashion_mnist", [10], start(df, moved=0.05)))
    r = rows["dream_main.dreamplus_vs_idc_ipc10"]
    assert r.word == "untestable here" and "gate failed — IDC's final set − its initial set" in r.judgement.reason
    assert "more image steps" in r.judgement.reason
    assert rows["dream_main.dreamplus_vs_dream_ipc10"].word != "untestable here"      # not gated on IDC
    # the initialisation claim: DREAM+'s initial set 3 points above IDC's is reproduced; the opposite is contradicted
    ahead = by_id(claims.main_claims(df, "fashion_mnist", [10], start(df, head=3.0 - 1.6)))
    assert ahead["dream_main.init_advantage_ipc10"].word == "reproduced"
    behind = by_id(claims.main_claims(df, "fashion_mnist", [10], start(df, head=-1.2 - 1.6)))
    assert behind["dream_main.init_advantage_ipc10"].word == "contradicted"
    assert behind["dream_main.init_advantage_ipc10"].paper_id == "init-advantage"
    missing = by_id(claims.main_claims(df, "fashion_mnist", [10], None))
    assert missing["dream_main.dreamplus_vs_idc_ipc10"].word == "untestable here"


def test_main_claims_words():
    def main(df):
        return claims.main_claims(df, "fashion_mnist", [10], start(df))

    weak = by_id(main(grid({"idc": 0.0, "dream": 0.0, "dreamplus": 0.4})))
    assert weak["dream_main.dreamplus_vs_idc_ipc10"].word == "weaker than claimed"
    worse = by_id(main(grid({"idc": 0.0, "dream": 0.0, "dreamplus": -2.0})))
    assert worse["dream_main.dreamplus_vs_idc_ipc10"].word == "contradicted"
    one = by_id(main(grid({"idc": 0.0, "dream": 0.0, "dreamplus": 2.0}, seeds=[0])))
    assert one["dream_main.dreamplus_vs_dream_ipc10"].word == "underpowered"
    assert "one unit" in one["dream_main.dreamplus_vs_dream_ipc10"].judgement.reason
    none = by_id(main(grid({"idc": 0.0, "dream": 0.0, "dreamplus": 0.0}, noise=0.0005)))
    assert none["dream_main.dreamplus_vs_idc_ipc10"].word == "not reproduced"


def curves(shapes, *, seeds=range(8), iterations=range(0, 101, 5), eval_seeds=range(2)):
    """Efficiency curves: ``shapes`` = {method: f(iteration) → accuracy}; seconds = 2 × iterations."""
    rows = []
    for m, f in shapes.items():
        for s in seeds:
            for e in eval_seeds:
                for it in iterations:
                    rows.append({"method": m, "seed": s, "eval_seed": e, "iteration": it, "seconds": 2.0 * it,
                                 "acc": f(it) + 0.0005 * s})
    return pd.DataFrame(rows)


FLAT_IDC = lambda it: 0.5 + 0.3 * (1 - np.exp(-it / 10))          # flat by the last quarter
FAST = lambda it: 0.5 + 0.32 * (1 - np.exp(-it / 0.5)) if it else 0.5
RISING = lambda it: 0.5 + 0.002 * it                                # still rising at the end


def test_efficiency_guard_baseline_not_flattened():
    rows = by_id(claims.efficiency_claims(curves({"idc": RISING, "dreamplus": FAST})))
    r = rows["dream_efficiency.iters_vs_idc"]
    assert r.word == "untestable here" and "has not flattened" in r.judgement.reason
    assert "+0.200 points per iteration" in r.judgement.reason          # the measured slope


def test_iterations_to_flatten_against_the_closed_form():
    """A curve a − b·exp(−t/τ) observed for 60 iterations: the fit recovers τ and the run length T at which the last
    quarter rises by the noise, b·(exp(−0.75T/τ) − exp(−T/τ)) = noise, solved here by bisection by hand."""
    tau, b, noise = 40.0, 30.0, 0.5
    slow = curves({"idc": lambda it: 0.5 + b / 100 * (1 - np.exp(-it / tau))}, iterations=range(0, 61, 5), seeds=[0])
    slope, need, text = claims.iterations_to_flatten(slow, "idc", noise)
    lo, hi = 60.0, 1e5
    for _ in range(200):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if b * (np.exp(-0.75 * mid / tau) - np.exp(-mid / tau)) > noise else (lo, mid)
    assert need == pytest.approx(lo, rel=1e-3) and need > 60
    assert slope > 0 and f"{need:.0f} iterations" in text
    flat = curves({"idc": FLAT_IDC}, seeds=[0])
    assert "flat within" in claims.iterations_to_flatten(flat, "idc", 0.5)[2]
    line = curves({"idc": RISING}, seeds=[0])
    assert claims.iterations_to_flatten(line, "idc", 0.5)[1] is None or \
        claims.iterations_to_flatten(line, "idc", 0.5)[1] > 1e3


def test_efficiency_guard_snapshots_cannot_resolve_the_factor():
    sparse = curves({"idc": FLAT_IDC, "dreamplus": FAST}, iterations=range(0, 101, 10))   # resolves 10× at most
    r = by_id(claims.efficiency_claims(sparse))["dream_efficiency.iters_vs_idc"]
    assert r.word == "untestable here" and "10.0×" in r.judgement.reason
    assert claims.resolvable_factor(sparse, "dreamplus") == pytest.approx(10.0)


def test_efficiency_judged_when_the_design_can_resolve_it():
    dense = curves({"idc": FLAT_IDC, "dreamplus": FAST, "dream": lambda it: FAST(it / 2)},
                   iterations=[0, 1, 2, 3, 4, 5, 10, 20, 40, 60, 70, 75, 80, 85, 90, 95, 100])
    flat, why = claims.flattened(dense, "idc")
    assert flat is True and "noise" in why
    rows = by_id(claims.efficiency_claims(dense))
    it = rows["dream_efficiency.iters_vs_idc"]
    assert it.word in ("reproduced", "weaker than claimed", "stronger than claimed") and it.judgement.n == 8
    assert it.unit == "ln(speed-up)" and it.judgement.claimed == pytest.approx(np.log(15.0))
    assert it.judgement.test.startswith("exact") and "gate passed: IDC's final snapshot" in it.note
    assert rows["dream_efficiency.vs_dream"].judgement.claim_sign == -1


def test_fig4b_judges_dreamplus_against_feature_matching_idc():
    iters = [0, 1, 2, 3, 4, 5, 10, 20, 40, 60, 70, 75, 80, 85, 90, 95, 100]
    main = curves({"idc": FLAT_IDC, "dreamplus": FAST}, iterations=iters)
    slow_feat = lambda it: 0.45 + 0.3 * (1 - np.exp(-it / 8))        # flat, and below DREAM+ throughout
    feat = curves({"idc+feat": slow_feat, "dreamplus": FAST}, iterations=iters)
    rows = by_id(claims.efficiency_claims(main, feat))
    r = rows["dream_efficiency.iters_vs_idc_feat"]
    assert r.paper_id == "iters-40x-distribution" and r.judgement.claimed == pytest.approx(np.log(40.0))
    assert r.word != "untestable here" and r.judgement.n == 8
    worse = rows["dream_efficiency.feat_vs_grad"]
    assert worse.paper_id == "feat-matching-worse" and worse.judgement.diff == pytest.approx(-5.0, abs=0.01)
    assert worse.word == "reproduced"
    # no feature-matching arm, no Fig. 4b row; a feature-matching IDC still rising is untestable
    assert "dream_efficiency.iters_vs_idc_feat" not in by_id(claims.efficiency_claims(main, main))
    rising = curves({"idc+feat": RISING, "dreamplus": FAST}, iterations=iters)
    assert by_id(claims.efficiency_claims(main, rising))["dream_efficiency.iters_vs_idc_feat"].word == "untestable here"


def test_efficiency_guard_baseline_already_there_at_the_start():
    # IDC's curve never rises above its initialisation: a factor would read 0.00, the claim is untestable
    flat_start = curves({"idc": lambda it: 0.5 - 0.0001 * it, "dreamplus": FAST})
    r = by_id(claims.efficiency_claims(flat_start))["dream_efficiency.iters_vs_idc"]
    assert r.word == "untestable here" and "no progress" in r.judgement.reason
    assert "IDC's final snapshot − its first" in r.judgement.reason and "must move" not in r.judgement.reason


def test_flattened_needs_three_snapshots_in_the_last_quarter():
    flat, why = claims.flattened(curves({"idc": FLAT_IDC}, iterations=[0, 50, 100]), "idc")
    assert flat is None and "at least 3" in why


def test_stability_and_mmd_take_one_number_per_run():
    diag = pd.DataFrame([{"method": m, "seed": s, "step": st, "grad_diff": g + 0.01 * st, "feature_diff": g,
                          "batch_mmd": g / 10}
                         for m, g in (("idc", 1.0), ("dream", 0.8), ("dreamplus", 0.5)) for s in range(3)
                         for st in range(16)])
    mig = pd.DataFrame([{"method": m, "seed": s, "iteration": it, "migration": v / it}
                        for m, v in (("idc", 2.0), ("dreamplus", 1.0)) for s in range(3) for it in range(1, 9)])
    rows = by_id(claims.stability_claims(diag, mig))
    assert set(rows) == {"dream_stability.grad_diff_vs_idc", "dream_stability.grad_diff_vs_dream",
                         "dream_stability.feature_diff_vs_idc", "dream_stability.feature_diff_vs_dream",
                         "dream_stability.late_migration"}
    assert all(r.judgement.n == 3 for r in rows.values())          # 3 runs, not 48 steps
    assert rows["dream_stability.grad_diff_vs_idc"].judgement.diff == pytest.approx(-0.5)
    probe = pd.DataFrame([{"seed": s, "class": c, "kind": k, "mmd2": v + 0.001 * c}
                          for s in range(3) for c in range(10) for k, v in (("random", 0.02), ("representative", 0.01))])
    mmd = by_id(claims.mmd_claims(probe, diag))
    assert mmd["dream_why.mmd_probe"].judgement.n == 3 and mmd["dream_why.mmd_probe"].unit == "MMD² ×10⁻³"
    assert mmd["dream_why.mmd_during"].judgement.diff == pytest.approx(-20.0)


def test_cost_claims_equivalence_margin_and_guard():
    costs = pd.DataFrame([{"method": m, "seed": s, "iteration": it, "whole": w + 0.01 * s, "pretrain": p,
                           "image_update": u + 0.001 * s * (m == "dreamplus"), "clustering": c}
                          for m, w, p, u, c in (("idc", 0.2, 0.0, 0.15, 0.0), ("dream", 0.3, 0.0, 0.15, 0.05),
                                                ("dreamplus", 0.5, 0.2, 0.151, 0.05))
                          for s in range(6) for it in range(4)])
    costs.attrs["from_cache"] = []
    rows = by_id(claims.cost_claims(costs))
    assert rows["dream_cost.bm_overhead"].word == "equivalent"
    assert rows["dream_cost.bm_overhead"].judgement.margin == pytest.approx(0.015)
    # the inner loop leaves the one-off pretraining out: 0.3 vs 0.2 s
    assert rows["dream_cost.inner_loop_vs_idc"].judgement.diff == pytest.approx(0.1)


def test_ablation_leaves_dream_and_dreamplus_to_the_main_page():
    df = grid({"idc": 0.0, "idc+rm": 1.0, "idc+init": 0.5, "dream": 1.0, "dreamplus": 2.0}, ipcs=(10,))
    rows = by_id(claims.ablation_claims(df, 10, ["idc", "idc+rm", "idc+init", "dream", "dreamplus"]))
    assert list(rows) == ["dream_ablation.idc_rm_ipc10", "dream_ablation.idc_init_ipc10"]
    assert rows["dream_ablation.idc_rm_ipc10"].paper_id == "components-each-help"


def test_every_paper_claim_is_judged_or_explained():
    judged = {"iters-15x-gradient", "iters-40x-distribution", "components-each-help", "dreamplus-vs-dream-efficiency",
              "cluster-cost-cifar10", "bm-overhead-negligible", "time-saving-85", "fashion-vs-idc", "cross-arch",
              "subcluster-best", "samples-marginal", "dreamplus-over-dream-sampling", "representative-beats-random",
              "mmd-lower", "feature-migration", "gradient-difference", "feature-difference", "cluster-interval",
              "cluster-interval-efficiency", "tsne-coverage", "continual-learning", "continual-gap-widens",
              "dc-dsa-10x", "dc-dsa-gain", "center-vs-boundary", "tinyimagenet", "init-advantage",
              "feat-matching-worse"}
    ids = {c.id for c in paper.CLAIMS}
    assert judged | set(claims.UNTESTABLE) == ids
    assert set(claims.JUDGED_ON) == judged and set(claims.JUDGED_ON.values()) <= set(claims.PAGES)


def test_stability_and_cost_summaries():
    from dscore.studies import dreamplus

    diag = pd.DataFrame([{"label": m, "grad_diff": 1.0, "feature_diff": 2.0, "batch_mmd": 0.1, "step": s}
                         for m in ("IDC", "DREAM+") for s in range(4)])
    mig = pd.DataFrame([{"label": m, "iteration": it, "migration": float(it)} for m in ("IDC", "DREAM+")
                        for it in range(1, 5)])
    s = dreamplus.stability_summary(diag, mig)
    assert s.loc["IDC", "late migration"] == pytest.approx(3.5)          # iterations 3 and 4 of 4
    costs = pd.DataFrame([{"method": m, "label": m.upper(), "clustering": 0.0, "image_update": 0.1,
                           "network_update": 0.1, "pretrain": p, "whole": w}
                          for m, p, w in (("idc", 0.0, 0.2), ("dreamplus", 0.1, 0.3)) for _ in range(2)])
    table, ratio = dreamplus.cost_summary(costs)
    assert ratio == pytest.approx(1.5) and table.loc["IDC", "whole inner loop"] == "0.2\u00a0±\u00a00.0"
    assert dreamplus.cost_summary(costs[costs.method == "idc"])[1] is None


def test_dream_plus_one_addition_is_judged_against_dream():
    df = grid({"idc": 0.0, "dream": 1.0, "dream+bm": 1.8, "dream+pt": 1.0, "dreamplus": 2.0}, ipcs=(10,))
    rows = by_id(claims.ablation_claims(df, 10, ["idc", "dream", "dream+bm", "dream+pt", "dreamplus"]))
    assert list(rows) == ["dream_ablation.dream_bm_ipc10", "dream_ablation.dream_pt_ipc10"]
    bm, pt = rows["dream_ablation.dream_bm_ipc10"], rows["dream_ablation.dream_pt_ipc10"]
    assert "− DREAM at IPC 10" in bm.statement and bm.judgement.diff == pytest.approx(0.8, abs=0.15)
    assert "RM + Init + BM vs RM + Init" in bm.paper and bm.judgement.claimed is not None
    assert pt.judgement.claimed is None and pt.judgement.diff == pytest.approx(0.0, abs=0.15)


def test_dream_plus_bm_differs_from_dream_only_in_the_objective():
    from dscore.distill import preset

    dream, bm, pt = (preset(m, "fashion_mnist", 10).__dict__ for m in ("dream", "dream+bm", "dream+pt"))
    assert {k for k in dream if dream[k] != bm[k]} == {"objective"}
    assert {k for k in dream if dream[k] != pt[k]} == {"pretrain_real_epochs"}


def sampling_frame(accs, *, seeds=range(8), noise=0.0005, rng_seed=0):
    """DREAM+ rows of a sampling grid: ``accs`` = {(K, s): accuracy}, a distillation-seed effect shared by all."""
    rng = np.random.default_rng(rng_seed)
    return pd.DataFrame([{"method": "dreamplus", "subclusters": k, "samples": n, "seed": s, "eval_seed": e,
                          "acc": a + 0.02 * np.sin(s) + noise * rng.normal()}
                         for (k, n), a in accs.items() for s in seeds for e in range(2)])


def test_sampling_claims_judge_the_papers_shape_on_class_fraction_cells():
    # our K 2, 6, 12 stand for the paper's 32, 128, 256: the best at 6 (+3 over 2) and a drop at 12 (+0.8)
    g = sampling_frame({(2, 1): 0.674, (6, 1): 0.699, (12, 1): 0.696, (2, 4): 0.688})
    base = g[(g.subclusters == 2) & (g.samples == 1)].assign(method="idc", acc=lambda d: d.acc - 0.01)
    rows = by_id(claims.sampling_claims(g, base, default_cell=(32, 1), ipc=1, paper_k={2: 32, 6: 128, 12: 256}))
    peak, drop = rows["dream_sampling.peak_vs_fewest"], rows["dream_sampling.drop_after_peak"]
    assert peak.judgement.diff == pytest.approx(2.5, abs=0.15) and peak.judgement.claimed == pytest.approx(2.5)
    assert drop.judgement.diff == pytest.approx(0.3, abs=0.15) and drop.judgement.claimed == pytest.approx(0.3)
    assert peak.word == "reproduced" and "IPC 1" in peak.note
    assert "dream_sampling.default_vs_fewest" not in rows and "dream_sampling.samples_marginal" in rows
    # a drop that is not there: the peak row still holds, the drop row does not
    flat = sampling_frame({(2, 1): 0.674, (6, 1): 0.699, (12, 1): 0.71})
    rows = by_id(claims.sampling_claims(flat, base, default_cell=(32, 1), paper_k={2: 32, 6: 128, 12: 256}))
    assert rows["dream_sampling.drop_after_peak"].word == "contradicted"
    # cells the scaling made equal cannot judge the shape
    one = sampling_frame({(1, 1): 0.674})
    rows = by_id(claims.sampling_claims(one, base, default_cell=(32, 1), paper_k={1: 32}))
    assert rows["dream_sampling.peak_vs_fewest"].word == "untestable here"
    assert "no distinct cells" in rows["dream_sampling.drop_after_peak"].judgement.reason


def test_common_probe_and_fluctuation_claims():
    # the common probe: DREAM+ below DREAM and IDC on both differences, one number per distillation seed
    common = pd.DataFrame([{"method": m, "seed": s, "probe_seed": p, "class": c, "grad_diff": g + 0.01 * s + 0.001 * c,
                            "feature_diff": g / 2 + 0.01 * p}
                           for m, g in (("idc", 1.0), ("dream", 0.8), ("dreamplus", 0.5)) for s in range(3)
                           for p in range(2) for c in range(4)])
    diag = pd.DataFrame([{"method": m, "seed": s, "step": 0, "grad_diff": 1.0 + s, "feature_diff": 1.0, "batch_mmd": 0.1}
                         for m in ("idc", "dream", "dreamplus") for s in range(3)])
    mig = pd.DataFrame([{"method": m, "seed": s, "iteration": it, "migration": 1.0 + 0.1 * s}
                        for m in ("idc", "dreamplus") for s in range(3) for it in (1, 2)])
    rows = by_id(claims.stability_claims(diag, mig, common))
    p = rows["dream_stability.probe_grad_diff_vs_dream"]
    assert p.judgement.n == 3 and p.judgement.diff == pytest.approx(-0.3) and "common probe" in p.statement
    assert rows["dream_stability.probe_feature_diff_vs_idc"].judgement.diff == pytest.approx(-0.25)
    assert "dream_stability.probe_grad_diff_vs_idc" in rows and "dream_stability.grad_diff_vs_idc" in rows
    # Fig. 6d: the MMD trajectory, snapshots after the initialisation averaged inside a distillation seed
    traj = pd.DataFrame([{"method": m, "seed": s, "probe_seed": p, "iteration": it, "class": c,
                          "mmd2": (0.5 if it == 0 else v / it) + 0.01 * s}
                         for m, v in (("idc", 0.4), ("dream", 0.3), ("dreamplus", 0.2)) for s in range(3)
                         for p in range(2) for it in (0, 1, 2) for c in range(3)])
    rows = by_id(claims.stability_claims(diag, mig, common, traj))
    m = rows["dream_stability.mmd_vs_idc"]
    assert m.judgement.n == 3 and m.judgement.diff == pytest.approx((0.2 - 0.4) * 0.75)   # mean of 1/1 and 1/2
    assert rows["dream_stability.mmd_vs_dream"].judgement.claim_sign == -1
    assert "dream_stability.mmd_vs_idc" not in by_id(claims.stability_claims(diag, mig, common, None))
    # fluctuation: representative batches vary less from draw to draw than random ones
    rng = np.random.default_rng(0)
    probe = pd.DataFrame([{"seed": s, "class": c, "draw": d, "kind": k, "mmd2": v + sd * rng.normal()}
                          for s in range(8) for c in range(5) for d in range(6)
                          for k, v, sd in (("random", 0.02, 0.01), ("representative", 0.01, 0.002))])
    mmd = by_id(claims.mmd_claims(probe))
    f = mmd["dream_why.fluctuation"]
    assert f.judgement.n == 8 and f.judgement.diff < 0 and f.word == "reproduced"
    assert "dream_why.fluctuation" not in by_id(claims.mmd_claims(probe[probe.draw == 0]))   # one draw: no spread


def test_fig9_rows_for_dc_and_dsa():
    main = curves({"idc": FLAT_IDC, "dreamplus": FAST})
    other = curves({"dc": FLAT_IDC, "dc+rm+init+bm": FAST, "dsa": RISING, "dsa+rm+init+bm": FAST})
    rows = by_id(claims.efficiency_claims(main, None, other))
    dc = rows["dream_efficiency.dc_speedup"]
    assert dc.paper_id == "dc-dsa-10x" and dc.judgement.n == 8 and dc.judgement.claimed == pytest.approx(np.log(10))
    assert dc.judgement.diff > np.log(10)                            # FAST reaches DC's final within a snapshot
    assert rows["dream_efficiency.dsa_speedup"].word == "untestable here"          # DSA still rising
    gain = rows["dream_efficiency.dc_gain"]
    assert gain.paper_id == "dc-dsa-gain" and gain.judgement.diff == pytest.approx(2.0, abs=0.01)
    assert rows["dream_efficiency.dsa_gain"].judgement.diff == pytest.approx(82.0 - 70.0, abs=0.01)
    only_dc = by_id(claims.efficiency_claims(main, None, other[other.method.str.startswith("dc")]))
    assert "dream_efficiency.dsa_speedup" not in only_dc and "dream_efficiency.dc_gain" in only_dc


def test_region_claims_compare_centre_and_boundary_only_with_representative_batches():
    c = curves({"idc": FLAT_IDC, "idc+centre": lambda it: 0.6, "idc+boundary": lambda it: 0.7,
                "dream": lambda it: 0.82})
    rows = by_id(claims.region_claims(c))
    assert list(rows) == ["dream_why.centre_vs_representative", "dream_why.boundary_vs_representative"]
    assert rows["dream_why.centre_vs_representative"].judgement.diff == pytest.approx(-22.0)
    assert all(r.paper_id == "center-vs-boundary" and r.judgement.n == 8 for r in rows.values())
    assert rows["dream_why.boundary_vs_representative"].word == "reproduced"
    none = claims.region_claims(None)
    assert len(none) == 1 and none[0].word == "untestable here" and "region_seeds is empty" in none[0].judgement.reason


def test_tab2_rows_pair_dreamplus_with_dm_and_leave_mtt_untestable():
    df = grid({"dm": 0.0, "dreamplus": 11.1}, ipcs=(1, 10))
    rows = by_id(claims.tiny_claims(df, [10, 1]))
    assert list(rows) == ["dream_tiny.vs_dm_ipc1", "dream_tiny.vs_dm_ipc10", "dream_tiny.vs_mtt"]
    r = rows["dream_tiny.vs_dm_ipc10"]
    assert r.judgement.n == 8 and r.judgement.claimed == pytest.approx(24.0 - 12.9) and r.word == "reproduced"
    assert rows["dream_tiny.vs_dm_ipc1"].judgement.claimed == pytest.approx(10.5 - 3.9)
    assert rows["dream_tiny.vs_mtt"].word == "untestable here" and "MTT" in rows["dream_tiny.vs_mtt"].judgement.reason
    none = claims.tiny_claims(None, [1, 10, 50], reason="no TinyImageNet in this profile")
    assert {r.word for r in none} == {"untestable here"} and len(none) == 4
    assert none[0].judgement.reason == "no TinyImageNet in this profile"
