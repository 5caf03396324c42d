"""Identities of artefacts: what a cache key must contain so that a stale entry is never served.

* :func:`code_version` — a digest of the source an artefact's computation can reach (:func:`import_closure`);
* :func:`dataset_fingerprint`, :func:`model_fingerprint` — content digests of data and weights;
* :func:`precision_tag` — the numerics an artefact was computed with (bf16 on CUDA, fp32 elsewhere);
* :func:`tensor_bytes`, :func:`jsonable` — helpers for keys;
* :func:`state_dict_value`, :func:`load_state`, :func:`read_checkpoint` — weights in and out of the
  cache and local checkpoint files (``torch.load(weights_only=True)`` only).
"""
from __future__ import annotations

import functools
import hashlib
import os
import weakref
from pathlib import Path
from typing import Any, Mapping

import torch
import torch.nn as nn

from .data import ImageDataset
from .utils import resolve_device

__all__ = ["code_version", "import_closure", "dataset_fingerprint", "model_fingerprint", "precision_tag", "tensor_bytes", "jsonable",
           "state_dict_value", "load_state", "read_checkpoint"]

def code_version(module: str) -> str:
    """Version tag of the artefacts that ``module`` computes (pass its ``__name__``): "2+" a digest of the source of
    ``module`` and of every dscore module it imports, directly or through the modules it imports
    (:func:`import_closure`). Editing code that an artefact's computation can reach gives it a new key, so a fix is
    never hidden behind an artefact computed by the old code; editing code it cannot reach (a page, a table, a claim,
    the book runner) keeps every key. Cost: one parse of the package per process."""
    return "2+" + _closure_digest(Path(__file__).resolve().parent, module)


def import_closure(package: Path, module: str) -> dict[str, Path]:
    """``{module name: source file}`` of ``module`` (a dotted name inside ``package``, the directory of a Python
    package) and of every module of the package it reaches through import statements — function-level ones
    included, relative ones resolved, ``from P import X`` counting submodule ``P.X`` when it exists. A package's
    ``__init__`` joins only when the package itself is imported. Static: a module reached only through
    ``importlib`` is missed (the package uses none on a computing path). Unknown ``module`` → ValueError."""
    files = _package_files(package)
    if module not in files:
        raise ValueError(f"module={module!r} is not a module of {package.name}; pass a computing module's __name__")
    seen, todo = {}, [module]
    while todo:
        name = todo.pop()
        if name in seen:
            continue
        seen[name] = files[name]
        todo += sorted(_direct_imports(package, name))
    return seen


@functools.lru_cache(maxsize=8)
def _package_files(package: Path) -> dict[str, Path]:
    out = {}
    for src in sorted(package.rglob("*.py")):
        parts = [package.name, *src.relative_to(package).with_suffix("").parts]
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = src
    return out


@functools.lru_cache(maxsize=None)
def _direct_imports(package: Path, module: str) -> frozenset[str]:
    import ast

    files = _package_files(package)
    path = files[module]
    here = module.split(".") if path.name == "__init__.py" else module.split(".")[:-1]
    root = package.name
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), filename=str(path))):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                found.update(".".join(parts[:i]) for i in range(2, len(parts) + 1) if parts[0] == root)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = here[:len(here) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target.split(".")[0] != root:
                continue
            if target != root:
                found.add(target)
            found.update(f"{target}.{alias.name}" for alias in node.names)
    return frozenset(name for name in found if name in files and name != module)


@functools.lru_cache(maxsize=None)
def _closure_digest(package: Path, module: str) -> str:
    digest = hashlib.sha256()
    for name, src in sorted(import_closure(package, module).items()):
        digest.update(name.encode())
        digest.update(src.read_bytes())
    return digest.hexdigest()[:16]


# ------------------------------------------------------------------------------------ identities

_DATASET_DIGESTS: "weakref.WeakKeyDictionary[ImageDataset, str]" = weakref.WeakKeyDictionary()


def tensor_bytes(t: torch.Tensor) -> bytes:
    t = t.detach().cpu().reshape(-1).contiguous()
    return t.view(torch.uint8).numpy().tobytes() if t.numel() else b""


def dataset_fingerprint(ds: ImageDataset) -> dict[str, Any]:
    """Identity of a dataset for cache keys: name, split, shape, classes, the normalisation statistics
    the models use, and a SHA-256 of all pixels and labels (computed once per dataset object —
    O(N·C·H·W) the first time)."""
    if not isinstance(ds, ImageDataset):
        raise ValueError(f"expected an ImageDataset, got {type(ds).__name__}")
    digest = _DATASET_DIGESTS.get(ds)
    if digest is None:
        h = hashlib.sha256()
        for start in range(0, len(ds), 8192):
            h.update(tensor_bytes(ds.images[start:start + 8192].float()))
        h.update(tensor_bytes(ds.labels.long()))
        digest = h.hexdigest()
        _DATASET_DIGESTS[ds] = digest
    return {"name": ds.name, "split": ds.split, "shape": [len(ds), *ds.image_shape],
            "classes": list(ds.classes), "mean": [float(m) for m in ds.mean], "std": [float(v) for v in ds.std],
            "sha256": digest}


def model_fingerprint(model: nn.Module) -> str:
    """SHA-256 of a network's class, ``spec`` and every ``state_dict`` entry (names, dtypes, shapes, values)."""
    h = hashlib.sha256(type(model).__qualname__.encode())
    h.update(repr(sorted(getattr(model, "spec", {}).items())).encode())
    h.update(repr(getattr(model, "config", "")).encode())
    for name, t in sorted(model.state_dict().items()):
        h.update(f"{name}|{t.dtype}|{tuple(t.shape)}".encode())
        h.update(tensor_bytes(t))
    return h.hexdigest()


def _file_digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def precision_tag(device) -> str:
    """Numerics an artefact was computed with (bf16 autocast on CUDA, fp32 elsewhere): part of every key,
    so CPU and GPU results never stand in for each other."""
    return "bf16" if resolve_device(device).type == "cuda" else "fp32"


def state_dict_value(module: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().cpu().clone() for k, v in module.state_dict().items()}


def load_state(module: nn.Module, state: Mapping[str, Any], what: str) -> None:
    state = {k: v for k, v in state.items() if torch.is_tensor(v)}
    try:
        module.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        raise ValueError(f"{what} does not fit the network: {exc}") from exc


def read_checkpoint(checkpoint) -> dict[str, torch.Tensor]:
    path = Path(os.fspath(checkpoint)).expanduser()
    if not path.is_file():
        raise ValueError(f"checkpoint={str(path)!r} is not a file; pass a local state_dict saved with torch.save")
    try:
        obj = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpickling refused or corrupt file
        raise ValueError(f"checkpoint {path} could not be loaded safely (weights_only=True): {exc}") from exc
    for key in ("state_dict", "model"):
        if isinstance(obj, Mapping) and isinstance(obj.get(key), Mapping):
            obj = obj[key]
    if not isinstance(obj, Mapping):
        raise ValueError(f"checkpoint {path} holds a {type(obj).__name__}, not a state_dict")
    return dict(obj)



def jsonable(value):
    if isinstance(value, Mapping):
        return {str(k): jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    return str(value)
