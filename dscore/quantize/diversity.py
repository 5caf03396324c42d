"""ADQ bin scores that need a network: the contrastive diversity score DS (and RS/IS around it).

A frozen feature network ``f`` (any :class:`~dscore.models.DscoreModel`) gives,
per image, its penultimate embedding ``e`` and the global-average-pooled output ``m`` of an
intermediate feature block (:func:`intermediate_and_embedding`). A small discriminator
:class:`ContrastiveHead` ``h`` maps ``[e ⊕ m]`` to a 128-d unit vector ``z``; it is trained with the
NT-Xent / InfoNCE loss on two random views of each image (:func:`contrastive_views`,
:func:`nt_xent_loss`, :func:`train_contrastive_head`) while ``f`` stays frozen.

For a bin B, with ``zᵢ`` the embedding of member i, ``zᵢ⁺`` the embedding of one random view of it
and Nᵢ the other members (negatives):

    DS(B) = mean_{i∈B} [ cos(zᵢ, zᵢ⁺)/τ − log( (1/|Nᵢ|) Σ_{j∈Nᵢ} exp(cos(zᵢ, zⱼ)/τ) ) ]

(:func:`diversity_scores`, :func:`diversity_from_embeddings`). Higher means the members are easier to
tell apart, i.e. more diverse. :func:`cosine_proxy_diversity` is the authors' released diagnostic
(an untrained head on two random-resized-crop views per member, 1 / mean of the view Gram matrix),
kept for comparison only. :func:`adq_scores` bundles RS, DS and IS.
"""
from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..distributed import gather_rows_with_grad, rank as dist_rank, shard_bounds, world_size
from ..features import as_unit_rows
from ..train import batch_indices
from ..utils import autocast, check_float, check_int, make_generator, resolve_device, tqdm
from .bins import check_bins
from .sampling import importance_scores
from .texture import representativeness_scores

__all__ = [
    "intermediate_layer",
    "intermediate_and_embedding",
    "ContrastiveHead",
    "feature_dim",
    "contrastive_views",
    "nt_xent_loss",
    "train_contrastive_head",
    "project",
    "diversity_from_embeddings",
    "diversity_scores",
    "random_resized_crop_boxes",
    "random_resized_crop_flip",
    "ProxyHead",
    "embedding_dim",
    "cosine_proxy_from_views",
    "cosine_proxy_diversity",
    "adq_scores",
]


# ------------------------------------------------------------------------------ intermediate features

def intermediate_layer(model: nn.Module) -> tuple[nn.Module, str] | None:
    """The module whose output is the "intermediate features" of ``model``, with its layout.

    Returns ``(module, layout)`` with layout ``"nchw"`` (conv maps), ``"nhwc"`` (Swin stages) or
    ``"tokens"`` (N, T, D), or ``None`` when the structure is unknown. The choice, one stage before
    the embedding:

    * ConvNet-D: the output of block ``depth − 1`` (after its pooling); for depth 1, block 1;
    * ResNet / ResNetAP: ``layer3``;  DenseNet: the transition before the last dense block;
    * MobileNetV2: ``features[-3]`` (the end of the 160-channel stage);
    * timm ViT: the output tokens of block ``depth // 2``; Swin: the second-to-last stage (NHWC);
      ConvNeXt: the second-to-last stage.
    """
    from .. import models as m

    if isinstance(model, m.ConvNet):
        layers = list(model.layers)
        starts = [i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d)]
        end = starts[-1] - 1 if len(starts) >= 2 else len(layers) - 1
        return layers[end], "nchw"
    if isinstance(model, m.ResNet):
        return model.layer3, "nchw"
    if isinstance(model, m.DenseNet):
        stages = list(model.stages)
        return (stages[-2] if len(stages) >= 2 else stages[-1]), "nchw"
    if isinstance(model, m.MobileNetV2):
        feats = model.net.features
        return feats[len(feats) - 3], "nchw"
    if isinstance(model, m.TimmModel):
        net = model.net
        if hasattr(net, "blocks") and len(net.blocks) > 0:                      # ViT
            return net.blocks[len(net.blocks) // 2], "tokens"
        if hasattr(net, "layers") and len(net.layers) > 0:                      # Swin (NHWC stages)
            return net.layers[max(len(net.layers) - 2, 0)], "nhwc"
        if hasattr(net, "stages") and len(net.stages) > 0:                      # ConvNeXt
            return net.stages[max(len(net.stages) - 2, 0)], "nchw"
    return None


def _pool(out: torch.Tensor, layout: str) -> torch.Tensor:
    if isinstance(out, (tuple, list)):
        out = out[0]
    if layout == "tokens" or out.dim() == 3:
        return out.float().mean(dim=1)
    if layout == "nhwc":
        return out.float().mean(dim=(1, 2))
    return out.float().mean(dim=(2, 3))


def intermediate_and_embedding(model: nn.Module, x: torch.Tensor, *, layer: nn.Module | None = None,
                               layout: str = "nchw") -> tuple[torch.Tensor, torch.Tensor]:
    """One forward pass of ``model.embed(x)`` returning ``(m, e)``.

    ``x``: (N, C, H, W) images in [0, 1]. ``e = model.embed(x)`` is (N, D); ``m`` (N, M) is the global
    average pool of the output of ``layer`` (default: :func:`intermediate_layer`), captured with a
    forward hook and pooled at once (so in-place ops later in the network cannot alter it). For a
    model whose structure is unknown (no ``layer`` given and :func:`intermediate_layer` returns
    ``None``) ``m`` is an empty (N, 0) tensor: the discriminator then sees the embedding only.
    Gradients flow as usual; call under ``torch.no_grad()`` for frozen features. Cost: one forward.
    """
    if layer is None:
        found = intermediate_layer(model)
        if found is not None:
            layer, layout = found
    if layer is None:
        emb = model.embed(x)
        return emb.new_zeros(emb.shape[0], 0), emb
    captured: list[torch.Tensor] = []
    handle = layer.register_forward_hook(lambda mod, inp, out: captured.append(_pool(out, layout)))
    try:
        emb = model.embed(x)
    finally:
        handle.remove()
    if not captured:
        raise ValueError(f"the intermediate layer {type(layer).__name__} was not called by model.embed")
    return captured[-1], emb


def _joint_features(model: nn.Module, x: torch.Tensor) -> torch.Tensor:
    mid, emb = intermediate_and_embedding(model, x)
    return torch.cat([emb.float(), mid.float()], dim=1)


# ------------------------------------------------------------------------------------ the head

class ContrastiveHead(nn.Module):
    """CMI-style instance discriminator: 2-layer MLP on ``[e ⊕ m]`` → ``out_dim``, L2-normalised.

    ``Linear(in_dim, hidden_dim) → ReLU → Linear(hidden_dim, out_dim)``, then ``z / ‖z‖``.
    Input (N, in_dim) → output (N, out_dim) unit rows. :meth:`for_model` sizes it for a network.
    """

    def __init__(self, in_dim: int, *, hidden_dim: int = 512, out_dim: int = 128):
        super().__init__()
        self.in_dim = check_int("in_dim", in_dim, low=1)
        self.hidden_dim = check_int("hidden_dim", hidden_dim, low=1)
        self.out_dim = check_int("out_dim", out_dim, low=1)
        self.mlp = nn.Sequential(nn.Linear(self.in_dim, self.hidden_dim), nn.ReLU(inplace=True),
                                 nn.Linear(self.hidden_dim, self.out_dim))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        if features.dim() != 2 or features.shape[1] != self.in_dim:
            raise ValueError(f"features of shape {tuple(features.shape)} do not fit this head; "
                             f"expected (N, {self.in_dim})")
        return F.normalize(self.mlp(features.float()), dim=1)

    @classmethod
    def for_model(cls, model: nn.Module, *, hidden_dim: int = 512, out_dim: int = 128,
                  seed: int | None = None) -> "ContrastiveHead":
        """A head whose input is ``[model.embed ⊕ GAP(intermediate)]``; ``seed`` fixes its init."""
        in_dim = feature_dim(model)
        if seed is None:
            return cls(in_dim, hidden_dim=hidden_dim, out_dim=out_dim)
        seed = check_int("seed", seed, low=0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(in_dim, hidden_dim=hidden_dim, out_dim=out_dim)


@torch.no_grad()
def feature_dim(model: nn.Module) -> int:
    """Width of ``[embed ⊕ GAP(intermediate)]`` for ``model``, from one probe forward of two zero images."""
    shape = (getattr(model, "in_channels", None), getattr(model, "image_size", None))
    if not all(isinstance(s, int) for s in shape):
        raise ValueError("model must expose in_channels and image_size (a dscore model) to size the head")
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        probe = torch.zeros(2, shape[0], shape[1], shape[1], device=device)
        return int(_joint_features(model, probe).shape[1])
    finally:
        model.train(was_training)


# ---------------------------------------------------------------------------------------- views

def contrastive_views(x: torch.Tensor, generator: torch.Generator | None = None, *, min_scale: float = 0.6,
                      max_degrees: float = 15.0, jitter: float = 0.4) -> torch.Tensor:
    """One random view per image: crop (zoom), horizontal flip, rotation and colour jitter.

    Per sample: a crop of side ``s ∈ [min_scale, 1]`` of the image side at a random offset inside the
    image, a flip with probability ½ and a rotation in ``[−max_degrees, max_degrees]`` — fused into one
    affine map and one bilinear ``grid_sample`` (reflection padding); then brightness ×``[1−j, 1+j]``,
    contrast ×``[1−j, 1+j]`` about the image's grey mean and, for 3 channels, saturation ×``[1−j, 1+j]``
    about each pixel's grey value; clamped to [0, 1]. ``x``: (N, C, H, W) → (N, C, H, W).
    Randomness only from ``generator`` (on ``x.device``). Vectorised, O(N·C·H·W).
    """
    if not torch.is_tensor(x) or x.dim() != 4:
        raise ValueError(f"x must be a tensor of shape (N, C, H, W), got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    min_scale = check_float("min_scale", min_scale, low=0.0, high=1.0, low_open=True)
    max_degrees = check_float("max_degrees", max_degrees, low=0.0, high=180.0)
    jitter = check_float("jitter", jitter, low=0.0, high=1.0, high_open=True)
    n, c = x.shape[:2]
    if n == 0:
        return x.clone()
    u = torch.rand(n, 8, generator=generator, device=x.device, dtype=torch.float32)
    scale = min_scale + (1.0 - min_scale) * u[:, 0]
    tx = (2 * u[:, 1] - 1) * (1 - scale)                      # keeps the crop inside the image (before rotation)
    ty = (2 * u[:, 2] - 1) * (1 - scale)
    flip = torch.where(u[:, 3] < 0.5, -1.0, 1.0)
    angle = (2 * u[:, 4] - 1) * math.radians(max_degrees)
    cos, sin = torch.cos(angle) * scale, torch.sin(angle) * scale
    theta = torch.stack([torch.stack([cos * flip, -sin, tx], 1), torch.stack([sin * flip, cos, ty], 1)], 1)
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=False)
    out = F.grid_sample(x, grid, mode="bilinear", padding_mode="reflection", align_corners=False)

    factors = (1 - jitter) + 2 * jitter * u[:, 5:8]             # brightness, contrast, saturation
    out = out * factors[:, 0].view(n, 1, 1, 1).to(x.dtype)
    grey = _grey(out)
    out = (out - grey.mean(dim=(2, 3), keepdim=True)) * factors[:, 1].view(n, 1, 1, 1).to(x.dtype) \
        + grey.mean(dim=(2, 3), keepdim=True)
    if c == 3:
        grey = _grey(out)
        out = (out - grey) * factors[:, 2].view(n, 1, 1, 1).to(x.dtype) + grey
    return out.clamp(0.0, 1.0)


def _grey(x: torch.Tensor) -> torch.Tensor:
    if x.shape[1] == 3:
        w = torch.tensor([0.299, 0.587, 0.114], dtype=x.dtype, device=x.device).view(1, 3, 1, 1)
        return (x * w).sum(dim=1, keepdim=True)
    return x.mean(dim=1, keepdim=True)


# ----------------------------------------------------------------------------------------- loss

def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, tau: float = 0.1) -> torch.Tensor:
    """NT-Xent (SimCLR / InfoNCE) loss over the 2B views of B images.

    ``z1``, ``z2``: (B, d) embeddings of the two views (normalised here). With ``Z = [z1; z2]``
    (2B rows) and ``s_ab = cos(Z_a, Z_b)/τ``, view a's positive is its partner ``p(a) = a ± B`` and
    the loss is ``mean_a [ −s_{a,p(a)} + log Σ_{b≠a} exp(s_ab) ]``. Needs B >= 2.
    Time O(B²·d), memory O(B²).
    """
    tau = check_float("tau", tau, low=0.0, low_open=True)
    if z1.dim() != 2 or z1.shape != z2.shape:
        raise ValueError(f"z1 and z2 must both be (B, d); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    b = z1.shape[0]
    if b < 2:
        raise ValueError(f"nt_xent_loss needs at least 2 images per batch (negatives), got B={b}")
    z = F.normalize(torch.cat([z1, z2]).float(), dim=1)
    logits = (z @ z.T) / tau
    logits = logits.masked_fill(torch.eye(2 * b, dtype=torch.bool, device=z.device), -math.inf)
    target = torch.cat([torch.arange(b, 2 * b), torch.arange(0, b)]).to(z.device)
    return F.cross_entropy(logits, target)


# ------------------------------------------------------------------------------------- training

def _check_images(images) -> None:
    if not torch.is_tensor(images) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor of shape (N, C, H, W), got "
                         f"{tuple(images.shape) if torch.is_tensor(images) else type(images).__name__}")


def _to_input(x: torch.Tensor, device: torch.device) -> torch.Tensor:
    x = x.to(device, dtype=torch.float32, non_blocking=True)
    if device.type == "cuda":
        x = x.contiguous(memory_format=torch.channels_last)
    return x


def train_contrastive_head(model: nn.Module, images: torch.Tensor, config, *, weight_decay: float = 0.0,
                           device=None, progress: bool = True, head: ContrastiveHead | None = None) -> ContrastiveHead:
    """Train the instance discriminator on ``images`` (N, C, H, W) with the feature net frozen.

    ``config``: a :class:`dscore.quantize.config.HeadConfig` or a mapping of its fields (``epochs``,
    ``batch_size``, temperature ``tau``, Adam ``lr``, ``hidden_dim``, ``out_dim``, ``seed``; its ``max_images`` is
    the caller's business: pass the images to train on).

    Every epoch visits the images in a seeded random order in batches of ``batch_size`` (a trailing
    single image joins the previous batch); each batch gets two :func:`contrastive_views`, the frozen
    ``model`` (eval mode, no gradients, bf16 autocast on CUDA) gives ``[e ⊕ m]`` for both, and the head
    takes one Adam step on :func:`nt_xent_loss`. ``head`` (default: a new head sized for the model,
    initialised from ``seed``) is trained in place and returned in eval mode on ``device``, with
    ``head.loss_history`` = the mean loss of every epoch. The model's parameters and train/eval mode
    are left as they were. Same seed → same head. Cost: epochs · 2N forward passes of ``model``.

    Under an initialised ``torch.distributed`` process group (``torchrun``) the head trains under
    ``DistributedDataParallel``: every rank draws the same batches and views, runs the frozen model and the
    head on its contiguous share of the 2·B views, the projections are gathered (differentiably, in rank
    order) and every rank takes the NT-Xent loss of the whole batch — the single-process loss and gradient,
    up to float summation order. Every rank returns the same head.
    """
    from .config import HeadConfig

    cfg = HeadConfig.of(config, "head")
    _check_images(images)
    epochs, batch_size, tau, lr, seed = cfg.epochs, cfg.batch_size, cfg.tau, cfg.lr, cfg.seed
    weight_decay = check_float("weight_decay", weight_decay, low=0.0)
    n = images.shape[0]
    if n < 2:
        raise ValueError(f"train_contrastive_head needs at least 2 images, got {n}")
    if head is not None and not isinstance(head, ContrastiveHead):
        raise ValueError(f"head must be a ContrastiveHead, got {type(head).__name__}")
    dev = resolve_device(device)
    was_training = model.training
    model.to(dev).eval()
    if head is None:
        head = ContrastiveHead.for_model(model, hidden_dim=cfg.hidden_dim, out_dim=cfg.out_dim, seed=seed)
    head.to(dev).train()
    world, rank_ = world_size(), dist_rank()
    trained: nn.Module = head
    if world > 1:
        trained = nn.parallel.DistributedDataParallel(head, device_ids=[dev.index] if dev.type == "cuda" else None)
    optimizer = torch.optim.Adam(head.parameters(), lr=lr, weight_decay=weight_decay)
    order_gen = make_generator(seed)
    view_gen = make_generator(seed + 1, dev)
    history: list[float] = []
    try:
        for _ in tqdm(range(epochs), desc="contrastive head", unit="ep", disable=not progress, leave=False):
            total, count = torch.zeros((), device=dev), 0
            for idx in batch_indices(n, batch_size, generator=order_gen, min_batch=2):
                x = _to_input(images[idx.to(images.device)], dev)
                with torch.no_grad():
                    views = torch.cat([contrastive_views(x, view_gen), contrastive_views(x, view_gen)])
                    if world > 1:                       # this rank's share of the views (all ranks drew all)
                        lo, hi = shard_bounds(len(views), rank_, world)
                        views = views[lo:hi]
                    with autocast(dev):
                        feats = (_joint_features(model, views) if len(views)
                                 else torch.zeros(0, head.in_dim, device=dev))
                z = gather_rows_with_grad(trained(feats.float()))
                loss = nt_xent_loss(z[: len(idx)], z[len(idx):], tau)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach() * len(idx)
                count += len(idx)
            history.append(float(total) / count)
    finally:
        model.train(was_training)
    head.eval()
    head.loss_history = history
    return head


# ------------------------------------------------------------------------------------ diversity

@torch.no_grad()
def project(model: nn.Module, head: ContrastiveHead, images: torch.Tensor, *, views: bool = False,
            generator: torch.Generator | None = None, batch_size: int = 256, device=None,
            progress: bool = False) -> torch.Tensor:
    """Head embeddings ``z = h([e ⊕ m])`` of ``images`` (N, C, H, W) → float32 (N, out_dim) on CPU.

    With ``views=True`` each image is first replaced by one :func:`contrastive_views` draw from
    ``generator`` (batches in order, so a seeded generator gives reproducible views). Both networks
    run in eval mode without gradients; their modes are restored. Memory: one batch on the device.
    """
    _check_images(images)
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = resolve_device(device)
    modes = (model.training, head.training)
    model.to(dev).eval()
    head.to(dev).eval()
    out = []
    try:
        for start in tqdm(range(0, images.shape[0], batch_size), desc="project", disable=not progress, leave=False):
            x = _to_input(images[start:start + batch_size], dev)
            if views:
                x = contrastive_views(x, generator)
            with autocast(dev):
                feats = _joint_features(model, x)
            out.append(head(feats.float()).cpu())
    finally:
        model.train(modes[0])
        head.train(modes[1])
    if not out:
        return torch.zeros(0, head.out_dim)
    return torch.cat(out)


def _check_bin_list(bins, n: int, *, min_size: int) -> list[torch.Tensor]:
    # a diversity score needs at least one other member to compare with
    return [b.cpu() for b in check_bins(bins, n, min_size=min_size, distinct=True)]


def diversity_from_embeddings(z: torch.Tensor, z_pos: torch.Tensor, bins: Sequence[torch.Tensor], *,
                              tau: float = 0.1, max_negatives: int = 4096, seed: int = 0,
                              chunk_size: int = 1024) -> torch.Tensor:
    """DS of every bin from fixed embeddings: ``z`` (N, d) of the images, ``z_pos`` (N, d) of their views.

    ``DS(B) = mean_{i∈B} [ cos(zᵢ, zᵢ⁺)/τ − (logsumexp_{j∈Nᵢ} cos(zᵢ, zⱼ)/τ − log|Nᵢ|) ]`` in float64
    (zero rows have cosine 0). Negatives: when ``|B| − 1 <= max_negatives``, Nᵢ = B \\ {i}. Otherwise
    ONE random subset S ⊂ B of ``max_negatives`` members is drawn per bin and shared by all its
    members: Nᵢ = S \\ {i} (so |Nᵢ| is ``max_negatives − 1`` for i ∈ S and ``max_negatives`` for
    i ∉ S). The subsets come from one generator seeded with ``seed``, drawn bin by bin in order.
    Rows are processed ``chunk_size`` at a time: time O(|B|·min(|B|, max_negatives)·d) per bin,
    memory O(chunk_size·max_negatives) — never a |B|×|B| matrix. Returns (K,) float64 on CPU.
    """
    if z.dim() != 2 or z_pos.shape != z.shape:
        raise ValueError(f"z and z_pos must both be (N, d); got {tuple(z.shape)} and {tuple(z_pos.shape)}")
    tau = check_float("tau", tau, low=0.0, low_open=True)
    max_negatives = check_int("max_negatives", max_negatives, low=2)
    seed = check_int("seed", seed, low=0)
    chunk_size = check_int("chunk_size", chunk_size, low=1)
    bins = _check_bin_list(bins, z.shape[0], min_size=2)
    zu = as_unit_rows(z.double())
    pos = (zu * as_unit_rows(z_pos.double().to(zu.device))).sum(dim=1) / tau            # (N,)
    gen = make_generator(seed)
    scores = []
    for b in bins:
        b = b.to(zu.device)
        if b.numel() - 1 > max_negatives:
            neg = b[torch.randperm(b.numel(), generator=gen)[:max_negatives].to(zu.device)]
        else:
            neg = b
        zn = zu.index_select(0, neg)
        total = torch.zeros((), dtype=torch.float64, device=zu.device)
        for start in range(0, b.numel(), chunk_size):
            rows = b[start:start + chunk_size]
            logits = (zu.index_select(0, rows) @ zn.T) / tau                              # (c, m)
            is_self = rows.unsqueeze(1) == neg.unsqueeze(0)
            lse = torch.logsumexp(logits.masked_fill(is_self, -math.inf), dim=1)
            count = (neg.numel() - is_self.sum(dim=1)).double()
            total += (pos.index_select(0, rows) - lse + torch.log(count)).sum()
        scores.append(total / b.numel())
    return torch.stack(scores).cpu()


def diversity_scores(model: nn.Module, head: ContrastiveHead, images: torch.Tensor, bins: Sequence[torch.Tensor],
                     *, tau: float = 0.1, max_negatives: int = 4096, seed: int = 0, device=None,
                     batch_size: int = 256, chunk_size: int = 1024, progress: bool = False) -> torch.Tensor:
    """ADQ diversity score DS per bin; higher = more diverse. (K,) float64.

    ``images``: (N, C, H, W) in [0, 1]; ``bins``: K index tensors into ``images`` (each with >= 2
    distinct members). The images in some bin are projected with ``head`` on the frozen ``model``
    (:func:`project`), once as they are (z) and once as one random view each (z⁺, views drawn from a
    generator seeded with ``seed``); then :func:`diversity_from_embeddings`. Same seed → same scores.
    Cost: 2 forward passes per binned image + O(Σ_B |B|·min(|B|, max_negatives)·d).
    """
    _check_images(images)
    tau = check_float("tau", tau, low=0.0, low_open=True)
    max_negatives = check_int("max_negatives", max_negatives, low=2)
    seed = check_int("seed", seed, low=0)
    batch_size = check_int("batch_size", batch_size, low=1)
    chunk_size = check_int("chunk_size", chunk_size, low=1)
    bins = _check_bin_list(bins, images.shape[0], min_size=2)
    dev = resolve_device(device)
    needed = torch.unique(torch.cat(bins))
    subset = images.index_select(0, needed.to(images.device))
    z = project(model, head, subset, batch_size=batch_size, device=dev, progress=progress)
    z_pos = project(model, head, subset, views=True, generator=make_generator(seed, dev), batch_size=batch_size,
                    device=dev, progress=progress)
    local = torch.full((images.shape[0],), -1, dtype=torch.long)
    local[needed] = torch.arange(needed.numel())
    return diversity_from_embeddings(z, z_pos, [local[b] for b in bins], tau=tau, max_negatives=max_negatives,
                                     seed=seed, chunk_size=chunk_size)


def random_resized_crop_boxes(n: int, height: int, width: int, generator: torch.Generator | None = None, *,
                              scale: tuple[float, float] = (0.08, 1.0),
                              ratio: tuple[float, float] = (3 / 4, 4 / 3), attempts: int = 10) -> torch.Tensor:
    """Crop boxes of torchvision's ``RandomResizedCrop`` rule, drawn for ``n`` images at once: (n, 4) int64
    rows ``(top, left, h, w)``.

    Per image, up to ``attempts`` candidates: area ``A·U(scale)`` (A = height·width), aspect
    ``exp(U(log ratio))``, ``w = round(sqrt(area·aspect))``, ``h = round(sqrt(area/aspect))``; the first
    candidate with ``0 < h <= height`` and ``0 < w <= width`` is placed at a uniform integer offset.
    Without one, the fallback is torchvision's: the largest centred box whose aspect is clamped into
    ``ratio``. Randomness only from ``generator`` (CPU). Vectorised, O(n·attempts).
    """
    n = check_int("n", n, low=0)
    height, width = check_int("height", height, low=1), check_int("width", width, low=1)
    attempts = check_int("attempts", attempts, low=1)
    lo_s, hi_s = (check_float("scale", v, low=0.0, low_open=True) for v in scale)
    lo_r, hi_r = (check_float("ratio", v, low=0.0, low_open=True) for v in ratio)
    if lo_s > hi_s or lo_r > hi_r:
        raise ValueError(f"scale={scale} and ratio={ratio} must be (low, high) with low <= high")
    u = torch.rand(n, attempts, 4, generator=generator, dtype=torch.float64)
    area = height * width * (lo_s + (hi_s - lo_s) * u[..., 0])
    aspect = torch.exp(math.log(lo_r) + (math.log(hi_r) - math.log(lo_r)) * u[..., 1])
    w = torch.round(torch.sqrt(area * aspect)).long()
    h = torch.round(torch.sqrt(area / aspect)).long()
    ok = (w > 0) & (w <= width) & (h > 0) & (h <= height)
    first = torch.argmax(ok.long(), dim=1)                      # index of the first valid attempt (0 if none)
    rows = torch.arange(n)
    h, w, ok_any = h[rows, first], w[rows, first], ok.any(dim=1)
    top = torch.floor(u[rows, first, 2] * (height - h + 1).clamp(min=1)).long()
    left = torch.floor(u[rows, first, 3] * (width - w + 1).clamp(min=1)).long()
    in_ratio = width / height
    if in_ratio < lo_r:
        fw, fh = width, int(round(width / lo_r))
    elif in_ratio > hi_r:
        fh, fw = height, int(round(height * hi_r))
    else:
        fw, fh = width, height
    h = torch.where(ok_any, h, torch.full_like(h, fh))
    w = torch.where(ok_any, w, torch.full_like(w, fw))
    top = torch.where(ok_any, top, torch.full_like(top, (height - fh) // 2))
    left = torch.where(ok_any, left, torch.full_like(left, (width - fw) // 2))
    return torch.stack([top, left, h, w], dim=1)


def _resize_matrix(start: torch.Tensor, length: torch.Tensor, size_in: int, size_out: int,
                   dtype: torch.dtype, device) -> torch.Tensor:
    """(n, size_out, size_in) bilinear weights of ``F.interpolate(align_corners=False)`` on [start, start+length)."""
    j = torch.arange(size_out, device=device, dtype=torch.float64)
    length_f = length.to(device, torch.float64).unsqueeze(1)
    src = ((j + 0.5) * length_f / size_out - 0.5).clamp(min=0.0)              # inside the crop
    i0 = torch.floor(src).long()
    i0 = torch.minimum(i0, length.to(device).unsqueeze(1) - 1)
    i1 = torch.minimum(i0 + 1, length.to(device).unsqueeze(1) - 1)
    frac = (src - i0.double()).clamp(0.0, 1.0)
    off = start.to(device).unsqueeze(1)
    out = torch.zeros(start.shape[0], size_out, size_in, dtype=torch.float64, device=device)
    out.scatter_add_(2, (i0 + off).unsqueeze(2), (1.0 - frac).unsqueeze(2))
    out.scatter_add_(2, (i1 + off).unsqueeze(2), frac.unsqueeze(2))
    return out.to(dtype)


def random_resized_crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, *,
                             scale: tuple[float, float] = (0.08, 1.0), ratio: tuple[float, float] = (3 / 4, 4 / 3),
                             flip_p: float = 0.5) -> torch.Tensor:
    """The authors' diversity views: torchvision's ``RandomResizedCrop(size = input size)`` (default
    scale 0.08–1, aspect 3/4–4/3) followed by ``RandomHorizontalFlip(flip_p)``, for a batch at once.

    ``x``: (N, C, H, W) → (N, C, H, W). Boxes from :func:`random_resized_crop_boxes`; each box is
    resized back to H×W with bilinear interpolation exactly as ``F.interpolate(crop, (H, W),
    mode="bilinear", align_corners=False)`` (crops never exceed the image, so this only upsamples and
    antialiasing does not apply), as two batched matrix products; then a flip per image with
    probability ``flip_p``. Randomness only from ``generator`` (CPU): boxes first, then flips.
    """
    if not torch.is_tensor(x) or x.dim() != 4 or not x.is_floating_point():
        raise ValueError(f"x must be a float tensor of shape (N, C, H, W), got "
                         f"{tuple(x.shape) if torch.is_tensor(x) else type(x).__name__}")
    flip_p = check_float("flip_p", flip_p, low=0.0, high=1.0)
    n, _, hgt, wid = x.shape
    boxes = random_resized_crop_boxes(n, hgt, wid, generator, scale=scale, ratio=ratio)
    flips = torch.rand(n, generator=generator, dtype=torch.float64) < flip_p
    if n == 0:
        return x.clone()
    ry = _resize_matrix(boxes[:, 0], boxes[:, 2], hgt, hgt, x.dtype, x.device)          # (n, H, H)
    rx = _resize_matrix(boxes[:, 1], boxes[:, 3], wid, wid, x.dtype, x.device)          # (n, W, W)
    rx = torch.where(flips.to(x.device).view(n, 1, 1), rx.flip(1), rx)
    return torch.einsum("nij,ncjk,nlk->ncil", ry, x, rx)


class ProxyHead(ContrastiveHead):
    """The authors' untrained diversity head: ``Linear(d, d) → ReLU → Linear(d, out_dim)``, L2-normalised
    output, on the feature network's penultimate embedding (d = its width; 512→512→128 for their
    ResNet-18). Never trained; :meth:`for_model` seeds its initialisation."""

    @classmethod
    def for_model(cls, model: nn.Module, *, hidden_dim: int | None = None, out_dim: int = 128,
                  seed: int | None = 0) -> "ProxyHead":
        in_dim = embedding_dim(model)
        hidden = in_dim if hidden_dim is None else check_int("hidden_dim", hidden_dim, low=1)
        if seed is None:
            return cls(in_dim, hidden_dim=hidden, out_dim=out_dim)
        seed = check_int("seed", seed, low=0)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            return cls(in_dim, hidden_dim=hidden, out_dim=out_dim)


@torch.no_grad()
def embedding_dim(model: nn.Module) -> int:
    """Width of ``model.embed`` from one probe forward of two zero images (a dscore model)."""
    shape = (getattr(model, "in_channels", None), getattr(model, "image_size", None))
    if not all(isinstance(v, int) for v in shape) or not hasattr(model, "embed"):
        raise ValueError("model must be a dscore model (embed(), in_channels, image_size) to size the head")
    param = next(iter(model.parameters()), None)
    device = param.device if param is not None else torch.device("cpu")
    was_training = model.training
    model.eval()
    try:
        return int(model.embed(torch.zeros(2, shape[0], shape[1], shape[1], device=device)).shape[1])
    finally:
        model.train(was_training)


def cosine_proxy_from_views(z1: torch.Tensor, z2: torch.Tensor, bins: Sequence[torch.Tensor]) -> torch.Tensor:
    """``1 / mean(E·Eᵀ)`` per bin, ``E`` = the 2|B| rows ``z1[B] ∪ z2[B]`` L2-normalised, the diagonal included.

    ``z1``, ``z2``: (N, d) head outputs of the two views of every image. With unit rows the sum of
    all (2|B|)² entries of ``E·Eᵀ`` is ``‖Σ_rows E‖²``, so a bin costs O(|B|·d) — no matrix. Zero rows
    stay zero. The mean is positive unless the views cancel out (then ±inf). (K,) float64 on CPU.
    """
    if z1.dim() != 2 or z2.shape != z1.shape:
        raise ValueError(f"z1 and z2 must both be (N, d); got {tuple(z1.shape)} and {tuple(z2.shape)}")
    bins = [b.cpu() for b in check_bins(bins, z1.shape[0], min_size=1, distinct=True)]
    u1, u2 = as_unit_rows(z1.double().cpu()), as_unit_rows(z2.double().cpu())
    out = []
    for b in bins:
        total = u1.index_select(0, b).sum(dim=0) + u2.index_select(0, b).sum(dim=0)
        out.append(1.0 / (total.pow(2).sum() / (2 * b.numel()) ** 2))
    return torch.stack(out)


@torch.no_grad()
def cosine_proxy_diversity(model: nn.Module, images: torch.Tensor, bins: Sequence[torch.Tensor], *,
                           head: ContrastiveHead | None = None, out_dim: int = 128, seed: int = 0,
                           batch_size: int = 256, device=None, progress: bool = False) -> torch.Tensor:
    """The authors' released diversity diagnostic per bin (a diagnostic: sampling uses :func:`diversity_scores`).

    As the ADQ authors' script: an untrained, seeded MLP head (:class:`ProxyHead`, d→d→``out_dim``,
    L2-normalised; ``head`` overrides it) on the frozen feature network's penultimate embeddings of
    two random views of every bin member — :func:`random_resized_crop_flip` (crop scale 0.08–1,
    flip) — and ``DS_proxy(B) = 1 / mean(E·Eᵀ)`` over all 2|B| views, the diagonal included
    (:func:`cosine_proxy_from_views`). Their script seeds neither the head nor the views; here
    ``seed`` fixes both (head init from ``seed``, views from a CPU generator seeded with ``seed + 1``,
    drawn batch by batch in ascending image order: first view then second view). Higher = the views
    of the bin point in more different directions. (K,) float64 on CPU.
    Cost: 2 forward passes per binned image.
    """
    _check_images(images)
    out_dim = check_int("out_dim", out_dim, low=1)
    seed = check_int("seed", seed, low=0)
    batch_size = check_int("batch_size", batch_size, low=1)
    bins = _check_bin_list(bins, images.shape[0], min_size=1)
    if head is None:
        head = ProxyHead.for_model(model, out_dim=out_dim, seed=seed)
    if not isinstance(head, ContrastiveHead):
        raise ValueError(f"head must be a ContrastiveHead/ProxyHead, got {type(head).__name__}")
    dev = resolve_device(device)
    needed = torch.unique(torch.cat(bins))
    gen = make_generator(seed + 1)
    modes = (model.training, head.training)
    model.to(dev).eval()
    head.to(dev).eval()
    z1, z2 = [], []
    try:
        for start in tqdm(range(0, needed.numel(), batch_size), desc="cosine proxy", disable=not progress,
                          leave=False):
            x = images.index_select(0, needed[start:start + batch_size].to(images.device)).float().cpu()
            for views, store in ((random_resized_crop_flip(x, gen), z1), (random_resized_crop_flip(x, gen), z2)):
                with autocast(dev):
                    emb = model.embed(_to_input(views, dev))
                store.append(head(emb.float()).cpu())
    finally:
        model.train(modes[0])
        head.train(modes[1])
    local = torch.full((images.shape[0],), -1, dtype=torch.long)
    local[needed] = torch.arange(needed.numel())
    return cosine_proxy_from_views(torch.cat(z1), torch.cat(z2), [local[b] for b in bins])


def adq_scores(images: torch.Tensor, bins: Sequence[torch.Tensor], model: nn.Module, head: ContrastiveHead, *,
               patch: int = 32, tau: float = 0.1, max_negatives: int = 4096, seed: int = 0, device=None,
               batch_size: int = 256, progress: bool = False) -> dict[str, torch.Tensor]:
    """ADQ's three bin scores: ``{"rs": RS, "ds": DS, "is_": IS}``, each (K,) float64 on CPU.

    RS = mean texture level of the bin's L×L patches (:func:`dscore.quantize.representativeness_scores`,
    L = ``patch``), DS = :func:`diversity_scores`, IS = z(RS) + z(DS)
    (:func:`dscore.quantize.importance_scores`).
    """
    _check_images(images)
    patch = check_int("patch", patch, low=2)
    dev = resolve_device(device)
    bins = _check_bin_list(bins, images.shape[0], min_size=2)
    rs = representativeness_scores(images, bins, patch, batch_size=batch_size, device=dev, progress=progress).cpu()
    ds = diversity_scores(model, head, images, bins, tau=tau, max_negatives=max_negatives, seed=seed, device=dev,
                          batch_size=batch_size, progress=progress)
    return {"rs": rs, "ds": ds, "is_": importance_scores(rs, ds).cpu()}
