"""Notebook sources and parameter files: consistent, literal, output-free."""

import nbformat
import papermill
import pytest
import yaml

from dscore import book
from dscore.paths import repo_root

ROOT = repo_root()
NOTEBOOKS = sorted((ROOT / "notebooks").glob("*.ipynb"))


def test_there_are_notebooks_and_all_are_in_the_toc():
    assert NOTEBOOKS
    assert sorted(book.notebook_names(ROOT)) == sorted(p.stem for p in NOTEBOOKS)
    toc = (ROOT / "_toc.yml").read_text()
    for nb in NOTEBOOKS:
        assert f"book/nb/{nb.stem}" in toc


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_sources_are_output_free(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type == "code":
            assert cell.outputs == [], f"{path.name} has committed outputs"
            assert cell.execution_count is None, f"{path.name} has execution counts"
    nbformat.validate(nb)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_each_module_is_imported_once(path):
    """A page imports a module once, under one name (a second alias of the same module reads as another one)."""
    import ast
    from collections import Counter

    seen = Counter()
    for cell in nbformat.read(path, as_version=4).cells:
        if cell.cell_type != "code" or cell.source.lstrip().startswith(("%", "!")):
            continue
        for node in ast.walk(ast.parse(cell.source)):
            if isinstance(node, ast.Import):
                seen.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom):
                seen.update(f"{node.module}.{a.name}" for a in node.names)
    twice = sorted(m for m, k in seen.items() if k > 1)
    assert not twice, f"{path.name} imports {twice} more than once"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_parameters_cell_is_tagged_literal_and_declares_profile(path):
    params = book.declared_parameters(path)
    assert "profile" in params and params["profile"] == "smoke", "notebook defaults are the smoke profile"
    inferred = {p["name"] for p in papermill.inspect_notebook(str(path)).values()}
    assert inferred == set(params)


@pytest.mark.parametrize("profile", book.PROFILES)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_every_profile_has_a_params_file_with_declared_keys(path, profile):
    params_file = ROOT / "params" / profile / f"{path.stem}.yaml"
    assert params_file.exists(), f"missing {params_file.relative_to(ROOT)}"
    assert "profile" not in (yaml.safe_load(params_file.read_text()) or {}), "the runner sets 'profile' itself"
    values = _merged(profile, path.stem)
    declared = book.declared_parameters(path)
    assert set(values) <= set(declared), f"undeclared keys {set(values) - set(declared)}"
    for key, value in values.items():
        default = declared[key]
        if default is not None and value is not None:
            assert isinstance(value, type(default)) or (isinstance(default, float) and isinstance(value, int)), \
                f"{params_file.name}: {key}={value!r} has another type than the default {default!r}"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.stem)
def test_smoke_params_equal_notebook_defaults(path):
    values = book.notebook_defaults(ROOT, path.stem)
    declared = book.declared_parameters(path)
    assert {k: declared[k] for k in values} == values


def test_no_stray_params_files():
    names = {p.stem for p in NOTEBOOKS}
    shared = {book.shared_params_path(ROOT, "smoke", c).stem for c in book.chapter_dependencies(ROOT)}
    assert shared == {"_adq", "_dreamplus"}
    for profile in book.PROFILES:
        for f in (ROOT / "params" / profile).glob("*.yaml"):
            assert f.stem in names | shared, f"{f.relative_to(ROOT)} belongs to no notebook and no chapter"
        for stem in shared:
            assert (ROOT / "params" / profile / f"{stem}.yaml").exists(), f"params/{profile}/{stem}.yaml is missing"


def _merged(profile, name):
    """What the runner passes to papermill, less the values it sets itself."""
    values = book.load_params(ROOT, profile, name)
    values.pop("profile")
    if book.PAGES_DIR_PARAM not in (yaml.safe_load((ROOT / "params" / profile / f"{name}.yaml").read_text()) or {}):
        values.pop(book.PAGES_DIR_PARAM, None)
    return values


def test_undeclared_yaml_key_is_rejected_before_work(tmp_path):
    root = tmp_path / "repo"
    (root / "notebooks").mkdir(parents=True)
    (root / "params" / "smoke").mkdir(parents=True)
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('profile = "smoke"\nepochs = 1')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, root / "notebooks" / "x.ipynb")
    (root / "params" / "smoke" / "x.yaml").write_text("epochs: 2\nepoch: 3\n")
    with pytest.raises(book.BookError, match=r"\['epoch'\] not declared"):
        book.load_params(root, "smoke", "x")


def test_non_literal_parameters_are_rejected(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('profile = "smoke"\nimport os\n')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    path = tmp_path / "x.ipynb"
    nbformat.write(nb, path)
    with pytest.raises(book.BookError, match="only assign literals"):
        book.declared_parameters(path)


def test_unknown_profile_is_rejected():
    with pytest.raises(ValueError, match="profile='huge'.*smoke, default, paper"):
        book.check_profile("huge")
    assert book.main(["build", "--profile", "huge"]) == 2


def test_config_renders_without_executing():
    config = yaml.safe_load((ROOT / "_config.yml").read_text())
    assert config["execute"]["execute_notebooks"] == "off"
    assert config["only_build_toc_files"] is True


def test_gitignore_keeps_generated_book_out():
    ignore = (ROOT / ".gitignore").read_text()
    for pattern in ("book/nb/", "_build/", ".venv/"):
        assert pattern in ignore


def test_parameters_cells_are_written_from_the_smoke_profile():
    assert book.sync_parameter_cells(ROOT, check=True) == [], "run: python -m dscore.book sync-params"


def test_sync_params_rewrites_only_the_values_that_changed(tmp_path):
    import shutil

    root = tmp_path / "repo"
    root.mkdir()
    for part in ("_toc.yml", "notebooks", "params"):
        src = ROOT / part
        (shutil.copytree if src.is_dir() else shutil.copy)(src, root / part)
    path = root / "notebooks" / "tour.ipynb"
    before = path.read_text()
    own = root / "params" / "smoke" / "tour.yaml"
    own.write_text(own.read_text().replace("epochs: 2", "epochs: 3"))
    smoke = yaml.safe_load(own.read_text())
    assert smoke["epochs"] == 3
    assert book.sync_parameter_cells(root, check=True) == ["tour"]
    assert path.read_text() == before                                  # --check writes nothing
    assert book.sync_parameter_cells(root) == ["tour"]
    after = path.read_text()
    assert book.declared_parameters(path)["epochs"] == 3
    changed = [(a, b) for a, b in zip(before.splitlines(), after.splitlines()) if a != b]
    assert changed == [('    "epochs = 2\\n",', '    "epochs = 3\\n",')]   # quotes, comments, the rest: as they were
    assert book.sync_parameter_cells(root) == []
    own.write_text(own.read_text().replace("epochs: 3", "epochs: 2"))
    book.sync_parameter_cells(root)
    assert path.read_text() == before                                  # back, byte for byte
