"""A page executed by several kernels at once on a CPU (``build`` / ``run`` with ``--workers N``): the runner's own
kernel and helpers that share its cells.

On a CPU the book's loops are many small kernels (convolutions over 28×28 maps of 16 channels, instance norm,
their derivatives). A second intra-op thread adds little to one training run (1.0–1.3× measured on a 2-core
machine), but two runs side by side, one thread each, do about 1.2–1.6× the work of one run with two threads. With
``workers`` > 1 every page that has independent cells (:func:`dscore.distributed.ordered_map`: evaluation runs,
distillation seeds, sweeps) is executed by ``workers`` kernels: the runner's kernel is rank 0 of the page's work and
writes the page; each helper (rank 1 … workers − 1) executes the same notebook with the same parameters, computes
its share of the cells into the artefact cache first and is stopped when rank 0 is done. This is the prefill's task
parallelism (:mod:`dscore.book.prefill`) inside one build: an artefact is computed once, under its per-key lock, by
whichever kernel reaches it first, and its value depends on its key only.

It is not the default (``workers`` = 1). Whatever a page computes outside its cells (a feature network, a tuning
summary, an uncached training) then runs with one thread, and on the default profile that cost about as much as
the cells gained (the measured build is in ``ARCHITECTURE.md``).

Same numbers: with ``workers`` > 1 every kernel on a CPU runs with one intra-op thread (:data:`ONE_THREAD`), because
a floating-point reduction split over two threads sums in another order than over one; a page's numbers are then
those of one kernel with one thread (``OMP_NUM_THREADS=1``), for any number of workers (tested bit for bit). With
one worker the kernel keeps torch's own thread count, as before. On a machine with CUDA the thread count is left
alone.

A page's notebook metadata can change this (:func:`page_policy`): ``"dscore": {"alone": true}`` gives it one
kernel (pages that only read what others computed: a helper would have nothing to share), and ``"threads": "torch"``
keeps torch's own thread count (the benchmarks, whose subject is the machine's speed, and the tour, which trains
one network in its own cells; an artefact computed there would carry other numbers than the same artefact computed
by another page, so such a page computes none: it uses no cache).
"""
from __future__ import annotations

import json
import multiprocessing
import os
import shutil
import signal
from pathlib import Path
from typing import Any, Callable, Mapping

from ..distributed import WORK_RANK_ENV, WORK_WORLD_ENV
from ..paths import PAGE_FILES_ENV
from ..utils import PROGRESS_ENV, check_int
from .executor import execute_notebook
from .params import OUTPUT_DIR

__all__ = ["ONE_THREAD", "HELPERS_DIR", "has_cuda", "page_policy", "kernel_env", "Helpers"]

#: the environment of every kernel of a CPU build: one intra-op thread (torch reads these when it starts)
ONE_THREAD = {"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"}
#: where helpers write their (discarded) copies of a page
HELPERS_DIR = OUTPUT_DIR / ".helpers"


def has_cuda() -> bool:
    """True when torch sees a CUDA device (the build then keeps torch's own thread count)."""
    import torch

    return torch.cuda.is_available()


def page_policy(notebook: Path) -> tuple[bool, bool]:
    """``(alone, own_threads)`` from the notebook's metadata ``"dscore"``: ``alone`` (true: one kernel) and
    ``threads`` ("one", the default on a CPU build, or "torch": torch's own thread count)."""
    meta = json.loads(Path(notebook).read_text()).get("metadata", {}).get("dscore", {})
    unknown = sorted(set(meta) - {"alone", "threads"})
    alone, threads = meta.get("alone", False), meta.get("threads", "one")
    if unknown or not isinstance(alone, bool) or threads not in ("one", "torch"):
        raise ValueError(f"{notebook}: metadata dscore={meta!r} may hold alone (true or false) and threads "
                         f"('one' or 'torch'), nothing else")
    return alone, threads == "torch"


def kernel_env(rank: int, workers: int, *, cpu: bool) -> dict[str, str | None]:
    """The environment changes of rank ``rank`` of a page executed by ``workers`` kernels: none for one kernel; for
    several their place among them and, on a CPU (``cpu``), one intra-op thread."""
    workers = check_int("workers", workers, low=1)
    rank = check_int("rank", rank, low=0, high=workers - 1)
    if workers == 1:
        return {}
    env: dict[str, str | None] = dict(ONE_THREAD) if cpu else {}
    env.update({WORK_RANK_ENV: str(rank), WORK_WORLD_ENV: str(workers)})
    return env


def _helper(source: str, out: str, params: dict, cwd: str, timeout: int | None, env: dict) -> None:
    """A helper's process: its own process group (so that stopping it stops its kernel too), then the notebook."""
    os.setpgrp()
    execute_notebook(Path(source), Path(out), params, cwd=Path(cwd), timeout=timeout, env=env, log_output=False)


class Helpers:
    """Ranks 1 … ``workers`` − 1 of one page, each a process executing ``source`` with ``params`` (a context manager:
    they start on entry and are stopped on exit, whatever rank 0 did). ``log`` hears a helper that failed before it
    was stopped: its share is then computed by rank 0, which needs every cell; the page does not fail for it."""

    def __init__(self, root: Path, name: str, source: Path, params: Mapping[str, Any], *, workers: int, cpu: bool,
                 timeout: int | None, log: Callable[[str], None] = print):
        self.workers = check_int("workers", workers, low=1)
        self.root, self.name, self.source, self.params = Path(root), name, Path(source), dict(params)
        self.cpu, self.timeout, self.log = cpu, timeout, log
        self.dir = self.root / HELPERS_DIR / name
        self.procs: list[multiprocessing.Process] = []

    def __enter__(self) -> "Helpers":
        if self.workers == 1:
            return self
        shutil.rmtree(self.dir, ignore_errors=True)
        self.dir.mkdir(parents=True, exist_ok=True)
        ctx = multiprocessing.get_context("spawn")
        for rank in range(1, self.workers):
            env = {**kernel_env(rank, self.workers, cpu=self.cpu), PROGRESS_ENV: "text",
                   PAGE_FILES_ENV: str(self.dir / f"rank{rank}_files")}
            proc = ctx.Process(target=_helper, name=f"{self.name}-rank{rank}",
                               args=(str(self.source), str(self.dir / f"rank{rank}.ipynb"), self.params,
                                     str(self.source.parent), self.timeout, env))
            proc.start()
            self.procs.append(proc)
        return self

    def __exit__(self, *exc) -> None:
        for rank, proc in enumerate(self.procs, start=1):
            if proc.exitcode is None:
                try:
                    os.killpg(proc.pid, signal.SIGTERM)
                except ProcessLookupError:       # finished, or not yet its own group: stop the process itself
                    proc.terminate()
            proc.join(timeout=60)
            if proc.exitcode is None:
                proc.kill()
                proc.join()
            if proc.exitcode not in (0, -signal.SIGTERM):
                self.log(f"[dscore.book] {self.name}: helper rank {rank} of {self.workers} stopped with exit code "
                         f"{proc.exitcode}; rank 0 computed its share")
        shutil.rmtree(self.dir, ignore_errors=True)
