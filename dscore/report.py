"""Helpers for the book's notebooks: glued numbers, the run banner, image grids, the gap to a published number and
the speed-up factor of an efficiency curve.

Nothing here computes results or judges claims: verdicts are :mod:`dscore.stats` (tests, power, the chapter family) and
:mod:`dscore.ledger` (the chapter's claims, recorded once and shown everywhere).
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
        from IPython import get_ipython
        from myst_nb import glue as _glue
    except ImportError:  # plain library use
        return value
    if get_ipython() is None:  # not inside an IPython kernel: nothing to glue into
        return value
    _glue(name, value, display=display)  # inside a kernel a failure is a real error of the page
    return value


def run_banner(profile: str, **settings: Any):
    """A one-line Markdown note: profile, settings (seeds, sizes …), torch version and device."""
    from IPython.display import Markdown

    device = "CUDA " + torch.cuda.get_device_name() if torch.cuda.is_available() else "CPU"
    parts = ", ".join(f"`{k}={v}`" for k, v in settings.items())
    return Markdown(f"**Run:** profile `{profile}`; {parts}; torch {torch.__version__} on {device} "
                    f"(Python {platform.python_version()}).")


def format_mean_std(mean: float, std: float, *, scale: float = 100.0, digits: int = 1) -> str:
    """``0.8123, 0.004 → '81.2 ± 0.4'`` (accuracies in percent by default), with no-break spaces around ± so that a
    table never wraps one number across two lines."""
    return f"{mean * scale:.{digits}f}\u00a0±\u00a0{std * scale:.{digits}f}"


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
