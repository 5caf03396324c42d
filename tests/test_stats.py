"""dscore.stats: judge against scipy, one constructed case per word, pairing, Holm, power, misaligned units."""
import math

import numpy as np
import pytest
from scipy import stats as ss

from dscore import stats
from dscore.stats import Judgement, holm, judge, mde, untestable


def units(values, start=0):
    return {start + i: float(v) for i, v in enumerate(values)}


# ------------------------------------------------------------------------------------------- against scipy

@pytest.mark.parametrize("seed", range(5))
def test_paired_p_and_interval_match_scipy_ttest_rel(seed):
    rng = np.random.default_rng(seed)
    a, b = rng.normal(1.0, 1.0, 6), rng.normal(0.5, 1.0, 6)
    j = judge(units(a), units(b))
    ref = ss.ttest_rel(a, b)
    assert j.p == pytest.approx(ref.pvalue, abs=1e-9)
    lo, hi = ref.confidence_interval(0.95)
    assert j.ci == pytest.approx((lo, hi), abs=1e-9)
    assert j.diff == pytest.approx(float(np.mean(a - b)), abs=1e-12)
    assert j.n == 6 and j.paired


@pytest.mark.parametrize("seed", range(5))
def test_unpaired_p_matches_scipy_welch(seed):
    rng = np.random.default_rng(100 + seed)
    a, b = rng.normal(1.0, 1.0, 5), rng.normal(0.0, 2.0, 7)
    j = judge(list(a), list(b), paired=False)
    ref = ss.ttest_ind(a, b, equal_var=False)
    assert j.p == pytest.approx(ref.pvalue, abs=1e-9)
    assert j.ci == pytest.approx(tuple(ref.confidence_interval(0.95)), abs=1e-9)
    assert j.n == 5 and not j.paired


def test_pairing_sees_what_welch_cannot():
    # a large shared unit effect (the network initialisation) hides a small consistent gain from Welch
    base = np.array([60.0, 70.0, 80.0, 65.0, 75.0])
    a, b = units(base + 1.0 + np.array([0.1, -0.1, 0.05, 0.0, -0.05])), units(base)
    paired, welch = judge(a, b), judge(a, b, paired=False)
    assert paired.p < 1e-4 and paired.word == "reproduced"
    assert welch.p > 0.5 and welch.word == "underpowered"
    assert paired.mde < 1.0 < welch.mde


def test_pairs_by_unit_id_not_by_position():
    a = {3: 10.0, 1: 5.0, 2: 7.0}
    b = {1: 4.0, 2: 6.0, 3: 9.0}          # every pair differs by exactly 1; by position the differences vary
    j = judge(a, b)
    assert j.diff == pytest.approx(1.0) and j.ci == (1.0, 1.0) and j.p == 0.0
    assert j.units == (1, 2, 3)


def test_misaligned_units_raise_naming_them():
    with pytest.raises(ValueError, match=r"a lacks \[4\], b lacks \[0\]"):
        judge({0: 1.0, 1: 2.0, 2: 3.0}, {1: 1.0, 2: 2.0, 4: 3.0})


# ------------------------------------------------------------------------------------------------ words

def test_reproduced_without_a_size():
    j = judge(units([2.1, 1.9, 2.0, 2.2]), units([0.0, 0.1, -0.1, 0.0]))
    assert j.word == "reproduced" and j.p < 0.05


def test_reproduced_with_the_size_in_reach():
    j = judge(units([3.1, 2.7, 3.0, 3.4]), units([0, 0, 0, 0]), claimed=3.0)
    assert j.word == "reproduced" and j.ci[1] >= 3.0


def test_weaker_than_claimed():
    j = judge(units([1.0, 1.1, 0.9, 1.05]), units([0, 0, 0, 0]), claimed=3.0)
    assert j.word == "weaker than claimed" and 0 < j.ci[0] and j.ci[1] < 3.0


def test_not_reproduced_rules_out_the_size():
    j = judge(units([0.1, -0.1, 0.2, -0.2, 0.05]), units([0, 0, 0, 0, 0]), claimed=3.0)
    assert j.word == "not reproduced" and j.ci[0] < 0 < j.ci[1] < 3.0


def test_contradicted():
    j = judge(units([-2.0, -2.2, -1.8, -2.1]), units([0, 0, 0, 0]), claimed=1.0)
    assert j.word == "contradicted"


def test_negative_claims_turn_the_interval():
    # "A is lower than B": a clearly lower A is reproduced, a clearly higher A contradicts
    assert judge(units([1.0, 1.1, 0.9]), units([2.0, 2.05, 1.95]), claim_sign=-1).word == "reproduced"
    assert judge(units([3.0, 3.1, 2.9]), units([2.0, 2.05, 1.95]), claim_sign=-1).word == "contradicted"
    w = judge(units([1.9, 1.95, 2.0]), units([2.0, 2.05, 1.95]), claim_sign=-1, claimed=-5.0)
    assert w.word == "not reproduced"


def test_underpowered_when_the_interval_holds_zero_and_the_size():
    j = judge(units([5.0, -4.0, 3.0, -2.0]), units([0, 0, 0, 0]), claimed=3.0)
    assert j.word == "underpowered" and j.ci[0] < 0 and j.ci[1] > 3.0
    assert j.mde is not None and j.mde > 3.0


def test_underpowered_with_fewer_than_three_units():
    j = judge(units([5.0, 6.0]), units([0.0, 0.0]), claimed=1.0)
    assert j.word == "underpowered" and j.p is None and "fewer than 3 units" in j.reason and j.n == 2
    # two units: the interval and the MDE (df = 1) are shown, nothing is judged
    assert j.ci == pytest.approx(tuple(ss.ttest_rel([5.0, 6.0], [0.0, 0.0]).confidence_interval(0.95)))
    assert j.mde > 10 * 0.5                     # sixteen standard errors at df = 1
    one = judge(units([5.0]), units([0.0]))
    assert one.word == "underpowered" and one.ci is None and one.mde is None and one.diff == 5.0


def test_equivalent_not_equivalent_and_underpowered():
    eq = judge(units([0.1, -0.1, 0.05, 0.0, -0.05]), units([0, 0, 0, 0, 0]), margin=1.0)
    assert eq.word == "equivalent" and -1 < eq.ci90[0] and eq.ci90[1] < 1
    far = judge(units([3.0, 3.1, 2.9, 3.05]), units([0, 0, 0, 0]), margin=1.0)
    assert far.word == "not equivalent"
    wide = judge(units([2.0, -2.0, 1.5, -1.0]), units([0, 0, 0, 0]), margin=1.0)
    assert wide.word == "underpowered"


def test_tost_p_is_the_larger_one_sided_scipy_p():
    a = np.array([0.3, -0.2, 0.1, 0.4, 0.0])
    b = np.zeros(5)
    j = judge(units(a), units(b), margin=1.0)
    p_lo = ss.ttest_rel(a, b - 1.0, alternative="greater").pvalue
    p_hi = ss.ttest_rel(a, b + 1.0, alternative="less").pvalue
    assert j.p == pytest.approx(max(p_lo, p_hi), abs=1e-12)


def test_untestable_needs_a_reason():
    j = untestable("the baseline has not flattened")
    assert j.word == "untestable here" and j.kind == "guard" and j.p is None
    with pytest.raises(ValueError):
        untestable("")


def test_every_word_is_known():
    assert set(stats.DIRECTION_WORDS) | set(stats.EQUIVALENCE_WORDS) | {"untestable here"} == set(stats.WORDS)


# ------------------------------------------------------------------------------------------------ power

def test_mde_has_eighty_percent_power_by_scipy_noncentral_t():
    se, df = 0.7, 4.0
    d = mde(se, df)
    crit = ss.t.ppf(0.975, df)
    power = ss.nct.sf(crit, df, d / se) + ss.nct.cdf(-crit, df, d / se)
    assert power == pytest.approx(0.8, abs=1e-9)


def test_mde_shrinks_with_more_units():
    rng = np.random.default_rng(0)
    noise = rng.normal(0, 1, 40)
    small = judge(units(noise[:4]), units(np.zeros(4)))
    large = judge(units(noise), units(np.zeros(40)))
    assert large.mde < small.mde


def test_mde_edge_cases():
    assert mde(0.0, 3) == 0.0
    assert mde(1.0, 0) is None


# ------------------------------------------------------------------------------------------------- Holm

def test_holm_on_a_known_family():
    ps = [0.01, 0.04, 0.03, 0.005]
    fam = [Judgement("reproduced", 1.0, (0.5, 1.5), p, None, 0.3, 5, "", ci90=(0.6, 1.4)) for p in ps]
    out = holm(fam)
    # sorted: 0.005, 0.01, 0.03, 0.04 → ×4, ×3, ×2, ×1 → 0.02, 0.03, 0.06, 0.06 (monotone)
    assert [j.p_adj for j in out] == pytest.approx([0.03, 0.06, 0.06, 0.02])
    assert [j.word for j in out] == ["reproduced", "underpowered", "underpowered", "reproduced"]
    assert [j.p for j in out] == ps


def test_holm_matches_statsmodels_definition_on_random_families():
    rng = np.random.default_rng(3)
    for _ in range(20):
        ps = rng.uniform(0, 0.2, rng.integers(1, 9)).tolist()
        fam = [Judgement("underpowered", 0.0, (-1, 1), p, None, 1.0, 3, "", ci90=(-0.5, 0.5)) for p in ps]
        got = [j.p_adj for j in holm(fam)]
        m = len(ps)
        order = np.argsort(ps)
        want = np.empty(m)
        running = 0.0
        for rank, i in enumerate(order):
            running = max(running, min(1.0, (m - rank) * ps[i]))
            want[i] = running
        assert got == pytest.approx(want.tolist())


def test_holm_leaves_untestable_and_small_rows_alone_and_redecides_equivalence():
    eq = judge(units([0.1, -0.1, 0.05, 0.0, -0.05]), units([0] * 5), margin=1.0)
    few = judge(units([1.0, 2.0]), units([0.0, 0.0]))
    guard = untestable("no page")
    strong = judge(units([2.1, 1.9, 2.0, 2.2]), units([0.0, 0.1, -0.1, 0.0]))
    out = holm([eq, few, guard, strong])
    assert out[1] == few and out[2] == guard
    lo, hi = sorted((eq.p, strong.p))
    want = {lo: min(1.0, 2 * lo), hi: max(min(1.0, 2 * lo), hi)}
    assert out[0].p_adj == pytest.approx(want[eq.p]) and out[3].p_adj == pytest.approx(want[strong.p])
    assert out[0].word == "equivalent" and out[3].word == "reproduced"


def test_judge_rejects_bad_arguments():
    with pytest.raises(ValueError, match="claim_sign"):
        judge([1, 2, 3], [1, 2, 3], claim_sign=0)
    with pytest.raises(ValueError, match="opposite sign"):
        judge([1, 2, 3], [1, 2, 3], claimed=-1.0)
    with pytest.raises(ValueError, match="margin"):
        judge([1, 2, 3], [1, 2, 3], margin=-1.0)
    with pytest.raises(ValueError, match="not finite"):
        judge([1, math.nan, 3], [1, 2, 3])
    with pytest.raises(ValueError, match="alpha"):
        judge([1, 2, 3], [1, 2, 3], alpha=0.7)


def test_judgement_round_trips_through_a_dict():
    j = judge(units([1.0, 2.0, 3.5]), units([0.5, 1.0, 2.0]), claimed=1.0)
    assert Judgement.from_dict(j.as_dict()) == Judgement.from_dict(j.as_dict())
    back = Judgement.from_dict(j.as_dict())
    assert back.word == j.word and back.ci == pytest.approx(j.ci) and back.units == tuple(str(u) for u in j.units)


def test_a_round_off_difference_is_no_difference():
    a = [0.1 + 0.2, 0.3 + 0.6, 0.4 + 0.8]
    b = [0.3, 0.9, 1.2]
    j = judge(units(a), units(b))
    assert j.diff == 0.0 and j.p == 1.0 and j.word == "underpowered"
