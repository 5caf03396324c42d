"""Verdicts that are evidence: paired tests over independently randomised units, sizes, power and multiplicity.

One question is asked of every claim of a paper: *where does our interval for A − B lie, relative to zero and to the
claim's reference size?* The reference size ``S`` is the paper's claimed size, or, for a claim of a sign only, the
smallest effect of interest declared with the claim (``sesoi``). Every word is decided from one interval, at one
level, and the same interval is shown beside it (:data:`DEFINITIONS` has each word in one sentence).

Direction claims ("A beats B", optionally "by ``claimed``"), the interval ``[lo, hi]`` turned to the claimed sign:

* ``reproduced`` — ``lo > 0`` and the interval reaches ``S`` (or no size is claimed);
* ``stronger than claimed`` — ``lo > S``: the claimed size is ruled out from above;
* ``weaker than claimed`` — ``lo > 0`` but ``hi < S``;
* ``not reproduced`` — the interval holds 0 but ``hi < S``: an effect as large as the claim (or the smallest effect
  of interest) is ruled out;
* ``contradicted`` — ``hi < 0``: the opposite sign;
* ``inconclusive`` — the interval holds both 0 and ``S`` although the design could detect ``S`` (its minimum
  detectable effect at the level used is at most ``S``);
* ``underpowered`` — the interval holds both 0 and ``S`` and the design could not detect ``S`` (MDE > ``S``, or no
  test at this number of units can reach the level).

Equivalence claims ("no worse than", "lossless"), with a ``margin``: two one-sided tests. ``equivalent`` when the
``1 − 2λ`` interval lies inside ±margin, ``not equivalent`` when it lies wholly outside, otherwise ``inconclusive``
or ``underpowered`` by the same rule with the margin as ``S``.

And ``untestable here`` for a claim whose gate or guard failed (:func:`untestable`), ``descriptive`` for a comparison
whose units were not randomised independently (shown, never judged, never in a family).

**Tests.** Each claim holds two hypotheses: *δ = 0* and *δ = S* (equivalence: *|δ| ≥ margin* by TOST and
*|δ| ≤ margin*). Their p-values come from ``scipy.stats``: ``ttest_rel``/``ttest_1samp`` (paired) or
``ttest_ind(equal_var=False)`` (Welch), and an exact permutation test (``scipy.stats.permutation_test``: sign flips when
paired, label permutations otherwise) whenever the t test's assumptions cannot be trusted: five or fewer units per
arm, no spread, or an outcome the claim declares discrete (a best β from a grid, a capped speed-up). An exact test's
p is never below what its number of units permits (three pairs: 0.25), its interval is the set of shifts it does not
reject (found by bisection), and a row whose test cannot reach the level reads ``underpowered`` with an infinite MDE.

**A family** (:func:`family`, a chapter): every hypothesis of every judged claim is adjusted together by Holm's
step-down with Shaffer's logical restriction (a claim's two hypotheses cannot both be true, so each claim counts once
towards the number of hypotheses that may be true). Rows whose test cannot reach α at all take no part (Tarone).
With ``R`` hypotheses rejected, the procedure stopped at the level ``λ = α / t`` (``t`` claims still open), and every
row's interval and MDE are recomputed at that one level: a rejected hypothesis had ``p < its step's level ≤ λ`` and a
kept one ``p ≥ λ``, so each interval excludes exactly the values the family rejected: the word, the interval and the
reason come from the same numbers.

**The unit of replication** is what was randomised independently (a selection seed, a distillation seed). ``judge``
takes one number per unit and arm (evaluation seeds already averaged inside a unit) as a mapping ``{unit id: value}``;
paired arms are matched by unit id, never by position.

**Censored values** (``censored={unit: +1 | −1}``): a value that is only a bound (+1: the truth is at least it,
e.g. a speed-up whose method was already there at its first snapshot; −1: at most it, a method that never reached
the target). A word is kept only when the bounds push against it (a statement that would hold for the true values
too); otherwise the row is ``untestable here``, as it is when more than half of the units are censored.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import optimize, stats

__all__ = ["WORDS", "DEFINITIONS", "JUDGED_WORDS", "EXACT_BELOW", "POWER", "Judgement", "judge", "untestable",
           "descriptive", "family", "at_level", "mde", "as_units", "family_words", "shaffer"]

#: every word a verdict can carry, in the order tables count them
WORDS = ("reproduced", "stronger than claimed", "weaker than claimed", "not reproduced", "contradicted",
         "inconclusive", "underpowered", "equivalent", "not equivalent", "untestable here", "descriptive")
#: one sentence per word (the overviews and the README print these)
DEFINITIONS = {
    "reproduced": "zero is excluded on the claimed side and the interval reaches the claimed size (or the claim "
                  "states a sign only).",
    "stronger than claimed": "the whole interval lies beyond the claimed size: the effect is larger than the paper "
                             "says.",
    "weaker than claimed": "zero is excluded on the claimed side, but the whole interval lies below the claimed size.",
    "not reproduced": "the interval holds zero and ends below the claimed size (or the claim's smallest effect of "
                      "interest): an effect that large is ruled out.",
    "contradicted": "the whole interval lies on the opposite side of zero.",
    "inconclusive": "the design could detect the claimed size (MDE at the level used ≤ it), yet the interval holds "
                    "both zero and that size.",
    "underpowered": "the interval holds both zero and the claimed size, and the design could not have told them apart "
                    "(MDE at the level used > that size, or too few units for any test at that level).",
    "equivalent": "the interval lies inside ± the stated margin (two one-sided tests).",
    "not equivalent": "the interval lies wholly outside ± the stated margin.",
    "untestable here": "a gate or guard of the claim failed at this scale, or the claim needs what this book does not "
                       "run; the reason gives the numbers and what would pass.",
    "descriptive": "the units were not randomised independently (they share seeds): the numbers are shown, never "
                   "judged, and take no part in the family.",
}
#: the words of a judged claim (the others carry no test)
JUDGED_WORDS = WORDS[:9]
#: fewer units than this per arm (or no spread, or a discrete outcome): the exact permutation test, not the t test
EXACT_BELOW = 6
#: the power at which :func:`mde` is the smallest detectable effect
POWER = 0.8
#: exact permutation tests enumerate every permutation up to this many, beyond it draw this many at random
EXACT_PERMUTATIONS = 1 << 16
#: a spread below this fraction of the values' magnitude is float round-off, not variation
ROUND_OFF = 1e-12


@dataclass(frozen=True)
class Judgement:
    """The verdict on one claim (see the module docstring for the words).

    ``diff``: mean(A) − mean(B) over units (paired: the mean of the per-unit differences). ``level``: the two-sided
    level λ the word was decided at (``alpha`` for a claim judged alone; the family's after :func:`family`); ``ci``
    the interval at that level (``1 − λ``; an equivalence claim: ``1 − 2λ``, as TOST reads it), the one the word was
    decided on; ``ci_raw`` the unadjusted ``1 − alpha`` interval. ``p``/``p_size``: the raw two-sided p of δ = 0 and of
    δ = ``S`` (equivalence: the TOST p and the p of "wholly outside"); ``p_adj``/``p_size_adj`` after the family's
    adjustment. ``mde``: the smallest |A − B| the test detects with 80 % power at ``level`` (inf when no test at this
    ``n`` reaches it; None where undefined, e.g. no spread). ``n``: units (pairs when paired, else ``min(n_a,
    n_b)``). ``test``: which test gave the p-values; ``min_p``: the smallest p that test can give at this ``n``.
    ``a``/``b``: the per-unit values judged, so that the word can be re-decided at another level."""
    word: str
    diff: float | None
    ci: tuple[float, float] | None
    p: float | None
    p_adj: float | None
    mde: float | None
    n: int
    reason: str
    claim_sign: int = 1
    claimed: float | None = None
    margin: float | None = None
    paired: bool = True
    alpha: float = 0.05
    n_a: int = 0
    n_b: int = 0
    ci_raw: tuple[float, float] | None = None
    units: tuple = ()
    sesoi: float | None = None
    p_size: float | None = None
    p_size_adj: float | None = None
    level: float | None = None
    test: str = ""
    min_p: float | None = None
    discrete: bool = False
    censored: tuple = ()
    a: tuple = ()
    b: tuple = ()
    family_note: str = ""

    @property
    def kind(self) -> str:
        """``"guard"`` (untestable), ``"descriptive"``, ``"equivalence"`` (a margin) or ``"direction"``."""
        if self.word == "untestable here":
            return "guard"
        if self.word == "descriptive":
            return "descriptive"
        return "equivalence" if self.margin is not None else "direction"

    @property
    def size(self) -> float | None:
        """The reference size ``S`` in the claimed direction: the claimed size, else the smallest effect of
        interest, else the margin (equivalence); None when there is none."""
        if self.margin is not None:
            return self.margin
        if self.claimed not in (None, 0):
            return abs(self.claimed)
        return self.sesoi

    @property
    def ci_level(self) -> float | None:
        """The confidence of :attr:`ci` (0.95 for a lone claim at α = 0.05; 0.9 for its TOST interval)."""
        if self.level is None:
            return None
        return 1.0 - (2.0 if self.margin is not None else 1.0) * self.level

    def __str__(self) -> str:
        return self.word

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record of every field (tuples become lists; infinities become strings)."""
        def num(v):
            return v if v is None or math.isfinite(v) else ("inf" if v > 0 else "-inf")

        def pair(v):
            return None if v is None else [num(x) for x in v]

        d = {k: getattr(self, k) for k in self.__dataclass_fields__}
        d.update(ci=pair(self.ci), ci_raw=pair(self.ci_raw), mde=None if self.mde is None else num(self.mde),
                 units=[str(u) for u in self.units], censored=[[str(u), int(s)] for u, s in self.censored],
                 a=[[str(u), v] for u, v in self.a], b=[[str(u), v] for u, v in self.b])
        return d

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Judgement":
        """The inverse of :meth:`as_dict` (unit ids come back as strings)."""
        d = dict(d)
        for key in ("ci", "ci_raw"):
            if d.get(key) is not None:
                d[key] = tuple(float(v) for v in d[key])
        if d.get("mde") is not None:
            d["mde"] = float(d["mde"])
        d["units"] = tuple(d.get("units", ()))
        d["censored"] = tuple((u, int(s)) for u, s in d.get("censored", ()))
        d["a"] = tuple((u, float(v)) for u, v in d.get("a", ()))
        d["b"] = tuple((u, float(v)) for u, v in d.get("b", ()))
        return cls(**d)


def _check_alpha(alpha: Any, name: str = "alpha") -> float:
    try:
        ok = 0.0 < float(alpha) < 0.5
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"{name} must be a number in (0, 0.5), got {alpha!r}")
    return float(alpha)


def as_units(values: Any, name: str) -> dict[Any, float]:
    """Per-unit values as ``{unit id: value}``: a mapping is taken as it is, a sequence gets ids 0, 1, ….

    Raises ValueError naming ``name`` for non-finite values or anything that is not one number per unit.
    """
    if isinstance(values, Mapping):
        items = list(values.items())
    else:
        if hasattr(values, "detach"):
            values = values.detach().cpu().double().numpy()
        arr = np.asarray(values, dtype=np.float64)
        if arr.ndim != 1:
            raise ValueError(f"{name} must hold one value per unit (a 1-D sequence or a mapping unit → value), "
                             f"got shape {arr.shape}")
        items = list(enumerate(arr.tolist()))
    out: dict[Any, float] = {}
    for unit, v in items:
        try:
            f = float(v)
        except (TypeError, ValueError):
            raise ValueError(f"{name}[{unit!r}]={v!r} is not a number") from None
        if not math.isfinite(f):
            raise ValueError(f"{name}[{unit!r}]={f} is not finite; every unit needs a finite value")
        out[unit] = f
    return out


def _power(delta: float, se: float, df: float, alpha: float) -> float:
    """Power of the two-sided t test at level ``alpha`` when the true difference is ``delta`` (standard error
    ``se``, ``df`` degrees of freedom), from scipy's noncentral t."""
    crit = stats.t.ppf(1.0 - alpha / 2.0, df)
    nc = delta / se
    upper = float(stats.nct.sf(crit, df, nc))
    lower = float(stats.nct.cdf(-crit, df, nc))
    # scipy's far tail can come back NaN at df = 1; for nc ≥ 0 that tail is below the upper one's complement
    return upper + (0.0 if math.isnan(lower) else lower)


def mde(se: float, df: float, *, alpha: float = 0.05, power: float = POWER) -> float | None:
    """The smallest |difference| a two-sided t test at ``alpha`` detects with probability ``power``, for a
    standard error ``se`` with ``df`` degrees of freedom (noncentral t, solved with scipy's ``brentq``).

    ``se == 0`` gives None (no spread was observed, so there is nothing to scale a detectable effect by);
    ``df`` not finite and > 0 gives None.
    """
    alpha = _check_alpha(alpha)
    if not (df > 0 and math.isfinite(df)) or not math.isfinite(se) or se <= 0:
        return None
    hi = se * (stats.t.ppf(1.0 - alpha / 2.0, df) + stats.t.ppf(power, df) + 1.0)
    while _power(hi, se, df, alpha) < power:
        hi *= 2.0
    return float(optimize.brentq(lambda d: _power(d, se, df, alpha) - power, 0.0, hi, xtol=1e-12 * max(1.0, hi)))


def _constant(x: np.ndarray) -> bool:
    """True when the values differ only by float round-off (then there is no spread to test against)."""
    return float(x.max() - x.min()) <= ROUND_OFF * max(1.0, float(np.abs(x).max()))


# ------------------------------------------------------------------------------------------------ the tests

@dataclass
class _Test:
    """The p-value of "δ = v" (two-sided or one-sided) for any shift ``v``, the interval at any level and the MDE:
    a t test, or an exact permutation test inverted by bisection."""
    xa: np.ndarray
    xb: np.ndarray
    paired: bool
    exact: bool
    name: str = ""
    _cache: dict = field(default_factory=dict)

    @property
    def d(self) -> np.ndarray:
        return self.xa - self.xb

    def diff(self) -> float:
        return float(self.d.mean()) if self.paired else float(self.xa.mean() - self.xb.mean())

    def se_df(self) -> tuple[float, float]:
        if self.paired:
            d = self.d
            sd = 0.0 if _constant(d) else float(d.std(ddof=1))
            return sd / math.sqrt(len(d)), float(len(d) - 1)
        va = 0.0 if _constant(self.xa) else float(self.xa.var(ddof=1)) / len(self.xa)
        vb = 0.0 if _constant(self.xb) else float(self.xb.var(ddof=1)) / len(self.xb)
        se = math.sqrt(va + vb)
        if se == 0:
            return 0.0, float(min(len(self.xa), len(self.xb)) - 1)
        den = (va ** 2 / (len(self.xa) - 1) if len(self.xa) > 1 else 0.0) + \
              (vb ** 2 / (len(self.xb) - 1) if len(self.xb) > 1 else 0.0)
        return se, ((va + vb) ** 2 / den) if den > 0 else float(min(len(self.xa), len(self.xb)) - 1)

    def p(self, v: float = 0.0, alternative: str = "two-sided") -> float:
        """p of "δ = v" against ``alternative`` ("two-sided", "greater": δ > v, "less": δ < v)."""
        key = (float(v), alternative)
        if key not in self._cache:
            self._cache[key] = self._p(float(v), alternative)
        return self._cache[key]

    def _p(self, v: float, alternative: str) -> float:
        if self.exact:
            if self.paired:
                res = stats.permutation_test((self.d - v,), np.mean, permutation_type="samples", vectorized=True,
                                             n_resamples=self._resamples(), alternative=alternative,
                                             rng=np.random.default_rng(0))
            else:
                res = stats.permutation_test((self.xa, self.xb + v), _mean_diff, permutation_type="independent",
                                             vectorized=True, n_resamples=self._resamples(), alternative=alternative,
                                             rng=np.random.default_rng(0))
            return float(min(1.0, res.pvalue))
        se, _ = self.se_df()
        if se == 0.0:          # not reached: no spread always takes the exact test
            raise AssertionError("a t test needs spread")
        if self.paired:
            return float(stats.ttest_1samp(self.d, v, alternative=alternative).pvalue)
        return float(stats.ttest_ind(self.xa, self.xb + v, equal_var=False, alternative=alternative).pvalue)

    def _resamples(self) -> float:
        if self.paired:
            count = 2.0 ** len(self.d)
        else:
            count = float(math.comb(len(self.xa) + len(self.xb), len(self.xa)))
        return np.inf if count <= EXACT_PERMUTATIONS else 9999

    def min_p(self) -> float:
        """The smallest two-sided p the test can give at this number of units (0 for a t test)."""
        if not self.exact:
            return 0.0
        spread = float(np.ptp(np.concatenate([self.xa, self.xb]))) + 1.0
        far = self.diff() - 1e3 * spread - abs(self.diff())
        return self.p(far)

    def interval(self, level: float) -> tuple[float, float]:
        """The two-sided ``1 − level`` interval: the shifts v the test does not reject at ``level``."""
        if not self.exact:
            if self.paired:
                res = stats.ttest_1samp(self.d, 0.0)
            else:
                res = stats.ttest_ind(self.xa, self.xb, equal_var=False)
            lo, hi = res.confidence_interval(confidence_level=1.0 - level)
            return float(lo), float(hi)
        if self.min_p() >= level:
            return -math.inf, math.inf
        centre = self.diff()
        spread = float(np.ptp(np.concatenate([self.xa, self.xb]))) + abs(centre) + 1.0
        ends = []
        for sign in (-1.0, 1.0):
            inside, outside = centre, centre + sign * 1e3 * spread
            for _ in range(60):
                mid = 0.5 * (inside + outside)
                if self.p(mid) >= level:
                    inside = mid
                else:
                    outside = mid
                if abs(outside - inside) <= 1e-9 * max(1.0, abs(centre), spread):
                    break
            ends.append(inside)
        return ends[0], ends[1]

    def mde(self, level: float) -> float | None:
        """The MDE at ``level`` (t based; inf when an exact test cannot reach ``level`` at this n)."""
        if self.exact and self.min_p() >= level:
            return math.inf
        se, df = self.se_df()
        return mde(se, df, alpha=level)


def _mean_diff(x, y, axis=-1):
    return x.mean(axis=axis) - y.mean(axis=axis)


def _one_sided_outside(test: _Test, margin: float) -> float:
    """p of "|δ| ≤ margin" on the side the estimate lies: δ > margin (above) or δ < −margin (below)."""
    return min(test.p(margin, "greater"), test.p(-margin, "less"))


def _tost(test: _Test, margin: float) -> float:
    """The TOST p: the larger of the one-sided p of δ > −margin and of δ < margin."""
    return max(test.p(-margin, "greater"), test.p(margin, "less"))


# ---------------------------------------------------------------------------------------------- the words

def _fmt(v: float) -> str:
    if math.isinf(v):
        return "∞" if v > 0 else "−∞"
    return f"{v:.3g}"


def _word(j: Judgement, zero_rej: bool, size_rej: bool) -> tuple[str, str]:
    """The word of a judged claim from its two decisions and its interval at ``j.level`` (which shows them)."""
    conf = f"{100 * j.ci_level:.4g} %"
    lo, hi = j.ci
    S = j.size
    powered = j.mde is not None and math.isfinite(j.mde) and j.mde <= S
    if j.margin is not None:
        where = f"the {conf} interval [{_fmt(lo)}, {_fmt(hi)}]"
        if zero_rej:
            return "equivalent", f"{where} lies inside ±{S:g}"
        if size_rej:
            return "not equivalent", f"{where} lies wholly outside ±{S:g}"
        word = "inconclusive" if powered else "underpowered"
        return word, f"{where} is neither inside nor wholly outside ±{S:g}; " + _power_text(j, S, powered)
    tl, th = sorted((j.claim_sign * lo, j.claim_sign * hi))
    where = f"the {conf} interval (claimed sign up) [{_fmt(tl)}, {_fmt(th)}]"
    what = "the claimed" if j.claimed not in (None, 0) else "the smallest effect of interest,"
    d = j.claim_sign * j.diff
    if zero_rej and d < 0:
        return "contradicted", f"{where} lies below 0"
    if zero_rej:
        if j.claimed in (None, 0):
            return "reproduced", f"{where} excludes 0 on the claimed side"
        if size_rej and d > S:
            return "stronger than claimed", f"{where} lies above {what} {S:g}"
        if size_rej:
            return "weaker than claimed", f"{where} excludes 0 but ends below {what} {S:g}"
        return "reproduced", f"{where} excludes 0 and reaches {what} {S:g}"
    if size_rej and d < S:
        return "not reproduced", f"{where} holds 0 and ends below {what} {S:g}"
    word = "inconclusive" if powered else "underpowered"
    return word, f"{where} holds both 0 and {what} {S:g}; " + _power_text(j, S, powered)


def _power_text(j: Judgement, S: float, powered: bool) -> str:
    if j.mde is None:
        return "no spread was observed, so no detectable effect can be computed"
    if math.isinf(j.mde):
        return f"no test at n = {j.n} can reach this level (smallest p {j.min_p:.3g})"
    if powered:
        return f"the MDE at this level, {_fmt(j.mde)}, is within {S:g}: the design could see it"
    return f"the MDE at this level, {_fmt(j.mde)}, exceeds {S:g}"


_SAFE = {+1: {"reproduced", "stronger than claimed", "underpowered", "inconclusive"},
         -1: {"not reproduced", "weaker than claimed", "contradicted", "underpowered", "inconclusive"}}


def _censoring(j: Judgement, word: str, why: str) -> tuple[str, str]:
    """Keep ``word`` only when every bound pushes against it (see the module docstring)."""
    if not j.censored:
        return word, why
    n_c = len(j.censored)
    sides = {s * j.claim_sign for _, s in j.censored}
    listing = ", ".join(f"{u} ({'≥' if s > 0 else '≤'})" for u, s in j.censored)
    if 2 * n_c > j.n:
        return "untestable here", (f"{n_c} of {j.n} units are only bounds ({listing}): too many censored values to "
                                   f"judge; {why}")
    if len(sides) > 1 or word not in _SAFE[sides.pop()]:
        return "untestable here", (f"{why}, but units {listing} are only bounds, and the bounds could carry this "
                                   f"word; the true values could say otherwise")
    return word, f"{why} (units {listing} are bounds that push against this word)"


def _decide(j: Judgement, level: float, zero_rej: bool, size_rej: bool, test: _Test | None) -> Judgement:
    """``j`` with its interval and MDE at ``level`` and the word of the two decisions."""
    if test is None:
        test = _test_of(j)
    ci_level = 2.0 * level if j.margin is not None else level
    j = replace(j, level=level, ci=test.interval(ci_level), mde=test.mde(level))
    word, why = _word(j, zero_rej, size_rej)
    word, why = _censoring(j, word, why)
    return replace(j, word=word, reason=why + (f" ({j.family_note})" if j.family_note else ""))


def _test_of(j: Judgement) -> _Test:
    xa = np.array([v for _, v in j.a])
    xb = np.array([v for _, v in j.b])
    return _make_test(xa, xb, j.paired, j.discrete)


def _make_test(xa: np.ndarray, xb: np.ndarray, paired: bool, discrete: bool) -> _Test:
    if paired:
        flat = _constant(xa - xb)
        if flat:                       # differences equal up to round-off: exactly equal (0 when that tiny)
            scale = max(1.0, float(np.abs(xa).max()), float(np.abs(xb).max()))
            shift = float((xa - xb).mean())
            xa = xb + (0.0 if abs(shift) <= ROUND_OFF * scale else shift)
        small = len(xa) < EXACT_BELOW
    else:
        flat = _constant(xa) and _constant(xb)
        small = min(len(xa), len(xb)) < EXACT_BELOW
    exact = discrete or flat or small
    why = ("the outcome is discrete" if discrete else "no spread" if flat else
           f"fewer than {EXACT_BELOW} units" if small else "")
    name = (("exact sign-flip" if paired else "exact permutation") + f" ({why})") if exact else (
        "paired t" if paired else "Welch t")
    return _Test(xa, xb, paired, exact, name)


def judge(a: Any, b: Any, *, claim_sign: int = +1, claimed: float | None = None, sesoi: float | None = None,
          margin: float | None = None, paired: bool = True, alpha: float = 0.05, discrete: bool = False,
          censored: Mapping[Any, int] | None = None) -> Judgement:
    """Judge the claim "A − B has sign ``claim_sign``" (size ``claimed``, or smallest effect of interest
    ``sesoi``), or with ``margin`` the claim "|A − B| < margin", from one value per unit and arm, alone at level
    ``alpha`` (:func:`family` re-decides it with the rest of its chapter).

    ``a``/``b``: ``{unit id → value}`` or sequences (ids 0, 1, …). ``paired=True`` matches the arms by unit id and
    raises ValueError naming the ids one arm lacks; ``paired=False`` compares independent samples (Welch).
    ``claimed``: the paper's A − B in the units of ``a``/``b``, with the sign ``claim_sign``; a direction claim
    without one needs ``sesoi`` (> 0, the smallest effect that would matter), so that a tight null can read ``not
    reproduced``. ``discrete``: the outcome takes few values (a grid's best β), so the exact test is used at any n.
    ``censored``: ``{unit: +1}`` when that unit's value is a lower bound, ``-1`` an upper bound.
    Cost: O(n) for the t test; O(2ⁿ · 60) for an exact test inverted by bisection (n ≤ 16, else 9999 draws).
    """
    if isinstance(claim_sign, bool) or claim_sign not in (1, -1):
        raise ValueError(f"claim_sign must be +1 or -1, got {claim_sign!r}")
    alpha = _check_alpha(alpha)
    if claimed is not None:
        claimed = float(claimed)
        if not math.isfinite(claimed):
            raise ValueError(f"claimed must be finite or None, got {claimed}")
        if claimed != 0 and math.copysign(1, claimed) != claim_sign:
            raise ValueError(f"claimed={claimed} has the opposite sign of claim_sign={claim_sign}")
    if sesoi is not None:
        sesoi = float(sesoi)
        if not (sesoi > 0 and math.isfinite(sesoi)):
            raise ValueError(f"sesoi must be a finite number > 0 (the smallest effect of interest), got {sesoi}")
    if margin is not None:
        margin = float(margin)
        if not (margin > 0 and math.isfinite(margin)):
            raise ValueError(f"margin must be a finite number > 0 (the equivalence bound), got {margin}")
    elif claimed in (None, 0) and sesoi is None:
        raise ValueError("a claim of a sign only needs sesoi, its smallest effect of interest (e.g. 1 accuracy "
                         "point), so that a tight null can be told from a small design")
    ua, ub = as_units(a, "a"), as_units(b, "b")
    if not ua or not ub:
        raise ValueError(f"both arms need at least one unit, got n_a={len(ua)}, n_b={len(ub)}")
    if paired:
        missing_b = [u for u in ua if u not in ub]
        missing_a = [u for u in ub if u not in ua]
        if missing_a or missing_b:
            raise ValueError(f"paired arms must cover the same units: a lacks {missing_a}, b lacks {missing_b}")
        units = tuple(sorted(ua, key=str))
        xa, xb = np.array([ua[u] for u in units]), np.array([ub[u] for u in units])
        n = len(units)
    else:
        units = tuple(sorted(set(ua) | set(ub), key=str))
        xa, xb = np.array(list(ua.values())), np.array(list(ub.values()))
        n = min(len(xa), len(xb))
    cens = tuple(sorted(((u, int(s)) for u, s in (censored or {}).items()), key=lambda t: str(t[0])))
    for u, s in cens:
        if s not in (1, -1) or u not in units:
            raise ValueError(f"censored[{u!r}]={s!r}: must be +1 (a lower bound) or -1 (an upper bound) of a unit "
                             f"of the claim ({list(units)})")
    j = Judgement("underpowered", None, None, None, None, None, n, "", claim_sign=claim_sign, claimed=claimed,
                  margin=margin, paired=bool(paired), alpha=alpha, n_a=len(ua), n_b=len(ub), units=units,
                  sesoi=sesoi, discrete=bool(discrete), censored=cens,
                  a=tuple(sorted(ua.items(), key=lambda t: str(t[0]))),
                  b=tuple(sorted(ub.items(), key=lambda t: str(t[0]))))
    scale = max(1.0, float(np.abs(xa).max()), float(np.abs(xb).max()))
    test = _make_test(xa, xb, bool(paired), bool(discrete))
    diff = test.diff()
    if abs(diff) <= ROUND_OFF * scale:       # the same values summed in another order: no difference
        diff = 0.0
    j = replace(j, diff=diff, test=test.name)
    if n < 2 or min(len(ua), len(ub)) < 2 and not paired:
        return replace(j, level=alpha, mde=math.inf, ci=(-math.inf, math.inf), ci_raw=(-math.inf, math.inf),
                       min_p=1.0, reason=f"one unit per arm (n_a={len(ua)}, n_b={len(ub)}): no spread to test against, "
                                         f"no test can reject")
    S = j.size
    if margin is not None:
        p, p_size = _tost(test, margin), _one_sided_outside(test, margin)
    else:
        p, p_size = test.p(0.0), test.p(claim_sign * S)
    j = replace(j, p=p, p_size=p_size, min_p=test.min_p(), ci_raw=test.interval(alpha))
    return _decide(j, alpha, p < alpha, p_size < alpha, test)


def at_level(j: Judgement, level: float, *, zero_rej: bool | None = None, size_rej: bool | None = None,
             note: str = "") -> Judgement:
    """``j`` re-decided at the two-sided ``level``: its interval and MDE recomputed there; the two decisions are
    ``p < level`` unless given (a family passes its own)."""
    if j.p is None or j.word in ("untestable here", "descriptive"):
        return j
    if not 0.0 < level < 0.5:
        raise ValueError(f"level must be in (0, 0.5), got {level!r}")
    zero_rej = j.p < level if zero_rej is None else zero_rej
    size_rej = j.p_size < level if size_rej is None else size_rej
    return _decide(replace(j, family_note=note), level, zero_rej, size_rej, None)


def untestable(reason: str, *, claim_sign: int = 1, claimed: float | None = None, margin: float | None = None,
               diff: float | None = None, ci: tuple[float, float] | None = None, n: int = 0) -> Judgement:
    """The verdict ``untestable here`` of a claim whose gate or guard failed; ``reason`` says which, with its numbers,
    and what scale would pass it. Numbers measured anyway (``diff``, ``ci``) may be shown, never judged."""
    if not reason:
        raise ValueError("an untestable claim needs a reason (which guard failed, what scale would test it)")
    return Judgement("untestable here", diff, ci, None, None, None, n, reason, claim_sign=claim_sign, claimed=claimed,
                     margin=margin)


def descriptive(j: Judgement, why: str) -> Judgement:
    """``j`` shown but not judged: its units were not randomised independently (``why`` says how they depend); it
    keeps its effect and unadjusted interval, loses its p-values and takes no part in a family."""
    if not why:
        raise ValueError("a descriptive row needs the reason its units are not independent")
    return replace(j, word="descriptive", p=None, p_size=None, p_adj=None, p_size_adj=None, mde=None,
                   ci=j.ci_raw, level=j.alpha, reason=f"descriptive only: {why}")


# ---------------------------------------------------------------------------------------------- the family

def shaffer(pvalues: Sequence[float], claims: Sequence[Any], *, alpha: float = 0.05,
            both_may_hold: Iterable[Any] = ()) -> tuple[list[float], list[bool], float]:
    """Holm's step-down with Shaffer's logical restriction over hypotheses grouped by claim.

    ``pvalues[i]`` belongs to claim ``claims[i]``; the hypotheses of one claim cannot all be true at once (δ = 0 and
    δ = S), so at each step the number of hypotheses that may still be true, ``t``, is the number of claims with a
    hypothesis left, plus one for each claim of ``both_may_hold`` (equivalence: |δ| = margin makes both true) that
    still has two. Step ``r`` rejects when ``p₍ᵣ₎ < α / tᵣ``; adjusted p₍ᵣ₎ = max over j ≤ r of min(1, tⱼ·p₍ⱼ₎).
    With one hypothesis per claim this is Holm's procedure exactly. Returns ``(adjusted p, rejected, level)``, in
    the input order, with ``level`` the step level where the procedure stopped (α when everything was rejected):
    every rejected p is below it and every kept p at or above it. O(m log m + m·c).
    """
    alpha = _check_alpha(alpha)
    m = len(pvalues)
    if len(claims) != m:
        raise ValueError(f"pvalues ({m}) and claims ({len(claims)}) must have the same length")
    both = set(both_may_hold)
    order = sorted(range(m), key=lambda i: pvalues[i])
    left: dict[Any, int] = {}
    for c in claims:
        left[c] = left.get(c, 0) + 1
    adjusted, rejected = [1.0] * m, [False] * m
    running, stopped, level = 0.0, False, alpha
    for i in order:
        t = sum(1 for c, k in left.items() if k) + sum(1 for c in both if left.get(c, 0) >= 2)
        running = max(running, min(1.0, t * pvalues[i]))
        adjusted[i] = running
        if not stopped and pvalues[i] < alpha / t:
            rejected[i] = True
        elif not stopped:
            stopped, level = True, alpha / t
        left[claims[i]] -= 1
    return adjusted, rejected, level


def family(judgements: Sequence[Judgement], *, alpha: float = 0.05, name: str = "the chapter") -> list[Judgement]:
    """Adjust one family (a chapter) with :func:`shaffer` over every hypothesis of every judged claim and re-decide
    every judged claim at the level where the procedure stopped (:func:`at_level`): interval, MDE and word at that
    level, the adjusted p-values set. Rows without a test (untestable, descriptive) keep their word; rows whose test
    cannot reach ``alpha`` at all (:attr:`Judgement.min_p` ≥ α) take no part and are shown at the family's level
    (Tarone's refinement). Returns the judgements in the input order."""
    alpha = _check_alpha(alpha)
    judgements = list(judgements)
    members = [i for i, j in enumerate(judgements) if j.p is not None and j.min_p is not None and j.min_p < alpha]
    pvalues, owners = [], []
    for i in members:
        pvalues += [judgements[i].p, judgements[i].p_size]
        owners += [i, i]
    equivalence = [i for i in members if judgements[i].margin is not None]
    if pvalues:
        adjusted, rejected, level = shaffer(pvalues, owners, alpha=alpha, both_may_hold=equivalence)
    else:
        adjusted, rejected, level = [], [], alpha
    note = (f"{name}: {len(members)} claims, {len(pvalues)} hypotheses, Holm–Shaffer stopped at level {level:.3g}"
            if len(members) > 1 else "")
    out = list(judgements)
    for k, i in enumerate(members):
        j = replace(judgements[i], p_adj=adjusted[2 * k], p_size_adj=adjusted[2 * k + 1])
        out[i] = at_level(j, level, zero_rej=rejected[2 * k], size_rej=rejected[2 * k + 1], note=note)
    for i, j in enumerate(judgements):
        if i not in members and j.p is not None:
            out[i] = at_level(j, level, zero_rej=False, size_rej=False,
                              note=f"no test at this n reaches p < {alpha:g}, so the row takes no part in {name}'s "
                                   f"family")
    return out


def family_words(judgements: Iterable[Judgement]) -> dict[str, int]:
    """How many judgements carry each word, in the order of :data:`WORDS` (words with none left out)."""
    counts = {w: 0 for w in WORDS}
    for j in judgements:
        counts[j.word] += 1
    return {w: c for w, c in counts.items() if c}
