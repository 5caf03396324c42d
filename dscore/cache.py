"""Content-addressed artefact store.

An artefact is identified by its *kind* (``"features"``, ``"bins"``, ``"model"`` …),
the kind's *version tag* and its full *config* (a JSON-able mapping). The key is the
SHA-256 of the canonical JSON of the three, so any change of config or version
gives a new entry. Values are dictionaries of tensors / numbers / strings / lists,
stored with ``torch.save`` and read back with ``torch.load(weights_only=True)``:
no arbitrary pickle is ever executed. Writes go to a temporary file that is renamed
into place, so a killed process never leaves a half-written artefact.

Example::

    store = ArtifactCache()                     # $DSCORE_CACHE or ~/.cache/dscore/artifacts
    feats = store.get_or_compute("features", {"model": "convnet3", "seed": 0},
                                 lambda: {"x": compute()}, version="1")["x"]
"""
from __future__ import annotations

import hashlib
import json
import math
import os
import time
from pathlib import Path
from typing import Any, Callable, Mapping

import torch

from .paths import cache_root
from .utils import atomic_path


def _canonical(value: Any) -> Any:
    """Turn a config into plain JSON values, rejecting anything whose identity is unclear."""
    if isinstance(value, Mapping):
        out = {}
        for k, v in value.items():
            if not isinstance(k, str):
                raise TypeError(f"config keys must be strings, got {k!r}")
            out[k] = _canonical(v)
        return out
    if isinstance(value, (list, tuple)):
        return [_canonical(v) for v in value]
    if isinstance(value, bool) or value is None or isinstance(value, (str, int)):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            return repr(value)
        return value
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, torch.device):
        return str(value)
    if hasattr(value, "item") and callable(value.item) and getattr(value, "ndim", 1) == 0:
        return _canonical(value.item())
    raise TypeError(f"config value {value!r} of type {type(value).__name__} is not JSON-able; "
                    "use numbers, strings, bools, None, lists or dicts")


def config_key(kind: str, config: Mapping[str, Any], version: str = "1") -> str:
    """SHA-256 hex digest of ``{kind, version, config}`` in canonical JSON."""
    payload = json.dumps({"kind": kind, "version": str(version), "config": _canonical(config)},
                         sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(payload.encode()).hexdigest()


class ArtifactCache:
    """A folder of ``<kind>/<key[:2]>/<key>.pt`` files plus a ``.json`` sidecar with the config."""

    def __init__(self, root: str | os.PathLike | None = None, *, enabled: bool = True):
        self.root = Path(root) if root is not None else cache_root()
        self.enabled = enabled
        #: one record per :meth:`get_or_compute` call of this instance: ``{"kind", "key", "computed",
        #: "seconds"}`` — ``seconds`` is the compute time measured when the artefact was made (also for
        #: artefacts loaded from disk, from their sidecar), so a page can report what each stage cost.
        self.ledger: list[dict[str, Any]] = []

    def path(self, kind: str, config: Mapping[str, Any], version: str = "1") -> Path:
        key = config_key(kind, config, version)
        return self.root / kind / key[:2] / f"{key}.pt"

    def exists(self, kind: str, config: Mapping[str, Any], version: str = "1") -> bool:
        return self.enabled and self.path(kind, config, version).exists()

    def load(self, kind: str, config: Mapping[str, Any], version: str = "1") -> dict:
        path = self.path(kind, config, version)
        return torch.load(path, map_location="cpu", weights_only=True)

    def compute_seconds(self, kind: str, config: Mapping[str, Any], version: str = "1") -> float | None:
        """Seconds the artefact took to compute, as recorded in its sidecar (None if unknown)."""
        try:
            meta = json.loads(self.path(kind, config, version).with_suffix(".json").read_text())
        except (OSError, ValueError):
            return None
        seconds = meta.get("seconds")
        return float(seconds) if isinstance(seconds, (int, float)) else None

    def save(self, kind: str, config: Mapping[str, Any], value: Mapping[str, Any], version: str = "1",
             *, seconds: float | None = None) -> Path:
        if not isinstance(value, Mapping):
            raise TypeError(f"cached values must be dicts, got {type(value).__name__}")
        path = self.path(kind, config, version)
        if not self.enabled:
            return path
        value = {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in value.items()}
        with atomic_path(path) as tmp:
            torch.save(value, tmp)
        meta = {"kind": kind, "version": str(version), "config": _canonical(config), "seconds": seconds}
        with atomic_path(path.with_suffix(".json")) as tmp:
            tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
        return path

    def get_or_compute(self, kind: str, config: Mapping[str, Any], compute: Callable[[], Mapping[str, Any]],
                       version: str = "1") -> dict:
        """Load the artefact if present, else call ``compute()``, store its dict and return it."""
        key = config_key(kind, config, version)
        if self.exists(kind, config, version):
            try:
                value = self.load(kind, config, version)
            except Exception:  # a corrupt entry (e.g. disk full) is recomputed, never trusted
                self.path(kind, config, version).unlink(missing_ok=True)
            else:
                self.ledger.append({"kind": kind, "key": key, "computed": False,
                                    "seconds": self.compute_seconds(kind, config, version)})
                return value
        start = time.perf_counter()
        value = dict(compute())
        seconds = time.perf_counter() - start
        self.save(kind, config, value, version, seconds=seconds)
        self.ledger.append({"kind": kind, "key": key, "computed": True, "seconds": seconds})
        return {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in value.items()}


def as_cache(cache) -> ArtifactCache:
    """``cache`` itself, or the default :class:`ArtifactCache` for ``None``."""
    if cache is None:
        return ArtifactCache()
    if not isinstance(cache, ArtifactCache):
        raise ValueError(f"cache must be an ArtifactCache or None, got {type(cache).__name__}")
    return cache
