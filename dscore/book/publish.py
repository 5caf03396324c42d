"""Publish the built book: push ``_build/html`` to a git remote's ``gh-pages`` branch.

Usage (after ``make book``)::

    make publish REMOTE=git@github.com:me/dscore-book.git      # or any git URL or path
    python -m dscore.book publish REMOTE [--branch gh-pages]

Before anything is pushed, the book must be whole: the last HTML build finished (no ``_build/.html-incomplete``
marker), every executed page of ``_toc.yml`` exists without error outputs, and every page of the table of contents
has its HTML file. Otherwise :class:`~dscore.book.params.BookError` says what is missing and nothing is pushed.

``ghp-import`` writes the commit; it runs in a temporary repository, so the checkout's own branches are never
touched. ``.nojekyll`` is added so that GitHub Pages serves the ``_static`` folders as they are.
"""
from __future__ import annotations

import importlib.util
import subprocess
import sys
import tempfile
from pathlib import Path

from .executor import error_outputs
from .params import OUTPUT_DIR, BookError, notebook_names, toc_files

__all__ = ["HTML_DIR", "check_publishable", "publish"]

HTML_DIR = Path("_build") / "html"


def check_publishable(root: Path) -> list[Path]:
    """The HTML files of every page of ``_toc.yml`` (index first); BookError when the book is not whole."""
    from .runner import HTML_INCOMPLETE

    html = root / HTML_DIR
    if not (html / "index.html").exists():
        raise BookError(f"no built book: {(html / 'index.html').relative_to(root)} is missing; run `make book` first")
    if (root / HTML_INCOMPLETE).exists():
        raise BookError("the last HTML build did not finish (_build/.html-incomplete is present); run `make book` "
                        "again before publishing")
    problems = []
    for name in notebook_names(root):
        executed = root / OUTPUT_DIR / f"{name}.ipynb"
        if not executed.exists():
            problems.append(f"{executed.relative_to(root)} was never executed")
        elif errors := error_outputs(executed):
            problems.append(f"{executed.relative_to(root)} has error outputs: {errors}")
    pages = [html / "index.html"]
    for doc in toc_files(root):
        page = html / f"{doc}.html"
        if not page.exists():
            problems.append(f"{page.relative_to(root)} is missing (a page of _toc.yml)")
        pages.append(page)
    if problems:
        raise BookError("refusing to publish a broken book:\n  " + "\n  ".join(problems))
    return pages


def publish(root: Path, remote: str, *, branch: str = "gh-pages", message: str | None = None, log=print) -> None:
    """Check the book (:func:`check_publishable`), add ``.nojekyll`` and push ``_build/html`` as one commit on
    ``branch`` of ``remote`` (a git URL or a path), replacing what the branch held."""
    if not remote or not isinstance(remote, str):
        raise BookError(f"remote={remote!r} must be a git URL or path (make publish REMOTE=...)")
    if importlib.util.find_spec("ghp_import") is None:
        raise BookError("ghp-import is not installed; `make venv` installs it (the book extra)")
    pages = check_publishable(root)
    html = root / HTML_DIR
    (html / ".nojekyll").write_text("")
    with tempfile.TemporaryDirectory(prefix="dscore-publish-") as tmp:
        def git(*args):
            return subprocess.run(["git", *args], cwd=tmp, check=True, capture_output=True, text=True)

        git("init", "-q")
        git("config", "user.name", "dscore publish")
        git("config", "user.email", "publish@dscore.invalid")
        cmd = [sys.executable, "-m", "ghp_import", "--no-jekyll", "--push", "--force", "--no-history",
               "--branch", branch, "--remote", remote, "--message", message or "Publish the dscore book", str(html)]
        log(f"[dscore.book] publishing {len(pages)} pages of {html.relative_to(root)} to {remote} ({branch})")
        result = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True)
        if result.returncode != 0:
            raise BookError(f"ghp-import failed (exit {result.returncode}): {result.stderr.strip() or result.stdout}")
    log(f"[dscore.book] published to {remote} ({branch})")
