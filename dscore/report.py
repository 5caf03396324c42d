"""Helpers for the book's notebooks: glued numbers, the run banner, image grids, tables, verdicts.

Nothing here computes results; it presents and judges what the other modules computed: the verdict of
an A-vs-B comparison over seeds (Welch or bootstrap), the gap to a published number, and the speed-up
factor of an efficiency curve.
"""
from __future__ import annotations

import math
import platform
from dataclasses import dataclass
from typing import Any, Sequence

import torch


def glue(name: str, value: Any, *, display: bool = False) -> Any:
    """Store ``value`` under ``name`` for ``{glue}`` references on prose pages (myst-nb).

    Outside a notebook build (myst-nb missing or no IPython kernel) this is a no-op returning ``value``.
    """
    try:
        from myst_nb import glue as _glue
    except ImportError:  # plain library use
        return value
    try:
        _glue(name, value, display=display)
    except Exception:  # not inside an IPython kernel
        pass
    return value


def run_banner(profile: str, **settings: Any):
    """A one-line Markdown note: profile, settings (seeds, sizes …), torch version and device."""
    from IPython.display import Markdown

    device = "CUDA " + torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    parts = ", ".join(f"`{k}={v}`" for k, v in settings.items())
    return Markdown(f"**Run:** profile `{profile}`; {parts}; torch {torch.__version__} on {device} "
                    f"(Python {platform.python_version()}).")


def format_mean_std(mean: float, std: float, *, scale: float = 100.0, digits: int = 1) -> str:
    """``0.8123, 0.004 → '81.2 ± 0.4'`` (accuracies in percent by default)."""
    return f"{mean * scale:.{digits}f} ± {std * scale:.{digits}f}"


def image_grid(images: torch.Tensor, labels: torch.Tensor | None = None, class_names: Sequence[str] | None = None,
               *, per_row: int | None = None, title: str | None = None, ax=None):
    """Show (N, C, H, W) images in [0, 1] as a grid; returns the matplotlib figure.

    With ``labels`` and ``class_names`` the images are arranged one class per row.
    """
    import matplotlib.pyplot as plt

    images = images.detach().float().cpu().clamp(0, 1)
    if images.dim() != 4:
        raise ValueError(f"images must have shape (N, C, H, W), got {tuple(images.shape)}")
    n = images.shape[0]
    if labels is not None:
        classes = labels.unique(sorted=True).tolist()
        rows = [images[labels.cpu() == c] for c in classes]
        cols = max(r.shape[0] for r in rows)
    else:
        cols = per_row or max(1, int(math.ceil(math.sqrt(n))))
        rows = [images[i:i + cols] for i in range(0, n, cols)]
        classes = None
    if ax is None:
        fig, ax = plt.subplots(figsize=(cols * 0.7 + (1.6 if class_names else 0.2), len(rows) * 0.7 + 0.4))
    else:
        fig = ax.figure
    c, h, w = images.shape[1:]
    canvas = torch.ones(c, len(rows) * (h + 1), cols * (w + 1))
    for r, row in enumerate(rows):
        for j in range(row.shape[0]):
            canvas[:, r * (h + 1):r * (h + 1) + h, j * (w + 1):j * (w + 1) + w] = row[j]
    ax.imshow(canvas.permute(1, 2, 0).squeeze(-1).numpy(), cmap="gray" if c == 1 else None, vmin=0, vmax=1,
              interpolation="nearest")
    ax.set_xticks([])
    if classes is not None and class_names is not None:
        ax.set_yticks([r * (h + 1) + h / 2 for r in range(len(rows))])
        ax.set_yticklabels([class_names[c] for c in classes])
    else:
        ax.set_yticks([])
    if title:
        ax.set_title(title)
    return fig


# ---------------------------------------------------------------------------------------------------
# Verdicts: our own A-vs-B comparisons over seeds
# ---------------------------------------------------------------------------------------------------

#: The only verdicts a comparison can get.
VERDICTS = ("reproduced", "direction only", "not reproduced", "inconclusive")
VERDICT_METHODS = ("welch", "bootstrap")
MIN_SEEDS = 3


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the incomplete beta function (modified Lentz, as in Numerical Recipes)."""
    tiny, eps = 1e-300, 1e-15
    qab, qap, qam = a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = tiny if abs(d) < tiny else d
    d = 1.0 / d
    h = d
    for m in range(1, 10_000):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = tiny if abs(d) < tiny else d
        c = 1.0 + aa / c
        c = tiny if abs(c) < tiny else c
        d = 1.0 / d
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < eps:
            return h
    raise RuntimeError(f"incomplete beta continued fraction did not converge for a={a}, b={b}, x={x}")


def betainc_reg(a: float, b: float, x: float) -> float:
    """Regularized incomplete beta function I_x(a, b) for a, b > 0 and 0 ≤ x ≤ 1."""
    if not (a > 0 and b > 0 and math.isfinite(a) and math.isfinite(b)):
        raise ValueError(f"betainc_reg needs finite a > 0 and b > 0, got a={a}, b={b}")
    if not 0.0 <= x <= 1.0:
        raise ValueError(f"betainc_reg needs 0 <= x <= 1, got x={x}")
    if x == 0.0 or x == 1.0:
        return float(x)
    log_front = (math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b)
                 + a * math.log(x) + b * math.log1p(-x))
    front = math.exp(log_front)
    if x < (a + 1.0) / (a + b + 2.0):
        return front * _betacf(a, b, x) / a
    return 1.0 - front * _betacf(b, a, 1.0 - x) / b


def _check_df(df: float) -> float:
    df = float(df)
    if not (df > 0 and math.isfinite(df)):
        raise ValueError(f"degrees of freedom must be finite and > 0, got df={df}")
    return df


def student_t_sf2(t: float, df: float) -> float:
    """Two-sided tail probability P(|T| ≥ |t|) of Student's t with ``df`` degrees of freedom."""
    df = _check_df(df)
    t = float(t)
    if math.isnan(t):
        raise ValueError("t must not be NaN")
    if math.isinf(t):
        return 0.0
    return betainc_reg(df / 2.0, 0.5, df / (df + t * t))


def student_t_cdf(t: float, df: float) -> float:
    """CDF of Student's t distribution, from the regularized incomplete beta function."""
    tail = 0.5 * student_t_sf2(t, df)
    return 1.0 - tail if t > 0 else tail


def student_t_ppf(q: float, df: float) -> float:
    """Quantile of Student's t (inverse of :func:`student_t_cdf`), by bisection to machine precision."""
    df = _check_df(df)
    q = float(q)
    if not 0.0 < q < 1.0:
        raise ValueError(f"quantile level must be in (0, 1), got q={q}")
    if q == 0.5:
        return 0.0
    if q < 0.5:
        return -student_t_ppf(1.0 - q, df)
    lo, hi = 0.0, 1.0
    while student_t_cdf(hi, df) < q:
        lo, hi = hi, hi * 2.0
        if hi > 1e300:
            raise RuntimeError(f"t quantile q={q}, df={df} out of range")
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if student_t_cdf(mid, df) < q:
            lo = mid
        else:
            hi = mid
        if hi - lo <= 1e-13 * max(1.0, hi):
            break
    return 0.5 * (lo + hi)


def _as_sample(values: Any, name: str):
    import numpy as np

    if isinstance(values, torch.Tensor):
        values = values.detach().cpu().double().numpy()
    arr = np.asarray(values, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a 1-D sequence of per-seed values, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} contains non-finite values {arr[~np.isfinite(arr)].tolist()}; "
                         f"only finite per-seed accuracies are allowed")
    return arr


@dataclass(frozen=True)
class WelchResult:
    """Welch's unequal-variance t-test of mean(a) − mean(b)."""
    diff: float
    se: float
    t: float | None        # None when se == 0
    dof: float | None      # Welch–Satterthwaite; None when se == 0
    p_value: float | None  # two-sided; None when the test is undefined (se == 0 and diff == 0)
    ci: tuple[float, float] | None


def welch_test(a: Any, b: Any, *, alpha: float = 0.05) -> WelchResult:
    """Welch's t-test and the (1 − alpha) confidence interval of mean(a) − mean(b).

    Needs at least two values per side. With zero variance on both sides the difference is exact:
    p = 0 and CI = (diff, diff) when the means differ, p undefined (None) when they are equal.
    """
    a, b = _as_sample(a, "a"), _as_sample(b, "b")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if len(a) < 2 or len(b) < 2:
        raise ValueError(f"Welch's test needs at least 2 values per side, got n_a={len(a)}, n_b={len(b)}")
    na, nb = len(a), len(b)
    diff = float(a.mean() - b.mean())
    # A constant sample has exactly zero variance (np.var can leave rounding noise of its mean).
    va = 0.0 if a.min() == a.max() else float(a.var(ddof=1)) / na
    vb = 0.0 if b.min() == b.max() else float(b.var(ddof=1)) / nb
    se2 = va + vb
    if se2 <= 0.0:
        if diff == 0.0:
            return WelchResult(diff, 0.0, None, None, None, None)
        return WelchResult(diff, 0.0, None, None, 0.0, (diff, diff))
    se = math.sqrt(se2)
    dof = se2 * se2 / (va * va / (na - 1) + vb * vb / (nb - 1))
    t = diff / se
    p = student_t_sf2(t, dof)
    half = student_t_ppf(1.0 - alpha / 2.0, dof) * se
    return WelchResult(diff, se, t, dof, p, (diff - half, diff + half))


def bootstrap_diff(a: Any, b: Any, *, alpha: float = 0.05, n_boot: int = 10_000, seed: int = 0):
    """Percentile bootstrap of mean(a) − mean(b): ``(ci, p_value, draws)``.

    Each side is resampled with replacement independently, all ``n_boot`` draws at once (seeded NumPy
    generator, so the same seed gives the same interval). ``p_value`` is the two-sided bootstrap
    tail, ``min(1, 2·min(P*(d ≤ 0), P*(d ≥ 0)))``.
    """
    import numpy as np

    a, b = _as_sample(a, "a"), _as_sample(b, "b")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 100:
        raise ValueError(f"n_boot must be an integer >= 100, got {n_boot!r}")
    if len(a) < 1 or len(b) < 1:
        raise ValueError(f"bootstrap needs at least one value per side, got n_a={len(a)}, n_b={len(b)}")
    rng = np.random.default_rng(seed)
    ia = rng.integers(0, len(a), size=(n_boot, len(a)))
    ib = rng.integers(0, len(b), size=(n_boot, len(b)))
    draws = a[ia].mean(axis=1) - b[ib].mean(axis=1)
    lo, hi = np.quantile(draws, [alpha / 2.0, 1.0 - alpha / 2.0])
    p = min(1.0, 2.0 * min(float((draws <= 0).mean()), float((draws >= 0).mean())))
    return (float(lo), float(hi)), p, draws


@dataclass(frozen=True)
class Verdict:
    """The outcome of one A-vs-B comparison over seeds (see :func:`verdict`)."""
    verdict: str                        # one of VERDICTS
    diff: float                         # mean(a) − mean(b)
    ci: tuple[float, float] | None      # (1 − alpha) interval of the difference; None if undefined
    p_value: float | None               # two-sided; None if undefined (too few seeds, zero variance)
    n_a: int
    n_b: int
    method: str                         # "welch" or "bootstrap"
    claim_sign: int = 1
    alpha: float = 0.05
    claimed_diff: float | None = None   # the paper's difference, if it states one
    claimed_in_ci: bool | None = None   # whether that difference lies in our interval
    reason: str = ""

    def __str__(self) -> str:
        return self.verdict


#: relative size below which a mean difference is float round-off, not a sign (see :func:`verdict`)
ROUND_OFF = 1e-12


def verdict(ours_a: Any, ours_b: Any, *, claim_sign: int = +1, alpha: float = 0.05, method: str = "welch",
            claimed_diff: float | None = None, n_boot: int = 10_000, seed: int = 0) -> Verdict:
    """Judge the paper's claim that mean(A) − mean(B) has sign ``claim_sign``, from our per-seed values.

    * ``reproduced``: our difference has the claimed sign and lies outside noise;
    * ``direction only``: the claimed sign, but within noise;
    * ``not reproduced``: the opposite sign, outside noise;
    * ``inconclusive``: the opposite sign (or zero) within noise, fewer than 3 seeds on a side, or
      zero variance on both sides with equal means (the test is undefined). A difference no larger than
      float round-off (``ROUND_OFF`` × the largest magnitude, at least 1) counts as zero.

    Noise is a two-sided test at level ``alpha``: Welch's t-test (``method="welch"``; outside noise
    ⇔ p < alpha) or a seeded percentile bootstrap of the mean difference (``method="bootstrap"``;
    outside noise ⇔ the interval excludes 0). ``claimed_diff`` (the paper's A − B, if it gives one)
    does not change the verdict; the result says whether it lies in our interval.
    """
    if claim_sign not in (1, -1) or isinstance(claim_sign, bool):
        raise ValueError(f"claim_sign must be +1 or -1, got {claim_sign!r}")
    if method not in VERDICT_METHODS:
        raise ValueError(f"method must be one of {VERDICT_METHODS}, got {method!r}")
    try:
        alpha_ok = 0.0 < float(alpha) < 1.0
    except (TypeError, ValueError):
        alpha_ok = False
    if not alpha_ok:
        raise ValueError(f"alpha must be a number in (0, 1), got {alpha!r}")
    alpha = float(alpha)
    if claimed_diff is not None:
        claimed_diff = float(claimed_diff)
        if not math.isfinite(claimed_diff):
            raise ValueError(f"claimed_diff must be finite or None, got {claimed_diff}")
        if claimed_diff != 0 and math.copysign(1, claimed_diff) != claim_sign:
            raise ValueError(f"claimed_diff={claimed_diff} contradicts claim_sign={claim_sign}")
    a, b = _as_sample(ours_a, "ours_a"), _as_sample(ours_b, "ours_b")
    na, nb = len(a), len(b)
    if na == 0 or nb == 0:
        raise ValueError(f"both sides need at least one value, got n_a={na}, n_b={nb}")
    diff = float(a.mean() - b.mean())
    common = dict(n_a=na, n_b=nb, method=method, claim_sign=claim_sign, alpha=float(alpha),
                  claimed_diff=claimed_diff)
    if na < MIN_SEEDS or nb < MIN_SEEDS:
        return Verdict("inconclusive", diff, None, None,
                       reason=f"fewer than {MIN_SEEDS} seeds per side (n_a={na}, n_b={nb})", **common)
    if method == "welch":
        res = welch_test(a, b, alpha=alpha)
        ci, p = res.ci, res.p_value
        if p is None:
            return Verdict("inconclusive", diff, None, None,
                           reason="zero variance on both sides and equal means: the test is undefined", **common)
        outside = p < alpha
    else:
        if a.min() == a.max() and b.min() == b.max() and diff == 0.0:
            return Verdict("inconclusive", diff, None, None,
                           reason="zero variance on both sides and equal means: the test is undefined", **common)
        ci, p, _ = bootstrap_diff(a, b, alpha=alpha, n_boot=n_boot, seed=seed)
        outside = ci[0] > 0.0 or ci[1] < 0.0
    # a difference within float round-off of the values (e.g. the same accuracies summed in another order) has no sign
    scale = max(1.0, float(abs(a).max()), float(abs(b).max()))
    sign = 0 if abs(diff) <= ROUND_OFF * scale else (1 if diff > 0 else -1)
    if sign == claim_sign:
        word = "reproduced" if outside else "direction only"
    elif sign == -claim_sign and outside:
        word = "not reproduced"
    else:
        word = "inconclusive"
    noise = "outside" if outside else "within"
    sign_word = "zero" if sign == 0 else ("the claimed sign" if sign == claim_sign else "the opposite sign")
    in_ci = None if claimed_diff is None or ci is None else bool(ci[0] <= claimed_diff <= ci[1])
    return Verdict(word, diff, ci, p, claimed_in_ci=in_ci,
                   reason=f"difference {diff:+.4g} has {sign_word}, {noise} noise ({method}, p={p:.3g})",
                   **common)


def paper_gap(ours_mean: float, paper_value: Any) -> float:
    """Our mean minus the published number (a plain difference, not a verdict: the paper gives no seeds).

    ``paper_value`` may be a number or anything with a ``value`` attribute (a ``dscore.papers`` cell).
    """
    value = getattr(paper_value, "value", paper_value)
    if value is None:
        raise ValueError("the paper reports no number for this cell (value None); there is no gap to compute")
    try:
        ours, theirs = float(ours_mean), float(value)
    except (TypeError, ValueError):
        raise ValueError(f"ours_mean and paper_value must be numbers, got {ours_mean!r} and {value!r}") from None
    if not (math.isfinite(ours) and math.isfinite(theirs)):
        raise ValueError(f"ours_mean and paper_value must be finite, got {ours} and {theirs}")
    return ours - theirs


# ---------------------------------------------------------------------------------------------------
# Speed-up factor of an efficiency curve (DREAM+ Fig. 4 / 9)
# ---------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Speedup:
    """Result of :func:`speedup_factor`. ``factor`` is None whenever it has no finite value."""
    factor: float | None
    target: float
    base_x: float | None            # where the baseline first reaches the target (interpolated)
    method_x: float | None          # where the method first reaches it
    reason: str                     # "crossed", "reached at first point", "never reached",
                                    # "baseline never reached", "reached at x = 0"
    note: str = ""
    lower_bound: bool = False       # the method was already there at its first checkpoint
    base_at_first_point: bool = False


def _first_reach(x, acc, target: float) -> tuple[float | None, bool]:
    """x where ``acc`` first reaches ``target`` (linear interpolation), and whether at the first point."""
    hits = [i for i, v in enumerate(acc) if v >= target]
    if not hits:
        return None, False
    i = hits[0]
    if i == 0:
        return float(x[0]), True
    x0, x1, y0, y1 = float(x[i - 1]), float(x[i]), float(acc[i - 1]), float(acc[i])
    return x0 + (target - y0) / (y1 - y0) * (x1 - x0), False


def _as_curve(x: Any, acc: Any, name: str):
    xs, ys = _as_sample(x, f"{name}_x"), _as_sample(acc, f"{name}_acc")
    if len(xs) != len(ys):
        raise ValueError(f"{name}_x and {name}_acc must have the same length, got {len(xs)} and {len(ys)}")
    if len(xs) == 0:
        raise ValueError(f"the {name} curve is empty")
    if (xs < 0).any():
        raise ValueError(f"{name}_x must be >= 0 (iterations or seconds), got {xs.min()}")
    if len(xs) > 1 and not (xs[1:] > xs[:-1]).all():
        raise ValueError(f"{name}_x must be strictly increasing, got {xs.tolist()}")
    return xs, ys


def speedup_factor(base_x: Any, base_acc: Any, method_x: Any, method_acc: Any, *,
                   target: float | None = None) -> Speedup:
    """How many times fewer iterations (or seconds) the method needs to reach the baseline's accuracy.

    ``target`` defaults to the baseline's final accuracy. The factor is (x where the baseline first
    reaches the target) ÷ (x where the method first reaches it), each x interpolated linearly between
    the two checkpoints around the crossing. If the method is already there at its first checkpoint
    the factor uses that first x and is only a lower bound (``lower_bound=True``).
    """
    bx, by = _as_curve(base_x, base_acc, "base")
    mx, my = _as_curve(method_x, method_acc, "method")
    if target is None:
        target = float(by[-1])
    else:
        target = float(target)
        if not math.isfinite(target):
            raise ValueError(f"target must be a finite accuracy, got {target}")
    bxt, b_first = _first_reach(bx, by, target)
    mxt, m_first = _first_reach(mx, my, target)
    if bxt is None:
        return Speedup(None, target, None, mxt, "baseline never reached",
                       note=f"the baseline never reaches {target:g}", lower_bound=m_first)
    if mxt is None:
        return Speedup(None, target, bxt, None, "never reached",
                       note=f"the method never reaches {target:g} (best {float(my.max()):g})",
                       base_at_first_point=b_first)
    if mxt == 0.0:
        return Speedup(None, target, bxt, mxt, "reached at x = 0",
                       note="the method reaches the target at x = 0: no finite factor",
                       lower_bound=True, base_at_first_point=b_first)
    factor = bxt / mxt
    if m_first:
        return Speedup(factor, target, bxt, mxt, "reached at first point",
                       note=f"the method is already at {target:g} at its first checkpoint x = {mxt:g}; "
                            f"the factor uses that x and is a lower bound",
                       lower_bound=True, base_at_first_point=b_first)
    return Speedup(factor, target, bxt, mxt, "crossed", base_at_first_point=b_first)
