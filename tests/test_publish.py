"""`make publish REMOTE=...`: the built book goes onto the remote's gh-pages branch, or nothing is pushed."""
import subprocess

import nbformat
import pytest

from dscore.book import BookError
from dscore.book.publish import check_publishable, publish


def _tree(root, *, error=False):
    """A built book of two pages: the root document and one executed notebook."""
    (root / "book" / "nb").mkdir(parents=True)
    (root / "notebooks").mkdir()
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/nb/page\n")
    nb = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell("x = 1", metadata={"tags": ["parameters"]})])
    nbformat.write(nb, root / "notebooks" / "page.ipynb")
    if error:
        nb.cells[0].outputs = [nbformat.v4.new_output("error", ename="ValueError", evalue="bad", traceback=[])]
    nbformat.write(nb, root / "book" / "nb" / "page.ipynb")
    html = root / "_build" / "html"
    (html / "book" / "nb").mkdir(parents=True)
    (html / "_static").mkdir()
    for page in ("index.html", "book/intro.html", "book/nb/page.html"):
        (html / page).write_text("<html>page</html>")
    (html / "_static" / "style.css").write_text("body {}")
    return root


def _bare(tmp_path):
    remote = tmp_path / "remote.git"
    subprocess.run(["git", "init", "-q", "--bare", str(remote)], check=True)
    return remote


def _branch_files(remote, branch="gh-pages"):
    out = subprocess.run(["git", "--git-dir", str(remote), "ls-tree", "-r", "--name-only", branch],
                         check=True, capture_output=True, text=True)
    return set(out.stdout.split())


def test_publish_pushes_every_page_and_nojekyll_to_gh_pages(tmp_path):
    root, remote = _tree(tmp_path / "repo"), _bare(tmp_path)
    publish(root, str(remote), log=lambda *_: None)
    assert _branch_files(remote) == {".nojekyll", "index.html", "book/intro.html", "book/nb/page.html",
                                     "_static/style.css"}
    (root / "_build" / "html" / "book" / "nb" / "page.html").write_text("<html>again</html>")
    publish(root, str(remote), log=lambda *_: None)                    # a second publish replaces the branch
    shown = subprocess.run(["git", "--git-dir", str(remote), "show", "gh-pages:book/nb/page.html"],
                           check=True, capture_output=True, text=True).stdout
    assert shown == "<html>again</html>"
    # the checkout's own repository is never touched: publishing ran in a temporary one
    assert not (root / ".git").exists()


@pytest.mark.parametrize("breakage, message", [
    ("error", "has error outputs"),
    ("missing", "book/nb/page.html is missing"),
    ("incomplete", "did not finish"),
    ("unbuilt", "no built book"),
])
def test_publish_refuses_a_broken_book_and_pushes_nothing(tmp_path, breakage, message):
    root, remote = _tree(tmp_path / "repo", error=breakage == "error"), _bare(tmp_path)
    html = root / "_build" / "html"
    if breakage == "missing":
        (html / "book" / "nb" / "page.html").unlink()
    if breakage == "incomplete":
        (root / "_build" / ".html-incomplete").write_text("started")
    if breakage == "unbuilt":
        (html / "index.html").unlink()
    with pytest.raises(BookError, match=message):
        publish(root, str(remote), log=lambda *_: None)
    heads = subprocess.run(["git", "--git-dir", str(remote), "branch", "--list"], capture_output=True, text=True)
    assert heads.stdout.strip() == ""


def test_check_publishable_lists_the_pages_index_first(tmp_path):
    root = _tree(tmp_path / "repo")
    pages = check_publishable(root)
    assert [p.relative_to(root / "_build" / "html").as_posix() for p in pages] == [
        "index.html", "book/intro.html", "book/nb/page.html"]
