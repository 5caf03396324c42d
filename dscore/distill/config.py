"""Configuration of a distillation run: :class:`DistillConfig`, the papers' defaults
(:func:`default_config`) and named presets (:func:`preset`).

Loop vocabulary (the DC and IDC codes use "outer"/"inner" for different loops; here they mean):

==================  ==========================================================================
``iterations``      number of fresh random networks (DC/DSA "Iteration" 1000, DM 20 000; IDC,
                    DREAM and DREAM+ "niter" 2000 — their reproduce scripts use 2000 for all).
``outer_loops``     synthetic-image update steps per network (DC/DSA "outer_loop" 1/10/50 by IPC;
                    IDC "inner_loop" 100; DM 1).
``inner_loops``     network-training rounds after each image step (DC/DSA "inner_loop": epochs
                    over the synthetic set, 1/50/10 by IPC; IDC "net_epoch": rounds of ``n_data``
                    real samples, 1; DM 0 — its networks stay frozen).
==================  ==========================================================================

Like DC's code, no network training follows the last image step of a network (it would be
thrown away).

The plug-in pieces of DREAM/DREAM+ are independent fields: ``sampler`` ("random" |
"representative"), ``init`` ("real" | "noise" | "kmeans" | "mix" | "kmeans_mix") and ``objective``
("gradient" | "embedding" | "bidirectional"), plus ``pretrain_real_epochs`` (DREAM+ trains every
new network one epoch on real data first). :func:`preset` composes them by name, e.g.
``preset("dm+rm", "cifar10", 10)`` is DM with the representative sampler.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping, Sequence

from ..utils import check_choice, check_float, check_int
from .losses import GRAD_METRICS

__all__ = ["DistillConfig", "default_config", "preset", "preset_components", "METHODS", "SAMPLERS", "INITS",
           "OBJECTIVES", "SIAMESE_AUGMENTS", "NET_AUGMENTS", "EMBED_METRICS", "PRESET_BASES", "PRESET_COMPONENTS",
           "AUTHORS_STATS", "authors_stats"]

METHODS = ("dc", "dsa", "dm", "idc")
SAMPLERS = ("random", "representative", "centre", "boundary")
INITS = ("real", "noise", "kmeans", "mix", "kmeans_mix")
OBJECTIVES = ("gradient", "embedding", "bidirectional")
# shared real/synthetic augmentation while matching: "idc" = the authors' colour → crop → cutout,
# "idc_multi" = colour → one of crop/scale/rotate → cutout (this project's earlier choice)
SIAMESE_AUGMENTS = ("none", "dsa", "idc", "idc_multi")
# per-sample, for network training; "idc_net" = colour + crop (the authors' IDC/DREAM network training)
NET_AUGMENTS = ("none", "dsa", "idc", "idc_noflip", "idc_cutout", "idc_net", "crop_flip")
EMBED_METRICS = ("dc", "mse", "l1")                 # form of the embedding term (see DistillConfig)
_MIX_INITS = ("mix", "kmeans_mix")                  # need IDC's multi-formation

# DC's code: (outer_loop, inner_loop) by images per class.
_DC_LOOPS = {1: (1, 1), 10: (10, 50), 20: (20, 25), 30: (30, 20), 40: (40, 15), 50: (50, 10)}
_MNIST_LIKE = ("mnist", "fashion_mnist", "digits")

#: Normalisation constants of the authors' codes (DC/DSA/DM ``utils.get_dataset``; IDC/DREAM ``data.py``)
#: where they differ from the train-split statistics that :mod:`dscore.data` computes. CIFAR-10's std
#: (0.2023, 0.1994, 0.2010) is a long-standing published value, not the population std of the train
#: split (≈ 0.247, 0.243, 0.262). Pass them as ``mean``/``std`` to reproduce the papers' setting.
AUTHORS_STATS: dict[str, tuple[tuple[float, ...], tuple[float, ...]]] = {
    "cifar10": ((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    "cifar100": ((0.5071, 0.4866, 0.4409), (0.2673, 0.2564, 0.2762)),   # DC's; IDC/DREAM reuse CIFAR-10's
    "svhn": ((0.4377, 0.4438, 0.4728), (0.1980, 0.2010, 0.1970)),
    "mnist": ((0.1307,), (0.3081,)),
    "fashion_mnist": ((0.2861,), (0.3530,)),
    "tinyimagenet": ((0.485, 0.456, 0.406), (0.229, 0.224, 0.225)),
}


def authors_stats(dataset_name: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """(mean, std) the authors' DC/DSA/DM code normalises ``dataset_name`` with (:data:`AUTHORS_STATS`);
    ValueError for a dataset they do not cover."""
    check_choice("dataset_name", dataset_name, AUTHORS_STATS)
    return AUTHORS_STATS[dataset_name]


@dataclass(frozen=True)
class DistillConfig:
    """Every setting of one distillation run (see the module docstring for the loop names).

    Field groups:

    * what: ``method`` (dc | dsa | dm | idc), ``ipc`` stored images per class, ``factor`` (IDC
      multi-formation f; each stored image decodes into f² training images; 1 for dc/dsa/dm);
    * plug-ins: ``sampler``, ``init``, ``objective``; ``num_clusters`` (K of the representative
      sampler; None = the authors' convention ``batch_real // subsample``, so the real batch of
      K·subsample samples stays ``batch_real``), ``subsample`` (samples per sub-cluster),
      ``interval`` (re-cluster every this many image steps; for DM, iterations), ``region_fraction``
      (the share of the class nearest to / farthest from its mean embedding that the ``"centre"`` /
      ``"boundary"`` samplers draw from, DREAM+ Fig. 2a), ``warm_start``
      (False = a fresh k-means at every re-clustering, as the authors; True = start from the
      previous centroids) and ``kmeans_iters`` of the re-clustering; ``grad_metric`` ("dc" =
      layer-wise 1 − cos, "mse", "l1"); ``embed_metric`` (form of the embedding term of the
      bidirectional and embedding objectives; None = the gradient metric for "mse"/"l1", and squared
      L2 ("mse") of the mean embeddings for "dc" — see below) and ``embed_weight`` (its weight);
      ``pretrain_real_epochs`` (epochs of real-data training of every new network, and of the
      network that embeds the data for k-means init) and ``pretrain_steps`` (None = those whole epochs; an
      integer caps them at that many SGD steps, to keep pretraining at the paper's share of a network's training
      when the inner loop is much shorter than theirs: one CIFAR-10 epoch is about a quarter of their inner loop);
    * loops: ``iterations``, ``outer_loops``, ``inner_loops``, ``n_data`` (IDC: real samples per
      network-training round);
    * synthetic images: ``lr_img``, ``momentum_img``; ``batch_syn`` caps the decoded synthetic images
      per class and step (None = all; IDC 128); ``clamp`` (clip pixels to [0, 1] at every outer
      iteration and at the end; None = True for the IDC family, False for dc/dsa/dm, whose authors
      never clamp — their images may leave [0, 1]);
    * networks: ``arch`` and ``arch_kwargs`` for :func:`dscore.models.create_model`, ``lr_net``,
      ``momentum_net``, ``weight_decay_net``, ``net_batch`` (mini-batch of network training),
      ``net_augment`` (per-sample augmentation of network training), ``cutmix_p`` (CutMix
      probability of network training on real data);
    * matching: ``batch_real`` (real images per class and step), ``siamese_augment`` (one shared
      draw for the real and synthetic batch: "none" | "dsa" | "idc");
    * bookkeeping: ``seed``, ``device`` (None = CUDA if available), ``amp`` (bf16 autocast on CUDA; off by
      default because distances between nearly matched gradients drown in bf16 round-off),
      ``diag_every`` (gradient/feature difference and batch MMD every k image steps; 0 = off),
      ``snapshot_every`` (keep the images every k iterations; 0 = off), ``checkpoint_every``
      (iterations between checkpoints when a path is given).

    Embedding term with the "dc" metric. DREAM+'s 1:1 weighting of "embedding distance + gradient
    distance" works for IDC's summed mse/l1 metrics, whose two terms have comparable gradients. With
    DC's layer-wise 1 − cos, the matching "1 − cos of the two mean embeddings" has a gradient on the
    synthetic images about 2000× smaller than the gradient term's (0.004 vs 8.5 on ConvNet-3, one
    class, 64 real / 10 synthetic 28×28 images), so it would change nothing. DC/DSA therefore default
    to the squared L2 distance of the mean embeddings (DM's distance) with ``embed_weight`` 1, whose
    gradient is about 0.4–0.5× the gradient term's on that reference batch; ``embed_metric="dc"``
    restores the 1 − cos form. The authors released bidirectional matching only for IDC.

    Construction validates every field (ValueError naming the value and what is allowed); the
    data-dependent checks are in :meth:`check_data`.
    """

    method: str = "idc"
    ipc: int = 10
    factor: int = 2
    sampler: str = "random"
    init: str = "mix"
    objective: str = "gradient"
    num_clusters: int | None = None
    subsample: int = 1
    interval: int = 10
    region_fraction: float = 0.25
    warm_start: bool = False
    kmeans_iters: int = 100
    embed_weight: float = 1.0
    grad_metric: str = "mse"
    embed_metric: str | None = None
    pretrain_real_epochs: int = 0
    pretrain_steps: int | None = None
    iterations: int = 2000
    outer_loops: int = 100
    inner_loops: int = 1
    n_data: int = 500
    lr_img: float = 5e-3
    momentum_img: float = 0.5
    batch_syn: int | None = 128
    clamp: bool | None = None
    arch: str = "convnet3"
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    lr_net: float = 0.01
    momentum_net: float = 0.9
    weight_decay_net: float = 5e-4
    net_batch: int = 64
    net_augment: str = "idc_net"
    cutmix_p: float = 0.5
    batch_real: int = 64
    siamese_augment: str = "idc"
    seed: int = 0
    device: str | None = None
    amp: bool = False
    diag_every: int = 0
    snapshot_every: int = 0
    checkpoint_every: int = 10

    def __post_init__(self):
        check_choice("method", self.method, METHODS)
        check_choice("sampler", self.sampler, SAMPLERS)
        check_choice("init", self.init, INITS)
        check_choice("objective", self.objective, OBJECTIVES)
        check_choice("grad_metric", self.grad_metric, GRAD_METRICS)
        if self.embed_metric is not None:
            check_choice("embed_metric", self.embed_metric, EMBED_METRICS)
        if self.clamp is not None and not isinstance(self.clamp, bool):
            raise ValueError(f"clamp={self.clamp!r} must be True, False or None (None = True for method='idc', "
                             "False for dc/dsa/dm)")
        check_choice("siamese_augment", self.siamese_augment, SIAMESE_AUGMENTS)
        check_choice("net_augment", self.net_augment, NET_AUGMENTS)
        check_int("ipc", self.ipc, low=1)
        check_int("factor", self.factor, low=1)
        if self.method != "idc" and self.factor != 1:
            raise ValueError(f"factor={self.factor} is only used by method='idc'; allowed for "
                             f"method={self.method!r}: factor=1")
        if self.init in _MIX_INITS and self.method != "idc":
            allowed = [i for i in INITS if i not in _MIX_INITS]
            raise ValueError(f"init={self.init!r} needs IDC's multi-formation (method='idc'); allowed for "
                             f"method={self.method!r}: {', '.join(map(repr, allowed))}")
        if self.num_clusters is not None:
            check_int("num_clusters", self.num_clusters, low=1)
        check_int("subsample", self.subsample, low=1)
        check_int("interval", self.interval, low=1)
        check_float("region_fraction", self.region_fraction, low=0.0, high=1.0, low_open=True)
        if not isinstance(self.warm_start, bool) or not isinstance(self.amp, bool):
            raise ValueError(f"warm_start={self.warm_start!r} and amp={self.amp!r} must be True or False")
        check_int("kmeans_iters", self.kmeans_iters, low=0)
        check_float("embed_weight", self.embed_weight, low=0.0)
        check_int("pretrain_real_epochs", self.pretrain_real_epochs, low=0)
        if self.pretrain_steps is not None:
            check_int("pretrain_steps", self.pretrain_steps, low=1)
        check_int("iterations", self.iterations, low=1)
        check_int("outer_loops", self.outer_loops, low=1)
        check_int("inner_loops", self.inner_loops, low=0)
        check_int("n_data", self.n_data, low=1)
        check_float("lr_img", self.lr_img, low=0.0, low_open=True)
        check_float("momentum_img", self.momentum_img, low=0.0, high=1.0, high_open=True)
        if self.batch_syn is not None:
            check_int("batch_syn", self.batch_syn, low=1)
        if not isinstance(self.arch, str) or not self.arch:
            raise ValueError(f"arch={self.arch!r} must be a model name of dscore.models.list_models()")
        if not isinstance(self.arch_kwargs, Mapping):
            raise ValueError(f"arch_kwargs={self.arch_kwargs!r} must be a mapping of model keyword arguments")
        object.__setattr__(self, "arch_kwargs", dict(self.arch_kwargs))
        check_float("lr_net", self.lr_net, low=0.0, low_open=True)
        check_float("momentum_net", self.momentum_net, low=0.0, high=1.0, high_open=True)
        check_float("weight_decay_net", self.weight_decay_net, low=0.0)
        check_int("net_batch", self.net_batch, low=1)
        check_float("cutmix_p", self.cutmix_p, low=0.0, high=1.0)
        check_int("batch_real", self.batch_real, low=1)
        if self.sampler == "representative" and self.num_clusters is None and self.subsample > self.batch_real:
            raise ValueError(f"subsample={self.subsample} exceeds batch_real={self.batch_real}: the representative "
                             f"sampler uses batch_real // subsample sub-clusters; allowed: subsample <= batch_real, "
                             f"or set num_clusters")
        check_int("seed", self.seed, low=0)
        if self.device is not None and not isinstance(self.device, str):
            object.__setattr__(self, "device", str(self.device))
        check_int("diag_every", self.diag_every, low=0)
        check_int("snapshot_every", self.snapshot_every, low=0)
        check_int("checkpoint_every", self.checkpoint_every, low=1)

    # ------------------------------------------------------------------ derived values and checks

    @property
    def clusters(self) -> int:
        """K of the representative sampler: ``num_clusters`` or, when None, the authors' convention
        ``batch_real // subsample`` (at least 1), so the real batch (K·subsample) stays ``batch_real``."""
        if self.num_clusters is not None:
            return self.num_clusters
        return max(1, self.batch_real // self.subsample)

    @property
    def embedding_metric(self) -> str:
        """Metric of the embedding term: ``embed_metric``, or when None the gradient metric for
        "mse"/"l1" and squared L2 ("mse") for "dc" (see the class docstring)."""
        if self.embed_metric is not None:
            return self.embed_metric
        return "mse" if self.grad_metric == "dc" else self.grad_metric

    @property
    def clamp_images(self) -> bool:
        """Whether pixels are clipped to [0, 1]: ``clamp``, or when None True only for method 'idc'."""
        return (self.method == "idc") if self.clamp is None else self.clamp

    @property
    def images_per_class_decoded(self) -> int:
        """Training images per class after IDC's decode: ipc·f²."""
        return self.ipc * self.factor * self.factor

    def check_arch(self) -> None:
        """Unknown architecture or keyword → ValueError (no network is built)."""
        from ..models import model_kwargs

        allowed = model_kwargs(self.arch)          # raises for an unknown name
        unknown = sorted(set(self.arch_kwargs) - set(allowed))
        if unknown:
            raise ValueError(f"arch_kwargs {unknown} are not accepted by model {self.arch!r}; "
                             f"allowed: {', '.join(allowed) or 'none'}")

    def check_data(self, class_sizes: Sequence[int]) -> None:
        """Checks that need the data: every class must hold the images the config asks for.

        ``class_sizes``: number of real images of each class. Raises ValueError naming the value,
        the smallest class and its size."""
        sizes = [int(s) for s in class_sizes]
        if not sizes:
            raise ValueError("the training set has no classes")
        smallest = min(sizes)
        which = sizes.index(smallest)
        if smallest == 0:
            raise ValueError(f"class {which} has no training images; every class in range(num_classes) needs some")
        if self.ipc > smallest:
            raise ValueError(f"ipc={self.ipc} exceeds the smallest class (class {which}: {smallest} images); "
                             f"allowed: 1 <= ipc <= {smallest}")
        if self.init in _MIX_INITS and self.images_per_class_decoded > smallest:
            raise ValueError(f"init={self.init!r} needs ipc·factor² = {self.ipc}·{self.factor}² = "
                             f"{self.images_per_class_decoded} real images per class but class {which} has "
                             f"{smallest}; lower ipc or factor, or use init='real'")
        if self.sampler == "representative":
            if self.clusters > smallest:
                raise ValueError(f"num_clusters={self.clusters} exceeds the smallest class (class {which}: "
                                 f"{smallest} images); allowed: num_clusters <= {smallest}")
            if self.subsample > smallest:
                raise ValueError(f"subsample={self.subsample} exceeds the smallest class (class {which}: "
                                 f"{smallest} images); allowed: subsample <= {smallest}")

    def replace(self, **overrides) -> "DistillConfig":
        """A validated copy with some fields changed; unknown names raise ValueError."""
        _check_fields(overrides)
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict[str, Any]:
        """Plain-JSON form (e.g. a cache key)."""
        return dataclasses.asdict(self)


def _check_fields(overrides: Mapping[str, Any]) -> None:
    names = [f.name for f in dataclasses.fields(DistillConfig)]
    unknown = sorted(set(overrides) - set(names))
    if unknown:
        raise ValueError(f"unknown DistillConfig field(s) {unknown}; allowed: {', '.join(names)}")


def _dc_loops(ipc: int) -> tuple[int, int]:
    """DC's (outer_loop, inner_loop) for ``ipc``; other IPCs take the nearest tabulated one (ties lower)."""
    nearest = min(_DC_LOOPS, key=lambda k: (abs(k - ipc), k))
    return _DC_LOOPS[nearest]


def default_config(method: str, dataset_name: str, ipc: int, **overrides) -> DistillConfig:
    """The papers' hyper-parameters for ``method`` on ``dataset_name`` at ``ipc``, then ``overrides``.

    * dc / dsa: ``outer_loops``/``inner_loops`` by IPC (1→1/1, 10→10/50, 20→20/25, 30→30/20,
      40→40/15, 50→50/10; other IPCs take the nearest), 1000 iterations, lr_img 0.1, momentum 0.5,
      lr_net 0.01 (plain SGD), batch_real 256, net_batch 256, DC's 1 − cos metric; DSA adds the
      Siamese DSA augmentation while matching and per-sample DSA while training the network. Init
      as the authors' README commands: DC from noise (their default ``--init noise``; Gaussian in
      the normalised space, as their ``torch.randn``), DSA from real images (``--init real``).
      No clamping (the authors never clamp).
    * dm: 20 000 iterations of one image step, lr_img 1.0, momentum 0.5, batch_real 256, embedding
      objective (squared L2 of mean embeddings), Siamese DSA, frozen networks, init from real
      images (README ``--init real``), no clamping.
    * idc: factor 2, "mix" init, 2000 iterations × 100 image steps, lr_img 5e-3·ipc/10 (1e-4·ipc/10
      for MNIST-like data, ×(28/32)² for Fashion-MNIST; TinyImageNet 5e-3, 1e-6 at IPC 50, times
      ipc/10·(64/32)² = ×4·ipc/10 — the authors' ``tune_lr_img`` scales by (size/32)²), momentum
      0.5, conv-weight gradient matching with "mse" (l1 for MNIST/Fashion/digits), batch_real 64,
      batch_syn 128, Siamese IDC DiffAug colour → crop → cutout; network training on ``n_data``
      real samples per image step (500; 2000 on CIFAR-10 and CIFAR-100, 1000 on TinyImageNet, as
      the authors' reproduce scripts), batch 64 (IDC's ``batch_real``), SGD lr 0.01 momentum 0.9
      wd 5e-4, per-sample colour + crop ("idc_net") and CutMix p 0.5; pixels clamped to [0, 1].

    dc/dsa/dm optimise the images in the normalised space of the paper codes (see
    :mod:`dscore.distill.engine`), so their learning rates are the papers'. Unknown method or
    dataset, or an unknown override → ValueError.
    """
    from ..data import list_datasets

    check_choice("method", method, METHODS)
    check_choice("dataset_name", dataset_name, list_datasets())
    ipc = check_int("ipc", ipc, low=1)
    _check_fields(overrides)
    mnist_like = dataset_name in _MNIST_LIKE
    if method in ("dc", "dsa"):
        outer, inner = _dc_loops(ipc)
        base = dict(factor=1, init="noise" if method == "dc" else "real", objective="gradient",
                    grad_metric="dc", iterations=1000,
                    outer_loops=outer, inner_loops=inner, lr_img=0.1, momentum_img=0.5, batch_syn=None,
                    lr_net=0.01, momentum_net=0.0, weight_decay_net=0.0, net_batch=256,
                    net_augment="dsa" if method == "dsa" else "none", cutmix_p=0.0, batch_real=256,
                    siamese_augment="dsa" if method == "dsa" else "none")
    elif method == "dm":
        base = dict(factor=1, init="real", objective="embedding", grad_metric="mse", iterations=20000,
                    outer_loops=1, inner_loops=0, lr_img=1.0, momentum_img=0.5, batch_syn=None,
                    lr_net=0.01, momentum_net=0.0, weight_decay_net=0.0, net_batch=256, net_augment="none",
                    cutmix_p=0.0, batch_real=256, siamese_augment="dsa")
    else:
        lr_img = (1e-4 if mnist_like else 5e-3) * ipc / 10
        if dataset_name == "fashion_mnist":
            lr_img *= (28 / 32) ** 2
        if dataset_name == "tinyimagenet":
            lr_img = (1e-6 if ipc == 50 else 5e-3) * ipc / 10 * (64 / 32) ** 2
        n_data = {"cifar10": 2000, "cifar100": 2000, "tinyimagenet": 1000}.get(dataset_name, 500)
        base = dict(factor=2, init="mix", objective="gradient", grad_metric="l1" if mnist_like else "mse",
                    iterations=2000, outer_loops=100, inner_loops=1,
                    n_data=n_data, lr_img=lr_img, momentum_img=0.5,
                    batch_syn=128, lr_net=0.01, momentum_net=0.9, weight_decay_net=5e-4, net_batch=64,
                    net_augment="idc_net", cutmix_p=0.5, batch_real=64, siamese_augment="idc")
    arch = "convnet4" if dataset_name == "tinyimagenet" else "convnet3"
    base.update(method=method, ipc=ipc, arch=arch)
    base.update(overrides)
    return DistillConfig(**base)


PRESET_BASES = ("dc", "dsa", "dm", "idc", "dream", "dreamplus")
PRESET_COMPONENTS = {
    "rm": "representative matching: sampler='representative' (K = batch_real // subsample)",
    "init": "cluster-centre init: init='kmeans' ('kmeans_mix' for idc)",
    "bm": "bidirectional matching: objective='bidirectional'",
    "pt": "pretrain_real_epochs=1 for every new network",
    "feat": "feature matching: objective='embedding', embed_metric='mse' (IDC's match='feat' on the last block)",
    "centre": "matching on the class centre only: sampler='centre' (DREAM+ Fig. 2a)",
    "boundary": "matching on the class boundary only: sampler='boundary' (DREAM+ Fig. 2a)",
    "dream": "rm + init",
    "dreamplus": "rm + init + bm + pt",
}
_EXPAND = {"dream": ("rm", "init"), "dreamplus": ("rm", "init", "bm", "pt")}


def preset_components(name: str) -> tuple[str, tuple[str, ...]]:
    """Parse a preset name into (method, components): ``"dreamplus"`` → ("idc", (rm, init, bm, pt)),
    ``"dm+rm"`` → ("dm", ("rm",)). Unknown parts raise ValueError listing what is allowed."""
    if not isinstance(name, str) or not name:
        raise ValueError(f"preset name={name!r} must be a string like 'dreamplus' or 'dm+rm'")
    parts = name.lower().split("+")
    base = parts[0]
    check_choice("preset base", base, PRESET_BASES)
    comps: list[str] = []
    if base in _EXPAND:
        comps += _EXPAND[base]
        base = "idc"
    for part in parts[1:]:
        check_choice("preset component", part, PRESET_COMPONENTS)
        comps += _EXPAND.get(part, (part,))
    return base, tuple(dict.fromkeys(comps))


def preset(name: str, dataset_name: str = "cifar10", ipc: int = 10, **overrides) -> DistillConfig:
    """A named configuration: :func:`default_config` of the method plus the DREAM components.

    Names: ``"dc"``, ``"dsa"``, ``"dm"``, ``"idc"``; ``"dream"`` = IDC + representative sampler
    (K = batch_real // subsample, batch_real = 128) + k-means init; ``"dreamplus"`` = DREAM +
    bidirectional matching + one epoch of real-data training per network. For IDC-based presets
    with ``rm``, the real-data network training (the pretraining epoch and every ``n_data`` round)
    uses batch ``batch_real`` too (``net_batch`` = 128), as the authors' code trains the network
    through its real loader of batch ``batch_real``; TinyImageNet keeps batch_real 64 (their reproduce
    script). IDC, DREAM and DREAM+ get the same iteration count (2000; the authors' reproduce
    script uses niter 2000 for all), so their comparisons are at equal cost. Components can be
    appended with ``+``: ``rm`` (representative sampler), ``init`` (k-means init), ``bm``
    (bidirectional), ``pt`` (pretraining), ``feat`` (feature matching: IDC's ``match='feat'``, the summed
    squared difference of the class-mean last-block features, which on ConvNet-3 is the squared L2 of the mean
    embeddings), ``dream``, ``dreamplus`` — e.g. ``"dm+rm"``, ``"idc+feat"`` (DREAM+ Fig. 4b's baseline),
    ``"dsa+rm+bm"``, ``"idc+init"`` (the RM/Init/BM ablations). ``overrides`` are applied last.
    """
    method, comps = preset_components(name)
    fields: dict[str, Any] = {}
    if "rm" in comps:
        fields["sampler"] = "representative"
        if method == "idc":
            real = 64 if dataset_name == "tinyimagenet" else 128      # DREAM's real batch
            fields["batch_real"] = real
            # the authors train the network through the same real loader (batch batch_real)
            fields["net_batch"] = overrides.get("batch_real", real)
    for region in ("centre", "boundary"):
        if region in comps:
            if "rm" in comps or ("centre" in comps and "boundary" in comps):
                raise ValueError(f"preset {name!r} names more than one real-batch sampler; allowed: one of rm, "
                                 "centre, boundary")
            fields["sampler"] = region
    if "init" in comps:
        fields["init"] = "kmeans_mix" if method == "idc" else "kmeans"
    if "feat" in comps:
        if method == "dm" or "bm" in comps:
            raise ValueError(f"preset {name!r}: 'feat' replaces the gradient objective of dc, dsa or idc and cannot "
                             "be combined with 'bm' (bidirectional matching has its own embedding term) or with dm "
                             "(already distribution matching)")
        fields["objective"] = "embedding"
        fields["embed_metric"] = "mse"
    if "bm" in comps:
        fields["objective"] = "bidirectional"
    if "pt" in comps:
        fields["pretrain_real_epochs"] = 1
    _check_fields(overrides)
    fields.update(overrides)
    return default_config(method, dataset_name, ipc, **fields)
