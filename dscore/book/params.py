"""The book's parameters and structure, read from the checkout: profiles, the table of contents, the notebooks'
declared parameters and the parameter files (a chapter's shared setup under each page's own file).

The leaf of :mod:`dscore.book`: it imports nothing else of the package, so the runner, the prefill, the in-kernel
page helpers and the parameter rules all read the book the same way.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Mapping

import yaml

__all__ = ["PROFILES", "CELL_TIMEOUT", "KERNEL_NAME", "OUTPUT_DIR", "PAGES_DIR_PARAM", "SHARED_PREFIX", "CHAPTER_PREFIX",
           "BookError", "check_profile", "toc_files", "notebook_names", "chapter_dependencies", "execution_order",
           "declared_parameters", "chapter_of", "shared_params_path", "params_source", "load_params",
           "parse_overrides", "read_overrides", "DRY_TRIM", "dry_values", "deep_merge", "dotted",
           "NOTEBOOK_PROFILE", "notebook_defaults", "sync_parameter_cells"]

PROFILES = ("smoke", "default", "paper")
# Per-cell timeouts (seconds); the paper profile runs on GPUs for hours.
CELL_TIMEOUT = {"smoke": 900, "default": 4 * 3600, "paper": None}
KERNEL_NAME = "dscore"
OUTPUT_DIR = Path("book") / "nb"


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


def toc_files(root: Path) -> list[str]:
    """Every document of ``_toc.yml``, the root first, as written there (``book/intro``, ``book/nb/tour`` …)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    files = [toc["root"]] if isinstance(toc, dict) and isinstance(toc.get("root"), str) else []
    return files + [e["file"] for e in _toc_entries(root)]


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


def deep_merge(base: Mapping[str, Any], over: Mapping[str, Any]) -> dict[str, Any]:
    """``base`` with ``over`` on top, mappings merged key by key at every depth: ``{"evaluation": {"epochs": 5}}`` over
    ``{"evaluation": {"epochs": 20, "seeds": [0, 1]}}`` keeps the seeds. Any other value (a list, a number, None)
    replaces what was there. Neither argument is changed."""
    out = dict(base)
    for key, value in over.items():
        if isinstance(value, Mapping) and isinstance(out.get(key), Mapping):
            out[key] = deep_merge(out[key], value)
        else:
            out[key] = value
    return out


def dotted(key: str, value: Any) -> dict[str, Any]:
    """``("evaluation.idc.epochs", 5)`` → ``{"evaluation": {"idc": {"epochs": 5}}}``: a dotted key as the nested
    mapping it names (a key without a dot is itself). An empty part (``"a..b"``, ``".a"``) is a BookError."""
    parts = str(key).split(".")
    if any(not part for part in parts):
        raise BookError(f"{key!r} is not a parameter path; write names joined by single dots, e.g. 'evaluation.epochs'")
    for part in reversed(parts[1:]):
        value = {part: value}
    return {parts[0]: value}


def load_params(root: Path, profile: str, name: str) -> dict[str, Any]:
    """The parameters of notebook ``name`` in ``profile``: its chapter's shared setup
    (``params/<profile>/_<chapter>.yaml``, when the page is a section of a chapter and the file exists) with the
    page's own ``params/<profile>/<name>.yaml`` merged over it (:func:`deep_merge`). Every key, shared or own, must be
    a declared parameter of the notebook.

    The override rule, stated once: the merge lets any file override any value, so a reader's own file (``-f``,
    ``-p``) can change a shared value for one page; the book's own page files never repeat a key of their chapter's
    setup, so that every page of a chapter shares one setup and its cached runs (the study tests enforce it)."""
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
    params = deep_merge(shared, own)
    params["profile"] = profile
    if "profile" not in declared:
        raise BookError(f"notebooks/{name}.ipynb must declare a 'profile' parameter")
    if PAGES_DIR_PARAM in declared and PAGES_DIR_PARAM not in params:
        # a chapter overview reads what its pages recorded: where this runner executes them, from notebooks/
        params[PAGES_DIR_PARAM] = Path(os.path.relpath(OUTPUT_DIR, "notebooks")).as_posix()
    return params


#: What a dry run keeps of a page's list parameters (the first n entries): one seed of every kind, one keep ratio or
#: images-per-class, two points of a sweep or a curve. Lists not named here (methods, architectures, table rows) are
#: kept whole, so every code path of the page still runs, each on a tiny problem (the studies' own ``dry_run``).
DRY_TRIM: dict[str, int] = {"seeds": 1, "ratios": 1, "ipcs": 1, "betas": 2, "temperatures": 2, "lengths": 2,
                            "intervals": 2, "cells": 2}


def dry_values(params: dict[str, Any]) -> dict[str, Any]:
    """``params`` of a page for a dry run: each top-level list whose name is a key of :data:`DRY_TRIM` or ends
    with one (``context_seeds``, ``tiny_ipcs``, ``dream_cells``) cut to its first entries; the rest unchanged."""
    out = dict(params)
    for key, value in params.items():
        if not isinstance(value, list):
            continue
        n = next((n for suffix, n in DRY_TRIM.items() if key == suffix or key.endswith("_" + suffix)), None)
        if n is not None:
            out[key] = value[:n]
    return out


def parse_overrides(files: list[str] | None = None, pairs: list[tuple[str, str]] | None = None
                    ) -> tuple[dict[str, Any], dict[str, str]]:
    """A reader's own values: the YAML ``files`` in order, then ``pairs`` (key, YAML value), later ones merged over
    earlier ones (:func:`deep_merge`). A pair's key may be dotted to reach inside a mapping: ``("evaluation.epochs",
    "5")`` changes the epochs and keeps the rest of ``evaluation``. Returns ``(values, sources)``, ``sources``
    naming where each top-level key came from (``-f FILE`` or ``-p KEY``). Bad files and values raise BookError."""
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
        values = deep_merge(values, data)
        sources.update({k: f"-f {file}" for k in data})
    for key, text in pairs or []:
        try:
            parsed = yaml.safe_load(text)
        except yaml.YAMLError as exc:
            raise BookError(f"-p {key} {text!r}: not valid YAML: {exc}") from None
        try:
            nested = dotted(key, parsed)
        except BookError as exc:
            raise BookError(f"-p {key}: {exc}") from None
        values = deep_merge(values, nested)
        sources[next(iter(nested))] = f"-p {key}"
    for key in values:
        if key == "profile":
            raise BookError(f"{sources[key]}: 'profile' is chosen with --profile (one of {', '.join(PROFILES)})")
    return values, sources


def read_overrides(root: Path, name: str, files: list[str] | None = None,
                   pairs: list[tuple[str, str]] | None = None) -> dict[str, Any]:
    """A reader's own parameters for page ``name`` (:func:`parse_overrides`), as they are then merged over the
    profile's values. Top-level keys the page does not declare (or ``profile``: use ``--profile``) raise BookError
    before any work, naming the key, where it came from and the nearest declared name."""
    import difflib

    declared = declared_parameters(root / "notebooks" / f"{name}.ipynb")
    values, sources = parse_overrides(files, pairs)
    for key in values:
        if key not in declared:
            close = difflib.get_close_matches(str(key), declared, 1)
            hint = f" (did you mean {close[0]!r}?)" if close else ""
            raise BookError(f"{sources[key]}: {key!r} is not a parameter of notebooks/{name}.ipynb{hint}; "
                            f"declared: {', '.join(sorted(declared))}")
    return values


#: the profile whose values a notebook's own parameters cell holds, so that a notebook opened in JupyterLab (or run by
#: nbval) runs as it is, in minutes
NOTEBOOK_PROFILE = "smoke"


def notebook_defaults(root: Path, name: str) -> dict[str, Any]:
    """What notebook ``name``'s parameters cell must hold: its :data:`NOTEBOOK_PROFILE` parameters (chapter setup and
    page file merged, :func:`load_params`) less ``profile`` (the cell's own first line) and :data:`PAGES_DIR_PARAM`
    unless the page file sets it (the cell's default serves JupyterLab)."""
    values = load_params(root, NOTEBOOK_PROFILE, name)
    values.pop("profile")
    own = _read_mapping(root, root / "params" / NOTEBOOK_PROFILE / f"{name}.yaml")
    if PAGES_DIR_PARAM not in own:
        values.pop(PAGES_DIR_PARAM, None)
    return values


def _same_literal(a: Any, b: Any) -> bool:
    """Equal and of the same types all the way down (``1 == True`` and ``1 == 1.0`` are not the same literal)."""
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(_same_literal(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same_literal(x, y) for x, y in zip(a, b))
    return a == b


def _rewrite_parameters(source: str, values: Mapping[str, Any], where: str) -> str:
    """``source`` (a parameters cell) with every ``name = literal`` whose name is in ``values`` set to that value;
    a literal already equal to it is kept as written (its quotes, its layout), comments and other lines are kept.
    A name of ``values`` the cell does not assign is a BookError."""
    import ast

    lines = source.split("\n")
    assigned = {}
    for stmt in ast.parse(source).body:
        if isinstance(stmt, ast.Assign) and len(stmt.targets) == 1 and isinstance(stmt.targets[0], ast.Name):
            assigned[stmt.targets[0].id] = stmt.value
    missing = sorted(set(values) - set(assigned))
    if missing:
        raise BookError(f"{where}: the parameters cell does not assign {missing}")
    spans = sorted(((node.lineno, node.col_offset, node.end_lineno, node.end_col_offset, repr(values[name]))
                    for name, node in assigned.items()
                    if name in values and not _same_literal(ast.literal_eval(node), values[name])), reverse=True)
    for line, col, end_line, end_col, text in spans:           # from the end, so that earlier offsets stay valid
        head, tail = lines[line - 1][:col], lines[end_line - 1][end_col:]
        lines[line - 1:end_line] = [head + text + tail]
    return "\n".join(lines)


def sync_parameter_cells(root: Path, *, check: bool = False) -> list[str]:
    """Write every notebook's parameters cell from :func:`notebook_defaults`, so that a smoke value is written once
    (in ``params/smoke/``) and the notebooks follow: ``python -m dscore.book sync-params``. Only the values change;
    the cell's comments, its other lines and the rest of the notebook stay byte for byte. Returns the names of the
    notebooks that differed; ``check=True`` writes nothing (the test that holds the notebooks to the profile)."""
    import json

    from ..utils import atomic_write_text

    changed = []
    for name in notebook_names(root):
        path = root / "notebooks" / f"{name}.ipynb"
        nb = json.loads(path.read_text())
        cells = [c for c in nb["cells"] if "parameters" in c.get("metadata", {}).get("tags", [])]
        if len(cells) != 1:
            raise BookError(f"{path.relative_to(root)} must have exactly one cell tagged 'parameters', "
                            f"found {len(cells)}")
        cell = cells[0]
        source = "".join(cell["source"]) if isinstance(cell["source"], list) else cell["source"]
        new = _rewrite_parameters(source, notebook_defaults(root, name), str(path.relative_to(root)))
        if new == source:
            continue
        changed.append(name)
        if not check:
            lines = new.split("\n")
            cell["source"] = [line + "\n" for line in lines[:-1]] + ([lines[-1]] if lines[-1] else [])
            atomic_write_text(path, json.dumps(nb, indent=1, ensure_ascii=False) + "\n")
    return changed
