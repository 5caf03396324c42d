"""``make gpu-check``: the table's logic on constructed numbers, and the whole check on this machine (the GPU half
skipped, saying so, where there is no CUDA)."""
import pytest
import torch

from dscore.book import gpucheck
from dscore.paths import repo_root


@pytest.mark.parametrize("kind, cpu, gpu, tol, agree", [
    ("abs", 1.00, 1.04, 0.05, True), ("abs", 1.00, 1.10, 0.05, False),
    ("rel", 100.0, 100.05, 1e-3, True), ("rel", 100.0, 100.5, 1e-3, False),
    ("abs", 1.00, float("nan"), 0.05, False),
])
def test_numbers_agree_within_the_stated_tolerance(kind, cpu, gpu, tol, agree):
    assert gpucheck.compare(kind, cpu, gpu, tol)[3] is agree


def test_selections_agree_by_their_overlap():
    a, b = torch.arange(100), torch.cat([torch.arange(96), torch.arange(200, 204)])
    _, share, diff, ok = gpucheck.compare("overlap", a, b, 0.95)
    assert share == pytest.approx(0.96) and diff == pytest.approx(0.04) and ok
    assert not gpucheck.compare("overlap", a, b, 0.97)[3]


def test_the_table_has_one_line_per_row_and_every_column():
    rows = [{"part": "engine", "check": "x", "cpu": 1.23456, "result": gpucheck.NO_CUDA},
            {"part": "page", "check": "p", "cuda s": 3.0, "result": "ran"}]
    lines = gpucheck.format_table(rows).splitlines()
    assert len(lines) == 4 and all(c in lines[0] for c in gpucheck.COLUMNS)
    assert "1.235" in lines[2] and gpucheck.NO_CUDA in lines[2] and "ran" in lines[3]


@pytest.mark.slow
def test_the_gpu_check_runs_here_and_says_what_it_skipped(tmp_path, monkeypatch):
    from dscore import data

    try:
        data.load_dataset("fashion_mnist", "test", download=False, progress=False)
    except data.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed here")
    monkeypatch.setenv("DSCORE_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DSCORE_PAGE_FILES", str(tmp_path / "files"))
    root = repo_root()
    from test_book_smoke import copy_tree

    tree = copy_tree(tmp_path / "tree")
    rows, ok = gpucheck.run_check(tree, page="dream_interval", log=lambda *_: None)
    assert ok, gpucheck.format_table(rows)
    checks = [r["check"] for r in rows]
    assert all(name in checks for name in gpucheck.ENGINE_CHECKS)
    assert rows[-1]["part"] == "page" and rows[-1]["result"].startswith("ran"), rows[-1]
    assert (tree / "book" / "nb" / "dream_interval.ipynb").exists() and root != tree
    engine = [r for r in rows if r["part"] == "engine"]
    assert all(isinstance(r["cpu"], float) and r["cpu"] == r["cpu"] for r in engine)
    if not torch.cuda.is_available():
        assert all(r["result"] == gpucheck.NO_CUDA for r in engine)
        assert any(r.get("result") == gpucheck.NO_CUDA for r in rows if r["part"] == "benchmark")
