"""Helpers for the book's notebooks: glued numbers, the run banner, image grids, tables.

Nothing here computes results; it only presents what the other modules computed.
"""
from __future__ import annotations

import math
import platform
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
