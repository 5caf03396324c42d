"""The ADQ chapter's claim functions on constructed runs: ids, units, pairing by seed, and the words they return."""
import math

import numpy as np
import pandas as pd
import pytest

from dscore.papers import adq as paper
from dscore.studies.adq import claims

ARCHS = ("ConvNet-3", "ResNet-18")
REF = {"reference": "ConvNet-3", "dm_distilled_on": ["ConvNet-3"]}


def runs(gain, *, seeds=range(8), noise=0.0, ratios=(0.1, 0.2, 0.3), dm=-10.0, shared=0.03, rng_seed=0, full=None):
    """Grid rows with a seed effect shared by every method (the pairing) and ADQ − DQ = ``gain`` points (both ADQ
    rows); ``full``: {arch: full-data accuracy offset} (default: every arch trains)."""
    rng = np.random.default_rng(rng_seed)
    rows = []
    for s in seeds:
        base = 0.6 + shared * np.sin(3 * s)
        for a in ARCHS:
            for r in ratios:
                for m, off in (("dq", 0.0), ("adq", gain / 100), ("adq_paper", gain / 100), ("dm", dm / 100),
                               ("graphcut", -0.01), ("adq_rs", gain / 200), ("adq_ds", gain / 150)):
                    rows.append({"method": m, "arch": a, "ratio": r, "seed": s,
                                 "acc": base + off + r / 10 + noise * rng.normal()})
            rows.append({"method": "full", "arch": a, "ratio": 1.0, "seed": s, "acc": base + (full or {}).get(a, 0.05)})
    return pd.DataFrame(rows)


def by_id(rows):
    return {r.id: r for r in rows}


def test_main_claims_ids_paper_ids_and_units():
    rows = by_id(claims.main_claims(runs(3.0), [0.1, 0.2, 0.3], ARCHS, **REF))
    assert list(rows) == ["adq_main.gain_avg", "adq_main.gain_avg_tuned", "adq_main.gain_10", "adq_main.gain_20",
                          "adq_main.gain_30", "adq_main.beats_dq_convnet_3", "adq_main.beats_dq_resnet_18",
                          "adq_main.dq_beats_dm", "adq_main.adq_beats_dm", "adq_main.adq_beats_graphcut",
                          "adq_main.gain_grows"]
    assert "β 0.6, T 1" in rows["adq_main.gain_avg"].statement
    assert "validation split" in rows["adq_main.gain_avg_tuned"].statement
    assert rows["adq_main.adq_beats_graphcut"].judgement.diff == pytest.approx(4.0)
    ids = {c.id for c in paper.CLAIMS}
    assert all(r.paper_id is None or r.paper_id in ids for r in rows.values())
    g = rows["adq_main.gain_avg"]
    assert g.unit == "points" and g.judgement.n == 8 and g.judgement.paired
    assert g.judgement.diff == pytest.approx(3.0) and g.judgement.claimed == 3.0
    assert rows["adq_main.gain_10"].judgement.claimed == 2.6


def test_main_claims_words_reproduced_weaker_and_not_reproduced():
    # a gain of 3 points with little noise: reproduced; 0.5 points: weaker than claimed; none: not reproduced
    assert by_id(claims.main_claims(runs(3.0, noise=0.002), [0.1, 0.2, 0.3], ARCHS, **REF))["adq_main.gain_avg"].word \
        == "reproduced"
    assert by_id(claims.main_claims(runs(0.5, noise=0.002), [0.1, 0.2, 0.3], ARCHS, **REF))["adq_main.gain_avg"].word \
        == "weaker than claimed"
    assert by_id(claims.main_claims(runs(0.0, noise=0.002), [0.1, 0.2, 0.3], ARCHS, **REF))["adq_main.gain_avg"].word \
        == "not reproduced"


def test_main_claims_contradicted_and_underpowered():
    assert by_id(claims.main_claims(runs(-2.0, noise=0.002), [0.1], ARCHS, **REF))["adq_main.gain_avg"].word \
        == "contradicted"
    noisy = by_id(claims.main_claims(runs(3.0, seeds=range(3), noise=0.1, rng_seed=1), [0.1], ARCHS, **REF))["adq_main.gain_avg"]
    assert noisy.word == "underpowered" and noisy.judgement.mde > 3.0 and noisy.judgement.p >= 0.25   # exact, n 3
    two = by_id(claims.main_claims(runs(3.0, seeds=range(2)), [0.1], ARCHS, **REF))["adq_main.gain_avg"]
    assert two.word == "underpowered" and two.judgement.n == 2


def test_the_seed_effect_is_paired_out():
    # a large shared seed effect: paired, a 1-point gain is clear; the spread of the arms alone would hide it
    df = runs(1.0, shared=0.2, noise=0.0005)
    g = by_id(claims.main_claims(df, [0.2], ARCHS, **REF))["adq_main.gain_avg"]
    assert g.judgement.p < 1e-3 and g.judgement.mde < 0.5


def test_an_architecture_that_does_not_train_is_shown_not_judged():
    df = runs(3.0, noise=0.002, full={"ResNet-18": -0.4})          # ResNet-18: 20 % on full data vs 65 %
    ok, why = claims.training_archs(df, ARCHS, reference="ConvNet-3")
    assert ok == ["ConvNet-3"] and "does not train at this scale" in why["ResNet-18"] and "90%" in why["ResNet-18"]
    rows = by_id(claims.main_claims(df, [0.1, 0.2, 0.3], ARCHS, **REF))
    skipped = rows["adq_main.beats_dq_resnet_18"]
    assert skipped.word == "untestable here" and "ResNet-18 reaches" in skipped.judgement.reason
    assert "(ConvNet-3)" in rows["adq_main.gain_avg"].statement
    # ResNet-18's rows do not enter the means: sabotage them and nothing changes
    bad = df.copy()
    bad.loc[(bad.arch == "ResNet-18") & (bad.method == "adq_paper"), "acc"] -= 0.3
    assert by_id(claims.main_claims(bad, [0.1, 0.2, 0.3], ARCHS, **REF))["adq_main.gain_avg"].judgement.diff == \
        pytest.approx(rows["adq_main.gain_avg"].judgement.diff)
    with pytest.raises(ValueError, match="reference='ConvNet-3'"):
        claims.main_claims(df[df.arch != "ConvNet-3"], [0.1], ["ResNet-18"], **REF)
    with pytest.raises(ValueError, match="arm='adq_paper' has no runs"):
        claims.main_claims(df[df.method != "adq_paper"], [0.1], ARCHS, **REF)


def test_missing_seed_in_one_arm_raises_instead_of_misaligning():
    df = runs(1.0)
    df = df[~((df.method == "dq") & (df.seed == 2))]
    with pytest.raises(ValueError, match="lacks|different seeds"):
        claims.main_claims(df, [0.1, 0.2, 0.3], ARCHS, **REF)


def test_low_ratio_lossless_is_an_equivalence_claim():
    df = runs(1.0, ratios=(0.05, 0.1, 0.6), noise=0.001)
    df.loc[(df.method == "adq") & (df.ratio == 0.6), "acc"] = df[df.method == "full"].groupby("seed").acc.mean().reindex(
        df[(df.method == "adq") & (df.ratio == 0.6)].seed).to_numpy()
    rows = by_id(claims.low_ratio_claims(df, "ConvNet-3", [0.05, 0.1, 0.6]))
    lossless = rows["adq_low_ratio.lossless"]
    assert lossless.word == "equivalent" and lossless.judgement.margin == claims.LOSSLESS_MARGIN
    assert "margin ±1" in lossless.note and lossless.paper_id == "lossless-60"
    worse = df.copy()
    worse.loc[(worse.method == "adq") & (worse.ratio == 0.6), "acc"] -= 0.05
    assert by_id(claims.low_ratio_claims(worse, "ConvNet-3", [0.05, 0.1, 0.6]))["adq_low_ratio.lossless"].word \
        == "not equivalent"
    assert rows["adq_low_ratio.beats_dq_low"].judgement.n == 8
    far = by_id(claims.low_ratio_claims(df[df.ratio != 0.6], "ConvNet-3", [0.05, 0.1]))["adq_low_ratio.lossless"]
    assert far.word == "untestable here" and "do not include 0.6" in far.judgement.reason


def test_ablation_claims():
    rows = by_id(claims.ablation_claims(runs(3.0, noise=0.001), [0.1, 0.2]))
    assert list(rows) == ["adq_ablation.rs_over_dq", "adq_ablation.ds_over_dq", "adq_ablation.is_over_dq",
                          "adq_ablation.ds_over_rs_10", "adq_ablation.ds_over_rs_20", "adq_ablation.is_over_rs",
                          "adq_ablation.is_over_ds"]
    assert rows["adq_ablation.rs_over_dq"].judgement.claimed == 1.41
    assert rows["adq_ablation.ds_over_rs_10"].word == "reproduced"       # +DS = 2, +RS = 1.5 points, each ratio
    is_dq = rows["adq_ablation.is_over_dq"]
    assert is_dq.judgement.claimed < 3.0 and is_dq.word == "stronger than claimed"    # 3 points, nearly no noise


def test_bins_claims_one_unit_per_feature_network():
    rows = []
    for seed in range(8):
        for k in range(8):
            rows.append({"seed": seed, "scope": "all", "bin": k, "rs": 1.0 - 0.05 * k + 0.01 * seed,
                         "ds": 0.1 * k, "is": -abs(k - 3.5) + 0.02 * seed})
    out = by_id(claims.bins_claims(pd.DataFrame(rows)))
    assert [r.word for r in out.values()] == ["reproduced"] * 3
    assert out["adq_bins.is_rise_fall"].paper_id == "importance-rise-fall" and out["adq_bins.rs_early"].judgement.n == 8


def test_texture_claims():
    rows = [{"seed": s, "student": st, "epoch": e, "distance": d * e + 0.01 * s}
            for s in range(8) for st, d in (("high", 0.1), ("medium", 0.2), ("low", 0.5)) for e in (1, 2)]
    out = claims.texture_claims(pd.DataFrame(rows))
    assert [r.id for r in out] == ["adq_texture.low_vs_high", "adq_texture.medium_vs_high", "adq_texture.low_vs_medium"]
    assert all(r.word == "reproduced" for r in out)


def test_beta_claims_and_the_shift_guard():
    rows = [{"beta": b, "seed": s, "ratio": r, "acc": 0.7 - (b - (0.6 if r == 0.1 else 0.8)) ** 2 + 0.001 * s}
            for b in (0.0, 0.6, 0.8, 1.0) for s in range(8) for r in (0.1, 0.3)]
    out = by_id(claims.beta_claims(pd.DataFrame(rows)))
    assert out["adq_beta.peak_over_0"].word == "reproduced"
    shift = out["adq_beta.peak_shift"]
    assert shift.judgement.diff == pytest.approx(0.2) and shift.unit == "β" and shift.judgement.test.startswith("exact")
    assert shift.word == "reproduced" and shift.judgement.p == pytest.approx(2 / 2 ** 8)
    three = by_id(claims.beta_claims(pd.DataFrame([r for r in rows if r["seed"] < 3])))["adq_beta.peak_shift"]
    assert three.word == "underpowered" and three.judgement.p == pytest.approx(0.25)      # never p 0 at n 3
    one = by_id(claims.beta_claims(pd.DataFrame([r for r in rows if r["ratio"] == 0.1])))
    assert one["adq_beta.peak_shift"].word == "untestable here" and "one keep ratio" in one["adq_beta.peak_shift"].judgement.reason
    no_peak = by_id(claims.beta_claims(pd.DataFrame([r for r in rows if r["beta"] != 0.6])))
    assert no_peak["adq_beta.peak_over_0"].word == "untestable here"


def test_pq_claims():
    rows = [{"method": m, "ratio": 0.1, "seed": s, "pq": pq, "acc": 0.6 + (0.02 if pq else 0.0) + 0.01 * s}
            for m in ("dq", "adq") for s in range(8) for pq in (False, True)]
    out = claims.pq_claims(pd.DataFrame(rows), [0.1])
    assert [r.id for r in out] == ["adq_pq.dq_pq_gain", "adq_pq.adq_pq_gain"]
    assert [r.word for r in out] == ["reproduced", "reproduced"] and out[0].judgement.diff == pytest.approx(2.0)


def test_cost_claims_guard_and_judgement():
    cost = pd.DataFrame([{"method": m, "stage": "all", "ratio": 0.1, "seed": s, "seconds": sec + 0.1 * s}
                         for m, sec in (("DQ", 2.0), ("ADQ", 3.0), ("DM", 300.0)) for s in range(6)])
    runs_ = runs(1.0, seeds=range(3), noise=0.01)
    cost.attrs["from_cache"] = ["distill_run"]
    out = by_id(claims.cost_claims(cost, runs_))
    assert out["adq_cost.adq_vs_dm"].word == "untestable here"
    assert "not timed in this build" in out["adq_cost.adq_vs_dm"].judgement.reason
    cost.attrs["from_cache"] = []
    out = by_id(claims.cost_claims(cost, runs_))
    j = out["adq_cost.adq_vs_dm"].judgement
    assert j.diff == pytest.approx(-297.0) and out["adq_cost.adq_vs_dm"].word == "stronger than claimed"  # 0.99 % < 1.1 %
    bars = out["adq_cost.error_bars"]
    assert bars.judgement.n == 2 * 3 and bars.word == "descriptive"       # architectures × keep ratios share seeds
    assert bars.judgement.p is None and "share seeds" in bars.judgement.reason
    few = cost[cost.seed < 2].copy()
    few.attrs["from_cache"] = []
    assert by_id(claims.cost_claims(few, runs_))["adq_cost.adq_vs_dm"].word == "untestable here"
    one_seed = by_id(claims.cost_claims(cost, runs_[runs_.seed == 0]))["adq_cost.error_bars"]
    assert one_seed.word == "untestable here" and "two seeds per cell; the runs have 1" in one_seed.judgement.reason


def test_every_paper_claim_is_judged_or_explained():
    judged = {"avg-gain-abstract", "gain-10", "gain-20", "gain-30", "beats-dq-every-arch", "gain-grows-with-ratio",
              "dq-adq-beat-dm", "lossless-60", "cost-vs-dm", "error-bars", "ablation-rs", "ablation-ds", "ablation-is",
              "ds-over-rs", "beta-peak", "beta-peak-shift", "texture-trajectory", "importance-rise-fall"}
    ids = {c.id for c in paper.CLAIMS}
    assert judged | set(claims.UNTESTABLE) == ids
    assert set(claims.JUDGED_ON) == judged and set(claims.JUDGED_ON.values()) <= set(claims.PAGES) and not judged & set(claims.UNTESTABLE)


def test_best_beta_table():
    from dscore.studies import adq

    rows = [{"arch": "x", "ratio": r, "beta": b, "seed": s, "acc": -(b - peak) ** 2}
            for r, peak in ((0.1, 0.6), (0.3, 1.0)) for b in (0.0, 0.6, 1.0) for s in range(2)]
    t = adq.best_beta(pd.DataFrame(rows))
    assert t.loc["x", 0.1] == 0.6 and t.loc["x", 0.3] == 1.0


def test_main_claims_pair_context_rows_on_the_seeds_they_ran():
    # the judged arms on six seeds, the context rows (DM, GraphCut, full data) on the first three
    df = runs(3.0, seeds=range(6))
    df = df[df.method.isin(["dq", "adq", "adq_paper"]) | (df.seed < 3)]
    rows = by_id(claims.main_claims(df, [0.1, 0.2, 0.3], ARCHS, **REF))
    assert rows["adq_main.gain_avg"].judgement.n == 6
    assert rows["adq_main.adq_beats_graphcut"].judgement.n == 3
    assert rows["adq_main.dq_beats_dm"].judgement.n == 3 and rows["adq_main.adq_beats_dm"].judgement.paired
    assert rows["adq_main.adq_beats_graphcut"].judgement.diff == pytest.approx(4.0)


def test_pq_claims_are_untestable_when_the_mae_refills_no_better_than_zeros():
    rows = [{"method": m, "ratio": r, "seed": s, "pq": pq, "acc": 0.7 - 0.09 * pq + 0.01 * s}
            for m in ("dq", "adq") for r in (0.1, 0.2) for s in range(3) for pq in (True, False)]
    df = pd.DataFrame(rows)
    good = pd.DataFrame([{"method": m, "ratio": r, "seed": s, "mae_error": 0.05, "mean_fill_error": 0.3,
                          "zero_fill_error": 0.2} for m in ("dq", "adq") for r in (0.1, 0.2) for s in range(3)])
    judged = by_id(claims.pq_claims(df, [0.1, 0.2], checks=good))
    assert judged["adq_pq.dq_pq_gain"].judgement.diff == pytest.approx(-9.0)
    assert judged["adq_pq.dq_pq_gain"].word != "untestable here"
    broken = good.assign(mae_error=0.25)                  # worse than filling with zeros
    rows = by_id(claims.pq_claims(df, [0.1, 0.2], checks=broken))
    r = rows["adq_pq.adq_pq_gain"]
    assert r.word == "untestable here" and "MAE 0.250, zeros 0.200" in r.judgement.reason
    assert r.judgement.diff == pytest.approx(-9.0)
    assert by_id(claims.pq_claims(df, [0.1, 0.2]))["adq_pq.adq_pq_gain"].word != "untestable here"   # no checks


def test_dq_minus_random_gates_every_adq_minus_dq_row_and_dm_is_judged_only_on_unseen_architectures():
    df = runs(1.0, noise=0.002)
    rnd = df[df.method == "dq"].assign(method="random")
    rows = by_id(claims.main_claims(pd.concat([df, rnd]), [0.1, 0.2, 0.3], ARCHS, **REF))
    assert rows["adq_main.dq_beats_random"].judgement.diff == pytest.approx(0.0, abs=0.01)
    gated = ["adq_main.gain_avg", "adq_main.gain_avg_tuned", "adq_main.gain_10", "adq_main.gain_30",
             "adq_main.beats_dq_convnet_3", "adq_main.beats_dq_resnet_18", "adq_main.gain_grows"]
    for key in gated:                         # the bins do not beat Random: no ADQ − DQ row is judged
        assert rows[key].word == "untestable here", key
        assert "gate failed — DQ − Random" in rows[key].judgement.reason and "re-weights DQ's bins" in rows[key].judgement.reason
    assert rows["adq_main.dq_beats_dm"].word != "untestable here"           # not an ADQ − DQ row
    better = by_id(claims.main_claims(pd.concat([df, rnd.assign(acc=rnd.acc - 0.03)]), [0.1, 0.2, 0.3], ARCHS, **REF))
    for key in gated:                         # DQ 3 points above Random on every seed: the rows are judged
        assert better[key].word != "untestable here" and "gate passed: DQ − Random" in better[key].note, key
    assert better["adq_main.gain_avg"].judgement.diff == pytest.approx(1.0, abs=0.05)   # noise 0.2 points
    unpaired = by_id(claims.main_claims(df, [0.1], ARCHS, **REF))           # no Random runs: no gate
    assert unpaired["adq_main.gain_avg"].word != "untestable here"
    dm = rows["adq_main.dq_beats_dm"]
    assert "not distilled on (ResNet-18)" in dm.statement          # ConvNet-3, DM's own network, is left out


    alone = df[df.arch == "ConvNet-3"]
    r = by_id(claims.main_claims(alone, [0.1], ["ConvNet-3"], **REF))["adq_main.adq_beats_dm"]
    assert r.word == "untestable here" and "distilled on ConvNet-3" in r.judgement.reason


def test_a_seed_with_a_missing_cell_is_dropped_from_both_arms_never_averaged_over_fewer_cells():
    from dscore.studies.adq.tables import per_unit

    df = runs(1.0, noise=0.002)
    df.loc[(df.method == "dq") & (df.seed == 2) & (df.ratio == 0.2) & (df.arch == "ConvNet-3"), "acc"] = float("nan")
    assert math.isnan(per_unit(df, "acc", method="dq", arch="ConvNet-3")[2])
    short = df[~((df.method == "adq_paper") & (df.seed == 3) & (df.ratio == 0.3))]
    assert math.isnan(per_unit(short, "acc", method="adq_paper")[3])                   # a row missing: NaN too
    g = by_id(claims.main_claims(df, [0.1, 0.2, 0.3], ARCHS, **REF))["adq_main.gain_avg"]
    assert g.judgement.n == 7 and "units [2] dropped from both arms" in g.note
