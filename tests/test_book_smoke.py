"""Smoke build of the whole book: every notebook executed with the smoke profile, then rendered to HTML.

The build is the one a user gets after killing ``make book`` twice and starting it again each time: in a
fresh cache, it is SIGKILLed from inside a notebook's kernel right after the book's first distillation
checkpoint (the hook of tests/killhook, the whole build's process group), then again while Jupyter
Book writes the HTML pages, and the third start finishes it. Every test here checks that book — built
once per session and shared with tests/test_html.py — and the killed page is compared with an
uninterrupted execution of it in another fresh cache.
"""
import json
import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import nbformat
import pytest
import torch
import yaml

from dscore import book
from dscore.paths import repo_root
from killhook import KILL_ENV, KILL_GROUP_ENV, armed

ROOT = repo_root()

# `make book` for a book tree (argv[1]): a killable process group whose notebook kernels inherit the kill hook.
BUILD = """
import os, sys
from pathlib import Path
if os.environ.get({kill!r}):
    os.environ[{group!r}] = str(os.getpgid(0))    # the kernel kills this whole build, not only itself
from dscore import book
only = sys.argv[3:] or None
book.build(Path(sys.argv[1]), "smoke", only=only, html=sys.argv[2] == "html")
""".format(kill=KILL_ENV, group=KILL_GROUP_ENV)


def copy_tree(dest: Path) -> Path:
    """The files a book build needs, copied into ``dest`` (the build writes into its tree)."""
    dest.mkdir(parents=True)
    for name in ("_config.yml", "_toc.yml"):
        shutil.copy(ROOT / name, dest / name)
    for folder in ("notebooks", "params", "dscore", "_static"):
        shutil.copytree(ROOT / folder, dest / folder, ignore=shutil.ignore_patterns("__pycache__", ".ipynb_checkpoints"))
    shutil.copytree(ROOT / "book", dest / "book", ignore=shutil.ignore_patterns("nb"))
    return dest


def run_build(root: Path, cache: Path, log: Path, *, html: bool = True, only=(), kill_at: str | None = None,
              kill_when=None, timeout: float = 3600) -> int:
    """Run a smoke build of ``root`` in a subprocess (its own process group) with ``$DSCORE_CACHE=cache``.

    ``kill_at``: the kill hook's ``<label>:<n>``. ``kill_when``: a predicate polled while the build runs;
    once true, the build's process group is SIGKILLed. Returns the exit status (−9: killed)."""
    env = armed({**os.environ, "DSCORE_CACHE": str(cache)}, kill_at)
    with open(log, "a") as out:
        proc = subprocess.Popen([sys.executable, "-c", BUILD, str(root), "html" if html else "no-html", *only],
                                cwd=root, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while proc.poll() is None:
                if kill_when is not None and kill_when():
                    os.killpg(proc.pid, signal.SIGKILL)
                    break
                if time.monotonic() > deadline:
                    raise TimeoutError(f"the book build ran past {timeout} s; log: {log}")
                time.sleep(0.05)
            return proc.wait(timeout=60)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


def executed_pages(root: Path) -> dict[str, Path]:
    return {p.stem: p for p in (root / book.OUTPUT_DIR).glob("*.ipynb") if not p.stem.endswith(".failed")}


def assert_pages_intact(root: Path) -> None:
    """Every executed page in the book is a complete, valid notebook without error outputs."""
    for name, path in executed_pages(root).items():
        nb = nbformat.read(path, as_version=4)
        nbformat.validate(nb)
        assert book.error_outputs(path) == [], name


def first_html_page(root: Path) -> Path:
    """The page Jupyter Book writes first (Sphinx writes in document-name order)."""
    toc = yaml.safe_load((root / "_toc.yml").read_text())
    docs = [toc["root"]] + re.findall(r"file: *(\S+)", (root / "_toc.yml").read_text())
    return root / "_build" / "html" / f"{sorted(docs)[0]}.html"


def build_killed_and_resumed(root: Path, cache: Path, log: Path) -> dict:
    """Build the book tree ``root`` as described in the module docstring; returns what the tests check."""
    info: dict = {"root": root, "cache": cache, "log": log}
    # 1. killed inside a notebook: the kernel dies right after the book's first distillation checkpoint,
    #    taking the build with it
    assert run_build(root, cache, log, kill_at="distill_checkpoint:1") == -signal.SIGKILL, log.read_text()[-3000:]
    partial = sorted((root / book.OUTPUT_DIR / ".partial").glob("*.ipynb"))
    assert len(partial) == 1, partial
    info["killed_page"] = killed = partial[0].stem
    done_before = set(executed_pages(root))
    manifest = json.loads((root / book.MANIFEST).read_text()) if (root / book.MANIFEST).exists() else {}
    assert killed not in done_before and killed not in manifest and done_before <= set(manifest)
    assert list((cache / "distill_run" / "partial").glob("*.pt")), "the kill should follow a checkpoint"
    assert_pages_intact(root)
    # 2. started again, killed once Jupyter Book has begun writing the HTML pages
    first = first_html_page(root)
    assert run_build(root, cache, log, kill_when=first.exists) == -signal.SIGKILL, log.read_text()[-3000:]
    assert (root / book.HTML_INCOMPLETE).exists()
    assert_pages_intact(root)
    # 3. started again: every notebook is up to date, and the HTML is rendered afresh
    start = log.stat().st_size
    assert run_build(root, cache, log) == 0, log.read_text()[-3000:]
    info["final_log"] = log.read_bytes()[start:].decode("utf-8", "replace")    # start is a byte offset
    info["index"] = root / "_build" / "html" / "index.html"
    return info


_BUILT: dict = {}


def smoke_book(tmp_path_factory) -> dict:
    """The smoke book, built (killed twice and resumed) once per test session; also used by tests/test_html.py."""
    if "book" not in _BUILT:
        if "error" in _BUILT:
            pytest.fail(f"the smoke book build failed earlier in this session: {_BUILT['error']}")
        try:
            base = tmp_path_factory.mktemp("book")
            _BUILT["book"] = build_killed_and_resumed(copy_tree(base / "repo"), base / "cache", base / "build.log")
        except BaseException as exc:
            _BUILT["error"] = repr(exc)[:2000]
            raise
    return _BUILT["book"]


@pytest.fixture(scope="module")
def built_book(tmp_path_factory):
    return smoke_book(tmp_path_factory)


@pytest.mark.book
@pytest.mark.slow
def test_smoke_book_builds_to_html(built_book):
    root, index = built_book["root"], built_book["index"]
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
    root = built_book["root"]
    logs = []
    for name in book.notebook_names(root):
        assert book.execute(root, name, "smoke", log=logs.append) is False
    assert all("up to date" in line for line in logs)


@pytest.mark.book
@pytest.mark.slow
def test_the_killed_build_resumed_without_half_written_files(built_book):
    root, cache, log = built_book["root"], built_book["cache"], built_book["final_log"]
    # the last start executed nothing and re-rendered every page (the killed HTML build left its marker)
    assert "executing with" not in log and "--all" in log
    assert not (root / book.HTML_INCOMPLETE).exists()
    assert not list((root / book.OUTPUT_DIR / ".partial").glob("*.ipynb"))
    assert_pages_intact(root)
    # every page the killed HTML build may have cut short is complete now (the book's own pages: index.html is a
    # one-line redirect and _static holds template fragments)
    toc_text = (root / "_toc.yml").read_text()
    docs = [yaml.safe_load(toc_text)["root"]] + re.findall(r"file: *(\S+)", toc_text)
    for doc in docs:
        page = root / "_build" / "html" / f"{doc}.html"
        assert page.read_text().rstrip().endswith("</html>"), page
    # the cache holds no half-written artefact and no distillation checkpoint (each run finished)
    for path in cache.rglob("*.pt"):
        if not path.name.startswith("."):
            torch.load(path, map_location="cpu", weights_only=True)
    assert not list((cache / "distill_run" / "partial").glob("*.pt"))


def page_results(path: Path) -> dict:
    """What a page reports: its glued values (wall times left out) and the plain text of its tables."""
    nb = nbformat.read(path, as_version=4)
    glued, tables = {}, []
    for cell in nb.cells:
        for out in cell.get("outputs", []) if cell.cell_type == "code" else []:
            record = out.get("metadata", {}).get("scrapbook")
            if record:
                if "second" not in record["name"] and "time" not in record["name"]:
                    glued[record["name"]] = dict(out["data"])
            elif out.get("output_type") == "execute_result" and "text/html" in out.get("data", {}):
                tables.append(out["data"]["text/plain"])
    return {"glue": glued, "tables": tables}


@pytest.mark.book
@pytest.mark.slow
def test_the_killed_page_equals_an_uninterrupted_run(built_book, tmp_path):
    killed = built_book["killed_page"]
    ref = copy_tree(tmp_path / "repo")
    assert run_build(ref, tmp_path / "cache", tmp_path / "build.log", html=False, only=[killed]) == 0, \
        (tmp_path / "build.log").read_text()[-3000:]
    ours = page_results(built_book["root"] / book.OUTPUT_DIR / f"{killed}.ipynb")
    reference = page_results(ref / book.OUTPUT_DIR / f"{killed}.ipynb")
    assert ours["glue"] and ours["tables"]
    assert ours == reference


@pytest.mark.book
@pytest.mark.slow
def test_the_built_smoke_book_publishes_to_a_bare_repository(built_book, tmp_path):
    from dscore.book.params import toc_files
    from dscore.book.publish import publish

    root = built_book["root"]
    remote = tmp_path / "pages.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    publish(root, str(remote), log=lambda *_: None)
    listed = subprocess.run(["git", "--git-dir", str(remote), "ls-tree", "-r", "--name-only", "gh-pages"],
                            check=True, capture_output=True, text=True).stdout.split()
    assert {"index.html", ".nojekyll"} <= set(listed)
    assert {f"{doc}.html" for doc in toc_files(root)} <= set(listed)
