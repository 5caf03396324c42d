"""The DREAM+ chapter's setup, typed and checked once: :class:`DreamSetup` (with :class:`LrTuning`).

Every DREAM+ page of a profile declares the same setup parameters (:data:`SETUP_KEYS`) as literals in its parameters
cell; :meth:`DreamSetup.from_params` turns them into one frozen object: the data scale, the distillation network, the
:class:`~dscore.distill.DistillConfig` overrides per base method (their field names and values checked against
``DistillConfig`` now), the image-learning-rate tuning, the evaluation protocols per family
(:class:`~dscore.train.TrainProtocol`), the coreset settings and the device. A ``ValueError`` names the bad value
and what is allowed; the study never checks the setup again. :meth:`DreamSetup.dry` is its dry-run version.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, Mapping, Sequence

from ...distill import DistillConfig
from ...models import list_models, model_kwargs
from ...train import PROTOCOLS, TrainProtocol
from ...utils import check_choice, check_float, check_int
from ..common import check_data_scale, dry_data_scale, pick_setup

__all__ = ["SETUP_KEYS", "DISTILL_KEYS", "EVAL_FAMILIES", "DreamSetup", "LrTuning", "setup_from"]

#: The parameters every DREAM+ page declares (the chapter's shared setup).
SETUP_KEYS = ("dataset", "pool_per_class", "val_fraction", "test_per_class", "split_seed", "network", "distill",
              "evaluation", "coresets", "device")
#: ``distill`` keys: overrides for every method, per base method, for representative matching; the lr_img tuning.
DISTILL_KEYS = ("common", "dc", "dsa", "dm", "idc", "rm", "lr_img")
#: Evaluation families, each with its protocol (IDC for IDC/DREAM/DREAM+, DSA for DSA/DM, DC for DC).
EVAL_FAMILIES = ("idc", "dsa", "dc")


def setup_from(namespace: Mapping[str, Any]) -> dict[str, Any]:
    """The setup keys (:data:`SETUP_KEYS`) of a page's parameters, e.g. ``setup_from(globals())`` in a notebook."""
    return pick_setup(namespace, SETUP_KEYS, "DREAM+")


def _mapping(name: str, value) -> dict[str, Any]:
    if not isinstance(value, Mapping):
        raise ValueError(f"{name}={value!r} must be a mapping")
    return dict(value)


def _exact_keys(name: str, value: Mapping, allowed) -> None:
    bad = sorted(set(value) - set(allowed))
    if bad:
        raise ValueError(f"{name} has unknown key(s) {bad}; allowed: {sorted(allowed)}")


@dataclass(frozen=True)
class LrTuning:
    """``distill['lr_img']``: the factors ``scales`` on the authors' IDC image learning rate, tried on the validation
    split at ``ipc`` with the distillation ``seeds`` (disjoint from every test seed)."""

    scales: tuple[float, ...]
    seeds: tuple[int, ...]
    ipc: int = 10

    def __post_init__(self):
        scales = tuple(check_float("distill['lr_img']['scales']", x, low=0.0, low_open=True) for x in self.scales)
        seeds = tuple(check_int("distill['lr_img']['seeds']", x, low=0) for x in self.seeds)
        if not scales or not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"distill['lr_img']={self!r} needs at least one scale and distinct seeds")
        object.__setattr__(self, "scales", scales)
        object.__setattr__(self, "seeds", seeds)
        object.__setattr__(self, "ipc", check_int("distill['lr_img']['ipc']", self.ipc, low=1))

    @classmethod
    def of(cls, spec) -> "LrTuning | None":
        if spec is None or isinstance(spec, cls):
            return spec
        spec = _mapping("distill['lr_img']", spec)
        bad = sorted(set(spec) - {"scales", "seeds", "ipc"})
        if bad or not {"scales", "seeds"} <= set(spec):
            raise ValueError(f"distill['lr_img']={spec!r} must have the keys 'scales' and 'seeds' (and optionally "
                             f"'ipc'); unknown {bad}")
        for key in ("scales", "seeds"):
            if isinstance(spec[key], (str, bytes)) or not isinstance(spec[key], Sequence):
                raise ValueError(f"distill['lr_img'][{key!r}]={spec[key]!r} must be a list")
        return cls(scales=tuple(spec["scales"]), seeds=tuple(spec["seeds"]), ipc=spec.get("ipc", 10))


@dataclass(frozen=True)
class DreamSetup:
    """The DREAM+ chapter's shared setup (see the module docstring); identical setups give identical runs.

    Data: ``dataset``, a pool of ``pool_per_class`` training images per class (None: all) of which ``val_fraction``
    becomes the validation split, ``test_per_class`` test images per class (None: all), cut with ``split_seed``.
    Distillation: the network ``arch`` with ``arch_kwargs``; ``distill`` maps each of ``common``, ``dc``, ``dsa``,
    ``dm``, ``idc``, ``rm`` to its DistillConfig overrides; ``lr_tuning`` (None: the authors' image learning rate).
    Evaluation: ``eval_seeds`` (averaged inside a distillation seed), ``check_every`` (the authors' best-of-checks,
    reported beside; 0 = never) and one protocol per family in ``protocols``. Coresets: evaluated with the
    ``coreset_family`` protocol; herding / k-center embed with a ConvNet trained ``feature_epochs``, forgetting counts
    over ``forgetting_epochs``. ``device``: ``"auto"``, ``"cpu"``, ``"cuda"`` or ``"cuda:<n>"``.
    """

    dataset: str
    pool_per_class: int | None
    val_fraction: float
    test_per_class: int | None
    split_seed: int
    arch: str
    arch_kwargs: Mapping[str, Any]
    distill: Mapping[str, Mapping[str, Any]]
    lr_tuning: LrTuning | None
    eval_seeds: tuple[int, ...]
    check_every: int
    protocols: Mapping[str, TrainProtocol]
    coreset_family: str = "dsa"
    feature_epochs: int = 5
    forgetting_epochs: int = 5
    device: str = "auto"

    def __post_init__(self):
        check_data_scale(self)
        check_choice("network['arch']", self.arch, list_models())
        kwargs = _mapping("network", self.arch_kwargs)
        bad = sorted(set(kwargs) - set(model_kwargs(self.arch)))
        if bad:
            raise ValueError(f"network has unknown key(s) {bad} for {self.arch!r}; allowed: {model_kwargs(self.arch)}")
        object.__setattr__(self, "arch_kwargs", kwargs)
        distill = _mapping("distill", self.distill)
        _exact_keys("distill", distill, [k for k in DISTILL_KEYS if k != "lr_img"])
        distill = {k: _mapping(f"distill[{k!r}]", distill.get(k, {})) for k in DISTILL_KEYS if k != "lr_img"}
        for k, v in distill.items():                     # field names and values checked now
            try:
                DistillConfig().replace(**{f: x for f, x in v.items() if f not in ("method", "ipc")})
            except ValueError as e:
                raise ValueError(f"distill[{k!r}]: {e}") from None
        object.__setattr__(self, "distill", distill)
        if self.lr_tuning is not None and not isinstance(self.lr_tuning, LrTuning):
            raise ValueError(f"lr_tuning must be an LrTuning or None, got {type(self.lr_tuning).__name__}")
        seeds = self.eval_seeds
        if isinstance(seeds, (str, bytes)) or not isinstance(seeds, Sequence) or not seeds:
            raise ValueError(f"evaluation['seeds']={seeds!r} must be a non-empty list of seeds")
        object.__setattr__(self, "eval_seeds", tuple(check_int("evaluation['seeds']", s, low=0) for s in seeds))
        object.__setattr__(self, "check_every", check_int("evaluation['check_every']", self.check_every, low=0))
        protocols = _mapping("protocols", self.protocols)
        if set(protocols) != set(EVAL_FAMILIES) or not all(isinstance(p, TrainProtocol) for p in protocols.values()):
            raise ValueError(f"protocols must map each of {list(EVAL_FAMILIES)} to a TrainProtocol")
        object.__setattr__(self, "protocols", protocols)
        check_choice("coresets['family']", self.coreset_family, EVAL_FAMILIES)
        object.__setattr__(self, "feature_epochs", check_int("coresets['feature_epochs']", self.feature_epochs, low=1))
        object.__setattr__(self, "forgetting_epochs", check_int("coresets['forgetting_epochs']",
                                                                self.forgetting_epochs, low=1))

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "DreamSetup":
        """The setup of a page's parameters: a mapping with exactly the keys of :data:`SETUP_KEYS`, as the parameters
        cell and ``params/<profile>/_dreamplus.yaml`` spell them (``network`` holding ``arch`` and its keyword
        arguments, ``distill`` its overrides and ``lr_img``, ``evaluation`` its ``seeds``, ``check_every`` and one
        mapping of protocol fields per family, ``coresets`` its ``family`` and epochs). A DreamSetup is returned as is."""
        if isinstance(params, cls):
            return params
        if not isinstance(params, Mapping):
            raise ValueError(f"setup={params!r} must be a DreamSetup or a mapping of the setup keys {list(SETUP_KEYS)}")
        missing = sorted(set(SETUP_KEYS) - set(params))
        unknown = sorted(set(params) - set(SETUP_KEYS))
        if missing or unknown:
            raise ValueError(f"setup must have exactly the keys {list(SETUP_KEYS)}; missing {missing}, unknown {unknown}")
        network = _mapping("network", params["network"])
        if "arch" not in network:
            raise ValueError(f"network={network!r} needs an 'arch' key (one of {list_models()})")
        arch = network.pop("arch")
        distill = _mapping("distill", params["distill"])
        _exact_keys("distill", distill, DISTILL_KEYS)
        evaluation = _mapping("evaluation", params["evaluation"])
        _exact_keys("evaluation", evaluation, {"seeds", "check_every", *EVAL_FAMILIES})
        protocols = {}
        for fam in EVAL_FAMILIES:
            fields = _mapping(f"evaluation[{fam!r}]", evaluation.get(fam, {}))
            try:
                protocols[fam] = PROTOCOLS[fam].replace(**fields)
            except (ValueError, TypeError) as e:
                raise ValueError(f"evaluation[{fam!r}]: {e}") from None
        coresets = _mapping("coresets", params["coresets"])
        _exact_keys("coresets", coresets, {"family", "feature_epochs", "forgetting_epochs"})
        return cls(dataset=params["dataset"], pool_per_class=params["pool_per_class"],
                   val_fraction=params["val_fraction"], test_per_class=params["test_per_class"],
                   split_seed=params["split_seed"], arch=arch, arch_kwargs=network,
                   distill={k: v for k, v in distill.items() if k != "lr_img"},
                   lr_tuning=LrTuning.of(distill.get("lr_img")), eval_seeds=evaluation.get("seeds", [0, 1, 2]),
                   check_every=evaluation.get("check_every", 0), protocols=protocols,
                   coreset_family=coresets.get("family", "dsa"), feature_epochs=coresets.get("feature_epochs", 5),
                   forgetting_epochs=coresets.get("forgetting_epochs", 5), device=params["device"])

    def dry(self) -> "DreamSetup":
        """This setup shrunk for a dry run: a few images per class, one-epoch evaluations over one seed, one-epoch
        coreset networks, one lr_img cell. (The study shrinks the distillation runs and the grids itself.)"""
        lr = self.lr_tuning
        return dataclasses.replace(
            self, **dry_data_scale(self), eval_seeds=self.eval_seeds[:1], protocols={k: p.replace(epochs=1) for k, p in self.protocols.items()},
            feature_epochs=1, forgetting_epochs=1,
            lr_tuning=None if lr is None else dataclasses.replace(lr, scales=lr.scales[:1], seeds=lr.seeds[:1]))
