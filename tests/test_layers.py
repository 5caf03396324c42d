"""The library's layers point one way (as ARCHITECTURE.md and book/library.md draw them): core → select → quantize | distill → book helpers.

Checked statically on the import statements of every module, so a forbidden import fails here even
when it sits inside a function.
"""
import ast
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parent.parent / "dscore"
CORE = {"augment", "cache", "cluster", "continual", "data", "distributed", "evaluation", "features", "fingerprint",
        "metrics", "models", "paths", "train", "utils"}
LAYER = {**{m: 0 for m in CORE}, "select": 1, "quantize": 2, "distill": 2, "report": 3, "papers": 3, "studies": 3,
         "stats": 3, "ledger": 3, "book": 4}


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


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_imports_follow_the_layers(path):
    own = _top(_module_name(path))
    if own is None:
        return
    for target, names in _imports(path):
        if target == "dscore":                                   # `from dscore import x` / `from .. import x`
            targets = [f"dscore.{n}" for n in names if n in LAYER]
        else:
            targets = [target]
        for target in targets:
            _check_edge(path, own, target)


def _check_edge(path, own, target):
    other = _top(target)
    if other is None or other == own:
        return
    assert LAYER[other] <= LAYER[own], f"{_module_name(path)} (layer {LAYER[own]}) imports {target} (layer {LAYER[other]})"
    assert {own, other} != {"quantize", "distill"}, f"{_module_name(path)} imports {target}: the two methods stay apart"


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PKG)))
def test_no_module_imports_another_modules_private_names(path):
    here = _module_name(path)
    for target, names in _imports(path):
        if not target.startswith("dscore") or target == here:
            continue
        private = [n for n in names if n.startswith("_") and not n.startswith("__")]
        assert not private, f"{here} imports private name(s) {private} from {target}"


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
    state = {}

    def visit(node, trail):
        if state.get(node) == "done":
            return
        assert state.get(node) != "open", f"import cycle in dscore.book: {' -> '.join(trail + [node])}"
        state[node] = "open"
        for dep in graph.get(node, ()):
            if dep != "dscore.book":
                visit(dep, trail + [node])
        state[node] = "done"

    for node in graph:
        visit(node, [])


def test_every_dscore_module_is_in_a_layer():
    tops = {p.relative_to(PKG).parts[0].removesuffix(".py") for p in MODULES} - {"__init__"}
    assert tops <= set(LAYER), f"modules without a layer: {sorted(tops - set(LAYER))}"


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
