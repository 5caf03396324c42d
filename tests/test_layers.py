"""The library's floors point one way, exactly as ARCHITECTURE.md draws them.

The floors are read from the map's "Layers" diagram (one line per floor, the highest first; ``book/``'s own floors
indented under it), so the test and the map cannot drift apart. A module may import modules on its own floor or
below, never above; quantize/ and distill/ share a floor and never import each other. Checked statically on the
import statements of every module, so a forbidden import fails here even when it sits inside a function.
"""
import ast
import re
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "dscore"
MAP = PKG.parent / "ARCHITECTURE.md"


def _floors() -> list[set[str]]:
    """The diagram's floors, highest first, as sets of module keys (``utils``, ``studies``, ``book.page``): on each
    line of the diagram, the names left of the description that are dscore modules (``studies/common`` → ``studies``)."""
    block = MAP.read_text().split("## Layers", 1)[1].split("```", 2)[1]
    tops = {p.stem for p in PKG.glob("*.py")} | {p.name for p in PKG.iterdir() if (p / "__init__.py").exists()}
    book = {p.stem for p in (PKG / "book").glob("*.py")}
    floors, in_book = [], False
    for line in block.splitlines():
        indent = len(line) - len(line.lstrip())
        if not line.strip() or line.strip() == "│" or indent >= 20 or line.startswith("notebooks/"):
            continue                                       # spacing, arrows, description continuations, the pages
        left = re.split(r"\s{8,}", line.strip())[0]
        if indent == 0:
            in_book = left.startswith("book/")
            left = left.removeprefix("book/")
        keys = set()
        for token in re.split(r"[,\s∥]+", left):
            token = token.strip("/").split("/")[0]
            if in_book and token in book:
                keys.add(f"book.{token}")
            elif not in_book and token in tops:
                keys.add(token)
        floors.append(keys)
    return floors


FLOORS = _floors()
FLOOR = {key: i for i, keys in enumerate(FLOORS) for key in keys}


def _floor_of(module: str) -> int | None:
    """The floor index (0 = highest) of a dscore module name, None for the package root."""
    parts = module.split(".")
    if parts[0] != "dscore" or len(parts) < 2:
        return None
    if parts[1] == "book":
        return FLOOR["book.cli"] if len(parts) == 2 else FLOOR[f"book.{parts[2]}"]
    return FLOOR[parts[1]]


def _module_name(path: Path) -> str:
    rel = path.relative_to(PKG.parent).with_suffix("")
    parts = list(rel.parts)
    if parts[-1] == "__init__":
        parts = parts[:-1]
    return ".".join(parts)


def _imports(path: Path):
    """(imported module, imported names) for every import in ``path``, relative ones resolved."""
    tree = ast.parse(path.read_text())
    here = _module_name(path).split(".")
    package = here if path.name == "__init__.py" else here[:-1]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                yield alias.name, []
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package[: len(package) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            yield target, [a.name for a in node.names]


def _top(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if parts[0] == "dscore" and len(parts) > 1 else None


MODULES = sorted(p for p in PKG.rglob("*.py"))


def test_the_map_draws_the_floors_this_test_enforces():
    assert FLOORS[0] == {"book.cli", "book.__main__"} and FLOORS[-1] == {"utils", "paths"}
    assert {"quantize", "distill", "continual"} in FLOORS and {"book.params"} in FLOORS
    assert FLOOR["studies"] < FLOOR["ledger"] < FLOOR["quantize"] < FLOOR["select"] < FLOOR["train"]


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_follow_the_floors(path):
    here = _module_name(path)
    own = _floor_of(here)
    if own is None:
        return
    for target, names in _imports(path):
        if target in ("dscore", "dscore.book"):                  # `from dscore import x` / `from . import x`
            targets = [f"{target}.{n}" for n in names if _known(f"{target}.{n}")]
        else:
            targets = [target]
        for target in targets:
            if not target.startswith("dscore.") or _top(target) == _top(here) != "book":
                continue
            other = _floor_of(target)
            assert other >= own, (f"{here} (floor {own}: {sorted(FLOORS[own])}) imports {target} (floor {other}: "
                                  f"{sorted(FLOORS[other])}), which ARCHITECTURE.md draws above it")
            assert {_top(here), _top(target)} != {"quantize", "distill"}, \
                f"{here} imports {target}: the two methods stay apart"


def _known(module: str) -> bool:
    try:
        return _floor_of(module) is not None
    except KeyError:
        return False


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_imports_another_modules_private_names(path):
    here = _module_name(path)
    for target, names in _imports(path):
        if not target.startswith("dscore") or target == here:
            continue
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{here} imports private name(s) {private} from {target}"


def _assert_acyclic(graph: dict[str, set[str]]) -> None:
    """Depth-first search of ``{module: modules it imports}``; an import cycle fails naming its path."""
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle: {' -> '.join(trail + [node])}"
        state[node] = "open"
        for dep in sorted(graph.get(node, ())):
            visit(dep, trail + [node])
        state[node] = "done"

    for node in sorted(graph):
        visit(node, [])


def test_the_book_package_has_a_leaf_and_no_cycle():
    """dscore.book: ``params`` is the leaf (imports nothing of the package), ``rules`` and ``executor`` sit on it, the
    runner, the prefill and the in-kernel ``page`` helpers above them, the command line on top; no cycle."""
    book = PKG / "book"
    graph = {}
    for path in sorted(book.glob("*.py")):
        name = _module_name(path)
        deps = set()
        for target, names in _imports(path):
            if target == "dscore.book":
                deps |= {f"dscore.book.{n}" for n in names if (book / f"{n}.py").exists()}
            elif target.startswith("dscore.book."):
                deps.add(target)
        graph[name] = deps - {name}
    assert graph["dscore.book.params"] == set()
    assert graph["dscore.book.rules"] <= {"dscore.book.params"}
    assert graph["dscore.book.executor"] <= {"dscore.book.params"}
    assert "dscore.book.runner" not in graph["dscore.book.page"] | graph["dscore.book.prefill"]
    _assert_acyclic({k: v - {"dscore.book"} for k, v in graph.items()})


def test_every_dscore_module_is_on_a_floor_of_the_map():
    missing = []
    for path in MODULES:
        name = _module_name(path)
        try:
            _floor_of(name)
        except KeyError:
            missing.append(name)
    assert not missing, f"ARCHITECTURE.md's layer diagram has no floor for {missing}"


def test_public_api_of_the_design_is_importable():
    from dscore.cluster import kmeans
    from dscore.metrics import mmd2
    from dscore.quantize import bin_budgets, generate_bins, texture_level
    from dscore.select import graphcut
    assert all(callable(f) for f in (kmeans, mmd2, bin_budgets, generate_bins, texture_level, graphcut))


def test_architecture_map_names_every_module():
    """ARCHITECTURE.md is the project's map: every module and subpackage of dscore appears in it."""
    text = (PKG.parent / "ARCHITECTURE.md").read_text()
    names = {p.stem for p in PKG.glob("*.py") if p.stem != "__init__"} | {p.name for p in PKG.iterdir()
                                                                         if (p / "__init__.py").exists()}
    names |= {f"book/{p.stem}" for p in (PKG / "book").glob("*.py") if not p.stem.startswith("__")}
    missing = sorted(n for n in names if n not in text)
    assert not missing, f"ARCHITECTURE.md does not mention {missing}; add them to its layer map"


def test_no_function_takes_more_than_twelve_parameters():
    """Long argument lists become configs (``quantize.config``, ``TrainProtocol``, the chapters' setups): every
    function and method of dscore takes at most 12 parameters (``self``/``cls`` not counted; the constructors that
    dataclasses generate are not in the source)."""
    long = []
    for path in MODULES:
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                n = len(names) - (1 if names and names[0] in ("self", "cls") else 0) + bool(a.vararg) + bool(a.kwarg)
                if n > 12:
                    long.append(f"{_module_name(path)}.{node.name} ({n})")
    assert not long, f"functions with more than 12 parameters: {long}"


def test_dscore_has_no_import_cycle_between_modules():
    """The import graph of dscore's modules (every import statement, function-level ones included; a package's
    ``__init__`` re-exports left out) has no cycle."""
    graph = {}
    for path in MODULES:
        if path.name == "__init__.py":
            continue
        name = _module_name(path)
        deps = set()
        for target, names in _imports(path):
            for t in [target] + [f"{target}.{n}" for n in names]:
                if (PKG.parent / Path(*t.split("."))).with_suffix(".py").exists():
                    deps.add(t)
        graph[name] = deps - {name}
    _assert_acyclic(graph)
