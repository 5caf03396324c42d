"""The papermill runner's bookkeeping, with papermill replaced by a copy (fast, no kernel)."""
import json
import shutil

import nbformat
import pytest

from dscore import book


def _make_repo(root):
    (root / "notebooks").mkdir(parents=True)
    (root / "dscore").mkdir()
    (root / "dscore" / "mod.py").write_text("x = 1\n")
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/nb/page\n")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('profile = "smoke"\nepochs = 1')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("print(epochs)")]
    nbformat.write(nb, root / "notebooks" / "page.ipynb")
    for profile in book.PROFILES:
        (root / "params" / profile).mkdir(parents=True)
        (root / "params" / profile / "page.yaml").write_text("epochs: 1\n")


@pytest.fixture
def repo(tmp_path, monkeypatch):
    import papermill

    root = tmp_path / "repo"
    _make_repo(root)
    runs = []

    def fake_execute(src, dst, parameters=None, **kwargs):
        runs.append(parameters)
        if parameters.get("epochs") == 99:
            shutil.copy(src, dst)
            raise RuntimeError("cell 2 raised")
        shutil.copy(src, dst)

    monkeypatch.setattr(papermill, "execute_notebook", fake_execute)
    monkeypatch.setattr(book, "_kernel_name", lambda: "python3")
    return root, runs


def test_reexecutes_only_when_params_code_or_profile_change(repo):
    root, runs = repo
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is True
    assert runs[-1] == {"epochs": 1, "profile": "smoke"}
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is False
    (root / "params" / "smoke" / "page.yaml").write_text("epochs: 2\n")
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is True
    (root / "dscore" / "mod.py").write_text("x = 2\n")
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is True
    assert book.execute(root, "page", "default", log=lambda *_: None) is True
    assert len(runs) == 4


def test_a_failed_run_keeps_the_previous_output_and_manifest(repo):
    root, runs = repo
    book.execute(root, "page", "smoke", log=lambda *_: None)
    out = root / "book" / "nb" / "page.ipynb"
    before = (out.read_bytes(), (root / book.MANIFEST).read_text())
    (root / "params" / "smoke" / "page.yaml").write_text("epochs: 99\n")
    with pytest.raises(book.BookError, match="(?s)failed with profile 'smoke'.*page.failed.ipynb"):
        book.execute(root, "page", "smoke", log=lambda *_: None)
    assert (out.read_bytes(), (root / book.MANIFEST).read_text()) == before
    assert (root / "book" / "nb" / "page.failed.ipynb").exists()
    assert not list((root / "book" / "nb" / ".partial").iterdir())
    # the next good run clears the failure record and is taken as up to date afterwards
    (root / "params" / "smoke" / "page.yaml").write_text("epochs: 3\n")
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is True
    assert not (root / "book" / "nb" / "page.failed.ipynb").exists()
    assert json.loads((root / book.MANIFEST).read_text())["page"]
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is False


def test_error_outputs_fail_the_run(repo, monkeypatch):
    import papermill

    root, _ = repo

    def execute_with_error_output(src, dst, parameters=None, **kwargs):
        nb = nbformat.read(src, as_version=4)
        nb.cells[1].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
        nbformat.write(nb, dst)

    monkeypatch.setattr(papermill, "execute_notebook", execute_with_error_output)
    with pytest.raises(book.BookError, match="ValueError: bad"):
        book.execute(root, "page", "smoke", log=lambda *_: None)
    assert not (root / "book" / "nb" / "page.ipynb").exists()


def test_two_builds_of_one_checkout_execute_a_page_once(repo, monkeypatch):
    # two builds at once (threads here; the lock is an flock on its own open file, so it also holds between
    # threads): the second waits for the first's execution and then finds the page up to date
    import threading
    import time

    import papermill

    root, runs = repo
    inner = papermill.execute_notebook
    inside = []

    def slow_execute(src, dst, parameters=None, **kwargs):
        inside.append(1)
        assert len(inside) == 1, "two executions of one page overlapped"
        time.sleep(0.3)
        inner(src, dst, parameters=parameters, **kwargs)
        inside.pop()

    monkeypatch.setattr(papermill, "execute_notebook", slow_execute)
    results, logs = [], []
    threads = [threading.Thread(target=lambda: results.append(book.execute(root, "page", "smoke", log=logs.append)))
               for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(results) == [False, True] and len(runs) == 1
    assert json.loads((root / book.MANIFEST).read_text())["page"]
