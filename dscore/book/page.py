"""What a book page does in its kernel besides its study: check its parameters first, and offer its artefacts for
download.

**Parameters.** Every notebook's first code cell after the parameters cell is::

    from dscore.book import page
    pg = page.open("adq_main", globals())

the one place a page names itself: :func:`open` runs :func:`check` and returns a :class:`Page` that knows the name
(its clock, its claims' record, its downloads). :func:`check` compares the page's parameters with the ones its ``parameters`` cell declares and with the rules of
:mod:`dscore.book.rules`. A misspelt key that papermill injects (papermill adds an ``injected-parameters`` cell after
the parameters cell) is an unknown parameter, with the nearest declared name suggested. ``python -m dscore.book run
PAGE -f my.yaml`` runs the same check before it starts a kernel.

**Downloads.** :class:`Downloads` writes a page's main artefacts — selected indices (``.npy``), synthetic sets
(``.npz`` plus a PNG grid), result tables (``.csv``) — next to the executed page (``book/nb/<page>_files/`` when the
book runner executes it, else ``<page>_files/`` in the working directory) and shows links to them with a NumPy-only
snippet that loads them.
"""
from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

from ..paths import PAGE_FILES_ENV, page_files_dir
from .rules import ParameterError, check_values, page_parameters

__all__ = ["ParameterError", "open", "Page", "check", "injected_names", "PAGE_FILES_ENV", "page_files_dir", "Downloads",
           "Clock"]

#: First line of the cell papermill injects after the parameters cell.
PAPERMILL_HEADER = "# Parameters"


def injected_names(namespace: Mapping[str, Any]) -> list[str]:
    """Names assigned by the cell papermill injected (found in the kernel's input history ``In``), in order; [] when
    the page was not run by papermill with parameters."""
    import ast

    history = namespace.get("In")
    if not isinstance(history, (list, tuple)):
        return []
    for source in reversed(history):
        if isinstance(source, str) and source.split("\n", 1)[0].strip() == PAPERMILL_HEADER:
            try:
                tree = ast.parse(source)
            except SyntaxError:
                return []
            names = []
            for stmt in tree.body:
                for target in getattr(stmt, "targets", [getattr(stmt, "target", None)]):
                    if isinstance(target, ast.Name) and target.id not in names:
                        names.append(target.id)
            return names
    return []


def check(page: str, namespace: Mapping[str, Any]) -> None:
    """The check a page runs first: ``page.check("<page>", globals())`` right after its parameters cell.

    Also sets the kernel's pandas display to show every table cell in full (no cell cut to "...").
    Takes the declared parameters' values from ``namespace``, rejects names papermill injected that the page does not
    declare, and runs :func:`check_values`. Raises :class:`ParameterError`; returns nothing (so the cell shows
    nothing).
    """
    declared = page_parameters(page)
    missing = [k for k in declared if k not in namespace]
    if missing:
        raise ParameterError(f"page {page!r}: the parameter(s) {missing} are not defined; run the parameters cell first")
    injected = injected_names(namespace)
    _show_tables_in_full()
    values = {k: namespace[k] for k in declared}
    values.update({k: namespace[k] for k in injected if k not in declared and k in namespace})
    check_values(page, values, declared=declared)


class Page:
    """A page in its kernel, named once (:func:`open`): ``pg.clock`` started when the page opened, ``pg.record(claims,
    scale=…)`` (:func:`dscore.ledger.record` under the page's name), ``pg.downloads()`` (its :class:`Downloads`)."""

    def __init__(self, name: str):
        self.name = name
        self.clock = Clock(name)

    def record(self, results, *, scale: Mapping[str, Any] | None = None):
        """The page's claims recorded and shown (:func:`dscore.ledger.record`)."""
        from .. import ledger

        return ledger.record(self.name, results, scale=scale)

    def downloads(self) -> "Downloads":
        """The page's downloadable artefacts (:class:`Downloads`)."""
        return Downloads(self.name)

    def __repr__(self) -> str:
        return f"Page({self.name!r})"


def open(name: str, namespace: Mapping[str, Any]) -> Page:        # noqa: A001 (the page opens, as a file would)
    """The first call of a page, right after its parameters cell: ``pg = page.open("<page>", globals())`` checks the
    parameters (:func:`check`) and returns the :class:`Page`, the one place the page's name is written."""
    check(name, namespace)
    return Page(name)


class Clock:
    """Wall time of a page: ``clock = page.Clock("adq_bins")`` at the top, ``clock.done()`` at the end prints and
    returns the seconds (and glues them as ``<name>_seconds`` for the reproducing page)."""

    def __init__(self, name: str):
        self.name = name
        self.start = time.perf_counter()

    def done(self) -> float:
        from ..report import glue

        seconds = time.perf_counter() - self.start
        glue(f"{self.name}_seconds", round(seconds, 1))
        print(f"page {self.name}: {seconds:.1f} s wall time")
        return seconds


def _show_tables_in_full() -> None:
    """The page's tables show every cell in full: pandas would cut text cells at 50 characters ("...")."""
    import pandas as pd

    pd.set_option("display.max_colwidth", None)


# ------------------------------------------------------------------------------------------------ downloads

_SNIPPETS = {
    ".npy": "idx = np.load(\"{name}\")",
    ".npz": "d = np.load(\"{name}\"); x, y = d[\"images\"], d[\"labels\"]",
    ".csv": "t = np.genfromtxt(\"{name}\", delimiter=\",\", names=True, dtype=None, encoding=\"utf-8\")",
}


class Downloads:
    """A page's downloadable artefacts. Each method writes one file atomically into :func:`page_files_dir` and
    records a line for :meth:`markdown`; the notebook displays the object (a Markdown list of links with a
    NumPy-only load snippet). In the book the links are MyST ``{download}`` roles, which the HTML build copies."""

    def __init__(self, page: str):
        if not isinstance(page, str) or not page:
            raise ValueError(f"page={page!r} must be the page's name")
        self.page = page
        self.folder = page_files_dir(page)
        self.entries: list[tuple[str, str]] = []       # (file name, description)

    def _path(self, name: str, suffix: str) -> Path:
        if not name or any(c in name for c in "/\\ ") or name.startswith("."):
            raise ValueError(f"name={name!r} must be a plain file stem (no spaces, slashes or leading dot)")
        self.folder.mkdir(parents=True, exist_ok=True)
        return self.folder / f"{name}{suffix}"

    def _add(self, path: Path, description: str) -> Path:
        path.chmod(0o644)                                  # readable by whoever serves the book
        self.entries = [e for e in self.entries if e[0] != path.name] + [(path.name, description)]
        return path

    def table(self, name: str, frame, description: str) -> Path:
        """A pandas DataFrame as ``<name>.csv`` (the index written as columns when it is named)."""
        from ..utils import atomic_path

        path = self._path(name, ".csv")
        frame = frame.reset_index() if any(n is not None for n in frame.index.names) else frame
        if getattr(frame.columns, "nlevels", 1) > 1:
            frame = frame.copy()
            frame.columns = [" ".join(str(p) for p in c if str(p)) for c in frame.columns]
        with atomic_path(path) as tmp:
            frame.to_csv(tmp, index=False)
        return self._add(path, description)

    def indices(self, name: str, indices, description: str) -> Path:
        """Selected indices as ``<name>.npy`` (int64, 1-D). To be usable without dscore they should be positions in
        the dataset's whole split as loaded (torchvision's order): pass ``subset.source`` (or
        ``ds.source[chosen]``), which every :class:`dscore.data.ImageDataset` cut from a loaded split carries."""
        import numpy as np

        if indices is None:
            raise ValueError("indices() needs the indices: a subset's positions in its split are its .source")
        idx = np.asarray(_as_numpy(indices), dtype=np.int64).reshape(-1)
        path = self._path(name, ".npy")
        _save_atomic(path, lambda f: np.save(f, idx))
        return self._add(path, description)

    def image_set(self, name: str, images, labels, description: str, *, classes: Sequence[str] | None = None,
                  training: tuple[Any, Any] | None = None) -> tuple[Path, Path]:
        """A (synthetic) image set as ``<name>.npz`` — ``images`` (N, C, H, W) float32 in [0, 1], ``labels`` int64,
        ``classes``, and with ``training=(x, y)`` also ``train_images``/``train_labels`` (what a network trains on,
        e.g. IDC's decoded images) — plus ``<name>.png``, a grid of the images one class per row."""
        import matplotlib.pyplot as plt
        import numpy as np
        import torch

        from ..report import image_grid

        x = np.asarray(_as_numpy(images), dtype=np.float32)
        y = np.asarray(_as_numpy(labels), dtype=np.int64)
        if x.ndim != 4 or y.shape != (x.shape[0],):
            raise ValueError(f"images {x.shape} must be (N, C, H, W) with one label each, labels {y.shape}")
        arrays = {"images": x, "labels": y}
        if classes is not None:
            arrays["classes"] = np.asarray([str(c) for c in classes])
        if training is not None:
            arrays["train_images"] = np.asarray(_as_numpy(training[0]), dtype=np.float32)
            arrays["train_labels"] = np.asarray(_as_numpy(training[1]), dtype=np.int64)
        npz = self._path(name, ".npz")
        _save_atomic(npz, lambda f: np.savez_compressed(f, **arrays))
        fig = image_grid(torch.from_numpy(x), torch.from_numpy(y), list(classes) if classes is not None else None,
                         title=description)
        png = self._path(name, ".png")
        _save_atomic(png, lambda f: fig.savefig(f, format="png", dpi=120, bbox_inches="tight"))
        plt.close(fig)
        self._add(npz, description)
        self._add(png, f"{description} (picture)")
        return npz, png

    def selections(self, study, methods: Sequence[str], ratios: Sequence[float], seeds: Sequence[int]) -> None:
        """The indices every selecting method of an ADQ ``study`` (``study.select``) picks at each keep ratio and
        seed, as ``<method>_ratio<r>_seed<s>.npy``: positions in the dataset's whole training split."""
        dataset = study.splits.train.name
        for method in methods:
            if method in ("full", "dm"):
                continue
            for ratio in ratios:
                for seed in seeds:
                    chosen = study.select(method, ratio, seed)
                    positions = study.splits.train.source[chosen["indices"]]
                    self.indices(f"{method}_ratio{ratio:g}_seed{seed}", positions,
                                 f"{method} at keep ratio {ratio:g}, seed {seed}: {len(positions)} indices into "
                                 f"the {dataset} training split")

    def synthetic_sets(self, study, methods: Sequence[str], ipcs: Sequence[int], seed: int, *,
                       coresets: Sequence[str] = ()) -> None:
        """The synthetic set of every distillation method of a DREAM+ ``study`` (``study.run``) at each IPC for one
        distillation ``seed``, as ``<method>_ipc<ipc>_seed<s>.npz`` plus a PNG grid (methods in ``coresets`` are
        skipped: they are real images)."""
        classes = study.splits.train.classes
        for method in methods:
            if method in coresets:
                continue
            for ipc in ipcs:
                r = study.run(method, ipc, seed)
                self.image_set(f"{method.replace('+', '-')}_ipc{ipc}_seed{seed}", r.images, r.labels,
                               f"{method} synthetic set, IPC {ipc}, distillation seed {seed}", classes=classes,
                               training=r.training_set())

    def markdown(self) -> str:
        """The links and the NumPy-only snippet, as Markdown (MyST ``{download}`` roles under the book runner)."""
        if not self.entries:
            return "*This page wrote no files.*"
        myst = bool(os.environ.get(PAGE_FILES_ENV))
        rel = f"{self.page}_files"
        lines = ["Written by the run above; each file loads with NumPy alone (snippet below).", ""]
        for fname, description in self.entries:
            link = f"{{download}}`{fname} <{rel}/{fname}>`" if myst else f"[{fname}]({rel}/{fname})"
            lines.append(f"- {link}: {description}")
        shown = []
        for suffix, code in _SNIPPETS.items():
            first = next((f for f, _ in self.entries if f.endswith(suffix)), None)
            if first:
                shown.append(code.format(name=first))
        lines += ["", "```python", "import numpy as np", *shown, "```"]
        return "\n".join(lines)

    def _repr_markdown_(self) -> str:
        return self.markdown()

    def __repr__(self) -> str:
        return f"Downloads({self.page!r}: {[f for f, _ in self.entries]} in {self.folder})"


def _as_numpy(value):
    import numpy as np

    if hasattr(value, "detach"):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _save_atomic(path: Path, write: Callable[[Any], None]) -> None:
    from ..utils import atomic_path

    with atomic_path(path) as tmp:
        with Path(tmp).open("wb") as f:
            write(f)
