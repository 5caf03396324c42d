"""``make doctor`` / ``python -m dscore.book doctor``: one screen on what this machine has for dscore — Python and the
virtual environment, torch and CUDA, where the default dataset is found, the artefact cache and its size, Chromium
for the browser tests, and the GPUs. Reads only; downloads and installs nothing."""
from __future__ import annotations

import os
import platform
import shutil
import sys
from pathlib import Path

__all__ = ["report", "main", "CHROMIUM_NAMES", "find_chromium"]

#: the names a Chromium binary goes by on the PATH (``$DSCORE_CHROMIUM`` names one explicitly)
CHROMIUM_NAMES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")


def find_chromium() -> str | None:
    """The Chromium the browser tests and ``make doctor`` use: ``$DSCORE_CHROMIUM``, else the first of
    :data:`CHROMIUM_NAMES` on the PATH; None when there is none."""
    return os.environ.get("DSCORE_CHROMIUM") or next(filter(None, map(shutil.which, CHROMIUM_NAMES)), None)


def _size(path: Path) -> int:
    total = 0
    for root, _, files in os.walk(path):
        for f in files:
            try:
                total += (Path(root) / f).stat().st_size
            except OSError:
                pass
    return total


def _dataset() -> str:
    from ..data import DatasetNotFoundError, load_dataset
    from ..paths import data_root

    try:
        ds = load_dataset("fashion_mnist", "test", download=False, progress=False)
    except DatasetNotFoundError as exc:
        return "not found — " + str(exc).splitlines()[0] + " (make data installs Debian's package as root)"
    return f"{len(ds)} test images, read from {data_root() / 'FashionMNIST' / 'raw'}"


def report() -> list[tuple[str, str]]:
    """(item, finding) rows: the screen :func:`main` prints."""
    import torch

    from ..paths import cache_root

    rows = [("python", f"{platform.python_version()} ({sys.executable})"),
            ("venv", sys.prefix if sys.prefix != sys.base_prefix else "none (not a virtual environment)")]
    cuda = torch.cuda.is_available()
    rows.append(("torch", f"{torch.__version__}; CUDA {'available' if cuda else 'not available'}"
                          + (f" (CUDA {torch.version.cuda})" if torch.version.cuda else "")))
    rows.append(("GPUs", f"{torch.cuda.device_count()}" + (": " + ", ".join(torch.cuda.get_device_name(i) for i in
                                                                          range(torch.cuda.device_count()))
                                                           if cuda else "")))
    rows.append(("fashion_mnist", _dataset()))
    cache = cache_root()
    rows.append(("cache", f"{cache} ({_size(cache) / 2**20:.1f} MiB)" if cache.exists() else f"{cache} (empty)"))
    chromium = find_chromium()
    rows.append(("chromium", chromium or "not found (apt-get install chromium; the browser tests need it)"))
    return rows


def main() -> int:
    for item, finding in report():
        print(f"{item + ':':<15}{finding}")
    return 0
