"""Dataset registry: image classification datasets held in memory as tensors.

``load_dataset(name, split)`` returns an :class:`ImageDataset` whose ``images`` are a
float32 tensor (N, C, H, W) with pixels in [0, 1] and whose ``labels`` are int64 (N,).
Files are read through ``torchvision.datasets`` (idx files, CIFAR pickles, SVHN ``.mat``,
image folders); nothing here parses a file format by hand.

Names (``list_datasets()``):

* ``fashion_mnist`` — the embedded default. Looked up, in this order, (1) in torchvision's
  layout under ``root`` (``root/FashionMNIST/raw/*-ubyte``), (2) in the files installed by
  Debian's ``dataset-fashion-mnist`` package (:data:`FASHION_MNIST_DEBIAN_DIR`, overridable
  with ``$DSCORE_FASHION_MNIST_DEBIAN_DIR``), which are unpacked into (1), (3) downloaded by
  torchvision into (1), saying so. If all three fail, one :class:`DatasetNotFoundError`
  names every place looked at and every way to provide the data.
* ``mnist``, ``cifar10``, ``cifar100``, ``svhn`` — torchvision's layout under ``root``
  (``root/MNIST/raw``, ``root/cifar-10-batches-py``, ``root/cifar-100-python``,
  ``root/{train,test}_32x32.mat``). Downloaded only when asked (``download=True`` or
  ``$DSCORE_ALLOW_DOWNLOAD=1``).
* ``tinyimagenet`` — the official ``root/tiny-imagenet-200`` folder; the official ``val``
  set is the ``test`` split.
* ``imagefolder`` — ``root/<split>/<class>/*.png|jpg…`` (torchvision ``ImageFolder`` rules).
* ``digits`` — scikit-learn's 8×8 digits (1797 images), a fixed stratified 3/4 : 1/4
  train/test split; for fast tests.

``mean``/``std`` are per-channel statistics of the *train* split (after any resize), also
for the test split, so that a model normalising with them sees the same transform on both.

Loaded datasets are memoised per (name, split, root, image_size) in a small LRU
(:data:`MEMO_SIZE` entries, :func:`clear_cache` empties it): calling ``load_dataset`` twice
returns the very same object. The dataclass is frozen, but tensors cannot be made
read-only in torch — callers must not modify ``images``/``labels`` in place (clone first),
since every later ``load_dataset`` call would see the change.
"""
from __future__ import annotations

import gzip
import os
import shutil
import threading
import warnings
from collections import Counter, OrderedDict
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, NamedTuple, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .paths import data_root
from .utils import atomic_path, check_choice, check_float, check_int, make_generator, tqdm

__all__ = [
    "DatasetNotFoundError", "ImageDataset", "load_dataset", "list_datasets", "stratified_indices",
    "stratified_subset", "train_val_split", "resolve_dataset", "clear_cache", "FASHION_MNIST_DEBIAN_DIR", "FASHION_MNIST_DEBIAN_DIR_ENV", "MEMO_SIZE",
]

#: Where Debian's ``dataset-fashion-mnist`` package installs the gzipped idx files.
FASHION_MNIST_DEBIAN_DIR = Path("/usr/share/datasets/fashion-mnist")
#: Environment variable that overrides :data:`FASHION_MNIST_DEBIAN_DIR` (read at call time).
FASHION_MNIST_DEBIAN_DIR_ENV = "DSCORE_FASHION_MNIST_DEBIAN_DIR"
#: ``1`` lets every dataset download when ``download`` is not given; ``0`` forbids even the
#: Fashion-MNIST last-resort download.
ALLOW_DOWNLOAD_ENV = "DSCORE_ALLOW_DOWNLOAD"
#: How many loaded datasets the memo keeps (CIFAR-10 train is ~600 MB as float32).
MEMO_SIZE = 4

SPLITS = ("train", "test")
_IDX_FILES = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
_CHUNK = 4096  # images per vectorised conversion step: bounds the float64/resize temporaries


class DatasetNotFoundError(FileNotFoundError):
    """A dataset's files are missing or unreadable; the message says where dscore looked and how to provide them."""


# ----------------------------------------------------------------------------------------------------------------
# The dataset object
# ----------------------------------------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class ImageDataset:
    """An in-memory labelled image set.

    Fields: ``images`` float32 (N, C, H, W) in [0, 1]; ``labels`` int64 (N,) in [0, num_classes);
    ``classes`` the class names (label ``i`` is ``classes[i]``); ``mean``/``std`` per-channel
    statistics of the train split; ``source`` int64 (N,) the position of every sample in the whole split as
    :func:`load_dataset` returns it (torchvision's order), carried through :meth:`subset`, or None when the images
    do not come from a loaded split (e.g. synthetic sets). Immutable by convention: do not write into the tensors.
    """

    name: str
    split: str
    images: torch.Tensor
    labels: torch.Tensor
    classes: tuple[str, ...]
    mean: tuple[float, ...]
    std: tuple[float, ...]
    source: torch.Tensor | None = None

    def __post_init__(self):
        if not isinstance(self.images, torch.Tensor) or self.images.dim() != 4 or self.images.dtype != torch.float32:
            raise ValueError(f"images must be a float32 tensor of shape (N, C, H, W), got "
                             f"{type(self.images).__name__} {getattr(self.images, 'dtype', '')} "
                             f"{tuple(getattr(self.images, 'shape', ()))}")
        if not isinstance(self.labels, torch.Tensor) or self.labels.dim() != 1 or self.labels.dtype != torch.int64:
            raise ValueError(f"labels must be an int64 tensor of shape (N,), got {getattr(self.labels, 'dtype', '')} "
                             f"{tuple(getattr(self.labels, 'shape', ()))}")
        if self.labels.shape[0] != self.images.shape[0]:
            raise ValueError(f"{self.images.shape[0]} images but {self.labels.shape[0]} labels")
        if self.source is not None and (not isinstance(self.source, torch.Tensor) or self.source.dtype != torch.int64
                                        or self.source.shape != self.labels.shape):
            raise ValueError(f"source must be None or an int64 tensor of shape ({self.labels.shape[0]},): the "
                             f"positions of the samples in their loaded split; got "
                             f"{getattr(self.source, 'dtype', type(self.source).__name__)} "
                             f"{tuple(getattr(self.source, 'shape', ()))}")
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        object.__setattr__(self, "mean", tuple(float(m) for m in self.mean))
        object.__setattr__(self, "std", tuple(float(s) for s in self.std))
        if not self.classes:
            raise ValueError("classes must not be empty")
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"mean/std need one value per channel ({self.channels}), got {len(self.mean)}/{len(self.std)}")
        if self.labels.numel() and (int(self.labels.min()) < 0 or int(self.labels.max()) >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes - 1}], found "
                             f"[{int(self.labels.min())}, {int(self.labels.max())}]")

    # -- shape --------------------------------------------------------------------------------------------------
    @property
    def num_classes(self) -> int:
        return len(self.classes)

    @property
    def channels(self) -> int:
        return int(self.images.shape[1])

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(C, H, W)."""
        return tuple(int(s) for s in self.images.shape[1:])  # type: ignore[return-value]

    @property
    def image_size(self) -> int | tuple[int, int]:
        """Side length H for square images, else (H, W)."""
        h, w = int(self.images.shape[2]), int(self.images.shape[3])
        return h if h == w else (h, w)

    @property
    def device(self) -> torch.device:
        return self.images.device

    def __len__(self) -> int:
        return int(self.images.shape[0])

    def __repr__(self) -> str:
        return (f"ImageDataset(name={self.name!r}, split={self.split!r}, n={len(self)}, "
                f"classes={self.num_classes}, shape={self.image_shape}, device={self.device})")

    # -- per-class helpers --------------------------------------------------------------------------------------
    def class_counts(self) -> torch.Tensor:
        """Samples per class, int64 (num_classes,). O(N)."""
        return torch.bincount(self.labels, minlength=self.num_classes)

    def class_indices(self, c: int) -> torch.LongTensor:
        """Ascending indices of the samples of class ``c``. O(N)."""
        c = check_int("c", c, low=0, high=self.num_classes - 1)
        return torch.nonzero(self.labels == c).squeeze(1)

    def indices_per_class(self) -> list[torch.LongTensor]:
        """``out[c]`` = ascending indices of class ``c`` (possibly empty), from one stable argsort. O(N log N)."""
        order = torch.argsort(self.labels, stable=True)
        return list(torch.split(order, self.class_counts().tolist()))

    # -- derived datasets ---------------------------------------------------------------------------------------
    def subset(self, idx) -> "ImageDataset":
        """The samples at ``idx`` (int indices in [0, N) in any order, or a bool mask of length N); ``source`` follows
        them, so a subset of a subset still knows where every sample sits in the loaded split."""
        idx = torch.as_tensor(idx, device=self.labels.device)
        if idx.dtype == torch.bool:
            if idx.shape != (len(self),):
                raise ValueError(f"a boolean mask must have shape ({len(self)},), got {tuple(idx.shape)}")
            idx = torch.nonzero(idx).squeeze(1)
        elif idx.numel() == 0:
            idx = idx.reshape(0).long()
        elif idx.dtype.is_floating_point or idx.dtype.is_complex or idx.dim() != 1:
            raise ValueError(f"idx must be a 1-D integer index or a boolean mask, got {idx.dtype} {tuple(idx.shape)}")
        idx = idx.long()
        if idx.numel() and (int(idx.min()) < 0 or int(idx.max()) >= len(self)):
            raise ValueError(f"indices must lie in [0, {len(self) - 1}], found [{int(idx.min())}, {int(idx.max())}]")
        source = None if self.source is None else self.source[idx.to(self.source.device)]
        return ImageDataset(self.name, self.split, self.images[idx.to(self.images.device)], self.labels[idx],
                            self.classes, self.mean, self.std, source)

    def to(self, device) -> "ImageDataset":
        """The same dataset with its tensors on ``device`` (``self`` when already there)."""
        device = torch.device(device)
        if self.images.device == device and self.labels.device == device:
            return self
        return ImageDataset(self.name, self.split, self.images.to(device), self.labels.to(device),
                            self.classes, self.mean, self.std, self.source)


def stratified_indices(labels: torch.Tensor, per_class: int, seed: int = 0, *,
                       num_classes: int | None = None) -> torch.LongTensor:
    """``per_class`` random indices of every class, grouped by class, ascending inside a class.

    ``labels`` int (N,); classes are ``0..num_classes-1`` (default ``labels.max()+1``). Same
    seed → same indices. Vectorised: one random key per sample, two stable sorts. O(N log N).
    """
    if not isinstance(labels, torch.Tensor) or labels.dim() != 1 or labels.dtype.is_floating_point:
        raise ValueError(f"labels must be a 1-D integer tensor, got {type(labels).__name__}")
    per_class = check_int("per_class", per_class, low=1)
    seed = check_int("seed", seed, low=0)
    labels = labels.long()
    if num_classes is None:
        num_classes = int(labels.max()) + 1 if labels.numel() else 0
    num_classes = check_int("num_classes", num_classes, low=1)
    if labels.numel() and (int(labels.min()) < 0 or int(labels.max()) >= num_classes):
        raise ValueError(f"labels must lie in [0, {num_classes - 1}], found [{int(labels.min())}, {int(labels.max())}]")
    cpu_labels = labels.cpu()
    counts = torch.bincount(cpu_labels, minlength=num_classes)
    smallest = int(counts.min())
    if per_class > smallest:
        c = int(counts.argmin())
        raise ValueError(f"per_class={per_class} exceeds the smallest class (class {c} has {smallest} samples); "
                         f"allowed: 1 <= per_class <= {smallest}")
    keys = torch.rand(cpu_labels.shape[0], generator=make_generator(seed))
    order = torch.argsort(keys)
    order = order[torch.argsort(cpu_labels[order], stable=True)]            # by class, random within a class
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel()) - starts[cpu_labels[order]]
    chosen = order[rank < per_class].view(num_classes, per_class)
    chosen = torch.sort(chosen, dim=1).values.reshape(-1)
    return chosen.to(labels.device)


def stratified_subset(ds: ImageDataset, per_class: int, seed: int = 0) -> ImageDataset:
    """A subset of ``ds`` with ``per_class`` random samples of every class (see :func:`stratified_indices`).

    Raises ``ValueError`` when ``per_class`` exceeds the smallest class, naming both.
    """
    return ds.subset(stratified_indices(ds.labels, per_class, seed, num_classes=ds.num_classes))


def train_val_split(ds: ImageDataset, fraction: float, seed: int = 0) -> tuple[ImageDataset, ImageDataset]:
    """Class-stratified split of ``ds`` into ``(train, val)``, disjoint, covering ``ds``, deterministic.

    Class c with n_c samples gives ``v_c = round(fraction·n_c)`` of them (half up), clipped to
    ``[1, n_c − 1]``, to the validation part, chosen uniformly at random by one seeded stream of keys
    (same ``seed`` → same split); the rest stay in the training part. Both parts keep ``ds``'s
    order (ascending indices), classes and normalisation statistics — the statistics of the full
    train split, so a network sees the same input scaling on both parts. Anything tuned on the
    validation part never touches the test split. Empty classes stay empty on both sides.

    Raises ValueError for ``fraction`` ∉ (0, 1) or when a non-empty class has fewer than 2 samples
    (it cannot appear on both sides). O(N log N).
    """
    if not isinstance(ds, ImageDataset):
        raise ValueError(f"ds must be an ImageDataset, got {type(ds).__name__}")
    fraction = check_float("fraction", fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_int("seed", seed, low=0)
    labels = ds.labels.cpu()
    counts = torch.bincount(labels, minlength=ds.num_classes)
    small = [c for c, n in enumerate(counts.tolist()) if n == 1]
    if small:
        raise ValueError(f"class {small[0]} has 1 sample; train_val_split needs >= 2 samples in every "
                         "non-empty class so that both parts hold it")
    val_counts = torch.floor(fraction * counts.double() + 0.5).long().clamp(min=1)
    val_counts = torch.minimum(val_counts, counts - 1).clamp(min=0)
    keys = torch.rand(labels.shape[0], generator=make_generator(seed))
    order = torch.argsort(keys)
    order = order[torch.argsort(labels[order], stable=True)]                 # by class, random within a class
    starts = torch.cumsum(counts, 0) - counts
    rank = torch.arange(order.numel()) - starts[labels[order]]
    is_val = torch.zeros(labels.shape[0], dtype=torch.bool)
    is_val[order[rank < val_counts[labels[order]]]] = True
    return ds.subset(~is_val.to(ds.labels.device)), ds.subset(is_val.to(ds.labels.device))


# ----------------------------------------------------------------------------------------------------------------
# Conversion helpers
# ----------------------------------------------------------------------------------------------------------------

class _Raw(NamedTuple):
    """What a per-dataset reader returns: images as uint8/float (N, C, H, W) or a list of uint8 (C, H, W)."""

    images: torch.Tensor | list[torch.Tensor]
    labels: torch.Tensor
    classes: tuple[str, ...]


def _as_float_chunk(x: torch.Tensor, shape: tuple[int, int, int]) -> torch.Tensor:
    """uint8 or [0,1]-float (n, c, h, w) → float32 (n, *shape): scale, repeat grey channels, resize (bilinear)."""
    x = x.float().div_(255.0) if x.dtype == torch.uint8 else x.float()
    if x.shape[1] != shape[0]:
        x = x.expand(-1, shape[0], -1, -1)
    if tuple(x.shape[2:]) != tuple(shape[1:]):
        down = x.shape[2] > shape[1] or x.shape[3] > shape[2]
        x = F.interpolate(x, size=tuple(shape[1:]), mode="bilinear", align_corners=False, antialias=down)
        x = x.clamp_(0.0, 1.0)
    return x


def _to_float_images(images: torch.Tensor | list[torch.Tensor], size: tuple[int, int] | None) -> torch.Tensor:
    """Stack/convert raw images to float32 (N, C, H, W) in [0, 1], resizing to ``size`` if given.

    A list may mix sizes only when ``size`` is given (else ``ValueError`` listing the sizes), and mix
    grey and colour images (grey ones are repeated to 3 channels). Work is done per group of
    equal-sized images in chunks of ``_CHUNK``, so temporaries stay small.
    """
    if isinstance(images, torch.Tensor):
        groups = {tuple(images.shape[1:]): None}
        n = images.shape[0]
    else:
        n = len(images)
        groups: dict[tuple[int, ...], list[int]] = {}
        for i, t in enumerate(images):
            groups.setdefault(tuple(t.shape), []).append(i)
    if n == 0:
        raise ValueError("the dataset has no images")
    channels = max(s[0] for s in groups)
    hw = {s[1:] for s in groups}
    if size is None and len(hw) > 1:
        found: Counter = Counter()
        for shape, members in groups.items():  # only a list can mix sizes, so members is a list here
            found[shape[1:]] += len(members)
        listed = ", ".join(f"{h}x{w} ({k} images)" for (h, w), k in found.most_common(10))
        raise ValueError(f"images have different sizes: {listed}; pass image_size=... to resize them all")
    target = (channels, *(size if size is not None else next(iter(hw))))
    out = torch.empty((n, *target), dtype=torch.float32)
    for shape, members in groups.items():
        if members is None:
            for i in range(0, n, _CHUNK):
                out[i:i + _CHUNK] = _as_float_chunk(images[i:i + _CHUNK], target)
        else:
            for i in range(0, len(members), _CHUNK):
                part = members[i:i + _CHUNK]
                out[torch.tensor(part)] = _as_float_chunk(torch.stack([images[j] for j in part]), target)
    return out


def _channel_stats(images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Per-channel mean and population std of float images (N, C, H, W); float64 sums over chunks. O(N·C·H·W)."""
    c = images.shape[1]
    total = torch.zeros(c, dtype=torch.float64)
    total_sq = torch.zeros(c, dtype=torch.float64)
    for i in range(0, images.shape[0], _CHUNK):
        x = images[i:i + _CHUNK].to(torch.float64)
        total += x.sum(dim=(0, 2, 3))
        total_sq += x.square().sum(dim=(0, 2, 3))
    count = images.shape[0] * images.shape[2] * images.shape[3]
    mean = total / count
    std = (total_sq / count - mean.square()).clamp_min(0).sqrt()
    return tuple(mean.tolist()), tuple(std.tolist())


def _read_image(path: str) -> torch.Tensor:
    """One image file → uint8 (C, H, W); grey images keep C=1, everything else becomes RGB."""
    from PIL import Image

    try:
        with Image.open(path) as img:
            img = img.convert("L") if img.mode in ("1", "L", "LA", "I", "I;16") else img.convert("RGB")
            arr = np.asarray(img, dtype=np.uint8)
    except Exception as exc:  # PIL raises many types for broken files
        raise ValueError(f"cannot decode image {path}: {exc}") from exc
    t = torch.from_numpy(arr.copy())
    return t.unsqueeze(0) if t.dim() == 2 else t.permute(2, 0, 1).contiguous()


def _read_images(paths: Sequence[str], desc: str, progress: bool) -> list[torch.Tensor]:
    """Decode many files on a small thread pool (PIL releases the GIL while decoding), with a progress bar."""
    workers = max(1, min(8, os.cpu_count() or 1))
    with ThreadPoolExecutor(max_workers=workers) as pool:
        return list(tqdm(pool.map(_read_image, paths), total=len(paths), desc=desc, disable=not progress,
                         unit="img", leave=False))


def _gunzip_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp, gzip.open(src, "rb") as fin, open(tmp, "wb") as fout:
        shutil.copyfileobj(fin, fout, length=1 << 20)


def _copy_atomic(src: Path, dst: Path) -> None:
    with atomic_path(dst) as tmp:
        shutil.copyfile(src, tmp)


def _unpack_idx_gz(raw_dir: Path) -> None:
    """Unpack ``X.gz`` next to ``X`` for the four idx files when only the archive is there (torchvision reads ``X``)."""
    for base in _IDX_FILES:
        if not (raw_dir / base).is_file() and (raw_dir / f"{base}.gz").is_file():
            _gunzip_atomic(raw_dir / f"{base}.gz", raw_dir / base)


def _env_flag(name: str) -> bool | None:
    value = os.environ.get(name, "").strip().lower()
    if not value:
        return None
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"${name}={value!r} is not understood; use 1 or 0")


def _print_download(title: str, where: Path) -> None:
    print(f"dscore: downloading {title} with torchvision into {where} ...", flush=True)


# ----------------------------------------------------------------------------------------------------------------
# Readers (one per dataset). Signature: (split, root, download, progress) -> _Raw
# ----------------------------------------------------------------------------------------------------------------

def _mnist_like_raw(ds) -> _Raw:
    images = ds.data.unsqueeze(1).contiguous()              # uint8 (N, 1, 28, 28)
    return _Raw(images, ds.targets.long(), tuple(ds.classes))


def _read_fashion_mnist(split: str, root: Path, download: bool, progress: bool) -> _Raw:
    from torchvision.datasets import FashionMNIST

    train = split == "train"
    raw_dir = root / "FashionMNIST" / "raw"
    debian_dir = Path(os.environ.get(FASHION_MNIST_DEBIAN_DIR_ENV) or FASHION_MNIST_DEBIAN_DIR)
    reasons: list[str] = []

    # (1) torchvision's layout under root
    layout_failed = False
    if raw_dir.is_dir():
        try:
            _unpack_idx_gz(raw_dir)
            return _mnist_like_raw(FashionMNIST(str(root), train=train, download=False))
        except Exception as exc:
            layout_failed = True
            present = [b for b in _IDX_FILES if (raw_dir / b).is_file()]
            reasons.append(f"{raw_dir}: unusable ({type(exc).__name__}: {exc}); files present: "
                           f"{', '.join(present) or 'none'}")
    else:
        reasons.append(f"{raw_dir}: no such folder")

    # (2) Debian's dataset-fashion-mnist files, unpacked into (1)
    sources = {}
    for base in _IDX_FILES:
        for candidate in (debian_dir / f"{base}.gz", debian_dir / base):
            if candidate.is_file():
                sources[base] = candidate
                break
    if len(sources) == len(_IDX_FILES):
        try:
            for base, src in sources.items():
                # after a failed step (1) a raw file may be truncated or corrupt: replace them all
                if layout_failed or not (raw_dir / base).is_file():
                    (_gunzip_atomic if src.suffix == ".gz" else _copy_atomic)(src, raw_dir / base)
            return _mnist_like_raw(FashionMNIST(str(root), train=train, download=False))
        except Exception as exc:
            reasons.append(f"{debian_dir} (unpacked into {raw_dir}): {exc}")
    else:
        missing = [b for b in _IDX_FILES if b not in sources]
        reasons.append(f"{debian_dir}: missing {', '.join(m + '.gz' for m in missing)}")

    # (3) torchvision download, the documented last resort
    if download:
        _print_download("Fashion-MNIST", raw_dir)
        try:
            return _mnist_like_raw(FashionMNIST(str(root), train=train, download=True))
        except Exception as exc:
            reasons.append(f"download into {raw_dir} failed: {exc}")
    else:
        reasons.append(f"download not attempted (download=False or ${ALLOW_DOWNLOAD_ENV}=0)")

    looked = "\n".join(f"  - {r}" for r in reasons)
    raise DatasetNotFoundError(
        f"Fashion-MNIST ({split} split) not found. Looked at:\n{looked}\n"
        "Provide it in one of three ways:\n"
        f"  1. set $DSCORE_DATA (or pass root=) to a folder holding torchvision's layout "
        f"FashionMNIST/raw/{{train,t10k}}-{{images-idx3,labels-idx1}}-ubyte (root used: {root});\n"
        f"  2. apt-get install dataset-fashion-mnist (installs {FASHION_MNIST_DEBIAN_DIR}; "
        f"${FASHION_MNIST_DEBIAN_DIR_ENV} points elsewhere);\n"
        f"  3. allow the download (download=True or ${ALLOW_DOWNLOAD_ENV}=1) on a machine with internet access."
    )


def _not_found(title: str, split: str, looked_at: Sequence[Path], root: Path, exc: Exception | None,
               can_download: bool = True, extra: str = "") -> DatasetNotFoundError:
    missing = [p for p in looked_at if not p.exists()]
    if missing:
        where = "missing " + ", ".join(str(p) for p in missing[:8]) + (" ..." if len(missing) > 8 else "")
    else:
        where = "unusable files at " + ", ".join(str(p) for p in looked_at[:8])
    reason = f" ({type(exc).__name__}: {exc})" if exc is not None else ""
    how = f"put torchvision's layout under $DSCORE_DATA or pass root= (root used: {root})"
    if can_download:
        how += f", or pass download=True (or set ${ALLOW_DOWNLOAD_ENV}=1) to let torchvision download it"
    return DatasetNotFoundError(f"{title} ({split} split) not found: {where}{reason}. To provide it: {how}.{extra}")


def _torchvision_reader(title: str, expected: Callable[[Path, str], list[Path]],
                        build: Callable[[Path, str, bool], _Raw], prepare: Callable[[Path], None] | None = None):
    """A reader for a torchvision dataset class: check the expected files, then let torchvision read them."""
    def read(split: str, root: Path, download: bool, progress: bool) -> _Raw:
        paths = expected(root, split)
        if prepare is not None:
            prepare(root)
        present = all(p.exists() for p in paths)
        if not present:
            if not download:
                raise _not_found(title, split, paths, root, None)
            _print_download(title, paths[0].parent)
        try:
            return build(root, split, download)
        except (RuntimeError, OSError) as exc:
            raise _not_found(title, split, paths, root, exc) from exc
    return read


def _prepare_mnist(root: Path) -> None:
    raw_dir = root / "MNIST" / "raw"
    if raw_dir.is_dir():
        _unpack_idx_gz(raw_dir)


def _build_mnist(root: Path, split: str, download: bool) -> _Raw:
    from torchvision.datasets import MNIST

    return _mnist_like_raw(MNIST(str(root), train=split == "train", download=download))


def _mnist_paths(root: Path, split: str) -> list[Path]:
    return [root / "MNIST" / "raw" / b for b in _IDX_FILES]


def _cifar_builder(cls_name: str):
    def build(root: Path, split: str, download: bool) -> _Raw:
        import torchvision.datasets as tvd

        ds = getattr(tvd, cls_name)(str(root), train=split == "train", download=download)
        images = torch.from_numpy(np.ascontiguousarray(ds.data)).permute(0, 3, 1, 2).contiguous()  # HWC → CHW
        return _Raw(images, torch.as_tensor(ds.targets, dtype=torch.int64), tuple(ds.classes))
    return build


def _cifar_paths(folder: str, train_files: Sequence[str], test_files: Sequence[str], meta: str):
    def paths(root: Path, split: str) -> list[Path]:  # torchvision checks every file, whatever the split
        return [root / folder / f for f in [*train_files, *test_files, meta]]
    return paths


def _build_svhn(root: Path, split: str, download: bool) -> _Raw:
    from torchvision.datasets import SVHN

    ds = SVHN(str(root), split=split, download=download)
    images = torch.from_numpy(np.ascontiguousarray(ds.data))  # torchvision already gives (N, 3, 32, 32)
    return _Raw(images, torch.from_numpy(ds.labels.astype(np.int64)), tuple(str(d) for d in range(10)))


def _svhn_paths(root: Path, split: str) -> list[Path]:
    return [root / f"{split}_32x32.mat"]


def _folder_samples(directory: Path, classes: Sequence[str]) -> list[tuple[str, int]]:
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    return make_dataset(str(directory), {c: i for i, c in enumerate(classes)}, extensions=IMG_EXTENSIONS,
                        allow_empty=True)


def _read_tinyimagenet(split: str, root: Path, download: bool, progress: bool) -> _Raw:
    base = root / "tiny-imagenet-200"
    hint = (" Download http://cs231n.stanford.edu/tiny-imagenet-200.zip and unzip it under the root "
            "(torchvision has no downloader for it).")
    train_dir = base / "train"
    if not train_dir.is_dir():
        raise _not_found("TinyImageNet", split, [train_dir], root, None, can_download=False, extra=hint)
    wnids_file = base / "wnids.txt"
    if wnids_file.is_file():
        wnids = sorted({w.strip() for w in wnids_file.read_text().split() if w.strip()})
    else:
        from torchvision.datasets.folder import find_classes
        wnids = find_classes(str(train_dir))[0]
    names = dict.fromkeys(wnids)
    words_file = base / "words.txt"
    if words_file.is_file():
        for line in words_file.read_text().splitlines():
            wnid, _, words = line.partition("\t")
            if wnid in names:
                names[wnid] = words.split(",")[0].strip() or wnid
    short = [names[w] or w for w in wnids]
    dup = {n for n, k in Counter(short).items() if k > 1}
    classes = tuple(f"{n} ({w})" if n in dup else n for n, w in zip(short, wnids))
    index = {w: i for i, w in enumerate(wnids)}

    if split == "train":
        samples = _folder_samples(train_dir, wnids)
        if not samples:
            raise _not_found("TinyImageNet", split, [train_dir], root, None, can_download=False, extra=hint)
        paths = [p for p, _ in samples]
        labels = torch.tensor([y for _, y in samples], dtype=torch.int64)
    else:
        ann = base / "val" / "val_annotations.txt"
        if not ann.is_file():
            raise _not_found("TinyImageNet", split, [ann], root, None, can_download=False, extra=hint)
        paths, ys = [], []
        for line in ann.read_text().splitlines():
            parts = line.split("\t")
            if len(parts) < 2:
                continue
            if parts[1] not in index:
                raise ValueError(f"{ann}: class {parts[1]!r} of {parts[0]} is not one of the {len(wnids)} train classes")
            paths.append(str(base / "val" / "images" / parts[0]))
            ys.append(index[parts[1]])
        missing = [p for p in paths if not os.path.isfile(p)]
        if missing:
            raise _not_found("TinyImageNet", split, [Path(missing[0])], root, None, can_download=False,
                             extra=f" ({len(missing)} of {len(paths)} annotated val images are missing)")
        labels = torch.tensor(ys, dtype=torch.int64)
    images = _read_images(paths, f"tinyimagenet/{split}", progress)
    return _Raw(images, labels, classes)


def _read_imagefolder(split: str, root: Path, download: bool, progress: bool) -> _Raw:
    from torchvision.datasets.folder import find_classes

    split_dir = root / split
    if not split_dir.is_dir():
        raise _not_found("imagefolder", split, [split_dir], root, None, can_download=False,
                         extra=f" Expected {root}/<split>/<class>/<image files>.")
    train_dir = root / "train"
    classes_dir = train_dir if train_dir.is_dir() else split_dir
    try:
        classes = find_classes(str(classes_dir))[0]
    except FileNotFoundError as exc:
        raise _not_found("imagefolder", split, [classes_dir], root, exc, can_download=False) from exc
    if split_dir != classes_dir:
        extra = sorted(set(find_classes(str(split_dir))[0]) - set(classes)) if any(
            e.is_dir() for e in os.scandir(split_dir)) else []
        if extra:
            raise ValueError(f"{split_dir} has class folders that {classes_dir} lacks: {', '.join(extra[:10])}")
    samples = _folder_samples(split_dir, classes)
    if not samples:
        raise _not_found("imagefolder", split, [split_dir], root, None, can_download=False,
                         extra=" (no image files found)")
    images = _read_images([p for p, _ in samples], f"imagefolder/{split}", progress)
    labels = torch.tensor([y for _, y in samples], dtype=torch.int64)
    return _Raw(images, labels, tuple(classes))


def _read_digits(split: str, root: Path, download: bool, progress: bool) -> _Raw:
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    y = np.asarray(bunch.target, dtype=np.int64)
    train_idx, test_idx = train_test_split(np.arange(y.shape[0]), test_size=0.25, stratify=y, random_state=0)
    idx = np.sort(train_idx if split == "train" else test_idx)
    images = torch.from_numpy(np.asarray(bunch.images, dtype=np.float32)[idx] / 16.0).unsqueeze(1)  # 17 grey levels
    return _Raw(images.contiguous(), torch.from_numpy(y[idx]), tuple(str(d) for d in range(10)))


class _Spec(NamedTuple):
    reader: Callable[[str, Path, bool, bool], _Raw]
    downloadable: bool
    needs_root: bool = True


_REGISTRY: dict[str, _Spec] = {
    "fashion_mnist": _Spec(_read_fashion_mnist, True),
    "mnist": _Spec(_torchvision_reader("MNIST", _mnist_paths, _build_mnist, _prepare_mnist), True),
    "cifar10": _Spec(_torchvision_reader(
        "CIFAR-10", _cifar_paths("cifar-10-batches-py", [f"data_batch_{i}" for i in range(1, 6)], ["test_batch"],
                                 "batches.meta"), _cifar_builder("CIFAR10")), True),
    "cifar100": _Spec(_torchvision_reader(
        "CIFAR-100", _cifar_paths("cifar-100-python", ["train"], ["test"], "meta"), _cifar_builder("CIFAR100")), True),
    "svhn": _Spec(_torchvision_reader("SVHN", _svhn_paths, _build_svhn), True),
    "tinyimagenet": _Spec(_read_tinyimagenet, False),
    "imagefolder": _Spec(_read_imagefolder, False),
    "digits": _Spec(_read_digits, False, needs_root=False),
}


def list_datasets() -> tuple[str, ...]:
    """Names accepted by :func:`load_dataset`."""
    return tuple(_REGISTRY)


# ----------------------------------------------------------------------------------------------------------------
# Loading with memoisation
# ----------------------------------------------------------------------------------------------------------------

_Key = tuple[str, str, str, "tuple[int, int] | None"]
_MEMO: "OrderedDict[_Key, ImageDataset]" = OrderedDict()
_STATS: dict[tuple[str, str, "tuple[int, int] | None"], tuple[tuple[float, ...], tuple[float, ...]]] = {}
_LOCK = threading.RLock()


def clear_cache() -> None:
    """Forget every memoised dataset and train-split statistic (e.g. after files on disk changed)."""
    with _LOCK:
        _MEMO.clear()
        _STATS.clear()


def _check_size(image_size) -> tuple[int, int] | None:
    if image_size is None:
        return None
    if isinstance(image_size, (tuple, list)):
        if len(image_size) != 2:
            raise ValueError(f"image_size={image_size!r} must be an int or a pair (height, width)")
        return (check_int("image_size[0]", image_size[0], low=1), check_int("image_size[1]", image_size[1], low=1))
    side = check_int("image_size", image_size, low=1)
    return (side, side)


def _resolve_download(name: str, download) -> bool:
    if download is not None and not isinstance(download, bool):
        raise ValueError(f"download={download!r} must be True, False or None")
    spec = _REGISTRY[name]
    if download and not spec.downloadable:
        allowed = ", ".join(n for n, s in _REGISTRY.items() if s.downloadable)
        raise ValueError(f"download=True is not supported for {name!r}; datasets torchvision can download: {allowed}")
    if download is not None:
        return download
    env = _env_flag(ALLOW_DOWNLOAD_ENV)
    if not spec.downloadable:
        return False
    if env is not None:
        return env
    return name == "fashion_mnist"


def load_dataset(name: str, split: str = "train", root: str | os.PathLike | None = None, *,
                 download: bool | None = None, image_size: int | tuple[int, int] | None = None,
                 progress: bool = True) -> ImageDataset:
    """Load a dataset split into memory (memoised; the same call returns the same object).

    Args:
        name: one of :func:`list_datasets`.
        split: ``"train"`` or ``"test"`` (TinyImageNet's official val set is ``"test"``).
        root: data folder; default ``dscore.paths.data_root()`` (``$DSCORE_DATA``). Required for
            ``"imagefolder"`` (the folder holding ``<split>/<class>/...``); ignored by ``"digits"``.
        download: ``None`` = the dataset's default (Fashion-MNIST tries torchvision's download as a
            last resort, others do not; ``$DSCORE_ALLOW_DOWNLOAD`` = 1/0 overrides), else forced on/off.
        image_size: resize every image to this side (or (H, W)) with bilinear interpolation
            (antialiased when shrinking); also lets folder datasets mix image sizes.
        progress: show a progress bar while decoding image folders.

    Returns an :class:`ImageDataset` with float32 images (N, C, H, W) in [0, 1]. Cost: one pass over
    the files plus O(N·C·H·W) conversion; the test split also needs the train split's statistics
    (taken from the memo when the train split is loaded, else computed once and remembered).

    Raises ``ValueError`` for an unknown name/split/argument, :class:`DatasetNotFoundError` when the
    files are not there (the message says where it looked and how to provide them).
    """
    check_choice("name", name, list_datasets())
    check_choice("split", split, SPLITS)
    if not isinstance(progress, bool):
        raise ValueError(f"progress={progress!r} must be True or False")
    size = _check_size(image_size)
    spec = _REGISTRY[name]
    allow_download = _resolve_download(name, download)
    if not spec.needs_root:
        root_path = Path(".")
    elif root is None:
        if name == "imagefolder":
            raise ValueError("load_dataset('imagefolder', ...) needs root=PATH, the folder holding <split>/<class>/*")
        root_path = data_root()
    else:
        root_path = Path(root).expanduser()
    root_path = root_path.absolute()
    root_key = str(root_path) if spec.needs_root else ""

    key = (name, split, root_key, size)
    with _LOCK:
        if key in _MEMO:
            _MEMO.move_to_end(key)
            return _MEMO[key]

    raw = spec.reader(split, root_path, allow_download, progress)
    labels, classes = raw.labels, raw.classes
    images = _to_float_images(raw.images, size)
    del raw  # drop the uint8 copy before the statistics pass
    stats_key = (name, root_key, size)
    if split == "train":
        stats = _channel_stats(images)
        with _LOCK:
            _STATS[stats_key] = stats
    else:
        stats = _train_stats(name, root_path, root_key, size, allow_download, progress, images)
    ds = ImageDataset(name, split, images, labels, classes, stats[0], stats[1], torch.arange(len(labels)))
    with _LOCK:
        _MEMO[key] = ds
        _MEMO.move_to_end(key)
        while len(_MEMO) > MEMO_SIZE:
            _MEMO.popitem(last=False)
    return ds


def _train_stats(name: str, root_path: Path, root_key: str, size, allow_download: bool, progress: bool,
                 split_images: torch.Tensor) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Mean/std of the train split: from the stats memo, the dataset memo, or one read of the train files."""
    stats_key = (name, root_key, size)
    with _LOCK:
        if stats_key in _STATS:
            return _STATS[stats_key]
        memo = _MEMO.get((name, "train", root_key, size))
    if memo is not None:
        stats = (memo.mean, memo.std)
    else:
        try:
            raw = _REGISTRY[name].reader("train", root_path, allow_download, progress)
        except DatasetNotFoundError as exc:
            if name != "imagefolder":
                raise DatasetNotFoundError(f"the test split takes its mean/std from the train split, which is "
                                           f"missing: {exc}") from exc
            warnings.warn(f"{root_path} has no train split; mean/std of imagefolder come from the split itself",
                          stacklevel=3)
            return _channel_stats(split_images)
        stats = _channel_stats(_to_float_images(raw.images, size))
    with _LOCK:
        _STATS[stats_key] = stats
    return stats


def resolve_dataset(dataset, image_size=None, root=None, *, split: str = "train") -> "ImageDataset":
    """``dataset`` itself if it is an :class:`ImageDataset` (checking ``image_size``), else the ``split``
    of the registered dataset of that name loaded with :func:`load_dataset`."""
    if isinstance(dataset, ImageDataset):
        if image_size is not None and dataset.image_size != image_size:
            raise ValueError(f"image_size={image_size} conflicts with the given dataset's size {dataset.image_size}")
        return dataset
    if not isinstance(dataset, str):
        raise ValueError(f"dataset must be a dataset name or an ImageDataset, got {type(dataset).__name__}")
    return load_dataset(dataset, split, root, image_size=image_size, progress=False)
