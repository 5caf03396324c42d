"""The DREAM+ chapter's variant grids: the re-clustering interval (Fig. 7), the sub-cluster number and samples per
sub-cluster (Tab. V) and the distillation × evaluation architectures (Tab. IV). A variant equal to the chapter's
setup is the shared run (:meth:`~.study.DreamStudy.variant_overrides`). Free functions of a
:class:`~.study.DreamStudy`."""
from __future__ import annotations

from typing import Any, Mapping, Sequence

import pandas as pd

from ...distill.config import preset_components
from ...fingerprint import code_version, dataset_fingerprint
from ...models import create_model
from ...utils import check_int
from .labels import method_label
from .study import DreamStudy

__all__ = ["evaluate_topk", "interval_grid", "interval_curves", "class_fraction_cells", "fraction_cells", "sampling_grid", "cross_arch"]


def evaluate_topk(study: DreamStudy, method: str, ipc: int, seed: int, eval_seed: int, *, overrides: Mapping[str, Any] | None = None,
                  k: Sequence[int] = (1, 5)) -> dict[str, Any]:
    """:meth:`evaluate` with top-k accuracies (Fig. 7 reports top-1 and top-5): the same network, seed and
    protocol trained on the run's final set, scored on the test set; cached. ``{"acc", "top<k>"…}``."""
    from ...continual import topk_accuracy
    from ...evaluation import train_set_digest
    from ...train import seeded_model, train_with_protocol

    images, labels = study.training_set(method, ipc, seed, overrides=overrides)
    test = study.splits.test
    proto = study.setup.protocols[study.family(method)]
    ks = [check_int("k", v, low=1) for v in k]
    key = {"train": train_set_digest(images, labels), "evaluation": dataset_fingerprint(test), "arch": study.setup.arch,
           "arch_kwargs": dict(study.setup.arch_kwargs), "protocol": proto.as_kwargs(), "seed": eval_seed, "k": ks,
           "device": study.device.type}

    def compute():
        model = seeded_model(lambda: create_model(study.setup.arch, num_classes=test.num_classes,
                                                  in_channels=test.channels, image_size=test.image_size,
                                                  mean=test.mean, std=test.std, **study.setup.arch_kwargs), eval_seed)
        result = train_with_protocol(model, images, labels, proto, test=(test.images, test.labels),
                                     device=study.device, seed=eval_seed, progress=False)
        acc = topk_accuracy(result.model, test.images, test.labels, ks, device=study.device)
        return {"acc": float(result.final_test_acc), **{f"top{v}": float(a) for v, a in acc.items()}}

    return study.cache.get_or_compute("dream_topk", key, compute, version=code_version(__name__))


def interval_grid(study: DreamStudy, method: str, ipc: int, intervals: Sequence[int], distill_seeds: Sequence[int] = (0,)
                  ) -> pd.DataFrame:
    """Fig. 7(a): ``method`` distilled with every re-clustering ``interval`` (image steps; the setup's own value
    is the shared run), final sets evaluated with every evaluation seed. One row per (interval, seed,
    eval_seed): ``interval, once_per_network`` (interval ≥ image steps per network: one clustering per
    network), ``seed, eval_seed, acc, top5``."""
    if not intervals:
        raise ValueError("intervals must be non-empty")
    intervals, distill_seeds = study.dry(intervals, 2), study.dry(distill_seeds, 1)
    steps = study.config(method, ipc).outer_loops
    intervals = [check_int("interval", v, low=1) for v in intervals]
    cells = [(v, s, e) for v in intervals for s in distill_seeds for e in study.setup.eval_seeds]

    def one(cell):
        v, s, e = cell
        r = evaluate_topk(study, method, ipc, s, e, overrides=study.variant_overrides(method, ipc, interval=v))
        return {"interval": v, "once_per_network": v >= steps, "seed": s, "eval_seed": e, "acc": r["acc"],
                "top5": r.get("top5")}

    return pd.DataFrame(study.map_cells(one, cells, "interval grid", group=lambda c: c[:2]))


def interval_curves(study: DreamStudy, method: str, ipc: int, intervals: Sequence[int], distill_seeds: Sequence[int],
                    eval_seeds: Sequence[int] | None = None) -> pd.DataFrame:
    """Fig. 7(b): :meth:`curves` of ``method`` for every interval, with an ``interval`` column."""
    frames = []
    intervals, distill_seeds = study.dry(intervals, 2), study.dry(distill_seeds, 1)
    for v in intervals:
        c = study.curves([method], ipc, distill_seeds, eval_seeds,
                        overrides=study.variant_overrides(method, ipc, interval=int(v)))
        frames.append(c.assign(interval=int(v)))
    return pd.concat(frames, ignore_index=True)


def class_fraction_cells(study: DreamStudy, cells: Sequence[Sequence[int]], paper_class_size: int | None) -> pd.DataFrame:
    """:func:`fraction_cells` at this setup's training images per class (the smallest class)."""
    return fraction_cells(cells, int(study.splits.train.class_counts().min()), paper_class_size)


def fraction_cells(cells: Sequence[Sequence[int]], class_size: int, paper_class_size: int | None) -> pd.DataFrame:
    """The paper's (K, s) cells of Tab. V at the same *fraction of a class*: K' = max(1, round(K · n / N)) with n =
    ``class_size`` (our training images per class) and N = ``paper_class_size`` (CIFAR-10: 5000); s is kept.
    ``paper_class_size=None`` takes the cells as they are. The 128 sub-clusters the paper finds best are 2.6 % of a
    CIFAR-10 class; 128 of a 240-image class would be every other image, i.e. hardly a sub-clustering. K' is capped so
    that K' · s <= n. One row per cell: ``paper_subclusters, samples, subclusters`` (ours), ``fraction`` (K'/n);
    cells that land on the same (K', s) keep the first. Needs no data (the plan uses it too)."""
    n = check_int("class_size", class_size, low=1)
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


def sampling_grid(study: DreamStudy, methods: Sequence[str], ipc: int, cells: Sequence[Sequence[int]],
                  distill_seeds: Sequence[int] = (0,)) -> pd.DataFrame:
    """Tab. V: every (sub-cluster number K, samples per sub-cluster s) cell for every method (real batch K·s per
    class; the setup's own K and s are the shared run). One row per (method, K, s, seed, eval_seed):
    ``method, label, subclusters, samples, batch, seed, eval_seed, acc, best_of_checks``."""
    if not cells:
        raise ValueError("cells must be a non-empty list of [sub-clusters, samples per sub-cluster]")
    cells, distill_seeds = study.dry(cells, 2), study.dry(distill_seeds, 1)
    todo = []
    for m in methods:
        if "rm" not in preset_components(m)[1]:
            raise ValueError(f"method={m!r} has no representative sampler; Tab. V varies DREAM and DREAM+")
    for cell in cells:
        if not isinstance(cell, Sequence) or len(cell) != 2:
            raise ValueError(f"cell {cell!r} must be [sub-clusters, samples per sub-cluster]")
        k, n = check_int("sub-clusters", cell[0], low=1), check_int("samples per sub-cluster", cell[1], low=1)
        todo += [(m, k, n, s, e) for m in methods for s in distill_seeds for e in study.setup.eval_seeds]

    def one(cell):
        m, k, n, s, e = cell
        r = study.evaluate(m, ipc, s, e, overrides=study.variant_overrides(m, ipc, num_clusters=k, subsample=n))
        return {"method": m, "label": method_label(m), "subclusters": k, "samples": n, "batch": k * n,
                "seed": s, "eval_seed": e, "acc": r["acc"], "best_of_checks": r["best_of_checks"]}

    return pd.DataFrame(study.map_cells(one, todo, "sampling grid", group=lambda c: c[:4]))


def cross_arch(study: DreamStudy, methods: Sequence[str], ipc: int, distill_seeds: Sequence[int],
               eval_archs: Mapping[str, Mapping[str, Any]],
               distill_archs: Mapping[str, Mapping[str, Any] | None] | None = None) -> pd.DataFrame:
    """Tab. IV: sets distilled with each ``distill_archs`` network (label → ``{"arch": …}``, None = the setup's
    network, i.e. the chapter's shared runs) evaluated on each ``eval_archs`` network (label → spec). One row
    per (method, distill arch, eval arch, seed, eval_seed): ``method, label, distill_arch, eval_arch`` (the
    labels), ``distill_model, eval_model`` (registry names), ``seed, eval_seed, acc, best_of_checks``."""
    if not eval_archs:
        raise ValueError("eval_archs must name at least one architecture")
    distill_archs = dict(distill_archs or {"setup": None})
    distill_seeds = study.dry(distill_seeds, 1)
    for lab, spec in eval_archs.items():
        study.arch_of(spec)                   # errors before any work
    todo = [(m, d, a, s, e) for d in distill_archs for m in methods for a in eval_archs for s in distill_seeds
            for e in study.setup.eval_seeds]

    def one(cell):
        m, d, a, s, e = cell
        spec = distill_archs[d]
        r = study.evaluate(m, ipc, s, e, distill_arch=spec, eval_arch=eval_archs[a])
        return {"method": m, "label": method_label(m), "distill_arch": d, "eval_arch": a,
                "distill_model": study.setup.arch if spec is None else spec["arch"],
                "eval_model": eval_archs[a]["arch"], "seed": s, "eval_seed": e, "acc": r["acc"],
                "best_of_checks": r["best_of_checks"]}

    # one distillation run per group (method, distill arch, seed): its owner distils, the others evaluate
    return pd.DataFrame(study.map_cells(one, todo, "cross-architecture", group=lambda c: (c[0], c[1], c[3])))
