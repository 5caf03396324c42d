"""The cost plan of a profile: what every page asks for, and an estimate of what it costs, before any of it runs.

``python -m dscore.book plan --profile paper`` (``make plan PROFILE=paper``) prints one row per page and a total:

* **the work** the page's parameters ask for: networks trained (evaluations, feature networks, probes, the MAE),
  their image-epochs (Σ epochs × training images), distillation runs and their image steps;
* **its FLOPs**, from per-image costs *measured* on the machine at hand with :class:`torch.utils.flop_counter.
  FlopCounterMode` (one small batch per network of the profile: a training pass, a forward pass, and a
  gradient-matching pass — forward, parameter gradients with their graph, the backward of a loss on those gradients);
* **an estimated time** on the machine at hand (each network's training loop timed at batch 64 on this machine,
  every pass of that network charged at its rate) and on a GPU of a stated throughput and utilisation.

Work is keyed like the artefacts it stands for, so a run that several pages share (the main table's distillations,
read again by the efficiency curves, the ablation and the cost page) is charged once, to the first page in book
order; the ``asks`` columns count what each page requests, the ``new`` columns what it adds.

What the plan counts and what it leaves out (an estimate, labelled as one):

* evaluations: ``epochs × images`` training passes plus one forward pass over the scoring split at every check;
* distillations (:func:`distill_passes`, the loop of :mod:`dscore.distill.engine` written as passes): per image step
  and class a training pass over the real batch and a matching pass over the class's synthetic images; the network
  updates between image steps; the networks' pretraining; the representative sampler's forward passes over each
  class at every re-clustering; DM's forward passes. k-means, GraphCut, t-SNE, augmentation and data movement are
  not FLOPs here, and are not counted;
* ADQ's pipeline per seed: the feature network's training and one pass over the training part; the DS head, the bins
  (GraphCut) and the Grad-CAM masks are not counted (seconds at the default scale);
* the DREAM+ continual-learning page: every step trains on the memory seen so far (``epochs × memory`` per step).

The estimate is checked against the measured ``default`` build in the README (the ratio of the two is stated there).
"""
from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping, Sequence

import torch

from ..paths import repo_root
from .params import BookError, check_profile, declared_parameters, load_params, notebook_names

__all__ = ["DataShape", "DATA_SHAPES", "Net", "Work", "UnitCost", "distill_passes", "evaluation_passes",
           "plan_pages", "measure_units", "estimate", "format_plan", "main", "GPU_DEFAULT"]

#: The GPU of the plan's second time column unless told otherwise: an H100 (SXM) at its dense fp32 peak (non-tensor
#: cores, 67 TFLOP/s), at 30 % utilisation. bf16 on the tensor cores peaks at 989 TFLOP/s dense; this library trains
#: in fp32 unless ``amp`` is set, so fp32 is the honest default.
GPU_DEFAULT = {"name": "H100 SXM, dense fp32", "tflops": 67.0, "utilisation": 0.30}


@dataclass(frozen=True)
class DataShape:
    """What the plan needs to know of a dataset without loading it: split sizes, image shape, classes."""

    train: int
    test: int
    channels: int
    size: int
    classes: int


#: The datasets of :func:`dscore.data.list_datasets`, by their published sizes.
DATA_SHAPES: dict[str, DataShape] = {
    "fashion_mnist": DataShape(60000, 10000, 1, 28, 10),
    "mnist": DataShape(60000, 10000, 1, 28, 10),
    "cifar10": DataShape(50000, 10000, 3, 32, 10),
    "cifar100": DataShape(50000, 10000, 3, 32, 100),
    "svhn": DataShape(73257, 26032, 3, 32, 10),
    "tinyimagenet": DataShape(100000, 10000, 3, 64, 200),
}


@dataclass(frozen=True)
class Net:
    """A network on a dataset's images: the unit whose per-image costs are measured once. ``arch`` is a model
    registry name, or ``"mae"`` for ADQ's masked autoencoder (``kwargs``: its :class:`MAEConfig` fields)."""

    arch: str
    kwargs: tuple
    channels: int
    size: int
    classes: int

    @classmethod
    def of(cls, arch: str, kwargs: Mapping[str, Any], shape: DataShape) -> "Net":
        return cls(arch, tuple(sorted((k, _freeze(v)) for k, v in dict(kwargs).items())), shape.channels, shape.size,
                   shape.classes)

    def label(self) -> str:
        extra = ", ".join(f"{k}={v}" for k, v in self.kwargs if self.arch != "mae" or k in ("embed_dim", "depth"))
        return f"{self.arch}({extra}) on {self.channels}×{self.size}²"


def _freeze(v):
    if isinstance(v, Mapping):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    return v


@dataclass
class Work:
    """One artefact's worth of work: ``kind`` is ``"evaluation"``, ``"network"`` (any other trained network),
    ``"distillation"`` or ``"summary"`` (a cached result of other work, e.g. ADQ's (β, T) choice, costing nothing); ``passes`` counts image passes of ``net`` by type (``train``: forward + backward to the
    parameters; ``forward``; ``match``: a gradient-matching pass). ``epochs_images`` (trainings) and ``steps``
    (distillations) are what the table reports."""

    kind: str
    key: tuple
    net: Net
    passes: dict[str, float]
    epochs_images: float = 0.0
    steps: int = 0


@dataclass
class _Ledger:
    """The work of the pages planned so far: ``works`` by key (first page pays), ``asked`` per page."""

    works: dict[tuple, Work] = field(default_factory=dict)
    owner: dict[tuple, str] = field(default_factory=dict)
    asked: dict[str, list[tuple]] = field(default_factory=dict)
    page: str = ""

    def add(self, work: Work) -> None:
        if work.key not in self.works:
            self.works[work.key] = work
            self.owner[work.key] = self.page
        keys = self.asked.setdefault(self.page, [])
        if work.key not in keys:
            keys.append(work.key)


# --------------------------------------------------------------------------------------------- pass counts


def evaluation_passes(epochs: int, images: int, scored: int, check_every: int) -> dict[str, float]:
    """A network trained ``epochs`` epochs on ``images`` images and scored on ``scored`` images after every
    ``check_every`` epochs (0: only at the end): ``{"train", "forward"}`` image passes."""
    checks = (epochs // check_every if check_every else 0) + 1
    if check_every and epochs % check_every == 0:
        checks -= 1                                       # the last check is the final score
    return {"train": float(epochs * images), "forward": float(checks * scored)}


def distill_passes(cfg, class_size: int, classes: int) -> dict[str, float]:
    """Image passes of one distillation run with :class:`~dscore.distill.DistillConfig` ``cfg`` on a training set
    of ``class_size`` images per class (see the module docstring for what is counted)."""
    n_train = class_size * classes
    rm = cfg.sampler == "representative"
    real = cfg.clusters * cfg.subsample if rm else cfg.batch_real
    real = min(real, class_size)
    syn = cfg.ipc * (cfg.factor ** 2 if cfg.method == "idc" else 1)
    if cfg.method == "idc" and cfg.batch_syn is not None:
        syn = min(syn, cfg.batch_syn)
    p = {"train": 0.0, "forward": 0.0, "match": 0.0}
    networks = cfg.iterations
    if cfg.method == "dm":
        steps = cfg.iterations
        p["forward"] += steps * classes * real                       # the real batch's embeddings, no graph
        p["train"] += steps * classes * syn                          # the synthetic embeddings, back to the pixels
        if rm:
            p["forward"] += math.ceil(cfg.iterations / max(cfg.interval, 1)) * n_train
    else:
        steps = cfg.iterations * cfg.outer_loops
        p["train"] += steps * classes * real                         # real gradients (no second-order graph)
        p["match"] += steps * classes * syn                          # synthetic gradients with their graph, backward
        updates = cfg.iterations * max(cfg.outer_loops - 1, 0) if cfg.inner_loops > 0 else 0
        per_update = cfg.inner_loops * (min(cfg.n_data, n_train) if cfg.method == "idc" else cfg.ipc * classes)
        p["train"] += updates * per_update
        if rm:
            p["forward"] += cfg.iterations * math.ceil(cfg.outer_loops / max(cfg.interval, 1)) * n_train
        if cfg.diag_every:
            p["match"] += (steps // cfg.diag_every + 1) * classes * (real + syn)
    embed_init = cfg.init in ("kmeans", "kmeans_mix")                # a network embeds the classes to initialise
    if embed_init:
        p["forward"] += n_train
    if cfg.pretrain_real_epochs > 0:
        per_net = cfg.pretrain_real_epochs * n_train
        if cfg.pretrain_steps is not None:
            per_net = min(per_net, cfg.pretrain_steps * cfg.net_batch)
        p["train"] += (networks + embed_init) * per_net
    return p


# --------------------------------------------------------------------------------------------- the chapters


def _split_sizes(shape: DataShape, pool_per_class: int | None, val_fraction: float, test_per_class: int | None
                 ) -> tuple[int, int, int]:
    """(train, val, test) images of a chapter's splits (per-class rounding as the splits do it, to an image)."""
    from ..studies.common import train_per_class

    pool = shape.train // shape.classes if pool_per_class is None else pool_per_class
    train = train_per_class(pool, val_fraction)                             # train_val_split's count
    test = shape.test if test_per_class is None else test_per_class * shape.classes
    return train * shape.classes, (pool - train) * shape.classes, test


def _setup_sizes(setup) -> tuple[DataShape, tuple[int, int, int]]:
    """A chapter setup's dataset shape and its (train, val, test) sizes."""
    if setup.dataset not in DATA_SHAPES:
        raise BookError(f"the plan knows no sizes for dataset {setup.dataset!r}; known: {sorted(DATA_SHAPES)}")
    shape = DATA_SHAPES[setup.dataset]
    return shape, _split_sizes(shape, setup.pool_per_class, setup.val_fraction, setup.test_per_class)


class _DreamPlan:
    """The DREAM+ study's requests as work: the same loops as :class:`~dscore.studies.dreamplus.DreamStudy`'s
    methods, counting instead of computing; configs come from the study itself (:meth:`DreamStudy.config`)."""

    def __init__(self, ledger: _Ledger, setup: Mapping[str, Any]):
        from ..cache import ArtifactCache
        from ..studies.dreamplus import DreamStudy

        self.ledger = ledger
        self.study = DreamStudy(setup, cache=ArtifactCache(enabled=False), progress=False)
        s = self.study.setup
        self.shape, (self.n_train, self.n_val, self.n_test) = _setup_sizes(s)
        self.class_size = self.n_train // self.shape.classes
        self.net = Net.of(s.arch, s.arch_kwargs, self.shape)

    def _net(self, spec: Mapping[str, Any] | None) -> Net:
        if spec is None:
            return self.net
        spec = dict(spec)
        return Net.of(spec.pop("arch"), spec, self.shape)

    def _same(self, spec: Mapping[str, Any] | None) -> Mapping[str, Any] | None:
        """None when ``spec`` names the setup's own network (the study's artefacts are keyed by the network)."""
        return None if spec is None or self._net(spec) == self.net else spec

    def distill(self, method: str, ipc: int, seed: int, overrides=None, distill_arch=None):
        cfg = self.study.config(method, ipc, seed, overrides=overrides, distill_arch=distill_arch, scale_lr=False)
        key = ("distill", self.study.setup.dataset, repr(cfg))
        self.ledger.add(Work("distillation", key, self._net(distill_arch),
                             distill_passes(cfg, self.class_size, self.shape.classes),
                             steps=cfg.iterations * (1 if cfg.method == "dm" else cfg.outer_loops)))
        if self.study.setup.lr_tuning is not None and cfg.method == "idc" and "lr_img" not in (overrides or {}):
            self.lr_choice()
        return cfg

    def lr_choice(self) -> None:
        t = self.study.setup.lr_tuning
        authors = self.study.config("idc", t.ipc, scale_lr=False).lr_img
        for x in t.scales:
            for sd in t.seeds:
                self.evaluate("idc", t.ipc, sd, sd, split="val", overrides={"lr_img": authors * x})

    def _network(self, name: str, epochs: int, images: int, extra: tuple = ()) -> None:
        self.ledger.add(Work("network", ("net", name, self.study.setup.dataset, epochs, images) + extra, self.net,
                             {"train": float(epochs * images), "forward": float(self.n_train)},
                             epochs_images=float(epochs * images)))

    def train_size(self, method: str, ipc: int, seed: int, overrides=None, distill_arch=None) -> int:
        if method in ("random", "herding", "kcenter", "forgetting"):
            if method in ("herding", "kcenter"):
                self._network("feature net", self.study.setup.feature_epochs, self.n_train)
            if method == "forgetting":
                self._network("forgetting", self.study.setup.forgetting_epochs, self.n_train)
            return ipc * self.shape.classes
        cfg = self.distill(method, ipc, seed, overrides, distill_arch)
        return cfg.ipc * self.shape.classes * (cfg.factor ** 2 if cfg.method == "idc" else 1)

    def evaluate(self, method, ipc, seed, eval_seed, *, iteration=None, split="test", overrides=None,
                 distill_arch=None, eval_arch=None, epochs=None, family=None, tag="eval") -> None:
        distill_arch, eval_arch = self._same(distill_arch), self._same(eval_arch)
        n = self.train_size(method, ipc, seed, overrides, distill_arch)
        proto = self.study.setup.protocols[family or self.study.family(method)]
        epochs = proto.epochs if epochs is None else epochs
        scored = self.n_test if split == "test" else self.n_val
        key = (tag, self.study.setup.dataset, method, ipc, seed, eval_seed, iteration, split, _freeze(overrides or {}),
               _freeze(distill_arch or {}), _freeze(eval_arch or {}), epochs, family)
        self.ledger.add(Work("evaluation", key, self._net(eval_arch),
                             evaluation_passes(epochs, n, scored, self.study.setup.check_every if split == "test" else 0),
                             epochs_images=float(epochs * n)))

    def snapshots(self, cfg) -> list[int]:
        if not cfg.snapshot_every:
            return []
        return [0] + [d for d in range(1, cfg.iterations + 1) if d % cfg.snapshot_every == 0 or d == cfg.iterations]

    # the study's methods, as work
    def grid_cells(self, methods, ipcs, seeds, multi_seed=("random", "idc", "dream", "dreamplus"), seeds_at=None):
        cap = {int(k): int(v) for k, v in dict(seeds_at or {}).items()}
        return [(m, ipc, s, e) for ipc in ipcs for m in methods
                for s in (list(seeds)[:cap.get(ipc, len(seeds))] if m in multi_seed else list(seeds)[:1])
                for e in self.study.setup.eval_seeds]

    def grid(self, methods, ipcs, seeds, multi_seed=("random", "idc", "dream", "dreamplus"), seeds_at=None):
        for m, ipc, s, e in self.grid_cells(methods, ipcs, seeds, multi_seed, seeds_at):
            self.evaluate(m, ipc, s, e)

    def initial_sets(self, cells, methods=("idc", "dreamplus")):
        """:func:`dscore.studies.dreamplus.gates.initial_sets`: the iteration-0 set of every cell of ``methods``."""
        for m, ipc, s, e in cells:
            if m in methods:
                self.evaluate(m, ipc, s, e, iteration=0)

    def curves(self, methods, ipc, seeds, eval_seeds=None, overrides=None):
        eval_seeds = self.study.setup.eval_seeds if eval_seeds is None else eval_seeds
        for m in methods:
            for s in seeds:
                cfg = self.distill(m, ipc, s, overrides)
                for it in self.snapshots(cfg):
                    for e in eval_seeds:
                        self.evaluate(m, ipc, s, e, iteration=it if it != cfg.iterations else None, overrides=overrides)

    def runs(self, methods, ipc, seeds):
        for m in methods:
            for s in seeds:
                self.distill(m, ipc, s)

    def probes(self, seeds, pretrain_epochs):
        for p in seeds:
            self._network("probe", pretrain_epochs, self.n_train, (p,))

    def calibration(self, ipcs, lengths, seeds, families=("idc",)):
        for ipc in ipcs:
            for f in families:
                for n in lengths:
                    for s in seeds:
                        self.evaluate("random", ipc, s, s, split="val", epochs=int(n), family=f)

    def baseline_diagnostics(self, ipcs, methods, seed=0):
        e = self.study.setup.eval_seeds[0]
        for ipc in ipcs:
            for m in methods:
                if m == "forgetting":
                    self._network("forgetting", self.study.setup.forgetting_epochs, self.n_train)
                    continue
                self.evaluate(m, ipc, seed, e, iteration=0)
                self.evaluate(m, ipc, seed, e)

    def variant(self, method, ipc, **fields):
        """:meth:`DreamStudy.variant_overrides` at the authors' image learning rate, so that no learning-rate choice
        is computed while planning."""
        return self.study.variant_overrides(method, ipc, scale_lr=False, **fields)

    def class_fraction(self, cells, paper_class_size):
        from ..studies.dreamplus.variants import fraction_cells

        df = fraction_cells(cells, self.class_size, paper_class_size)
        return list(zip(df.subclusters.tolist(), df.samples.tolist()))

    def continual(self, methods, ipc, seed, steps, eval_arch, epochs):
        proto = self.study.setup.protocols["idc"]
        epochs = proto.epochs if epochs is None else int(epochs)
        for m in methods:
            n = self.train_size(m, ipc, seed)
            for e in self.study.setup.eval_seeds:
                seen = sum(n * (k + 1) / steps for k in range(steps))      # the memory grows by a group per step
                key = ("continual", self.study.setup.dataset, m, ipc, seed, e, steps, _freeze(eval_arch or {}), epochs)
                self.ledger.add(Work("evaluation", key, self._net(eval_arch),
                                     {"train": epochs * seen, "forward": float(steps * self.n_test)},
                                     epochs_images=epochs * seen))


class _ADQPlan:
    """The ADQ study's requests as work (the loops of :class:`~dscore.studies.adq.ADQStudy`)."""

    def __init__(self, ledger: _Ledger, setup: Mapping[str, Any], archs: Mapping[str, Mapping[str, Any]]):
        from ..cache import ArtifactCache
        from ..studies.adq import ADQStudy

        self.ledger = ledger
        self.study = ADQStudy(setup, archs, cache=ArtifactCache(enabled=False), progress=False)
        self.shape, (self.n_train, self.n_val, self.n_test) = _setup_sizes(self.study.setup)

    def _arch_net(self, label: str) -> Net:
        spec = self.study.archs[label]
        return Net.of(spec.name, spec.kwargs, self.shape)

    def pipeline(self, seed: int | None, *, redraw: bool = False) -> None:
        """The feature network of unit ``seed`` (its training, and its pass over the training part); ``redraw``:
        seeded by ``seed`` whatever the study's redraw setting."""
        ext = self.study.setup.extractor.replace(seed=seed) if redraw else self.study.extractor_config(seed)
        net = Net.of(ext.arch, ext.arch_kwargs, self.shape)
        key = ("adq features", self.study.setup.dataset, repr(ext), self.n_train)
        self.ledger.add(Work("network", key, net, {"train": float(ext.epochs * self.n_train),
                                                   "forward": float(self.n_train)},
                             epochs_images=float(ext.epochs * self.n_train)))

    def selection(self, method: str, ratio: float, seed: int) -> int:
        """Work of :meth:`ADQStudy.select`; returns the selected set's size."""
        from ..distill import default_config

        if method == "full":
            return self.n_train
        if method == "dm":
            ipc = max(1, int(math.floor(ratio * (self.n_train // self.shape.classes) + 0.5)))
            dm = dict(self.study.setup.dm)
            arch, kwargs = dm.pop("arch", "convnet3"), dm.pop("arch_kwargs", {})
            cfg = default_config("dm", self.study.setup.dataset, ipc, seed=seed, arch=arch, arch_kwargs=kwargs, **dm)
            key = ("adq dm", self.study.setup.dataset, ratio, seed, repr(cfg))
            self.ledger.add(Work("distillation", key, Net.of(arch, kwargs, self.shape),
                                 distill_passes(cfg, self.n_train // self.shape.classes, self.shape.classes),
                                 steps=cfg.iterations))
            return ipc * self.shape.classes
        if method != "random":
            self.pipeline(seed)
        if method in ("adq", "adq_rs", "adq_ds"):
            self.choice(ratio)
        return max(1, int(round(ratio * self.n_train)))

    def choice(self, ratio: float) -> None:
        from ..quantize.config import TuningConfig

        # as ADQStudy.tuning_config, without loading the data: with evaluation['steps'] the tuning subsets train
        # as many steps as a subset at the first tuning ratio
        tr = self.study.tuned_ratio(ratio)
        t, setup = self.study.tuning, self.study.setup
        proto = self.study.protocol_for(max(1, round(t.ratios[0] * self.n_train))) if setup.steps else setup.protocol
        epochs = t.epochs or proto.epochs
        spec = self.study.archs[self.study.tuning_arch]
        n = max(1, int(round(tr * self.n_train)))
        summary = ("adq tuning", setup.dataset, tr, epochs, spec.name)
        known = summary in self.ledger.works
        self.ledger.add(Work("summary", summary, Net.of(spec.name, spec.kwargs, self.shape), {}))
        if known:                      # the choice is a cached summary: a later page loads it, asking for no run
            return
        for sd in t.seeds:
            if self.study.redraw:
                self.pipeline(sd, redraw=True)
            grid = [(b, temp) for b in t.betas for temp in t.temperatures]
            for b, temp in grid + ([("dq", "dq")] if TuningConfig.include_dq else []):   # DQ as the reference row
                key = ("adq tune", setup.dataset, tr, sd, b, temp, epochs, spec.name)
                self.ledger.add(Work("evaluation", key, Net.of(spec.name, spec.kwargs, self.shape),
                                     evaluation_passes(epochs, n, self.n_val, 0), epochs_images=float(epochs * n)))

    def run(self, method, ratio, arch, seed, split="test", beta=None, temperature=None) -> None:
        n = self.selection(method, ratio, seed)
        epochs = self.study.protocol_for(n).epochs
        key = ("adq eval", self.study.setup.dataset, method, 1.0 if method == "full" else ratio, arch, seed, split,
               beta, temperature, epochs)
        self.ledger.add(Work("evaluation", key, self._arch_net(arch),
                             evaluation_passes(epochs, n, self.n_test if split == "test" else self.n_val,
                                               self.study.check_every_for(n) if split == "test" else 0),
                             epochs_images=float(epochs * n)))

    def grid(self, methods, ratios, archs, seeds, context_seeds=None):
        context = list(seeds) if context_seeds is None else [s for s in context_seeds if s in seeds]
        from ..studies.adq.study import JUDGED_ARMS

        for arch in archs:
            for m in methods:
                for r in ([1.0] if m == "full" else ratios):
                    for s in (seeds if m in JUDGED_ARMS else context):
                        self.run(m, r, arch, s)

    def calibration(self, ratios, lengths, seeds):
        from ..train import epochs_for_steps

        spec = self.study.archs[self.study.reference_arch]
        for r in [r for r in ratios if r < 1.0] + [1.0]:
            n = self.n_train if r >= 1.0 else max(1, int(round(r * self.n_train)))
            for length in lengths:
                epochs = epochs_for_steps(int(length), n, self.study.protocol.batch_size)
                for s in seeds:
                    key = ("adq calib", self.study.setup.dataset, r, length, s, spec.name)
                    self.ledger.add(Work("evaluation", key, Net.of(spec.name, spec.kwargs, self.shape),
                                         evaluation_passes(epochs, n, self.n_val, 0),
                                         epochs_images=float(epochs * n)))

    def texture(self, arch, seeds, epochs):
        for s in seeds:
            key = ("adq texture", self.study.setup.dataset, arch, s, epochs)
            # the expert on the whole training part, three students on its thirds
            self.ledger.add(Work("network", key, self._arch_net(arch), {"train": 2.0 * epochs * self.n_train},
                                 epochs_images=2.0 * epochs * self.n_train))

    def mae(self, mae: Mapping[str, Any], patch: int) -> None:
        from ..quantize.config import MAEConfig

        cfg = MAEConfig.of({**mae, "patch": patch}, "mae")
        net = Net.of("mae", {k: v for k, v in cfg.key().items() if k != "epochs"}, self.shape)
        key = ("mae", self.study.setup.dataset, repr(cfg))
        self.ledger.add(Work("network", key, net, {"train": float(cfg.epochs * self.n_train)},
                             epochs_images=float(cfg.epochs * self.n_train)))


# --------------------------------------------------------------------------------------------- the pages

def _adq(ledger: _Ledger, p: Mapping[str, Any]) -> _ADQPlan:
    from ..studies import adq

    return _ADQPlan(ledger, adq.setup_from(p), p["archs"])


def _dream(ledger: _Ledger, p: Mapping[str, Any], setup: Mapping[str, Any] | None = None) -> _DreamPlan:
    from ..studies import dreamplus

    return _DreamPlan(ledger, setup if setup is not None else dreamplus.setup_from(p))


def _page_adq_calibration(L, p):
    _adq(L, p).calibration(p["ratios"], p["lengths"], p["calibration_seeds"])


def _page_adq_bins(L, p):
    a = _adq(L, p)
    for s in p["extractor_seeds"]:
        a.pipeline(s, redraw=True)
    a.pipeline(None)
    a.choice(p["ratio"])


def _page_adq_texture(L, p):
    _adq(L, p).texture(next(iter(p["archs"])), p["seeds"], p["epochs"])


def _page_adq_main(L, p):
    _adq(L, p).grid(p["methods"], p["ratios"], list(p["archs"]), p["seeds"], p.get("context_seeds"))


def _page_adq_low_ratio(L, p):
    _adq(L, p).grid(["full", *p["methods"]], p["ratios"], [next(iter(p["archs"]))], p["seeds"])


def _page_adq_ablation(L, p):
    _adq(L, p).grid(["dq", "adq_rs", "adq_ds", "adq"], p["ratios"], [next(iter(p["archs"]))], p["seeds"])


def _page_adq_beta(L, p):
    a = _adq(L, p)
    arch0 = next(iter(p["archs"]))
    for arch in p["archs"]:
        for r in p["ratios"]:
            a.choice(r)
            for b in p["betas"]:
                for s in p["seeds"]:
                    a.run("adq", r, arch, s, split="val", beta=float(b), temperature="chosen")
    for t in p["temperatures"]:
        for s in p["seeds"]:
            a.run("adq", p["ratios"][0], arch0, s, split="val", beta="chosen", temperature=float(t))
    for r in p["ratios"]:
        a.grid(["dq", "adq"], [r], [arch0], p["seeds"])


def _page_adq_pq(L, p):
    from ..quantize.pixelquant import image_fraction_for

    a = _adq(L, p)
    arch = next(iter(p["archs"]))
    a.mae(p["mae"], p["patch"])
    for m in p["methods"]:
        for r in p["ratios"]:
            fraction = image_fraction_for(r, p["theta"])
            for s in p["seeds"]:
                a.run(m, r, arch, s)                # the plain selection at the effective ratio, beside it
                n = a.selection(m, fraction, s)
                key = ("adq pq eval", a.study.setup.dataset, m, r, arch, s, p["theta"], p["patch"])
                epochs = a.study.protocol_for(n).epochs
                a.ledger.add(Work("evaluation", key, a._arch_net(arch),
                                  evaluation_passes(epochs, n, a.n_test, a.study.check_every_for(n)),
                                  epochs_images=float(epochs * n)))


def _page_adq_cost(L, p):
    a = _adq(L, p)
    a.pipeline(None)                 # the cost table times the setup's own pipeline, the choices and DM
    for r in p["ratios"]:
        a.choice(r)
    a.mae(p["mae"], p["patch"])
    a.grid(["dm", "dq", "adq", "adq_paper"], p["ratios"], list(p["archs"]), p["seeds"])


def _page_dream_calibration(L, p):
    d = _dream(L, p)
    d.calibration(p["ipcs"], p["lengths"], p["calibration_seeds"], p["families"])
    d.grid(p["methods"], p["ipcs"], p["distill_seeds"], seeds_at=p.get("seeds_at_ipc"))
    d.baseline_diagnostics(p["ipcs"], [m for m in ("dc", "dsa", "dm", "forgetting") if m in p["methods"]],
                           seed=p["distill_seeds"][0])


def _page_dream_main(L, p):
    d = _dream(L, p)
    if d.study.setup.lr_tuning is not None:
        d.lr_choice()
    d.grid(p["methods"], p["ipcs"], p["distill_seeds"], seeds_at=p.get("seeds_at_ipc"))
    d.initial_sets(d.grid_cells(p["methods"], p["ipcs"], p["distill_seeds"], seeds_at=p.get("seeds_at_ipc")))


def _page_dream_efficiency(L, p):
    d = _dream(L, p)
    d.curves(["idc", "dream", "dreamplus"], p["ipc"], p["distill_seeds"], p["curve_eval_seeds"])
    d.curves(["idc+feat", "dreamplus"], p["ipc"], p["feat_seeds"], p["feat_eval_seeds"])
    d.curves([m for b in p["other_bases"] for m in (b, f"{b}+rm+init+bm")], p["ipc"], p["other_seeds"],
             p["curve_eval_seeds"])


def _page_dream_ablation(L, p):
    d = _dream(L, p)
    d.grid(list(p["rows"]) + list(p["other_rows"]), [p["ipc"]], p["distill_seeds"], multi_seed=p["rows"])
    d.curves(p["rows"], p["ipc"], p["distill_seeds"], p["curve_eval_seeds"])


def _page_dream_cost(L, p):
    _dream(L, p).runs(p["methods"], p["ipc"], p["distill_seeds"])


def _page_dream_why(L, p):
    d = _dream(L, p)
    d.probes(p["probe_seeds"], p["probe_pretrain_epochs"])
    d.runs(["idc", "dream"], p["ipc"], p["distill_seeds"])
    d.curves(["idc", "idc+centre", "idc+boundary", "dream"], p["region_ipc"], p["region_seeds"],
             p["region_eval_seeds"])


def _page_dream_images(L, p):
    _dream(L, p).runs(p["methods"], p["ipc"], [p["seed"]])


def _page_dream_stability(L, p):
    d = _dream(L, p)
    d.runs(p["methods"], p["ipc"], p["distill_seeds"])
    d._network("feature net", d.study.setup.feature_epochs, d.n_train)
    d.probes(p["probe_seeds"], p["probe_pretrain_epochs"])


def _page_dream_tsne(L, p):
    d = _dream(L, p)
    d.runs(p["methods"], p["ipc"], p["distill_seeds"])
    d._network("feature net", d.study.setup.feature_epochs, d.n_train)


def _page_dream_crossarch(L, p):
    d = _dream(L, p)
    for dlabel, dspec in dict(p["distill_archs"] or {"setup": None}).items():
        for m in p["methods"]:
            for elabel, espec in p["eval_archs"].items():
                for s in p["distill_seeds"]:
                    for e in d.study.setup.eval_seeds:
                        d.evaluate(m, p["ipc"], s, e, distill_arch=dspec, eval_arch=espec)


def _page_dream_sampling(L, p):
    d = _dream(L, p)
    for method, cells in (("dreamplus", p["cells"]), ("dream", p["dream_cells"])):
        for k, n in d.class_fraction(cells, p["paper_class_size"]):
            ov = d.variant(method, p["ipc"], num_clusters=k, subsample=n)
            for s in p["distill_seeds"]:
                for e in d.study.setup.eval_seeds:
                    d.evaluate(method, p["ipc"], s, e, overrides=ov)
    d.grid(["idc"], [p["ipc"]], p["distill_seeds"])


def _page_dream_interval(L, p):
    d = _dream(L, p)
    for v in p["intervals"]:
        ov = d.variant("dreamplus", p["ipc"], interval=int(v))
        for s in p["distill_seeds"]:
            for e in d.study.setup.eval_seeds:
                d.evaluate("dreamplus", p["ipc"], s, e, overrides=ov, tag="top-k")
        d.curves(["dreamplus"], p["ipc"], p["distill_seeds"], p["curve_eval_seeds"], overrides=ov)


def _page_dream_continual(L, p):
    _dream(L, p).continual(p["methods"], p["ipc"], p["seed"], p["steps"], p.get("eval_arch"), p.get("epochs"))


def _page_dream_tiny(L, p):
    if p.get("tiny_setup") is None:
        return
    d = _dream(L, p, p["tiny_setup"])
    d.grid(["dm", "dreamplus"], p["tiny_ipcs"], p["tiny_seeds"], multi_seed=["dm", "dreamplus"])


#: page → the work its cells ask for (pages absent here train nothing: overviews, the tour's seconds, the benchmarks)
PAGES: dict[str, Callable[[_Ledger, Mapping[str, Any]], None]] = {
    name[len("_page_"):]: fn for name, fn in globals().items() if name.startswith("_page_")}


def plan_pages(profile: str, *, root: Path | None = None, pages: Sequence[str] | None = None
               ) -> tuple[list[str], _Ledger]:
    """The work of ``pages`` (default: every page, in book order) under ``profile``: (page names, ledger)."""
    root = Path(root) if root is not None else repo_root()
    check_profile(profile)
    names = notebook_names(root)
    pages = list(pages) if pages else names
    unknown = [p for p in pages if p not in names]
    if unknown:
        raise BookError(f"unknown page(s) {unknown}; available: {names}")
    ledger = _Ledger()
    for page in pages:
        ledger.page = page
        ledger.asked.setdefault(page, [])
        if page in PAGES:       # the notebook's own values (smoke), each replaced whole by the profile's (papermill)
            params = {**declared_parameters(root / "notebooks" / f"{page}.ipynb"), **load_params(root, profile, page)}
            PAGES[page](ledger, params)
    return pages, ledger


# --------------------------------------------------------------------------------------------- measured unit costs


@dataclass(frozen=True)
class UnitCost:
    """Per-image FLOPs of one network's passes (``train``, ``forward``, ``match``) and the seconds per image of a
    training pass in the library's training loop on the machine that measured it."""

    flops: Mapping[str, float]
    seconds_per_train_image: float

    def seconds(self, kind: str) -> float:
        """Seconds per image of a ``kind`` pass, charged at the network's measured training rate."""
        return self.flops[kind] / self.flops["train"] * self.seconds_per_train_image


def _build(net: Net, device: torch.device):
    if net.arch == "mae":
        from ..quantize.pixelquant import MaskedAutoencoder
        from ..quantize.config import MAEConfig

        cfg = MAEConfig.of(dict(net.kwargs), "mae")
        return MaskedAutoencoder(image_size=net.size, in_channels=net.channels, mean=(0.5,) * net.channels,
                                 std=(0.25,) * net.channels, **cfg.architecture()).to(device)
    from ..models import create_model

    return create_model(net.arch, num_classes=net.classes, in_channels=net.channels, image_size=net.size,
                        mean=(0.5,) * net.channels, std=(0.25,) * net.channels, seed=0, **_thaw(net.kwargs)).to(device)


def _thaw(items):
    return {k: (dict(_thaw(v)) if isinstance(v, tuple) and v and isinstance(v[0], tuple) and len(v[0]) == 2
                and isinstance(v[0][0], str) else v) for k, v in items}


def _loss(net: Net, model, x):
    import torch.nn.functional as F

    if net.arch == "mae":
        from ..quantize.config import MAEConfig

        cfg = MAEConfig.of(dict(net.kwargs), "mae")
        patches = (net.size // cfg.patch) ** 2
        keep = torch.zeros(x.shape[0], patches, dtype=torch.bool, device=x.device)
        keep[:, :max(1, round(patches * (1 - cfg.mask_ratio)))] = True
        return model(x, keep).float().pow(2).mean()
    y = torch.arange(x.shape[0], device=x.device) % net.classes
    return F.cross_entropy(model(x), y)


def _count(fn) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    with FlopCounterMode(display=False) as counter:
        fn()
    return float(counter.get_total_flops())


def measure_units(nets: Iterable[Net], *, device: str | torch.device = "cpu", batch: int = 4, timed_batch: int = 64,
                  repeats: int = 3, min_seconds: float = 3.0, log: Callable[[str], None] | None = None) -> dict[Net, UnitCost]:
    """Measure every network's per-image costs: FLOPs of a training, a forward and a matching pass on ``batch``
    random images (:class:`~torch.utils.flop_counter.FlopCounterMode`), and the seconds per image of the library's
    training loop (:func:`dscore.train.train_model`: augmentation, SGD) over ``4 × timed_batch`` images at batch
    ``timed_batch``, the median of at least ``repeats`` epochs after a warm-up one, more while they add up to less than
    ``min_seconds`` (the MAE: the best of ``repeats`` bare training passes). Seconds per network on a CPU."""
    device = torch.device(device)
    out: dict[Net, UnitCost] = {}
    for net in nets:
        if log:
            log(f"[dscore.plan] measuring {net.label()}")
        model = _build(net, device).train()
        params = [q for q in model.parameters() if q.requires_grad]
        gen = torch.Generator().manual_seed(0)
        x = torch.rand(batch, net.channels, net.size, net.size, generator=gen).to(device)

        def train_pass(x=x):
            model.zero_grad(set_to_none=True)
            _loss(net, model, x).backward()

        def forward(x=x):
            with torch.no_grad():
                _loss(net, model, x)

        def match(x=x):
            xs = x.clone().requires_grad_(True)
            grads = torch.autograd.grad(_loss(net, model, xs), params, create_graph=True)
            sum((g * g).sum() for g in grads).backward()

        flops = {"train": _count(train_pass) / batch, "forward": _count(forward) / batch}
        try:                           # attention's flash kernel has no double backward on the CPU: such a network
            flops["match"] = (_count(match) / batch) if net.arch != "mae" else 2 * flops["train"]   # (never distilled
        except RuntimeError:                                                                          # with) gets 2×
            flops["match"] = 2 * flops["train"]
        best = math.inf
        if net.arch == "mae":          # a bare training pass at ``timed_batch``
            big = torch.rand(timed_batch, net.channels, net.size, net.size, generator=gen).to(device)
            train_pass(big)
            for _ in range(repeats):
                t0 = time.perf_counter()
                train_pass(big)
                best = min(best, time.perf_counter() - t0)
            per_image = best / timed_batch
        else:                          # the library's own training loop (augmentation, optimiser): an epoch, timed
            from ..train import train_model

            n = 4 * timed_batch
            images = torch.rand(n, net.channels, net.size, net.size, generator=gen)
            labels = torch.arange(n) % net.classes
            protocol = {"epochs": 1, "batch_size": timed_batch, "lr": 0.01}
            times: list[float] = []
            r = 0
            while r <= repeats or (sum(times) < min_seconds and r <= 8 * repeats):
                t0 = time.perf_counter()
                train_model(model, images, labels, protocol, device=device, seed=r, progress=False)
                if device.type == "cuda":
                    torch.cuda.synchronize()
                if r:                  # the first epoch warms up
                    times.append(time.perf_counter() - t0)
                r += 1
            per_image = sorted(times)[len(times) // 2] / n        # the median epoch: these timings drift
        model.zero_grad(set_to_none=True)
        out[net] = UnitCost(flops=flops, seconds_per_train_image=per_image)
    return out


def estimate(pages: Sequence[str], ledger: _Ledger, units: Mapping[Net, UnitCost], *,
             gpu: Mapping[str, Any] = GPU_DEFAULT) -> list[dict[str, Any]]:
    """One row per page (and a ``total`` row): work asked and added, TFLOPs, estimated hours here and on ``gpu``."""
    rate = float(gpu["tflops"]) * 1e12 * float(gpu["utilisation"])

    def cost(keys):
        flops = secs = 0.0
        counts = {"trainings": 0, "image-epochs": 0.0, "distillations": 0, "image steps": 0, "evaluations": 0}
        for k in keys:
            w = ledger.works[k]
            u = units[w.net]
            flops += sum(n * u.flops[kind] for kind, n in w.passes.items())
            secs += sum(n * u.seconds(kind) for kind, n in w.passes.items())
            if w.kind == "distillation":
                counts["distillations"] += 1
                counts["image steps"] += w.steps
            elif w.kind != "summary":
                counts["trainings"] += 1
                counts["image-epochs"] += w.epochs_images
                counts["evaluations"] += w.kind == "evaluation"
        return counts, flops, secs

    rows = []
    for page in pages:
        new = [k for k in ledger.asked.get(page, []) if ledger.owner[k] == page]
        counts, flops, secs = cost(new)
        asked = len(ledger.asked.get(page, []))
        rows.append({"page": page, "artefacts asked": asked, "new": len(new), **counts, "TFLOP": flops / 1e12,
                     "hours here": secs / 3600, "hours on GPU": flops / rate / 3600})
    counts, flops, secs = cost(list(ledger.works))
    rows.append({"page": "total", "artefacts asked": sum(r["artefacts asked"] for r in rows), "new": len(ledger.works),
                 **counts, "TFLOP": flops / 1e12, "hours here": secs / 3600, "hours on GPU": flops / rate / 3600})
    return rows


def _fmt_hours(h: float) -> str:
    if h < 1 / 60:
        return f"{h * 3600:.0f} s"
    if h < 1:
        return f"{h * 60:.1f} min"
    if h < 48:
        return f"{h:.1f} h"
    return f"{h / 24:.1f} d"


def format_plan(rows: Sequence[Mapping[str, Any]], *, profile: str, machine: str, gpu: Mapping[str, Any]) -> str:
    """The plan as a Markdown table with its assumptions above it."""
    lines = [f"Cost plan of the {profile!r} profile — an ESTIMATE, not a measurement.",
             f"- FLOPs: per-image passes measured with torch's FLOP counter on this machine ({machine}); "
             "k-means, GraphCut, t-SNE, augmentation and data movement not counted.",
             "- here: every pass charged at its network's rate in the library's training loop, measured on this machine (batch 64).",
             f"- GPU: {gpu['name']} at {gpu['tflops']:g} TFLOP/s × {gpu['utilisation']:.0%} utilisation.",
             "- A run shared by several pages is charged to the first page in book order (`new`).", "",
             "| page | asked | new | networks trained | image-epochs (M) | distillations | image steps | TFLOP | "
             "here | GPU |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['page']} | {r['artefacts asked']} | {r['new']} | {r['trainings']} | "
                     f"{r['image-epochs'] / 1e6:.2f} | {r['distillations']} | {r['image steps']} | {r['TFLOP']:.1f} | "
                     f"{_fmt_hours(r['hours here'])} | {_fmt_hours(r['hours on GPU'])} |")
    return "\n".join(lines)


def main(profile: str, *, pages: Sequence[str] | None = None, root: Path | None = None, gpu_tflops: float | None = None,
         utilisation: float | None = None, device: str = "cpu", log: Callable[[str], None] = print) -> int:
    """The ``plan`` command: plan, measure the networks it needs, print the table."""
    import platform

    from ..utils import check_float

    gpu = dict(GPU_DEFAULT)
    if gpu_tflops is not None:
        gpu.update(name=f"a GPU of {gpu_tflops:g} TFLOP/s", tflops=check_float("gpu_tflops", gpu_tflops, low=0.0,
                                                                             low_open=True))
    if utilisation is not None:
        gpu["utilisation"] = check_float("utilisation", utilisation, low=0.0, high=1.0, low_open=True)
    names, ledger = plan_pages(profile, root=root, pages=pages)
    nets = list(dict.fromkeys(w.net for w in ledger.works.values()))
    torch.manual_seed(0)
    units = measure_units(nets, device=device, log=log)
    machine = f"{platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, {device}"
    log(format_plan(estimate(names, ledger, units, gpu=gpu), profile=profile, machine=machine, gpu=gpu))
    return 0
