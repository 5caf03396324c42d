"""Smoke build of the whole book: every notebook executed with the smoke profile, then rendered to HTML."""
import shutil

import pytest

from dscore import book

ROOT = book.repo_root()


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    root = tmp_path_factory.mktemp("book") / "repo"
    root.mkdir()
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, root / name)
    for folder in ("notebooks", "params", "dscore"):
        shutil.copytree(ROOT / folder, root / folder, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copytree(ROOT / "book", root / "book", ignore=shutil.ignore_patterns("nb"))
    logs = []
    index = book.build(root, "smoke", log=logs.append)
    return root, index, logs


@pytest.mark.book
@pytest.mark.slow
def test_smoke_book_builds_to_html(built_book):
    root, index, logs = built_book
    assert index.exists()
    html_pages = {p.relative_to(root / "_build" / "html").as_posix() for p in (root / "_build" / "html").rglob("*.html")}
    for name in book.notebook_names(root):
        assert f"book/nb/{name}.html" in html_pages
        assert book.error_outputs(root / "book" / "nb" / f"{name}.ipynb") == []
    tour = (root / "_build" / "html" / "book" / "nb" / "tour.html").read_text()
    assert "final-epoch test accuracy" in tour
    assert "profile smoke" in tour


@pytest.mark.book
@pytest.mark.slow
def test_unchanged_notebooks_are_not_executed_again(built_book):
    root, _, _ = built_book
    logs = []
    for name in book.notebook_names(root):
        assert book.execute(root, name, "smoke", log=logs.append) is False
    assert all("up to date" in line for line in logs)
