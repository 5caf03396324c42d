"""The ADQ chapter's setup, typed and checked once: :class:`ADQSetup` (with :class:`ChapterTuning`).

Every ADQ page of a profile declares the same setup parameters (:data:`SETUP_KEYS`) as literals in its
parameters cell; :meth:`ADQSetup.from_params` turns them into one frozen object whose parts are the quantize
pipeline's own configs (:class:`~dscore.quantize.config.ExtractorConfig`, :class:`~dscore.quantize.config.BinConfig`,
:class:`~dscore.quantize.config.ScoreConfig`), the evaluation :class:`~dscore.train.TrainProtocol` and the tuning
plan. Everything is validated there, with a ``ValueError`` naming the bad value and what is allowed; the study
and the pipeline never check it again. :meth:`ADQSetup.dry` is the dry-run version of a setup (one tiny step of
everything), the only place where a dry run changes what is computed.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Mapping

from ...distill import DistillConfig
from ...quantize.config import BinConfig, ExtractorConfig, ScoreConfig, TUNE_CHOICES
from ...train import PROTOCOLS, TrainProtocol
from ...utils import check_choice, check_float, check_int
from ..common import check_data_scale, dry_data_scale

__all__ = ["SETUP_KEYS", "ADQSetup", "ChapterTuning"]

#: The parameters every ADQ page declares (the chapter's shared setup).
SETUP_KEYS = ("dataset", "pool_per_class", "val_fraction", "test_per_class", "split_seed", "extractor", "num_bins",
              "scores", "evaluation", "tuning", "dm", "device")


def _floats(name: str, values, check) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not hasattr(values, "__iter__"):
        raise ValueError(f"{name}={values!r} must be a non-empty list of numbers")
    out = tuple(check(f"{name}[]", v) for v in values)
    if not out:
        raise ValueError(f"{name}={values!r} must list at least one value")
    return out


@dataclass(frozen=True)
class ChapterTuning:
    """How the chapter chooses ADQ's (β, T) on the validation split (the page parameter ``tuning``).

    ``ratios``: the keep ratios tuned at (any other ratio uses the nearest on a log scale); the grid ``betas ×
    temperatures``; the ``seeds`` (disjoint from every test seed); ``arch``: the label of the page's evaluation
    network that is trained on each selection (None: the page's first); ``epochs``, ``batch_size``, ``lr`` (None:
    the evaluation protocol's); the rule ``choose``.
    """

    ratios: tuple[float, ...] = (0.1, 0.2, 0.3)
    betas: tuple[float, ...] = (0.3, 0.6, 0.9)
    temperatures: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
    seeds: tuple[int, ...] = (0, 1, 2)
    arch: str | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    choose: str = "within_noise"

    def __post_init__(self):
        def ratio(name, v):
            return check_float(name, v, low=0.0, high=1.0, low_open=True)

        object.__setattr__(self, "ratios", _floats("tuning['ratios']", self.ratios, ratio))
        object.__setattr__(self, "betas", _floats("tuning['betas']", self.betas,
                                                  lambda n, v: check_float(n, v, low=0.0, high=1.0)))
        object.__setattr__(self, "temperatures", _floats("tuning['temperatures']", self.temperatures,
                                                         lambda n, v: check_float(n, v, low=0.0, low_open=True)))
        seeds = tuple(check_int("tuning['seeds'][]", s, low=0) for s in self.seeds)
        if not seeds or len(set(seeds)) != len(seeds):
            raise ValueError(f"tuning['seeds']={self.seeds!r} must be a non-empty list of distinct seeds")
        object.__setattr__(self, "seeds", seeds)
        if self.arch is not None and not isinstance(self.arch, str):
            raise ValueError(f"tuning['arch']={self.arch!r} must be the label of one of the page's archs")
        for name, low in (("epochs", 1), ("batch_size", 1)):
            if getattr(self, name) is not None:
                object.__setattr__(self, name, check_int(f"tuning[{name!r}]", getattr(self, name), low=low))
        if self.lr is not None:
            object.__setattr__(self, "lr", check_float("tuning['lr']", self.lr, low=0.0, low_open=True))
        check_choice("tuning['choose']", self.choose, TUNE_CHOICES)

    @classmethod
    def of(cls, value: Mapping[str, Any]) -> "ChapterTuning":
        if isinstance(value, cls):
            return value
        if not isinstance(value, Mapping):
            raise ValueError(f"tuning={value!r} must be a mapping")
        allowed = [f.name for f in dataclasses.fields(cls)]
        unknown = sorted(set(value) - set(allowed))
        if unknown:
            raise ValueError(f"tuning has unknown key(s) {unknown}; allowed: {allowed}")
        return cls(**dict(value))


@dataclass(frozen=True)
class ADQSetup:
    """The ADQ chapter's shared setup (see the module docstring); identical setups give identical artefacts.

    Data: ``dataset``, a pool of ``pool_per_class`` training images per class (None: all) of which
    ``val_fraction`` becomes the validation split, ``test_per_class`` test images per class (None: all), all cut
    with ``split_seed``. Pipeline: the feature network ``extractor``, the ``bins``, the bin ``scores``. Evaluation:
    ``protocol`` (the coreset protocol with the page's fields) and ``check_every`` (every how many epochs the test
    set is also checked, or SGD steps when ``steps`` is set: the authors' best-of-checks, reported beside, never
    used to choose; 0 = never) and
    ``steps`` (None: every set trains ``protocol.epochs`` epochs, the authors' way; an int: every set trains about
    that many SGD steps, ``dscore.train.epochs_for_steps``, so that keep ratios compare at equal training, not at
    equal epochs; the protocol's ``epochs`` is then unused). Tuning:
    ``tuning``. DM: ``dm`` (keyword arguments of :func:`dscore.distill.dm_at_ratio`). ``device``: ``"auto"``,
    ``"cpu"``, ``"cuda"`` or ``"cuda:<n>"``.
    """

    dataset: str
    pool_per_class: int | None
    val_fraction: float
    test_per_class: int | None
    split_seed: int
    extractor: ExtractorConfig
    bins: BinConfig
    scores: ScoreConfig
    protocol: TrainProtocol
    check_every: int
    tuning: ChapterTuning
    dm: Mapping[str, Any] = field(default_factory=dict)
    device: str = "auto"
    steps: int | None = None

    def __post_init__(self):
        check_data_scale(self)
        for name, kind in (("extractor", ExtractorConfig), ("bins", BinConfig), ("scores", ScoreConfig),
                           ("protocol", TrainProtocol), ("tuning", ChapterTuning)):
            if not isinstance(getattr(self, name), kind):
                raise ValueError(f"{name} must be a {kind.__name__}, got {type(getattr(self, name)).__name__}")
        object.__setattr__(self, "check_every", check_int("evaluation['check_every']", self.check_every, low=0))
        if self.steps is not None:
            object.__setattr__(self, "steps", check_int("evaluation['steps']", self.steps, low=1))
        if not isinstance(self.dm, Mapping):
            raise ValueError(f"dm={self.dm!r} must be a mapping of dm_at_ratio keyword arguments")
        object.__setattr__(self, "dm", dict(self.dm))
        try:                                       # dm_at_ratio's keyword arguments are DistillConfig fields
            DistillConfig().replace(**{k: v for k, v in self.dm.items() if k not in ("method", "ipc")})
        except (TypeError, ValueError) as exc:
            raise ValueError(f"dm: {exc}") from None

    @classmethod
    def from_params(cls, params: Mapping[str, Any]) -> "ADQSetup":
        """The setup of a page's parameters: a mapping with exactly the keys of :data:`SETUP_KEYS` (as the
        parameters cell and ``params/<profile>/_adq.yaml`` spell them: ``num_bins``, ``scores`` as a flat dict,
        ``evaluation`` holding protocol fields and ``check_every``). An :class:`ADQSetup` is returned as is."""
        if isinstance(params, cls):
            return params
        if not isinstance(params, Mapping):
            raise ValueError(f"setup={params!r} must be an ADQSetup or a mapping of the setup keys {list(SETUP_KEYS)}")
        missing = sorted(set(SETUP_KEYS) - set(params))
        unknown = sorted(set(params) - set(SETUP_KEYS))
        if missing or unknown:
            raise ValueError(f"setup must have exactly the keys {list(SETUP_KEYS)}; missing {missing}, unknown {unknown}")
        evaluation = params["evaluation"]
        if not isinstance(evaluation, Mapping):
            raise ValueError(f"evaluation={evaluation!r} must be a mapping of protocol fields (and check_every)")
        evaluation = dict(evaluation)
        check_every = evaluation.pop("check_every", 0)
        steps = evaluation.pop("steps", None)
        return cls(dataset=params["dataset"], pool_per_class=params["pool_per_class"],
                   val_fraction=params["val_fraction"], test_per_class=params["test_per_class"],
                   split_seed=params["split_seed"], extractor=ExtractorConfig.of(params["extractor"], "extractor"),
                   bins=BinConfig(num_bins=params["num_bins"]), scores=ScoreConfig.of(params["scores"], "scores"),
                   protocol=PROTOCOLS["coreset"].replace(**evaluation), check_every=check_every, steps=steps,
                   tuning=ChapterTuning.of(params["tuning"]), dm=params["dm"], device=params["device"])

    def dry(self) -> "ADQSetup":
        """This setup shrunk to one tiny step of everything (a few images per class, one epoch, one tuning cell,
        one DM iteration): checks a profile end to end in seconds; its numbers mean nothing."""
        t = self.tuning
        return dataclasses.replace(
            self, **dry_data_scale(self), extractor=self.extractor.replace(epochs=1),
            scores=self.scores.replace(head_epochs=1), protocol=self.protocol.replace(epochs=1), steps=None, dm={**self.dm, "iterations": 1},
            tuning=dataclasses.replace(t, epochs=1, betas=t.betas[:1], temperatures=t.temperatures[:1],
                                       seeds=t.seeds[:1]))
