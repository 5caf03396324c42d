"""DQ/ADQ pixel quantization: drop the least informative patches, store the rest, rebuild with an MAE.

Images are cut into a grid of ``patch × patch`` patches, numbered
row-major (patch ``r·(W/p) + c`` covers rows ``r·p … r·p+p−1`` and columns ``c·p … c·p+p−1``); every
function here uses that order.

* :func:`gradcam`, :func:`gradcam_patch_importance` — Grad-CAM of the true-class logit, averaged per patch.
* :func:`drop_mask` — keep-mask dropping the ⌊θ·P⌋ least important patches of every image.
* :func:`quantize_pixels` / :func:`restore_pixels` — the stored record (kept patches + mask) and back.
* :class:`MaskedAutoencoder`, :func:`train_mae`, :func:`reconstruct` — a small ViT MAE (timm blocks)
  that fills the dropped patches.
* :func:`storage_ratio`, :func:`effective_keep_ratio`, :func:`image_fraction_for` — accounting.

θ (the fraction of patches dropped) defaults to :data:`DEFAULT_THETA` = 0.2, the authors' mask ratio
(their released reconstruction keeps 80% of the patches). The keep ratios quoted in the DQ/ADQ
papers are effective ratios: the authors' "10%" CIFAR-10 set is 12.5% of the images × 0.8 of the
patches; :func:`image_fraction_for` gives the image fraction for a target effective ratio.
"""
from __future__ import annotations

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

from ..train import batch_indices, make_lr_schedule
from ..utils import autocast, check_float, check_int, make_generator, resolve_device, tqdm

#: Default fraction θ of patches dropped per image: the authors' mask ratio 0.2.
DEFAULT_THETA = 0.2

__all__ = [
    "DEFAULT_THETA",
    "default_gradcam_layer",
    "gradcam",
    "gradcam_patch_importance",
    "drop_mask",
    "patchify",
    "unpatchify",
    "pixel_mask",
    "sincos_pos_embed_2d",
    "MaskedAutoencoder",
    "random_keep_mask",
    "train_mae",
    "reconstruct",
    "quantize_pixels",
    "restore_pixels",
    "image_fraction_for",
    "storage_ratio",
    "effective_keep_ratio",
]


# ------------------------------------------------------------------------------------ checks

def _check_images(images) -> None:
    if not torch.is_tensor(images) or images.dim() != 4 or not images.is_floating_point():
        raise ValueError(f"images must be a float tensor of shape (N, C, H, W), got "
                         f"{tuple(images.shape) if torch.is_tensor(images) else type(images).__name__}")


def _check_patch(patch, h: int, w: int) -> int:
    patch = check_int("patch", patch, low=1)
    if h % patch or w % patch:
        raise ValueError(f"image size {h}×{w} is not divisible by patch={patch}; "
                         f"allowed: a patch size dividing both sides")
    return patch


def _check_keep_mask(keep_mask, n: int, num_patches: int) -> torch.Tensor:
    if not torch.is_tensor(keep_mask) or keep_mask.dtype != torch.bool or keep_mask.shape != (n, num_patches):
        got = (f"{keep_mask.dtype} {tuple(keep_mask.shape)}" if torch.is_tensor(keep_mask)
               else type(keep_mask).__name__)
        raise ValueError(f"keep_mask must be a bool tensor of shape ({n}, {num_patches}), got {got}")
    return keep_mask


# -------------------------------------------------------------------------------------- Grad-CAM

def default_gradcam_layer(model: nn.Module) -> nn.Module:
    """The last convolutional feature block of a dscore model (its output is an (N, C, h, w) map).

    ConvNet-D: the activation of the last block (before its pooling); ResNet: ``layer4``; DenseNet:
    the dense stages; MobileNetV2: ``features``; ConvNeXt: the stages. Transformers without a conv
    map (ViT, Swin) raise ``ValueError``: pass ``target_layer`` explicitly.
    """
    from .. import models as m

    if isinstance(model, m.ConvNet):
        layers = list(model.layers)
        last_conv = max(i for i, layer in enumerate(layers) if isinstance(layer, nn.Conv2d))
        block = layers[last_conv:]
        acts = [layer for layer in block if isinstance(layer, (nn.ReLU, nn.LeakyReLU, nn.Sigmoid))]
        return acts[-1] if acts else block[-1]
    if isinstance(model, m.ResNet):
        return model.layer4
    if isinstance(model, m.DenseNet):
        return model.stages
    if isinstance(model, m.MobileNetV2):
        return model.net.features
    if isinstance(model, m.TimmModel) and hasattr(model.net, "stages") and not hasattr(model.net, "layers"):
        return model.net.stages
    raise ValueError(f"no default Grad-CAM layer for {type(model).__name__}; pass target_layer= (a module, or "
                     "its name in model.named_modules(), whose output is an (N, C, h, w) feature map)")


def _resolve_layer(model: nn.Module, target_layer) -> nn.Module:
    if target_layer is None:
        return default_gradcam_layer(model)
    if isinstance(target_layer, str):
        try:
            return model.get_submodule(target_layer)
        except AttributeError:
            raise ValueError(f"target_layer={target_layer!r} is not a submodule of the model") from None
    if isinstance(target_layer, nn.Module):
        if not any(target_layer is mod for mod in model.modules()):
            raise ValueError("target_layer is not a submodule of the model")
        return target_layer
    raise ValueError(f"target_layer={target_layer!r} must be None, a module of the model or its name")


def _gradcam_batch(model: nn.Module, layer: nn.Module, x: torch.Tensor, y: torch.Tensor, amp: bool) -> torch.Tensor:
    """Grad-CAM maps (n, H, W) in float32 for one batch (model in eval mode)."""
    store: dict[str, torch.Tensor] = {}

    def hook(module, inputs, out):
        if not torch.is_tensor(out) or out.dim() != 4:
            raise ValueError(f"the Grad-CAM layer {type(module).__name__} must output an (N, C, h, w) map, got "
                             f"{tuple(out.shape) if torch.is_tensor(out) else type(out).__name__}")
        # A fresh leaf: the gradient w.r.t. the activation is all Grad-CAM needs (none flows further back),
        # and the clone keeps a later in-place op from touching the leaf.
        leaf = out.detach().requires_grad_(True)
        store["act"] = leaf
        return leaf.clone()

    handle = layer.register_forward_hook(hook)
    try:
        with torch.enable_grad(), autocast(x.device, amp):
            logits = model(x)
    finally:
        handle.remove()
    if "act" not in store:
        raise ValueError("the Grad-CAM layer was not called in the model's forward pass")
    act = store["act"]
    score = logits.float().gather(1, y.view(-1, 1)).sum()       # samples are independent in eval mode
    grad, = torch.autograd.grad(score, act)
    weights = grad.float().mean(dim=(2, 3), keepdim=True)        # α_c = GAP of ∂logit/∂A_c
    cam = F.relu((weights * act.detach().float()).sum(dim=1, keepdim=True))
    return F.interpolate(cam, size=x.shape[2:], mode="bilinear", align_corners=False).squeeze(1)


def gradcam(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, target_layer=None, device=None,
            batch_size: int = 256, amp: bool = True, progress: bool = False) -> torch.Tensor:
    """Grad-CAM maps of the true-class logit, upsampled to the image size: (N, H, W) float32 on CPU.

    ``A`` = output (N, C, h, w) of ``target_layer`` (default :func:`default_gradcam_layer`), captured
    with a forward hook; ``α_c = mean_{h,w} ∂logit_y/∂A_c``; ``map = ReLU(Σ_c α_c A_c)``, bilinearly
    upsampled (align_corners=False) to H×W. Maps are not normalised per image (ranking patches within an
    image does not need it). The model runs in eval mode (mode restored afterwards), ``batch_size``
    images at a time; one forward and one backward to the layer per batch, vectorised over the batch.
    """
    _check_images(images)
    labels = torch.as_tensor(labels)
    if labels.dim() != 1 or labels.shape[0] != images.shape[0] or labels.is_floating_point():
        raise ValueError(f"labels must be a 1-D integer tensor with {images.shape[0]} entries, got "
                         f"{labels.dtype} {tuple(labels.shape)}")
    batch_size = check_int("batch_size", batch_size, low=1)
    layer = _resolve_layer(model, target_layer)
    dev = resolve_device(device) if device is not None else _param_device(model)
    was_training = model.training
    model.to(dev).eval()
    out = []
    try:
        for start in tqdm(range(0, images.shape[0], batch_size), desc="grad-cam", disable=not progress, leave=False):
            x = images[start:start + batch_size].to(dev, dtype=torch.float32)
            y = labels[start:start + batch_size].to(dev).long()
            if dev.type == "cuda":
                x = x.contiguous(memory_format=torch.channels_last)
            out.append(_gradcam_batch(model, layer, x, y, amp).cpu())
    finally:
        model.train(was_training)
    if not out:
        return torch.zeros(0, images.shape[2], images.shape[3])
    return torch.cat(out)


def _param_device(model: nn.Module) -> torch.device:
    p = next(iter(model.parameters()), None)
    return p.device if p is not None else torch.device("cpu")


def gradcam_patch_importance(model: nn.Module, images: torch.Tensor, labels: torch.Tensor, patch: int, *,
                             target_layer=None, device=None, batch_size: int = 256, amp: bool = True,
                             progress: bool = False) -> torch.Tensor:
    """Patch importance (N, P) = the mean of the :func:`gradcam` map over each patch×patch patch.

    ``P = (H/patch)·(W/patch)``, patches row-major; H and W must be multiples of ``patch``.
    Returns float32 on CPU. Cost: one forward + backward per image, O(N·H·W) for the pooling.
    """
    _check_images(images)
    _check_patch(patch, images.shape[2], images.shape[3])
    maps = gradcam(model, images, labels, target_layer=target_layer, device=device, batch_size=batch_size, amp=amp,
                   progress=progress)
    return F.avg_pool2d(maps.unsqueeze(1), patch).flatten(1)


def drop_mask(importance: torch.Tensor, theta: float = DEFAULT_THETA) -> torch.Tensor:
    """Keep-mask (N, P) bool: per image, drop the ``⌊θ·P⌋`` patches of lowest importance.

    Ties: among equal importances the lower patch index is dropped first (stable ascending sort).
    ``θ ∈ [0, 1)``. O(N·P log P).
    """
    if not torch.is_tensor(importance) or importance.dim() != 2:
        raise ValueError(f"importance must be a tensor of shape (N, P), got "
                         f"{tuple(importance.shape) if torch.is_tensor(importance) else type(importance).__name__}")
    theta = check_float("theta", theta, low=0.0, high=1.0, high_open=True)
    if importance.is_complex() or (importance.numel() and not bool(torch.isfinite(importance.double()).all())):
        raise ValueError("importance must hold finite real numbers")
    n, p = importance.shape
    drop = math.floor(theta * p)
    keep = torch.ones(n, p, dtype=torch.bool, device=importance.device)
    if drop:
        order = torch.sort(importance, dim=1, stable=True).indices[:, :drop]
        keep.scatter_(1, order, False)
    return keep


# ------------------------------------------------------------------------------------ patch maps

def patchify(images: torch.Tensor, patch: int) -> torch.Tensor:
    """(N, C, H, W) → (N, P, C·patch·patch); each patch flattened in (C, row, column) order."""
    _check_images(images)
    n, c, h, w = images.shape
    patch = _check_patch(patch, h, w)
    gh, gw = h // patch, w // patch
    x = images.reshape(n, c, gh, patch, gw, patch).permute(0, 2, 4, 1, 3, 5)
    return x.reshape(n, gh * gw, c * patch * patch)


def unpatchify(patches: torch.Tensor, patch: int, channels: int, height: int, width: int) -> torch.Tensor:
    """Inverse of :func:`patchify`: (N, P, C·p·p) → (N, C, H, W)."""
    gh, gw = height // patch, width // patch
    n = patches.shape[0]
    if patches.shape[1:] != (gh * gw, channels * patch * patch):
        raise ValueError(f"patches of shape {tuple(patches.shape)} do not fit {channels}×{height}×{width} "
                         f"images with patch={patch}")
    x = patches.reshape(n, gh, gw, channels, patch, patch).permute(0, 3, 1, 4, 2, 5)
    return x.reshape(n, channels, height, width)


def pixel_mask(keep_mask: torch.Tensor, patch: int, height: int, width: int) -> torch.Tensor:
    """Patch keep-mask (N, P) → pixel mask (N, 1, H, W) bool."""
    gh, gw = height // patch, width // patch
    n = keep_mask.shape[0]
    m = keep_mask.reshape(n, gh, 1, gw, 1).expand(n, gh, patch, gw, patch)
    return m.reshape(n, 1, height, width)


# ------------------------------------------------------------------------------------------- MAE

def sincos_pos_embed_2d(dim: int, grid_h: int, grid_w: int) -> torch.Tensor:
    """Fixed 2-D sine-cosine positional embeddings (grid_h·grid_w, dim), rows row-major.

    Half of the channels encode the row, half the column; each half is ``[sin(pos·ω_k), cos(pos·ω_k)]``
    with ``ω_k = 10000^{−k/(dim/4)}``. ``dim`` must be a multiple of 4.
    """
    dim = check_int("dim", dim, low=4)
    if dim % 4:
        raise ValueError(f"dim={dim} must be a multiple of 4 for 2-D sin-cos embeddings")
    omega = 1.0 / 10000 ** (torch.arange(dim // 4, dtype=torch.float64) / (dim / 4))
    rows, cols = torch.meshgrid(torch.arange(grid_h, dtype=torch.float64), torch.arange(grid_w, dtype=torch.float64),
                                indexing="ij")

    def encode(pos):
        angles = pos.reshape(-1, 1) * omega.view(1, -1)
        return torch.cat([angles.sin(), angles.cos()], dim=1)

    return torch.cat([encode(rows), encode(cols)], dim=1).float()


class MaskedAutoencoder(nn.Module):
    """A small ViT masked autoencoder (He et al. 2022) built from timm ``Block``s.

    Input images (N, C, H, W) in [0, 1] are normalised with per-channel ``mean``/``std`` buffers, cut
    into P row-major patches (``patch`` must divide H and W), embedded by a linear layer, given fixed
    2-D sin-cos positional embeddings; the encoder (``depth`` blocks) sees only the visible patches.
    The decoder projects them to ``decoder_dim``, puts a learned mask token at every hidden position,
    adds its own positional embeddings, runs ``decoder_depth`` blocks and predicts the normalised
    pixels of every patch. The loss is the mean squared error on the hidden patches only.
    Cost per image: O(depth·K²·D + decoder_depth·P²·D_dec) with K visible patches.
    """

    def __init__(self, *, image_size: int, in_channels: int = 3, patch: int = 4, embed_dim: int = 96, depth: int = 3,
                 num_heads: int = 3, decoder_dim: int = 64, decoder_depth: int = 2, decoder_heads: int = 2,
                 mlp_ratio: float = 4.0, mean=None, std=None):
        super().__init__()
        from timm.models.vision_transformer import Block

        self.image_size = check_int("image_size", image_size, low=1)
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.patch = _check_patch(patch, self.image_size, self.image_size)
        for name, dim, heads in (("embed_dim", embed_dim, num_heads), ("decoder_dim", decoder_dim, decoder_heads)):
            check_int(name, dim, low=4)
            check_int("heads", heads, low=1)
            if dim % 4 or dim % heads:
                raise ValueError(f"{name}={dim} must be a multiple of 4 and of its number of heads ({heads})")
        check_int("depth", depth, low=1)
        check_int("decoder_depth", decoder_depth, low=1)
        mlp_ratio = check_float("mlp_ratio", mlp_ratio, low=0.0, low_open=True)
        self.grid = self.image_size // self.patch
        self.num_patches = self.grid * self.grid
        self.patch_dim = self.in_channels * self.patch * self.patch
        self.config = dict(image_size=self.image_size, in_channels=self.in_channels, patch=self.patch,
                           embed_dim=embed_dim, depth=depth, num_heads=num_heads, decoder_dim=decoder_dim,
                           decoder_depth=decoder_depth, decoder_heads=decoder_heads, mlp_ratio=mlp_ratio)
        self.register_buffer("mean", _channel_vector("mean", mean, self.in_channels, 0.0))
        self.register_buffer("std", _channel_vector("std", std, self.in_channels, 1.0))
        self.patch_embed = nn.Linear(self.patch_dim, embed_dim)
        self.register_buffer("pos_embed", sincos_pos_embed_2d(embed_dim, self.grid, self.grid).unsqueeze(0))
        self.blocks = nn.ModuleList(Block(embed_dim, num_heads, mlp_ratio, qkv_bias=True) for _ in range(depth))
        self.norm = nn.LayerNorm(embed_dim)
        self.decoder_embed = nn.Linear(embed_dim, decoder_dim)
        self.mask_token = nn.Parameter(torch.zeros(1, 1, decoder_dim))
        self.register_buffer("decoder_pos_embed", sincos_pos_embed_2d(decoder_dim, self.grid, self.grid).unsqueeze(0))
        self.decoder_blocks = nn.ModuleList(Block(decoder_dim, decoder_heads, mlp_ratio, qkv_bias=True)
                                            for _ in range(decoder_depth))
        self.decoder_norm = nn.LayerNorm(decoder_dim)
        self.decoder_pred = nn.Linear(decoder_dim, self.patch_dim)
        self._init_weights()

    def _init_weights(self) -> None:
        nn.init.normal_(self.mask_token, std=0.02)
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.LayerNorm):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    # -- pixel space ----------------------------------------------------------------------------
    def _check_input(self, images: torch.Tensor) -> None:
        expected = (self.in_channels, self.image_size, self.image_size)
        if images.dim() != 4 or tuple(images.shape[1:]) != expected:
            raise ValueError(f"images of shape {tuple(images.shape)} do not fit this MAE; expected (N, {expected[0]}, "
                             f"{expected[1]}, {expected[2]})")

    def target_patches(self, images: torch.Tensor) -> torch.Tensor:
        """Normalised pixels of every patch, (N, P, C·p·p): what the decoder predicts."""
        self._check_input(images)
        return patchify((images - self.mean) / self.std, self.patch)

    def to_pixels(self, pred: torch.Tensor) -> torch.Tensor:
        """Decoder output (N, P, C·p·p) → images (N, C, H, W) in pixel space (not clamped)."""
        x = unpatchify(pred, self.patch, self.in_channels, self.image_size, self.image_size)
        return x * self.std + self.mean

    # -- network --------------------------------------------------------------------------------
    def forward(self, images: torch.Tensor, keep_mask: torch.Tensor) -> torch.Tensor:
        """Predicted normalised patches (N, P, C·p·p) given the visible patches ``keep_mask`` (N, P).

        Every row of ``keep_mask`` must keep the same number K >= 1 of patches (batched attention).
        """
        target = self.target_patches(images)
        n = images.shape[0]
        keep_mask = _check_keep_mask(keep_mask, n, self.num_patches).to(images.device)
        counts = keep_mask.sum(dim=1)
        k = int(counts[0]) if n else 0
        if n and (bool((counts != k).any()) or k == 0):
            raise ValueError("every row of keep_mask must keep the same number (>= 1) of patches; "
                             f"got counts {sorted(set(counts.tolist()))}")
        visible = keep_mask.nonzero()[:, 1].view(n, k)                                  # ascending per row
        tokens = self.patch_embed(target) + self.pos_embed
        x = tokens.gather(1, visible.unsqueeze(2).expand(n, k, tokens.shape[2]))
        for block in self.blocks:
            x = block(x)
        x = self.decoder_embed(self.norm(x))
        full = self.mask_token.to(x.dtype).expand(n, self.num_patches, x.shape[2])
        full = full.scatter(1, visible.unsqueeze(2).expand(n, k, x.shape[2]), x)
        full = full + self.decoder_pos_embed
        for block in self.decoder_blocks:
            full = block(full)
        return self.decoder_pred(self.decoder_norm(full))

    def loss(self, images: torch.Tensor, keep_mask: torch.Tensor) -> torch.Tensor:
        """Mean squared error of the normalised pixels over the hidden patches (scalar)."""
        pred = self(images, keep_mask).float()
        per_patch = (pred - self.target_patches(images).float()).pow(2).mean(dim=2)
        hidden = (~keep_mask.to(images.device)).float()
        return (per_patch * hidden).sum() / hidden.sum().clamp_min(1.0)


def _channel_vector(label: str, value, channels: int, default: float) -> torch.Tensor:
    if value is None:
        return torch.full((1, channels, 1, 1), default)
    t = torch.as_tensor(value, dtype=torch.float32).flatten()
    if t.numel() == 1:
        t = t.expand(channels)
    if t.numel() != channels or not bool(torch.isfinite(t).all()) or (label == "std" and bool((t <= 0).any())):
        raise ValueError(f"{label}={value!r} must be one finite value or {channels} (std: positive)")
    return t.clone().view(1, channels, 1, 1)


def random_keep_mask(n: int, num_patches: int, mask_ratio: float, *, generator: torch.Generator | None = None,
                     device=None) -> torch.Tensor:
    """MAE's random masking: (n, P) bool with ``K = clamp(⌊P·(1 − mask_ratio)⌋, 1, P−1)`` kept per row.

    The kept patches are the K smallest of P uniform draws per row (from ``generator``, on ``device``).
    """
    n = check_int("n", n, low=0)
    num_patches = check_int("num_patches", num_patches, low=2)
    mask_ratio = check_float("mask_ratio", mask_ratio, low=0.0, high=1.0, low_open=True, high_open=True)
    keep = min(max(int(num_patches * (1.0 - mask_ratio)), 1), num_patches - 1)
    dev = generator.device if generator is not None and device is None else resolve_device(device or "cpu")
    noise = torch.rand(n, num_patches, generator=generator, device=dev)
    chosen = noise.argsort(dim=1)[:, :keep]
    return torch.zeros(n, num_patches, dtype=torch.bool, device=dev).scatter_(1, chosen, True)


def _channel_stats(images: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-channel mean/std of images (N, C, H, W), accumulated in float64 chunk by chunk."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    sq = torch.zeros(c, dtype=torch.float64)
    count = 0
    for start in range(0, images.shape[0], 4096):
        x = images[start:start + 4096].double().cpu()
        total += x.sum(dim=(0, 2, 3))
        sq += x.pow(2).sum(dim=(0, 2, 3))
        count += x.shape[0] * x.shape[2] * x.shape[3]
    mean = total / count
    std = (sq / count - mean.pow(2)).clamp_min(0).sqrt().clamp_min(1e-3)
    return mean.float(), std.float()


def train_mae(images: torch.Tensor, config, *, weight_decay: float = 0.05, device=None, progress: bool = True,
              mae: MaskedAutoencoder | None = None) -> MaskedAutoencoder:
    """Train a :class:`MaskedAutoencoder` on ``images`` (N, C, H, W) with random masking.

    ``config``: a :class:`dscore.quantize.config.MAEConfig` or a mapping of its fields (``patch``, ``mask_ratio``,
    ``epochs``, ``batch_size``, ``lr``, ``seed`` and the architecture: ``embed_dim``, ``depth``, ``num_heads``,
    ``decoder_dim``, ``decoder_depth``, ``decoder_heads``). The MAE (unless ``mae`` is given) is built from that
    architecture for the images' size with their per-channel mean/std and initialised from ``seed``. AdamW (β = 0.9, 0.95; ``weight_decay`` on weight matrices only) with a per-iteration
    cosine learning rate from ``lr``; every batch (seeded order) gets a fresh :func:`random_keep_mask`
    with ``mask_ratio``.
    Returns the MAE in eval mode on ``device`` with ``mae.loss_history`` (mean loss per epoch).
    Same seed → same weights on the same device. Cost: epochs·N encoder/decoder passes.
    """
    from .config import MAEConfig

    cfg = MAEConfig.of(config, "mae")
    _check_images(images)
    n, c, h, w = images.shape
    if h != w:
        raise ValueError(f"the MAE needs square images, got {h}×{w}")
    patch = _check_patch(cfg.patch, h, w)
    mask_ratio, epochs, batch_size, lr, seed = cfg.mask_ratio, cfg.epochs, cfg.batch_size, cfg.lr, cfg.seed
    weight_decay = check_float("weight_decay", weight_decay, low=0.0)
    if n == 0:
        raise ValueError("images is empty; train_mae needs at least one image")
    if (h // patch) ** 2 < 2:
        raise ValueError(f"patch={patch} leaves {(h // patch) ** 2} patch per image; masking needs at least 2")
    dev = resolve_device(device)
    if mae is None:
        mean, std = _channel_stats(images)
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            mae = MaskedAutoencoder(image_size=h, in_channels=c, mean=mean, std=std, **cfg.architecture())
    elif not isinstance(mae, MaskedAutoencoder):
        raise ValueError(f"mae must be a MaskedAutoencoder, got {type(mae).__name__}")
    mae.to(dev).train()
    steps = len(batch_indices(n, batch_size, generator=make_generator(0)))
    lr_at = make_lr_schedule("cosine", lr=lr, epochs=epochs, iters_per_epoch=steps)
    # as in MAE: no weight decay on biases, norm parameters and the mask token
    decay = [p for name, p in mae.named_parameters() if p.ndim >= 2 and name != "mask_token"]
    no_decay = [p for name, p in mae.named_parameters() if p.ndim < 2 or name == "mask_token"]
    optimizer = torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                                   {"params": no_decay, "weight_decay": 0.0}], lr=lr, betas=(0.9, 0.95))
    order_gen = make_generator(seed)
    mask_gen = make_generator(seed + 1, dev)
    history: list[float] = []
    iteration = 0
    for _ in tqdm(range(epochs), desc="mae", unit="ep", disable=not progress, leave=False):
        total, count = torch.zeros((), device=dev), 0
        for idx in batch_indices(n, batch_size, generator=order_gen):
            x = images[idx.to(images.device)].to(dev, dtype=torch.float32, non_blocking=True)
            keep = random_keep_mask(len(idx), mae.num_patches, mask_ratio, generator=mask_gen, device=dev)
            for group in optimizer.param_groups:
                group["lr"] = lr_at(iteration)
            with autocast(dev):
                loss = mae.loss(x, keep)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            total += loss.detach() * len(idx)
            count += len(idx)
            iteration += 1
        history.append(float(total) / count)
    mae.eval()
    mae.loss_history = history
    return mae


@torch.no_grad()
def reconstruct(mae: MaskedAutoencoder, images: torch.Tensor, keep_mask: torch.Tensor, *, batch_size: int = 256,
                device=None) -> torch.Tensor:
    """Images with the dropped patches filled by the MAE and the kept patches exactly as given.

    ``images``: (N, C, H, W) in [0, 1] (the content of dropped patches is ignored: it never reaches the
    encoder); ``keep_mask``: (N, P) bool. Rows are batched by their number of kept patches; a row that
    keeps everything is returned unchanged, a row that keeps nothing raises ``ValueError``.
    Reconstructed pixels are clamped to [0, 1]. Returns float32 on the images' device.
    """
    _check_images(images)
    mae._check_input(images)
    keep_mask = _check_keep_mask(keep_mask, images.shape[0], mae.num_patches)
    batch_size = check_int("batch_size", batch_size, low=1)
    counts = keep_mask.sum(dim=1)
    if bool((counts == 0).any()):
        raise ValueError("a row of keep_mask keeps no patch; the MAE needs at least one visible patch per image")
    dev = resolve_device(device) if device is not None else _param_device(mae)
    was_training = mae.training
    mae.to(dev).eval()
    out = images.detach().to(torch.float32).clone()
    try:
        for k in torch.unique(counts).tolist():
            if k == mae.num_patches:
                continue
            rows = (counts == k).nonzero().flatten()
            for start in range(0, rows.numel(), batch_size):
                idx = rows[start:start + batch_size]
                x = images[idx.to(images.device)].to(dev, dtype=torch.float32)
                keep = keep_mask[idx.to(keep_mask.device)].to(dev)
                with autocast(dev):
                    pred = mae(x, keep)
                filled = mae.to_pixels(pred.float()).clamp(0.0, 1.0)
                mask = pixel_mask(keep, mae.patch, mae.image_size, mae.image_size)
                out[idx.to(out.device)] = torch.where(mask, x, filled).to(out.device)
    finally:
        mae.train(was_training)
    return out


# ------------------------------------------------------------------------------------- storage

def quantize_pixels(images: torch.Tensor, keep_mask: torch.Tensor, patch: int) -> dict:
    """The stored form of pixel-quantized images: ``{"patches", "mask", "shape", "patch"}``.

    ``patches``: (K, C, patch, patch) the kept patches, image by image and row-major inside an image
    (K = keep_mask.sum()); ``mask``: the (N, P) bool keep-mask; ``shape``: [N, C, H, W]; ``patch``: the
    patch side. A dict of tensors/ints/lists, so it can go straight into the artefact cache.
    """
    _check_images(images)
    n, c, h, w = images.shape
    patch = _check_patch(patch, h, w)
    keep_mask = _check_keep_mask(keep_mask, n, (h // patch) * (w // patch))
    kept = patchify(images, patch)[keep_mask.to(images.device)]                   # (K, C·p·p), image-major
    return {"patches": kept.reshape(-1, c, patch, patch).clone(), "mask": keep_mask.clone(),
            "shape": [n, c, h, w], "patch": patch}


def restore_pixels(record: dict, mae: MaskedAutoencoder | None = None, *, fill: float = 0.0,
                   batch_size: int = 256, device=None) -> torch.Tensor:
    """Images (N, C, H, W) from a :func:`quantize_pixels` record: kept patches in place, dropped ones
    set to ``fill`` — or, with ``mae``, reconstructed by :func:`reconstruct`."""
    try:
        patches, mask, shape, patch = record["patches"], record["mask"], record["shape"], int(record["patch"])
    except (KeyError, TypeError):
        raise ValueError("record must be a dict from quantize_pixels with keys patches, mask, shape, patch") from None
    n, c, h, w = (int(s) for s in shape)
    mask = _check_keep_mask(mask, n, (h // patch) * (w // patch))
    if patches.shape != (int(mask.sum()), c, patch, patch):
        raise ValueError(f"record patches {tuple(patches.shape)} do not match its mask ({int(mask.sum())} kept "
                         f"patches of {c}×{patch}×{patch})")
    grid = torch.full((n, mask.shape[1], c * patch * patch), float(fill), dtype=patches.dtype, device=patches.device)
    grid[mask.to(patches.device)] = patches.reshape(patches.shape[0], -1)
    images = unpatchify(grid, patch, c, h, w)
    if mae is None:
        return images
    if mae.patch != patch:
        raise ValueError(f"the MAE uses patch={mae.patch} but the record was stored with patch={patch}")
    return reconstruct(mae, images, mask, batch_size=batch_size, device=device)


def storage_ratio(keep_mask: torch.Tensor) -> float:
    """Fraction of pixels stored: kept patches / all patches (the 1 bit per patch of the mask is ignored)."""
    if not torch.is_tensor(keep_mask) or keep_mask.dtype != torch.bool or keep_mask.dim() != 2:
        raise ValueError("keep_mask must be a bool tensor of shape (N, P)")
    if keep_mask.numel() == 0:
        raise ValueError("keep_mask is empty")
    return float(keep_mask.sum()) / keep_mask.numel()


def effective_keep_ratio(sample_ratio: float, theta: float = DEFAULT_THETA) -> float:
    """The fraction of the original pixels kept by sampling ``sample_ratio`` and dropping θ of the patches:
    ``sample_ratio · (1 − θ)``, with sample_ratio ∈ (0, 1] and θ ∈ [0, 1) (default 0.2, the authors')."""
    sample_ratio = check_float("sample_ratio", sample_ratio, low=0.0, high=1.0, low_open=True)
    theta = check_float("theta", theta, low=0.0, high=1.0, high_open=True)
    return sample_ratio * (1.0 - theta)


def image_fraction_for(effective_ratio: float, theta: float = DEFAULT_THETA) -> float:
    """The image (sample) fraction whose :func:`effective_keep_ratio` with θ is ``effective_ratio``:
    ``effective_ratio / (1 − θ)``. E.g. 0.1 with θ = 0.2 gives 0.125 — the authors' "10%" set.

    ``effective_ratio`` ∈ (0, 1 − θ] (at most every image, each keeping 1 − θ of its patches);
    θ ∈ [0, 1). Raises ValueError naming the value and the allowed range otherwise.
    """
    theta = check_float("theta", theta, low=0.0, high=1.0, high_open=True)
    effective_ratio = check_float("effective_ratio", effective_ratio, low=0.0, low_open=True)
    if effective_ratio > (1.0 - theta) * (1.0 + 1e-12):
        raise ValueError(f"effective_ratio={effective_ratio!r} is out of range; allowed: effective_ratio in "
                         f"(0, {1.0 - theta:g}] for theta={theta:g} (keeping every image gives 1 - theta)")
    return min(effective_ratio / (1.0 - theta), 1.0)
