"""dscore.stats: judge against scipy and statsmodels, one constructed case per word, exact tests at small n,
the family (Holm–Shaffer) deciding words and intervals together, censoring, and each case the verdict review
reproduced (numbered as in the review)."""
import math

import numpy as np
import pytest
from scipy import stats as ss
from statsmodels.stats.multitest import multipletests
from statsmodels.stats.power import TTestPower
from statsmodels.stats.weightstats import ttost_paired

from dscore import stats
from dscore.stats import Judgement, family, judge, mde, shaffer, untestable


def units(values, start=0):
    return {start + i: float(v) for i, v in enumerate(values)}


def word_from_interval(j: Judgement) -> str:
    """The word a reader would read off the interval shown (and its MDE): the rule of the module docstring."""
    lo, hi = j.ci
    S = j.size
    if j.margin is not None:
        if -S < lo and hi < S:
            return "equivalent"
        if lo > S or hi < -S:
            return "not equivalent"
    else:
        lo, hi = sorted((j.claim_sign * lo, j.claim_sign * hi))
        if hi < 0:
            return "contradicted"
        if lo > 0:
            if j.claimed in (None, 0):
                return "reproduced"
            return "stronger than claimed" if lo > S else "weaker than claimed" if hi < S else "reproduced"
        if hi < S:
            return "not reproduced"
    powered = j.mde is not None and math.isfinite(j.mde) and j.mde <= S
    return "inconclusive" if powered else "underpowered"


# ------------------------------------------------------------------------------------------- against scipy

@pytest.mark.parametrize("seed", range(5))
def test_paired_p_and_interval_match_scipy_ttest_rel(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(1.0, 1.0, 6), rng.normal(0.5, 1.0, 6)
    j = judge(units(a), units(b), sesoi=1.0)
    ref = ss.ttest_rel(a, b)
    assert j.p == pytest.approx(ref.pvalue, abs=1e-9) and j.test == "paired t"
    assert j.ci == pytest.approx(tuple(ref.confidence_interval(0.95)), abs=1e-9) == j.ci_raw
    assert j.p_size == pytest.approx(ss.ttest_rel(a, b + 1.0).pvalue, abs=1e-9)
    assert j.diff == pytest.approx(float(np.mean(a - b)), abs=1e-12)
    assert j.n == 6 and j.paired


@pytest.mark.parametrize("seed", range(5))
def test_unpaired_p_matches_scipy_welch(seed):
    rng = np.random.default_rng(100 + seed)
    a, b = rng.normal(1.0, 1.0, 6), rng.normal(0.0, 2.0, 8)
    j = judge(list(a), list(b), paired=False, sesoi=1.0)
    ref = ss.ttest_ind(a, b, equal_var=False)
    assert j.p == pytest.approx(ref.pvalue, abs=1e-9) and j.test == "Welch t"
    assert j.ci == pytest.approx(tuple(ref.confidence_interval(0.95)), abs=1e-9)
    assert j.n == 6 and not j.paired


def test_pairing_sees_what_welch_cannot():
    # a large shared unit effect (the network initialisation) hides a small consistent gain from Welch
    base = np.array([60.0, 70.0, 80.0, 65.0, 75.0, 68.0])
    a, b = units(base + 1.0 + np.array([0.1, -0.1, 0.05, 0.0, -0.05, 0.02])), units(base)
    paired, welch = judge(a, b, sesoi=0.5), judge(a, b, paired=False, sesoi=0.5)
    assert paired.p < 1e-4 and paired.word == "reproduced"
    assert welch.p > 0.5 and welch.word == "underpowered"
    assert paired.mde < 1.0 < welch.mde


def test_pairs_by_unit_id_not_by_position():
    a = {3: 10.0, 1: 5.0, 2: 7.0, 4: 3.0, 5: 2.0, 6: 1.0}
    b = {1: 4.0, 2: 6.0, 3: 9.0, 4: 2.0, 5: 1.0, 6: 0.0}   # every pair differs by exactly 1
    j = judge(a, b, sesoi=0.5)
    assert j.diff == pytest.approx(1.0) and j.units == (1, 2, 3, 4, 5, 6)
    assert j.test.startswith("exact sign-flip") and j.p == pytest.approx(2 / 64)


def test_misaligned_units_raise_naming_them():
    with pytest.raises(ValueError, match=r"a lacks \[4\], b lacks \[0\]"):
        judge({0: 1.0, 1: 2.0, 2: 3.0}, {1: 1.0, 2: 2.0, 4: 3.0}, sesoi=1)


# ------------------------------------------------------------------------------------ against statsmodels

def test_shaffer_with_one_hypothesis_per_claim_is_statsmodels_holm():
    rng = np.random.default_rng(3)
    for _ in range(40):
        ps = rng.uniform(0, 0.1, rng.integers(1, 12)).tolist()
        adj, rej, level = shaffer(ps, list(range(len(ps))))
        want_rej, want_adj, _, _ = multipletests(ps, alpha=0.05, method="holm")
        assert adj == pytest.approx(want_adj.tolist()) and rej == want_rej.tolist()
        assert all(p < level for p, r in zip(ps, rej) if r) and all(p >= level for p, r in zip(ps, rej) if not r)


def test_shaffer_counts_each_claim_once_and_is_never_weaker_than_holm():
    rng = np.random.default_rng(4)
    for _ in range(40):
        m = int(rng.integers(1, 8))
        ps = rng.uniform(0, 0.05, 2 * m).tolist()
        owners = [i // 2 for i in range(2 * m)]
        adj, rej, level = shaffer(ps, owners)
        holm_rej = multipletests(ps, alpha=0.05, method="holm")[0]
        assert all(r or not h for r, h in zip(rej, holm_rej))            # everything Holm rejects, Shaffer does
        first = min(ps)
        assert (first < 0.05 / m) == rej[ps.index(first)]                # the first step divides by m claims, not 2m
        assert all(p < level for p, r in zip(ps, rej) if r) and all(p >= level for p, r in zip(ps, rej) if not r)


@pytest.mark.parametrize("seed", range(6))
def test_tost_p_matches_statsmodels_ttost_paired(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(0.1, 0.5, 8), rng.normal(0.0, 0.5, 8)
    j = judge(units(a), units(b), margin=0.6)
    p, _, _ = ttost_paired(a, b, -0.6, 0.6)
    assert j.p == pytest.approx(p, abs=1e-9)


@pytest.mark.parametrize("n,level", [(6, 0.05), (8, 0.01), (12, 0.002)])
def test_mde_has_eighty_percent_power_by_statsmodels(n, level):
    rng = np.random.default_rng(n)
    d = rng.normal(0.3, 1.0, n)
    sd = d.std(ddof=1)
    got = mde(sd / math.sqrt(n), n - 1, alpha=level)
    power = TTestPower().power(effect_size=got / sd, nobs=n, alpha=level, alternative="two-sided")
    assert power == pytest.approx(0.8, abs=1e-6)


# ------------------------------------------------------------------------------------------------ words

def test_one_constructed_case_per_direction_word():
    rng = np.random.default_rng(1)
    noise = rng.normal(0, 1, 12)
    noise -= noise.mean()
    zero = np.zeros(12)

    def at(shift, spread, **kw):
        return judge(units(shift + spread * noise), units(zero), **kw)

    assert at(1.0, 0.1, claimed=1.0).word == "reproduced"
    assert at(3.0, 0.1, claimed=1.0).word == "stronger than claimed"
    assert at(0.5, 0.1, claimed=2.0).word == "weaker than claimed"
    assert at(0.0, 0.1, claimed=2.0).word == "not reproduced"
    assert at(-1.0, 0.1, claimed=1.0).word == "contradicted"
    assert judge(*_shifted(0.505, 1.0, 12, 0), claimed=1.01).word == "inconclusive"  # MDE 0.89 < 1.01 ⊂ CI
    assert at(0.5, 5.0, claimed=1.0).word == "underpowered"
    assert at(1.0, 0.1, sesoi=5.0).word == "reproduced"              # a sign claim: the sign is what is claimed
    assert set(stats.DEFINITIONS) == set(stats.WORDS)


def test_every_word_matches_its_interval_on_random_claims():
    rng = np.random.default_rng(7)
    seen = set()
    for _ in range(300):
        n = int(rng.integers(2, 14))
        a = rng.normal(rng.normal(0, 1.5), rng.uniform(0.05, 2), n)
        kw = [dict(claimed=float(rng.uniform(0.2, 3))), dict(sesoi=float(rng.uniform(0.2, 2))),
              dict(margin=float(rng.uniform(0.2, 2)))][int(rng.integers(0, 3))]
        j = judge(units(a), units(np.zeros(n)), **kw)
        assert j.word == word_from_interval(j), (j.word, j.ci, j.reason)
        seen.add(j.word)
    assert {"reproduced", "not reproduced", "underpowered", "equivalent"} <= seen


def test_equivalent_not_equivalent_and_the_rest():
    rng = np.random.default_rng(2)
    small = rng.normal(0, 0.05, 10)
    assert judge(units(small), units(np.zeros(10)), margin=1.0).word == "equivalent"
    assert judge(units(small + 3), units(np.zeros(10)), margin=1.0).word == "not equivalent"
    assert judge(units(rng.normal(0, 3, 10)), units(np.zeros(10)), margin=1.0).word == "underpowered"


def test_untestable_and_descriptive_need_reasons():
    with pytest.raises(ValueError, match="reason"):
        untestable("")
    j = judge(units([1.0, 2.0, 3.0, 1.5, 2.5, 2.0]), units([0.0] * 6), sesoi=1.0)
    d = stats.descriptive(j, "the cells share seeds")
    assert d.word == "descriptive" and d.p is None and d.ci == j.ci_raw and "share seeds" in d.reason
    with pytest.raises(ValueError):
        stats.descriptive(j, "")


# ---------------------------------------------------------------------------------- the review's cases

def test_case1_zero_spread_at_three_seeds_is_no_evidence():
    # three seeds that all move the best β from 0.3 to 0.6: before, "reproduced", CI [0.3, 0.3], p 0, MDE 0
    j = judge({0: 0.6, 1: 0.6, 2: 0.6}, {0: 0.3, 1: 0.3, 2: 0.3}, sesoi=0.1, discrete=True)
    assert j.p == pytest.approx(0.25) and j.min_p == pytest.approx(0.25)      # the smallest sign-flip p at n = 3
    assert j.word == "underpowered" and math.isinf(j.mde) and j.ci == (-math.inf, math.inf)
    # identical zero differences: never "underpowered with MDE 0"
    z = judge(units([0.4] * 3), units([0.4] * 3), sesoi=0.1)
    assert z.word == "underpowered" and z.mde != 0
    z8 = judge(units([0.4] * 8), units([0.4] * 8), sesoi=0.1)          # eight exact ties: a tight null
    assert z8.word == "not reproduced" and z8.mde is None and z8.ci == pytest.approx((0.0, 0.0))
    # p is never below what n permits, whatever the test
    for n in range(2, 6):
        j = judge(units(np.arange(n) + 5.0), units(np.zeros(n)), sesoi=1.0)
        assert j.p >= 2 / 2 ** n - 1e-12 and j.test.startswith("exact")


def _shifted(shift, sd, n, seed):
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, n)
    x = (x - x.mean()) / x.std(ddof=1)
    return units(shift + sd * x), units(np.zeros(n))


def test_case2_the_family_changes_word_interval_and_reason_together():
    # the review's row: CI [0.21, 0.96] with claimed 0.8, in a family of 10
    n, target = 8, (0.21, 0.96)
    half = (target[1] - target[0]) / 2
    sd = half / ss.t.ppf(0.975, n - 1) * math.sqrt(n)
    a, b = _shifted(sum(target) / 2, sd, n, 0)
    row = judge(a, b, claimed=0.8)
    assert row.ci == pytest.approx(target, abs=1e-9) and row.word == "reproduced"
    fam = [row] + [judge(*_shifted(0.0, 1.0, n, s), claimed=0.8) for s in range(1, 10)]
    out = family(fam)
    got = out[0]
    assert got.level < 0.05 and got.ci[0] < 0 < got.ci[1]        # the interval shown is the wider one ...
    assert got.word == word_from_interval(got)                  # ... and the word is read off it
    assert f"[{got.ci[0]:.3g}".replace("-", "−") in got.reason or f"{got.ci[0]:.3g}" in got.reason
    for j in out:
        assert j.word == word_from_interval(j)


def test_case3_size_tests_are_in_the_family():
    # ten claims each ruling out the claimed 1.0 unadjusted, but not at the family's level
    fam = []
    for s in range(10):
        a, b = _shifted(0.3, 0.75, 8, s)
        j = judge(a, b, claimed=1.0)
        assert j.word == "not reproduced" and 0.01 < j.p_size < 0.05
        fam.append(j)
    out = family(fam)
    assert all(j.word in ("underpowered", "inconclusive") for j in out)
    assert all(j.p_size_adj >= 0.05 for j in out)


def test_case4_the_mde_is_at_the_level_used_and_power_without_a_verdict_is_inconclusive():
    a, b = _shifted(0.4, 1.0, 6, 1)
    fam = [judge(a, b, sesoi=1.0)] + [judge(*_shifted(0.1, 1.0, 6, s), sesoi=1.0) for s in range(2, 30)]
    out = family(fam)
    se, df = 1.0 / math.sqrt(6), 5
    assert out[0].mde == pytest.approx(mde(se, df, alpha=out[0].level))
    assert out[0].mde > 2 * fam[0].mde                            # 3.11 SD at the first step vs 1.43 unadjusted
    # a design with power (MDE 0.88 < claimed 1.0) whose interval holds 0 and 1.0: inconclusive, not underpowered
    j = judge(*_shifted(0.505, 1.0, 12, 3), claimed=1.01)
    assert j.mde == pytest.approx(0.88, abs=0.02) and j.ci[0] < 0 < 1.01 < j.ci[1]
    assert j.word == "inconclusive" and "could see it" in j.reason


def test_case5_a_tight_null_on_a_sign_claim_is_not_reproduced():
    a, b = _shifted(0.0, 0.0135, 6, 5)              # CI about [−0.014, +0.014], MDE about 0.019, n 6
    j = judge(a, b, sesoi=1.0)
    assert j.ci == pytest.approx((-0.0142, 0.0142), abs=1e-3) and j.mde == pytest.approx(0.0193, abs=2e-3)
    assert j.word == "not reproduced"


def test_case6_censored_values_are_judged_only_where_the_bounds_are_safe():
    ln = np.log([20.0, 22.0, 25.0, 21.0, 24.0, 23.0, 26.0, 20.5])
    a, b = units(ln), units(np.zeros(8))
    plain = judge(a, b, claimed=math.log(15.0), discrete=True)
    assert plain.word in ("reproduced", "stronger than claimed")
    # two units never reached the target: their factors are upper bounds; "beats 15×" is not safe
    upper = judge(a, b, claimed=math.log(15.0), discrete=True, censored={0: -1, 3: -1})
    assert upper.word == "untestable here" and "bounds" in upper.reason
    # the same bounds are safe for "not reproduced" (the truth is smaller still)
    low = units(np.log([2.0, 2.2, 2.1, 1.9, 2.05, 2.15, 2.0, 2.1]))
    j = judge(low, b, claimed=math.log(15.0), discrete=True, censored={0: -1})
    assert j.word == "weaker than claimed" or j.word == "not reproduced"
    # lower bounds make "reproduced" safe; too many bounds: untestable
    assert judge(a, b, claimed=math.log(15.0), discrete=True, censored={1: +1}).word == plain.word
    many = judge(a, b, claimed=math.log(15.0), discrete=True, censored={u: +1 for u in range(5)})
    assert many.word == "untestable here" and "too many" in many.reason


def test_case9_an_interval_above_the_claimed_size_is_stronger_than_claimed():
    a, b = _shifted(3.035, 0.137, 8, 9)             # CI about [2.92, 3.15] vs claimed 1
    j = judge(a, b, claimed=1.0)
    assert j.ci == pytest.approx((2.92, 3.15), abs=0.01) and j.word == "stronger than claimed"


def test_rows_that_no_test_can_decide_stay_out_of_the_family():
    few = judge(units([1.0, 2.0, 1.5]), units([0.0] * 3), sesoi=1.0)      # exact, n 3: smallest p 0.25
    strong = judge(*_shifted(2.0, 0.2, 8, 1), claimed=2.0)
    guard = untestable("no page")
    out = family([few, strong, guard])
    assert out[2] == guard and out[0].p_adj is None and "takes no part" in out[0].reason
    assert out[1].level == pytest.approx(0.05 / 1) or out[1].level <= 0.05
    assert out[1].p_adj == pytest.approx(strong.p)                         # one claim in the family
    assert out[0].word == "underpowered" and out[0].ci == (-math.inf, math.inf)


def test_the_family_decides_equivalence_with_the_same_interval():
    rng = np.random.default_rng(11)
    eq = judge(units(rng.normal(0, 0.05, 10)), units(np.zeros(10)), margin=1.0)
    other = [judge(*_shifted(0.2, 1.0, 8, s), sesoi=1.0) for s in range(5)]
    out = family([eq] + other)
    assert out[0].word == "equivalent" and out[0].ci_level == pytest.approx(1 - 2 * out[0].level)
    assert all(j.word == word_from_interval(j) for j in out)


@pytest.mark.parametrize("seed", range(8))
def test_random_families_show_intervals_that_exclude_exactly_what_was_rejected(seed):
    rng = np.random.default_rng(seed)
    fam = []
    for _ in range(int(rng.integers(2, 15))):
        n = int(rng.integers(6, 14))
        a = rng.normal(rng.normal(0, 2), rng.uniform(0.1, 1.5), n)
        kw = [dict(claimed=float(rng.uniform(0.5, 3))), dict(sesoi=1.0), dict(margin=1.0)][int(rng.integers(0, 3))]
        fam.append(judge(units(a), units(np.zeros(n)), **kw))
    out = family(fam)
    levels = {j.level for j in out}
    assert len(levels) == 1
    for j in out:
        assert j.word == word_from_interval(j), (j.word, j.ci, j.reason)
        assert (j.p_adj < 0.05) == (j.p < j.level)


def test_judge_rejects_bad_arguments():
    with pytest.raises(ValueError, match="claim_sign"):
        judge([1, 2, 3], [1, 2, 3], claim_sign=0, sesoi=1)
    with pytest.raises(ValueError, match="opposite sign"):
        judge([1, 2, 3], [1, 2, 3], claimed=-1.0)
    with pytest.raises(ValueError, match="margin"):
        judge([1, 2, 3], [1, 2, 3], margin=-1.0)
    with pytest.raises(ValueError, match="not finite"):
        judge([1, math.nan, 3], [1, 2, 3], sesoi=1)
    with pytest.raises(ValueError, match="alpha"):
        judge([1, 2, 3], [1, 2, 3], alpha=0.7, sesoi=1)
    with pytest.raises(ValueError, match="sesoi"):
        judge([1, 2, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="censored"):
        judge([1, 2, 3], [1, 2, 3], sesoi=1, censored={9: 1})


def test_judgement_round_trips_through_a_dict():
    for j in (judge(units([1.0, 2.0, 3.5]), units([0.5, 1.0, 2.0]), claimed=1.0),
              judge(units(np.arange(8.0)), units(np.zeros(8)), sesoi=1.0)):
        back = Judgement.from_dict(j.as_dict())
        assert back.word == j.word and back.ci == pytest.approx(j.ci) and back.units == tuple(str(u) for u in j.units)
        assert back.mde == j.mde or (math.isinf(back.mde) and math.isinf(j.mde))
        assert family([back])[0].word == family([j])[0].word


def test_a_round_off_difference_is_no_difference():
    a = [0.1 + 0.2, 0.3 + 0.6, 0.4 + 0.8]
    b = [0.3, 0.9, 1.2]
    j = judge(units(a), units(b), sesoi=1.0)
    assert j.diff == 0.0 and j.p == 1.0 and j.word == "underpowered"


def test_the_readme_defines_every_word_in_its_own_sentence():
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    for word, sentence in stats.DEFINITIONS.items():
        assert f"- `{word}`: {sentence}" in readme, word
