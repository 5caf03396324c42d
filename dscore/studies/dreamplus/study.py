"""The DREAM+ chapter's core: one :class:`DreamStudy` per page, sharing every run through the cache.

Every DREAM+ page declares the same *setup* parameters (:data:`SETUP_KEYS`: data scale, the ConvNet, the
distillation overrides per base method, the evaluation protocol per family, the coreset settings, the
device). Identical setups give identical configs, so a distillation run (with its snapshots, per-step
timings and diagnostics) and an evaluation run are computed once for the whole chapter: the main table,
the efficiency curves, the ablation, the cost table, the MMD curves and the image grids all read the same
IDC / DREAM / DREAM+ runs.

The study is the small core every analysis stands on: the config of a run, the run, the set a network trains on,
one evaluation, the evaluation grid and the accuracy curves. The analyses are free functions of a study in their
own modules: :mod:`.probes` (MMD and common-probe measurements), :mod:`.runs` (what the runs did: pixel
change, diagnostics, step costs, migration, coverage), :mod:`.variants` (the interval, sampling and
cross-architecture grids), :mod:`.incremental` (continual learning), :mod:`.baselines` (calibration and the
baselines' diagnostics), :mod:`.coresets` and :mod:`.tuning` (the image learning rate).

Methods (:func:`~.labels.method_label` gives the table names):

* coresets ``random``, ``herding``, ``kcenter``, ``forgetting`` (:data:`~.labels.CORESETS`; :mod:`.coresets`);
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

import pandas as pd
import torch

from ...cache import ArtifactCache, as_cache
from ...distill import DistillConfig, DistillResult, distill_cached, preset
from ...distill.config import preset_components
from ...distill.evaluate import family_of
from ...distill.init import idc_decode, idc_decode_labels
from ...distributed import ordered_map
from ...evaluation import evaluate_cached
from ...models import list_models, model_kwargs
from ...utils import check_choice, check_int, resolve_device
from ..common import Splits, make_splits
from .coresets import coreset
from .labels import CORESETS, PAPER_DATASET, method_label
from .setup import SETUP_KEYS, DreamSetup, setup_from
from .timing import cumulative_seconds
from .tuning import lr_img_choice as choose_lr_img

__all__ = ["SETUP_KEYS", "CORESETS", "PAPER_DATASET", "DreamStudy", "DreamSetup", "setup_from", "method_label",
           "preset_components"]


def _check_mapping(name: str, value) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}={value!r} must be a mapping")
    return dict(value)


class DreamStudy:
    """The shared state of the DREAM+ chapter for one setup (see the module docstring).

    ``setup``: a :class:`~dscore.studies.dreamplus.setup.DreamSetup`, or a page's setup parameters (a mapping with
    exactly the keys of :data:`SETUP_KEYS`, checked once by :meth:`DreamSetup.from_params`); read it as
    ``study.setup``. ``dry_run``: shrink every step to a tiny one (a few images per class, one epoch, two iterations,
    one seed) to check a profile's parameters end to end; the numbers mean nothing then.
    Everything is computed lazily and cached in ``cache`` (default: ``$DSCORE_CACHE``). Bad parameters raise
    ValueError naming the key before any work. What the study keeps in memory is either a pure function of the setup
    and the cache (the splits, the image learning rate chosen) or a record of what it was asked
    (:attr:`runs_loaded`), which no result reads.
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
        self.device = resolve_device(None if self.setup.device == "auto" else self.setup.device)
        self.cache = as_cache(cache)
        self.progress = progress
        #: every distillation run this study has loaded, in order, with how far its images moved (the page's "did the
        #: images move?" table, :func:`~.runs.pixel_change`)
        self.runs_loaded: dict[str, dict[str, Any]] = {}
        self._splits: Splits | None = None
        self._lr_choice: dict[str, Any] | None = None
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

    @property
    def splits(self) -> Splits:
        """The training, validation and test parts of the setup's data (loaded once)."""
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
        s = self.setup
        o = s.distill
        arch, arch_kwargs = s.arch, dict(s.arch_kwargs)
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
        cfg = preset(method, s.dataset, ipc, **fields)
        if scale_lr and base == "idc" and s.lr_tuning is not None and "lr_img" not in fields:
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
        t = self.setup.lr_tuning
        if (t is not None and seed in t.seeds and "lr_img" not in (overrides or {})
                and preset_components(method)[0] == "idc"):
            raise ValueError(f"distillation seed {seed} is one of the seeds the image learning rate was chosen with "
                             f"(distill['lr_img']['seeds']={list(t.seeds)}); the seeds that judge a claim "
                             "must be disjoint from them")
        cfg = self.config(method, ipc, seed, overrides=overrides, distill_arch=distill_arch)
        result = distill_cached(self.splits.train, cfg, cache=self.cache, progress=self.progress)
        key = f"{method}|{ipc}|{seed}|{sorted((overrides or {}).items())}|{distill_arch}"
        if key not in self.runs_loaded:
            snaps = dict(result.snapshots)
            change = (float((result.images - snaps[0]).abs().mean()) if 0 in snaps else float("nan"))
            self.runs_loaded[key] = {"method": method_label(method), "ipc": ipc, "seed": seed,
                                     "variant": ", ".join(f"{k}={v}" for k, v in sorted((overrides or {}).items())) or "–",
                                     "iterations": cfg.iterations, "image steps": cfg.iterations * cfg.outer_loops,
                                     "mean |Δpixel|": change}
        return result

    def lr_img_choice(self) -> dict[str, Any]:
        """The factor on the authors' image learning rate chosen on the validation split
        (:func:`~.tuning.lr_img_choice`; its evaluations are cached artefacts, the choice is made once per study)."""
        if self._lr_choice is None:
            self._lr_choice = choose_lr_img(self)
        return self._lr_choice

    # ------------------------------------------------------------------------------------- evaluation

    def family(self, method: str) -> str:
        """Evaluation protocol family of ``method``."""
        if method in CORESETS:
            return self.setup.coreset_family
        return family_of(preset_components(method)[0])

    def training_set(self, method: str, ipc: int, seed: int = 0, *, iteration: int | None = None,
                     overrides: Mapping[str, Any] | None = None, distill_arch: Mapping[str, Any] | None = None
                     ) -> tuple[torch.Tensor, torch.Tensor]:
        """(images, labels) a network is trained on: a coreset (:func:`~.coresets.coreset`), a run's final set
        (IDC-decoded), or the snapshot taken after ``iteration`` distillation iterations (0 = the initialisation);
        ``overrides`` and ``distill_arch`` select a variant run (:meth:`config`)."""
        if method in CORESETS:
            if iteration is not None or overrides or distill_arch is not None:
                raise ValueError("iteration, overrides and distill_arch apply to distillation runs only")
            idx = coreset(self, method, ipc, seed)
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
        arch, arch_kwargs = self.arch_of(eval_arch)
        return evaluate_cached(images, labels, evaluation, arch=arch, arch_kwargs=arch_kwargs,
                               protocol=self.setup.protocols[self.family(method)], seed=eval_seed,
                               eval_every=self.setup.check_every, device=self.device, cache=self.cache)

    def arch_of(self, spec: Mapping[str, Any] | None) -> tuple[str, dict[str, Any]]:
        """``(arch, kwargs)`` of an evaluation network spec ``{"arch": name, **kwargs}`` (None: the setup's network),
        checked against the model registry."""
        if spec is None:
            return self.setup.arch, dict(self.setup.arch_kwargs)
        spec = _check_mapping("arch spec", spec)
        if "arch" not in spec:
            raise ValueError(f"arch spec {spec!r} needs an 'arch' key (one of {list_models()})")
        arch = check_choice("arch", spec.pop("arch"), list_models())
        bad = sorted(set(spec) - set(model_kwargs(arch)))
        if bad:
            raise ValueError(f"arch spec has unknown key(s) {bad} for {arch!r}; allowed: {list(model_kwargs(arch))}")
        return arch, spec

    def map_cells(self, fn, cells, desc: str, group=None) -> list:
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
        seeds = self.dry(seeds, 1)          # as every other grid of the chapter, so that dry-run arms pair by seed
        cap = {check_int("seeds_at ipc", k, low=1): check_int(f"seeds_at[{k}]", v, low=1)
               for k, v in dict(seeds_at or {}).items()}
        cells = [(m, ipc, s, e) for ipc in ipcs for m in methods
                 for s in (seeds[:cap.get(ipc, len(seeds))] if m in multi_seed else seeds[:1]) for e in self.setup.eval_seeds]

        def one(cell):
            m, ipc, s, e = cell
            r = self.evaluate(m, ipc, s, e)
            return {"method": m, "label": method_label(m), "ipc": ipc, "seed": s, "eval_seed": e, "acc": r["acc"],
                    "best_of_checks": r["best_of_checks"], "num_train": r["num_train"], "seconds": r["seconds"]}

        return pd.DataFrame(self.map_cells(one, cells, "evaluations", group=lambda c: c[:3]))

    def curves(self, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
               eval_seeds: Sequence[int] | None = None, *, overrides: Mapping[str, Any] | None = None
               ) -> pd.DataFrame:
        """Accuracy over distillation: every snapshot of every run evaluated with ``eval_seeds`` (default the
        setup's). One row per (method, seed, iteration, eval_seed): ``method, label, seed, iteration, seconds
        (distillation wall time up to that snapshot, from the run's per-step timings), eval_seed, acc``."""
        eval_seeds = list(self.setup.eval_seeds if eval_seeds is None else eval_seeds)
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

        return pd.DataFrame([row for rows in self.map_cells(one, cells, "curves") for row in rows])

    def variant_overrides(self, method: str, ipc: int, *, scale_lr: bool = True, **fields) -> dict[str, Any]:
        """The :meth:`config` overrides that give ``method`` the DistillConfig ``fields`` (e.g. ``interval=1`` or
        ``num_clusters=8, subsample=4``): empty when the chapter's shared run already has them, so that variant
        grids reuse the main runs. ``num_clusters`` is compared as the effective K (:attr:`DistillConfig.clusters`).
        ``scale_lr=False`` compares at the authors' image learning rate, which the fields do not touch (the plan
        uses it to choose no learning rate)."""
        base = self.config(method, ipc, scale_lr=scale_lr)
        try:
            cand = base.replace(**fields)
        except ValueError as e:
            raise ValueError(f"variant {fields}: {e}") from None
        same = all((cand.clusters == base.clusters) if k == "num_clusters" else getattr(cand, k) == getattr(base, k)
                   for k in fields)
        return {} if same else dict(fields)

    # ------------------------------------------------------------------------------------- descriptions

    def configured_epochs(self) -> dict[str, int]:
        """The evaluation epochs the chapter runs at, per protocol family."""
        return {f: p.epochs for f, p in self.setup.protocols.items()}

    def describe(self) -> dict[str, Any]:
        """What this study ran at, for the page banner."""
        s = self.setup
        p = s.protocols["idc"]
        c = self.config("idc", 1, scale_lr=False)
        authors = preset("idc", s.dataset, 1)
        steps, theirs = c.iterations * c.outer_loops, authors.iterations * authors.outer_loops
        out = {"data": self.splits.describe(), "network": f"{s.arch}{dict(s.arch_kwargs) or ''}",
               "distillation": f"{c.iterations} iterations × {c.outer_loops} image steps (IDC family) = {steps} image "
                               f"steps, {steps / theirs:.2%} of the authors' released {authors.iterations} × "
                               f"{authors.outer_loops}",
               "network batch": f"{c.net_batch} for every IDC-family arm",
               "evaluation": f"{p.epochs} epochs (IDC family), seeds {list(s.eval_seeds)}",
               "device": str(self.device)}
        if self.dry_run:
            out = {"dry run": "one tiny step of everything: the numbers mean nothing", **out}
        if s.lr_tuning is not None:
            choice = self.lr_img_choice()
            out["image learning rate"] = (f"the authors' × {choice['scale']:g}, chosen on the validation split with "
                                          f"seeds {list(s.lr_tuning.seeds)} (lr_img {choice['lr_img']:.3g} at IPC "
                                          f"{choice['ipc']})")
        return out

    def dry(self, values: Sequence, n: int) -> list:
        """``values`` as a list, only its first ``n`` entries under a dry run (the grids check their parameters, not
        every cell)."""
        return list(values)[:n] if self.dry_run else list(values)
