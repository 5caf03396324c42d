"""`torchrun --nproc_per_node=2 -m dscore.book prefill`: two gloo processes fill the cache with a page's artefacts,
each computed once; executing the page afterwards computes nothing and gives the numbers of one process alone."""
import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dscore import book
from dscore.book.prefill import read_cache_log, summarise_log

# A page in the shape of the book's: literal parameters, one call into dscore per cell of work. A shared upstream
# artefact (every cell needs it, as every evaluation needs the features) and cells that take a while each.
PAGE = '''
import json, time
import torch
from dscore.cache import ArtifactCache
from dscore.cluster import kmeans
from dscore.distributed import ordered_map

store = ArtifactCache()

def make_base():
    time.sleep(0.5)
    return {"x": torch.randn(n, 4, generator=torch.Generator().manual_seed(0))}

base = store.get_or_compute("toy_base", {"n": n}, make_base)["x"]

def cell(seed):
    def compute():
        time.sleep(0.5)
        centroids, labels = kmeans(base, 3, seed=seed)
        return {"centroids": centroids, "labels": labels}
    return float(store.get_or_compute("toy_cell", {"n": n, "seed": seed}, compute)["centroids"].sum())

values = ordered_map(cell, seeds, progress=False)
print("RESULT " + json.dumps(values))
'''


def make_one_page_repo(root: Path, page: str = PAGE, metadata: dict | None = None) -> None:
    """A checkout with one notebook ``toy`` (parameters n and seeds, six seeds in every profile) whose code cell is
    ``page``; ``metadata`` becomes its ``"dscore"`` notebook metadata."""
    (root / "notebooks").mkdir(parents=True)
    (root / "dscore").mkdir()
    (root / "_toc.yml").write_text("format: jb-book\nroot: book/intro\nchapters:\n  - file: book/nb/toy\n")
    nb = nbformat.v4.new_notebook()
    nb.metadata = {"kernelspec": {"name": "python3", "display_name": "Python 3", "language": "python"},
                   "language_info": {"name": "python"}, **({"dscore": metadata} if metadata else {})}
    params = nbformat.v4.new_code_cell('profile = "smoke"\nn = 60\nseeds = [0]')
    params.metadata["tags"] = ["parameters"]
    nb.cells = [params, nbformat.v4.new_code_cell(page)]
    nbformat.write(nb, root / "notebooks" / "toy.ipynb")
    for profile in book.PROFILES:
        (root / "params" / profile).mkdir(parents=True)
        (root / "params" / profile / "toy.yaml").write_text("n: 60\nseeds: [0, 1, 2, 3, 4, 5]\n")


def _result(notebook: Path) -> list[float]:
    nb = nbformat.read(notebook, as_version=4)
    for c in nb.cells:
        for o in c.get("outputs", []):
            for line in o.get("text", "").splitlines():
                if line.startswith("RESULT "):
                    return json.loads(line[len("RESULT "):])
    raise AssertionError(f"no RESULT line in {notebook}")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.skipif(shutil.which("torchrun", path=str(Path(sys.executable).parent)) is None,
                    reason="torchrun is not installed beside this python")
def test_prefill_with_two_gloo_processes_then_the_page_only_loads(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    make_one_page_repo(root)
    shared, alone = tmp_path / "shared-cache", tmp_path / "alone-cache"
    env = {**os.environ, "DSCORE_CACHE": str(shared), "OMP_NUM_THREADS": "1"}
    env.pop("DSCORE_CACHE_LOG", None)
    torchrun = str(Path(sys.executable).parent / "torchrun")
    proc = subprocess.run([torchrun, "--nproc_per_node=2", "--master_addr=127.0.0.1", f"--master_port={_free_port()}",
                           "-m", "dscore.book", "prefill", "toy", "--profile", "smoke", "--root", str(root)],
                          env=env, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "done (2 processes)" in proc.stdout

    logs = [read_cache_log(root / "book" / "nb" / ".prefill" / f"rank{r}" / "toy.cache.jsonl") for r in range(2)]
    computed = [r["key"] for log in logs for r in log if r["computed"]]
    assert len(computed) == 7 and len(set(computed)) == 7          # the base and six cells, each exactly once
    assert all(summarise_log(log)["requests"] == 7 for log in logs)  # every rank saw every artefact
    per_rank = [_result(root / "book" / "nb" / ".prefill" / f"rank{r}" / "toy.ipynb") for r in range(2)]
    assert per_rank[0] == per_rank[1]

    # the book now only renders from the cache: zero recomputations …
    monkeypatch.setenv("DSCORE_CACHE", str(shared))
    monkeypatch.setenv("DSCORE_CACHE_LOG", str(tmp_path / "render.jsonl"))
    book.execute(root, "toy", "smoke", force=True, log=lambda *_: None)
    render = summarise_log(read_cache_log(tmp_path / "render.jsonl"))
    assert render["requests"] == 7 and render["computed"] == 0
    after = _result(root / "book" / "nb" / "toy.ipynb")

    # … and the numbers of one process computing everything itself
    monkeypatch.setenv("DSCORE_CACHE", str(alone))
    monkeypatch.setenv("DSCORE_CACHE_LOG", str(tmp_path / "alone.jsonl"))
    book.execute(root, "toy", "smoke", force=True, log=lambda *_: None)
    assert summarise_log(read_cache_log(tmp_path / "alone.jsonl"))["computed"] == 7
    assert _result(root / "book" / "nb" / "toy.ipynb") == after == per_rank[0]


def test_prefill_checks_pages_and_ranks_before_any_work(tmp_path):
    from dscore.book.prefill import prefill

    root = tmp_path / "repo"
    make_one_page_repo(root)
    with pytest.raises(ValueError, match="unknown page"):
        prefill(["nope"], "smoke", root=root)
    with pytest.raises(ValueError, match="rank"):
        prefill(["toy"], "smoke", rank=2, world=2, root=root)
    with pytest.raises(ValueError, match="profile"):
        prefill(["toy"], "huge", root=root)
