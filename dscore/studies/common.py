"""Pieces shared by the chapters' studies: data splits, evaluation architectures, the setup keys of a page."""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Mapping

from ..data import ImageDataset, list_datasets, load_dataset, stratified_subset
from ..models import list_models, model_kwargs
from ..utils import check_choice, check_float, check_int

__all__ = ["Splits", "make_splits", "train_per_class", "check_distinct", "ArchSpec", "arch_specs", "pick_setup", "check_data_scale", "dry_data_scale",
           "DRY_POOL_PER_CLASS", "DRY_TEST_PER_CLASS"]

#: Caps of a dry run (``dry_run=True``): training-pool and test images per class.
DRY_POOL_PER_CLASS, DRY_TEST_PER_CLASS = 20, 10

@dataclass(frozen=True)
class Splits:
    """The three sets a study uses: ``train`` (what is compressed), ``val`` (what tuning scores on; carved
    from the training split, class-stratified, disjoint from ``train``) and ``test`` (scores only what was
    already chosen)."""

    train: ImageDataset
    val: ImageDataset
    test: ImageDataset

    def describe(self) -> str:
        return (f"{self.train.name}: {len(self.train)} training images ({len(self.train) // self.train.num_classes} "
                f"per class), {len(self.val)} validation images carved from the training split, "
                f"{len(self.test)} test images")


def check_data_scale(setup) -> None:
    """Check (and normalise, in place) the data-scale fields every chapter's frozen setup has: ``dataset``,
    ``pool_per_class`` (None or >= 2) / ``test_per_class`` (None or >= 1), ``val_fraction`` in (0, 1), ``split_seed`` >= 0 and
    ``device`` (``"auto"``, ``"cpu"``, ``"cuda"``, ``"cuda:<n>"``). A ValueError names the bad value."""
    check_choice("dataset", setup.dataset, list_datasets())
    for key, low in (("pool_per_class", 2), ("test_per_class", 1)):     # a pool needs a validation carve-out
        if getattr(setup, key) is not None:
            object.__setattr__(setup, key, check_int(key, getattr(setup, key), low=low))
    object.__setattr__(setup, "val_fraction", check_float("val_fraction", setup.val_fraction, low=0.0, high=1.0,
                                                          low_open=True, high_open=True))
    object.__setattr__(setup, "split_seed", check_int("split_seed", setup.split_seed, low=0))
    if setup.device != "auto":
        check_choice("device", str(setup.device).split(":")[0], ("cpu", "cuda"))


def dry_data_scale(setup) -> dict[str, int]:
    """The data-scale fields of a dry run's setup: the pool and the test set capped at :data:`DRY_POOL_PER_CLASS` and
    :data:`DRY_TEST_PER_CLASS` images per class."""
    return {"pool_per_class": min(setup.pool_per_class or DRY_POOL_PER_CLASS, DRY_POOL_PER_CLASS),
            "test_per_class": min(setup.test_per_class or DRY_TEST_PER_CLASS, DRY_TEST_PER_CLASS)}


def make_splits(dataset: str, *, pool_per_class: int | None, val_fraction: float, test_per_class: int | None,
                seed: int = 0) -> Splits:
    """Load ``dataset`` and cut it into train / val / test.

    The pool is ``pool_per_class`` random training images per class (None: the whole training split); a
    class-stratified ``val_fraction`` of the pool becomes the validation split
    (:func:`dscore.data.train_val_split`), the rest the training set. ``test_per_class`` random test images
    per class (None: the whole test split). Same arguments → same splits. (A dry run's setup caps both at
    :data:`DRY_POOL_PER_CLASS` and :data:`DRY_TEST_PER_CLASS`.)
    """
    from ..data import train_val_split

    check_choice("dataset", dataset, list_datasets())
    if pool_per_class is not None:
        pool_per_class = check_int("pool_per_class", pool_per_class, low=2)
    if test_per_class is not None:
        test_per_class = check_int("test_per_class", test_per_class, low=1)
    val_fraction = check_float("val_fraction", val_fraction, low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_int("seed", seed, low=0)
    train = load_dataset(dataset, "train", progress=False)
    test = load_dataset(dataset, "test", progress=False)
    if pool_per_class is not None:
        train = stratified_subset(train, pool_per_class, seed=seed)
    if test_per_class is not None:
        test = stratified_subset(test, test_per_class, seed=seed)
    train, val = train_val_split(train, val_fraction, seed)
    return Splits(train=train, val=val, test=test)


def train_per_class(pool_per_class: int | None, val_fraction: float) -> int | None:
    """Training images per class that :func:`make_splits` leaves after the validation carve-out, without loading
    data: :func:`dscore.data.train_val_split`'s count (round half up, at least 1 and at most n − 1 to validation;
    a test holds the two equal); None for the whole split (not known before loading)."""
    if pool_per_class is None:
        return None
    val = min(max(math.floor(val_fraction * pool_per_class + 0.5), 1), pool_per_class - 1)
    return pool_per_class - val


def check_distinct(name: str, values) -> None:
    """A ValueError naming the first entry of ``values`` (a page's list of methods) that appears twice."""
    values = list(values)
    twice = [v for i, v in enumerate(values) if v in values[:i]]
    if twice:
        raise ValueError(f"{name}={values!r} lists {twice[0]!r} twice; allowed: distinct methods")


@dataclass(frozen=True)
class ArchSpec:
    """An evaluation architecture: a registry ``name`` of :func:`dscore.models.create_model`, its keyword
    arguments and the label a table shows (e.g. ``"ResNet-18 (width 16)"``)."""

    name: str
    kwargs: Mapping[str, Any]
    label: str


def arch_specs(archs: Mapping[str, Mapping[str, Any]]) -> dict[str, ArchSpec]:
    """Parse a page's ``archs`` parameter: ``{label: {"arch": name, **kwargs}}`` → ``{label: ArchSpec}``.

    Raises ValueError naming the label for an unknown architecture or keyword argument.
    """
    if not isinstance(archs, Mapping) or not archs:
        raise ValueError(f"archs={archs!r} must be a non-empty mapping label -> {{'arch': name, ...kwargs}}")
    out = {}
    for label, spec in archs.items():
        if not isinstance(spec, Mapping) or "arch" not in spec:
            raise ValueError(f"archs[{label!r}]={spec!r} must be a mapping with an 'arch' key")
        name = spec["arch"]
        check_choice(f"archs[{label!r}]['arch']", name, list_models())
        kwargs = {k: v for k, v in spec.items() if k != "arch"}
        unknown = sorted(set(kwargs) - set(model_kwargs(name)))
        if unknown:
            raise ValueError(f"archs[{label!r}] has unknown key(s) {unknown} for {name!r}; "
                             f"allowed: {', '.join(model_kwargs(name)) or 'none'}")
        out[str(label)] = ArchSpec(name=name, kwargs=dict(kwargs), label=str(label))
    return out


def pick_setup(namespace: Mapping[str, Any], keys, chapter: str) -> dict[str, Any]:
    """The setup ``keys`` of a page's parameters (``namespace``, e.g. a notebook's ``globals()``); a ValueError names
    the missing ones. Every page of one ``chapter`` declares the same setup keys."""
    missing = [k for k in keys if k not in namespace]
    if missing:
        raise ValueError(f"the page does not define the setup parameter(s) {missing}; every {chapter} page declares "
                         f"{list(keys)}")
    return {k: namespace[k] for k in keys}
