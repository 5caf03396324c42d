"""dscore.report: paper gaps and speed-up factors (verdicts are tests/test_stats.py)."""
import math

import numpy as np
import pytest
import torch

from dscore import report
from dscore.report import Speedup, paper_gap, speedup_factor


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


def test_glue_outside_a_kernel_returns_the_value_and_inside_reports_failures(monkeypatch):
    import IPython
    import myst_nb

    from dscore import report

    assert report.glue("x", 3) == 3                                     # plain Python: a no-op
    seen = {}

    class Shell:                                                        # a kernel is running
        pass

    monkeypatch.setattr(IPython, "get_ipython", lambda: Shell())
    monkeypatch.setattr(myst_nb, "glue", lambda name, value, display=False: seen.update({name: value}))
    assert report.glue("y", 4) == 4 and seen == {"y": 4}

    def broken(name, value, display=False):
        raise TypeError("cannot glue this")

    monkeypatch.setattr(myst_nb, "glue", broken)
    with pytest.raises(TypeError, match="cannot glue"):                 # no longer swallowed
        report.glue("z", object())
