"""Compute the artefacts of book pages into the shared cache, split over several processes.

Usage (from a checkout; ``$DSCORE_CACHE`` is the same folder for every process)::

    torchrun --nproc_per_node=8 -m dscore.book prefill adq_main adq_beta --profile paper
    torchrun --nnodes=2 --node_rank=$I --nproc_per_node=8 --rdzv_backend=c10d --rdzv_endpoint=$HOST:29500 \\
        -m dscore.book prefill --profile paper                       # every page, 16 processes on 2 hosts
    python -m dscore.book prefill adq_main --rank 0 --world 2        # without torchrun (e.g. a job array)
    make book PROFILE=paper                                           # then only renders from the cache

What a page needs is declared by the page itself: every process executes the page (papermill, into
``book/nb/.prefill/rank<r>/``) with its place among the processes in :data:`dscore.distributed.WORK_RANK_ENV` /
:data:`~dscore.distributed.WORK_WORLD_ENV`, and the studies' loops over independent cells (evaluation runs,
sweeps, seeds) visit the cells in a rank-specific order (:func:`dscore.distributed.work_order`): the cells are
dealt round-robin, each process computes its own share first and then asks for the others'. Every heavy step is
an artefact of :class:`dscore.cache.ArtifactCache` computed under a per-key file lock, so a process that needs
an artefact another one is computing waits for it and loads it, and one that finds an unstarted cell of a slow
process computes it itself; nothing is computed twice. Dependencies (features before bins, the tuning before
the ADQ runs) take care of themselves: whoever needs one first computes it, the others wait.

Why not a static list of artefact keys: most keys hold a fingerprint of an upstream result (the feature
network's weights, the selected images), so they cannot be known before that result exists; and a separate
list per page would drift from what the page asks for. The page's own code is the work list.

Each process writes a cache log (``<page>.cache.jsonl``: one line per artefact request — computed, loaded,
waited) and returns a summary; under torchrun rank 0 prints the summary of all ranks.
"""
from __future__ import annotations

import json
import os
import socket
import sys
import time
from pathlib import Path
from typing import Any, Callable, Sequence

from ..cache import CACHE_LOG_ENV
from ..distributed import WORK_RANK_ENV, WORK_WORLD_ENV
from ..paths import repo_root
from ..utils import check_int
from .executor import execute_notebook, kernel_name
from .params import CELL_TIMEOUT, OUTPUT_DIR, BookError, check_profile, load_params, notebook_names
from .workers import ONE_THREAD, has_cuda

__all__ = ["PREFILL_DIR", "prefill", "read_cache_log", "summarise_log", "main"]

PREFILL_DIR = OUTPUT_DIR / ".prefill"
# torchrun's variables stay out of a page's kernel: a page never joins the launcher's process group
_LAUNCHER_ENV = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "LOCAL_WORLD_SIZE", "GROUP_RANK", "GROUP_WORLD_SIZE", "ROLE_RANK",
                 "ROLE_WORLD_SIZE", "ROLE_NAME", "MASTER_ADDR", "MASTER_PORT", "TORCHELASTIC_RUN_ID",
                 "TORCHELASTIC_RESTART_COUNT", "TORCHELASTIC_MAX_RESTARTS", "TORCHELASTIC_USE_AGENT_STORE",
                 "TORCHELASTIC_ERROR_FILE", "TORCH_NCCL_ASYNC_ERROR_HANDLING")


def read_cache_log(path: str | os.PathLike) -> list[dict[str, Any]]:
    """The records of a :data:`dscore.cache.CACHE_LOG_ENV` file (an absent file: none)."""
    try:
        text = Path(path).read_text()
    except FileNotFoundError:
        return []
    return [json.loads(line) for line in text.splitlines() if line.strip()]


def summarise_log(records: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """``{"requests", "computed", "loaded", "waited", "compute_seconds", "computed_kinds"}`` of cache-log records."""
    computed = [r for r in records if r.get("computed")]
    kinds: dict[str, int] = {}
    for r in computed:
        kinds[r["kind"]] = kinds.get(r["kind"], 0) + 1
    return {"requests": len(records), "computed": len(computed), "loaded": len(records) - len(computed),
            "waited": sum(1 for r in records if r.get("waited")),
            "compute_seconds": round(sum(float(r.get("seconds") or 0.0) for r in computed), 1),
            "computed_kinds": dict(sorted(kinds.items()))}


def _kernel_env(rank: int, world: int, log: Path) -> dict[str, str | None]:
    """The environment changes of a prefill kernel (:func:`dscore.book.executor.environment`): the launcher's
    variables removed, the work rank, world and cache log set, on a CPU with several processes one intra-op thread
    each (as a build with ``--workers``, :mod:`dscore.book.workers`), and on a multi-GPU node one GPU per process."""
    env: dict[str, str | None] = {k: None for k in _LAUNCHER_ENV}
    env.update({WORK_RANK_ENV: str(rank), WORK_WORLD_ENV: str(world), CACHE_LOG_ENV: str(log)})
    if world > 1 and not has_cuda():     # several kernels on a CPU: one thread each, as in a build with --workers
        env.update(ONE_THREAD)
    local_rank, local_world = os.environ.get("LOCAL_RANK"), os.environ.get("LOCAL_WORLD_SIZE")
    if local_rank is not None and local_world not in (None, "1"):
        # one GPU per process on a multi-GPU node: the local rank's device becomes the kernel's only one
        try:
            import torch

            visible = [d for d in os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",") if d.strip()]
            count = len(visible) if visible else torch.cuda.device_count()
            if count > int(local_rank):
                env["CUDA_VISIBLE_DEVICES"] = visible[int(local_rank)] if visible else str(int(local_rank))
        except Exception:  # no CUDA: nothing to pin
            pass
    return env


def prefill(pages: Sequence[str] | None, profile: str, *, rank: int = 0, world: int = 1, root: Path | None = None,
            log: Callable[[str], None] = print) -> dict[str, dict[str, Any]]:
    """Execute ``pages`` (default: every page of the book) as process ``rank`` of ``world``, filling the cache.

    Every page's parameters are checked before any work. Returns ``{page: summary}`` (:func:`summarise_log` of
    this process's cache log for the page, plus ``seconds`` of wall time). Raises :class:`dscore.book.params.BookError`
    when a page fails (the partly executed notebook stays in ``book/nb/.prefill/rank<r>/``).
    """
    root = Path(root) if root is not None else repo_root()
    check_profile(profile)
    world = check_int("world", world, low=1)
    rank = check_int("rank", rank, low=0, high=world - 1)
    names = notebook_names(root)
    pages = list(pages) if pages else names
    unknown = [p for p in pages if p not in names]
    if unknown:
        raise ValueError(f"unknown page(s) {unknown}; available: {names}")
    params = {p: load_params(root, profile, p) for p in pages}
    out_dir = root / PREFILL_DIR / f"rank{rank}"
    out_dir.mkdir(parents=True, exist_ok=True)
    kernel = kernel_name(warn=False)
    summary: dict[str, dict[str, Any]] = {}
    for page in pages:
        cache_log = out_dir / f"{page}.cache.jsonl"
        cache_log.unlink(missing_ok=True)
        out = out_dir / f"{page}.ipynb"
        log(f"[dscore.prefill] rank {rank}/{world} on {socket.gethostname()}: {page} ({profile})")
        start = time.perf_counter()
        try:
            execute_notebook(root / "notebooks" / f"{page}.ipynb", out, params[page], cwd=root / "notebooks",
                             timeout=CELL_TIMEOUT[profile], env=_kernel_env(rank, world, cache_log), kernel=kernel,
                             log_output=False)
        except Exception as exc:
            raise BookError(f"prefill of {page!r} (rank {rank}/{world}, profile {profile!r}) failed: {exc}\n"
                            f"the partly executed notebook is in {out.relative_to(root)}") from exc
        s = summarise_log(read_cache_log(cache_log))
        s["seconds"] = round(time.perf_counter() - start, 1)
        summary[page] = s
        log(f"[dscore.prefill] rank {rank}/{world}: {page}: {s['computed']} computed "
            f"({s['compute_seconds']} s), {s['loaded']} loaded, {s['waited']} waited for, {s['seconds']} s")
    return summary


def _format(all_ranks: list[dict[str, dict[str, Any]]]) -> str:
    lines = ["| page | rank | computed | loaded | waited | compute s | wall s |", "|---|---:|---:|---:|---:|---:|---:|"]
    for r, summary in enumerate(all_ranks):
        for page, s in summary.items():
            lines.append(f"| {page} | {r} | {s['computed']} | {s['loaded']} | {s['waited']} | {s['compute_seconds']} "
                         f"| {s['seconds']} |")
    return "\n".join(lines)


def main(pages: Sequence[str], profile: str, *, rank: int | None = None, world: int | None = None,
         root: Path | None = None) -> int:
    """The ``prefill`` command: rank and world from ``--rank/--world`` or torchrun's ``RANK``/``WORLD_SIZE``; under
    torchrun a gloo group (used only for the final barrier and summary) joins the processes."""
    env_world = int(os.environ.get("WORLD_SIZE", "1"))
    env_rank = int(os.environ.get("RANK", "0"))
    rank = env_rank if rank is None else rank
    world = env_world if world is None else world
    group = env_world > 1 and "MASTER_ADDR" in os.environ
    if group:
        import datetime

        import torch.distributed as dist

        # pages can take hours: the group only meets again at the end
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    try:
        summary = prefill(pages, profile, rank=rank, world=world, root=root)
        if group:
            gathered: list[Any] = [None] * world
            dist.all_gather_object(gathered, summary)
            if rank == 0:
                print(f"[dscore.prefill] done ({world} processes):\n{_format(gathered)}")
        else:
            print(f"[dscore.prefill] rank {rank} of {world} done:\n{_format([{}] * rank + [summary])}")
    finally:
        if group:
            dist.destroy_process_group()
    return 0


if __name__ == "__main__":  # pragma: no cover - `python -m dscore.book prefill` is the entry point
    sys.exit(main(sys.argv[1:], os.environ.get("PROFILE", "default")))
