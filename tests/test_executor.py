"""What the runner checks is what the kernel gets: papermill writes a page's parameters as Python source, and the
executor's translator writes every value so that it reads back equal and of the same type (papermill's own writes
every mapping key as a string, so `seeds_at_ipc: {1: 3}` reached the kernel as `{"1": 3}` and failed its check)."""
import ast

import nbformat
import pytest

from dscore import book
from dscore.book.executor import _literal_translator, execute_notebook
from dscore.book.params import load_params, notebook_names
from dscore.paths import repo_root


def _read_back(source: str) -> dict:
    values = {}
    for node in ast.parse(source).body:
        values[node.targets[0].id] = ast.literal_eval(node.value)
    return values


def _same(a, b) -> bool:
    if type(a) is not type(b) and not (isinstance(a, (int, float)) and isinstance(b, (int, float))
                                       and not isinstance(a, bool) and not isinstance(b, bool)):
        return False
    if isinstance(a, dict):
        return list(a) == list(b) and all(type(k) is type(j) for k, j in zip(a, b)) and all(_same(a[k], b[k]) for k in a)
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(_same(x, y) for x, y in zip(a, b))
    return a == b


@pytest.mark.parametrize("profile", book.PROFILES)
def test_every_page_parameter_reads_back_in_the_kernel_as_checked(profile):
    root = repo_root()
    translator = _literal_translator()
    for page in notebook_names(root):
        params = load_params(root, profile, page)
        back = _read_back(translator.codify(params))
        for key, value in params.items():
            assert _same(value, back[key]), (profile, page, key, value, back[key])


def test_integer_keys_reach_the_kernel_as_integers(tmp_path):
    nb = nbformat.v4.new_notebook()
    cell = nbformat.v4.new_code_cell("caps = {}")
    cell.metadata["tags"] = ["parameters"]
    nb.cells = [cell, nbformat.v4.new_code_cell("assert caps == {1: 3} and all(type(k) is int for k in caps), caps")]
    nb.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3", "language": "python"}
    src = tmp_path / "page.ipynb"
    nbformat.write(nb, src)
    execute_notebook(src, tmp_path / "out.ipynb", {"caps": {1: 3}}, cwd=tmp_path, timeout=60, log_output=False)
