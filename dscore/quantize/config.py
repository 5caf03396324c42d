"""Typed settings of the DQ / ADQ pipeline, each checked once when it is made.

Every stage of :mod:`dscore.quantize.pipeline` takes one frozen config instead of loose keyword arguments:

=====================  ====================================================================  ======================
config                 what it fixes                                                         used by
=====================  ====================================================================  ======================
:class:`ExtractorConfig`  the feature network ``f``: architecture, training, seed, head       ``feature_extractor``
:class:`BinConfig`        DQ's bins: how many, on which feature, the GraphCut λ               ``dataset_bins``
:class:`HeadConfig`       the contrastive head behind DS: training, size, τ, seed             ``contrastive_head``
:class:`ScoreConfig`      ADQ's bin scores: RS patch size, DS negatives, and the head          ``bin_scores``
:class:`SamplingConfig`   ADQ's budget softmax: β and temperature T                           ``adq_indices``
:class:`TuningConfig`     the validation grid that chooses (β, T), and its evaluation         ``tune_adq``
:class:`MAEConfig`        the masked autoencoder that refills dropped patches                  ``mae_model``
:class:`TrajectoryConfig` one seed of ADQ's texture-level trajectory check (Fig. 4)            ``texture_trajectory_run``
=====================  ====================================================================  ======================

A config is validated in ``__post_init__`` (a ``ValueError`` names the field, the bad value and what is allowed),
so code that receives one never checks it again. ``Config.of(value)`` accepts ``None`` (the defaults), a config,
or a mapping of field names (what a notebook's parameters cell holds; an unknown key is an error listing the
fields). ``config.replace(**changes)`` makes a checked copy; ``config.key()`` is the plain dict a cache key holds.
"""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Any, Mapping

from ..models import list_models, model_kwargs
from ..utils import check_choice, check_float, check_int

__all__ = ["ExtractorConfig", "BinConfig", "HeadConfig", "ScoreConfig", "SamplingConfig", "TuningConfig",
           "MAEConfig", "TrajectoryConfig", "ADQ_BETA", "ADQ_TEMPERATURE", "FEATURE_KINDS", "HEAD_CHOICES",
           "TUNE_CHOICES"]

#: ``feature`` choices of :class:`BinConfig`: DQ's implicit last-layer gradients, or the plain embedding.
FEATURE_KINDS = ("gradient", "embedding")
#: ``head`` choices of :class:`ExtractorConfig`: keep the trained classifier, or re-initialise it at random.
HEAD_CHOICES = ("trained", "random")
#: ``choose`` rules of :class:`TuningConfig` (see :func:`dscore.quantize.pipeline.choose_adq_setting`).
TUNE_CHOICES = ("within_noise", "best")

#: Default β and temperature T of ADQ's budgets, chosen with :func:`dscore.quantize.pipeline.tune_adq` on a
#: validation split of Fashion-MNIST's training set, never on the test set: a 10 000-image stratified pool split
#: 8000 / 2000, ratio 10%, ConvNet-3 of width 32 (feature net 5 epochs; evaluation 30 epochs, batch 64, lr 0.05),
#: seeds 0–2, β ∈ {0.3, 0.6, 0.9} × T ∈ {1, 2, 4, 8}. The validation grid was flat within noise
#: (81.0–81.7%, std 0.2–1.2 points; DQ 81.7 ± 0.2), so the "within_noise" rule took the setting whose
#: rates are closest to the authors' ±15% strength: β = 0.3, T = 2 (rates 0.89–1.14 of uniform).
#: The paper's β = 0.6 at T = 1 moves rates 0.61–1.55 and was no better on validation (81.0 ± 0.7).
ADQ_BETA = 0.3
ADQ_TEMPERATURE = 2.0


class _Config:
    """What every pipeline config shares: construction from a mapping, checked copies, the cache-key dict."""

    @classmethod
    def of(cls, value=None, name: str | None = None):
        """``value`` as a ``cls``: None gives the defaults, a ``cls`` is returned as is, a mapping holds field
        values (unknown keys are a ValueError listing the allowed ones)."""
        label = name or cls.__name__
        if value is None:
            return cls()
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"{label}={value!r} must be a {cls.__name__} or a mapping of its fields "
                             f"({', '.join(cls.fields())})")
        unknown = sorted(set(value) - set(cls.fields()))
        if unknown:
            raise ValueError(f"{label} has unknown key(s) {unknown}; allowed: {', '.join(cls.fields())}")
        return cls(**dict(value))

    @classmethod
    def fields(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def replace(self, **changes):
        """A checked copy with ``changes`` applied."""
        unknown = sorted(set(changes) - set(self.fields()))
        if unknown:
            raise ValueError(f"{type(self).__name__} has no field(s) {unknown}; allowed: {', '.join(self.fields())}")
        return dataclasses.replace(self, **changes)

    def key(self) -> dict[str, Any]:
        """The settings as a plain dict (mappings copied, sequences as lists): what a cache key holds."""
        out = {}
        for f in dataclasses.fields(self):
            v = getattr(self, f.name)
            out[f.name] = dict(v) if isinstance(v, Mapping) else list(v) if isinstance(v, tuple) else v
        return out

    def _set(self, name: str, value) -> None:          # normalise a field of the frozen instance while checking
        object.__setattr__(self, name, value)


def _check_arch(name: str, arch, kwargs_name: str, kwargs) -> dict:
    check_choice(name, arch, list_models())
    if kwargs is None:
        return {}
    if not isinstance(kwargs, Mapping):
        raise ValueError(f"{kwargs_name}={kwargs!r} must be a dict of model keyword arguments")
    unknown = sorted(set(kwargs) - set(model_kwargs(arch)))
    if unknown:
        raise ValueError(f"{kwargs_name} has unknown key(s) {unknown} for {name}={arch!r}; "
                         f"allowed: {', '.join(model_kwargs(arch)) or 'none'}")
    return dict(kwargs)


def _check_seeds(name: str, seeds) -> tuple[int, ...]:
    if isinstance(seeds, (int, str, bytes)) or not hasattr(seeds, "__iter__"):
        raise ValueError(f"{name}={seeds!r} must be a non-empty sequence of distinct non-negative integers")
    out = tuple(check_int(f"{name}[]", s, low=0) for s in seeds)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"{name}={seeds!r} must be a non-empty sequence of distinct non-negative integers")
    return out


def _check_grid(name: str, values, check) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name}={values!r} must be a non-empty sequence of numbers")
    out = tuple(check(v) for v in values)
    if not out or len(set(out)) != len(out):
        raise ValueError(f"{name}={values!r} must be a non-empty sequence of distinct numbers")
    return out


def _beta(name: str, v) -> float:
    return check_float(name, v, low=0.0, high=1.0)


def _temperature(name: str, v) -> float:
    return check_float(name, v, low=0.0, high=math.inf, low_open=True, high_open=True)


@dataclass(frozen=True)
class ExtractorConfig(_Config):
    """The feature network ``f`` of DQ / ADQ (:func:`dscore.quantize.pipeline.feature_extractor`).

    ``create_model(arch, **arch_kwargs)`` initialised from ``seed``, trained ``epochs`` with SGD (cosine LR ``lr``,
    ``batch_size``, crop/flip) on the training set, or on ``train_per_class`` images per class drawn with ``seed``.
    ``head``: ``"trained"`` keeps the classifier trained with the body, ``"random"`` re-initialises it (the
    authors' setting of a pretrained body with a fresh classifier). ``checkpoint``: a local state_dict file (or a
    dict holding one) to load instead of training; it is not part of :meth:`key` (nothing is cached then).
    """

    arch: str = "convnet3"
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 10
    batch_size: int = 128
    lr: float = 0.01
    seed: int = 0
    train_per_class: int | None = None
    head: str = "trained"
    checkpoint: Any = None

    def __post_init__(self):
        self._set("arch_kwargs", _check_arch("arch", self.arch, "arch_kwargs", self.arch_kwargs))
        self._set("epochs", check_int("epochs", self.epochs, low=1))
        self._set("batch_size", check_int("batch_size", self.batch_size, low=1))
        self._set("lr", check_float("lr", self.lr, low=0.0, low_open=True))
        self._set("seed", check_int("seed", self.seed, low=0))
        if self.train_per_class is not None:
            self._set("train_per_class", check_int("train_per_class", self.train_per_class, low=1))
        check_choice("head", self.head, HEAD_CHOICES)

    def key(self) -> dict[str, Any]:
        out = super().key()
        out.pop("checkpoint")
        return out


@dataclass(frozen=True)
class BinConfig(_Config):
    """DQ's bins (:func:`dscore.quantize.generate_bins`): ``num_bins`` per class, on ``feature`` (``"gradient"``,
    DQ's implicit last-layer gradients, or ``"embedding"``), with GraphCut's ``lam``."""

    num_bins: int = 10
    feature: str = "gradient"
    lam: float = 1.0

    def __post_init__(self):
        self._set("num_bins", check_int("num_bins", self.num_bins, low=1))
        check_choice("feature", self.feature, FEATURE_KINDS)
        self._set("lam", check_float("lam", self.lam, low=-math.inf, high=math.inf, low_open=True, high_open=True))


@dataclass(frozen=True)
class HeadConfig(_Config):
    """The contrastive head behind ADQ's DS (:func:`dscore.quantize.diversity.train_contrastive_head`): ``epochs``,
    ``batch_size``, temperature ``tau``, Adam ``lr``, projection ``hidden_dim`` → ``out_dim``, at most
    ``max_images`` training images (None: all) and ``seed`` (init, views, the image draw)."""

    epochs: int = 5
    batch_size: int = 256
    tau: float = 0.1
    lr: float = 1e-3
    hidden_dim: int = 512
    out_dim: int = 128
    max_images: int | None = None
    seed: int = 0

    def __post_init__(self):
        self._set("epochs", check_int("head_epochs", self.epochs, low=1))
        self._set("batch_size", check_int("head_batch_size", self.batch_size, low=2))
        self._set("tau", check_float("tau", self.tau, low=0.0, low_open=True))
        self._set("lr", check_float("head_lr", self.lr, low=0.0, low_open=True))
        self._set("hidden_dim", check_int("hidden_dim", self.hidden_dim, low=1))
        self._set("out_dim", check_int("out_dim", self.out_dim, low=1))
        if self.max_images is not None:
            self._set("max_images", check_int("head_max_images", self.max_images, low=2))
        self._set("seed", check_int("seed", self.seed, low=0))


@dataclass(frozen=True)
class ScoreConfig(_Config):
    """ADQ's bin scores (:func:`dscore.quantize.pipeline.bin_scores`): RS on ``patch`` × ``patch`` patches; DS with
    at most ``max_negatives`` negatives and the contrastive head of the ``head_*``, ``tau``, ``hidden_dim``,
    ``out_dim`` and ``seed`` fields (:attr:`head`). The field names are the ones a page's ``scores`` parameter uses.
    """

    patch: int = 32
    tau: float = 0.1
    max_negatives: int = 4096
    head_epochs: int = 5
    head_batch_size: int = 256
    head_lr: float = 1e-3
    head_max_images: int | None = None
    hidden_dim: int = 512
    out_dim: int = 128
    seed: int = 0

    def __post_init__(self):
        self._set("patch", check_int("patch", self.patch, low=2))
        self._set("max_negatives", check_int("max_negatives", self.max_negatives, low=2))
        head = self.head                                    # checks the head's fields under their page names
        for name, value in (("tau", head.tau), ("head_epochs", head.epochs), ("head_batch_size", head.batch_size),
                            ("head_lr", head.lr), ("head_max_images", head.max_images), ("hidden_dim", head.hidden_dim),
                            ("out_dim", head.out_dim), ("seed", head.seed)):
            self._set(name, value)

    @property
    def head(self) -> HeadConfig:
        """The contrastive head these scores use."""
        return HeadConfig(epochs=self.head_epochs, batch_size=self.head_batch_size, tau=self.tau, lr=self.head_lr,
                          hidden_dim=self.hidden_dim, out_dim=self.out_dim, max_images=self.head_max_images,
                          seed=self.seed)


@dataclass(frozen=True)
class SamplingConfig(_Config):
    """ADQ's per-bin budgets ``bin_budgets(sizes, M, IS / temperature, beta=beta)``; β = 0 is DQ's uniform split.
    Defaults: :data:`ADQ_BETA`, :data:`ADQ_TEMPERATURE` (chosen on a validation split, see there)."""

    beta: float = ADQ_BETA
    temperature: float = ADQ_TEMPERATURE

    def __post_init__(self):
        self._set("beta", _beta("beta", self.beta))
        self._set("temperature", _temperature("temperature", self.temperature))


@dataclass(frozen=True)
class TuningConfig(_Config):
    """How :func:`dscore.quantize.pipeline.tune_adq` chooses (β, T) on a validation split of the training set.

    The grid ``betas × temperatures``; the split (``val_fraction``, ``split_seed``); the seeds that repeat every
    setting; the network trained on each selection (``eval_arch``, ``eval_arch_kwargs``, ``eval_epochs``,
    ``eval_batch_size``, ``eval_lr``, the coreset protocol otherwise); ``include_dq`` adds DQ (β = 0) as a
    reference row; the rule ``choose`` with ``authors_strength``; ``pipeline_per_seed``: every seed draws its own
    feature network, bins and scores.
    """

    betas: tuple[float, ...] = (0.3, 0.6, 0.9)
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    val_fraction: float = 0.2
    split_seed: int = 0
    seeds: tuple[int, ...] = (0, 1, 2)
    eval_arch: str = "convnet3"
    eval_arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    eval_epochs: int = 30
    eval_batch_size: int = 64
    eval_lr: float = 0.05
    include_dq: bool = True
    choose: str = "within_noise"
    authors_strength: float = 0.15
    pipeline_per_seed: bool = False

    def __post_init__(self):
        self._set("betas", _check_grid("betas", self.betas, lambda v: _beta("beta", v)))
        self._set("temperatures", _check_grid("temperatures", self.temperatures,
                                              lambda v: _temperature("temperature", v)))
        self._set("val_fraction", check_float("val_fraction", self.val_fraction, low=0.0, high=1.0, low_open=True,
                                              high_open=True))
        self._set("split_seed", check_int("split_seed", self.split_seed, low=0))
        self._set("seeds", _check_seeds("seeds", self.seeds))
        self._set("eval_arch_kwargs", _check_arch("eval_arch", self.eval_arch, "eval_arch_kwargs",
                                                  self.eval_arch_kwargs))
        self._set("eval_epochs", check_int("eval_epochs", self.eval_epochs, low=1))
        self._set("eval_batch_size", check_int("eval_batch_size", self.eval_batch_size, low=1))
        self._set("eval_lr", check_float("eval_lr", self.eval_lr, low=0.0, low_open=True))
        for name in ("include_dq", "pipeline_per_seed"):
            if not isinstance(getattr(self, name), bool):
                raise ValueError(f"{name}={getattr(self, name)!r} must be True or False")
        check_choice("choose", self.choose, TUNE_CHOICES)
        self._set("authors_strength", check_float("authors_strength", self.authors_strength, low=0.0))


@dataclass(frozen=True)
class MAEConfig(_Config):
    """The masked autoencoder of pixel quantization (:class:`dscore.quantize.pixelquant.MaskedAutoencoder`):
    ``patch`` size, encoder ``embed_dim`` / ``depth`` / ``num_heads``, decoder ``decoder_dim`` /
    ``decoder_depth`` / ``decoder_heads``; trained ``epochs`` with ``mask_ratio``, ``batch_size``, ``lr``, ``seed``
    — or loaded from a local ``checkpoint`` (not part of :meth:`key`)."""

    patch: int = 4
    mask_ratio: float = 0.75
    epochs: int = 20
    batch_size: int = 128
    lr: float = 1e-3
    embed_dim: int = 96
    depth: int = 3
    num_heads: int = 3
    decoder_dim: int = 64
    decoder_depth: int = 2
    decoder_heads: int = 2
    seed: int = 0
    checkpoint: Any = None

    def __post_init__(self):
        self._set("patch", check_int("patch", self.patch, low=1))
        self._set("mask_ratio", check_float("mask_ratio", self.mask_ratio, low=0.0, high=1.0, low_open=True,
                                            high_open=True))
        self._set("epochs", check_int("epochs", self.epochs, low=1))
        self._set("batch_size", check_int("batch_size", self.batch_size, low=1))
        self._set("lr", check_float("lr", self.lr, low=0.0, low_open=True))
        self._set("embed_dim", check_int("embed_dim", self.embed_dim, low=4))
        self._set("depth", check_int("depth", self.depth, low=1))
        self._set("num_heads", check_int("num_heads", self.num_heads, low=1))
        self._set("decoder_dim", check_int("decoder_dim", self.decoder_dim, low=4))
        self._set("decoder_depth", check_int("decoder_depth", self.decoder_depth, low=1))
        self._set("decoder_heads", check_int("decoder_heads", self.decoder_heads, low=1))
        self._set("seed", check_int("seed", self.seed, low=0))

    def architecture(self) -> dict[str, int]:
        """The constructor arguments of the autoencoder (what a checkpoint must match)."""
        return {k: getattr(self, k) for k in ("patch", "embed_dim", "depth", "num_heads", "decoder_dim",
                                              "decoder_depth", "decoder_heads")}

    def key(self) -> dict[str, Any]:
        out = super().key()
        out.pop("checkpoint")
        return out


@dataclass(frozen=True)
class TrajectoryConfig(_Config):
    """One seed of ADQ's Fig. 4 (:func:`dscore.quantize.trajectory.texture_trajectories`): ``arch`` with
    ``arch_kwargs``, constant-LR SGD for ``epochs`` at ``lr`` and ``batch_size`` with ``augment``, texture level on
    ``patch`` × ``patch`` patches, thirds cut ``within_class`` (or over the whole set), from ``seed``."""

    arch: str = "convnet3"
    arch_kwargs: Mapping[str, Any] = field(default_factory=dict)
    epochs: int = 10
    lr: float = 0.01
    batch_size: int = 128
    patch: int = 32
    seed: int = 0
    augment: str = "crop_flip"
    within_class: bool = True

    def __post_init__(self):
        self._set("arch_kwargs", _check_arch("arch", self.arch, "arch_kwargs", self.arch_kwargs))
        self._set("epochs", check_int("epochs", self.epochs, low=1))
        self._set("lr", check_float("lr", self.lr, low=0.0, low_open=True))
        self._set("batch_size", check_int("batch_size", self.batch_size, low=1))
        self._set("patch", check_int("patch", self.patch, low=2))
        self._set("seed", check_int("seed", self.seed, low=0))
        if not isinstance(self.augment, str):
            raise ValueError(f"augment={self.augment!r} must be the name of an augmentation")
        if not isinstance(self.within_class, bool):
            raise ValueError(f"within_class={self.within_class!r} must be True or False")
