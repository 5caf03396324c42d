"""The kill hook of the kill-and-resume tests, kept out of the library.

A test puts this folder on ``PYTHONPATH`` of the subprocess it starts, so every Python process of that tree (the
build, its notebook kernels, a worker) imports it at start-up as ``sitecustomize``. Inactive unless
``DSCORE_TEST_KILL_AT="<label>:<n>"``; then the n-th pass (n >= 1, counted per process) of the named point sends
SIGKILL to the process group ``$DSCORE_TEST_KILL_GROUP`` (if set) and to this process. The points are observed from
outside the library, by wrapping what it calls:

* ``atomic_write``: ``os.replace`` of a temporary file of :func:`dscore.utils.atomic_path` (``.<name>.<random>.tmp``
  beside its target), i.e. the file is written but not yet renamed into place;
* ``distill_checkpoint``: just after ``os.replace`` put a distillation checkpoint in place
  (``<cache>/distill_run/partial/<key>.pt``);
* ``book_html``: the book runner starts the Jupyter Book HTML build (its marker file is already written).
"""
from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

KILL_ENV = "DSCORE_TEST_KILL_AT"
KILL_GROUP_ENV = "DSCORE_TEST_KILL_GROUP"
LABELS = ("atomic_write", "distill_checkpoint", "book_html")
_passes: dict[str, int] = {}


def kill_point(label: str) -> None:
    """A pass of the point ``label``: SIGKILL at the n-th pass of the label named by ``$DSCORE_TEST_KILL_AT``."""
    spec = os.environ.get(KILL_ENV)
    if not spec:
        return
    name, _, count = spec.rpartition(":")
    if name not in LABELS or not count.isdigit() or int(count) < 1:
        raise ValueError(f"{KILL_ENV}={spec!r} must be '<label>:<n>' with a label of {LABELS} and an integer n >= 1")
    if name != label:
        return
    _passes[label] = _passes.get(label, 0) + 1
    if _passes[label] == int(count):
        group = os.environ.get(KILL_GROUP_ENV)
        if group:
            os.killpg(int(group), signal.SIGKILL)
        os.kill(os.getpid(), signal.SIGKILL)


def _is_atomic_temporary(src: Path, dst: Path) -> bool:
    return src.name.startswith(f".{dst.name}.") and src.name.endswith(".tmp")


def _is_distill_checkpoint(dst: Path) -> bool:
    return dst.parent.name == "partial" and dst.parent.parent.name == "distill_run"


def _is_html_build(cmd) -> bool:
    return isinstance(cmd, (list, tuple)) and "build" in cmd and any("jupyter_book" in str(c) for c in cmd)


def install() -> None:
    """Wrap ``os.replace`` and ``subprocess.run`` when the hook is named (otherwise leave everything untouched)."""
    if not os.environ.get(KILL_ENV):
        return
    real_replace, real_run = os.replace, subprocess.run

    def replace(src, dst, *args, **kwargs):
        s, d = Path(os.fspath(src)), Path(os.fspath(dst))
        if _is_atomic_temporary(s, d):
            kill_point("atomic_write")
        out = real_replace(src, dst, *args, **kwargs)
        if _is_distill_checkpoint(d):
            kill_point("distill_checkpoint")
        return out

    def run(cmd, *args, **kwargs):
        if _is_html_build(cmd):
            kill_point("book_html")
        return real_run(cmd, *args, **kwargs)

    os.replace, subprocess.run = replace, run


install()
