"""Execute the notebooks with a parameter profile and build the Jupyter Book.

``notebooks/<name>.ipynb`` is executed (:func:`dscore.book.executor.execute_notebook`) with
``params/<profile>/<name>.yaml`` over its chapter's shared ``params/<profile>/_<chapter>.yaml``
(:func:`dscore.book.params.load_params`) into ``book/nb/<name>.ipynb``. A notebook is re-executed only when its
fingerprint changes: the notebook source, its parameters, the profile, and every ``dscore/*.py`` file.
Fingerprints live in ``book/nb/.manifest.json``; outputs are written atomically, so a killed build resumes with the
notebooks that finished.
"""
from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from ..paths import PAGE_FILES_ENV
from ..utils import PROGRESS_ENV, atomic_write_text, check_int, exclusive_lock
from .executor import execute_notebook
from .params import CELL_TIMEOUT, OUTPUT_DIR, BookError, chapter_dependencies, check_profile, declared_parameters, \
    deep_merge, dry_values, execution_order, load_params, params_source, parse_overrides
from .rules import check_all, check_params
from .workers import Helpers, has_cuda, kernel_env, page_policy

__all__ = ["MANIFEST", "TIMINGS", "TIMINGS_PAGE", "HTML_INCOMPLETE", "fingerprint", "execute",
           "collapse_injected_parameters", "add_launch_line", "finish_page", "write_timings_page", "build_html", "build"]

MANIFEST = OUTPUT_DIR / ".manifest.json"
TIMINGS = OUTPUT_DIR / ".timings.json"
TIMINGS_PAGE = OUTPUT_DIR / "timings.md"


def fingerprint(root: Path, name: str, profile: str, params: dict[str, Any]) -> str:
    digest = hashlib.sha256()
    digest.update(profile.encode())
    digest.update(json.dumps(params, sort_keys=True, default=str).encode())
    digest.update((root / "notebooks" / f"{name}.ipynb").read_bytes())
    for src in sorted((root / "dscore").rglob("*.py")):
        digest.update(src.relative_to(root).as_posix().encode())
        digest.update(src.read_bytes())
    # a chapter overview is stale when a page it reads recorded other claims
    for dep in chapter_dependencies(root).get(name, []):
        claims = root / OUTPUT_DIR / f"{dep}_files" / "claims.json"
        digest.update(dep.encode())
        digest.update(claims.read_bytes() if claims.exists() else b"(none)")
    return digest.hexdigest()


def _read_manifest(root: Path) -> dict[str, str]:
    try:
        return json.loads((root / MANIFEST).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}


def _exclusive(path: Path, *, log=None, what: str = ""):
    """The exclusive file lock (:func:`dscore.utils.exclusive_lock`) of a page or of the manifest; a build that has
    to wait says so in ``log``."""
    announce = None if log is None else (lambda holder: log(f"[dscore.book] {what}: waiting for another build "
                                                            f"that is executing it ({holder})"))
    return exclusive_lock(path, on_wait=announce)


def execute(root: Path, name: str, profile: str, *, force: bool = False, overrides: dict[str, Any] | None = None,
            dry_run: bool = False, workers: int = 1, log=print) -> bool:
    """Execute one notebook if its fingerprint changed; returns True when it ran.

    ``overrides`` (from :func:`read_overrides`) replace values of the profile's params file. The values are checked
    (:func:`dscore.book.rules.check_params`) before the kernel starts. The page's downloadable files
    (:class:`dscore.book.page.Downloads`)
    are written to a staging folder and replace ``book/nb/<name>_files`` when the page succeeds. ``dry_run`` passes
    ``dry_run=True`` to a page that declares that parameter (its studies then run one tiny step of everything: the
    profile's parameters are checked end to end in seconds, the numbers mean nothing); the page's fingerprint holds
    it, so the next normal build executes the page again.

    Two builds of one checkout at once are safe: a page is executed under a per-page file lock
    (``book/nb/.locks/<name>.lock``), so the second build waits, then finds the page up to date; the manifest and
    timings are updated under their own lock.

    ``workers`` > 1 kernels execute the page together (:mod:`dscore.book.workers`): this one writes it, helpers
    compute their share of its cells into the cache, each with one thread on a CPU. A page whose metadata says it
    runs alone gets one kernel."""
    workers = check_int("workers", workers, low=1)
    dry = dry_run and "dry_run" in declared_parameters(root / "notebooks" / f"{name}.ipynb")
    if dry:
        overrides = {**(overrides or {}), "dry_run": True}
    with _exclusive(root / OUTPUT_DIR / ".locks" / f"{name}.lock", log=log, what=name):
        return _execute_unlocked(root, name, profile, force=force, overrides=overrides, dry=dry, workers=workers,
                                 log=log)


def _execute_unlocked(root: Path, name: str, profile: str, *, force: bool, overrides: dict[str, Any] | None,
                      dry: bool, workers: int, log) -> bool:
    import shutil

    params = load_params(root, profile, name)
    source = params_source(root, profile, name)
    if overrides:
        params = deep_merge(params, overrides)
        source += " with " + ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    if dry:          # the grid shrinks as well as each run: one seed, one ratio or IPC (see dry_values)
        trimmed = dry_values(params)
        source += "".join(f", {k} cut to {trimmed[k]!r}" for k in params if trimmed[k] != params[k])
        params = trimmed
    check_params(root, name, params, source)
    key = fingerprint(root, name, profile, params)
    out = root / OUTPUT_DIR / f"{name}.ipynb"
    manifest = _read_manifest(root)
    if not force and manifest.get(name) == key and out.exists():
        log(f"[dscore.book] {name}: up to date ({profile})")
        return False
    notebook = root / "notebooks" / f"{name}.ipynb"
    alone, own_threads = page_policy(notebook)
    asked, workers = workers, 1 if alone else workers
    cpu = workers > 1 and not own_threads and not has_cuda()        # torch is imported only when it matters
    log(f"[dscore.book] {name}: executing with {source}"
        + (f" ({workers} kernels)" if workers > 1 else " (alone)" if asked > 1 else ""))
    start = time.perf_counter()
    partial = root / OUTPUT_DIR / ".partial" / f"{name}.ipynb"
    partial.parent.mkdir(parents=True, exist_ok=True)
    staged_files = partial.with_name(f"{name}_files")
    shutil.rmtree(staged_files, ignore_errors=True)
    try:
        env = {**kernel_env(0, workers, cpu=cpu), PROGRESS_ENV: "text", PAGE_FILES_ENV: str(staged_files)}
        with Helpers(root, name, notebook, params, workers=workers, cpu=cpu, timeout=CELL_TIMEOUT[profile], log=log):
            execute_notebook(notebook, partial, params, cwd=root / "notebooks", timeout=CELL_TIMEOUT[profile], env=env)
        finish_page(partial, name, profile)
    except Exception as exc:
        failed = out.with_name(f"{name}.failed.ipynb")
        if partial.exists():
            os.replace(partial, failed)
        shutil.rmtree(staged_files, ignore_errors=True)
        raise BookError(f"notebook {name!r} failed with profile {profile!r}: {exc}\n"
                        f"the partly executed notebook is in {failed.relative_to(root)}") from exc
    files = out.with_name(f"{name}_files")
    shutil.rmtree(files, ignore_errors=True)
    if staged_files.exists():
        os.replace(staged_files, files)
    os.replace(partial, out)
    out.with_name(f"{name}.failed.ipynb").unlink(missing_ok=True)
    seconds = time.perf_counter() - start
    with _exclusive(root / OUTPUT_DIR / ".locks" / "manifest.lock"):
        manifest = _read_manifest(root)
        manifest[name] = key
        atomic_write_text(root / MANIFEST, json.dumps(manifest, indent=1, sort_keys=True))
        timings = _read_json(root / TIMINGS)
        timings[name] = {"seconds": round(seconds, 1), "profile": profile,
                         "finished": time.strftime("%Y-%m-%d %H:%M", time.localtime())}
        atomic_write_text(root / TIMINGS, json.dumps(timings, indent=1, sort_keys=True))
    log(f"[dscore.book] {name}: done in {seconds:.1f} s")
    return True


def collapse_injected_parameters(nb: dict) -> dict:
    """Tag the cell papermill injected (``injected-parameters``) ``hide-cell`` in the notebook ``nb`` (a dict, changed
    in place and returned), so the book shows it collapsed behind a toggle: the values stay one click away (the run
    banner states them too) and the page opens on its text."""
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            tags.append("hide-cell")
    return nb


LAUNCH_TAG = "dscore-launch"


def add_launch_line(nb: dict, name: str, profile: str) -> dict:
    """Put a line under the page's title (its first Markdown cell) of the notebook ``nb`` (a dict, changed in place
    and returned) that says how to open this page where the reader works: in JupyterLab (``make lab``, the notebook
    runs with its smoke defaults) or rerun as built here (``python -m dscore.book run <page> --profile <profile>``).
    Only the executed copy gets it; the source stays."""
    cells = nb.get("cells", [])
    if any(LAUNCH_TAG in c.get("metadata", {}).get("tags", []) for c in cells):
        return nb
    first = next((i for i, c in enumerate(cells) if c.get("cell_type") == "markdown"), -1)
    text = (f"*Open this page:* `make lab`, then `notebooks/{name}.ipynb` (runs with its smoke defaults), or rerun "
            f"it as built here: `python -m dscore.book run {name} --profile {profile}`.")
    cells.insert(first + 1, {"cell_type": "markdown", "id": LAUNCH_TAG, "metadata": {"tags": [LAUNCH_TAG]},
                             "source": [text]})
    return nb


def finish_page(path: Path, name: str, profile: str) -> None:
    """The executed notebook at ``path`` as the book shows it, in one rewrite: its injected parameters collapsed
    (:func:`collapse_injected_parameters`) and its launch line added (:func:`add_launch_line`)."""
    nb = json.loads(Path(path).read_text())
    nb = add_launch_line(collapse_injected_parameters(nb), name, profile)
    atomic_write_text(Path(path), json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def _read_json(path: Path) -> dict:
    try:
        value = json.loads(path.read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return {}
    return value if isinstance(value, dict) else {}


def write_timings_page(root: Path, names: list[str], profile: str) -> Path:
    """``book/nb/timings.md``: the wall time of every page's last execution (included by the
    reproducing page), generated from the runner's records, never typed."""
    timings = _read_json(root / TIMINGS)
    lines = [f"Last build of this book: profile `{profile}`. Wall time of each page's last execution "
             "(a page that was up to date keeps the time of the run that produced it; cached artefacts make a "
             "page that runs after another cheaper).", "", "| page | profile | seconds | executed |", "|---|---|---:|---|"]
    total = 0.0
    for name in names:
        t = timings.get(name)
        if t is None:
            lines.append(f"| `{name}` | – | – | not executed |")
            continue
        total += float(t["seconds"])
        lines.append(f"| `{name}` | `{t['profile']}` | {float(t['seconds']):.1f} | {t['finished']} |")
    lines.append(f"| **all pages** | | **{total:.1f}** | |")
    path = root / TIMINGS_PAGE
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(path, "\n".join(lines) + "\n")
    return path


HTML_INCOMPLETE = Path("_build") / ".html-incomplete"


def build_html(root: Path, *, log=print) -> Path:
    """Render the book with Jupyter Book (execution off; warnings are errors).

    Sphinx rebuilds only pages whose source is newer than their HTML, so a page it was writing when the
    build was killed would stay half-written. ``_build/.html-incomplete`` marks a build in progress (removed
    when it succeeds); when a build finds it, the previous one did not finish and every page is re-rendered
    (``--all``)."""
    marker = root / HTML_INCOMPLETE
    fresh = marker.exists()
    marker.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(marker, "an HTML build started and has not finished; the next build re-renders every page\n")
    cmd = [sys.executable, "-c", "from jupyter_book.cli.main import main; main()", "build", str(root),
           "--builder", "html", "--warningiserror", "--keep-going"] + (["--all"] if fresh else [])
    log("[dscore.book] jupyter-book " + " ".join(cmd[3:]))
    result = subprocess.run(cmd, cwd=root)
    if result.returncode != 0:
        raise BookError(f"jupyter-book build failed (exit {result.returncode}); see the log above")
    index = root / "_build" / "html" / "index.html"
    if not index.exists():
        raise BookError(f"jupyter-book finished but {index} is missing")
    marker.unlink()
    return index


def build(root: Path, profile: str, *, only: list[str] | None = None, force: bool = False,
          html: bool = True, dry_run: bool = False, files: list[str] | None = None,
          pairs: list[tuple[str, str]] | None = None, workers: int = 1, log=print) -> Path | None:
    """Execute every page of ``profile`` that changed (``only``: these pages; ``force``: all of them; ``dry_run``:
    see :func:`execute`), in the chapters' order, then build the HTML (unless ``html`` is False). ``workers``: kernels
    per page (:func:`execute`).

    ``files`` / ``pairs``: a reader's own values (``-f`` / ``-p``, as :func:`read_overrides`) for the whole build:
    each page takes those of its declared parameters (``-p dataset cifar10`` reaches every page with a
    ``dataset``); a key that no page declares raises BookError before any work."""
    check_profile(profile)
    every = check_all(root)                 # every page's parameters, checked once, before any work
    names = every
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; available: {names}")
        names = [n for n in names if n in only]
    values, sources = parse_overrides(files, pairs)
    declared = {n: declared_parameters(root / "notebooks" / f"{n}.ipynb") for n in names}
    unused = [sources[k] for k in values if not any(k in d for d in declared.values())]
    if unused:
        raise BookError(f"{', '.join(unused)}: not a parameter of any page of this build ({', '.join(names)})")
    overrides = {n: {k: v for k, v in values.items() if k in declared[n]} or None for n in names}
    start = time.perf_counter()
    for name in execution_order(names, chapter_dependencies(root)):
        execute(root, name, profile, force=force, overrides=overrides[name], dry_run=dry_run, workers=workers,
                log=log)
    log(f"[dscore.book] notebooks ready in {time.perf_counter() - start:.1f} s")
    write_timings_page(root, every, profile)
    if not html:
        return None
    index = build_html(root, log=log)
    log(f"[dscore.book] book built in {time.perf_counter() - start:.1f} s: {index}")
    return index
