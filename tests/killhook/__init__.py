"""The kill-and-resume tests' hook (see :mod:`.sitecustomize`) and how a test arms it in a subprocess."""
from __future__ import annotations

import os
from pathlib import Path

from .sitecustomize import KILL_ENV, KILL_GROUP_ENV, LABELS

__all__ = ["DIR", "KILL_ENV", "KILL_GROUP_ENV", "LABELS", "armed"]

#: the folder a subprocess gets on its PYTHONPATH, so that its Python processes import the hook at start-up
DIR = Path(__file__).resolve().parent


def armed(env: dict[str, str], kill_at: str | None) -> dict[str, str]:
    """``env`` (a subprocess environment) without any inherited kill settings, and with the hook on its PYTHONPATH
    and armed at ``kill_at`` (``"<label>:<n>"``; None: unarmed)."""
    out = {k: v for k, v in env.items() if k not in (KILL_ENV, KILL_GROUP_ENV)}
    out["PYTHONPATH"] = os.pathsep.join(p for p in (str(DIR), out.get("PYTHONPATH", "")) if p)
    if kill_at is not None:
        out[KILL_ENV] = kill_at
    return out
