"""Batched, on-device data augmentation.

Every augmentation here is a function ``aug(x, generator=None) -> Tensor`` on a batch
``x`` of shape (N, C, H, W) with pixels in [0, 1]; randomness comes only from the
``generator`` (a ``torch.Generator`` on ``x.device``) or torch's global RNG if none is
given. Functions are differentiable with respect to ``x`` wherever the transform is.

``get_augmentation(name)`` is the registry used by :mod:`dscore.train`. Below the basic
crop/flip live DSA and IDC's DiffAug, whose parameter draws can be shared between a real and a
synthetic batch (``siamese_dsa``, ``siamese_idc``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Callable

import torch
import torch.nn.functional as F

Augmentation = Callable[..., torch.Tensor]


def _rand(shape, x: torch.Tensor, generator: torch.Generator | None) -> torch.Tensor:
    return torch.rand(shape, device=x.device, generator=generator, dtype=torch.float32)


def random_crop_flip(x: torch.Tensor, generator: torch.Generator | None = None, *, padding: int | None = None,
                     flip: bool = True) -> torch.Tensor:
    """Standard training augmentation: random crop after zero padding, then random horizontal flip.

    Each sample gets its own crop offset and flip. ``padding`` defaults to ``H // 8``
    (4 px at 32 px, 3 px at 28 px). Vectorised with one ``gather`` — no per-sample loop.
    Shapes: (N, C, H, W) → (N, C, H, W). Cost O(N·C·H·W).
    """
    if x.dim() != 4:
        raise ValueError(f"expected images of shape (N, C, H, W), got shape {tuple(x.shape)}")
    n, c, h, w = x.shape
    pad = h // 8 if padding is None else int(padding)
    if pad > 0:
        padded = F.pad(x, (pad, pad, pad, pad))
        off = (_rand((2, n), x, generator) * (2 * pad + 1)).long().clamp_(max=2 * pad)
        rows = off[0].view(n, 1) + torch.arange(h, device=x.device).view(1, h)       # (N, H)
        cols = off[1].view(n, 1) + torch.arange(w, device=x.device).view(1, w)       # (N, W)
        idx_r = rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * pad)
        x = padded.gather(2, idx_r)
        idx_c = cols.view(n, 1, 1, w).expand(n, c, h, w)
        x = x.gather(3, idx_c)
    if flip:
        mask = _rand((n,), x, generator) < 0.5
        x = torch.where(mask.view(n, 1, 1, 1), x.flip(3), x)
    return x


def identity(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    return x


_REGISTRY: dict[str, Augmentation] = {
    "none": identity,
    "crop_flip": random_crop_flip,
}


def register_augmentation(name: str, fn: Augmentation) -> None:
    """Add ``fn`` to the registry under ``name`` (used by this module for DSA and IDC DiffAug)."""
    _REGISTRY[name] = fn


def list_augmentations() -> list[str]:
    return sorted(_REGISTRY)


def get_augmentation(name: str | None) -> Augmentation:
    """Look up an augmentation by name (``None`` means ``"none"``); unknown names raise ``ValueError``."""
    key = "none" if name is None else name
    if key not in _REGISTRY:
        raise ValueError(f"augmentation={name!r} is not known; allowed: {', '.join(map(repr, list_augmentations()))}")
    return _REGISTRY[key]


# ---------------------------------------------------------------------------------------------
# Differentiable Siamese augmentation (DSA, Zhao & Bilen 2021) and IDC's DiffAug.
#
# A draw of random parameters is separated from its application so that the *same* draw can be
# applied to a real and a synthetic batch (the "Siamese" part). A draw stores raw uniforms in
# [0, 1); they become pixel shifts, angles … only when applied, so one draw fits any image size.
# Each value tensor has a leading dimension n: n = 1 means one parameter set shared by every
# sample of every batch it is applied to (the Siamese mode used while distilling — the original
# DSA code likewise copies sample 0's parameters to the whole batch), n = N means one set per
# sample (used for evaluation training).
#
# Magnitudes follow the authors' code (DSA's ParamDiffAug, IDC's DiffAug), which augments
# *normalised* images. This project keeps images in [0, 1] pixels (models normalise internally), so
# the paper augmentations take ``mean``/``std``: given them, they normalise, augment and map back
# (:func:`in_normalised_space`), which reproduces the authors' strength (brightness ±0.5 of a std,
# zero fill = the dataset mean). The distillers and ``dscore.train`` pass the dataset's / model's
# mean and std. Outputs are not clamped to [0, 1] (neither are the originals').
# ---------------------------------------------------------------------------------------------

DSA_STRATEGY = "color_crop_cutout_flip_scale_rotate"
DSA_FAMILIES = {
    "color": ("brightness", "saturation", "contrast"),
    "crop": ("crop",),
    "cutout": ("cutout",),
    "flip": ("flip",),
    "scale": ("scale",),
    "rotate": ("rotate",),
}
IDC_CHOICES = ("crop", "scale", "rotate")   # the single-choice group of IDC's full strategy string
IDC_MATCH_CHOICES = ("crop",)                # IDC's matching strategy "color_crop_cutout": colour → crop → cutout
# number of uniforms each primitive op draws per parameter set
_OP_WIDTH = {"brightness": 1, "saturation": 1, "contrast": 1, "crop": 2, "cutout": 2, "flip": 1, "scale": 2,
             "rotate": 1}


@dataclass(frozen=True)
class DiffAugConfig:
    """Magnitudes of the differentiable augmentations (defaults: DSA/IDC code).

    brightness: additive shift ``(u − 0.5)·brightness``; saturation: factor ``u·saturation`` on the
    deviation from the channel mean; contrast: factor ``u + contrast`` on the deviation from the
    image mean; crop_ratio: translation up to ``round(ratio·size)`` pixels, zero fill;
    cutout_ratio: side of the zeroed square as a fraction of the image side; flip_p: probability
    of a horizontal flip; scale_ratio: per-axis factor in ``[1/ratio, ratio]``; rotate_degrees:
    angle in ``[−deg, deg]``.
    """
    brightness: float = 1.0
    saturation: float = 2.0
    contrast: float = 0.5
    crop_ratio: float = 0.125
    cutout_ratio: float = 0.5
    flip_p: float = 0.5
    scale_ratio: float = 1.2
    rotate_degrees: float = 15.0


@dataclass(frozen=True)
class AugParams:
    """One draw of augmentation parameters.

    ops: primitive operations in application order (e.g. ``("rotate",)`` or
    ``("brightness", "saturation", "contrast", "crop", "cutout")``); values: op → uniforms of
    shape (n, width); n: 1 (shared by all samples) or the batch size; config: the magnitudes.
    """
    ops: tuple[str, ...]
    values: dict[str, torch.Tensor]
    n: int
    config: DiffAugConfig = field(default_factory=DiffAugConfig)


DSAParams = AugParams
IDCParams = AugParams


def _parse_strategy(strategy: str) -> list[str]:
    if not isinstance(strategy, str) or not strategy:
        raise ValueError(f"strategy={strategy!r} must be a non-empty string like {DSA_STRATEGY!r}")
    families = strategy.split("_")
    for fam in families:
        if fam not in DSA_FAMILIES:
            raise ValueError(f"strategy={strategy!r} has unknown family {fam!r}; allowed families: "
                             f"{', '.join(map(repr, DSA_FAMILIES))}")
    return families


def _check_n(n) -> int:
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n={n!r} must be an integer >= 1 (1 = one parameter set shared by the whole batch)")
    return n


def _resolve_device(generator: torch.Generator | None, device) -> torch.device:
    if device is not None:
        device = torch.device(device)
        if generator is not None and generator.device.type != device.type:
            raise ValueError(f"generator is on {generator.device} but device={device}; they must match")
        return device
    return generator.device if generator is not None else torch.device("cpu")


def _draw(ops: tuple[str, ...], n: int, generator, device, config) -> AugParams:
    values = {op: torch.rand((n, _OP_WIDTH[op]), generator=generator, device=device) for op in ops}
    return AugParams(ops=ops, values=values, n=n, config=config if config is not None else DiffAugConfig())


def _pick(k: int, generator, device, choice_generator=None) -> int:
    """A discrete choice. ``choice_generator`` (a CPU generator) avoids a device→host sync on CUDA."""
    if choice_generator is not None:
        return int(torch.randint(k, (1,), generator=choice_generator)[0])
    return int(torch.randint(k, (1,), generator=generator, device=device)[0])


def dsa_sample_params(strategy: str = DSA_STRATEGY, n: int = 1, generator: torch.Generator | None = None,
                      device: str | torch.device | None = None, *, config: DiffAugConfig | None = None,
                      choice_generator: torch.Generator | None = None) -> AugParams:
    """Draw DSA parameters: ONE family of ``strategy`` chosen uniformly, then its parameters.

    ``n = 1`` gives one parameter set shared by every sample (Siamese distillation); ``n = N``
    one per sample. Randomness only from ``generator`` (on ``device``), and from the CPU
    ``choice_generator`` for the family if one is given (no host sync on CUDA). O(n) work.
    """
    families = _parse_strategy(strategy)
    n = _check_n(n)
    device = _resolve_device(generator, device)
    family = (families[_pick(len(families), generator, device, choice_generator)] if len(families) > 1
              else families[0])
    return _draw(DSA_FAMILIES[family], n, generator, device, config)


def idc_sample_params(n: int = 1, generator: torch.Generator | None = None, device: str | torch.device | None = None,
                      *, choices: tuple[str, ...] = IDC_CHOICES, cutout: bool = True, flip: bool = False,
                      config: DiffAugConfig | None = None, choice_generator: torch.Generator | None = None
                      ) -> AugParams:
    """Draw IDC DiffAug parameters: [flip →] colour → ONE of ``choices`` → [cutout].

    ``choices`` defaults to crop/scale/rotate (the single-choice group of IDC's full strategy, used
    by its evaluation); its matching strategy uses only crop (:data:`IDC_MATCH_CHOICES`). ``cutout=False`` drops the cutout (IDC does so when CutMix is used for network
    training); ``flip=True`` prepends a flip as IDC does when "flip" is in its strategy.
    """
    n = _check_n(n)
    choices = tuple(choices)
    if not choices or any(c not in ("crop", "scale", "rotate", "flip", "cutout") for c in choices):
        raise ValueError(f"choices={choices!r} must be a non-empty subset of "
                         "('crop', 'scale', 'rotate', 'flip', 'cutout')")
    device = _resolve_device(generator, device)
    middle = choices[_pick(len(choices), generator, device, choice_generator)] if len(choices) > 1 else choices[0]
    ops = ((("flip",) if flip else ()) + ("brightness", "saturation", "contrast", middle)
           + (("cutout",) if cutout else ()))
    return _draw(ops, n, generator, device, config)


def _per_sample(u: torch.Tensor, n: int) -> torch.Tensor:
    """(n_params, w) uniforms → (n, w), broadcasting a shared set."""
    if u.shape[0] == n:
        return u
    if u.shape[0] == 1:
        return u.expand(n, -1)
    raise ValueError(f"parameters were drawn for {u.shape[0]} samples but the batch has {n}; "
                     "draw with n=1 (shared) or n=batch size")


def _translate(x: torch.Tensor, shift: torch.Tensor, ph: int, pw: int) -> torch.Tensor:
    """out[i, :, r, c] = x[i, :, r + shift[i,0], c + shift[i,1]] (zero outside).

    shift (N, 2) int64 with |shift| <= (ph, pw) (known bounds, so no device sync)."""
    n, c, h, w = x.shape
    padded = F.pad(x, (pw, pw, ph, ph))
    rows = shift[:, 0].view(n, 1) + ph + torch.arange(h, device=x.device).view(1, h)          # (N, H)
    cols = shift[:, 1].view(n, 1) + pw + torch.arange(w, device=x.device).view(1, w)          # (N, W)
    out = padded.gather(2, rows.view(n, 1, h, 1).expand(n, c, h, w + 2 * pw))
    return out.gather(3, cols.view(n, 1, 1, w).expand(n, c, h, w))


def _affine(x: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
    grid = F.affine_grid(theta.to(x.dtype), list(x.shape), align_corners=True)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


def _apply_op(x: torch.Tensor, op: str, u: torch.Tensor, cfg: DiffAugConfig) -> torch.Tensor:
    n, _, h, w = x.shape
    u = _per_sample(u.to(x.device), n)
    if op == "brightness":
        return x + ((u[:, 0] - 0.5) * cfg.brightness).to(x.dtype).view(n, 1, 1, 1)
    if op == "saturation":
        mean = x.mean(dim=1, keepdim=True)
        return (x - mean) * (u[:, 0] * cfg.saturation).to(x.dtype).view(n, 1, 1, 1) + mean
    if op == "contrast":
        mean = x.mean(dim=(1, 2, 3), keepdim=True)
        return (x - mean) * (u[:, 0] + cfg.contrast).to(x.dtype).view(n, 1, 1, 1) + mean
    if op == "crop":
        lh, lw = int(h * cfg.crop_ratio + 0.5), int(w * cfg.crop_ratio + 0.5)
        limits = torch.tensor([lh, lw], device=x.device)
        shift = (u * (2 * limits + 1)).long().clamp_(max=2 * limits) - limits                   # in [−s, s]
        return _translate(x, shift, lh, lw)
    if op == "cutout":
        size = torch.tensor([int(h * cfg.cutout_ratio + 0.5), int(w * cfg.cutout_ratio + 0.5)], device=x.device)
        span = torch.tensor([h, w], device=x.device) + 1 - size % 2                               # centre choices
        start = (u * span).long().clamp_(max=span - 1) - size // 2                                # (N, 2)
        r = torch.arange(h, device=x.device).view(1, h)
        cc = torch.arange(w, device=x.device).view(1, w)
        in_r = (r >= start[:, :1]) & (r < start[:, :1] + size[0])                                 # (N, H)
        in_c = (cc >= start[:, 1:]) & (cc < start[:, 1:] + size[1])                               # (N, W)
        keep = ~(in_r.unsqueeze(2) & in_c.unsqueeze(1))                                          # (N, H, W)
        return x * keep.unsqueeze(1).to(x.dtype)
    if op == "flip":
        return torch.where((u[:, 0] < cfg.flip_p).view(n, 1, 1, 1), x.flip(3), x)
    if op == "scale":
        lo = 1.0 / cfg.scale_ratio
        s = u * (cfg.scale_ratio - lo) + lo                                                      # (N, 2): sx, sy
        theta = torch.zeros(n, 2, 3, device=x.device)
        theta[:, 0, 0] = s[:, 0]
        theta[:, 1, 1] = s[:, 1]
        return _affine(x, theta)
    if op == "rotate":
        ang = (u[:, 0] - 0.5) * 2 * cfg.rotate_degrees * math.pi / 180
        cos, sin = torch.cos(ang), torch.sin(ang)
        theta = torch.stack([torch.stack([cos, -sin, torch.zeros_like(ang)], 1),
                             torch.stack([sin, cos, torch.zeros_like(ang)], 1)], 1)             # (N, 2, 3)
        return _affine(x, theta)
    raise ValueError(f"unknown augmentation op {op!r}; allowed: {', '.join(map(repr, _OP_WIDTH))}")


def _check_batch(x) -> None:
    if not torch.is_tensor(x) or x.dim() != 4:
        got = tuple(x.shape) if torch.is_tensor(x) else type(x).__name__
        raise ValueError(f"expected images of shape (N, C, H, W), got {got}")


def aug_apply(x: torch.Tensor, params: AugParams) -> torch.Tensor:
    """Apply a parameter draw to a batch (N, C, H, W) → (N, C, H, W), differentiable w.r.t. x.

    Vectorised over the batch: O(N·C·H·W) per op (crop/cutout/flip via gather/masks,
    scale/rotate via one affine_grid + grid_sample)."""
    _check_batch(x)
    if not isinstance(params, AugParams):
        raise ValueError("params must be an AugParams from dsa_sample_params/idc_sample_params, "
                         f"got {type(params).__name__}")
    if params.n not in (1, x.shape[0]):
        raise ValueError(f"params were drawn for n={params.n} samples but the batch has {x.shape[0]}; "
                         "draw with n=1 (shared) or n=batch size")
    for op in params.ops:
        x = _apply_op(x, op, params.values[op], params.config)
    return x


def dsa_apply(x: torch.Tensor, params: AugParams) -> torch.Tensor:
    """Apply DSA parameters from :func:`dsa_sample_params` (see :func:`aug_apply`)."""
    return aug_apply(x, params)


def idc_apply(x: torch.Tensor, params: AugParams) -> torch.Tensor:
    """Apply IDC DiffAug parameters from :func:`idc_sample_params` (see :func:`aug_apply`)."""
    return aug_apply(x, params)


def _check_pair(real: torch.Tensor, syn: torch.Tensor) -> None:
    for name, t in (("real", real), ("syn", syn)):
        if not torch.is_tensor(t) or t.dim() != 4:
            raise ValueError(f"{name} must have shape (N, C, H, W), got "
                             f"{tuple(t.shape) if torch.is_tensor(t) else type(t).__name__}")
    if real.shape[1:] != syn.shape[1:]:
        raise ValueError(f"real images {tuple(real.shape[1:])} and synthetic images {tuple(syn.shape[1:])} "
                         "must have the same (C, H, W)")


def _stats(value, x: torch.Tensor) -> torch.Tensor:
    t = torch.as_tensor(value, dtype=x.dtype, device=x.device).reshape(-1)
    if t.numel() not in (1, x.shape[1]):
        raise ValueError(f"mean/std must have 1 or {x.shape[1]} values (one per channel), got {t.numel()}")
    return t.reshape(1, -1, 1, 1)


def in_normalised_space(apply: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor, mean=None,
                        std=None) -> torch.Tensor:
    """``apply`` on ``(x − mean)/std``, mapped back to pixels; plain ``apply(x)`` when mean/std are None."""
    if mean is None and std is None:
        return apply(x)
    m = _stats(0.0 if mean is None else mean, x)
    s = _stats(1.0 if std is None else std, x)
    return apply((x - m) / s) * s + m


def siamese_dsa(real: torch.Tensor, syn: torch.Tensor, generator: torch.Generator | None = None,
                strategy: str = DSA_STRATEGY, *, config: DiffAugConfig | None = None, mean=None, std=None,
                choice_generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """DSA with ONE parameter draw shared by every sample of both batches → (real_aug, syn_aug).

    With ``mean``/``std`` the transform acts in normalised space (as the authors' code).
    Gradients flow to ``syn`` (and ``real`` if it requires grad)."""
    _check_pair(real, syn)
    params = dsa_sample_params(strategy, 1, generator, real.device, config=config,
                               choice_generator=choice_generator)
    return (in_normalised_space(lambda x: aug_apply(x, params), real, mean, std),
            in_normalised_space(lambda x: aug_apply(x, params), syn, mean, std))


def siamese_idc(real: torch.Tensor, syn: torch.Tensor, generator: torch.Generator | None = None, *,
                choices: tuple[str, ...] = IDC_MATCH_CHOICES, cutout: bool = True,
                config: DiffAugConfig | None = None, mean=None, std=None,
                choice_generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """IDC DiffAug with ONE parameter draw shared by both batches → (real_aug, syn_aug).

    Default: colour → crop → cutout, the authors' matching augmentation (IDC's and DREAM's
    ``aug_type = "color_crop_cutout"``, applied once to the concatenated real and synthetic batch).
    ``choices=IDC_CHOICES`` gives the earlier variant colour → one of crop/scale/rotate → cutout
    (the distillers' ``siamese_augment="idc_multi"``). With ``mean``/``std`` the transform acts in
    normalised space (as the authors' code)."""
    _check_pair(real, syn)
    params = idc_sample_params(1, generator, real.device, choices=choices, cutout=cutout, config=config,
                               choice_generator=choice_generator)
    return (in_normalised_space(lambda x: aug_apply(x, params), real, mean, std),
            in_normalised_space(lambda x: aug_apply(x, params), syn, mean, std))


def dsa_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Registry entry "dsa" (evaluation training): one random family per call, per-sample parameters
    — as DSA's evaluation, which draws per sample when no Siamese seed is given."""
    _check_batch(x)
    return aug_apply(x, dsa_sample_params(DSA_STRATEGY, x.shape[0], generator, x.device))


def idc_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Registry entry "idc" (evaluation of IDC-family sets): flip → colour → one of crop/scale/rotate
    (one choice per call) with per-sample parameters, WITHOUT cutout.

    This is the authors' evaluation augmentation: IDC's and DREAM's ``dsa_strategy =
    "color_crop_cutout_flip_scale_rotate"`` applied per sample (flip p = 0.5 first, then colour,
    then one single-choice op), with cutout removed because evaluation uses CutMix (their
    ``mixup == "cut"`` branch). Their code also drops the flip for SVHN and MNIST: use
    "idc_noflip" there. "idc_cutout" keeps the cutout (the chain without CutMix)."""
    _check_batch(x)
    return aug_apply(x, idc_sample_params(x.shape[0], generator, x.device, cutout=False, flip=True))


def idc_noflip_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Registry entry "idc_noflip": "idc" without the flip (the authors' evaluation of SVHN / MNIST)."""
    _check_batch(x)
    return aug_apply(x, idc_sample_params(x.shape[0], generator, x.device, cutout=False, flip=False))


def idc_cutout_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Registry entry "idc_cutout": the full per-sample chain flip → colour → crop/scale/rotate → cutout
    (the authors' evaluation augmentation when CutMix is off)."""
    _check_batch(x)
    return aug_apply(x, idc_sample_params(x.shape[0], generator, x.device, cutout=True, flip=True))


def idc_net_augment(x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Registry entry "idc_net": colour → crop with per-sample parameters (no flip, scale, rotate or
    cutout). This is how the authors' IDC and DREAM codes augment the real data while training the
    network during distillation: the matching strategy "color_crop_cutout" minus the cutout (removed
    because that training uses CutMix), drawn per sample."""
    _check_batch(x)
    return aug_apply(x, idc_sample_params(x.shape[0], generator, x.device, choices=("crop",), cutout=False))


# The paper augmentations are defined on normalised images: dscore.train applies them between the
# model's own normalisation and its inverse (see `in_normalised_space`).
for _fn in (dsa_augment, idc_augment, idc_noflip_augment, idc_cutout_augment, idc_net_augment):
    _fn.normalised_space = True
register_augmentation("dsa", dsa_augment)
register_augmentation("idc", idc_augment)
register_augmentation("idc_noflip", idc_noflip_augment)
register_augmentation("idc_cutout", idc_cutout_augment)
register_augmentation("idc_net", idc_net_augment)
