"""Cached end-to-end DQ / ADQ selections.

Every intermediate artefact goes through :class:`dscore.cache.ArtifactCache`, keyed by its full
configuration — including a content fingerprint of the dataset (:func:`dataset_fingerprint`) and of
the feature network's weights (:func:`model_fingerprint`), so a different checkpoint, seed or subset
can never be served a stale entry:

==========================  ====================  ==============================================
function                    cache kind            what
==========================  ====================  ==============================================
:func:`feature_extractor`   ``feature_net``       trained feature network (state_dict)
:func:`dataset_features`    ``features``          embeddings ``e`` and ``δ`` of the train set
:func:`dataset_bins`        ``bins``              DQ's GraphCut bins
:func:`contrastive_head`    ``contrastive_head``  the DS discriminator (state_dict)
:func:`bin_scores`          ``bin_scores``        RS, DS, IS per bin (+ the cosine-proxy diagnostic)
:func:`mae_model`           ``mae``               the pixel-quantization MAE (state_dict)
:func:`pixel_quantize`      ``pixelquant``        Grad-CAM keep-masks + kept patches of a selection
==========================  ====================  ==============================================

:func:`dq_indices` and :func:`adq_indices` return the selected training indices and a report of the
per-bin budgets actually used. Arguments are validated before any work.
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Mapping

import torch
import torch.nn as nn

from ..cache import ArtifactCache, as_cache
from ..data import ImageDataset, resolve_dataset, stratified_indices
from ..features import GradientFeatures, extract_gradient_features
from ..fingerprint import (code_version, dataset_fingerprint, load_state, model_fingerprint, precision_tag,
                           read_checkpoint, state_dict_value, tensor_bytes)
from ..models import create_model, list_models, model_kwargs
from ..select import budget_from_ratio
from ..train import train_model
from ..utils import check_choice, check_float, check_int, make_generator, resolve_device
from .bins import generate_bins
from .diversity import ContrastiveHead, cosine_proxy_diversity, diversity_scores, train_contrastive_head
from .pixelquant import (
    MaskedAutoencoder,
    drop_mask,
    effective_keep_ratio,
    gradcam_patch_importance,
    quantize_pixels,
    storage_ratio,
    train_mae,
)
from .sampling import adq_select, bin_budgets, importance_scores, sample_from_bins
from .texture import representativeness_scores

__all__ = [
    "FEATURE_KINDS",
    "feature_extractor",
    "dataset_features",
    "dataset_bins",
    "contrastive_head",
    "bin_scores",
    "dq_indices",
    "adq_indices",
    "mae_model",
    "pixel_quantize",
]

FEATURE_KINDS = ("gradient", "embedding")


# ----------------------------------------------------------------------------- feature network

def _check_extractor_args(arch, arch_kwargs, epochs, batch_size, lr, seed, train_per_class) -> dict:
    check_choice("arch", arch, list_models())
    if arch_kwargs is not None and not isinstance(arch_kwargs, Mapping):
        raise ValueError(f"arch_kwargs={arch_kwargs!r} must be a dict of model keyword arguments")
    unknown = sorted(set(arch_kwargs or {}) - set(model_kwargs(arch)))
    if unknown:
        raise ValueError(f"arch_kwargs has unknown key(s) {unknown} for arch={arch!r}; "
                         f"allowed: {', '.join(model_kwargs(arch)) or 'none'}")
    return dict(arch=arch, arch_kwargs=dict(arch_kwargs or {}), epochs=check_int("epochs", epochs, low=1),
                batch_size=check_int("batch_size", batch_size, low=1),
                lr=check_float("lr", lr, low=0.0, low_open=True), seed=check_int("seed", seed, low=0),
                train_per_class=None if train_per_class is None else check_int("train_per_class", train_per_class,
                                                                                 low=1))


def feature_extractor(dataset, *, arch: str = "convnet3", arch_kwargs: Mapping | None = None, epochs: int = 10,
                      batch_size: int = 128, lr: float = 0.01, seed: int = 0, device=None, checkpoint=None,
                      train_per_class: int | None = None, image_size: int | None = None, root=None,
                      cache: ArtifactCache | None = None, progress: bool = True) -> nn.Module:
    """The feature network ``f`` of DQ/ADQ for ``dataset`` (a name — its train split — or an ImageDataset).

    ``create_model(arch, **arch_kwargs)`` sized for the dataset (its mean/std inside, init from ``seed``).
    With ``checkpoint`` (a local file holding a state_dict, or a dict with a ``state_dict``/``model``
    entry) the weights — and the normalisation buffers saved with them — are loaded with
    ``torch.load(weights_only=True)`` and nothing is trained.
    Otherwise the network is trained with :func:`dscore.train.train_model` (SGD, cosine schedule,
    crop/flip, ``epochs``, ``batch_size``, ``lr``, ``seed``) on the training set — or on a stratified
    subset of ``train_per_class`` images per class drawn with ``seed`` — and its state_dict is cached
    (kind ``feature_net``). Returns the model in eval mode on ``device``.
    """
    cfg = _check_extractor_args(arch, arch_kwargs, epochs, batch_size, lr, seed, train_per_class)
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset, image_size, root)
    model = create_model(arch, num_classes=ds.num_classes, in_channels=ds.channels, image_size=ds.image_size,
                         mean=ds.mean, std=ds.std, seed=cfg["seed"], **cfg["arch_kwargs"])
    if checkpoint is not None:
        load_state(model, read_checkpoint(checkpoint), f"checkpoint {checkpoint}")
        return model.to(dev).eval()
    if cfg["train_per_class"] is not None:
        smallest = int(ds.class_counts().min())
        if cfg["train_per_class"] > smallest:
            raise ValueError(f"train_per_class={cfg['train_per_class']} exceeds the smallest class ({smallest} "
                             f"images); allowed: 1 <= train_per_class <= {smallest}")

    def compute():
        if cfg["train_per_class"] is None:
            images, labels = ds.images, ds.labels
        else:
            idx = stratified_indices(ds.labels, cfg["train_per_class"], cfg["seed"], num_classes=ds.num_classes)
            images, labels = ds.images[idx], ds.labels[idx]
        train_model(model, images, labels, epochs=cfg["epochs"], batch_size=cfg["batch_size"], lr=cfg["lr"],
                    schedule="cosine", augment="crop_flip", device=dev, seed=cfg["seed"], progress=progress)
        return state_dict_value(model)

    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), **cfg, "schedule": "cosine", "augment": "crop_flip",
           "momentum": 0.9, "weight_decay": 5e-4}
    state = store.get_or_compute("feature_net", key, compute, version=code_version())
    load_state(model, state, "the cached feature network")
    return model.to(dev).eval()


_EXTRACTOR_KEYS = ("arch", "arch_kwargs", "epochs", "batch_size", "lr", "seed", "checkpoint", "train_per_class")


def _check_extractor(model, extractor) -> dict:
    """Validate the ``model``/``extractor`` pair of a selection function; return the extractor kwargs."""
    if model is not None:
        if not isinstance(model, nn.Module) or not hasattr(model, "embed") or not hasattr(model, "classify"):
            raise ValueError("model must be a dscore model with embed() and classify()")
        if extractor is not None:
            raise ValueError("give model= or extractor=, not both")
        return {}
    if extractor is not None and not isinstance(extractor, Mapping):
        raise ValueError(f"extractor={extractor!r} must be a dict of feature_extractor keyword arguments")
    kwargs = dict(extractor or {})
    unknown = sorted(set(kwargs) - set(_EXTRACTOR_KEYS))
    if unknown:
        raise ValueError(f"extractor has unknown key(s) {unknown}; allowed: {', '.join(_EXTRACTOR_KEYS)} "
                         "(device, cache, progress, image_size and root go to the pipeline function itself)")
    defaults = dict(arch="convnet3", arch_kwargs=None, epochs=10, batch_size=128, lr=0.01, seed=0, train_per_class=None)
    merged = {**defaults, **{k: v for k, v in kwargs.items() if k != "checkpoint"}}
    _check_extractor_args(**merged)
    return kwargs


def _extractor(ds: ImageDataset, model, kwargs: dict, device, cache, progress) -> nn.Module:
    if model is not None:
        return model
    return feature_extractor(ds, device=device, cache=cache, progress=progress, **kwargs)


# ------------------------------------------------------------------------------ features & bins

def dataset_features(dataset, model: nn.Module, *, batch_size: int = 512, device=None, image_size=None, root=None,
                     cache: ArtifactCache | None = None, progress: bool = True) -> dict[str, Any]:
    """Embeddings and last-layer gradient features of the whole training set, cached (kind ``features``).

    Returns ``{"embeddings": (N, D) float32, "gradient": GradientFeatures(δ (N, C), e (N, D))}`` on CPU,
    from one pass of :func:`dscore.features.extract_gradient_features`.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset, image_size, root)
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model)}

    def compute():
        g = extract_gradient_features(model, ds.images, ds.labels, batch_size=batch_size, device=dev,
                                      progress=progress)
        return {"delta": g.delta, "embedding": g.embedding}

    value = store.get_or_compute("features", key, compute, version=code_version())
    return {"embeddings": value["embedding"], "gradient": GradientFeatures(value["delta"], value["embedding"])}


def _check_bin_args(num_bins, feature, lam) -> tuple[int, str, float]:
    num_bins = check_int("num_bins", num_bins, low=1)
    check_choice("feature", feature, FEATURE_KINDS)
    lam = check_float("lam", lam, low=-math.inf, high=math.inf, low_open=True, high_open=True)
    return num_bins, feature, lam


def _check_bins_fit(ds: ImageDataset, num_bins: int) -> None:
    counts = ds.class_counts()
    smallest = int(counts[counts > 0].min())
    if num_bins > smallest:
        raise ValueError(f"num_bins={num_bins} is out of range; allowed: 1 <= num_bins <= {smallest} "
                         "(the size of the smallest class)")


def dataset_bins(dataset, model: nn.Module, num_bins: int = 10, *, feature: str = "gradient", lam: float = 1.0,
                 batch_size: int = 512, device=None, image_size=None, root=None, cache: ArtifactCache | None = None,
                 progress: bool = True) -> list[torch.Tensor]:
    """DQ's bins of the training set (:func:`dscore.quantize.generate_bins`), cached (kind ``bins``).

    ``feature``: ``"gradient"`` (DQ's implicit last-layer gradients, the default) or ``"embedding"``.
    Returns ``num_bins`` int64 CPU tensors of global indices.
    """
    num_bins, feature, lam = _check_bin_args(num_bins, feature, lam)
    store = as_cache(cache)
    ds = resolve_dataset(dataset, image_size, root)
    _check_bins_fit(ds, num_bins)
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model), "num_bins": num_bins,
           "feature": feature, "lam": lam}

    def compute():
        feats = dataset_features(ds, model, batch_size=batch_size, device=device, cache=store, progress=progress)
        x = feats["gradient"] if feature == "gradient" else feats["embeddings"]
        bins = generate_bins(x.to(resolve_device(device)), ds.labels, num_bins, lam=lam, progress=progress)
        return {"indices": torch.cat(bins).cpu(), "sizes": torch.tensor([b.numel() for b in bins])}

    value = store.get_or_compute("bins", key, compute, version=code_version())
    return list(torch.split(value["indices"], value["sizes"].tolist()))


# ------------------------------------------------------------------------------------ bin scores

def _check_head_args(epochs, batch_size, tau, lr, hidden_dim, out_dim, max_images, seed) -> dict:
    return dict(epochs=check_int("head_epochs", epochs, low=1),
                batch_size=check_int("head_batch_size", batch_size, low=2),
                tau=check_float("tau", tau, low=0.0, low_open=True),
                lr=check_float("head_lr", lr, low=0.0, low_open=True),
                hidden_dim=check_int("hidden_dim", hidden_dim, low=1), out_dim=check_int("out_dim", out_dim, low=1),
                max_images=None if max_images is None else check_int("head_max_images", max_images, low=2),
                seed=check_int("seed", seed, low=0))


def contrastive_head(dataset, model: nn.Module, *, epochs: int = 5, batch_size: int = 256, tau: float = 0.1,
                     lr: float = 1e-3, hidden_dim: int = 512, out_dim: int = 128, max_images: int | None = None,
                     seed: int = 0, device=None, image_size=None, root=None, cache: ArtifactCache | None = None,
                     progress: bool = True) -> ContrastiveHead:
    """The DS discriminator trained on the training set with ``model`` frozen, cached (``contrastive_head``).

    :func:`dscore.quantize.diversity.train_contrastive_head` on all training images, or on ``max_images`` of them
    drawn uniformly with ``seed``. Returns the head in eval mode on ``device``.
    """
    cfg = _check_head_args(epochs, batch_size, tau, lr, hidden_dim, out_dim, max_images, seed)
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset, image_size, root)
    head = ContrastiveHead.for_model(model, hidden_dim=cfg["hidden_dim"], out_dim=cfg["out_dim"], seed=cfg["seed"])

    def compute():
        images = ds.images
        if cfg["max_images"] is not None and cfg["max_images"] < len(ds):
            pick = torch.randperm(len(ds), generator=make_generator(cfg["seed"]))[: cfg["max_images"]].sort().values
            images = images[pick]
        train_contrastive_head(model, images, epochs=cfg["epochs"], batch_size=cfg["batch_size"], tau=cfg["tau"],
                               lr=cfg["lr"], device=dev, seed=cfg["seed"], progress=progress, head=head)
        return state_dict_value(head)

    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model), **cfg}
    load_state(head, store.get_or_compute("contrastive_head", key, compute, version=code_version()), "the cached head")
    return head.to(dev).eval()


_SCORE_DEFAULTS = dict(patch=32, tau=0.1, max_negatives=4096, head_epochs=5, head_batch_size=256, head_lr=1e-3,
                       head_max_images=None, hidden_dim=512, out_dim=128, seed=0)


def _check_score_args(**kwargs) -> dict:
    """Validate :func:`bin_scores`' scoring arguments (missing ones take their defaults)."""
    unknown = sorted(set(kwargs) - set(_SCORE_DEFAULTS))
    if unknown:
        raise ValueError(f"unknown score argument(s) {unknown}; allowed: {', '.join(_SCORE_DEFAULTS)}")
    a = {**_SCORE_DEFAULTS, **kwargs}
    return {"patch": check_int("patch", a["patch"], low=2),
            "max_negatives": check_int("max_negatives", a["max_negatives"], low=2),
            "head": _check_head_args(a["head_epochs"], a["head_batch_size"], a["tau"], a["head_lr"], a["hidden_dim"],
                                     a["out_dim"], a["head_max_images"], a["seed"])}


def bin_scores(dataset, model: nn.Module, num_bins: int = 10, *, feature: str = "gradient", lam: float = 1.0,
               patch: int = 32, tau: float = 0.1, max_negatives: int = 4096, head_epochs: int = 5,
               head_batch_size: int = 256, head_lr: float = 1e-3, head_max_images: int | None = None,
               hidden_dim: int = 512, out_dim: int = 128, seed: int = 0, batch_size: int = 512, device=None,
               image_size=None, root=None, cache: ArtifactCache | None = None, progress: bool = True
               ) -> dict[str, torch.Tensor]:
    """ADQ's bin scores, cached (kind ``bin_scores``): ``{"rs", "ds", "is_", "ds_cosine_proxy"}``, (K,) float64.

    RS: texture level of L×L patches (L = ``patch``); DS: contrastive diversity with the cached head
    (:func:`contrastive_head`, τ = ``tau``, ≤ ``max_negatives`` negatives, views from ``seed``);
    IS = z(RS) + z(DS); ``ds_cosine_proxy``: the authors' 1/mean-cosine diagnostic on the feature
    network's embeddings (not used for sampling).
    """
    num_bins, feature, lam = _check_bin_args(num_bins, feature, lam)
    checked = _check_score_args(patch=patch, tau=tau, max_negatives=max_negatives, head_epochs=head_epochs,
                                head_batch_size=head_batch_size, head_lr=head_lr, head_max_images=head_max_images,
                                hidden_dim=hidden_dim, out_dim=out_dim, seed=seed)
    patch, max_negatives, head_cfg = checked["patch"], checked["max_negatives"], checked["head"]
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset, image_size, root)
    _check_bins_fit(ds, num_bins)
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model), "num_bins": num_bins,
           "feature": feature, "lam": lam, "patch": patch, "max_negatives": max_negatives, "head": head_cfg,
           "batch_size": batch_size}

    def compute():
        bins = dataset_bins(ds, model, num_bins, feature=feature, lam=lam, batch_size=batch_size, device=dev,
                            cache=store, progress=progress)
        head = contrastive_head(ds, model, epochs=head_cfg["epochs"], batch_size=head_cfg["batch_size"],
                                tau=head_cfg["tau"], lr=head_cfg["lr"], hidden_dim=head_cfg["hidden_dim"],
                                out_dim=head_cfg["out_dim"], max_images=head_cfg["max_images"], seed=head_cfg["seed"],
                                device=dev, cache=store, progress=progress)
        rs = representativeness_scores(ds.images, bins, patch, batch_size=batch_size, device=dev).cpu()
        ds_scores = diversity_scores(model, head, ds.images, bins, tau=head_cfg["tau"], max_negatives=max_negatives,
                                     seed=head_cfg["seed"], device=dev, batch_size=batch_size, progress=progress)
        feats = dataset_features(ds, model, batch_size=batch_size, device=dev, cache=store, progress=progress)
        return {"rs": rs, "ds": ds_scores, "is_": importance_scores(rs, ds_scores).cpu(),
                "ds_cosine_proxy": cosine_proxy_diversity(feats["embeddings"], bins)}

    return store.get_or_compute("bin_scores", key, compute, version=code_version())


# ------------------------------------------------------------------------------------ selections

def _prepare(dataset, ratio, num_bins, seed, feature, lam, image_size, root):
    ratio = check_float("ratio", ratio, low=0.0, high=1.0, low_open=True)
    num_bins, feature, lam = _check_bin_args(num_bins, feature, lam)
    seed = check_int("seed", seed, low=0)
    ds = resolve_dataset(dataset, image_size, root)
    _check_bins_fit(ds, num_bins)
    budget = budget_from_ratio(ratio, len(ds))
    return ds, ratio, num_bins, seed, feature, lam, budget


def dq_indices(dataset, ratio: float, num_bins: int = 10, seed: int = 0, *, model: nn.Module | None = None,
               extractor: Mapping | None = None, feature: str = "gradient", lam: float = 1.0, batch_size: int = 512,
               device=None, image_size=None, root=None, cache: ArtifactCache | None = None,
               progress: bool = True) -> tuple[torch.Tensor, dict[str, Any]]:
    """Dataset Quantization: cached bins, then the same fraction of every bin, class-stratified.

    ``dataset``: a name (train split, optionally resized to ``image_size``) or an ImageDataset. The
    feature network is ``model`` or ``feature_extractor(dataset, **extractor)``. ``M = round(ratio·N)``
    is split over the bins proportionally (:func:`dscore.quantize.bin_budgets`, β = 0) and sampled with
    ``seed`` (:func:`dscore.quantize.sample_from_bins`). Returns (sorted int64 indices into the training
    set, report) with report keys ``method, ratio, budget, num_bins, bin_sizes, budgets, seed``.
    """
    ds, ratio, num_bins, seed, feature, lam, budget = _prepare(dataset, ratio, num_bins, seed, feature, lam,
                                                               image_size, root)
    batch_size = check_int("batch_size", batch_size, low=1)
    extractor = _check_extractor(model, extractor)
    store = as_cache(cache)
    net = _extractor(ds, model, extractor, device, store, progress)
    bins = dataset_bins(ds, net, num_bins, feature=feature, lam=lam, batch_size=batch_size, device=device,
                        cache=store, progress=progress)
    sizes = [b.numel() for b in bins]
    budgets = bin_budgets(sizes, budget)
    chosen = sample_from_bins(bins, ds.labels, budgets, seed=seed)
    report = {"method": "dq", "ratio": ratio, "budget": budget, "num_bins": num_bins, "bin_sizes": sizes,
              "budgets": budgets.tolist(), "seed": seed}
    return chosen.cpu(), report


def adq_indices(dataset, ratio: float, num_bins: int = 10, beta: float = 0.6, temperature: float = 1.0, seed: int = 0,
                *, model: nn.Module | None = None, extractor: Mapping | None = None, feature: str = "gradient",
                lam: float = 1.0, scores: Mapping | None = None, batch_size: int = 512, device=None, image_size=None,
                root=None, cache: ArtifactCache | None = None, progress: bool = True
                ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Adaptive Dataset Quantization: DQ's bins, per-bin budgets from the importance score.

    As :func:`dq_indices`, but the budgets are ``bin_budgets(sizes, M, IS / temperature, beta=beta)``
    with IS from :func:`bin_scores` (``scores``: its keyword arguments, e.g. ``{"patch": 32,
    "head_epochs": 5, "seed": 0}``). The scores have their own seed (head init, views, negatives;
    default 0), separate from ``seed``, which only drives the sampling — so repeated selections with
    different seeds share one set of cached scores. β = 0 reproduces DQ's budgets and, for the same
    seed, its indices. Report keys: those of :func:`dq_indices` plus ``beta, temperature, rs, ds, is,
    importance`` (softmax(IS/T) per bin) — the budgets are the ones actually used.
    """
    ds, ratio, num_bins, seed, feature, lam, budget = _prepare(dataset, ratio, num_bins, seed, feature, lam,
                                                               image_size, root)
    beta = check_float("beta", beta, low=0.0, high=1.0)
    temperature = check_float("temperature", temperature, low=0.0, high=math.inf, low_open=True, high_open=True)
    batch_size = check_int("batch_size", batch_size, low=1)
    if scores is not None and not isinstance(scores, Mapping):
        raise ValueError(f"scores={scores!r} must be a dict of bin_scores keyword arguments")
    score_kwargs = dict(scores or {})
    for reserved in ("feature", "lam", "num_bins", "device", "cache", "progress", "image_size", "root", "batch_size"):
        if reserved in score_kwargs:
            raise ValueError(f"scores must not set {reserved!r}; pass it to adq_indices itself")
    _check_score_args(**score_kwargs)
    extractor = _check_extractor(model, extractor)
    store = as_cache(cache)
    net = _extractor(ds, model, extractor, device, store, progress)
    bins = dataset_bins(ds, net, num_bins, feature=feature, lam=lam, batch_size=batch_size, device=device,
                        cache=store, progress=progress)
    s = bin_scores(ds, net, num_bins, feature=feature, lam=lam, batch_size=batch_size, device=device, cache=store,
                   progress=progress, **score_kwargs)
    chosen, budgets = adq_select(bins, ds.labels, ratio, s["is_"], beta=beta, temperature=temperature, seed=seed,
                                 return_budgets=True)
    report = {"method": "adq", "ratio": ratio, "budget": budget, "num_bins": num_bins,
              "bin_sizes": [b.numel() for b in bins], "budgets": budgets.tolist(), "seed": seed, "beta": beta,
              "temperature": temperature, "rs": s["rs"].tolist(), "ds": s["ds"].tolist(), "is": s["is_"].tolist(),
              "importance": torch.softmax(s["is_"].double() / temperature, 0).tolist()}
    return chosen.cpu(), report


# ---------------------------------------------------------------------------- pixel quantization

def mae_model(dataset, *, patch: int = 4, mask_ratio: float = 0.75, epochs: int = 20, batch_size: int = 128,
              lr: float = 1e-3, embed_dim: int = 96, depth: int = 3, num_heads: int = 3, decoder_dim: int = 64,
              decoder_depth: int = 2, decoder_heads: int = 2, seed: int = 0, checkpoint=None, device=None,
              image_size=None, root=None, cache: ArtifactCache | None = None, progress: bool = True
              ) -> MaskedAutoencoder:
    """The MAE that refills dropped patches: trained on the training set (cached, kind ``mae``) or
    loaded from a local ``checkpoint`` (state_dict; the architecture arguments must match it).
    Returns it in eval mode on ``device``."""
    cfg = dict(patch=check_int("patch", patch, low=1),
               mask_ratio=check_float("mask_ratio", mask_ratio, low=0.0, high=1.0, low_open=True, high_open=True),
               epochs=check_int("epochs", epochs, low=1), batch_size=check_int("batch_size", batch_size, low=1),
               lr=check_float("lr", lr, low=0.0, low_open=True), embed_dim=check_int("embed_dim", embed_dim, low=4),
               depth=check_int("depth", depth, low=1), num_heads=check_int("num_heads", num_heads, low=1),
               decoder_dim=check_int("decoder_dim", decoder_dim, low=4),
               decoder_depth=check_int("decoder_depth", decoder_depth, low=1),
               decoder_heads=check_int("decoder_heads", decoder_heads, low=1), seed=check_int("seed", seed, low=0))
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset, image_size, root)
    arch = {k: cfg[k] for k in ("patch", "embed_dim", "depth", "num_heads", "decoder_dim", "decoder_depth",
                                "decoder_heads")}
    if not isinstance(ds.image_size, int):
        raise ValueError(f"the MAE needs square images, got {ds.image_size}")
    mae = MaskedAutoencoder(image_size=ds.image_size, in_channels=ds.channels, mean=ds.mean, std=ds.std, **arch)
    if checkpoint is not None:
        load_state(mae, read_checkpoint(checkpoint), f"checkpoint {checkpoint}")
        return mae.to(dev).eval()

    def compute():
        trained = train_mae(ds.images, mask_ratio=cfg["mask_ratio"], epochs=cfg["epochs"], batch_size=cfg["batch_size"],
                            lr=cfg["lr"], device=dev, seed=cfg["seed"], progress=progress, **arch)
        return state_dict_value(trained)

    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), **cfg}
    load_state(mae, store.get_or_compute("mae", key, compute, version=code_version()), "the cached MAE")
    return mae.to(dev).eval()


def pixel_quantize(dataset, indices: torch.Tensor, model: nn.Module, *, patch: int = 4, theta: float = 0.25,
                   sample_ratio: float | None = None, batch_size: int = 256, device=None, image_size=None, root=None,
                   cache: ArtifactCache | None = None, progress: bool = True) -> tuple[dict, dict[str, Any]]:
    """Pixel-quantize the selected images: Grad-CAM patch importance of ``model`` (true labels), drop the
    ⌊θ·P⌋ least important patches per image, keep the rest (cached, kind ``pixelquant``).

    Returns ``(record, report)``: ``record`` from :func:`dscore.quantize.pixelquant.quantize_pixels` for the images
    ``indices`` (in the given order); ``report`` = ``{theta, patch, storage_ratio,
    effective_keep_ratio}`` where the effective keep ratio is ``sample_ratio·(1 − θ)`` with
    ``sample_ratio`` defaulting to ``len(indices)/N``. Refill with
    ``restore_pixels(record, mae_model(...))``.
    """
    patch = check_int("patch", patch, low=1)
    theta = check_float("theta", theta, low=0.0, high=1.0, high_open=True)
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset, image_size, root)
    idx = torch.as_tensor(indices)
    if idx.dim() != 1 or idx.numel() == 0 or idx.is_floating_point() or idx.dtype == torch.bool:
        raise ValueError("indices must be a non-empty 1-D integer tensor")
    idx = idx.long().cpu()
    if int(idx.min()) < 0 or int(idx.max()) >= len(ds):
        raise ValueError(f"indices must lie in [0, {len(ds)})")
    side = ds.image_size if isinstance(ds.image_size, int) else None
    if side is None or side % patch:
        raise ValueError(f"image size {ds.image_size} is not divisible by patch={patch}")
    if sample_ratio is None:
        sample_ratio = idx.numel() / len(ds)
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model), "patch": patch, "theta": theta,
           "indices": hashlib.sha256(tensor_bytes(idx)).hexdigest()}

    def compute():
        images, labels = ds.images[idx], ds.labels[idx]
        importance = gradcam_patch_importance(model, images, labels, patch, device=dev, batch_size=batch_size,
                                              progress=progress)
        return quantize_pixels(images, drop_mask(importance, theta), patch)

    record = store.get_or_compute("pixelquant", key, compute, version=code_version())
    report = {"theta": theta, "patch": patch, "storage_ratio": storage_ratio(record["mask"]),
              "effective_keep_ratio": effective_keep_ratio(sample_ratio, theta)}
    return record, report
