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
per-bin budgets actually used. Every stage takes its settings as one checked config from
:mod:`dscore.quantize.config` (or a mapping of that config's fields); ``dataset`` is a registered name (its train
split at its native size) or an :class:`~dscore.data.ImageDataset` (to resize, load it with
:func:`dscore.data.load_dataset` first).
"""
from __future__ import annotations

import hashlib
import math
from typing import Any, Mapping

import torch
import torch.nn as nn

from ..cache import ArtifactCache, as_cache
from ..data import ImageDataset, resolve_dataset, stratified_indices, train_val_split
from ..features import GradientFeatures, extract_gradient_features
from ..fingerprint import (code_version, dataset_fingerprint, load_state, model_fingerprint, precision_tag,
                           read_checkpoint, state_dict_value, tensor_bytes)
from ..models import create_model
from ..select import budget_from_ratio
from ..evaluation import evaluate_cached
from ..train import PROTOCOLS, TrainProtocol, train_model
from ..utils import check_choice, check_float, check_int, make_generator, resolve_device, tqdm
from .config import (ADQ_BETA, ADQ_TEMPERATURE, FEATURE_KINDS, HEAD_CHOICES, TUNE_CHOICES, BinConfig, ExtractorConfig,
                     HeadConfig, MAEConfig, SamplingConfig, ScoreConfig, TrajectoryConfig, TuningConfig)
from .bins import generate_bins
from .diversity import ContrastiveHead, cosine_proxy_diversity, diversity_scores, train_contrastive_head
from .pixelquant import (
    DEFAULT_THETA,
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
    "HEAD_CHOICES",
    "TUNE_CHOICES",
    "feature_extractor",
    "classifier_layer",
    "reset_classifier",
    "dataset_features",
    "dataset_bins",
    "contrastive_head",
    "bin_scores",
    "dq_indices",
    "adq_indices",
    "bin_rates",
    "tune_adq",
    "choose_adq_setting",
    "ADQ_BETA",
    "ADQ_TEMPERATURE",
    "mae_model",
    "pixel_quantize",
    "texture_trajectory_run",
    "ADQ_TUNING",
]


# ----------------------------------------------------------------------------- feature network

def feature_extractor(dataset, config: ExtractorConfig | Mapping | None = None, *, device=None,
                      cache: ArtifactCache | None = None, progress: bool = True) -> nn.Module:
    """The feature network ``f`` of DQ/ADQ for ``dataset`` (a name — its train split — or an ImageDataset).

    ``config`` (:class:`~dscore.quantize.config.ExtractorConfig`, or a mapping of its fields): the network
    ``create_model(arch, **arch_kwargs)`` sized for the dataset (its mean/std inside, init from ``seed``).
    With ``checkpoint`` (a local file holding a state_dict, or a dict with a ``state_dict``/``model``
    entry) the weights — and the normalisation buffers saved with them — are loaded with
    ``torch.load(weights_only=True)`` and nothing is trained.
    Otherwise the network is trained with :func:`dscore.train.train_model` (SGD, cosine schedule,
    crop/flip, ``epochs``, ``batch_size``, ``lr``, ``seed``) on the training set — or on a stratified
    subset of ``train_per_class`` images per class drawn with ``seed`` — and its state_dict is cached
    (kind ``feature_net``). Returns the model in eval mode on ``device``.

    ``head``: ``"trained"`` (default) keeps the classifier trained with the body. ``"random"`` re-initialises
    the last linear layer (PyTorch's default ``nn.Linear`` init, seeded with ``seed``) after training or
    loading, before any δ = softmax(logits) − onehot(y) is computed. That is the authors' setting: an
    ImageNet-pretrained body with a fresh, untrained classifier for the new classes and no training, which
    makes DQ's gradient feature close to embedding cosine (δ is then nearly the same for every sample of
    a class). We cannot load ImageNet weights, so the default keeps our trained extractor, whose δ carries
    per-sample difficulty; ``"random"`` with a local ``checkpoint`` reproduces the authors' recipe. The
    random head is a separate cached artefact (its key holds ``head``), derived from the cached trained one.
    """
    cfg = ExtractorConfig.of(config, "extractor")
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset)
    model = create_model(cfg.arch, num_classes=ds.num_classes, in_channels=ds.channels, image_size=ds.image_size,
                         mean=ds.mean, std=ds.std, seed=cfg.seed, **cfg.arch_kwargs)
    if cfg.checkpoint is not None:
        load_state(model, read_checkpoint(cfg.checkpoint), f"checkpoint {cfg.checkpoint}")
        if cfg.head == "random":
            reset_classifier(model, cfg.seed)
        return model.to(dev).eval()
    if cfg.train_per_class is not None:
        smallest = int(ds.class_counts().min())
        if cfg.train_per_class > smallest:
            raise ValueError(f"train_per_class={cfg.train_per_class} exceeds the smallest class ({smallest} "
                             f"images); allowed: 1 <= train_per_class <= {smallest}")

    def train():
        if cfg.train_per_class is None:
            images, labels = ds.images, ds.labels
        else:
            idx = stratified_indices(ds.labels, cfg.train_per_class, cfg.seed, num_classes=ds.num_classes)
            images, labels = ds.images[idx], ds.labels[idx]
        recipe = TrainProtocol(epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr, schedule="cosine",
                               augment="crop_flip")
        train_model(model, images, labels, recipe, device=dev, seed=cfg.seed, progress=progress)
        return state_dict_value(model)

    def randomise():    # derived from the cached trained network, so both variants share one training
        trained = feature_extractor(ds, cfg.replace(head="trained"), device=dev, cache=store, progress=progress)
        return state_dict_value(reset_classifier(trained, cfg.seed))

    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), **cfg.key(), "schedule": "cosine",
           "augment": "crop_flip", "momentum": 0.9, "weight_decay": 5e-4}
    state = store.get_or_compute("feature_net", key, train if cfg.head == "trained" else randomise,
                                 version=code_version(__name__))
    load_state(model, state, "the cached feature network")
    return model.to(dev).eval()


def classifier_layer(model: nn.Module) -> nn.Linear:
    """The last linear layer of a dscore model (the one :meth:`classify` applies): ``model.fc``, else the
    last ``nn.Linear`` inside ``model.net.classifier`` / ``model.net.get_classifier()``."""
    layer = getattr(model, "fc", None)
    if not isinstance(layer, nn.Linear):
        net = getattr(model, "net", None)
        layer = getattr(net, "classifier", None) if net is not None else None
        if layer is None and net is not None and hasattr(net, "get_classifier"):
            layer = net.get_classifier()
        if isinstance(layer, nn.Module) and not isinstance(layer, nn.Linear):
            linears = [m for m in layer.modules() if isinstance(m, nn.Linear)]
            layer = linears[-1] if linears else None
    if not isinstance(layer, nn.Linear):
        raise ValueError(f"cannot find the classifier (last nn.Linear) of {type(model).__name__}")
    return layer


def reset_classifier(model: nn.Module, seed: int) -> nn.Module:
    """Re-initialise ``model``'s classifier in place with ``nn.Linear``'s default init, seeded with ``seed``
    (the global RNG is left untouched). Returns ``model``."""
    seed = check_int("seed", seed, low=0)
    layer = classifier_layer(model)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        weight = torch.empty_like(layer.weight, device="cpu")
        bias = torch.empty_like(layer.bias, device="cpu") if layer.bias is not None else None
        probe = nn.Linear(layer.in_features, layer.out_features, bias=bias is not None)
        weight.copy_(probe.weight)
        if bias is not None:
            bias.copy_(probe.bias)
    with torch.no_grad():
        layer.weight.copy_(weight)
        if bias is not None:
            layer.bias.copy_(bias)
    return model


def _feature_net(ds: ImageDataset, model, extractor, device, cache, progress) -> nn.Module:
    """``model`` when given (a dscore model), else the cached :func:`feature_extractor` of ``extractor``."""
    if model is not None:
        if not isinstance(model, nn.Module) or not hasattr(model, "embed") or not hasattr(model, "classify"):
            raise ValueError("model must be a dscore model with embed() and classify()")
        if extractor is not None:
            raise ValueError("give model= or extractor=, not both")
        return model
    return feature_extractor(ds, extractor, device=device, cache=cache, progress=progress)


# ------------------------------------------------------------------------------ features & bins

def dataset_features(dataset, model: nn.Module, *, batch_size: int = 512, device=None,
                     cache: ArtifactCache | None = None, progress: bool = True) -> dict[str, Any]:
    """Embeddings and last-layer gradient features of the whole training set, cached (kind ``features``).

    Returns ``{"embeddings": (N, D) float32, "gradient": GradientFeatures(δ (N, C), e (N, D))}`` on CPU,
    from one pass of :func:`dscore.features.extract_gradient_features` in batches of ``batch_size``.
    """
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset)
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model)}

    def compute():
        g = extract_gradient_features(model, ds.images, ds.labels, batch_size=batch_size, device=dev,
                                      progress=progress)
        return {"delta": g.delta, "embedding": g.embedding}

    value = store.get_or_compute("features", key, compute, version=code_version(__name__))
    return {"embeddings": value["embedding"], "gradient": GradientFeatures(value["delta"], value["embedding"])}


def _check_bins_fit(ds: ImageDataset, num_bins: int) -> None:
    counts = ds.class_counts()
    smallest = int(counts[counts > 0].min())
    if num_bins > smallest:
        raise ValueError(f"num_bins={num_bins} is out of range; allowed: 1 <= num_bins <= {smallest} "
                         "(the size of the smallest class)")


def dataset_bins(dataset, model: nn.Module, bins: BinConfig | Mapping | None = None, *, batch_size: int = 512,
                 device=None, cache: ArtifactCache | None = None, progress: bool = True) -> list[torch.Tensor]:
    """DQ's bins of the training set (:func:`dscore.quantize.generate_bins`), cached (kind ``bins``).

    ``bins`` (:class:`~dscore.quantize.config.BinConfig` or a mapping of its fields): ``num_bins`` per class on
    ``feature`` (``"gradient"``, DQ's implicit last-layer gradients, the default, or ``"embedding"``), GraphCut's
    ``lam``. Returns ``num_bins`` int64 CPU tensors of global indices.
    """
    cfg = BinConfig.of(bins, "bins")
    store = as_cache(cache)
    ds = resolve_dataset(dataset)
    _check_bins_fit(ds, cfg.num_bins)
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model),
           **cfg.key()}

    def compute():
        feats = dataset_features(ds, model, batch_size=batch_size, device=device, cache=store, progress=progress)
        x = feats["gradient"] if cfg.feature == "gradient" else feats["embeddings"]
        out = generate_bins(x.to(resolve_device(device)), ds.labels, cfg.num_bins, lam=cfg.lam, progress=progress)
        return {"indices": torch.cat(out).cpu(), "sizes": torch.tensor([b.numel() for b in out])}

    value = store.get_or_compute("bins", key, compute, version=code_version(__name__))
    return list(torch.split(value["indices"], value["sizes"].tolist()))


# ------------------------------------------------------------------------------------ bin scores

def contrastive_head(dataset, model: nn.Module, config: HeadConfig | Mapping | None = None, *, device=None,
                     cache: ArtifactCache | None = None, progress: bool = True) -> ContrastiveHead:
    """The DS discriminator trained on the training set with ``model`` frozen, cached (``contrastive_head``).

    :func:`dscore.quantize.diversity.train_contrastive_head` with ``config``
    (:class:`~dscore.quantize.config.HeadConfig` or a mapping of its fields) on all training images, or on
    ``max_images`` of them drawn uniformly with ``seed``. Returns the head in eval mode on ``device``.
    """
    cfg = HeadConfig.of(config, "head")
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset)
    head = ContrastiveHead.for_model(model, hidden_dim=cfg.hidden_dim, out_dim=cfg.out_dim, seed=cfg.seed)

    def compute():
        images = ds.images
        if cfg.max_images is not None and cfg.max_images < len(ds):
            pick = torch.randperm(len(ds), generator=make_generator(cfg.seed))[: cfg.max_images].sort().values
            images = images[pick]
        train_contrastive_head(model, images, cfg, device=dev, progress=progress, head=head)
        return state_dict_value(head)

    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model),
           **cfg.key()}
    load_state(head, store.get_or_compute("contrastive_head", key, compute, version=code_version(__name__)),
               "the cached head")
    return head.to(dev).eval()


def bin_scores(dataset, model: nn.Module, bins: BinConfig | Mapping | None = None,
               scores: ScoreConfig | Mapping | None = None, *, batch_size: int = 512, device=None,
               cache: ArtifactCache | None = None, progress: bool = True) -> dict[str, torch.Tensor]:
    """ADQ's bin scores, cached (kind ``bin_scores``): ``{"rs", "ds", "is_", "ds_cosine_proxy"}``, (K,) float64.

    On the bins of ``bins`` (:func:`dataset_bins`) with ``scores`` (:class:`~dscore.quantize.config.ScoreConfig`
    or a mapping of its fields): RS, the texture level of L×L patches (L = ``patch``); DS, contrastive diversity
    with the cached head (:func:`contrastive_head` of ``scores.head``, τ = ``tau``, ≤ ``max_negatives``
    negatives, views from ``seed``); IS = z(RS) + z(DS); ``ds_cosine_proxy``: the authors' released diagnostic
    (:func:`dscore.quantize.diversity.cosine_proxy_diversity`: an untrained head seeded with ``seed``
    on the feature network's embeddings of two random-resized-crop + flip views per member,
    1 / mean of the 2|B|×2|B| view Gram matrix) — reported, never used for sampling.
    """
    bin_cfg = BinConfig.of(bins, "bins")
    cfg = ScoreConfig.of(scores, "scores")
    batch_size = check_int("batch_size", batch_size, low=1)
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset)
    _check_bins_fit(ds, bin_cfg.num_bins)
    head_cfg = cfg.head
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model),
           **bin_cfg.key(), "patch": cfg.patch, "max_negatives": cfg.max_negatives, "head": head_cfg.key(),
           "batch_size": batch_size}

    def compute():
        members = dataset_bins(ds, model, bin_cfg, batch_size=batch_size, device=dev, cache=store, progress=progress)
        head = contrastive_head(ds, model, head_cfg, device=dev, cache=store, progress=progress)
        rs = representativeness_scores(ds.images, members, cfg.patch, batch_size=batch_size, device=dev).cpu()
        ds_scores = diversity_scores(model, head, ds.images, members, tau=head_cfg.tau,
                                     max_negatives=cfg.max_negatives, seed=head_cfg.seed, device=dev,
                                     batch_size=batch_size, progress=progress)
        proxy = cosine_proxy_diversity(model, ds.images, members, seed=head_cfg.seed, batch_size=batch_size,
                                       device=dev, progress=progress)
        return {"rs": rs, "ds": ds_scores, "is_": importance_scores(rs, ds_scores).cpu(), "ds_cosine_proxy": proxy}

    return store.get_or_compute("bin_scores", key, compute, version=code_version(__name__))


# ------------------------------------------------------------------------------------ selections

def _prepare(dataset, ratio, seed, bins):
    ratio = check_float("ratio", ratio, low=0.0, high=1.0, low_open=True)
    seed = check_int("seed", seed, low=0)
    bin_cfg = BinConfig.of(bins, "bins")
    ds = resolve_dataset(dataset)
    _check_bins_fit(ds, bin_cfg.num_bins)
    return ds, ratio, seed, bin_cfg, budget_from_ratio(ratio, len(ds))


def dq_indices(dataset, ratio: float, seed: int = 0, *, model: nn.Module | None = None,
               extractor: ExtractorConfig | Mapping | None = None, bins: BinConfig | Mapping | None = None,
               batch_size: int = 512, device=None, cache: ArtifactCache | None = None,
               progress: bool = True) -> tuple[torch.Tensor, dict[str, Any]]:
    """Dataset Quantization: cached bins, then the same fraction of every bin, class-stratified.

    ``dataset``: a name (its train split) or an ImageDataset. The feature network is ``model`` or
    ``feature_extractor(dataset, extractor)``; the bins those of ``bins`` (:class:`~dscore.quantize.config.BinConfig`).
    ``M = round(ratio·N)`` is split over the bins proportionally (:func:`dscore.quantize.bin_budgets`, β = 0) and
    sampled with ``seed`` (:func:`dscore.quantize.sample_from_bins`). Returns (sorted int64 indices into the
    training set, report) with report keys ``method, ratio, budget, num_bins, bin_sizes, budgets, seed``.
    """
    ds, ratio, seed, bin_cfg, budget = _prepare(dataset, ratio, seed, bins)
    batch_size = check_int("batch_size", batch_size, low=1)
    store = as_cache(cache)
    net = _feature_net(ds, model, extractor, device, store, progress)
    members = dataset_bins(ds, net, bin_cfg, batch_size=batch_size, device=device, cache=store, progress=progress)
    sizes = [b.numel() for b in members]
    budgets = bin_budgets(sizes, budget)
    chosen = sample_from_bins(members, ds.labels, budgets, seed=seed)
    report = {"method": "dq", "ratio": ratio, "budget": budget, "num_bins": bin_cfg.num_bins, "bin_sizes": sizes,
              "budgets": budgets.tolist(), "seed": seed}
    return chosen.cpu(), report


#: How the defaults were chosen (copied into every :func:`adq_indices` report).
ADQ_TUNING = {"beta": ADQ_BETA, "temperature": ADQ_TEMPERATURE,
              "how": "tune_adq on a Fashion-MNIST validation split (10k pool, 8000/2000, ratio 0.1, 3 seeds); grid "
                     "flat within noise, so the setting closest to the authors' +-15% rate change was taken",
              "rates": [0.887, 0.963, 0.975, 1.125, 1.087, 0.963, 1.137, 0.988, 0.95, 0.925]}


def bin_rates(bin_sizes, budgets) -> list[float]:
    """Per-bin sampling rate relative to uniform: ``q_n / (M·N(n)/ΣN)`` (1 = DQ's uniform rate).

    ``bin_sizes`` N(n) and ``budgets`` q_n per bin, ``M = Σq``. The denominator is the exact
    proportional share (not its rounded integer), so a rate is not distorted by rounding. Empty bins
    get rate 1.0. Returns a list of floats.
    """
    sizes = torch.as_tensor(bin_sizes, dtype=torch.float64).reshape(-1)
    q = torch.as_tensor(budgets, dtype=torch.float64).reshape(-1)
    if sizes.shape != q.shape or sizes.numel() == 0:
        raise ValueError(f"bin_sizes ({sizes.numel()}) and budgets ({q.numel()}) need one entry per bin each")
    if bool((sizes < 0).any()) or bool((q < 0).any()) or bool((q > sizes).any()):
        raise ValueError("bin sizes and budgets must be >= 0 with budgets[n] <= bin_sizes[n]")
    total, m = float(sizes.sum()), float(q.sum())
    if total == 0 or m == 0:
        return [1.0] * sizes.numel()
    share = m * sizes / total
    return torch.where(share > 0, q / torch.where(share > 0, share, torch.ones_like(share)),
                       torch.ones_like(share)).tolist()


def adq_indices(dataset, ratio: float, seed: int = 0, *, sampling: SamplingConfig | Mapping | None = None,
                model: nn.Module | None = None, extractor: ExtractorConfig | Mapping | None = None,
                bins: BinConfig | Mapping | None = None, scores: ScoreConfig | Mapping | None = None,
                batch_size: int = 512, device=None, cache: ArtifactCache | None = None, progress: bool = True
                ) -> tuple[torch.Tensor, dict[str, Any]]:
    """Adaptive Dataset Quantization: DQ's bins, per-bin budgets from the importance score.

    As :func:`dq_indices`, but the budgets are ``bin_budgets(sizes, M, IS / temperature, beta=beta)`` (β and T
    from ``sampling``, :class:`~dscore.quantize.config.SamplingConfig`) with IS from :func:`bin_scores`
    (``scores``, :class:`~dscore.quantize.config.ScoreConfig`, e.g. ``{"patch": 32, "head_epochs": 5,
    "seed": 0}``). The scores have their own seed (head init, views, negatives; default 0), separate from
    ``seed``, which only drives the sampling — so repeated selections with different seeds share one set of
    cached scores. β = 0 reproduces DQ's budgets and, for the same seed, its indices.

    Strength of the adaptive sampling. ``temperature`` is the one knob: z-scored IS spans several
    units, so at T = 1 the softmax is sharp and per-bin rates move far from uniform; larger T
    flattens it towards DQ's uniform rates. The authors' released sampler instead multiplies the bin
    sizes by hand-set importances in [0.985, 1.182], which moves rates by about −5% … +14% of uniform.
    The defaults β = :data:`ADQ_BETA` = 0.3 and T = :data:`ADQ_TEMPERATURE` = 2 were chosen on a
    Fashion-MNIST validation split with :func:`tune_adq`: its grid over β ∈ {0.3, 0.6, 0.9} ×
    T ∈ {1, 2, 4, 8} was flat within noise, so the setting whose per-bin rates are closest to the
    authors' ±15% strength was taken (rates 0.89–1.14 of uniform there); :data:`ADQ_TUNING` records it.
    The paper's β = 0.6 remains one argument away.

    Report keys: those of :func:`dq_indices` plus ``beta, temperature, rs, ds, is, importance``
    (softmax(IS/T) per bin), ``rates`` (:func:`bin_rates`: budget / uniform budget per bin) and
    ``defaults`` (:data:`ADQ_TUNING`) — the budgets are the ones actually used.
    """
    ds, ratio, seed, bin_cfg, budget = _prepare(dataset, ratio, seed, bins)
    samp = SamplingConfig.of(sampling, "sampling")
    score_cfg = ScoreConfig.of(scores, "scores")
    batch_size = check_int("batch_size", batch_size, low=1)
    store = as_cache(cache)
    net = _feature_net(ds, model, extractor, device, store, progress)
    members = dataset_bins(ds, net, bin_cfg, batch_size=batch_size, device=device, cache=store, progress=progress)
    s = bin_scores(ds, net, bin_cfg, score_cfg, batch_size=batch_size, device=device, cache=store, progress=progress)
    chosen, budgets = adq_select(members, ds.labels, ratio, s["is_"], beta=samp.beta, temperature=samp.temperature,
                                 seed=seed, return_budgets=True)
    sizes = [b.numel() for b in members]
    report = {"method": "adq", "ratio": ratio, "budget": budget, "num_bins": bin_cfg.num_bins,
              "bin_sizes": sizes, "budgets": budgets.tolist(), "seed": seed, "beta": samp.beta,
              "temperature": samp.temperature, "rs": s["rs"].tolist(), "ds": s["ds"].tolist(),
              "is": s["is_"].tolist(), "importance": torch.softmax(s["is_"].double() / samp.temperature, 0).tolist(),
              "rates": bin_rates(sizes, budgets), "defaults": dict(ADQ_TUNING)}
    return chosen.cpu(), report


def tune_adq(dataset, ratio: float, tuning: TuningConfig | Mapping | None = None, *,
             extractor: ExtractorConfig | Mapping | None = None, bins: BinConfig | Mapping | None = None,
             scores: ScoreConfig | Mapping | None = None, batch_size: int = 512, device=None,
             cache: ArtifactCache | None = None, progress: bool = True) -> dict[str, Any]:
    """Choose ADQ's β and temperature T on a validation split of the training set (never the test set).

    ``tuning`` (:class:`~dscore.quantize.config.TuningConfig` or a mapping of its fields) fixes the grid, the
    split, the seeds, the evaluation network and the rule. ``dataset`` (a name — its train split — or an
    ImageDataset) is split class-stratified by :func:`dscore.data.train_val_split` (``val_fraction``,
    ``split_seed``). On the train part only: the feature network (``extractor``), DQ's bins (``bins``) and the bin
    scores (``scores``), all cached as usual. For every (β, T) in ``betas × temperatures`` and every seed s in
    ``seeds``: the ADQ selection of ``ratio`` of the train part with sampling seed s
    (:func:`dscore.quantize.adq_select`), then a fresh ``eval_arch`` network (``eval_arch_kwargs``, init
    from s) trained on the selection with the coreset protocol (SGD momentum 0.9, weight decay 5e-4, cosine LR
    ``eval_lr``, crop/flip, ``eval_epochs``, ``eval_batch_size``, seed s) and scored on the **validation** part
    (final epoch). With ``pipeline_per_seed`` every seed s also draws its own feature network (``extractor`` with
    seed s), bins and scores (``scores`` with seed s), so the choice is not conditional on one pipeline; the rows'
    ``budgets``, ``rates`` and ``strength`` are then means over the seeds. ``include_dq`` adds DQ (β = 0) as a
    reference row. Every single run is a cached
    :func:`dscore.evaluation.evaluate_cached` run (keyed by the selected images, the validation split and the
    settings, so an interrupted tuning resumes, settings that give the same budgets share runs, and a study that
    evaluates the same selection on the same split reuses them); the summary is cached too (kind ``adq_tuning``).

    Choice (``choose``): ``"best"`` takes the highest mean validation accuracy (ties: first in grid
    order). ``"within_noise"`` (default) first keeps every setting whose mean is within two standard
    errors of the best one's (``best − mean <= 2·sqrt(s_best²/n + s²/n)``, sample std over the n seeds),
    i.e. not distinguishable from it at this scale, and among those takes the one whose sampling
    strength ``max_n |rate_n − 1|`` (:func:`bin_rates`) is closest to ``authors_strength`` (0.15 —
    the authors' released sampler moves rates by about ±15%), ties to the higher mean. With one seed
    no noise is known and both rules coincide.

    Returns ``{"beta", "temperature"`` (the choice), ``"best"`` ({beta, temperature} of the highest
    mean), ``"flat"`` (True when every grid setting is within noise of the best), ``"grid"`` (one dict
    per setting in grid order: ``beta, temperature, mean, std, accs, budgets, rates, strength,
    within_noise``), ``"dq"`` (the β = 0 row or None), ``"bin_sizes", "budget", "train_size",
    "val_size", "seeds", "choose"}``. Accuracies are in [0, 1].
    """
    ratio = check_float("ratio", ratio, low=0.0, high=1.0, low_open=True)
    t = TuningConfig.of(tuning, "tuning")
    ext = ExtractorConfig.of(extractor, "extractor")
    bin_cfg = BinConfig.of(bins, "bins")
    score_cfg = ScoreConfig.of(scores, "scores")
    batch_size = check_int("batch_size", batch_size, low=1)
    seeds = list(t.seeds)
    eval_cfg = dict(arch=t.eval_arch, arch_kwargs=dict(t.eval_arch_kwargs), epochs=t.eval_epochs,
                    batch_size=t.eval_batch_size, lr=t.eval_lr, schedule="cosine", augment="crop_flip", momentum=0.9,
                    weight_decay=5e-4)
    store = as_cache(cache)
    full = resolve_dataset(dataset)
    train_ds, val_ds = train_val_split(full, t.val_fraction, t.split_seed)
    _check_bins_fit(train_ds, bin_cfg.num_bins)
    budget = budget_from_ratio(ratio, len(train_ds))
    ext_key = ext.key()
    if ext.checkpoint is not None:
        ext_key["checkpoint"] = str(ext.checkpoint)
    key = {"dataset": dataset_fingerprint(full), "precision": precision_tag(device), "ratio": ratio,
           **{k: v for k, v in t.key().items() if not k.startswith("eval_")}, "eval": eval_cfg, **bin_cfg.key(),
           "scores": score_cfg.key(), "extractor": ext_key}

    def pipeline_of(sd):
        e = ext.replace(seed=sd) if t.pipeline_per_seed else ext
        sc = score_cfg.replace(seed=sd) if t.pipeline_per_seed else score_cfg
        net = feature_extractor(train_ds, e, device=device, cache=store, progress=progress)
        members = dataset_bins(train_ds, net, bin_cfg, batch_size=batch_size, device=device, cache=store,
                               progress=progress)
        s = bin_scores(train_ds, net, bin_cfg, sc, batch_size=batch_size, device=device, cache=store,
                       progress=progress)
        return members, s["is_"]

    def compute():
        settings = ([(0.0, 1.0)] if t.include_dq else []) + [(b, x) for b in t.betas for x in t.temperatures]
        bar = tqdm(total=len(settings) * len(seeds), desc="tune ADQ (beta, T) x seeds", disable=not progress)
        accs = {i: [] for i in range(len(settings))}
        budgets = {i: [] for i in range(len(settings))}
        rates = {i: [] for i in range(len(settings))}
        shared = None if t.pipeline_per_seed else pipeline_of(seeds[0])
        sizes = []
        for sd in seeds:                       # seeds outside: one pipeline in memory at a time
            members, importance = shared if shared is not None else pipeline_of(sd)
            sizes.append([b.numel() for b in members])
            for i, (beta, temp) in enumerate(settings):
                chosen, b = adq_select(members, train_ds.labels, ratio, importance, beta=beta, temperature=temp,
                                       seed=sd, return_budgets=True)
                accs[i].append(_validation_run(train_ds, val_ds, chosen, sd, eval_cfg, device, store))
                budgets[i].append(b.double())
                rates[i].append(bin_rates(sizes[-1], b))
                bar.update(1)
        bar.close()
        rows = []
        for i, (beta, temp) in enumerate(settings):
            arr = torch.tensor(accs[i], dtype=torch.float64)
            mean_budgets = torch.stack(budgets[i]).mean(0)
            rows.append({"beta": beta, "temperature": temp, "mean": float(arr.mean()),
                         "std": float(arr.std()) if len(accs[i]) > 1 else 0.0, "accs": accs[i],
                         "budgets": (mean_budgets if t.pipeline_per_seed else mean_budgets.round().long()).tolist(),
                         "rates": torch.tensor(rates[i], dtype=torch.float64).mean(0).tolist(),
                         "strength": sum(max(abs(r - 1.0) for r in rs) for rs in rates[i]) / len(rates[i])})
        dq = rows.pop(0) if t.include_dq else None
        mean_sizes = torch.tensor(sizes, dtype=torch.float64).mean(0)
        return {"rows": rows, "dq": dq,
                "bin_sizes": mean_sizes.tolist() if t.pipeline_per_seed else mean_sizes.round().long().tolist()}

    value = store.get_or_compute("adq_tuning", key, compute, version=code_version(__name__))
    rows = value["rows"]
    pick, best = choose_adq_setting(rows, len(seeds), choose=t.choose, authors_strength=t.authors_strength)
    return {"beta": rows[pick]["beta"], "temperature": rows[pick]["temperature"],
            "best": {"beta": rows[best]["beta"], "temperature": rows[best]["temperature"]},
            "flat": all(r["within_noise"] for r in rows), "grid": rows, "dq": value["dq"],
            "bin_sizes": value["bin_sizes"], "budget": budget, "train_size": len(train_ds), "val_size": len(val_ds),
            "seeds": seeds, "choose": t.choose}


def choose_adq_setting(rows, num_seeds: int, *, choose: str = "within_noise",
                       authors_strength: float = 0.15) -> tuple[int, int]:
    """The rule of :func:`tune_adq`: returns ``(chosen index, best index)`` into ``rows`` and sets
    ``row["within_noise"]`` on every row.

    ``rows``: dicts with ``mean``, ``std`` (sample std over ``num_seeds`` runs) and ``strength``
    (max |rate − 1|). Best = highest mean (ties: first). A row is within noise of the best when
    ``best − mean <= 2·sqrt((s_best² + s²)/n)`` (n = ``num_seeds``; with n = 1 only equal means are).
    ``"best"`` picks the best; ``"within_noise"`` picks, among rows within noise, the strength closest
    to ``authors_strength`` (ties: higher mean, then first).
    """
    rows = list(rows)
    if not rows:
        raise ValueError("rows is empty; nothing to choose from")
    n = check_int("num_seeds", num_seeds, low=1)
    check_choice("choose", choose, TUNE_CHOICES)
    authors_strength = check_float("authors_strength", authors_strength, low=0.0)
    best = max(range(len(rows)), key=lambda i: (rows[i]["mean"], -i))
    for r in rows:
        noise = 2.0 * math.sqrt((rows[best]["std"] ** 2 + r["std"] ** 2) / n) if n > 1 else 0.0
        r["within_noise"] = bool(rows[best]["mean"] - r["mean"] <= noise)
    if choose == "best":
        return best, best
    pick = min((i for i, r in enumerate(rows) if r["within_noise"]),
               key=lambda i: (abs(rows[i]["strength"] - authors_strength), -rows[i]["mean"], i))
    return pick, best


def _validation_run(train_ds: ImageDataset, val_ds: ImageDataset, chosen: torch.Tensor, seed: int, eval_cfg: dict,
                    device, store: ArtifactCache) -> float:
    """Validation accuracy of a fresh ``eval_cfg`` network trained on ``train_ds[chosen]``: one
    :func:`dscore.evaluation.evaluate_cached` run with the coreset protocol at the tuning's epochs, batch and LR,
    so a study that evaluates the same selection on the same validation split shares the run."""
    idx = chosen.long().cpu()
    protocol = PROTOCOLS["coreset"].replace(epochs=eval_cfg["epochs"], batch_size=eval_cfg["batch_size"],
                                            lr=eval_cfg["lr"], momentum=eval_cfg["momentum"],
                                            weight_decay=eval_cfg["weight_decay"], schedule=eval_cfg["schedule"],
                                            augment=eval_cfg["augment"])
    out = evaluate_cached(train_ds.images[idx], train_ds.labels[idx], val_ds, arch=eval_cfg["arch"],
                          arch_kwargs=eval_cfg["arch_kwargs"], protocol=protocol, seed=seed, device=device, cache=store)
    return float(out["acc"])


# ---------------------------------------------------------------------------- pixel quantization

def mae_model(dataset, config: MAEConfig | Mapping | None = None, *, device=None, cache: ArtifactCache | None = None,
              progress: bool = True) -> MaskedAutoencoder:
    """The MAE that refills dropped patches (``config``: :class:`~dscore.quantize.config.MAEConfig` or a mapping
    of its fields): trained on the training set (cached, kind ``mae``) or loaded from a local ``checkpoint``
    (state_dict; the architecture fields must match it). Returns it in eval mode on ``device``."""
    cfg = MAEConfig.of(config, "mae")
    dev = resolve_device(device)
    store = as_cache(cache)
    ds = resolve_dataset(dataset)
    arch = cfg.architecture()
    if not isinstance(ds.image_size, int):
        raise ValueError(f"the MAE needs square images, got {ds.image_size}")
    mae = MaskedAutoencoder(image_size=ds.image_size, in_channels=ds.channels, mean=ds.mean, std=ds.std, **arch)
    if cfg.checkpoint is not None:
        load_state(mae, read_checkpoint(cfg.checkpoint), f"checkpoint {cfg.checkpoint}")
        return mae.to(dev).eval()

    def compute():
        trained = train_mae(ds.images, cfg, device=dev, progress=progress)
        return state_dict_value(trained)

    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), **cfg.key()}
    load_state(mae, store.get_or_compute("mae", key, compute, version=code_version(__name__)), "the cached MAE")
    return mae.to(dev).eval()


def pixel_quantize(dataset, indices: torch.Tensor, model: nn.Module, *, patch: int = 4, theta: float = DEFAULT_THETA,
                   sample_ratio: float | None = None, batch_size: int = 256, device=None,
                   cache: ArtifactCache | None = None, progress: bool = True) -> tuple[dict, dict[str, Any]]:
    """Pixel-quantize the selected images: Grad-CAM patch importance of ``model`` (true labels), drop the
    ⌊θ·P⌋ least important patches per image, keep the rest (cached, kind ``pixelquant``). θ defaults
    to 0.2, the authors' mask ratio; for a target effective keep ratio select
    ``image_fraction_for(effective, θ)`` of the images (the authors' "10%" is 12.5% × 0.8).

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
    ds = resolve_dataset(dataset)
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
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), "model": model_fingerprint(model),
           "patch": patch, "theta": theta, "indices": hashlib.sha256(tensor_bytes(idx)).hexdigest()}

    def compute():
        images, labels = ds.images[idx], ds.labels[idx]
        importance = gradcam_patch_importance(model, images, labels, patch, device=dev, batch_size=batch_size,
                                              progress=progress)
        return quantize_pixels(images, drop_mask(importance, theta), patch)

    record = store.get_or_compute("pixelquant", key, compute, version=code_version(__name__))
    report = {"theta": theta, "patch": patch, "storage_ratio": storage_ratio(record["mask"]),
              "effective_keep_ratio": effective_keep_ratio(sample_ratio, theta)}
    return record, report


# --------------------------------------------------------------------------- texture-level trajectories

def texture_trajectory_run(dataset, config: TrajectoryConfig | Mapping, *, device=None,
                           cache: ArtifactCache | None = None, progress: bool = True) -> dict[str, torch.Tensor]:
    """ADQ Fig. 4 for one seed, cached (kind ``texture_trajectory``): from one initialisation an expert trained on
    the whole ``dataset`` and three students on its high / medium / low texture-level thirds, cut within every class
    (``within_class``, so the thirds share the class mix) or over the whole set (False, the paper's description)
    (:func:`dscore.quantize.trajectory.texture_trajectories`, constant-LR SGD), with the settings of ``config``
    (:class:`~dscore.quantize.config.TrajectoryConfig` or a mapping of its fields). Returns the per-epoch
    normalised distances ``{"high", "medium", "low", "expert_travel"}`` as float64 (epochs,) tensors."""
    from .trajectory import texture_trajectories

    cfg = TrajectoryConfig.of(config, "trajectory")
    store = as_cache(cache)
    ds = resolve_dataset(dataset)
    key = {"dataset": dataset_fingerprint(ds), "precision": precision_tag(device), **cfg.key()}

    def compute():
        def model_fn():
            return create_model(cfg.arch, num_classes=ds.num_classes, in_channels=ds.channels,
                                image_size=ds.image_size, mean=ds.mean, std=ds.std, **cfg.arch_kwargs)

        recipe = {"epochs": cfg.epochs, "lr": cfg.lr, "batch_size": cfg.batch_size, "augment": cfg.augment}
        return dict(texture_trajectories(ds.images, ds.labels, model_fn, recipe, patch=cfg.patch,
                                         within_class=cfg.within_class, device=resolve_device(device),
                                         seed=cfg.seed, progress=progress))

    return store.get_or_compute("texture_trajectory", key, compute, version=code_version(__name__))
