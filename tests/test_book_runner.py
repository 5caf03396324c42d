"""The papermill runner's bookkeeping, with papermill replaced by a copy (fast, no kernel)."""
import json
import os
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
    monkeypatch.setattr(book.executor, "kernel_name", lambda **kw: "python3")
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


def _make_chapter(root):
    """Turn the toy repo into one chapter (``overview_ch``) with the section ``page`` and a shared setup file."""
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/nb/overview_ch\n"
                                   "    sections:\n      - file: book/nb/page\n")
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell('profile = "smoke"\npages_dir = "."')
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell]
    nbformat.write(nb, root / "notebooks" / "overview_ch.ipynb")
    nb = nbformat.read(root / "notebooks" / "page.ipynb", as_version=4)
    nb.cells[0].source = 'profile = "smoke"\nepochs = 1\nwidth = 8\nseeds = [0]'
    nbformat.write(nb, root / "notebooks" / "page.ipynb")
    for profile in book.PROFILES:
        (root / "params" / profile / "overview_ch.yaml").write_text("")
        (root / "params" / profile / "_ch.yaml").write_text("epochs: 5\nwidth: 16\n")


def test_a_chapter_page_reads_the_shared_setup_under_its_own_file(repo):
    root, runs = repo
    _make_chapter(root)
    assert book.chapter_of(root, "page") == "overview_ch" and book.chapter_of(root, "overview_ch") is None
    assert book.shared_params_path(root, "smoke", "overview_ch") == root / "params" / "smoke" / "_ch.yaml"
    # the page's own value wins over the shared one; shared keys the page does not set come through
    assert book.load_params(root, "smoke", "page") == {"epochs": 1, "width": 16, "profile": "smoke"}
    assert book.params_source(root, "smoke", "page") == "params/smoke/_ch.yaml + params/smoke/page.yaml"
    (root / "params" / "smoke" / "page.yaml").write_text("seeds: [0, 1]\n")
    assert book.load_params(root, "smoke", "page") == {"epochs": 5, "width": 16, "seeds": [0, 1], "profile": "smoke"}
    # editing the shared file re-executes the page
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is True
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is False
    (root / "params" / "smoke" / "_ch.yaml").write_text("epochs: 6\nwidth: 16\n")
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is True
    assert runs[-1]["epochs"] == 6
    # the chapter notebook itself does not read the shared setup
    assert book.load_params(root, "smoke", "overview_ch") == {"profile": "smoke", "pages_dir": "../book/nb"}


def test_a_shared_key_the_page_does_not_declare_is_named(repo):
    root, _ = repo
    _make_chapter(root)
    (root / "params" / "smoke" / "_ch.yaml").write_text("epochs: 5\nlr: 0.1\n")
    with pytest.raises(book.BookError, match=r"params/smoke/_ch.yaml: \['lr'\] not declared .*notebooks/page.ipynb"):
        book.load_params(root, "smoke", "page")


def test_the_injected_parameters_cell_is_collapsed_in_the_book(repo, monkeypatch):
    import papermill

    root, _ = repo

    def inject(src, dst, parameters=None, **kwargs):         # what papermill writes: a tagged cell after the parameters
        nb = nbformat.read(src, as_version=4)
        cell = nbformat.v4.new_code_cell(f"epochs = {parameters['epochs']}")
        cell.metadata["tags"] = ["injected-parameters"]
        nb.cells.insert(1, cell)
        nbformat.write(nb, dst)

    monkeypatch.setattr(papermill, "execute_notebook", inject)
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is True
    out = nbformat.read(root / "book" / "nb" / "page.ipynb", as_version=4)
    code = [c for c in out.cells if c.cell_type == "code"]
    assert code[1].metadata["tags"] == ["injected-parameters", "hide-cell"]
    assert code[0].metadata["tags"] == ["parameters"] and "tags" not in code[2].metadata
    # the executed page says how to open it where the reader works (the source notebook stays as it was)
    launch = [c for c in out.cells if "dscore-launch" in c.metadata.get("tags", [])]
    assert len(launch) == 1 and "python -m dscore.book run page --profile smoke" in launch[0].source
    assert "dscore-launch" not in (root / "notebooks" / "page.ipynb").read_text()


def test_the_executor_environment_is_restored_also_on_error(monkeypatch):
    from dscore.book.executor import environment

    monkeypatch.setenv("DSCORE_T_KEEP", "old")
    monkeypatch.delenv("DSCORE_T_NEW", raising=False)
    with pytest.raises(RuntimeError):
        with environment({"DSCORE_T_KEEP": None, "DSCORE_T_NEW": "new"}):
            assert "DSCORE_T_KEEP" not in os.environ and os.environ["DSCORE_T_NEW"] == "new"
            raise RuntimeError("inside")
    assert os.environ["DSCORE_T_KEEP"] == "old" and "DSCORE_T_NEW" not in os.environ


def test_dry_run_reaches_only_a_page_that_declares_it_and_a_normal_run_follows(repo):
    root, runs = repo
    quiet = dict(log=lambda *_: None)
    assert book.execute(root, "page", "smoke", dry_run=True, **quiet) is True
    assert "dry_run" not in runs[-1]                                  # the page does not declare it
    path = root / "notebooks" / "page.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\ndry_run = False"
    nbformat.write(nb, path)
    assert book.execute(root, "page", "smoke", dry_run=True, **quiet) is True
    assert runs[-1] == {"epochs": 1, "profile": "smoke", "dry_run": True}
    assert book.execute(root, "page", "smoke", dry_run=True, **quiet) is False       # up to date as a dry run
    assert book.execute(root, "page", "smoke", **quiet) is True                      # a real run replaces it
    assert "dry_run" not in runs[-1]


def test_dry_values_keep_the_first_seed_ratio_or_ipc_and_every_method():
    params = {"seeds": [3, 4], "context_seeds": [3, 4], "ratios": [0.1, 0.2], "tiny_ipcs": [1, 10], "betas": [0, 1, 2],
              "dream_cells": [[1], [2], [3]], "methods": ["a", "b"], "archs": {"x": {}, "y": {}}, "ipc": 10,
              "lengths": [5, 10, 20]}
    got = book.dry_values(params)
    assert got == {**params, "seeds": [3], "context_seeds": [3], "ratios": [0.1], "tiny_ipcs": [1], "betas": [0, 1],
                   "dream_cells": [[1], [2]], "lengths": [5, 10]}
    assert params["seeds"] == [3, 4]                                    # the caller's values are not changed


def test_a_dry_run_trims_the_page_list_parameters(repo):
    root, runs = repo
    path = root / "notebooks" / "page.ipynb"
    nb = nbformat.read(path, as_version=4)
    nb.cells[0].source += "\nseeds = [0]\ndry_run = False"
    nbformat.write(nb, path)
    (root / "params" / "smoke" / "page.yaml").write_text("epochs: 1\nseeds: [0, 1, 2]\n")
    assert book.execute(root, "page", "smoke", dry_run=True, log=lambda *_: None) is True
    assert runs[-1] == {"epochs": 1, "seeds": [0], "profile": "smoke", "dry_run": True}
    assert book.execute(root, "page", "smoke", log=lambda *_: None) is True
    assert runs[-1]["seeds"] == [0, 1, 2]


def test_a_build_override_no_page_declares_is_refused_before_any_work(repo, monkeypatch):
    from dscore.book import runner
    from dscore.paths import repo_root

    monkeypatch.setattr(runner, "execute", lambda *a, **k: pytest.fail("a page ran"))
    with pytest.raises(book.BookError, match=r"-p no_such_key: not a parameter of any page"):
        book.build(repo_root(), "smoke", only=["tour", "adq_main"], html=False, pairs=[("no_such_key", "1")],
                   log=lambda *_: None)
    seen = {}
    monkeypatch.setattr(runner, "execute", lambda root, name, profile, **k: seen.update({name: k["overrides"]}))
    monkeypatch.setattr(runner, "write_timings_page", lambda *a, **k: None)
    book.build(repo_root(), "smoke", only=["tour", "adq_main", "overview_adq"], html=False,
               pairs=[("dataset", "digits"), ("evaluation.epochs", "3")], log=lambda *_: None)
    assert seen["tour"] == {"dataset": "digits"}                         # tour has no `evaluation`
    assert seen["adq_main"] == {"dataset": "digits", "evaluation": {"epochs": 3}}
    assert seen["overview_adq"] is None
