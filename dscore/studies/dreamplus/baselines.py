"""The DREAM+ chapter's calibration: how long the evaluation networks train (a length curve on the validation split)
and why each Tab. I baseline sits where it does at this scale. Free functions of a :class:`~.study.DreamStudy`."""
from __future__ import annotations

from typing import Sequence

import pandas as pd

from ...distill import preset
from ...evaluation import evaluate_cached
from ...select import never_learned
from ...utils import check_choice, check_int
from ..calibration import length_curve
from .coresets import coreset, forgetting
from .labels import method_label
from .study import DreamStudy

__all__ = ["baseline_diagnostics", "calibration"]


def baseline_diagnostics(study: DreamStudy, ipcs: Sequence[int], methods: Sequence[str] = ("dc", "dsa", "dm", "forgetting"),
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
    ipcs = study.dry([check_int("ipc", i, low=1) for i in ipcs], 1)
    for m in methods:
        check_choice("method", m, ("dc", "dsa", "dm", "forgetting"))
    e = study.setup.eval_seeds[0] if eval_seed is None else eval_seed
    rows = []
    for ipc in ipcs:
        for m in [m for m in methods if m != "forgetting"]:
            result = study.run(m, ipc, seed)
            cfg, authors = result.config, preset(m, study.setup.dataset, ipc)
            init = study.evaluate(m, ipc, seed, e, iteration=0)["acc"]
            final = study.evaluate(m, ipc, seed, e)["acc"]
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
        scores = forgetting(study)
        idx = coreset(study, "forgetting", ipc, seed)
        never = float(never_learned(scores[idx], study.setup.forgetting_epochs).double().mean())
        rows.append({"method": "Forgetting", "ipc": ipc, "value": 100 * never,
                     "measure": f"coreset never classified correctly in {study.setup.forgetting_epochs} scoring epochs (%)"})
    return pd.DataFrame(rows, columns=["method", "ipc", "measure", "value"])


def calibration(study: DreamStudy, ipcs: Sequence[int], lengths: Sequence[int], seeds: Sequence[int], *,
                families: Sequence[str] = ("idc",)) -> pd.DataFrame:
    """Accuracy against evaluation epochs for the chapter's reference sets: ``ipc`` random real images per class
    (selection seed ``s``, network seed ``s``), trained with each family's protocol for each of ``lengths``
    epochs (the protocol's schedule scaled to the length) and scored on the **validation split**; ``seeds``
    should be disjoint from the seeds that judge claims. One row per (ipc, family, length, seed): ``ipc,
    family, length, seed, acc`` (:func:`dscore.studies.calibration.length_curve`; turn it into lengths with
    :func:`~dscore.studies.calibration.plateau_lengths`). Cost: len(ipcs) × len(families) × len(seeds) ×
    sum(lengths) epochs of an evaluation network on ``ipc × classes`` images."""
    for f in families:
        check_choice("family", f, tuple(study.setup.protocols))
    ipcs = study.dry([check_int("ipc", i, low=1) for i in ipcs], 1)
    lengths = study.dry(sorted(check_int("length", n, low=1) for n in lengths), 2)
    seeds = study.dry(list(seeds), 1)
    arch, arch_kwargs = study.arch_of(None)

    def score(group, length, seed):
        ipc, family = group
        images, labels = study.training_set("random", ipc, seed)
        protocol = study.setup.protocols[family].replace(epochs=1 if study.dry_run else length)
        return evaluate_cached(images, labels, study.splits.val, arch=arch, arch_kwargs=arch_kwargs,
                               protocol=protocol, seed=seed, device=study.device, cache=study.cache)["acc"]

    return length_curve(score, [(i, f) for i in ipcs for f in families], lengths, seeds,
                        group_names=("ipc", "family"), progress=study.progress)
