"""Execute the notebooks with a parameter profile and build the Jupyter Book.

Usage (from a checkout)::

    python -m dscore.book build --profile default      # execute what changed, then build the HTML
    python -m dscore.book run tour --profile smoke     # execute one notebook
    python -m dscore.book run tour -f my.yaml -p epochs 3   # … with your own parameters (unknown keys rejected)
    python -m dscore.book check                        # validate params/ against the notebooks
    torchrun --nproc_per_node=4 -m dscore.book prefill --profile default   # fill the cache in 4 processes

``notebooks/<name>.ipynb`` is executed by papermill with ``params/<profile>/<name>.yaml`` (over its chapter's
shared ``params/<profile>/_<chapter>.yaml``, see :func:`load_params`) into
``book/nb/<name>.ipynb`` (fixed kernel, fixed working directory ``notebooks/``, per-cell timeout,
logged output). A notebook is re-executed only when its fingerprint changes: the notebook source,
its params file, the profile, and every ``dscore/*.py`` file. Fingerprints live in
``book/nb/.manifest.json``; outputs are written atomically, so a killed build resumes with the
notebooks that finished.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from .paths import repo_root
from .utils import atomic_write_text, exclusive_lock, kill_point

PROFILES = ("smoke", "default", "paper")
# Per-cell timeouts (seconds); the paper profile runs on GPUs for hours.
CELL_TIMEOUT = {"smoke": 900, "default": 4 * 3600, "paper": None}
KERNEL_NAME = "dscore"
OUTPUT_DIR = Path("book") / "nb"
MANIFEST = OUTPUT_DIR / ".manifest.json"
TIMINGS = OUTPUT_DIR / ".timings.json"
TIMINGS_PAGE = OUTPUT_DIR / "timings.md"


#: the parameter of a notebook that reads other pages' files (a chapter overview); the runner sets it to its output
#: folder, relative to the notebooks' working directory (the notebook's own default serves JupyterLab and nbval)
PAGES_DIR_PARAM = "pages_dir"


class BookError(RuntimeError):
    """A notebook, a params file or the book build is wrong; the message says which and why."""


def check_profile(profile: str) -> str:
    if profile not in PROFILES:
        raise ValueError(f"profile={profile!r} is not known; allowed: {', '.join(PROFILES)}")
    return profile


def _toc_entries(root: Path) -> list[dict]:
    """Every entry of ``_toc.yml`` with a ``file``, in the order the table of contents lists them."""
    entries: list[dict] = []

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            if isinstance(node.get("file"), str):
                entries.append(node)
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(yaml.safe_load((root / "_toc.yml").read_text()))
    return entries


def _notebook_of(entry: Any) -> str | None:
    """The notebook name of a table-of-contents entry under ``book/nb/`` (None for a prose page)."""
    prefix = OUTPUT_DIR.as_posix() + "/"
    file = entry.get("file") if isinstance(entry, dict) else None
    return file[len(prefix):] if isinstance(file, str) and file.startswith(prefix) else None


def notebook_names(root: Path) -> list[str]:
    """Notebook names in the order the table of contents lists them (then any others, sorted)."""
    in_toc = [n for n in map(_notebook_of, _toc_entries(root)) if n]
    on_disk = sorted(p.stem for p in (root / "notebooks").glob("*.ipynb"))
    missing = [n for n in in_toc if n not in on_disk]
    if missing:
        raise BookError(f"_toc.yml lists {missing} under {OUTPUT_DIR.as_posix()}/ but notebooks/ has no such notebook")
    return in_toc + [n for n in on_disk if n not in in_toc]


def chapter_dependencies(root: Path) -> dict[str, list[str]]:
    """The notebooks that read other notebooks' results: a chapter notebook of ``_toc.yml`` (one with ``sections``)
    depends on its section notebooks (a chapter overview reads the claims its pages recorded). ``{chapter: [pages]}``."""
    if not (root / "_toc.yml").exists():
        return {}
    deps: dict[str, list[str]] = {}
    for entry in _toc_entries(root):
        chapter, sections = _notebook_of(entry), entry.get("sections")
        pages = [n for n in map(_notebook_of, sections) if n] if chapter and isinstance(sections, list) else []
        if pages:
            deps[chapter] = pages
    return deps


def execution_order(names: list[str], deps: dict[str, list[str]]) -> list[str]:
    """``names`` in table-of-contents order, except that a notebook that depends on others (:func:`chapter_dependencies`)
    runs right after the last of them."""
    order = [n for n in names if n not in deps]
    for chapter in [n for n in names if n in deps]:
        after = [order.index(d) for d in deps[chapter] if d in order]
        order.insert(max(after) + 1 if after else len(order), chapter)
    return order


def declared_parameters(notebook: Path) -> dict[str, Any]:
    """The names and default values assigned in the cell tagged ``parameters``."""
    import ast

    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    cells = [c for c in nb.cells if "parameters" in c.get("metadata", {}).get("tags", [])]
    if len(cells) != 1:
        raise BookError(f"{notebook} must have exactly one cell tagged 'parameters', found {len(cells)}")
    params: dict[str, Any] = {}
    for stmt in ast.parse(cells[0].source).body:
        if not (isinstance(stmt, (ast.Assign, ast.AnnAssign))):
            raise BookError(f"{notebook}: the parameters cell may only assign literals, found: {ast.unparse(stmt)}")
        targets = stmt.targets if isinstance(stmt, ast.Assign) else [stmt.target]
        if len(targets) != 1 or not isinstance(targets[0], ast.Name) or stmt.value is None:
            raise BookError(f"{notebook}: write one 'name = literal' per line in the parameters cell: {ast.unparse(stmt)}")
        try:
            params[targets[0].id] = ast.literal_eval(stmt.value)
        except ValueError:
            raise BookError(f"{notebook}: parameter {targets[0].id} must be a literal, "
                            f"found {ast.unparse(stmt.value)}") from None
    return params


#: the prefix of a chapter's shared parameter file: ``params/<profile>/_<chapter>.yaml``
SHARED_PREFIX = "_"
#: a chapter notebook named ``overview_<chapter>`` shares ``_<chapter>.yaml`` with its pages
CHAPTER_PREFIX = "overview_"


def chapter_of(root: Path, name: str) -> str | None:
    """The chapter notebook (:func:`chapter_dependencies`) whose sections include notebook ``name``, or None."""
    for chapter, pages in chapter_dependencies(root).items():
        if name in pages:
            return chapter
    return None


def shared_params_path(root: Path, profile: str, chapter: str) -> Path:
    """``params/<profile>/_<chapter>.yaml``: the setup every page of ``chapter`` shares (``overview_adq`` → ``_adq``)."""
    stem = chapter[len(CHAPTER_PREFIX):] if chapter.startswith(CHAPTER_PREFIX) else chapter
    return root / "params" / profile / f"{SHARED_PREFIX}{stem}.yaml"


def _read_mapping(root: Path, path: Path) -> dict[str, Any]:
    values = yaml.safe_load(path.read_text()) or {}
    if not isinstance(values, dict):
        raise BookError(f"{path.relative_to(root)} must be a mapping of parameter names to values")
    return values


def params_source(root: Path, profile: str, name: str) -> str:
    """The file(s) :func:`load_params` reads for ``name``, for messages: ``params/<p>/_<chapter>.yaml +
    params/<p>/<name>.yaml``."""
    own = f"params/{profile}/{name}.yaml"
    chapter = chapter_of(root, name)
    shared = shared_params_path(root, profile, chapter) if chapter else None
    return f"{shared.relative_to(root).as_posix()} + {own}" if shared is not None and shared.exists() else own


def load_params(root: Path, profile: str, name: str) -> dict[str, Any]:
    """The parameters of notebook ``name`` in ``profile``: its chapter's shared setup
    (``params/<profile>/_<chapter>.yaml``, when the page is a section of a chapter and the file exists) with the
    page's own ``params/<profile>/<name>.yaml`` over it (a page may override a shared value, e.g. run smaller).
    Every key, shared or own, must be a declared parameter of the notebook."""
    check_profile(profile)
    path = root / "params" / profile / f"{name}.yaml"
    if not path.exists():
        raise BookError(f"no parameter file {path.relative_to(root)} for notebook {name!r} in profile {profile!r}")
    own = _read_mapping(root, path)
    declared = declared_parameters(root / "notebooks" / f"{name}.ipynb")
    chapter = chapter_of(root, name)
    shared_path = shared_params_path(root, profile, chapter) if chapter else None
    shared = _read_mapping(root, shared_path) if shared_path is not None and shared_path.exists() else {}
    for source, values in ((shared_path, shared), (path, own)):
        unknown = sorted(set(values) - set(declared))
        if unknown:
            raise BookError(f"{source.relative_to(root)}: {unknown} not declared in the parameters cell of "
                            f"notebooks/{name}.ipynb; declared: {sorted(declared)}")
    params = {**shared, **own}
    params["profile"] = profile
    if "profile" not in declared:
        raise BookError(f"notebooks/{name}.ipynb must declare a 'profile' parameter")
    if PAGES_DIR_PARAM in declared and PAGES_DIR_PARAM not in params:
        # a chapter overview reads what its pages recorded: where this runner executes them, from notebooks/
        params[PAGES_DIR_PARAM] = Path(os.path.relpath(OUTPUT_DIR, "notebooks")).as_posix()
    return params


def check_all(root: Path) -> list[str]:
    """Validate every notebook against every profile before any work (keys, then values: types, ranges, budgets,
    :func:`dscore.pages.check_values`); returns the notebook names."""
    names = notebook_names(root)
    for name in names:
        for profile in PROFILES:
            check_values(root, name, load_params(root, profile, name), params_source(root, profile, name))
    return names


def check_values(root: Path, name: str, params: dict[str, Any], source: str) -> dict[str, Any]:
    """The page's own parameter check (:func:`dscore.pages.check_values`) on ``params``, before any kernel starts;
    a bad value raises BookError naming ``source``, the key, the value and what is allowed."""
    from . import pages

    declared = declared_parameters(root / "notebooks" / f"{name}.ipynb")
    try:
        return pages.check_values(name, params, declared=declared)
    except ValueError as exc:
        raise BookError(f"{source}: {exc}") from None


def read_overrides(root: Path, name: str, files: list[str] | None = None,
                   pairs: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A reader's own parameters for page ``name``: the YAML ``files`` in order, then ``pairs`` (key, YAML value),
    later ones winning. Keys the page does not declare (or ``profile``: use ``--profile``) raise BookError before any
    work, naming the key, where it came from and the nearest declared name."""
    import difflib

    declared = declared_parameters(root / "notebooks" / f"{name}.ipynb")
    values: dict[str, Any] = {}
    sources: dict[str, str] = {}
    for file in files or []:
        path = Path(file)
        if not path.exists():
            raise BookError(f"-f {file}: no such file")
        try:
            data = yaml.safe_load(path.read_text()) or {}
        except yaml.YAMLError as exc:
            raise BookError(f"-f {file}: not valid YAML: {exc}") from None
        if not isinstance(data, dict):
            raise BookError(f"-f {file}: must be a mapping of parameter names to values, found {type(data).__name__}")
        values.update(data)
        sources.update({k: f"-f {file}" for k in data})
    for key, text in pairs or []:
        try:
            values[key] = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BookError(f"-p {key} {text!r}: not valid YAML: {exc}") from None
        sources[key] = f"-p {key}"
    for key in values:
        if key == "profile":
            raise BookError(f"{sources[key]}: 'profile' is chosen with --profile (one of {', '.join(PROFILES)})")
        if key not in declared:
            close = difflib.get_close_matches(str(key), declared, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BookError(f"{sources[key]}: {key!r} is not a parameter of notebooks/{name}.ipynb{hint}; "
                            f"declared: {', '.join(sorted(declared))}")
    return values


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


def _kernel_name() -> str:
    from jupyter_client.kernelspec import KernelSpecManager

    specs = KernelSpecManager().find_kernel_specs()
    if KERNEL_NAME in specs:
        return KERNEL_NAME
    print(f"[dscore.book] warning: no '{KERNEL_NAME}' Jupyter kernel is installed (make venv installs it); "
          "executing with 'python3', which must be an environment where dscore imports", file=sys.stderr)
    return "python3"


def error_outputs(notebook: Path) -> list[str]:
    """Error outputs in an executed notebook, as 'ename: evalue' strings."""
    import nbformat

    nb = nbformat.read(notebook, as_version=4)
    return [f"{o.get('ename')}: {o.get('evalue')}" for c in nb.cells if c.cell_type == "code"
            for o in c.get("outputs", []) if o.get("output_type") == "error"]


def _exclusive(path: Path, *, log=None, what: str = ""):
    """The exclusive file lock (:func:`dscore.utils.exclusive_lock`) of a page or of the manifest; a build that has
    to wait says so in ``log``."""
    announce = None if log is None else (lambda holder: log(f"[dscore.book] {what}: waiting for another build "
                                                            f"that is executing it ({holder})"))
    return exclusive_lock(path, on_wait=announce)


def execute(root: Path, name: str, profile: str, *, force: bool = False, overrides: dict[str, Any] | None = None,
            log=print) -> bool:
    """Execute one notebook if its fingerprint changed; returns True when it ran.

    ``overrides`` (from :func:`read_overrides`) replace values of the profile's params file. The values are checked
    (:func:`check_values`) before the kernel starts. The page's downloadable files (:class:`dscore.pages.Downloads`)
    are written to a staging folder and replace ``book/nb/<name>_files`` when the page succeeds.

    Two builds of one checkout at once are safe: a page is executed under a per-page file lock
    (``book/nb/.locks/<name>.lock``), so the second build waits, then finds the page up to date; the manifest and
    timings are updated under their own lock."""
    with _exclusive(root / OUTPUT_DIR / ".locks" / f"{name}.lock", log=log, what=name):
        return _execute_unlocked(root, name, profile, force=force, overrides=overrides, log=log)


def _execute_unlocked(root: Path, name: str, profile: str, *, force: bool, overrides: dict[str, Any] | None,
                      log) -> bool:
    import shutil

    import papermill

    from . import pages

    params = load_params(root, profile, name)
    source = params_source(root, profile, name)
    if overrides:
        params.update(overrides)
        source += " with " + ", ".join(f"{k}={v!r}" for k, v in overrides.items())
    check_values(root, name, params, source)
    key = fingerprint(root, name, profile, params)
    out = root / OUTPUT_DIR / f"{name}.ipynb"
    manifest = _read_manifest(root)
    if not force and manifest.get(name) == key and out.exists():
        log(f"[dscore.book] {name}: up to date ({profile})")
        return False
    log(f"[dscore.book] {name}: executing with {source}")
    start = time.perf_counter()
    env = {pages.PROGRESS_ENV: "text"}
    partial = root / OUTPUT_DIR / ".partial" / f"{name}.ipynb"
    partial.parent.mkdir(parents=True, exist_ok=True)
    staged_files = partial.with_name(f"{name}_files")
    shutil.rmtree(staged_files, ignore_errors=True)
    env[pages.PAGE_FILES_ENV] = str(staged_files)
    env_backup = {k: os.environ.get(k) for k in env}
    os.environ.update(env)
    try:
        try:
            papermill.execute_notebook(
                str(root / "notebooks" / f"{name}.ipynb"), str(partial),
                parameters=params, kernel_name=_kernel_name(), cwd=str(root / "notebooks"),
                execution_timeout=CELL_TIMEOUT[profile], log_output=True, progress_bar=False,
            )
            errors = error_outputs(partial)
            if errors:
                raise BookError(f"error outputs: {errors}")
            collapse_injected_parameters(partial)
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
    finally:
        for k, v in env_backup.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
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


def collapse_injected_parameters(path: Path) -> None:
    """Tag the cell papermill injected (``injected-parameters``) ``hide-cell``, so the book shows it collapsed behind
    a toggle: the values stay one click away (the run banner states them too) and the page opens on its text."""
    nb = json.loads(Path(path).read_text())
    changed = False
    for cell in nb.get("cells", []):
        tags = cell.get("metadata", {}).get("tags", [])
        if "injected-parameters" in tags and "hide-cell" not in tags:
            tags.append("hide-cell")
            changed = True
    if changed:
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
    kill_point("book_html")
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
          html: bool = True, log=print) -> Path | None:
    check_profile(profile)
    names = check_all(root)
    if only:
        unknown = sorted(set(only) - set(names))
        if unknown:
            raise ValueError(f"unknown notebook(s) {unknown}; available: {names}")
        names = [n for n in names if n in only]
    start = time.perf_counter()
    for name in execution_order(names, chapter_dependencies(root)):
        execute(root, name, profile, force=force, log=log)
    log(f"[dscore.book] notebooks ready in {time.perf_counter() - start:.1f} s")
    write_timings_page(root, check_all(root), profile)
    if not html:
        return None
    index = build_html(root, log=log)
    log(f"[dscore.book] book built in {time.perf_counter() - start:.1f} s: {index}")
    return index


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dscore.book", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    p_build = sub.add_parser("build", help="execute changed notebooks and build the HTML book")
    p_build.add_argument("--profile", default=os.environ.get("PROFILE", "default"))
    p_build.add_argument("--only", nargs="*", help="execute only these notebooks")
    p_build.add_argument("--force", action="store_true", help="re-execute even if up to date")
    p_build.add_argument("--no-html", action="store_true", help="execute notebooks only")
    p_run = sub.add_parser("run", help="execute one notebook into book/nb/ (with your own parameters: -f, -p)")
    p_run.add_argument("name")
    p_run.add_argument("--profile", default="smoke", help="the params/<profile>/ file the values start from")
    p_run.add_argument("-f", "--file", action="append", default=[], metavar="YAML",
                       help="a YAML file of parameter values (repeatable; later files win)")
    p_run.add_argument("-p", "--parameter", action="append", nargs=2, default=[], metavar=("KEY", "VALUE"),
                       help="one parameter, the value parsed as YAML (repeatable; wins over -f)")
    p_run.add_argument("--force", action="store_true")
    sub.add_parser("check", help="validate notebooks and params for every profile")
    p_prefill = sub.add_parser("prefill", help="compute pages' artefacts into the cache, split over processes "
                                               "(torchrun --nproc_per_node=N -m dscore.book prefill …)")
    p_prefill.add_argument("names", nargs="*", help="pages to prefill (default: every page)")
    p_prefill.add_argument("--profile", default=os.environ.get("PROFILE", "default"))
    p_prefill.add_argument("--rank", type=int, help="this process's place without torchrun (default: $RANK or 0)")
    p_prefill.add_argument("--world", type=int, help="number of processes without torchrun (default: $WORLD_SIZE or 1)")
    p_prefill.add_argument("--root", help="the checkout whose pages to prefill (default: this one)")
    args = parser.parse_args(argv)
    root = repo_root()
    try:
        if args.command == "build":
            build(root, args.profile, only=args.only, force=args.force, html=not args.no_html)
        elif args.command == "run":
            check_profile(args.profile)
            if args.name not in notebook_names(root):
                raise ValueError(f"unknown notebook {args.name!r}; available: {notebook_names(root)}")
            overrides = read_overrides(root, args.name, args.file, [tuple(p) for p in args.parameter])
            execute(root, args.name, args.profile, force=args.force, overrides=overrides)
        elif args.command == "prefill":
            from . import prefill

            return prefill.main(args.names, args.profile, rank=args.rank, world=args.world,
                                root=Path(args.root) if args.root else root)
        else:
            names = check_all(root)
            print(f"[dscore.book] {len(names)} notebooks × {len(PROFILES)} profiles: params OK")
    except (BookError, ValueError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
