"""Two kinds of parallelism, and the small helpers both need.

**Data parallel** (one big job, e.g. ImageNet features under ``torchrun``): when ``torch.distributed`` is
initialised with more than one process, the library splits the work of *one* artefact across the ranks and
gathers the pieces in a fixed order, so every rank ends with the result one process would compute:

* :func:`shard_bounds` — the contiguous slice of N rows a rank takes (aligned to whole batches, so every
  rank runs exactly the batches a single process would run);
* :func:`gather_rows` — concatenate per-rank row blocks in rank order on every rank;
* :func:`gather_rows_with_grad` — the same, differentiable: the gradient of a loss every rank computes on the
  whole tensor flows back to each rank's own rows (summed over the ranks), so ``DistributedDataParallel``'s
  averaging gives the single-process gradient (the contrastive head's NT-Xent over the whole batch);
* :func:`gather_objects` — all-gather one picklable object per rank;
* :func:`balanced_assignment` — a deterministic split of weighted items (e.g. classes, cost n_c²) over ranks.

:func:`dscore.features.extract_embeddings` / :func:`~dscore.features.extract_gradient_features` and
:func:`dscore.quantize.generate_bins` use these automatically; :func:`dscore.train.train_model` wraps the
network in ``DistributedDataParallel``, and so does :func:`dscore.quantize.diversity.train_contrastive_head` (each rank
runs the frozen network and the head on its share of every batch's views).

**Task parallel** (a book prefill: ``torchrun … -m dscore.book prefill``): every process executes the
same page, and the loops over independent cells (evaluation runs, sweeps) visit the cells in a rank-specific
order (:func:`work_order`, :func:`ordered_map`): a process first computes its own share, then asks for the
other cells, which by then are in the cache, or being computed by their owner (the per-key lock of
:class:`dscore.cache.ArtifactCache` makes it wait and load), or not started yet (it computes them itself: no
cell is ever computed twice, and a fast process helps a slow one). The processes of a prefill do not
share a process group inside a page; :data:`WORK_RANK_ENV` / :data:`WORK_WORLD_ENV` tell a page's kernel
its place. Outside a prefill the order is the natural one.
"""
from __future__ import annotations

import os
from typing import Any, Callable, Hashable, Iterable, Sequence, TypeVar

import torch

from .utils import check_int, tqdm

__all__ = ["WORK_RANK_ENV", "WORK_WORLD_ENV", "is_distributed", "rank", "world_size", "shard_bounds",
           "gather_rows", "gather_rows_with_grad", "gather_objects", "balanced_assignment", "work_position",
           "work_order", "ordered_map"]

#: the prefill task rank of this process (0 ≤ rank < world) — set by ``dscore.book prefill`` for a page's kernel
WORK_RANK_ENV = "DSCORE_WORK_RANK"
#: the number of prefill processes sharing the work of a page
WORK_WORLD_ENV = "DSCORE_WORK_WORLD"

T = TypeVar("T")


# ------------------------------------------------------------------------------------------ data parallel

def is_distributed() -> bool:
    """True when ``torch.distributed`` is initialised with more than one process."""
    dist = torch.distributed
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def rank() -> int:
    """This process's rank in the initialised process group (0 without one)."""
    return torch.distributed.get_rank() if is_distributed() else 0


def world_size() -> int:
    """Processes in the initialised process group (1 without one)."""
    return torch.distributed.get_world_size() if is_distributed() else 1


def shard_bounds(n: int, rank_: int, world: int, *, align: int = 1) -> tuple[int, int]:
    """``(start, stop)`` of rank ``rank_``'s contiguous share of ``n`` rows.

    Whole blocks of ``align`` rows (the last block may be shorter) are dealt out as evenly as possible, lower
    ranks taking the extra ones; the shares are disjoint, in rank order and cover ``range(n)``. With
    ``align`` = the batch size, every rank runs exactly the batches one process would run.
    """
    n = check_int("n", n, low=0)
    world = check_int("world", world, low=1)
    rank_ = check_int("rank", rank_, low=0, high=world - 1)
    align = check_int("align", align, low=1)
    blocks = -(-n // align)
    per, extra = divmod(blocks, world)
    first = rank_ * per + min(rank_, extra)
    count = per + (1 if rank_ < extra else 0)
    return min(first * align, n), min((first + count) * align, n)


def gather_objects(obj: Any) -> list[Any]:
    """``[obj of rank 0, obj of rank 1, …]`` on every rank (``[obj]`` without a process group)."""
    if not is_distributed():
        return [obj]
    out: list[Any] = [None] * world_size()
    torch.distributed.all_gather_object(out, obj)
    return out


def gather_rows(block: torch.Tensor) -> torch.Tensor:
    """Concatenate every rank's ``block`` (rows may differ in number, trailing shape and dtype must agree) in
    rank order; every rank gets the whole tensor, on the device of its ``block``. Without a process group:
    ``block`` itself. Uses ``all_gather`` of padded blocks (works with gloo and NCCL)."""
    if not is_distributed():
        return block
    return _gather_rows_counted(block)[0]


def _gather_rows_counted(block: torch.Tensor) -> tuple[torch.Tensor, list[int]]:
    """:func:`gather_rows` under a process group, with the number of rows of every rank."""
    device = block.device
    if torch.distributed.get_backend() == "nccl" and device.type != "cuda":
        block = block.cuda()
    sizes = gather_objects((int(block.shape[0]), tuple(block.shape[1:]), str(block.dtype)))
    full = [s for s in sizes if s[0] > 0] or sizes[:1]     # an empty block may not know its row width
    if len({s[1:] for s in full}) != 1:
        raise ValueError(f"gather_rows: ranks hold blocks of different trailing shape/dtype: {sizes}")
    trailing, dtype = full[0][1], getattr(torch, full[0][2].removeprefix("torch."))
    longest = max(s[0] for s in sizes)
    padded = torch.zeros((longest, *trailing), dtype=dtype, device=block.device)
    if block.shape[0]:
        padded[: block.shape[0]] = block
    parts = [torch.empty_like(padded) for _ in sizes]
    torch.distributed.all_gather(parts, padded.contiguous())
    return torch.cat([p[: s[0]] for p, s in zip(parts, sizes)]).to(device), [s[0] for s in sizes]


class _GatherRowsWithGrad(torch.autograd.Function):
    @staticmethod
    def forward(ctx, block):
        gathered, counts = _gather_rows_counted(block)       # one size exchange, one all_gather
        ctx.start, ctx.count = sum(counts[: rank()]), int(block.shape[0])
        return gathered

    @staticmethod
    def backward(ctx, grad):
        device = grad.device
        grad = grad.contiguous().clone()
        if torch.distributed.get_backend() == "nccl" and device.type != "cuda":
            grad = grad.cuda()
        torch.distributed.all_reduce(grad)       # SUM; works on gloo and NCCL (unlike reduce_scatter on gloo)
        return grad[ctx.start: ctx.start + ctx.count].to(device)


def gather_rows_with_grad(block: torch.Tensor) -> torch.Tensor:
    """:func:`gather_rows` with a backward pass: the gradient reaching the gathered tensor is summed over the
    ranks and each rank keeps the rows of its own ``block``. When every rank computes the same loss ``L`` of the
    gathered tensor, rank r's ``block`` gets ``world · ∂L/∂block_r``, and averaging the parameter gradients over
    the ranks (``DistributedDataParallel``) gives exactly ∂L/∂θ of one process. Without a process group:
    ``block`` itself. Cost: one ``all_gather`` forward, one ``all_reduce`` of the gathered size backward."""
    if not is_distributed():
        return block
    return _GatherRowsWithGrad.apply(block)


def balanced_assignment(weights: Sequence[float], world: int) -> list[int]:
    """The rank of every item: heaviest item first to the least loaded rank (ties: the lower item index,
    then the lower rank) — deterministic, so every rank computes the same assignment."""
    world = check_int("world", world, low=1)
    load = [0.0] * world
    owner = [0] * len(weights)
    for i in sorted(range(len(weights)), key=lambda i: (-float(weights[i]), i)):
        r = min(range(world), key=lambda r: (load[r], r))
        owner[i] = r
        load[r] += float(weights[i])
    return owner


# ------------------------------------------------------------------------------------------ task parallel

def work_position() -> tuple[int, int]:
    """``(rank, world)`` of this process among the prefill processes (``(0, 1)`` outside a prefill)."""
    raw_rank, raw_world = os.environ.get(WORK_RANK_ENV), os.environ.get(WORK_WORLD_ENV)
    if raw_world in (None, ""):
        return 0, 1
    try:
        world, r = int(raw_world), int(raw_rank or 0)
    except ValueError:
        raise ValueError(f"{WORK_RANK_ENV}={raw_rank!r} and {WORK_WORLD_ENV}={raw_world!r} must be integers") from None
    if world < 1 or not 0 <= r < world:
        raise ValueError(f"{WORK_RANK_ENV}={r} must satisfy 0 <= rank < {WORK_WORLD_ENV}={world}")
    return r, world


def work_order(cells: Sequence[T], *, group: Callable[[T], Hashable] | None = None,
               position: tuple[int, int] | None = None) -> list[int]:
    """The order (indices into ``cells``) in which this process should visit independent cells.

    Cells with the same ``group(cell)`` (e.g. evaluations of one distillation run) belong together; the
    groups, in order of first appearance, are dealt round-robin to the ranks. Rank r visits its own cells
    first (in their order), then every other cell from the last backwards — so a process that is done early
    meets the owners of the remaining cells from the other end. With one process: ``0, 1, …, n−1``.
    """
    r, world = position if position is not None else work_position()
    n = len(cells)
    if world == 1:
        return list(range(n))
    keys: dict[Hashable, int] = {}
    owner = []
    for c in cells:
        k = group(c) if group is not None else len(keys)
        if k not in keys:
            keys[k] = len(keys)
        owner.append(keys[k] % world)
    own = [i for i in range(n) if owner[i] == r]
    rest = [i for i in reversed(range(n)) if owner[i] != r]
    return own + rest


def ordered_map(fn: Callable[[T], Any], cells: Iterable[T], *, group: Callable[[T], Hashable] | None = None,
                desc: str | None = None, progress: bool = True) -> list[Any]:
    """``[fn(c) for c in cells]``, computed in :func:`work_order` and returned in the cells' own order.

    ``fn`` must depend on its cell only (every heavy step a cached artefact keyed by its config), which is
    what makes the result independent of the order and of the number of processes.
    """
    cells = list(cells)
    out: list[Any] = [None] * len(cells)
    for i in tqdm(work_order(cells, group=group), desc=desc, disable=not progress or desc is None):
        out[i] = fn(cells[i])
    return out
