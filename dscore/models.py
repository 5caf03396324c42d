"""Every network the two papers use, behind one timm-style factory.

``create_model(name, num_classes=..., in_channels=..., image_size=...)`` builds a
:class:`DscoreModel`. All models share one contract:

* inputs are float images ``(N, C, H, W)`` with pixels in [0, 1] and ``H == W == image_size``;
  the model normalises them itself with its ``mean``/``std`` buffers (shape ``(1, C, 1, 1)``,
  saved in the ``state_dict``), so callers never normalise;
* ``embed(x) -> (N, embed_dim)`` is the penultimate representation, ``classify(emb) -> logits``
  is the final linear layer and ``forward(x) == classify(embed(x))``;
* the code is device- and memory-format-agnostic (``channels_last`` works; no ``.view`` on
  possibly non-contiguous tensors).

Registered names (``list_models()``):

======================  =====================================================================
``convnet``             ConvNet-D of DC/DSA/DM/IDC (kwargs ``depth``, ``width``, ``norm``, ``act``,
                        ``pooling``); ``convnet3``/``convnet4`` fix the depth, ``convnet_bn`` uses
                        batch norm.
``resnet10/18/50``      torchvision-layout ResNets (module names match torchvision, so its
                        state dicts load), 3×3 stride-1 stem without max-pool when
                        ``image_size <= 64``.
``resnetap10``          IDC's ResNetAP-10: downsampling by stride-1 conv + 2×2 average pooling,
                        instance norm by default.
``densenet121``         CIFAR DenseNet-121 (growth 12, blocks 6-12-24-16, compression 0.5).
``mobilenetv2``         torchvision MobileNetV2 with the usual CIFAR adaptation (stride-1 stem and
                        stride-1 second stage when ``image_size <= 64``).
``vit``/``swin``/       timm VisionTransformer / SwinTransformer / ConvNeXt sized for small
``convnext``            images; never pretrained, nothing is downloaded.
======================  =====================================================================
"""
from __future__ import annotations

import abc
import inspect
import math
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from .utils import check_choice, check_float, check_int

__all__ = [
    "DscoreModel", "ConvNet", "ResNet", "DenseNet", "MobileNetV2", "TimmModel",
    "create_model", "list_models", "model_kwargs", "register_model", "count_parameters",
]

MIN_IMAGE_SIZE = 8
NORMS = ("instancenorm", "batchnorm", "none")
ACTIVATIONS = ("relu", "leakyrelu", "sigmoid")
POOLINGS = ("avgpool", "maxpool", "none")

# Arguments every builder receives from create_model; everything else is a model-specific kwarg.
_COMMON_ARGS = ("num_classes", "in_channels", "image_size", "mean", "std")
_REGISTRY: dict[str, Callable[..., "DscoreModel"]] = {}


# --------------------------------------------------------------------------------------------
# Registry and factory
# --------------------------------------------------------------------------------------------

def register_model(name: str) -> Callable:
    """Decorator registering ``builder(*, num_classes, in_channels, image_size, mean, std, **kw)``.

    The builder's keyword-only parameters beyond the common ones are the kwargs that
    :func:`create_model` accepts for ``name``.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"model name={name!r} must be a non-empty string")

    def decorator(builder: Callable[..., "DscoreModel"]) -> Callable[..., "DscoreModel"]:
        if name in _REGISTRY:
            raise ValueError(f"model name={name!r} is already registered; registered: {', '.join(list_models())}")
        missing = [a for a in _COMMON_ARGS if a not in inspect.signature(builder).parameters]
        if missing:
            raise ValueError(f"builder for {name!r} must accept the keyword arguments {missing}")
        _REGISTRY[name] = builder
        return builder

    return decorator


def list_models() -> list[str]:
    """Sorted names accepted by :func:`create_model`."""
    return sorted(_REGISTRY)


def model_kwargs(name: str) -> dict[str, object]:
    """The model-specific kwargs of ``name`` with their defaults (``None`` = chosen from image size)."""
    builder = _get_builder(name)
    return {p.name: p.default for p in inspect.signature(builder).parameters.values()
            if p.name not in _COMMON_ARGS}


def create_model(name: str, *, num_classes: int, in_channels: int = 3, image_size: int = 32,
                 mean: Sequence[float] | float | None = None, std: Sequence[float] | float | None = None,
                 seed: int | None = None, **kwargs) -> "DscoreModel":
    """Build model ``name`` for ``in_channels × image_size × image_size`` inputs in [0, 1].

    ``mean``/``std`` (one value per channel, or a scalar) are stored as buffers and applied
    inside the model; the default (0, 1) is a no-op. ``seed`` makes the random initialisation
    reproducible without touching the global RNG; ``None`` draws from the global RNG.
    Unknown names, unknown kwargs and out-of-range values raise ``ValueError`` before any
    module is built. The returned model is on the CPU in train mode; ``model.spec`` records
    the arguments (handy as a cache key).
    """
    builder = _get_builder(name)
    num_classes = check_int("num_classes", num_classes, low=1)
    in_channels = check_int("in_channels", in_channels, low=1)
    image_size = check_int("image_size", image_size, low=MIN_IMAGE_SIZE)
    _channel_stats("mean", mean, in_channels, 0.0)
    _channel_stats("std", std, in_channels, 1.0)
    allowed = model_kwargs(name)
    unknown = sorted(set(kwargs) - set(allowed))
    if unknown:
        raise ValueError(f"model {name!r} got unknown keyword argument(s) {unknown}; "
                         f"allowed: {', '.join(allowed) or 'none'}")
    if seed is not None:
        seed = check_int("seed", seed, low=0)
    common = dict(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std)
    if seed is None:
        model = builder(**common, **kwargs)
    else:
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = builder(**common, **kwargs)
    model.spec = {"name": name, "num_classes": num_classes, "in_channels": in_channels,
                  "image_size": image_size, "seed": seed, **kwargs}
    return model


def count_parameters(model: nn.Module, trainable_only: bool = False) -> int:
    """Number of parameter elements (shared parameters counted once)."""
    return sum(p.numel() for p in model.parameters() if p.requires_grad or not trainable_only)


def _get_builder(name: str) -> Callable[..., "DscoreModel"]:
    if not isinstance(name, str) or name not in _REGISTRY:
        raise ValueError(f"unknown model name={name!r}; available: {', '.join(list_models())}")
    return _REGISTRY[name]


def _channel_stats(label: str, value, channels: int, default: float) -> torch.Tensor:
    """Validate a per-channel statistic and return it as a (1, C, 1, 1) float32 tensor."""
    if value is None:
        return torch.full((1, channels, 1, 1), default)
    try:
        t = torch.as_tensor(value, dtype=torch.float32).detach().cpu().flatten()
    except (TypeError, ValueError, RuntimeError):
        raise ValueError(f"{label}={value!r} must be a number or a sequence of {channels} numbers") from None
    if t.numel() == 1:
        t = t.expand(channels)
    if t.numel() != channels:
        raise ValueError(f"{label}={value!r} has {t.numel()} values; expected 1 or in_channels={channels}")
    if not torch.isfinite(t).all() or (label == "std" and (t <= 0).any()):
        allowed = "finite positive numbers" if label == "std" else "finite numbers"
        raise ValueError(f"{label}={value!r} is invalid; allowed: {allowed}")
    return t.clone().reshape(1, channels, 1, 1)


# --------------------------------------------------------------------------------------------
# Base class
# --------------------------------------------------------------------------------------------

class DscoreModel(nn.Module, abc.ABC):
    """Base of every dscore network: built-in input normalisation plus an embed/classify split.

    Subclasses implement :meth:`features` on normalised input and either define ``self.fc``
    (the final ``nn.Linear``) or override :meth:`classify`; they must set ``embed_dim``.
    """

    embed_dim: int

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int,
                 mean: Sequence[float] | float | None = None, std: Sequence[float] | float | None = None):
        super().__init__()
        self.num_classes = check_int("num_classes", num_classes, low=1)
        self.in_channels = check_int("in_channels", in_channels, low=1)
        self.image_size = check_int("image_size", image_size, low=MIN_IMAGE_SIZE)
        self.register_buffer("mean", _channel_stats("mean", mean, in_channels, 0.0))
        self.register_buffer("std", _channel_stats("std", std, in_channels, 1.0))
        self.spec: dict = {}

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        """``(x - mean) / std`` per channel; (N, C, H, W) → same shape."""
        return (x - self.mean) / self.std

    @abc.abstractmethod
    def features(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate features of already-normalised input: (N, C, H, W) → (N, embed_dim)."""

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        """Penultimate embedding of images in [0, 1]: (N, C, H, W) → (N, embed_dim)."""
        self._check_input(x)
        return self.features(self.normalize(x))

    def classify(self, emb: torch.Tensor) -> torch.Tensor:
        """Logits from embeddings: (N, embed_dim) → (N, num_classes)."""
        return self.fc(emb)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits of images in [0, 1]: (N, C, H, W) → (N, num_classes)."""
        return self.classify(self.embed(x))

    def _check_input(self, x: torch.Tensor) -> None:
        expected = (self.in_channels, self.image_size, self.image_size)
        if x.dim() != 4 or tuple(x.shape[1:]) != expected:
            raise ValueError(f"input of shape {tuple(x.shape)} does not fit this model; "
                             f"expected (N, {expected[0]}, {expected[1]}, {expected[2]})")


# --------------------------------------------------------------------------------------------
# Shared layers
# --------------------------------------------------------------------------------------------

def _norm2d(kind: str, channels: int) -> nn.Module:
    """``instancenorm`` is GroupNorm with one group per channel (affine), as in DC/IDC."""
    if kind == "instancenorm":
        return nn.GroupNorm(channels, channels, affine=True)
    if kind == "batchnorm":
        return nn.BatchNorm2d(channels)
    return nn.Identity()


#: the smallest map side for which :class:`AvgPool2x2` pools by matrix products on the CPU (measured: 2–3× faster
#: than ``F.avg_pool2d`` forward and backward on 32×32 and 16×16 maps of 16 channels; slower on 8×8)
MATMUL_POOL_MIN_SIDE = 16


def _pool_matrix(side: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """(side // 2, side) matrix whose row i averages input rows 2i and 2i + 1 (a trailing odd row is dropped)."""
    m = torch.zeros(side // 2, side, dtype=dtype, device=device)
    rows = torch.arange(side // 2, device=device)
    m[rows, 2 * rows] = 0.5
    m[rows, 2 * rows + 1] = 0.5
    return m


class AvgPool2x2(nn.Module):
    """2×2 average pooling with stride 2, ``nn.AvgPool2d(2)``'s result (odd sides floored).

    On the CPU, for maps whose sides are at least :data:`MATMUL_POOL_MIN_SIDE`, it is computed as ``P_h · X · P_wᵀ``
    over the (N·C) planes, where ``P`` averages pairs of rows: two small matrix products that run faster there than
    the pooling kernel, forward and backward. The result equals ``F.avg_pool2d(x, 2)`` up to float rounding (the
    four values are summed in another order; measured ≤ 2.4e-7 on unit-scale maps). Elsewhere (CUDA, small maps)
    it calls ``F.avg_pool2d``. No parameters; O(N·C·H·W) time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.device.type != "cpu" or min(x.shape[-2:]) < MATMUL_POOL_MIN_SIDE:
            return F.avg_pool2d(x, 2)
        n, c, h, w = x.shape
        ph = _pool_matrix(h, x.dtype, x.device)
        pw = ph if w == h else _pool_matrix(w, x.dtype, x.device)
        return torch.matmul(torch.matmul(ph, x.reshape(n * c, h, w)), pw.t()).view(n, c, h // 2, w // 2)


def _activation(kind: str) -> nn.Module:
    if kind == "relu":
        return nn.ReLU(inplace=True)
    if kind == "leakyrelu":
        return nn.LeakyReLU(negative_slope=0.01, inplace=True)
    return nn.Sigmoid()


def _check_int_tuple(label: str, value, *, length: int | None = None) -> tuple[int, ...]:
    if isinstance(value, (str, bytes)) or not isinstance(value, Sequence) or not value:
        raise ValueError(f"{label}={value!r} must be a non-empty sequence of positive integers")
    out = tuple(check_int(f"{label}[{i}]", v, low=1) for i, v in enumerate(value))
    if length is not None and len(out) != length:
        raise ValueError(f"{label}={value!r} has {len(out)} entries; expected {length}")
    return out


# --------------------------------------------------------------------------------------------
# ConvNet-D (DC / DSA / DM / IDC / DREAM)
# --------------------------------------------------------------------------------------------

class ConvNet(DscoreModel):
    """ConvNet-D: ``depth`` × [3×3 conv (``width``) → norm → act → 2×2 pool], flatten, linear.

    28×28 inputs: the first conv pads by 3 so the map becomes 32×32, as in the DC/IDC code;
    hence ``embed_dim = width · (s' / 2^depth)²`` with ``s' = 32`` for 28 px and ``s' = image_size``
    otherwise (2048 for ConvNet-3 at 28 and 32 px). Cost per image O(depth · width² · s'²).
    """

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, mean=None, std=None,
                 depth: int = 3, width: int = 128, norm: str = "instancenorm", act: str = "relu",
                 pooling: str = "avgpool"):
        depth = check_int("depth", depth, low=1)
        width = check_int("width", width, low=1)
        check_choice("norm", norm, NORMS)
        check_choice("act", act, ACTIVATIONS)
        check_choice("pooling", pooling, POOLINGS)
        first_padding = 3 if image_size == 28 else 1
        size = image_size + 2 * (first_padding - 1)
        if pooling != "none" and size >> depth < 1:
            raise ValueError(f"depth={depth} is too deep for image_size={image_size}; allowed: "
                             f"1 <= depth <= {int(math.log2(size))} (each block halves the map)")
        super().__init__(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                         mean=mean, std=std)
        self.depth, self.width, self.norm, self.act = depth, width, norm, act
        layers: list[nn.Module] = []
        channels = in_channels
        for d in range(depth):
            layers += [nn.Conv2d(channels, width, kernel_size=3, padding=first_padding if d == 0 else 1),
                       _norm2d(norm, width), _activation(act)]
            if pooling == "avgpool":
                layers.append(AvgPool2x2())
            elif pooling == "maxpool":
                layers.append(nn.MaxPool2d(kernel_size=2, stride=2))
            if pooling != "none":
                size //= 2
            channels = width
        self.layers = nn.Sequential(*layers)
        self.feature_shape = (width, size, size)
        self.embed_dim = width * size * size
        self.fc = nn.Linear(self.embed_dim, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x).flatten(1)


@register_model("convnet")
def _convnet(*, num_classes, in_channels, image_size, mean, std, depth: int = 3, width: int = 128,
             norm: str = "instancenorm", act: str = "relu", pooling: str = "avgpool"):
    return ConvNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                   depth=depth, width=width, norm=norm, act=act, pooling=pooling)


@register_model("convnet3")
def _convnet3(*, num_classes, in_channels, image_size, mean, std, width: int = 128,
              norm: str = "instancenorm", act: str = "relu", pooling: str = "avgpool"):
    return ConvNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                   depth=3, width=width, norm=norm, act=act, pooling=pooling)


@register_model("convnet4")
def _convnet4(*, num_classes, in_channels, image_size, mean, std, width: int = 128,
              norm: str = "instancenorm", act: str = "relu", pooling: str = "avgpool"):
    return ConvNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                   depth=4, width=width, norm=norm, act=act, pooling=pooling)


@register_model("convnet_bn")
def _convnet_bn(*, num_classes, in_channels, image_size, mean, std, depth: int = 3, width: int = 128,
                act: str = "relu", pooling: str = "avgpool"):
    return ConvNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                   depth=depth, width=width, norm="batchnorm", act=act, pooling=pooling)


# --------------------------------------------------------------------------------------------
# ResNets (torchvision layout) and IDC's ResNetAP
# --------------------------------------------------------------------------------------------

def _conv(in_ch: int, out_ch: int, kernel: int, stride: int, bias: bool) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=kernel, stride=stride, padding=kernel // 2, bias=bias)


def _shortcut(in_ch: int, out_ch: int, stride: int, norm: str, avgpool_downsample: bool) -> nn.Module | None:
    if stride == 1 and in_ch == out_ch:
        return None
    bias = norm == "none"
    if avgpool_downsample and stride > 1:
        return nn.Sequential(_conv(in_ch, out_ch, 1, 1, bias), nn.AvgPool2d(stride), _norm2d(norm, out_ch))
    return nn.Sequential(_conv(in_ch, out_ch, 1, stride, bias), _norm2d(norm, out_ch))


class _BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int, norm: str, avgpool_downsample: bool):
        super().__init__()
        bias = norm == "none"
        conv_stride = 1 if avgpool_downsample else stride
        self.conv1 = _conv(in_ch, planes, 3, conv_stride, bias)
        self.bn1 = _norm2d(norm, planes)
        self.pool = nn.AvgPool2d(stride) if avgpool_downsample and stride > 1 else nn.Identity()
        self.conv2 = _conv(planes, planes, 3, 1, bias)
        self.bn2 = _norm2d(norm, planes)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, planes, stride, norm, avgpool_downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.pool(self.relu(self.bn1(self.conv1(x))))
        out = self.bn2(self.conv2(out))
        return self.relu(out + identity)


class _Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int, norm: str, avgpool_downsample: bool):
        super().__init__()
        bias = norm == "none"
        out_ch = planes * self.expansion
        self.conv1 = _conv(in_ch, planes, 1, 1, bias)
        self.bn1 = _norm2d(norm, planes)
        self.conv2 = _conv(planes, planes, 3, 1 if avgpool_downsample else stride, bias)
        self.bn2 = _norm2d(norm, planes)
        self.pool = nn.AvgPool2d(stride) if avgpool_downsample and stride > 1 else nn.Identity()
        self.conv3 = _conv(planes, out_ch, 1, 1, bias)
        self.bn3 = _norm2d(norm, out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_ch, out_ch, stride, norm, avgpool_downsample)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.pool(self.relu(self.bn2(self.conv2(out))))
        out = self.bn3(self.conv3(out))
        return self.relu(out + identity)


class ResNet(DscoreModel):
    """ResNet with torchvision's module names (``conv1, bn1, layer1..4, fc``).

    Stem: 3×3 stride-1 conv without max-pool when ``image_size <= 64`` (CIFAR style), else
    torchvision's 7×7 stride-2 conv + 3×3 max-pool. ``avgpool_downsample=True`` gives IDC's
    ResNetAP: every stride-2 conv becomes a stride-1 conv followed by 2×2 average pooling
    (in the residual branch and the 1×1 shortcut), and the large-image stem is a 7×7
    stride-1 conv followed by 4×4 average pooling. ``embed_dim = 8 · width · expansion``.
    """

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, mean=None, std=None,
                 block: type[nn.Module], layers: Sequence[int], width: int = 64, norm: str = "batchnorm",
                 avgpool_downsample: bool = False):
        width = check_int("width", width, low=1)
        check_choice("norm", norm, NORMS)
        super().__init__(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                         mean=mean, std=std)
        bias = norm == "none"
        self.small_stem = image_size <= 64
        if self.small_stem:
            self.conv1 = _conv(in_channels, width, 3, 1, bias)
            self.stem_pool: nn.Module = nn.Identity()
        elif avgpool_downsample:
            self.conv1 = _conv(in_channels, width, 7, 1, bias)
            self.stem_pool = nn.AvgPool2d(4)
        else:
            self.conv1 = _conv(in_channels, width, 7, 2, bias)
            self.stem_pool = nn.MaxPool2d(kernel_size=3, stride=2, padding=1)
        self.bn1 = _norm2d(norm, width)
        self.relu = nn.ReLU(inplace=True)
        in_ch = width
        for i, (blocks, stride) in enumerate(zip(layers, (1, 2, 2, 2))):
            planes = width * 2 ** i
            stage = []
            for b in range(blocks):
                stage.append(block(in_ch, planes, stride if b == 0 else 1, norm, avgpool_downsample))
                in_ch = planes * block.expansion
            setattr(self, f"layer{i + 1}", nn.Sequential(*stage))
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.embed_dim = in_ch
        self.fc = nn.Linear(in_ch, num_classes)
        for m in self.modules():
            if isinstance(m, nn.Conv2d):
                nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
            elif isinstance(m, (nn.BatchNorm2d, nn.GroupNorm)):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.stem_pool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.avgpool(x).flatten(1)


@register_model("resnet10")
def _resnet10(*, num_classes, in_channels, image_size, mean, std, width: int = 64, norm: str = "batchnorm"):
    return ResNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                  block=_BasicBlock, layers=(1, 1, 1, 1), width=width, norm=norm)


@register_model("resnet18")
def _resnet18(*, num_classes, in_channels, image_size, mean, std, width: int = 64, norm: str = "batchnorm"):
    return ResNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                  block=_BasicBlock, layers=(2, 2, 2, 2), width=width, norm=norm)


@register_model("resnet50")
def _resnet50(*, num_classes, in_channels, image_size, mean, std, width: int = 64, norm: str = "batchnorm"):
    return ResNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                  block=_Bottleneck, layers=(3, 4, 6, 3), width=width, norm=norm)


@register_model("resnetap10")
def _resnetap10(*, num_classes, in_channels, image_size, mean, std, width: int = 64,
                norm: str = "instancenorm"):
    """IDC's ResNetAP-10 (its CIFAR configuration uses ``width=32``)."""
    return ResNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                  block=_BasicBlock, layers=(1, 1, 1, 1), width=width, norm=norm, avgpool_downsample=True)


# --------------------------------------------------------------------------------------------
# CIFAR DenseNet
# --------------------------------------------------------------------------------------------

class _DenseLayer(nn.Module):
    """BN-ReLU-1×1 conv (4·growth) → BN-ReLU-3×3 conv (growth); output = concat(input, new)."""

    def __init__(self, in_ch: int, growth: int, norm: str):
        super().__init__()
        self.norm1 = _norm2d(norm, in_ch)
        self.conv1 = nn.Conv2d(in_ch, 4 * growth, kernel_size=1, bias=False)
        self.norm2 = _norm2d(norm, 4 * growth)
        self.conv2 = nn.Conv2d(4 * growth, growth, kernel_size=3, padding=1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        new = self.conv1(F.relu(self.norm1(x)))
        new = self.conv2(F.relu(self.norm2(new)))
        return torch.cat([x, new], dim=1)


class _Transition(nn.Sequential):
    def __init__(self, in_ch: int, out_ch: int, norm: str):
        super().__init__(_norm2d(norm, in_ch), nn.ReLU(),
                         nn.Conv2d(in_ch, out_ch, kernel_size=1, bias=False), nn.AvgPool2d(2))


class DenseNet(DscoreModel):
    """DenseNet-BC for small images (the CIFAR DenseNet-121 with growth 12 by default).

    Stem: 3×3 conv with ``2·growth`` channels and no pooling when ``image_size <= 64``
    (ImageNet-style 7×7/2 conv + max-pool otherwise). Each transition keeps
    ``floor(compression · channels)`` channels and halves the map. Defaults give 24 → 96 → 48 →
    192 → 96 → 384 → 192 → 384 channels, so ``embed_dim = 384``.
    """

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, mean=None, std=None,
                 growth_rate: int = 12, block_config: Sequence[int] = (6, 12, 24, 16),
                 compression: float = 0.5, norm: str = "batchnorm"):
        growth_rate = check_int("growth_rate", growth_rate, low=1)
        block_config = _check_int_tuple("block_config", block_config)
        compression = check_float("compression", compression, low=0.0, high=1.0, low_open=True)
        check_choice("norm", norm, NORMS)
        super().__init__(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                         mean=mean, std=std)
        channels = 2 * growth_rate
        if image_size <= 64:
            stem: list[nn.Module] = [nn.Conv2d(in_channels, channels, kernel_size=3, padding=1, bias=False)]
        else:
            stem = [nn.Conv2d(in_channels, channels, kernel_size=7, stride=2, padding=3, bias=False),
                    _norm2d(norm, channels), nn.ReLU(), nn.MaxPool2d(kernel_size=3, stride=2, padding=1)]
        self.stem = nn.Sequential(*stem)
        stages: list[nn.Module] = []
        for i, num_layers in enumerate(block_config):
            dense = []
            for _ in range(num_layers):
                dense.append(_DenseLayer(channels, growth_rate, norm))
                channels += growth_rate
            stages.append(nn.Sequential(*dense))
            if i < len(block_config) - 1:
                out_ch = max(1, int(math.floor(channels * compression)))
                stages.append(_Transition(channels, out_ch, norm))
                channels = out_ch
        self.stages = nn.Sequential(*stages)
        self.final_norm = _norm2d(norm, channels)
        self.embed_dim = channels
        self.fc = nn.Linear(channels, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.relu(self.final_norm(self.stages(self.stem(x))))
        return F.adaptive_avg_pool2d(x, 1).flatten(1)


@register_model("densenet121")
def _densenet121(*, num_classes, in_channels, image_size, mean, std, growth_rate: int = 12,
                 block_config: Sequence[int] = (6, 12, 24, 16), compression: float = 0.5,
                 norm: str = "batchnorm"):
    return DenseNet(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean, std=std,
                    growth_rate=growth_rate, block_config=block_config, compression=compression, norm=norm)


# --------------------------------------------------------------------------------------------
# MobileNetV2 (torchvision, CIFAR-adapted)
# --------------------------------------------------------------------------------------------

class MobileNetV2(DscoreModel):
    """torchvision's MobileNetV2 with the common small-image adaptation.

    When ``image_size <= 64`` the stem conv and the second inverted-residual stage use stride 1
    (total stride 8: 32 px → 4×4), otherwise torchvision's strides (total 32). The stem conv is
    rebuilt for ``in_channels``. ``classify`` is torchvision's classifier (dropout ``drop_rate``,
    then the linear layer), so it is the identity-plus-linear in eval mode. ``embed_dim = 1280``
    (scaled by ``width_mult`` when that exceeds 1).
    """

    def __init__(self, *, num_classes: int, in_channels: int, image_size: int, mean=None, std=None,
                 width_mult: float = 1.0, drop_rate: float = 0.2):
        width_mult = check_float("width_mult", width_mult, low=0.0, low_open=True)
        drop_rate = check_float("drop_rate", drop_rate, low=0.0, high=1.0, high_open=True)
        super().__init__(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                         mean=mean, std=std)
        from torchvision.models import MobileNetV2 as _TorchvisionMobileNetV2

        small = image_size <= 64
        setting = [[1, 16, 1, 1], [6, 24, 2, 1 if small else 2], [6, 32, 3, 2], [6, 64, 4, 2],
                   [6, 96, 3, 1], [6, 160, 3, 2], [6, 320, 1, 1]]
        net = _TorchvisionMobileNetV2(num_classes=num_classes, width_mult=width_mult,
                                      inverted_residual_setting=setting, dropout=drop_rate)
        old = net.features[0][0]
        stem = nn.Conv2d(in_channels, old.out_channels, kernel_size=3, stride=1 if small else 2,
                         padding=1, bias=False)
        nn.init.kaiming_normal_(stem.weight, mode="fan_out")
        net.features[0][0] = stem
        self.net = net
        self.embed_dim = net.last_channel

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.net.features(x), 1).flatten(1)

    def classify(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net.classifier(emb)


@register_model("mobilenetv2")
def _mobilenetv2(*, num_classes, in_channels, image_size, mean, std, width_mult: float = 1.0,
                 drop_rate: float = 0.2):
    return MobileNetV2(num_classes=num_classes, in_channels=in_channels, image_size=image_size, mean=mean,
                       std=std, width_mult=width_mult, drop_rate=drop_rate)


# --------------------------------------------------------------------------------------------
# timm transformers / ConvNeXt
# --------------------------------------------------------------------------------------------

class TimmModel(DscoreModel):
    """Wraps a timm classifier built for ``padded_size`` inputs (never pretrained).

    ``features`` = ``forward_head(forward_features(x), pre_logits=True)``; ``classify`` = the
    model's final linear layer (``get_classifier()``). When the architecture needs a size that
    ``image_size`` is not (patch/window/downsampling divisibility, e.g. 28 px for Swin and
    ConvNeXt), the normalised input is zero-padded symmetrically to ``padded_size``; zero in
    normalised space is the dataset mean, which is what a conv's zero padding sees too.
    """

    def __init__(self, net: nn.Module, *, padded_size: int, num_classes: int, in_channels: int,
                 image_size: int, mean=None, std=None):
        super().__init__(num_classes=num_classes, in_channels=in_channels, image_size=image_size,
                         mean=mean, std=std)
        self.net = net
        self.padded_size = padded_size
        before = (padded_size - image_size) // 2
        after = padded_size - image_size - before
        self.padding = (before, after, before, after)
        self.embed_dim = int(net.get_classifier().in_features)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.padded_size != self.image_size:
            x = F.pad(x, self.padding)
        return self.net.forward_head(self.net.forward_features(x), pre_logits=True)

    def classify(self, emb: torch.Tensor) -> torch.Tensor:
        return self.net.get_classifier()(emb)


def _round_up(value: int, multiple: int) -> int:
    return -(-value // multiple) * multiple


def _swin_padded_size(image_size: int, patch: int, window: int, stages: int) -> int:
    """Smallest size >= image_size whose patch grid halves cleanly through every stage and
    whose per-stage grid is a multiple of the window (or fits inside one window)."""
    step = patch * 2 ** (stages - 1)
    size = _round_up(image_size, step)
    while True:
        grids = [size // (patch * 2 ** i) for i in range(stages)]
        if all(g <= window or g % window == 0 for g in grids):
            return size
        size += step


@register_model("vit")
def _vit(*, num_classes, in_channels, image_size, mean, std, patch_size: int | None = None,
         embed_dim: int = 192, depth: int = 12, num_heads: int = 3, drop_rate: float = 0.0,
         drop_path_rate: float = 0.0, fused_attn: bool = True):
    """ViT-Tiny (192-d, 12 blocks, 3 heads, MLP ratio 4) with a class token; ``patch_size`` defaults to 4 at
    <= 32 px (64 or 49 tokens), 8 at <= 64 px, 16 above. Inputs pad to a multiple of the patch.
    ``fused_attn=False`` uses timm's explicit attention instead of ``scaled_dot_product_attention``,
    whose fused kernels have no double backward (needed by gradient matching with ``create_graph``)."""
    patch = check_int("patch_size", patch_size, low=1) if patch_size is not None else (
        4 if image_size <= 32 else 8 if image_size <= 64 else 16)
    embed_dim = check_int("embed_dim", embed_dim, low=1)
    depth = check_int("depth", depth, low=1)
    num_heads = check_int("num_heads", num_heads, low=1)
    if embed_dim % num_heads:
        raise ValueError(f"embed_dim={embed_dim} must be divisible by num_heads={num_heads}")
    drop_rate = check_float("drop_rate", drop_rate, low=0.0, high=1.0, high_open=True)
    drop_path_rate = check_float("drop_path_rate", drop_path_rate, low=0.0, high=1.0, high_open=True)
    if not isinstance(fused_attn, bool):
        raise ValueError(f"fused_attn={fused_attn!r} must be True or False")
    from timm.models.vision_transformer import VisionTransformer

    padded = _round_up(image_size, patch)
    net = VisionTransformer(img_size=padded, patch_size=patch, in_chans=in_channels, num_classes=num_classes,
                            embed_dim=embed_dim, depth=depth, num_heads=num_heads, mlp_ratio=4.0,
                            drop_rate=drop_rate, drop_path_rate=drop_path_rate)
    for module in net.modules():
        if hasattr(module, "fused_attn"):
            module.fused_attn = fused_attn
    return TimmModel(net, padded_size=padded, num_classes=num_classes, in_channels=in_channels,
                     image_size=image_size, mean=mean, std=std)


@register_model("swin")
def _swin(*, num_classes, in_channels, image_size, mean, std, patch_size: int | None = None,
          window_size: int | None = None, embed_dim: int = 96, depths: Sequence[int] = (2, 2, 6),
          num_heads: Sequence[int] = (3, 6, 12), drop_rate: float = 0.0, drop_path_rate: float = 0.1):
    """Swin-T without its last stage (96-d, depths 2-2-6, heads 3-6-12, MLP ratio 4). Defaults: patch 2 and
    window 4 at <= 32 px (grids 16/8/4), patch 4 / window 4 at <= 64 px, patch 4 / window 7 above.
    28 px inputs are padded to 32. ``drop_path_rate`` keeps timm's Swin default 0.1 (stochastic
    depth, active in train mode only)."""
    patch = check_int("patch_size", patch_size, low=1) if patch_size is not None else (
        2 if image_size <= 32 else 4)
    window = check_int("window_size", window_size, low=1) if window_size is not None else (
        4 if image_size <= 64 else 7)
    embed_dim = check_int("embed_dim", embed_dim, low=1)
    depths = _check_int_tuple("depths", depths)
    num_heads = _check_int_tuple("num_heads", num_heads, length=len(depths))
    for i, heads in enumerate(num_heads):
        if (embed_dim * 2 ** i) % heads:
            raise ValueError(f"stage {i} width {embed_dim * 2 ** i} (embed_dim={embed_dim} · 2^{i}) "
                             f"must be divisible by num_heads[{i}]={heads}")
    drop_rate = check_float("drop_rate", drop_rate, low=0.0, high=1.0, high_open=True)
    drop_path_rate = check_float("drop_path_rate", drop_path_rate, low=0.0, high=1.0, high_open=True)
    from timm.models.swin_transformer import SwinTransformer

    padded = _swin_padded_size(image_size, patch, window, len(depths))
    net = SwinTransformer(img_size=padded, patch_size=patch, in_chans=in_channels, num_classes=num_classes,
                          embed_dim=embed_dim, depths=depths, num_heads=num_heads, window_size=window,
                          mlp_ratio=4.0, drop_rate=drop_rate, drop_path_rate=drop_path_rate)
    return TimmModel(net, padded_size=padded, num_classes=num_classes, in_channels=in_channels,
                     image_size=image_size, mean=mean, std=std)


@register_model("convnext")
def _convnext(*, num_classes, in_channels, image_size, mean, std, patch_size: int | None = None,
              depths: Sequence[int] = (2, 2, 6, 2), dims: Sequence[int] = (40, 80, 160, 320),
              kernel_size: int = 7, drop_rate: float = 0.0, drop_path_rate: float = 0.0):
    """ConvNeXt-Atto widths/depths (timm's ConvNeXt always has 4 stages) with a patch-2 stem at
    <= 32 px (maps 16/8/4/2), patch 4 above. Inputs pad to a multiple of ``patch · 8``
    (28 → 32), so every stride-2 downsampling sees an even map."""
    patch = check_int("patch_size", patch_size, low=1) if patch_size is not None else (
        2 if image_size <= 32 else 4)
    depths = _check_int_tuple("depths", depths, length=4)
    dims = _check_int_tuple("dims", dims, length=4)
    kernel_size = check_int("kernel_size", kernel_size, low=1)
    if kernel_size % 2 == 0:
        raise ValueError(f"kernel_size={kernel_size} must be odd")
    drop_rate = check_float("drop_rate", drop_rate, low=0.0, high=1.0, high_open=True)
    drop_path_rate = check_float("drop_path_rate", drop_path_rate, low=0.0, high=1.0, high_open=True)
    from timm.models.convnext import ConvNeXt

    padded = _round_up(image_size, patch * 8)
    net = ConvNeXt(in_chans=in_channels, num_classes=num_classes, depths=depths, dims=dims,
                   kernel_sizes=kernel_size, patch_size=patch, drop_rate=drop_rate, drop_path_rate=drop_path_rate)
    return TimmModel(net, padded_size=padded, num_classes=num_classes, in_channels=in_channels,
                     image_size=image_size, mean=mean, std=std)
