"""dscore.report: the Student-t distribution, Welch's test, verdicts, paper gaps and speed-up factors."""
import math

import numpy as np
import pytest
import torch

from dscore import report
from dscore.report import (VERDICTS, Speedup, Verdict, bootstrap_diff, paper_gap, speedup_factor, student_t_cdf,
                           student_t_ppf, verdict, welch_test)


# --------------------------------------------------------------------------- Student t

# Two-sided 95 % (upper 0.975) and upper 0.995 / 0.95 quantiles from standard t tables.
TABULATED = [(0.975, 1, 12.706), (0.975, 2, 4.303), (0.975, 3, 3.182), (0.975, 4, 2.776), (0.975, 5, 2.571),
             (0.975, 10, 2.228), (0.975, 20, 2.086), (0.975, 30, 2.042), (0.975, 120, 1.980),
             (0.95, 10, 1.812), (0.995, 10, 3.169), (0.995, 5, 4.032), (0.9995, 10, 4.587), (0.9, 3, 1.638)]


@pytest.mark.parametrize("q,df,t", TABULATED)
def test_t_quantiles_match_the_tables(q, df, t):
    assert student_t_ppf(q, df) == pytest.approx(t, abs=6e-4)
    assert student_t_cdf(t, df) == pytest.approx(q, abs=2e-4)
    assert student_t_ppf(1 - q, df) == pytest.approx(-t, abs=6e-4)


def test_t_cdf_closed_forms():
    # df = 1 is Cauchy: F(t) = 1/2 + atan(t)/π; df = 2: F(t) = 1/2 + t / (2 sqrt(2 + t²)).
    for t in (-30.0, -2.5, -0.3, 0.0, 0.7, 4.0, 100.0):
        assert student_t_cdf(t, 1) == pytest.approx(0.5 + math.atan(t) / math.pi, abs=1e-13)
        assert student_t_cdf(t, 2) == pytest.approx(0.5 + t / (2 * math.sqrt(2 + t * t)), abs=1e-13)
    # Large df tends to the normal distribution.
    assert student_t_cdf(1.959964, 1e7) == pytest.approx(0.975, abs=1e-6)
    assert student_t_ppf(0.5, 7) == 0.0


def test_t_matches_scipy_where_available():
    stats = pytest.importorskip("scipy.stats")
    for df in (1, 2.5, 4, 9.3, 30, 200):
        for t in (-6.0, -1.1, 0.05, 2.0, 8.0):
            assert student_t_cdf(t, df) == pytest.approx(stats.t.cdf(t, df), abs=1e-11)
        for q in (0.001, 0.25, 0.9, 0.975):
            assert student_t_ppf(q, df) == pytest.approx(stats.t.ppf(q, df), rel=1e-8)


def test_incomplete_beta_closed_forms():
    # I_x(a, 1) = x^a, I_x(1, b) = 1 − (1 − x)^b, I_x(a, b) = 1 − I_{1−x}(b, a).
    for x in (0.0, 0.01, 0.3, 0.77, 1.0):
        assert report.betainc_reg(2.5, 1.0, x) == pytest.approx(x ** 2.5, abs=1e-13)
        assert report.betainc_reg(1.0, 3.0, x) == pytest.approx(1 - (1 - x) ** 3, abs=1e-13)
        assert report.betainc_reg(4.0, 0.5, x) == pytest.approx(1 - report.betainc_reg(0.5, 4.0, 1 - x), abs=1e-13)


@pytest.mark.parametrize("call,match", [
    (lambda: student_t_cdf(1.0, 0), "degrees of freedom"),
    (lambda: student_t_cdf(1.0, float("nan")), "degrees of freedom"),
    (lambda: student_t_ppf(1.0, 3), "quantile level"),
    (lambda: student_t_ppf(0.0, 3), "quantile level"),
    (lambda: report.betainc_reg(1.0, 1.0, 1.5), "0 <= x <= 1"),
    (lambda: report.betainc_reg(-1.0, 1.0, 0.5), "a > 0"),
])
def test_t_bad_arguments(call, match):
    with pytest.raises(ValueError, match=match):
        call()


# --------------------------------------------------------------------------- Welch

def test_welch_against_a_hand_computed_example():
    a, b = [1.0, 2.0, 3.0, 4.5], [0.5, 0.7, 0.2]
    # By hand: means 2.625 and 0.4667; sample variances 6.6875/3 = 2.22917 and 0.06333.
    ma, mb = sum(a) / 4, sum(b) / 3
    va = sum((x - ma) ** 2 for x in a) / 3
    vb = sum((x - mb) ** 2 for x in b) / 2
    se = math.sqrt(va / 4 + vb / 3)
    dof = (va / 4 + vb / 3) ** 2 / ((va / 4) ** 2 / 3 + (vb / 3) ** 2 / 2)
    assert (ma, round(va, 6), round(vb, 6)) == (2.625, 2.229167, 0.063333)
    res = welch_test(a, b)
    assert res.diff == pytest.approx(ma - mb)
    assert res.se == pytest.approx(se)
    assert res.t == pytest.approx((ma - mb) / se)
    assert res.dof == pytest.approx(dof)
    assert res.dof == pytest.approx(3.2246536, abs=1e-6)
    assert res.p_value == pytest.approx(0.0604227, abs=1e-6)        # scipy.stats.ttest_ind(equal_var=False)
    half = student_t_ppf(0.975, dof) * se
    assert res.ci == pytest.approx((ma - mb - half, ma - mb + half))
    assert res.ci == pytest.approx((-0.1693553, 4.4860220), abs=1e-6)


def test_welch_zero_variance():
    res = welch_test([0.5, 0.5, 0.5], [0.4, 0.4, 0.4])
    assert res.p_value == 0.0 and res.ci == pytest.approx((0.1, 0.1)) and res.dof is None
    res = welch_test([0.5, 0.5, 0.5], [0.5, 0.5, 0.5])
    assert res.p_value is None and res.ci is None
    # One side constant: the dof are the other side's n − 1.
    assert welch_test([1.0, 2.0, 3.0, 4.0], [0.0, 0.0, 0.0]).dof == pytest.approx(3.0)


def test_welch_needs_two_values():
    with pytest.raises(ValueError, match="at least 2 values"):
        welch_test([1.0], [1.0, 2.0])


# --------------------------------------------------------------------------- verdicts

WIN_A, WIN_B = [0.81, 0.82, 0.80, 0.815, 0.805], [0.71, 0.72, 0.70, 0.715, 0.705]
OVER_A, OVER_B = [0.80, 0.83, 0.78, 0.82, 0.79], [0.79, 0.82, 0.77, 0.81, 0.80]


@pytest.mark.parametrize("method", ["welch", "bootstrap"])
def test_clear_win_is_reproduced(method):
    v = verdict(WIN_A, WIN_B, method=method)
    assert isinstance(v, Verdict) and v.verdict == "reproduced" and str(v) == "reproduced"
    assert v.diff == pytest.approx(0.1)
    assert v.ci[0] > 0 and v.ci[0] < 0.1 < v.ci[1]
    assert v.p_value < 0.05 and (v.n_a, v.n_b, v.method) == (5, 5, method)


@pytest.mark.parametrize("method", ["welch", "bootstrap"])
def test_clear_loss_is_not_reproduced(method):
    v = verdict(WIN_B, WIN_A, method=method)
    assert v.verdict == "not reproduced" and v.diff == pytest.approx(-0.1) and v.ci[1] < 0
    # The same data with the claim the other way round is reproduced.
    assert verdict(WIN_B, WIN_A, claim_sign=-1, method=method).verdict == "reproduced"


@pytest.mark.parametrize("method", ["welch", "bootstrap"])
def test_overlap_is_direction_only_or_inconclusive(method):
    v = verdict(OVER_A, OVER_B, method=method)              # A slightly ahead, within noise
    assert v.verdict == "direction only" and v.diff > 0 and v.ci[0] < 0 < v.ci[1]
    assert v.p_value > 0.05
    v = verdict(OVER_B, OVER_A, method=method)              # the opposite sign, within noise
    assert v.verdict == "inconclusive" and v.diff < 0


def test_welch_verdict_agrees_with_its_p_value():
    v = verdict(OVER_A, OVER_B)
    assert v.p_value == pytest.approx(welch_test(OVER_A, OVER_B).p_value)
    # Welch for this overlap: t = 0.4743, dof = 7.955, p = 0.6480 (scipy.stats.ttest_ind(equal_var=False)).
    assert v.p_value == pytest.approx(0.6480033, abs=1e-6)


@pytest.mark.parametrize("method", ["welch", "bootstrap"])
def test_fewer_than_three_seeds_is_inconclusive(method):
    v = verdict([0.9, 0.91], [0.1, 0.11, 0.12], method=method)
    assert v.verdict == "inconclusive" and v.ci is None and v.p_value is None
    assert "fewer than 3" in v.reason and (v.n_a, v.n_b) == (2, 3)
    assert v.diff == pytest.approx(0.905 - 0.11)


@pytest.mark.parametrize("method", ["welch", "bootstrap"])
def test_identical_constant_samples_are_inconclusive(method):
    v = verdict([0.7] * 4, [0.7] * 4, method=method)
    assert v.verdict == "inconclusive" and v.diff == 0.0 and v.p_value is None and "undefined" in v.reason


@pytest.mark.parametrize("method", ["welch", "bootstrap"])
def test_constant_but_different_samples_are_exact(method):
    v = verdict([0.8] * 3, [0.7] * 3, method=method)
    assert v.verdict == "reproduced" and v.ci == pytest.approx((0.1, 0.1))
    assert verdict([0.7] * 3, [0.8] * 3, method=method).verdict == "not reproduced"


def test_verdict_accepts_tensors_and_arrays():
    v = verdict(torch.tensor(WIN_A), np.array(WIN_B))
    assert v.verdict == "reproduced"


def test_claimed_difference_is_checked_against_our_interval():
    v = verdict(WIN_A, WIN_B, claimed_diff=0.1)
    assert v.claimed_in_ci is True and v.claimed_diff == 0.1 and v.verdict == "reproduced"
    assert verdict(WIN_A, WIN_B, claimed_diff=0.5).claimed_in_ci is False
    with pytest.raises(ValueError, match="contradicts claim_sign"):
        verdict(WIN_A, WIN_B, claimed_diff=-0.1)


def test_every_verdict_is_one_of_four():
    rng = np.random.default_rng(1)
    seen = set()
    for shift in (-0.2, -0.01, 0.0, 0.01, 0.2):
        for n in (2, 3, 6):
            a, b = rng.normal(shift, 0.05, n), rng.normal(0, 0.05, n)
            for method in ("welch", "bootstrap"):
                seen.add(verdict(a, b, method=method).verdict)
    assert seen <= set(VERDICTS) and len(VERDICTS) == 4
    assert seen == set(VERDICTS)


def test_bootstrap_is_deterministic_for_a_seed():
    a, b = OVER_A, OVER_B
    ci1, p1, d1 = bootstrap_diff(a, b, seed=3)
    ci2, p2, d2 = bootstrap_diff(a, b, seed=3)
    assert ci1 == ci2 and p1 == p2 and np.array_equal(d1, d2)
    ci3, _, d3 = bootstrap_diff(a, b, seed=4)
    assert not np.array_equal(d1, d3)
    assert verdict(a, b, method="bootstrap", seed=3) == verdict(a, b, method="bootstrap", seed=3)
    # The bootstrap distribution is centred on the observed difference.
    assert d1.mean() == pytest.approx(np.mean(a) - np.mean(b), abs=2e-3)
    assert d1.shape == (10_000,)


def test_bootstrap_interval_matches_a_loop_reference():
    a, b = np.array(OVER_A), np.array(OVER_B)
    ci, _, draws = bootstrap_diff(a, b, seed=0, n_boot=500)
    rng = np.random.default_rng(0)
    ia, ib = rng.integers(0, 5, size=(500, 5)), rng.integers(0, 5, size=(500, 5))
    ref = [a[ia[k]].mean() - b[ib[k]].mean() for k in range(500)]
    assert np.allclose(draws, ref)
    assert ci == pytest.approx(tuple(np.quantile(ref, [0.025, 0.975])))


@pytest.mark.parametrize("kwargs,match", [
    (dict(claim_sign=0), "claim_sign"),
    (dict(claim_sign=2), "claim_sign"),
    (dict(method="mannwhitney"), "method must be one of"),
    (dict(alpha=1.5), "alpha"),
    (dict(alpha=0), "alpha"),
    (dict(alpha="5%"), "alpha"),
])
def test_verdict_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        verdict(WIN_A, WIN_B, **kwargs)


def test_verdict_bad_samples():
    with pytest.raises(ValueError, match="non-finite"):
        verdict([0.1, float("nan"), 0.2], WIN_B)
    with pytest.raises(ValueError, match="1-D"):
        verdict([[0.1, 0.2]], WIN_B)
    with pytest.raises(ValueError, match="at least one value"):
        verdict([], WIN_B)
    with pytest.raises(ValueError, match="n_boot"):
        verdict(WIN_A, WIN_B, method="bootstrap", n_boot=10)


# --------------------------------------------------------------------------- paper gap

def test_paper_gap_is_a_plain_difference():
    assert paper_gap(86.0, 87.2) == pytest.approx(-1.2)
    assert isinstance(paper_gap(86.0, 87.2), float)

    class _Cell:
        value = 80.0

    assert paper_gap(81.5, _Cell()) == pytest.approx(1.5)
    _Cell.value = None
    with pytest.raises(ValueError, match="no number"):
        paper_gap(81.5, _Cell())
    with pytest.raises(ValueError, match="finite"):
        paper_gap(float("inf"), 1.0)
    with pytest.raises(ValueError, match="numbers"):
        paper_gap("high", 1.0)


def test_paper_gap_with_a_paper_cell():
    from dscore.papers import dreamplus

    assert paper_gap(86.0, dreamplus.cell("I", "DREAM+", ("FashionMNIST", 10))) == pytest.approx(86.0 - 87.2)


# --------------------------------------------------------------------------- speed-up factor

BASE_X = [0, 100, 200, 400, 800, 1000]
BASE_ACC = [10.0, 40.0, 55.0, 62.0, 66.0, 67.5]


def test_speedup_crossing_interpolates():
    # The method crosses 67.5 between x=50 (60.0) and x=75 (70.0): at 50 + 25 · 7.5/10 = 68.75.
    r = speedup_factor(BASE_X, BASE_ACC, [0, 25, 50, 75, 100], [10.0, 50.0, 60.0, 70.0, 71.0])
    assert isinstance(r, Speedup) and r.reason == "crossed" and not r.lower_bound
    assert r.target == 67.5 and r.base_x == 1000.0
    assert r.method_x == pytest.approx(68.75)
    assert r.factor == pytest.approx(1000 / 68.75)


def test_speedup_with_a_target_interpolates_the_baseline_too():
    # Baseline reaches 60 between x=200 (55) and x=400 (62): 200 + 200 · 5/7.
    r = speedup_factor(BASE_X, BASE_ACC, [10, 20], [50.0, 65.0], target=60.0)
    base_x = 200 + 200 * 5 / 7
    method_x = 10 + 10 * 10 / 15
    assert r.base_x == pytest.approx(base_x) and r.method_x == pytest.approx(method_x)
    assert r.factor == pytest.approx(base_x / method_x)


def test_speedup_never_reached():
    r = speedup_factor(BASE_X, BASE_ACC, [0, 100, 200], [10.0, 50.0, 67.4])
    assert r.factor is None and r.reason == "never reached" and r.method_x is None and r.base_x == 1000.0
    assert "67.4" in r.note


def test_speedup_reached_at_first_point_is_a_lower_bound():
    r = speedup_factor(BASE_X, BASE_ACC, [20, 40], [68.0, 69.0])
    assert r.reason == "reached at first point" and r.lower_bound
    assert r.factor == pytest.approx(1000 / 20) and r.method_x == 20.0
    assert "first checkpoint" in r.note and "lower bound" in r.note


def test_speedup_reached_at_x_zero_has_no_factor():
    r = speedup_factor(BASE_X, BASE_ACC, [0, 40], [68.0, 69.0])
    assert r.factor is None and r.reason == "reached at x = 0"


def test_speedup_baseline_never_reaches_an_explicit_target():
    r = speedup_factor(BASE_X, BASE_ACC, [0, 40], [50.0, 80.0], target=70.0)
    assert r.factor is None and r.reason == "baseline never reached"


def test_speedup_results_are_finite():
    for mx, my in (([0, 25, 50], [10.0, 70.0, 71.0]), ([5, 6], [1.0, 2.0]), ([1], [99.0])):
        r = speedup_factor(BASE_X, BASE_ACC, mx, my)
        for v in (r.factor, r.base_x, r.method_x, r.target):
            assert v is None or math.isfinite(v)


def test_speedup_uses_the_first_crossing():
    # The method reaches 67.5 at x = 20 (interpolated), falls back, and crosses again later.
    r = speedup_factor(BASE_X, BASE_ACC, [10, 30, 50, 70], [60.0, 75.0, 50.0, 80.0])
    assert r.method_x == pytest.approx(10 + 20 * 7.5 / 15) and r.reason == "crossed"


def test_speedup_baseline_at_its_first_point_is_flagged():
    r = speedup_factor([5, 10], [70.0, 71.0], [0, 1, 2], [0.0, 60.0, 80.0], target=70.0)
    assert r.base_at_first_point and r.base_x == 5.0
    assert r.factor == pytest.approx(5.0 / 1.5)


def test_speedup_equal_curves_give_one():
    assert speedup_factor(BASE_X, BASE_ACC, BASE_X, BASE_ACC).factor == pytest.approx(1.0)


@pytest.mark.parametrize("args,match", [
    (([0, 1], [1.0]), "same length"),
    (([1, 1], [1.0, 2.0]), "strictly increasing"),
    (([2, 1], [1.0, 2.0]), "strictly increasing"),
    (([-1, 1], [1.0, 2.0]), ">= 0"),
    (([], []), "empty"),
    (([0, 1], [1.0, float("nan")]), "non-finite"),
])
def test_speedup_bad_curves(args, match):
    with pytest.raises(ValueError, match=match):
        speedup_factor(*args, [0, 1], [1.0, 2.0])
    with pytest.raises(ValueError, match=match):
        speedup_factor([0, 1], [1.0, 2.0], *args)


def test_speedup_bad_target():
    with pytest.raises(ValueError, match="target"):
        speedup_factor([0, 1], [1.0, 2.0], [0, 1], [1.0, 2.0], target=float("nan"))


def test_verdict_round_off_difference_has_no_sign():
    # the same per-seed accuracies in another order: their means differ by float round-off only
    a = [0.1, 0.7, 0.2]
    b = [0.7, 0.2, 0.1]
    v = verdict(np.array(a) + 0.0, np.array(b) - 7e-18, claim_sign=+1)
    assert v.verdict == "inconclusive" and "zero" in v.reason
    # a real (if tiny) difference still has a sign
    v = verdict([0.1, 0.2, 0.3], [0.1 - 1e-6, 0.2 - 1e-6, 0.3 - 1e-6], claim_sign=+1)
    assert v.verdict in ("reproduced", "direction only")
