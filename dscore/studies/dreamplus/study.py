"""The DREAM+ chapter's experiments: one :class:`DreamStudy` per page, sharing every run through the cache.

Every DREAM+ page declares the same *setup* parameters (:data:`SETUP_KEYS`: data scale, the ConvNet, the
distillation overrides per base method, the evaluation protocol per family, the coreset settings, the
device). Identical setups give identical configs, so a distillation run (with its snapshots, per-step
timings and diagnostics) and an evaluation run are computed once for the whole chapter: the main table,
the efficiency curves, the ablation, the cost table, the MMD curves and the image grids all read the same
IDC / DREAM / DREAM+ runs.

Methods (:func:`method_label` gives the table names):

* coresets ``random``, ``herding``, ``kcenter``, ``forgetting`` (:data:`CORESETS`): ``ipc`` real images per
  class (:func:`dscore.distill.select_coreset_ipc`; herding / k-center on the embeddings of a ConvNet trained on
  the training part, forgetting from a ConvNet's forgetting events; both networks cached);
* any :func:`dscore.distill.preset` name: ``dc``, ``dsa``, ``dm``, ``idc``, ``dream``, ``dreamplus``, and
  compositions such as ``idc+rm``, ``idc+init``, ``idc+bm``, ``dm+rm``, ``dsa+rm+init+bm``.

Distillation configs: ``preset(method, dataset, ipc, seed=seed, **overrides)`` where the overrides are the
setup's ``distill["common"]``, then ``distill[<base method>]`` (dc | dsa | dm | idc), then ``distill["rm"]`` when
the method uses representative matching. Evaluation: :func:`dscore.evaluation.evaluate_cached` with
``PROTOCOLS[family]`` (idc for IDC/DREAM/DREAM+, dsa for DSA/DM, dc for DC, ``coresets["family"]`` for the
coresets) updated by ``evaluation[family]``; the final-epoch accuracy is the number, best-of-checks (every
``evaluation["check_every"]`` epochs) the authors' protocol beside it, never used to choose.
"""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np
import pandas as pd
import torch

from ...cache import ArtifactCache, as_cache
from ...distill import DistillConfig, DistillResult, distill_cached, preset, select_coreset_ipc
from ...distill.config import preset_components
from ...distill.evaluate import family_of
from ...distill.init import idc_decode, idc_decode_labels
from ...distributed import ordered_map
from ...evaluation import evaluate_cached
from ...fingerprint import code_version, dataset_fingerprint
from ...models import create_model, list_models, model_kwargs
from ...select import never_learned
from ...train import TrainProtocol
from ...utils import check_choice, check_int, resolve_device
from ..calibration import length_curve
from ..common import Splits, make_splits, pick_setup
from .setup import SETUP_KEYS, DreamSetup
from .timing import cumulative_seconds, per_step_costs

preset_components = preset_components

__all__ = ["SETUP_KEYS", "CORESETS", "DreamStudy", "DreamSetup", "setup_from", "method_label"]

CORESETS = ("random", "herding", "kcenter", "forgetting")
_LABELS = {"random": "Random", "herding": "Herding", "kcenter": "K-Center", "forgetting": "Forgetting", "dc": "DC",
           "dsa": "DSA", "dm": "DM", "idc": "IDC", "dream": "DREAM", "dreamplus": "DREAM+"}
_COMPONENT_LABELS = {"rm": "RM", "init": "Init", "bm": "BM", "pt": "PT", "feat": "feature matching", "centre": "centre only",
                     "boundary": "boundary only"}
#: paper's dataset names (Tab. I columns)
PAPER_DATASET = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "svhn": "SVHN", "cifar10": "CIFAR-10",
                 "cifar100": "CIFAR-100", "tinyimagenet": "TinyImageNet"}


def setup_from(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The setup keys (:data:`SETUP_KEYS`) of a page's parameters, e.g. ``setup_from(globals())`` in a notebook."""
    return pick_setup(namespace, SETUP_KEYS, "DREAM+")


def method_label(method: str) -> str:
    """The name a table shows: ``"dreamplus"`` → "DREAM+", ``"idc+rm"`` → "IDC + RM", ``"herding"`` → "Herding"."""
    if method in _LABELS:
        return _LABELS[method]
    base, comps = preset_components(method)
    parts = method.lower().split("+")
    head = _LABELS.get(parts[0], parts[0].upper())
    return " + ".join([head] + [_COMPONENT_LABELS.get(p, _LABELS.get(p, p)) for p in parts[1:]])


def _check_mapping(name: str, value) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}={value!r} must be a mapping")
    return dict(value)


class DreamStudy:
    """The shared state of the DREAM+ chapter for one setup (see the module docstring).

    ``setup``: a :class:`~dscore.studies.dreamplus.setup.DreamSetup`, or a page's setup parameters (a mapping with
    exactly the keys of :data:`SETUP_KEYS`, checked once by :meth:`DreamSetup.from_params`).
    ``dry_run``: shrink every step to a tiny one (a few images per class, one epoch, two iterations, one seed) to
    check a profile's parameters end to end; the numbers mean nothing then.
    Everything is computed lazily and cached in ``cache`` (default: ``$DSCORE_CACHE``). Bad parameters raise
    ValueError naming the key before any work.
    """

    def __init__(self, setup: DreamSetup | Mapping[str, Any], *, cache: ArtifactCache | None = None,
                 progress: bool = True, dry_run: bool = False):
        if not isinstance(dry_run, bool):
            raise ValueError(f"dry_run={dry_run!r} must be True or False")
        #: one tiny step of everything (a few images per class, one epoch, two iterations): checks a profile end to
        #: end in seconds; the numbers mean nothing
        self.dry_run = dry_run
        setup = DreamSetup.from_params(setup)
        self.setup: DreamSetup = setup.dry() if dry_run else setup
        s = self.setup
        self.device = resolve_device(None if s.device == "auto" else s.device)
        self.cache = as_cache(cache)
        self.progress = progress
        # the setup's parts under the names the experiments use
        self.dataset, self.arch, self.arch_kwargs = s.dataset, s.arch, dict(s.arch_kwargs)
        self.distill_overrides = {k: dict(v) for k, v in s.distill.items()}
        self.lr_tuning = None if s.lr_tuning is None else s.lr_tuning.as_dict()
        self.eval_seeds = list(s.eval_seeds)
        self.check_every = s.check_every
        self.protocols: dict[str, TrainProtocol] = dict(s.protocols)
        self.coreset_family, self.feature_epochs, self.forgetting_epochs = (s.coreset_family, s.feature_epochs,
                                                                            s.forgetting_epochs)
        self._splits: Splits | None = None
        self._moved: dict[str, dict[str, Any]] = {}
        self._lr_choice: dict[str, Any] | None = None
        self._probes: dict[tuple[int, int], torch.nn.Module] = {}
        self._check_one_network_batch()

    def _check_one_network_batch(self) -> None:
        """Every IDC-family arm trains its networks at one batch size: IDC's own default (64) and the
        representative-matching presets' (``batch_real``) differ, and a comparison at different batches gives one
        arm more SGD steps per epoch. The setup states ``net_batch`` in ``distill['idc']`` (or ``common``) when they
        would differ."""
        batches = {m: self.config(m, 10, scale_lr=False).net_batch for m in ("idc", "dream", "dreamplus")}
        if len(set(batches.values())) > 1:
            raise ValueError(f"the IDC-family arms would train their networks at different batch sizes {batches}; "
                             "set distill['idc']['net_batch'] so that every arm uses one")

    # ------------------------------------------------------------------------------------- data

    @property
    def splits(self) -> Splits:
        if self._splits is None:
            s = self.setup
            self._splits = make_splits(s.dataset, pool_per_class=s.pool_per_class, val_fraction=s.val_fraction,
                                       test_per_class=s.test_per_class, seed=s.split_seed)
        return self._splits

    # ------------------------------------------------------------------------------------- distillation

    def config(self, method: str, ipc: int, seed: int = 0, *, overrides: Mapping[str, Any] | None = None,
               distill_arch: Mapping[str, Any] | None = None, scale_lr: bool = True) -> DistillConfig:
        """The :class:`DistillConfig` of ``method`` (a preset name) at ``ipc`` with ``seed``.

        ``overrides``: extra :class:`DistillConfig` fields of a page's variant (e.g. ``{"interval": 1}``), applied
        after the setup's; ``distill_arch``: ``{"arch": name, **kwargs}`` to distil with another network than the
        setup's. Neither given → exactly the chapter's shared run. For the IDC family, when the setup tunes the image
        learning rate (``distill['lr_img']``) and nothing sets ``lr_img`` explicitly, the authors' lr_img at ``ipc``
        is multiplied by the factor chosen on the validation split (:meth:`lr_img_choice`), the same for every arm;
        ``scale_lr=False`` gives the authors' value."""
        ipc = check_int("ipc", ipc, low=1)
        seed = check_int("seed", seed, low=0)
        base, comps = preset_components(method)
        o = self.distill_overrides
        arch, arch_kwargs = self.arch, dict(self.arch_kwargs)
        if distill_arch is not None:
            spec = _check_mapping("distill_arch", distill_arch)
            if "arch" not in spec:
                raise ValueError(f"distill_arch={spec!r} needs an 'arch' key (one of {list_models()})")
            arch = check_choice("distill_arch['arch']", spec.pop("arch"), list_models())
            arch_kwargs = spec
        extra = _check_mapping("overrides", overrides or {})
        bad = sorted(set(extra) & {"method", "ipc", "seed", "arch", "arch_kwargs"})
        if bad:
            raise ValueError(f"overrides may not set {bad}; use the method, ipc, seed and distill_arch arguments")
        fields = {"arch": arch, "arch_kwargs": arch_kwargs, **o["common"], **o[base],
                  **(o["rm"] if "rm" in comps else {}), **extra, "seed": seed}
        if self.device.type != "cuda":
            fields["device"] = str(self.device)
        if self.dry_run:
            fields.update(iterations=2, outer_loops=1, snapshot_every=1)
            ipc = 1                 # a dry run's classes hold a handful of images (see make_splits)
        cfg = preset(method, self.dataset, ipc, **fields)
        if scale_lr and base == "idc" and self.lr_tuning is not None and "lr_img" not in fields:
            cfg = cfg.replace(lr_img=cfg.lr_img * self.lr_img_choice()["scale"])
        if self.dry_run:               # ... so the real batch, the sub-clusters and the real rounds shrink too
            cfg = cfg.replace(batch_real=min(cfg.batch_real, 4), subsample=min(cfg.subsample, 2),
                              num_clusters=None if cfg.num_clusters is None else min(cfg.num_clusters, 4),
                              n_data=min(cfg.n_data, 32))
        return cfg

    def run(self, method: str, ipc: int, seed: int = 0, *, overrides: Mapping[str, Any] | None = None,
            distill_arch: Mapping[str, Any] | None = None) -> DistillResult:
        """The distillation run (cached; shared by every page with the same setup and variant)."""
        if method in CORESETS:
            raise ValueError(f"method={method!r} is a coreset; runs exist for distillation presets only")
        if (self.lr_tuning is not None and seed in self.lr_tuning["seeds"] and "lr_img" not in (overrides or {})
                and preset_components(method)[0] == "idc"):
            raise ValueError(f"distillation seed {seed} is one of the seeds the image learning rate was chosen with "
                             f"(distill['lr_img']['seeds']={self.lr_tuning['seeds']}); the seeds that judge a claim "
                             "must be disjoint from them")
        cfg = self.config(method, ipc, seed, overrides=overrides, distill_arch=distill_arch)
        result = distill_cached(self.splits.train, cfg, cache=self.cache, progress=self.progress)
        key = f"{method}|{ipc}|{seed}|{sorted((overrides or {}).items())}|{distill_arch}"
        if key not in self._moved:
            snaps = dict(result.snapshots)
            change = (float((result.images - snaps[0]).abs().mean()) if 0 in snaps else float("nan"))
            self._moved[key] = {"method": method_label(method), "ipc": ipc, "seed": seed,
                                "variant": ", ".join(f"{k}={v}" for k, v in sorted((overrides or {}).items())) or "–",
                                "iterations": cfg.iterations, "image steps": cfg.iterations * cfg.outer_loops,
                                "mean |Δpixel|": change}
        return result

    def lr_img_choice(self) -> dict[str, Any]:
        """The factor on the authors' image learning rate, chosen on the **validation split**: for every factor of
        ``distill['lr_img']['scales']`` and every tuning seed (disjoint from the distillation seeds that judge the
        claims), IDC at ``distill['lr_img']['ipc']`` with the setup's budget, evaluated once (init = the tuning seed)
        on the validation part. The highest mean validation accuracy wins (ties: the smaller factor, nearer the
        authors'). The authors' lr_img is sized for 2000 × 100 image steps; at a budget thousands of times smaller it
        barely moves the images. Returns ``{"scale", "lr_img" (at that ipc), "ipc", "table" (one row per factor:
        factor, lr_img, mean and std of the validation accuracy, per-seed values, chosen)}``."""
        if self.lr_tuning is None:
            raise ValueError("the setup does not tune the image learning rate (distill['lr_img'] is not set)")
        if self._lr_choice is None:
            t = self.lr_tuning
            authors = self.config("idc", t["ipc"], scale_lr=False).lr_img
            cells = [(x, sd) for x in t["scales"] for sd in t["seeds"]]

            def one(cell):
                x, sd = cell
                return self.evaluate("idc", t["ipc"], sd, sd, split="val", overrides={"lr_img": authors * x})["acc"]

            accs = self._map(one, cells, "lr_img on the validation split", group=lambda c: c)
            rows = []
            for x in t["scales"]:
                vals = [a for (y, _), a in zip(cells, accs) if y == x]
                rows.append({"factor": x, "lr_img": authors * x, "val acc (mean)": float(np.mean(vals)),
                             "val acc (std)": float(np.std(vals, ddof=1)) if len(vals) > 1 else float("nan"),
                             "per seed": [round(v, 4) for v in vals]})
            best = max(range(len(rows)), key=lambda i: (rows[i]["val acc (mean)"], -rows[i]["factor"]))
            table = pd.DataFrame(rows).assign(chosen=[i == best for i in range(len(rows))])
            self._lr_choice = {"scale": rows[best]["factor"], "lr_img": rows[best]["lr_img"], "ipc": t["ipc"],
                               "table": table}
        return self._lr_choice

    def pixel_change(self) -> pd.DataFrame:
        """How far every distillation run this study has loaded moved its images: one row per run (method, ipc,
        seed, variant, iterations, image steps) with the mean absolute change of the stored pixels (in [0, 1])
        between the initialisation (the run's snapshot 0; NaN when the run took no snapshots) and the final set.
        A run whose images barely moved compares initialisations, not matching."""
        cols = ["method", "ipc", "seed", "variant", "iterations", "image steps", "mean |Δpixel|"]
        return pd.DataFrame(list(self._moved.values()), columns=cols)

    # ------------------------------------------------------------------------------------- coresets

    def _feature_net(self):
        from ...quantize import ExtractorConfig, pipeline   # the cached classifier whose embeddings herding/k-center use

        config = ExtractorConfig(arch=self.arch, arch_kwargs=self.arch_kwargs, epochs=self.feature_epochs)
        return pipeline.feature_extractor(self.splits.train, config, device=self.device, cache=self.cache,
                                          progress=self.progress)

    def embeddings(self) -> torch.Tensor:
        """(N, D) embeddings of the training part by the cached feature ConvNet."""
        from ...features import extract_embeddings

        return extract_embeddings(self._feature_net(), self.splits.train.images, device=self.device,
                                  progress=False).cpu()

    def forgetting(self) -> torch.Tensor:
        """(N,) forgetting scores of the training part (a fresh ConvNet trained ``forgetting_epochs``), cached."""
        from ...select import forgetting_scores

        train = self.splits.train
        key = {"dataset": dataset_fingerprint(train), "arch": self.arch, "arch_kwargs": dict(self.arch_kwargs),
               "epochs": self.forgetting_epochs, "seed": 0}

        def compute():
            net = create_model(self.arch, num_classes=train.num_classes, in_channels=train.channels,
                               image_size=train.image_size, mean=train.mean, std=train.std, seed=0, **self.arch_kwargs)
            scores = forgetting_scores(net, train.images, train.labels, {"epochs": self.forgetting_epochs}, seed=0,
                                       device=self.device, progress=False)
            return {"scores": scores}

        return self.cache.get_or_compute("dream_forgetting", key, compute, version=code_version(__name__))["scores"]

    def coreset(self, method: str, ipc: int, seed: int = 0) -> torch.Tensor:
        """Indices (into the training part) of the ``ipc``-per-class coreset of ``method``."""
        check_choice("method", method, CORESETS)
        train = self.splits.train
        emb = self.embeddings() if method in ("herding", "kcenter") else None
        scores = self.forgetting() if method == "forgetting" else None
        return select_coreset_ipc(train.labels, ipc, method, embeddings=emb, scores=scores, seed=seed).cpu()

    # ------------------------------------------------------------------------------------- evaluation

    def family(self, method: str) -> str:
        """Evaluation protocol family of ``method``."""
        if method in CORESETS:
            return self.coreset_family
        return family_of(preset_components(method)[0])

    def training_set(self, method: str, ipc: int, seed: int = 0, *, iteration: int | None = None,
                     overrides: Mapping[str, Any] | None = None, distill_arch: Mapping[str, Any] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) a network is trained on: a coreset, a run's final set (IDC-decoded), or the
        snapshot taken after ``iteration`` distillation iterations (0 = the initialisation); ``overrides`` and
        ``distill_arch`` select a variant run (:meth:`config`)."""
        if method in CORESETS:
            if iteration is not None or overrides or distill_arch is not None:
                raise ValueError("iteration, overrides and distill_arch apply to distillation runs only")
            idx = self.coreset(method, ipc, seed)
            return self.splits.train.images[idx], self.splits.train.labels[idx]
        result = self.run(method, ipc, seed, overrides=overrides, distill_arch=distill_arch)
        images = result.images
        if iteration is not None:
            snaps = dict(result.snapshots)
            if iteration not in snaps:
                raise ValueError(f"iteration={iteration} has no snapshot; allowed: {sorted(snaps)}")
            images = snaps[iteration]
        cfg = result.config
        if cfg.method == "idc" and cfg.factor > 1:
            return idc_decode(images, cfg.factor), idc_decode_labels(result.labels, cfg.factor)
        return images, result.labels

    def evaluate(self, method: str, ipc: int, seed: int, eval_seed: int, *, iteration: int | None = None,
                 split: str = "test", overrides: Mapping[str, Any] | None = None,
                 distill_arch: Mapping[str, Any] | None = None, eval_arch: Mapping[str, Any] | None = None
                 ) -> dict[str, Any]:
        """Train the page's ConvNet (or ``eval_arch`` = ``{"arch": name, **kwargs}``; init ``eval_seed``) on
        :meth:`training_set` and score it on ``split``; cached."""
        check_choice("split", split, ("test", "val"))
        images, labels = self.training_set(method, ipc, seed, iteration=iteration, overrides=overrides,
                                           distill_arch=distill_arch)
        evaluation = self.splits.test if split == "test" else self.splits.val
        arch, arch_kwargs = self._arch_of(eval_arch)
        return evaluate_cached(images, labels, evaluation, arch=arch, arch_kwargs=arch_kwargs,
                               protocol=self.protocols[self.family(method)], seed=eval_seed,
                               eval_every=self.check_every, device=self.device, cache=self.cache)

    def _arch_of(self, spec: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        if spec is None:
            return self.arch, dict(self.arch_kwargs)
        spec = _check_mapping("arch spec", spec)
        if "arch" not in spec:
            raise ValueError(f"arch spec {spec!r} needs an 'arch' key (one of {list_models()})")
        arch = check_choice("arch", spec.pop("arch"), list_models())
        bad = sorted(set(spec) - set(model_kwargs(arch)))
        if bad:
            raise ValueError(f"arch spec has unknown key(s) {bad} for {arch!r}; allowed: {list(model_kwargs(arch))}")
        return arch, spec

    def _map(self, fn, cells, desc: str, group=None) -> list:
        """``[fn(c) for c in cells]`` through :func:`dscore.distributed.ordered_map`: in a prefill every process
        starts with its own share (``group`` keeps the cells of one distillation run together), and the result is
        in the cells' order whatever the process."""
        return ordered_map(fn, cells, group=group, desc=desc, progress=self.progress)

    def grid(self, methods: Sequence[str], ipcs: Sequence[int], distill_seeds: Sequence[int] = (0,), *,
             multi_seed: Sequence[str] = ("random", "idc", "dream", "dreamplus"),
             seeds_at: Mapping[int, int] | None = None) -> pd.DataFrame:
        """One row per (method, ipc, distillation seed, evaluation seed): ``method, label, ipc, seed, eval_seed,
        acc, best_of_checks, num_train, seconds``. Methods in ``multi_seed`` use every ``distill_seeds`` entry (Random
        among them by default: one random image per class varies by several points between selection seeds, and the
        chapter's calibration compares its mean with the paper's level), the others only the first (coresets:
        selection seed). ``seeds_at`` (``{ipc: n}``) caps the multi-seed
        methods at the first ``n`` of ``distill_seeds`` at that IPC (a budget spent where the claims need units)."""
        if not methods or not ipcs:
            raise ValueError("methods and ipcs must be non-empty")
        seeds = [check_int("distill seed", s, low=0) for s in distill_seeds]
        if not seeds:
            raise ValueError("distill_seeds must be non-empty")
        seeds = self._dry(seeds, 1)          # as every other grid of the chapter, so that dry-run arms pair by seed
        cap = {check_int("seeds_at ipc", k, low=1): check_int(f"seeds_at[{k}]", v, low=1)
               for k, v in dict(seeds_at or {}).items()}
        cells = [(m, ipc, s, e) for ipc in ipcs for m in methods
                 for s in (seeds[:cap.get(ipc, len(seeds))] if m in multi_seed else seeds[:1]) for e in self.eval_seeds]

        def one(cell):
            m, ipc, s, e = cell
            r = self.evaluate(m, ipc, s, e)
            return {"method": m, "label": method_label(m), "ipc": ipc, "seed": s, "eval_seed": e, "acc": r["acc"],
                    "best_of_checks": r["best_of_checks"], "num_train": r["num_train"], "seconds": r["seconds"]}

        return pd.DataFrame(self._map(one, cells, "evaluations", group=lambda c: c[:3]))

    def curves(self, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
               eval_seeds: Sequence[int] | None = None, *, overrides: Mapping[str, Any] | None = None
               ) -> pd.DataFrame:
        """Accuracy over distillation: every snapshot of every run evaluated with ``eval_seeds`` (default the
        setup's). One row per (method, seed, iteration, eval_seed): ``method, label, seed, iteration, seconds
        (distillation wall time up to that snapshot, from the run's per-step timings), eval_seed, acc``."""
        eval_seeds = list(self.eval_seeds if eval_seeds is None else eval_seeds)
        if self.dry_run:
            eval_seeds = eval_seeds[:1]
        cells = [(m, s) for m in methods for s in distill_seeds]

        def one(cell):
            m, s = cell
            result = self.run(m, ipc, s, overrides=overrides)
            if not result.snapshots:
                raise ValueError(f"the {m!r} run has no snapshots; set snapshot_every in the distill overrides")
            secs = cumulative_seconds(result.history, result.config.iterations)
            return [{"method": m, "label": method_label(m), "seed": s, "iteration": it, "seconds": secs[it],
                     "eval_seed": e, "acc": self.evaluate(m, ipc, s, e, iteration=it, overrides=overrides)["acc"]}
                    for it, _ in result.snapshots for e in eval_seeds]

        return pd.DataFrame([row for rows in self._map(one, cells, "curves") for row in rows])

    # ------------------------------------------------------------------------------------- MMD probe

    def probe_network(self, seed: int, pretrain_epochs: int = 1):
        """The probe of Fig. 2 and Fig. 6: a fresh network of the page's architecture (init from ``seed``) trained
        ``pretrain_epochs`` epochs on the training part (0 = untrained), in eval mode. Independent of every
        distillation run, so that arms are measured on one footing. Kept for the study's lifetime: the probes of
        one page (common probe, MMD trajectory) are the same networks, trained once."""
        from ...train import train_model

        seed = check_int("seed", seed, low=0)
        pretrain_epochs = check_int("pretrain_epochs", pretrain_epochs, low=0)
        if (seed, pretrain_epochs) in self._probes:
            return self._probes[(seed, pretrain_epochs)]
        train = self.splits.train
        net = create_model(self.arch, num_classes=train.num_classes, in_channels=train.channels,
                           image_size=train.image_size, mean=train.mean, std=train.std, seed=seed, **self.arch_kwargs)
        if pretrain_epochs:
            train_model(net, train.images, train.labels, {"epochs": pretrain_epochs, "batch_size": 128, "lr": 0.01},
                        device=self.device, seed=seed, progress=False)
        net = net.to(self.device).eval()
        self._probes[(seed, pretrain_epochs)] = net
        return net

    def batch_mmd_probe(self, seeds: Sequence[int], *, batch: int, pretrain_epochs: int = 1,
                        draws: int = 1) -> pd.DataFrame:
        """MMD² between a real mini-batch and its whole class, random vs. representative batches (DREAM Fig. 2b).

        For every seed: :meth:`probe_network` embeds the training part; per class and for each of ``draws`` draws,
        a uniform random batch of ``batch`` images and DREAM's representative batch (the image nearest to each of
        ``batch`` k-means centres, k-means seeded per draw) are compared with the class by
        :func:`dscore.metrics.mmd2` (Gaussian kernel, median bandwidth). A third batch, the ``batch`` images
        *farthest* from their centres ("boundary"), shows the other extreme. Several draws measure the
        fluctuation of the matching targets from one batch to the next (Fig. 2b's "less fluctuation").
        Returns one row per (seed, class, draw, kind) with ``mmd2``; cached per seed. Cost per seed: one embedding
        pass and ``draws`` k-means per class.
        """
        from ...cluster import kmeans
        from ...features import extract_embeddings
        from ...metrics import median_bandwidth, mmd2

        batch = check_int("batch", batch, low=2)
        pretrain_epochs = check_int("pretrain_epochs", pretrain_epochs, low=0)
        draws = check_int("draws", draws, low=1)
        train = self.splits.train
        kinds = ("random", "representative", "boundary")
        rows = []
        for seed in seeds:
            seed = check_int("seed", seed, low=0)
            key = {"dataset": dataset_fingerprint(train), "arch": self.arch, "arch_kwargs": dict(self.arch_kwargs),
                   "seed": seed, "batch": batch, "pretrain_epochs": pretrain_epochs, "draws": draws}

            def compute(seed=seed):
                net = self.probe_network(seed, pretrain_epochs)
                emb = extract_embeddings(net, train.images, device=self.device, progress=False).cpu().float()
                out = torch.zeros(train.num_classes, draws, len(kinds), dtype=torch.float64)
                for c in range(train.num_classes):
                    e = emb[train.labels == c]
                    k = min(batch, e.shape[0])
                    sigma = median_bandwidth(e)
                    for d in range(draws):             # draw d of class c is the same whatever ``draws`` is
                        gen = torch.Generator().manual_seed(seed * 1000 + c + 100_000 * d)
                        cent, assign = kmeans(e, k, seed=seed * 1000 + c + 100_000 * d)
                        dist = torch.cdist(e, cent)
                        centre = dist.argmin(0)                                   # nearest image to each centre
                        own = dist.gather(1, assign.view(-1, 1)).squeeze(1)       # distance to own centre
                        boundary = own.argsort(descending=True)[:k]
                        rand = torch.randperm(e.shape[0], generator=gen)[:k]
                        for j, idx in enumerate((rand, centre, boundary)):
                            out[c, d, j] = mmd2(e[idx], e, sigma)
                return {"mmd2": out}

            vals = self.cache.get_or_compute("dream_batch_mmd", key, compute, version=code_version(__name__))["mmd2"]
            for c in range(vals.shape[0]):
                for d in range(vals.shape[1]):
                    for j, kind in enumerate(kinds):
                        rows.append({"seed": seed, "class": train.classes[c], "draw": d, "kind": kind,
                                     "mmd2": float(vals[c, d, j])})
        return pd.DataFrame(rows)

    def common_probe(self, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
                     probe_seeds: Sequence[int], *, batch: int, pretrain_epochs: int = 1) -> pd.DataFrame:
        """Gradient and feature difference of every arm's final synthetic set on **one** probe (Fig. 6b/c).

        The runs' own diagnostics measure each arm in its own networks; here, for every probe seed, one
        :meth:`probe_network` and one real batch per class (``batch`` images drawn uniformly with the probe seed)
        serve every arm. For each (method, distillation seed, class) the synthetic images of the class (IDC-decoded,
        as matching sees them) give the gradient difference Σ‖g_real − g_syn‖² of the cross-entropy over all
        parameters (:func:`dscore.metrics.gradient_difference`) and the feature difference ‖μ_real − μ_syn‖² of
        the embeddings (:func:`dscore.metrics.feature_difference`). Returns one row per (method, seed, probe_seed,
        class): ``method, label, seed, probe_seed, class, grad_diff, feature_diff``. Not cached: per probe seed it
        trains one network (``pretrain_epochs``) and takes two small backward passes per arm and class."""
        import torch.nn.functional as F

        from ...metrics import feature_difference, gradient_difference

        batch = check_int("batch", batch, low=1)
        if not methods or not distill_seeds or not probe_seeds:
            raise ValueError("methods, distill_seeds and probe_seeds must be non-empty")
        train = self.splits.train
        sets = {}
        for m in methods:
            if m in CORESETS:
                raise ValueError(f"method={m!r} is a coreset; the probe compares distilled sets")
            for s in distill_seeds:
                images, labels = self.run(m, ipc, s).training_set()
                sets[(m, s)] = (images.to(self.device), labels.to(self.device))
        rows = []
        for p in probe_seeds:
            p = check_int("probe seed", p, low=0)
            net = self.probe_network(p, pretrain_epochs)
            params = [q for q in net.parameters() if q.requires_grad]
            gen = torch.Generator().manual_seed(p)

            def grads_and_features(x, y):
                emb = net.embed(x)
                loss = F.cross_entropy(net.classify(emb), y)
                return torch.autograd.grad(loss, params), emb.detach().float()

            for c in range(train.num_classes):
                pool = torch.nonzero(train.labels == c).flatten()
                pick = pool[torch.randperm(pool.numel(), generator=gen)[:batch]]
                real = train.images[pick].to(self.device)
                g_real, f_real = grads_and_features(real, torch.full((real.shape[0],), c, device=self.device))
                for (m, s), (images, labels) in sets.items():
                    syn = images[labels == c]
                    g_syn, f_syn = grads_and_features(syn, labels[labels == c])
                    rows.append({"method": m, "label": method_label(m), "seed": s, "probe_seed": p,
                                 "class": train.classes[c], "grad_diff": gradient_difference(g_real, g_syn),
                                 "feature_diff": feature_difference(f_real, f_syn)})
        return pd.DataFrame(rows)

    def mmd_trajectory(self, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
                       probe_seeds: Sequence[int], *, pretrain_epochs: int = 1) -> pd.DataFrame:
        """MMD² between every snapshot's synthetic images and the real data, on common probes (Fig. 6d).

        For every probe seed, :meth:`probe_network` embeds the whole training part once; per class, the Gaussian
        bandwidth is the median distance between that class's real embeddings (one σ for every arm and snapshot).
        Every snapshot of every (method, distillation seed) run (iteration 0 = the initialisation; IDC-decoded, as
        matching sees them) is embedded by the same probe, and :func:`dscore.metrics.mmd2` compares a class's
        synthetic images with all of its real ones (unbiased; the biased V-statistic when a class holds a single
        synthetic image). Returns one row per (method, seed, probe_seed, iteration, class): ``method, label, seed,
        probe_seed, iteration, class, mmd2``. Not cached (the runs and probes are); cost per probe seed: one
        embedding pass over the training part and one over every snapshot, O(n_syn · n_class · D) per MMD."""
        from ...features import extract_embeddings
        from ...metrics import median_bandwidth, mmd2

        if not methods or not distill_seeds or not probe_seeds:
            raise ValueError("methods, distill_seeds and probe_seeds must be non-empty")
        train = self.splits.train
        snaps = {}
        for m in methods:
            if m in CORESETS:
                raise ValueError(f"method={m!r} is a coreset; the trajectory follows distillation runs")
            for s in distill_seeds:
                result = self.run(m, ipc, s)
                if not result.snapshots:
                    raise ValueError(f"the {m!r} run keeps no snapshots; set snapshot_every in the distill overrides")
                for it, _ in result.snapshots:
                    snaps[(m, s, int(it))] = self.training_set(m, ipc, s, iteration=int(it))
        rows = []
        for p in probe_seeds:
            p = check_int("probe seed", p, low=0)
            net = self.probe_network(p, pretrain_epochs)
            real = extract_embeddings(net, train.images, device=self.device, progress=False).cpu().float()
            per_class = [real[train.labels == c] for c in range(train.num_classes)]
            sigmas = [median_bandwidth(e) for e in per_class]
            for (m, s, it), (images, labels) in snaps.items():
                emb = extract_embeddings(net, images, device=self.device, progress=False).cpu().float()
                for c in range(train.num_classes):
                    syn = emb[labels.cpu() == c]
                    rows.append({"method": m, "label": method_label(m), "seed": s, "probe_seed": p, "iteration": it,
                                 "class": train.classes[c],
                                 "mmd2": mmd2(syn, per_class[c], sigmas[c], unbiased=syn.shape[0] >= 2)})
        return pd.DataFrame(rows)

    # ------------------------------------------------------------------------------------- run diagnostics

    def diagnostics(self, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int]) -> pd.DataFrame:
        """The runs' diagnostics (``diag_every`` image steps): one row per (method, seed, step) with ``grad_diff``,
        ``feature_diff`` and ``batch_mmd`` (MMD² of the real batch to its class in the current network)."""
        rows = []
        for m in methods:
            for s in distill_seeds:
                h = self.run(m, ipc, s).history
                if not h["diag_step"]:
                    raise ValueError(f"the {m!r} run has no diagnostics; set diag_every in the distill overrides")
                for i, step in enumerate(h["diag_step"]):
                    rows.append({"method": m, "label": method_label(m), "seed": s, "step": int(step),
                                 "grad_diff": h["grad_diff"][i], "feature_diff": h["feature_diff"][i],
                                 "batch_mmd": h["batch_mmd"][i]})
        return pd.DataFrame(rows)

    def costs(self, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int]) -> pd.DataFrame:
        """Per-iteration mean seconds per image step of each run (:func:`per_step_costs` of every iteration's
        steps): one row per (method, seed, iteration) with ``clustering, image_update, network_update, pretrain,
        whole``."""
        rows, from_cache = [], []
        for m in methods:
            for s in distill_seeds:
                seen = len(self.cache.ledger)
                r = self.run(m, ipc, s)
                if not any(rec["computed"] for rec in self.cache.ledger[seen:]):
                    from_cache.append(f"{m} seed {s}")
                h = r.history
                its = np.asarray(h["iteration"], dtype=int)
                pre = list(h.get("time_pretrain", []))
                for it in range(r.config.iterations):
                    sel = np.flatnonzero(its == it)
                    if not len(sel):
                        continue
                    sub = {k: [h[k][j] for j in sel] for k in ("time_clustering", "time_matching",
                                                              "time_network_update")}
                    sub["time_pretrain"] = [pre[it]] if it < len(pre) else []
                    rows.append({"method": m, "label": method_label(m), "seed": s, "iteration": it,
                                 **per_step_costs(sub, 1)})
        df = pd.DataFrame(rows)
        #: the runs served from the cache: their step times were recorded by the run that distilled them
        df.attrs["from_cache"] = from_cache
        return df

    def migration(self, method: str, ipc: int, seed: int) -> pd.DataFrame:
        """Feature migration of a run's synthetic images between consecutive snapshots
        (:func:`dscore.metrics.feature_migration` of their embeddings by the cached feature ConvNet, IDC sets
        decoded): one row per interval with ``iteration`` (the later snapshot) and ``migration``."""
        from ...features import extract_embeddings
        from ...metrics import feature_migration

        result = self.run(method, ipc, seed)
        if len(result.snapshots) < 2:
            raise ValueError(f"the {method!r} run needs at least 2 snapshots for feature migration")
        net = self._feature_net()
        cfg = result.config
        embs = []
        for _, images in result.snapshots:
            if cfg.method == "idc" and cfg.factor > 1:
                images = idc_decode(images, cfg.factor)
            embs.append(extract_embeddings(net, images, device=self.device, progress=False).cpu())
        mig = feature_migration(embs)
        its = [int(i) for i, _ in result.snapshots]
        return pd.DataFrame({"method": method, "label": method_label(method), "seed": seed, "iteration": its[1:],
                             "migration": mig.tolist()})

    def coverage(self, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int], *, tsne_seed: int = 0,
                 real_per_class: int = 100, perplexity: float = 30.0) -> dict[str, pd.DataFrame]:
        """How the synthetic sets cover their classes (DREAM+ Fig. 8), in the embedding of the cached feature ConvNet.

        ``"coverage"``: one row per (method, seed, class) with ``coverage`` = the mean distance of the class's real
        training images to their nearest synthetic (IDC-decoded) image of the class, divided by the mean distance
        of the real images to their class mean (lower = the synthetic images spread over the class), and
        ``centre`` = the mean distance of the synthetic images to the real class mean, on the same scale.
        ``"points"``: a 2-D t-SNE (:func:`dscore.metrics.tsne`, seed ``tsne_seed``) of ``real_per_class`` real
        images per class and the synthetic images of the first distillation seed of every method, one row per point
        (``kind`` = "real" or the method label, ``class``, ``x``, ``y``)."""
        from ...data import stratified_subset
        from ...features import extract_embeddings
        from ...metrics import tsne

        train = self.splits.train
        net = self._feature_net()
        real = extract_embeddings(net, train.images, device=self.device, progress=False).cpu().float()
        rows, syn_pts = [], []
        for m in methods:
            for s in distill_seeds:
                images, labels = self.training_set(m, ipc, s)
                emb = extract_embeddings(net, images, device=self.device, progress=False).cpu().float()
                for c in range(train.num_classes):
                    r, y = real[train.labels == c], emb[labels == c]
                    mu = r.mean(0, keepdim=True)
                    scale = float(torch.cdist(r, mu).mean())
                    rows.append({"method": m, "label": method_label(m), "seed": s, "class": train.classes[c],
                                 "coverage": float(torch.cdist(r, y).min(1).values.mean()) / scale,
                                 "centre": float(torch.cdist(y, mu).mean()) / scale})
                if s == distill_seeds[0]:
                    syn_pts.append((method_label(m), emb, labels))
        per = min(real_per_class, int(train.class_counts().min()))
        sub = stratified_subset(train, per, seed=tsne_seed)
        sub_emb = extract_embeddings(net, sub.images, device=self.device, progress=False).cpu().float()
        allx = torch.cat([sub_emb] + [e for _, e, _ in syn_pts])
        xy = tsne(allx, seed=tsne_seed, perplexity=min(perplexity, (allx.shape[0] - 1) / 3))
        kinds = ["real"] * sub_emb.shape[0] + [k for k, e, _ in syn_pts for _ in range(e.shape[0])]
        classes = sub.labels.tolist() + [int(v) for _, _, l in syn_pts for v in l]
        points = pd.DataFrame({"kind": kinds, "class": [train.classes[c] for c in classes],
                               "x": xy[:, 0].tolist(), "y": xy[:, 1].tolist()})
        return {"coverage": pd.DataFrame(rows), "points": points}

    # ------------------------------------------------------------------------------------- variants (Fig. 7, Tab. V)

    def variant_overrides(self, method: str, ipc: int, **fields) -> dict[str, Any]:
        """The :meth:`config` overrides that give ``method`` the DistillConfig ``fields`` (e.g. ``interval=1`` or
        ``num_clusters=8, subsample=4``): empty when the chapter's shared run already has them, so that variant
        grids reuse the main runs. ``num_clusters`` is compared as the effective K (:attr:`DistillConfig.clusters`)."""
        base = self.config(method, ipc)
        try:
            cand = base.replace(**fields)
        except ValueError as e:
            raise ValueError(f"variant {fields}: {e}") from None
        same = all((cand.clusters == base.clusters) if k == "num_clusters" else getattr(cand, k) == getattr(base, k)
                   for k in fields)
        return {} if same else dict(fields)

    def evaluate_topk(self, method: str, ipc: int, seed: int, eval_seed: int, *, overrides: Mapping[str, Any] | None = None,
                      k: Sequence[int] = (1, 5)) -> dict[str, Any]:
        """:meth:`evaluate` with top-k accuracies (Fig. 7 reports top-1 and top-5): the same network, seed and
        protocol trained on the run's final set, scored on the test set; cached. ``{"acc", "top<k>"…}``."""
        from ...continual import topk_accuracy
        from ...evaluation import train_set_digest
        from ...train import seeded_model, train_with_protocol

        images, labels = self.training_set(method, ipc, seed, overrides=overrides)
        test = self.splits.test
        proto = self.protocols[self.family(method)]
        ks = [check_int("k", v, low=1) for v in k]
        key = {"train": train_set_digest(images, labels), "evaluation": dataset_fingerprint(test), "arch": self.arch,
               "arch_kwargs": dict(self.arch_kwargs), "protocol": proto.as_kwargs(), "seed": eval_seed, "k": ks,
               "device": self.device.type}

        def compute():
            model = seeded_model(lambda: create_model(self.arch, num_classes=test.num_classes,
                                                      in_channels=test.channels, image_size=test.image_size,
                                                      mean=test.mean, std=test.std, **self.arch_kwargs), eval_seed)
            result = train_with_protocol(model, images, labels, proto, test=(test.images, test.labels),
                                         device=self.device, seed=eval_seed, progress=False)
            acc = topk_accuracy(result.model, test.images, test.labels, ks, device=self.device)
            return {"acc": float(result.final_test_acc), **{f"top{v}": float(a) for v, a in acc.items()}}

        return self.cache.get_or_compute("dream_topk", key, compute, version=code_version(__name__))

    def interval_grid(self, method: str, ipc: int, intervals: Sequence[int], distill_seeds: Sequence[int] = (0,)
                      ) -> pd.DataFrame:
        """Fig. 7(a): ``method`` distilled with every re-clustering ``interval`` (image steps; the setup's own value
        is the shared run), final sets evaluated with every evaluation seed. One row per (interval, seed,
        eval_seed): ``interval, once_per_network`` (interval ≥ image steps per network: one clustering per
        network), ``seed, eval_seed, acc, top5``."""
        if not intervals:
            raise ValueError("intervals must be non-empty")
        intervals, distill_seeds = self._dry(intervals, 2), self._dry(distill_seeds, 1)
        steps = self.config(method, ipc).outer_loops
        intervals = [check_int("interval", v, low=1) for v in intervals]
        cells = [(v, s, e) for v in intervals for s in distill_seeds for e in self.eval_seeds]

        def one(cell):
            v, s, e = cell
            r = self.evaluate_topk(method, ipc, s, e, overrides=self.variant_overrides(method, ipc, interval=v))
            return {"interval": v, "once_per_network": v >= steps, "seed": s, "eval_seed": e, "acc": r["acc"],
                    "top5": r.get("top5")}

        return pd.DataFrame(self._map(one, cells, "interval grid", group=lambda c: c[:2]))

    def interval_curves(self, method: str, ipc: int, intervals: Sequence[int], distill_seeds: Sequence[int],
                        eval_seeds: Sequence[int] | None = None) -> pd.DataFrame:
        """Fig. 7(b): :meth:`curves` of ``method`` for every interval, with an ``interval`` column."""
        frames = []
        intervals, distill_seeds = self._dry(intervals, 2), self._dry(distill_seeds, 1)
        for v in intervals:
            c = self.curves([method], ipc, distill_seeds, eval_seeds,
                            overrides=self.variant_overrides(method, ipc, interval=int(v)))
            frames.append(c.assign(interval=int(v)))
        return pd.concat(frames, ignore_index=True)

    def class_fraction_cells(self, cells: Sequence[Sequence[int]], paper_class_size: int | None) -> pd.DataFrame:
        """The paper's (K, s) cells of Tab. V at the same *fraction of a class*: K' = max(1, round(K · n / N)) with n
        this setup's training images per class (the smallest class) and N = ``paper_class_size`` (CIFAR-10: 5000);
        s is kept. ``paper_class_size=None`` takes the cells as they are. The 128 sub-clusters the paper finds best are
        2.6 % of a CIFAR-10 class; 128 of a 240-image class would be every other image, i.e. hardly a sub-clustering.
        K' is capped so that K' · s <= n. One row per cell: ``paper_subclusters, samples, subclusters`` (ours),
        ``fraction`` (K'/n); cells that land on the same (K', s) keep the first."""
        n = int(self.splits.train.class_counts().min())
        rows, seen = [], set()
        for cell in cells:
            if not isinstance(cell, Sequence) or len(cell) != 2:
                raise ValueError(f"cell {cell!r} must be [sub-clusters, samples per sub-cluster]")
            k, smp = check_int("sub-clusters", cell[0], low=1), check_int("samples per sub-cluster", cell[1], low=1)
            if paper_class_size is None:
                ours = k
            else:
                check_int("paper_class_size", paper_class_size, low=1)
                ours = max(1, int(round(k * n / paper_class_size)))
            ours = max(1, min(ours, n // smp))         # a batch cannot exceed the class: K · s <= n
            if (ours, smp) in seen:
                continue
            seen.add((ours, smp))
            rows.append({"paper_subclusters": k, "samples": smp, "subclusters": ours, "fraction": ours / n})
        return pd.DataFrame(rows, columns=["paper_subclusters", "samples", "subclusters", "fraction"])

    def sampling_grid(self, methods: Sequence[str], ipc: int, cells: Sequence[Sequence[int]],
                      distill_seeds: Sequence[int] = (0,)) -> pd.DataFrame:
        """Tab. V: every (sub-cluster number K, samples per sub-cluster s) cell for every method (real batch K·s per
        class; the setup's own K and s are the shared run). One row per (method, K, s, seed, eval_seed):
        ``method, label, subclusters, samples, batch, seed, eval_seed, acc, best_of_checks``."""
        if not cells:
            raise ValueError("cells must be a non-empty list of [sub-clusters, samples per sub-cluster]")
        cells, distill_seeds = self._dry(cells, 2), self._dry(distill_seeds, 1)
        todo = []
        for m in methods:
            if "rm" not in preset_components(m)[1]:
                raise ValueError(f"method={m!r} has no representative sampler; Tab. V varies DREAM and DREAM+")
        for cell in cells:
            if not isinstance(cell, Sequence) or len(cell) != 2:
                raise ValueError(f"cell {cell!r} must be [sub-clusters, samples per sub-cluster]")
            k, n = check_int("sub-clusters", cell[0], low=1), check_int("samples per sub-cluster", cell[1], low=1)
            todo += [(m, k, n, s, e) for m in methods for s in distill_seeds for e in self.eval_seeds]

        def one(cell):
            m, k, n, s, e = cell
            r = self.evaluate(m, ipc, s, e, overrides=self.variant_overrides(m, ipc, num_clusters=k, subsample=n))
            return {"method": m, "label": method_label(m), "subclusters": k, "samples": n, "batch": k * n,
                    "seed": s, "eval_seed": e, "acc": r["acc"], "best_of_checks": r["best_of_checks"]}

        return pd.DataFrame(self._map(one, todo, "sampling grid", group=lambda c: c[:4]))

    # ------------------------------------------------------------------------------------- cross-architecture (Tab. IV)

    def cross_arch(self, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
                   eval_archs: Mapping[str, Mapping[str, Any]],
                   distill_archs: Mapping[str, Mapping[str, Any] | None] | None = None) -> pd.DataFrame:
        """Tab. IV: sets distilled with each ``distill_archs`` network (label → ``{"arch": …}``, None = the setup's
        network, i.e. the chapter's shared runs) evaluated on each ``eval_archs`` network (label → spec). One row
        per (method, distill arch, eval arch, seed, eval_seed): ``method, label, distill_arch, eval_arch`` (the
        labels), ``distill_model, eval_model`` (registry names), ``seed, eval_seed, acc, best_of_checks``."""
        if not eval_archs:
            raise ValueError("eval_archs must name at least one architecture")
        distill_archs = dict(distill_archs or {"setup": None})
        distill_seeds = self._dry(distill_seeds, 1)
        for lab, spec in eval_archs.items():
            self._arch_of(spec)                   # errors before any work
        todo = [(m, d, a, s, e) for d in distill_archs for m in methods for a in eval_archs for s in distill_seeds
                for e in self.eval_seeds]

        def one(cell):
            m, d, a, s, e = cell
            spec = distill_archs[d]
            r = self.evaluate(m, ipc, s, e, distill_arch=spec, eval_arch=eval_archs[a])
            return {"method": m, "label": method_label(m), "distill_arch": d, "eval_arch": a,
                    "distill_model": self.arch if spec is None else spec["arch"],
                    "eval_model": eval_archs[a]["arch"], "seed": s, "eval_seed": e, "acc": r["acc"],
                    "best_of_checks": r["best_of_checks"]}

        # one distillation run per group (method, distill arch, seed): its owner distils, the others evaluate
        return pd.DataFrame(self._map(one, todo, "cross-architecture", group=lambda c: (c[0], c[1], c[3])))

    # ------------------------------------------------------------------------------------- continual learning (Fig. 11)

    def continual(self, methods: Sequence[str], ipc: int, seed: int = 0, *, steps: int = 5, order_seed: int = 0,
                  eval_arch: Mapping[str, Any] | None = None, from_scratch: bool = False, temperature: float = 2.0,
                  kd_weight: float = 1.0, epochs: int | None = None) -> pd.DataFrame:
        """Fig. 11: class-incremental learning (:func:`dscore.continual.class_incremental`) over ``steps`` groups of a
        seeded random class order, the memory of each class being its images in ``method``'s set (a coreset or the
        run's final set, IDC-decoded), one run per evaluation seed; cached. Every method trains with the IDC-family
        protocol (the authors' continual-learning script uses one recipe for all memories), ``epochs`` per step
        (None: the protocol's). One row per (method,
        eval_seed, step): ``method, label, eval_seed, step, classes, num_memory, acc, top5, seconds``."""
        from ...continual import class_incremental, class_steps
        from ...evaluation import train_set_digest

        train, test = self.splits.train, self.splits.test
        order_seed = check_int("order_seed", order_seed, low=0)
        order = torch.randperm(train.num_classes, generator=torch.Generator().manual_seed(order_seed)).tolist()
        class_steps(order, steps)                                    # errors before any work
        arch, kwargs = self._arch_of(eval_arch)
        proto = self.protocols["idc"]
        if epochs is not None and not self.dry_run:
            proto = proto.replace(epochs=check_int("epochs", epochs, low=1))
        todo = [(m, e) for m in methods for e in self.eval_seeds]

        def one(cell):
            m, e = cell
            images, labels = self.training_set(m, ipc, seed)
            key = {"train": train_set_digest(images, labels), "test": dataset_fingerprint(test), "arch": arch,
                   "arch_kwargs": kwargs, "protocol": proto.as_kwargs(), "seed": e, "order": order, "steps": steps,
                   "from_scratch": from_scratch, "temperature": temperature, "kd_weight": kd_weight,
                   "device": self.device.type}

            def compute(images=images, labels=labels, e=e):
                memory = {c: images[labels == c] for c in range(train.num_classes)}
                kd = None if from_scratch else {"temperature": temperature, "weight": kd_weight}
                out = class_incremental(memory, test.images, test.labels, protocol=proto, class_order=order,
                                        steps=steps, kd=kd, seed=e, device=self.device, progress=False,
                                        model_fn=lambda k: create_model(arch, num_classes=k, in_channels=train.channels,
                                                                        image_size=train.image_size, mean=train.mean,
                                                                        std=train.std, **kwargs))
                return {"rows": torch.tensor([[r["step"], r["classes"], r["num_memory"], r["acc"], r["top5"],
                                               r["seconds"]] for r in out], dtype=torch.float64)}

            vals = self.cache.get_or_compute("dream_continual", key, compute, version=code_version(__name__))["rows"]
            return [{"method": m, "label": method_label(m), "eval_seed": e, "step": int(v[0]), "classes": int(v[1]),
                     "num_memory": int(v[2]), "acc": v[3], "top5": v[4], "seconds": v[5]} for v in vals.tolist()]

        df = pd.DataFrame([row for rows in self._map(one, todo, "continual", group=lambda c: c[0]) for row in rows])
        df.attrs["class_order"] = [train.classes[c] for c in order]
        return df

    # ------------------------------------------------------------------------------------- calibration

    def baseline_diagnostics(self, ipcs: Sequence[int], methods: Sequence[str] = ("dc", "dsa", "dm", "forgetting"),
                             seed: int = 0, eval_seed: int | None = None) -> pd.DataFrame:
        """Measurements that say why a Tab. I baseline sits where it does at this scale, on the **test** split like
        the table they explain (nothing here is chosen from them). One row per (method, ipc, measure): ``method,
        ipc, measure, value``.

        - DC, DSA, DM (those of ``methods``): the accuracy of the run's initial set (DC: Gaussian noise; DSA,
          DM: random real images) beside its final set, and the image steps run beside the authors' released
          number: a final set near its initialisation is a short distillation, not the method.
        - Forgetting (when in ``methods``): the share of the coreset made of samples the scoring network never
          classified correctly in its ``forgetting_epochs`` (:func:`dscore.select.never_learned`; they score highest,
          so they are picked first: the hardest, most atypical images of each class).

        ``seed`` is the distillation / selection seed, ``eval_seed`` the network seed (default: the setup's first).
        Cost: two evaluations per distillation method and ipc (cached; the final sets' are the main grid's)."""
        ipcs = self._dry([check_int("ipc", i, low=1) for i in ipcs], 1)
        for m in methods:
            check_choice("method", m, ("dc", "dsa", "dm", "forgetting"))
        e = self.eval_seeds[0] if eval_seed is None else eval_seed
        rows = []
        for ipc in ipcs:
            for m in [m for m in methods if m != "forgetting"]:
                result = self.run(m, ipc, seed)
                cfg, authors = result.config, preset(m, self.dataset, ipc)
                init = self.evaluate(m, ipc, seed, e, iteration=0)["acc"]
                final = self.evaluate(m, ipc, seed, e)["acc"]
                steps = cfg.iterations * max(cfg.outer_loops, 1)
                theirs = authors.iterations * max(authors.outer_loops, 1)
                rows += [{"method": method_label(m), "ipc": ipc, "measure": "initial set, test accuracy (%)",
                          "value": 100 * init},
                         {"method": method_label(m), "ipc": ipc, "measure": "final set, test accuracy (%)",
                          "value": 100 * final},
                         {"method": method_label(m), "ipc": ipc, "measure": "image steps run / authors' (%)",
                          "value": 100 * steps / theirs}]
            if "forgetting" not in methods:
                continue
            scores = self.forgetting()
            idx = self.coreset("forgetting", ipc, seed)
            never = float(never_learned(scores[idx], self.forgetting_epochs).double().mean())
            rows.append({"method": "Forgetting", "ipc": ipc, "value": 100 * never,
                         "measure": f"coreset never classified correctly in {self.forgetting_epochs} scoring epochs (%)"})
        return pd.DataFrame(rows, columns=["method", "ipc", "measure", "value"])

    def calibration(self, ipcs: Sequence[int], lengths: Sequence[int], seeds: Sequence[int], *,
                    families: Sequence[str] = ("idc",)) -> pd.DataFrame:
        """Accuracy against evaluation epochs for the chapter's reference sets: ``ipc`` random real images per class
        (selection seed ``s``, network seed ``s``), trained with each family's protocol for each of ``lengths``
        epochs (the protocol's schedule scaled to the length) and scored on the **validation split**; ``seeds``
        should be disjoint from the seeds that judge claims. One row per (ipc, family, length, seed): ``ipc,
        family, length, seed, acc`` (:func:`dscore.studies.calibration.length_curve`; turn it into lengths with
        :func:`~dscore.studies.calibration.plateau_lengths`). Cost: len(ipcs) × len(families) × len(seeds) ×
        sum(lengths) epochs of an evaluation network on ``ipc × classes`` images."""
        for f in families:
            check_choice("family", f, tuple(self.protocols))
        ipcs = self._dry([check_int("ipc", i, low=1) for i in ipcs], 1)
        lengths = self._dry(sorted(check_int("length", n, low=1) for n in lengths), 2)
        seeds = self._dry(list(seeds), 1)
        arch, arch_kwargs = self._arch_of(None)

        def score(group, length, seed):
            ipc, family = group
            images, labels = self.training_set("random", ipc, seed)
            protocol = self.protocols[family].replace(epochs=1 if self.dry_run else length)
            return evaluate_cached(images, labels, self.splits.val, arch=arch, arch_kwargs=arch_kwargs,
                                   protocol=protocol, seed=seed, device=self.device, cache=self.cache)["acc"]

        return length_curve(score, [(i, f) for i in ipcs for f in families], lengths, seeds,
                            group_names=("ipc", "family"), progress=self.progress)

    def configured_epochs(self) -> dict[str, int]:
        """The evaluation epochs the chapter runs at, per protocol family."""
        return {f: p.epochs for f, p in self.protocols.items()}

    # ------------------------------------------------------------------------------------- descriptions

    def describe(self) -> dict[str, Any]:
        """What this study ran at, for the page banner."""
        p = self.protocols["idc"]
        c = self.config("idc", 1, scale_lr=False)
        authors = preset("idc", self.dataset, 1)
        steps, theirs = c.iterations * c.outer_loops, authors.iterations * authors.outer_loops
        out = {"data": self.splits.describe(), "network": f"{self.arch}{self.arch_kwargs or ''}",
               "distillation": f"{c.iterations} iterations × {c.outer_loops} image steps (IDC family) = {steps} image "
                               f"steps, {steps / theirs:.2%} of the authors' released {authors.iterations} × "
                               f"{authors.outer_loops}",
               "network batch": f"{c.net_batch} for every IDC-family arm",
               "evaluation": f"{p.epochs} epochs (IDC family), seeds {self.eval_seeds}",
               "device": str(self.device)}
        if self.dry_run:
            out = {"dry run": "one tiny step of everything: the numbers mean nothing", **out}
        if self.lr_tuning is not None:
            choice = self.lr_img_choice()
            out["image learning rate"] = (f"the authors' × {choice['scale']:g}, chosen on the validation split with "
                                          f"seeds {self.lr_tuning['seeds']} (lr_img {choice['lr_img']:.3g} at IPC "
                                          f"{choice['ipc']})")
        return out

    def _dry(self, values: Sequence, n: int) -> list:
        """``values`` as a list, only its first ``n`` entries under a dry run (the grids check their parameters, not
        every cell)."""
        return list(values)[:n] if self.dry_run else list(values)
