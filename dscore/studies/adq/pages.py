"""What a page of the ADQ chapter may hold beyond its types and ranges, checked once before any kernel starts
(:func:`check_page`, called by the book's parameter check): the chapter's setup (:class:`~.setup.ADQSetup`, every
nested block included), the methods, the MAE block, the budgets that cannot work at the pool's size, and the one rule
across seeds: the seeds that judge a claim are disjoint from the seeds (β, T) were chosen with."""
from __future__ import annotations

from typing import Any, Mapping

from ...utils import check_choice
from ..common import check_distinct, train_per_class
from .study import METHODS, ADQStudy, setup_from

__all__ = ["TEST_SEED_KEYS", "check_page"]

#: the page parameters whose seeds judge claims on the test split (selection and network seeds)
TEST_SEED_KEYS = ("seeds", "context_seeds", "extractor_seeds")


def check_page(values: Mapping[str, Any]) -> None:
    """Check a page's complete parameters (the notebook's defaults under the profile's values); a ValueError names the
    key, the value and what is allowed. Loads no data."""
    setup = ADQStudy(setup_from(values), values.get("archs", {"ConvNet-3": {"arch": "convnet3"}}), progress=False).setup
    methods = list(values.get("methods") or [])
    for i, m in enumerate(methods):
        check_choice(f"methods[{i}]", m, METHODS)
    check_distinct("methods", methods)
    if values.get("mae") is not None:
        _check_mae(values["mae"])
    tuning_seeds = set(setup.tuning.seeds)
    for key in TEST_SEED_KEYS:
        overlap = sorted(set(values.get(key) or []) & tuning_seeds)
        if overlap:
            raise ValueError(f"{key}={list(values[key])} reuses the tuning seeds {overlap} (tuning['seeds']="
                             f"{list(setup.tuning.seeds)}); the seeds that judge a claim must be disjoint from the "
                             "seeds (β, T) were chosen with")
    n = train_per_class(setup.pool_per_class, setup.val_fraction)
    if n is None:
        return
    if setup.bins.num_bins > n:
        raise ValueError(f"num_bins={setup.bins.num_bins} exceeds the {n} training images per class (pool_per_class="
                         f"{setup.pool_per_class} less the validation part); allowed: num_bins <= {n}")
    ratios = [("ratio", values["ratio"])] if "ratio" in values else []
    ratios += [(f"ratios[{i}]", r) for i, r in enumerate(values.get("ratios", []))]
    ratios += [(f"tuning['ratios'][{i}]", r) for i, r in enumerate(setup.tuning.ratios)]
    theta = values.get("theta")
    for name, r in ratios:
        if r * n < 1:
            raise ValueError(f"{name}={r!r} keeps {r * n:.2f} of the {n} training images per class, fewer than "
                             f"one; allowed: {name} >= {1 / n:.3g} at pool_per_class={setup.pool_per_class}")
        if theta is not None and name.startswith("ratio") and r > 1 - theta:
            raise ValueError(f"{name}={r!r} is an effective keep ratio above 1 - theta = {1 - theta:g} (every "
                             f"image, each keeping 1 - theta of its patches); allowed: {name} <= {1 - theta:g}")


def _check_mae(value: Mapping[str, Any]) -> None:
    """``mae``: the fields of :class:`dscore.quantize.config.MAEConfig` but ``patch``, which the page's own ``patch``
    sets."""
    from ...quantize.config import MAEConfig

    if "patch" in value:
        raise ValueError("mae has the key 'patch', which the page's own parameter patch sets; allowed: "
                         + ", ".join(f for f in MAEConfig.fields() if f not in ("patch", "checkpoint")))
    MAEConfig.of(value, "mae")
