"""Where dscore reads data and keeps artefacts.

``DSCORE_DATA`` points at datasets in torchvision's layout (default
``~/.cache/dscore/data``); ``DSCORE_CACHE`` relocates the artefact cache
(default ``~/.cache/dscore/artifacts``). Both are read at call time, never
cached in module state.
"""
from __future__ import annotations

import os
from pathlib import Path


def _home_cache() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "dscore"


def data_root() -> Path:
    """Root folder for datasets (``$DSCORE_DATA`` or ``~/.cache/dscore/data``)."""
    env = os.environ.get("DSCORE_DATA")
    return Path(env).expanduser() if env else _home_cache() / "data"


def cache_root() -> Path:
    """Root folder of the artefact cache (``$DSCORE_CACHE`` or ``~/.cache/dscore/artifacts``)."""
    env = os.environ.get("DSCORE_CACHE")
    return Path(env).expanduser() if env else _home_cache() / "artifacts"


def repo_root() -> Path:
    """The checkout this package was imported from (the folder holding ``_toc.yml``).

    Only meaningful for an editable install inside the repository; raises
    ``FileNotFoundError`` otherwise.
    """
    here = Path(__file__).resolve().parent.parent
    if (here / "_toc.yml").exists():
        return here
    raise FileNotFoundError(
        f"no dscore checkout found above {Path(__file__).resolve()} (looked for _toc.yml in {here}); "
        "the book tools need a clone of the repository"
    )


#: Set by the book runner: the folder where a page's downloadable files and recorded claims go.
PAGE_FILES_ENV = "DSCORE_PAGE_FILES"


def page_files_dir(page: str) -> Path:
    """Where ``page``'s files (downloads, recorded claims) go: ``$DSCORE_PAGE_FILES`` (the book runner sets it to
    ``book/nb/<page>_files`` in a staging folder), else ``<page>_files`` in the working directory."""
    env = os.environ.get(PAGE_FILES_ENV)
    return Path(env) if env else Path.cwd() / f"{page}_files"
