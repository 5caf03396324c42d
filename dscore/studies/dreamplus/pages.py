"""What a page of the DREAM+ chapter may hold beyond its types and ranges, checked once before any kernel starts
(:func:`check_page`, called by the book's parameter check): the chapter's setup (:class:`~.setup.DreamSetup`, every
nested block included, and the one network batch of the IDC family), Tab. II's own setup, the methods, the
images-per-class budgets that cannot work at the pool's size, and the one rule across seeds: the distillation seeds
that judge a claim are disjoint from the seeds the image learning rate was chosen with."""
from __future__ import annotations

from typing import Any, Mapping

from ...distill.config import preset_components
from ..common import check_distinct, train_per_class
from .labels import CORESETS
from .setup import setup_from
from .study import DreamStudy

__all__ = ["DISTILL_SEED_KEYS", "check_page"]

#: the page parameters whose seeds are distillation seeds of judged runs
DISTILL_SEED_KEYS = ("distill_seeds", "region_seeds", "seed")


def check_page(values: Mapping[str, Any]) -> None:
    """Check a page's complete parameters (the notebook's defaults under the profile's values); a ValueError names the
    key, the value and what is allowed. Loads no data."""
    study = DreamStudy(setup_from(values), progress=False)
    if values.get("tiny_setup") is not None:            # Tab. II's own setup (another dataset): a valid study
        try:
            DreamStudy(values["tiny_setup"], progress=False)
        except ValueError as exc:
            raise ValueError(f"tiny_setup: {exc}") from None
    methods: list[str] = []
    for key in ("methods", "rows", "other_rows"):
        check_distinct(key, values.get(key) or [])
        for i, m in enumerate(values.get(key) or []):
            if m not in CORESETS:
                try:
                    preset_components(m)
                except ValueError as exc:
                    raise ValueError(f"{key}[{i}]={m!r} is not a method: {exc}; or a coreset: "
                                     f"{', '.join(CORESETS)}") from None
                methods.append(m)
    tuning = study.setup.lr_tuning
    for key in DISTILL_SEED_KEYS if tuning is not None else ():
        value = values.get(key)
        seeds = [value] if isinstance(value, int) else list(value or [])
        overlap = sorted(set(seeds) & set(tuning.seeds))
        if overlap:
            raise ValueError(f"{key}={value!r} reuses the seeds {overlap} the image learning rate was chosen with "
                             f"(distill['lr_img']['seeds']={list(tuning.seeds)}); the seeds that judge a claim must "
                             "be disjoint from them")
    n = train_per_class(study.setup.pool_per_class, study.setup.val_fraction)
    if n is None:
        return
    ipcs = [("ipc", values["ipc"])] if "ipc" in values else []
    ipcs += [(f"ipcs[{i}]", v) for i, v in enumerate(values.get("ipcs", []))]
    for name, ipc in ipcs:
        if ipc > n:
            raise ValueError(f"{name}={ipc} exceeds the {n} training images per class (pool_per_class="
                             f"{study.setup.pool_per_class} less the validation part); allowed: 1 <= {name} <= {n}")
        for method in dict.fromkeys(methods or ["idc", "dream", "dreamplus"]):
            try:
                study.config(method, ipc, scale_lr=False).check_data([n])
            except ValueError as exc:
                raise ValueError(f"{method} at {name}={ipc}: {exc} (pool_per_class={study.setup.pool_per_class} "
                                 f"leaves {n} training images per class)") from None

