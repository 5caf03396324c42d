"""Feature extraction for DQ/ADQ: penultimate embeddings and implicit last-layer gradient features.

DQ measures similarity between samples either on the penultimate embedding ``e`` of a feature
network or on the gradient of the cross-entropy loss with respect to the last linear layer,
``g = [δ, δ⊗e]`` with ``δ = softmax(logits) − onehot(y)`` (bias part first, then the weight part).
``g`` has ``C·(1+d)`` entries per sample, so it is never materialised: :class:`GradientFeatures`
keeps ``δ`` (N, C) and ``e`` (N, d) and evaluates inner products through

    ⟨gᵢ, gⱼ⟩ = ⟨δᵢ, δⱼ⟩ · (1 + ⟨eᵢ, eⱼ⟩),      ‖gᵢ‖ = ‖δᵢ‖ · sqrt(1 + ‖eᵢ‖²).

Convention used everywhere in dscore: the cosine between a zero vector and anything is 0.

Distributed. Under an initialised ``torch.distributed`` process group with several processes (e.g. under
``torchrun``), both extractors split the images into contiguous per-rank shards of whole batches
(:func:`dscore.distributed.shard_bounds`), run their own shard and all-gather the rows in rank order, so every
rank returns what one process computes — the same batches through the same kernels (``distributed=False``
turns this off).
"""
from __future__ import annotations

from dataclasses import dataclass
import torch
import torch.nn.functional as F

from . import distributed as dist_utils
from .utils import autocast, check_int, resolve_device, tqdm

__all__ = [
    "GradientFeatures",
    "as_unit_rows",
    "extract_embeddings",
    "extract_gradient_features",
]


def as_unit_rows(x: torch.Tensor) -> torch.Tensor:
    """Rows of ``x`` (N, d) divided by their L2 norm; zero rows stay zero.

    Returns a new (N, d) tensor with the dtype and device of ``x``. Cost O(N·d).
    """
    if x.dim() != 2:
        raise ValueError(f"expected a 2-D tensor (N, d), got shape {tuple(x.shape)}")
    norms = torch.linalg.vector_norm(x, dim=1, keepdim=True)
    return x / torch.where(norms > 0, norms, torch.ones_like(norms))


def _as_index(idx, n: int, device: torch.device) -> torch.Tensor:
    """``idx`` (sequence/tensor of ints, or a bool mask of length n) → 1-D int64 tensor on ``device``."""
    idx = torch.as_tensor(idx, device=device)
    if idx.dtype == torch.bool:
        if idx.shape != (n,):
            raise ValueError(f"boolean index must have shape ({n},), got {tuple(idx.shape)}")
        return idx.nonzero().flatten()
    if idx.is_floating_point() or idx.is_complex():
        raise ValueError(f"index must hold integers, got dtype {idx.dtype}")
    idx = idx.reshape(-1).long()
    if idx.numel() and (int(idx.min()) < -n or int(idx.max()) >= n):
        raise ValueError(f"index out of range; allowed: -{n} <= index < {n}")
    return idx


@dataclass(frozen=True)
class GradientFeatures:
    """DQ's last-layer gradient features ``g = [δ, δ⊗e]``, represented implicitly.

    Attributes:
        delta: (N, C) ``softmax(logits) − onehot(y)``.
        embedding: (N, d) penultimate embeddings ``e``.

    Both tensors share one device and one floating dtype. Nothing here ever builds the
    (N, C·(1+d)) matrix ``g`` nor an N×N matrix.
    """

    delta: torch.Tensor
    embedding: torch.Tensor

    def __post_init__(self) -> None:
        d, e = self.delta, self.embedding
        if not isinstance(d, torch.Tensor) or not isinstance(e, torch.Tensor):
            raise ValueError("delta and embedding must be torch tensors")
        if d.dim() != 2 or e.dim() != 2:
            raise ValueError(f"delta must be (N, C) and embedding (N, d); got shapes {tuple(d.shape)} and {tuple(e.shape)}")
        if d.shape[0] != e.shape[0]:
            raise ValueError(f"delta has {d.shape[0]} rows but embedding has {e.shape[0]}; they must match")
        if not d.is_floating_point() or not e.is_floating_point():
            raise ValueError(f"delta and embedding must be floating point, got {d.dtype} and {e.dtype}")
        if d.dtype != e.dtype or d.device != e.device:
            raise ValueError(f"delta ({d.dtype}, {d.device}) and embedding ({e.dtype}, {e.device}) must share dtype and device")

    def __len__(self) -> int:
        return self.delta.shape[0]

    @property
    def device(self) -> torch.device:
        return self.delta.device

    @property
    def dtype(self) -> torch.dtype:
        return self.delta.dtype

    @property
    def num_classes(self) -> int:
        return self.delta.shape[1]

    @property
    def embed_dim(self) -> int:
        return self.embedding.shape[1]

    @property
    def dim(self) -> int:
        """Length of the (never built) gradient vector: C·(1 + d)."""
        return self.num_classes * (1 + self.embed_dim)

    def to(self, device: str | torch.device | None = None, dtype: torch.dtype | None = None) -> "GradientFeatures":
        return GradientFeatures(self.delta.to(device=device, dtype=dtype), self.embedding.to(device=device, dtype=dtype))

    def subset(self, idx) -> "GradientFeatures":
        """Rows ``idx`` (ints or a bool mask) as a new :class:`GradientFeatures`."""
        idx = _as_index(idx, len(self), self.device)
        return GradientFeatures(self.delta.index_select(0, idx), self.embedding.index_select(0, idx))

    def is_finite(self) -> bool:
        return bool(torch.isfinite(self.delta).all()) and bool(torch.isfinite(self.embedding).all())

    def norms(self) -> torch.Tensor:
        """(N,) ``‖gᵢ‖ = ‖δᵢ‖·sqrt(1+‖eᵢ‖²)``. Cost O(N·(C+d))."""
        dn = torch.linalg.vector_norm(self.delta, dim=1)
        en2 = (self.embedding * self.embedding).sum(dim=1)
        return dn * torch.sqrt(1.0 + en2)

    def inverse_norms(self) -> torch.Tensor:
        """(N,) ``1/‖gᵢ‖``, and 0 for zero rows (so that their cosines come out as 0)."""
        n = self.norms()
        return torch.where(n > 0, 1.0 / torch.where(n > 0, n, torch.ones_like(n)), torch.zeros_like(n))

    def cosine_rows(self, idx) -> torch.Tensor:
        """Cosine similarities between rows ``idx`` and all N rows: shape (len(idx), N).

        ``cos(gᵢ,gⱼ) = ⟨δᵢ,δⱼ⟩(1+⟨eᵢ,eⱼ⟩) / (‖gᵢ‖‖gⱼ‖)``, 0 where either norm is 0.
        Cost O(len(idx)·N·(C+d)) time, O(len(idx)·N) memory.
        """
        idx = _as_index(idx, len(self), self.device)
        inv = self.inverse_norms()
        dots = (self.delta[idx] @ self.delta.T) * (1.0 + self.embedding[idx] @ self.embedding.T)
        return dots * inv[idx].unsqueeze(1) * inv.unsqueeze(0)

    def cosine_sum(self) -> torch.Tensor:
        """(N,) ``Σ_v cos(g_v, g_x)`` for every x, without an N×N matrix.

        With ``w_v = 1/‖g_v‖`` (0 for zero rows), ``a = Σ_v w_v δ_v`` (C,) and
        ``M = Σ_v w_v δ_v e_vᵀ`` (C, d):  ``Σ_v cos(g_v, g_x) = w_x (a·δ_x + δ_xᵀ M e_x)``.
        Cost O(N·C·d) time, O(N·(C+d) + C·d) memory.
        """
        inv = self.inverse_norms()
        weighted = self.delta * inv.unsqueeze(1)              # (N, C) = ĝ's δ-part scaled
        a = weighted.sum(dim=0)                                # (C,)
        m = weighted.T @ self.embedding                        # (C, d)
        return inv * (self.delta @ a + ((self.delta @ m) * self.embedding).sum(dim=1))


def _batches(n: int, batch_size: int):
    for start in range(0, n, batch_size):
        yield start, min(start + batch_size, n)


def _check_images(images: torch.Tensor) -> None:
    if not isinstance(images, torch.Tensor) or images.dim() != 4:
        shape = tuple(images.shape) if isinstance(images, torch.Tensor) else type(images).__name__
        raise ValueError(f"images must be a tensor of shape (N, C, H, W), got {shape}")


def _model_device(model: torch.nn.Module, device) -> torch.device:
    if device is None:
        param = next(iter(model.parameters()), None)
        return param.device if param is not None else torch.device("cpu")
    return resolve_device(device)


@torch.no_grad()
def _run_batches(model: torch.nn.Module, images: torch.Tensor, step, *, batch_size: int, device, amp: bool,
                 progress: bool, desc: str):
    _check_images(images)
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = _model_device(model, device)
    was_training = model.training
    model.to(dev).eval()
    try:
        bar = tqdm(total=images.shape[0], desc=desc, disable=not progress, unit="img", leave=False)
        outputs = []
        for start, stop in _batches(images.shape[0], batch_size):
            x = images[start:stop].to(dev, non_blocking=True).float()
            if dev.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            with autocast(dev, amp):
                outputs.append(step(x, start, stop))
            bar.update(stop - start)
        bar.close()
    finally:
        model.train(was_training)
    return outputs


def _shard(n: int, batch_size: int, distributed: bool) -> tuple[int, int]:
    """This rank's rows (whole batches) when the extraction is split over a process group, else all rows."""
    if not (distributed and dist_utils.is_distributed()):
        return 0, n
    return dist_utils.shard_bounds(n, dist_utils.rank(), dist_utils.world_size(), align=batch_size)


def extract_embeddings(model: torch.nn.Module, images: torch.Tensor, *, batch_size: int = 512, device=None,
                       amp: bool = True, progress: bool = True, distributed: bool = True) -> torch.Tensor:
    """Penultimate embeddings ``model.embed(images)`` as a float32 (N, D) CPU tensor.

    ``images``: (N, C, H, W) in [0, 1] on any device. The model is moved to ``device`` (default:
    the device of its parameters), run in eval mode without gradients in batches of
    ``batch_size`` (bf16 autocast and channels_last on CUDA when ``amp``), and its train/eval
    mode is restored afterwards. Memory: one batch on the device plus the (N, D) result. Split over the
    ranks of an initialised process group unless ``distributed=False`` (see the module docstring).
    """
    _check_images(images)
    start, stop = _shard(images.shape[0], check_int("batch_size", batch_size, low=1), distributed)
    outs = _run_batches(model, images[start:stop], lambda x, a, b: model.embed(x).float().cpu(),
                        batch_size=batch_size, device=device, amp=amp, progress=progress, desc="embed")
    out = torch.cat(outs) if outs else torch.zeros(0, int(getattr(model, "embed_dim", 0)))
    return dist_utils.gather_rows(out) if distributed else out


def extract_gradient_features(model: torch.nn.Module, images: torch.Tensor, labels: torch.Tensor, *,
                              batch_size: int = 512, device=None, amp: bool = True,
                              progress: bool = True, distributed: bool = True) -> GradientFeatures:
    """DQ's last-layer gradient features for ``images`` (N, C, H, W) with ``labels`` (N,).

    One forward pass per batch: ``e = model.embed(x)``, ``logits = model.classify(e)``,
    ``δ = softmax(logits) − onehot(y)`` (softmax in float32). Returns float32 CPU tensors
    wrapped in :class:`GradientFeatures`. Labels must lie in [0, num_classes). Split over the ranks of an
    initialised process group unless ``distributed=False`` (see the module docstring).
    """
    _check_images(images)
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point() or labels.dtype == torch.bool:
        raise ValueError(f"labels must be a 1-D integer tensor of length {images.shape[0]}, "
                         f"got dtype {labels.dtype} and shape {tuple(labels.shape)}")
    labels = labels.long()
    if labels.numel() and int(labels.min()) < 0:
        raise ValueError(f"labels must be >= 0, got a minimum of {int(labels.min())}")
    declared = getattr(model, "num_classes", None)
    if isinstance(declared, int) and labels.numel() and int(labels.max()) >= declared:
        raise ValueError(f"labels must lie in [0, {declared}) for a model with {declared} classes; "
                         f"got a maximum of {int(labels.max())}")

    def step(x, start, stop):
        emb = model.embed(x)
        logits = model.classify(emb).float()
        y = labels[start:stop].to(logits.device)
        num_classes = logits.shape[1]
        if y.numel() and (int(y.min()) < 0 or int(y.max()) >= num_classes):
            raise ValueError(f"labels must lie in [0, {num_classes}) for a model with {num_classes} outputs; "
                             f"got range [{int(y.min())}, {int(y.max())}]")
        delta = torch.softmax(logits, dim=1) - F.one_hot(y, num_classes).float()
        return delta.cpu(), emb.float().cpu()

    if images.shape[0] == 0:
        raise ValueError("images is empty; cannot infer the number of classes")
    start, stop = _shard(images.shape[0], check_int("batch_size", batch_size, low=1), distributed)
    labels = labels[start:stop]
    outs = _run_batches(model, images[start:stop], step, batch_size=batch_size, device=device, amp=amp,
                        progress=progress, desc="gradient features")
    delta = torch.cat([o[0] for o in outs]) if outs else torch.zeros(0, 0)
    emb = torch.cat([o[1] for o in outs]) if outs else torch.zeros(0, 0)
    if distributed:
        delta, emb = dist_utils.gather_rows(delta), dist_utils.gather_rows(emb)
    return GradientFeatures(delta, emb)

