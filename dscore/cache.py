"""Content-addressed artefact store.

An artefact is identified by its *kind* (``"features"``, ``"bins"``, ``"model"`` …),
the kind's *version tag* and its full *config* (a JSON-able mapping). The key is the
SHA-256 of the canonical JSON of the three, so any change of config or version
gives a new entry. Values are dictionaries of tensors / numbers / strings / lists,
stored with ``torch.save`` and read back with ``torch.load(weights_only=True)``:
no arbitrary pickle is ever executed. Writes go to a temporary file that is renamed
into place, so a killed process never leaves a half-written artefact.

Concurrency. :meth:`ArtifactCache.get_or_compute` computes a missing artefact while holding an
exclusive ``flock`` on ``<key>.lock`` beside it and re-checks the store once it holds the lock, so two
processes — two ranks of a prefill, two ``make book`` runs, two hosts on one shared POSIX file system
that supports ``flock`` (local disks, NFSv4, Lustre mounted with ``-o flock``, GPFS) — never compute the
same artefact twice: the second one waits and loads what the first wrote. A lock dies with its process,
so a killed run never leaves a stale lock behind (the lock file itself stays; it is only a name).

Data-parallel jobs. Under an initialised ``torch.distributed`` process group with several processes,
:meth:`~ArtifactCache.get_or_compute` is *collective*: every rank must request the same artefacts in the
same order (as an SPMD ``torchrun`` script does). Rank 0 takes the lock and looks; on a miss every rank
runs ``compute()`` together (so it may use collectives: sharded features, per-class bins, DDP training) and
rank 0 writes the result. A shared cache directory is assumed; a rank that cannot read what rank 0 found
joins a recomputation of it instead.

Accounting. Every call is recorded in the instance's :attr:`~ArtifactCache.ledger`; with
``$DSCORE_CACHE_LOG`` naming a file, every call of every process is also appended to it as one JSON line
(``kind, key, computed, waited, seconds, pid, host``) — how a build counts its cache misses.

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
import socket
import sys
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Callable, Iterator, Mapping

import torch

from . import distributed as dist_utils
from .paths import cache_root
from .utils import atomic_path, exclusive_lock

#: environment variable naming a JSON-lines file that receives one record per :meth:`ArtifactCache.get_or_compute`
CACHE_LOG_ENV = "DSCORE_CACHE_LOG"


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
        #: "seconds", "waited"}`` — ``seconds`` is the compute time measured when the artefact was made (also
        #: for artefacts loaded from disk, from their sidecar), so a page can report what each stage cost;
        #: ``waited``: another process held the artefact's lock first.
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
        # the sidecar goes first: once the artefact exists, its config and compute time are readable too
        meta = {"kind": kind, "version": str(version), "config": _canonical(config), "seconds": seconds}
        sidecar = path.with_suffix(".json")
        with atomic_path(sidecar) as tmp:
            tmp.write_text(json.dumps(meta, indent=1, sort_keys=True))
        try:
            with atomic_path(path) as tmp:
                torch.save(value, tmp)
        except BaseException:   # no artefact: no sidecar either
            sidecar.unlink(missing_ok=True)
            raise
        return path

    @contextmanager
    def lock(self, kind: str, config: Mapping[str, Any], version: str = "1") -> Iterator[bool]:
        """Hold the exclusive per-key lock of an artefact (a ``flock`` on ``<key>.lock`` beside it).

        Yields True when another process held the lock first (this one waited). Blocks until the lock is
        free; a message names the holder if it has to wait. The lock is released on exit and, because it
        is an ``flock``, also when the holding process dies. A disabled cache (or a platform without
        ``fcntl``) locks nothing.
        """
        if not self.enabled:
            yield False
            return
        path = self.path(kind, config, version).with_suffix(".lock")

        def announce(holder: str) -> None:
            print(f"[dscore.cache] waiting for {kind} {path.stem[:12]}… being computed by {holder}",
                  file=sys.stderr, flush=True)

        with exclusive_lock(path, on_wait=announce) as waited:
            yield waited

    def _try_load(self, kind: str, config: Mapping[str, Any], version: str) -> dict | None:
        if not self.exists(kind, config, version):
            return None
        try:
            return self.load(kind, config, version)
        except Exception:  # a corrupt entry (e.g. disk full); the caller decides under the lock
            return None

    def _record(self, kind: str, key: str, computed: bool, seconds: float | None, waited: bool) -> None:
        rec = {"kind": kind, "key": key, "computed": computed, "seconds": seconds, "waited": waited}
        self.ledger.append(rec)
        log = os.environ.get(CACHE_LOG_ENV)
        if log:
            line = json.dumps({**rec, "pid": os.getpid(), "host": socket.gethostname(),
                               "time": round(time.time(), 3)}) + "\n"
            Path(log).parent.mkdir(parents=True, exist_ok=True)
            fd = os.open(log, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            try:
                os.write(fd, line.encode())   # one O_APPEND write per record: lines never interleave
            finally:
                os.close(fd)

    def get_or_compute(self, kind: str, config: Mapping[str, Any], compute: Callable[[], Mapping[str, Any]],
                       version: str = "1") -> dict:
        """Load the artefact if present, else call ``compute()``, store its dict and return it.

        A miss is computed under :meth:`lock`, after checking the store again: a process that waited for
        another one loads what that one wrote instead of computing it a second time. A corrupt entry is
        removed and recomputed, never trusted.
        """
        key = config_key(kind, config, version)
        if self.enabled and dist_utils.is_distributed():
            return self._get_or_compute_collective(kind, config, compute, version, key)
        value = self._try_load(kind, config, version)
        if value is not None:
            self._record(kind, key, False, self.compute_seconds(kind, config, version), False)
            return value
        with self.lock(kind, config, version) as waited:
            value = self._try_load(kind, config, version)
            if value is not None:
                self._record(kind, key, False, self.compute_seconds(kind, config, version), waited)
                return value
            if self.enabled:
                self.path(kind, config, version).unlink(missing_ok=True)   # corrupt or absent
            start = time.perf_counter()
            value = dict(compute())
            seconds = time.perf_counter() - start
            self.save(kind, config, value, version, seconds=seconds)
        self._record(kind, key, True, seconds, waited)
        return {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in value.items()}


    def _get_or_compute_collective(self, kind, config, compute, version, key) -> dict:
        """:meth:`get_or_compute` under a process group (see the module docstring)."""
        import torch.distributed as dist

        keys = dist_utils.gather_objects(key)
        if len(set(keys)) != 1:
            raise ValueError(f"the ranks asked for different {kind!r} artefacts (keys {[k[:12] for k in keys]}); under "
                             "a process group every rank must request the same artefacts in the same order (e.g. a "
                             "network trained with per-rank BatchNorm statistics differs between ranks)")
        lead = dist_utils.rank() == 0
        with (self.lock(kind, config, version) if lead else _no_lock()) as waited:
            found = self._try_load(kind, config, version) if lead else None
            flag = [found is not None]
            dist.broadcast_object_list(flag, src=0)
            if flag[0] and not lead:
                found = self._try_load(kind, config, version)
            everyone = dist_utils.gather_objects(found is not None)
            if all(everyone):
                self._record(kind, key, False, self.compute_seconds(kind, config, version), bool(waited))
                return found
            start = time.perf_counter()
            value = dict(compute())
            seconds = time.perf_counter() - start
            if lead and not flag[0]:
                self.path(kind, config, version).unlink(missing_ok=True)
                self.save(kind, config, value, version, seconds=seconds)
            dist.barrier()
            if not lead and not self.exists(kind, config, version):   # a cache folder of this rank's own
                self.save(kind, config, value, version, seconds=seconds)
        self._record(kind, key, True, seconds, bool(waited))
        return {k: (v.detach().cpu() if torch.is_tensor(v) else v) for k, v in value.items()}


@contextmanager
def _no_lock() -> Iterator[bool]:
    yield False


def as_cache(cache) -> ArtifactCache:
    """``cache`` itself, or the default :class:`ArtifactCache` for ``None``."""
    if cache is None:
        return ArtifactCache()
    if not isinstance(cache, ArtifactCache):
        raise ValueError(f"cache must be an ArtifactCache or None, got {type(cache).__name__}")
    return cache
