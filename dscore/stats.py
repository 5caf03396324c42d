"""Verdicts that are evidence: paired tests over independently randomised units, sizes, power and multiplicity.

One question is asked of every claim of a paper: *does our interval for A − B agree with the paper's claimed
size, and with zero?* The answer is one of these words (:data:`WORDS`):

Direction claims ("A beats B", optionally "by ``claimed``"), with the 95 % interval ``[lo, hi]`` turned to the
claimed sign:

* ``reproduced`` — zero is rejected and either no size is claimed or ``hi ≥ claimed``;
* ``weaker than claimed`` — zero is rejected, but ``hi < claimed``;
* ``not reproduced`` — zero is not rejected and ``hi < claimed``: the claimed size is ruled out;
* ``contradicted`` — the opposite sign, with zero rejected;
* ``underpowered`` — the interval holds both 0 and the claimed size (or no size is claimed), or there are
  fewer than :data:`MIN_UNITS` units per arm; the row's minimum detectable effect says what it could see.

Equivalence claims ("no worse than", "on par with", "lossless"), with a ``margin`` stated on the page: two
one-sided tests (TOST) at ``alpha``: ``equivalent`` when the 90 % interval lies inside ±margin, ``not equivalent``
when it lies wholly outside, otherwise ``underpowered``.

And ``untestable here`` for a claim whose design guard failed (:func:`untestable`), with the reason.

**The unit of replication** is what was randomised independently (a selection seed, a distillation seed).
``judge`` takes one number per unit and arm (evaluation seeds already averaged inside a unit) as a mapping
``{unit id: value}``; paired arms are matched by unit id, never by position.

**Statistics** come from :mod:`scipy.stats`: ``ttest_rel`` (paired) or ``ttest_ind(equal_var=False)`` (Welch)
for p-values and intervals, the noncentral t for power (:func:`mde`). :func:`holm` adjusts the p-values of one
family (a chapter) and re-decides the zero-test part of every word on the adjusted p.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Iterable, Mapping, Sequence

import numpy as np
from scipy import optimize, stats

__all__ = ["WORDS", "DIRECTION_WORDS", "EQUIVALENCE_WORDS", "MIN_UNITS", "POWER", "Judgement", "judge",
           "untestable", "holm", "mde", "as_units"]

DIRECTION_WORDS = ("reproduced", "weaker than claimed", "not reproduced", "contradicted", "underpowered")
EQUIVALENCE_WORDS = ("equivalent", "not equivalent", "underpowered")
#: every word a verdict can carry
WORDS = ("reproduced", "weaker than claimed", "not reproduced", "contradicted", "underpowered", "untestable here",
         "equivalent", "not equivalent")
#: fewer units than this per arm: ``underpowered`` whatever the numbers say
MIN_UNITS = 3
#: the power at which :func:`mde` is the smallest detectable effect
POWER = 0.8


@dataclass(frozen=True)
class Judgement:
    """The verdict on one claim (see the module docstring for the words).

    ``diff`` is mean(A) − mean(B) over units (paired: the mean of the per-unit differences), ``ci`` its
    two-sided 95 % interval (``1 − alpha``), ``ci90`` the ``1 − 2·alpha`` interval TOST uses; ``p`` the two-sided
    p-value of the zero test for a direction claim and the TOST p-value for an equivalence claim; ``p_adj`` the
    Holm-adjusted p (None until :func:`holm`); ``mde`` the smallest |A − B| this design detects with 80 % power
    at ``alpha`` (two-sided), from the observed spread and ``n``; ``n`` the number of units (pairs when paired,
    else ``min(n_a, n_b)``). Any of the numbers is None where it is undefined (too few units, a failed guard).
    """
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
    ci90: tuple[float, float] | None = None
    units: tuple = ()

    @property
    def kind(self) -> str:
        """``"equivalence"`` when a margin was given, ``"guard"`` for an untestable claim, else ``"direction"``."""
        if self.word == "untestable here":
            return "guard"
        return "equivalence" if self.margin is not None else "direction"

    def __str__(self) -> str:
        return self.word

    def as_dict(self) -> dict[str, Any]:
        """A JSON-ready record of every field (tuples become lists)."""
        return {"word": self.word, "diff": self.diff, "ci": None if self.ci is None else list(self.ci), "p": self.p,
                "p_adj": self.p_adj, "mde": self.mde, "n": self.n, "reason": self.reason,
                "claim_sign": self.claim_sign, "claimed": self.claimed, "margin": self.margin, "paired": self.paired,
                "alpha": self.alpha, "n_a": self.n_a, "n_b": self.n_b,
                "ci90": None if self.ci90 is None else list(self.ci90), "units": [str(u) for u in self.units]}

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> "Judgement":
        """The inverse of :meth:`as_dict`."""
        d = dict(d)
        for key in ("ci", "ci90"):
            if d.get(key) is not None:
                d[key] = tuple(float(v) for v in d[key])
        d["units"] = tuple(d.get("units", ()))
        return cls(**d)


def _check_alpha(alpha: Any) -> float:
    try:
        ok = 0.0 < float(alpha) < 0.5
    except (TypeError, ValueError):
        ok = False
    if not ok:
        raise ValueError(f"alpha must be a number in (0, 0.5), got {alpha!r}")
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

    ``se == 0`` gives 0 (any difference is detected); ``df`` not finite and > 0 gives None.
    """
    alpha = _check_alpha(alpha)
    if not (df > 0 and math.isfinite(df)) or not math.isfinite(se) or se < 0:
        return None
    if se == 0:
        return 0.0
    hi = se * (stats.t.ppf(1.0 - alpha / 2.0, df) + stats.t.ppf(power, df) + 1.0)
    while _power(hi, se, df, alpha) < power:
        hi *= 2.0
    return float(optimize.brentq(lambda d: _power(d, se, df, alpha) - power, 0.0, hi, xtol=1e-12 * max(1.0, hi)))


#: a spread below this fraction of the values' magnitude is float round-off, not variation
ROUND_OFF = 1e-12


def _constant(x: np.ndarray) -> bool:
    """True when the values differ only by float round-off (then there is no spread to test against)."""
    return float(x.max() - x.min()) <= ROUND_OFF * max(1.0, float(np.abs(x).max()))


def _direction_word(diff: float, ci: tuple[float, float], rejected: bool, claim_sign: int,
                    claimed: float | None) -> tuple[str, str]:
    """The word of a direction claim from the interval turned to the claimed sign and the zero test."""
    lo, hi = sorted((claim_sign * ci[0], claim_sign * ci[1]))
    d = claim_sign * diff
    size = None if claimed is None or claimed == 0 else abs(claimed)
    if rejected and d > 0:
        if size is None:
            return "reproduced", "zero is rejected with the claimed sign (no size is claimed)"
        if hi >= size:
            return "reproduced", f"zero is rejected and the interval reaches the claimed {size:g}"
        return "weaker than claimed", f"zero is rejected, but the interval ends at {hi:.3g} < the claimed {size:g}"
    if rejected and d < 0:
        return "contradicted", "the opposite sign, with zero rejected"
    if size is not None and hi < size:
        return "not reproduced", f"zero is not rejected and the interval ends at {hi:.3g} < the claimed {size:g}"
    if size is None:
        return "underpowered", "zero is not rejected and no size is claimed"
    return "underpowered", f"the interval holds both 0 and the claimed {size:g}"


def _equivalence_word(ci90: tuple[float, float], p_tost: float, margin: float, alpha: float) -> tuple[str, str]:
    lo, hi = ci90
    if p_tost < alpha:
        return "equivalent", f"the 90 % interval [{lo:.3g}, {hi:.3g}] lies inside ±{margin:g} (TOST)"
    if lo >= margin or hi <= -margin:
        return "not equivalent", f"the 90 % interval [{lo:.3g}, {hi:.3g}] lies wholly outside ±{margin:g}"
    return "underpowered", f"the 90 % interval [{lo:.3g}, {hi:.3g}] is neither inside nor outside ±{margin:g}"


def judge(a: Any, b: Any, *, claim_sign: int = +1, claimed: float | None = None, margin: float | None = None,
          paired: bool = True, alpha: float = 0.05) -> Judgement:
    """Judge the claim "A − B has sign ``claim_sign``" (size ``claimed``), or with ``margin`` the claim
    "|A − B| < margin", from one value per unit and arm.

    ``a``/``b``: ``{unit id → value}`` or sequences (ids 0, 1, …). ``paired=True`` matches the arms by unit id
    (``scipy.stats.ttest_rel`` on the matched pairs) and raises ValueError naming the ids one arm lacks;
    ``paired=False`` compares the arms as independent samples (``ttest_ind(equal_var=False)``, Welch).
    ``claimed``: the paper's A − B in the units of ``a``/``b``; a non-zero value must have the sign
    ``claim_sign``. The word is decided on the raw p; :func:`holm` re-decides it on the adjusted p.
    Cost: O(n) plus a root search for the MDE.
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
    if margin is not None:
        margin = float(margin)
        if not (margin > 0 and math.isfinite(margin)):
            raise ValueError(f"margin must be a finite number > 0 (the equivalence bound), got {margin}")
    ua, ub = as_units(a, "a"), as_units(b, "b")
    if not ua or not ub:
        raise ValueError(f"both arms need at least one unit, got n_a={len(ua)}, n_b={len(ub)}")
    common = dict(claim_sign=claim_sign, claimed=claimed, margin=margin, paired=bool(paired), alpha=alpha,
                  n_a=len(ua), n_b=len(ub), p_adj=None)
    if paired:
        missing_b = [u for u in ua if u not in ub]
        missing_a = [u for u in ub if u not in ua]
        if missing_a or missing_b:
            raise ValueError(f"paired arms must cover the same units: a lacks {missing_a}, b lacks {missing_b}")
        units = tuple(sorted(ua, key=str))
        xa = np.array([ua[u] for u in units])
        xb = np.array([ub[u] for u in units])
        d = xa - xb
        diff, n = float(d.mean()), len(d)
    else:
        units = tuple(sorted(set(ua) | set(ub), key=str))
        xa, xb = np.array(list(ua.values())), np.array(list(ub.values()))
        diff, n = float(xa.mean() - xb.mean()), min(len(xa), len(xb))
    common["units"] = units
    too_few = min(len(ua), len(ub)) < MIN_UNITS
    if min(len(ua), len(ub)) < 2:
        return Judgement("underpowered", diff, None, None, mde=None, n=n,
                         reason=f"fewer than {MIN_UNITS} units per arm (n_a={len(ua)}, n_b={len(ub)}); one unit has "
                                f"no spread to test against", **common)
    # The standard error and degrees of freedom of the difference, and the scipy test.
    if paired:
        sd = 0.0 if _constant(d) else float(d.std(ddof=1))
        se, df = sd / math.sqrt(n), float(n - 1)
    else:
        va = 0.0 if _constant(xa) else float(xa.var(ddof=1)) / len(xa)
        vb = 0.0 if _constant(xb) else float(xb.var(ddof=1)) / len(xb)
        se = math.sqrt(va + vb)
        df = (va + vb) ** 2 / (va ** 2 / (len(xa) - 1) + vb ** 2 / (len(xb) - 1)) if se > 0 else float(n - 1)
    power_mde = mde(se, df, alpha=alpha)
    if se == 0.0:
        # no spread: the difference is exact
        scale = max(1.0, float(np.abs(xa).max()), float(np.abs(xb).max()))
        if abs(diff) <= ROUND_OFF * scale:       # the same values summed in another order: no difference
            diff = 0.0
        p = 1.0 if diff == 0 else 0.0
        ci = ci90 = (diff, diff)
    else:
        res = stats.ttest_rel(xa, xb) if paired else stats.ttest_ind(xa, xb, equal_var=False)
        p = float(res.pvalue)
        ci = tuple(float(v) for v in res.confidence_interval(confidence_level=1.0 - alpha))
        ci90 = tuple(float(v) for v in res.confidence_interval(confidence_level=1.0 - 2.0 * alpha))
    if too_few:
        # the interval and the MDE are shown, but two units are too few to judge: no p enters a family
        return Judgement("underpowered", diff, ci, None, mde=power_mde, n=n, ci90=ci90,
                         reason=f"fewer than {MIN_UNITS} units per arm (n_a={len(ua)}, n_b={len(ub)})", **common)
    if margin is None:
        word, why = _direction_word(diff, ci, p < alpha, claim_sign, claimed)
        return Judgement(word, diff, ci, p, mde=power_mde, n=n, ci90=ci90, reason=why, **common)
    # TOST: the larger of the two one-sided p-values against ±margin
    if se == 0.0:
        p_tost = 0.0 if abs(diff) < margin else 1.0
    elif paired:
        p_lo = stats.ttest_rel(xa, xb + (-margin), alternative="greater").pvalue
        p_hi = stats.ttest_rel(xa, xb + margin, alternative="less").pvalue
        p_tost = float(max(p_lo, p_hi))
    else:
        p_lo = stats.ttest_ind(xa, xb - margin, equal_var=False, alternative="greater").pvalue
        p_hi = stats.ttest_ind(xa, xb + margin, equal_var=False, alternative="less").pvalue
        p_tost = float(max(p_lo, p_hi))
    word, why = _equivalence_word(ci90, p_tost, margin, alpha)
    return Judgement(word, diff, ci, p_tost, mde=power_mde, n=n, ci90=ci90, reason=why, **common)


def untestable(reason: str, *, claim_sign: int = 1, claimed: float | None = None, margin: float | None = None,
               diff: float | None = None, ci: tuple[float, float] | None = None, n: int = 0) -> Judgement:
    """The verdict ``untestable here`` of a claim whose design guard failed; ``reason`` says which guard and what
    scale would test it. Numbers measured anyway (``diff``, ``ci``) may be shown, never judged."""
    if not reason:
        raise ValueError("an untestable claim needs a reason (which guard failed, what scale would test it)")
    return Judgement("untestable here", diff, ci, None, None, None, n, reason, claim_sign=claim_sign, claimed=claimed,
                     margin=margin)


def holm(judgements: Sequence[Judgement]) -> list[Judgement]:
    """Holm's step-down adjustment over one family; returns the judgements in the same order with ``p_adj`` set
    and the zero-test part of every word re-decided on ``p_adj`` (judgements without a p — untestable, too few
    units — keep their word and take no part).

    With the m defined p-values sorted, p₍₁₎ ≤ … ≤ p₍ₘ₎: p_adj₍ᵢ₎ = max over j ≤ i of min(1, (m − j + 1)·p₍ⱼ₎).
    """
    judgements = list(judgements)
    tested = [i for i, j in enumerate(judgements) if j.p is not None]
    order = sorted(tested, key=lambda i: judgements[i].p)
    m = len(order)
    adjusted: dict[int, float] = {}
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * judgements[i].p))
        adjusted[i] = running
    out = []
    for i, j in enumerate(judgements):
        if i not in adjusted:
            out.append(j)
            continue
        p_adj = adjusted[i]
        if j.margin is not None:
            word, why = _equivalence_word(j.ci90, p_adj, j.margin, j.alpha)
        else:
            word, why = _direction_word(j.diff, j.ci, p_adj < j.alpha, j.claim_sign, j.claimed)
        if m > 1:
            why += f" (Holm over {m} claims: p {j.p:.3g} → {p_adj:.3g})"
        out.append(replace(j, p_adj=p_adj, word=word, reason=why))
    return out


def family_words(judgements: Iterable[Judgement]) -> dict[str, int]:
    """How many judgements carry each word, in the order of :data:`WORDS` (words with none left out)."""
    counts = {w: 0 for w in WORDS}
    for j in judgements:
        counts[j.word] += 1
    return {w: c for w, c in counts.items() if c}
