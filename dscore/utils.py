"""Small shared helpers: devices, seeding, atomic file writes, argument checks, the test kill hook."""
from __future__ import annotations

import contextlib
import os
import random
import tempfile
from pathlib import Path
from typing import Iterator

import numpy as np
import torch


def resolve_device(device: str | torch.device | None = None) -> torch.device:
    """``None``/``"auto"`` → CUDA when available, else CPU; anything else is passed to ``torch.device``."""
    if device is None or device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        return torch.device(device)
    except (RuntimeError, TypeError) as exc:
        raise ValueError(f"device={device!r} is not a valid torch device; use 'auto', 'cpu', 'cuda' or 'cuda:N'") from exc


def seed_everything(seed: int) -> torch.Generator:
    """Seed Python, NumPy and torch (all devices) and return a CPU generator seeded the same way."""
    check_int("seed", seed, low=0)
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


def make_generator(seed: int, device: str | torch.device = "cpu") -> torch.Generator:
    """A fresh ``torch.Generator`` on ``device`` seeded with ``seed`` (no global state touched)."""
    return torch.Generator(device=torch.device(device)).manual_seed(int(seed))


def check_int(name: str, value, *, low: int | None = None, high: int | None = None) -> int:
    """Return ``value`` as int or raise ``ValueError`` naming it and the allowed range."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ValueError(f"{name}={value!r} must be an integer")
    value = int(value)
    if (low is not None and value < low) or (high is not None and value > high):
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}={value} is out of range; allowed: {lo} <= {name} <= {hi}")
    return value


def check_float(name: str, value, *, low: float | None = None, high: float | None = None,
                low_open: bool = False, high_open: bool = False) -> float:
    """Return ``value`` as float or raise ``ValueError`` naming it and the allowed interval."""
    if isinstance(value, bool):
        raise ValueError(f"{name}={value!r} must be a number")
    try:
        v = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={value!r} must be a number") from None
    bad = v != v
    if low is not None:
        bad |= v <= low if low_open else v < low
    if high is not None:
        bad |= v >= high if high_open else v > high
    if bad:
        lb = "(" if low_open else "["
        hb = ")" if high_open else "]"
        lo = "-inf" if low is None else low
        hi = "inf" if high is None else high
        raise ValueError(f"{name}={value!r} is out of range; allowed: {name} in {lb}{lo}, {hi}{hb}")
    return v


def check_choice(name: str, value, allowed) -> str:
    """Raise ``ValueError`` unless ``value`` is one of ``allowed`` (listed in the message)."""
    allowed = list(allowed)
    if value not in allowed:
        raise ValueError(f"{name}={value!r} is not supported; allowed: {', '.join(map(repr, allowed))}")
    return value


@contextlib.contextmanager
def exclusive_lock(path: str | os.PathLike, *, on_wait=None) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (created, with its folder, if missing) for the ``with`` body.

    Yields True when another process held the lock first and this one waited. Before blocking,
    ``on_wait(holder)`` is called with the note the holder left in the file ("<host> pid <pid> since
    <time>", or "another process"); the holder's note is then replaced by this process's. The lock is released
    on exit and, because it is an ``flock``, also when the holding process dies. Where ``fcntl`` is missing
    (Windows) nothing is locked and it yields False."""
    try:
        import fcntl
    except ImportError:    # pragma: no cover - POSIX only
        yield False
        return
    import socket
    import time

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    waited = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            waited = True
            if on_wait is not None:
                try:
                    holder = os.pread(fd, 200, 0).decode(errors="replace").strip() or "another process"
                except OSError:
                    holder = "another process"
                on_wait(holder)
            fcntl.flock(fd, fcntl.LOCK_EX)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"{socket.gethostname()} pid {os.getpid()} since {time.strftime('%H:%M:%S')}\n".encode(), 0)
        except OSError:  # the note is informative only
            pass
        yield waited
    finally:
        try:
            fcntl.flock(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; on success rename it onto ``path`` atomically.

    A crash inside the block leaves ``path`` untouched and removes the temporary file.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def atomic_write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def autocast(device: torch.device, enabled: bool = True):
    """bf16 autocast on CUDA (when ``enabled``), a no-op context elsewhere."""
    if enabled and device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return contextlib.nullcontext()


#: ``text`` (the book runner sets it) gives tqdm's text bars, which papermill's log keeps; otherwise :func:`tqdm` is
#: ``tqdm.auto``'s bar: an ipywidgets bar inside a Jupyter kernel (JupyterLab), text elsewhere.
PROGRESS_ENV = "DSCORE_PROGRESS"


def tqdm(*args, **kwargs):
    """A progress bar for dscore's long steps (``tqdm``'s arguments), chosen when it is created: text bars when
    ``$DSCORE_PROGRESS`` is ``text`` (the book runner, whose log keeps them), else ``tqdm.auto`` (widget bars in
    JupyterLab, text in a terminal). Nothing global is patched. Outside the runner the outermost bar open (in
    JupyterLab, the bar of the cell's own loop) is kept when it finishes, whatever ``leave`` says; bars nested in
    it follow ``leave`` (dscore's inner loops close theirs)."""
    if os.environ.get(PROGRESS_ENV, "").lower() == "text":
        from tqdm.std import tqdm as bar
    else:
        from tqdm.auto import tqdm as bar
        if not getattr(bar, "_instances", ()):
            kwargs["leave"] = True          # the outermost bar of a cell stays, as the record of what ran
    return bar(*args, **kwargs)

