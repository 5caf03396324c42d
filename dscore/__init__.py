"""dscore: dataset compression research, reproduced.

Submodules are imported lazily so that ``import dscore`` stays cheap; use
``dscore.select``, ``dscore.quantize`` … or ``from dscore import models``.
"""
from __future__ import annotations

import importlib

__version__ = "0.1.0"

_SUBMODULES = (
    "augment", "book", "cache", "cluster", "data", "distill", "evaluation", "features", "fingerprint",
    "metrics", "models", "papers", "paths", "quantize", "report", "select", "studies", "train", "utils",
)


def __getattr__(name: str):
    if name in _SUBMODULES:
        return importlib.import_module(f"dscore.{name}")
    raise AttributeError(f"module 'dscore' has no attribute {name!r}")


def __dir__():
    return sorted(list(globals()) + list(_SUBMODULES))
