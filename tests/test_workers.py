"""A page executed by several kernels (dscore.book.workers, --workers N): helpers compute their share of the page's
cells, every artefact once, and the page's numbers are those of one kernel with one thread."""
import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat
import pytest

from dscore import book
from dscore.book import workers as bw
from dscore.book.prefill import read_cache_log
from test_prefill import make_one_page_repo

# Six cells that each take a while; each records the process that computed it, and the page prints its kernel's
# intra-op thread count. The numbers come from a small training run, so a change of thread count or of the order of
# floating-point reductions would show.
PAGE = '''
import json, os, time
import torch
from dscore.cache import ArtifactCache
from dscore.distributed import ordered_map
from dscore.models import create_model
from dscore.train import train_model

store = ArtifactCache()

def cell(seed):
    def compute():
        time.sleep(1.0)
        g = torch.Generator().manual_seed(seed)
        x, y = torch.rand(64, 1, 16, 16, generator=g), torch.arange(4).repeat(16)
        net = create_model("convnet3", num_classes=4, in_channels=1, image_size=16, width=8, seed=seed)
        r = train_model(net, x, y, {"epochs": 3, "batch_size": 16, "lr": 0.05}, test=(x, y), seed=seed,
                        progress=False)
        return {"acc": r.final_test_acc, "w": float(net.fc.weight.double().sum()), "pid": os.getpid()}
    return store.get_or_compute("toy_cell", {"n": n, "seed": seed}, compute)

values = ordered_map(cell, seeds, progress=False)
print("RESULT " + json.dumps({"values": [[v["acc"], v["w"]] for v in values], "pids": [v["pid"] for v in values],
                              "threads": torch.get_num_threads()}))
'''


def _result(root: Path) -> dict:
    nb = nbformat.read(root / "book" / "nb" / "toy.ipynb", as_version=4)
    for c in nb.cells:
        for o in c.get("outputs", []):
            for line in o.get("text", "").splitlines():
                if line.startswith("RESULT "):
                    return json.loads(line[len("RESULT "):])
    raise AssertionError("no RESULT line in the executed page")


def _build(root: Path, cache: Path, log: Path, monkeypatch, workers: int) -> tuple[dict, list[dict]]:
    monkeypatch.setenv("DSCORE_CACHE", str(cache))
    monkeypatch.setenv("DSCORE_CACHE_LOG", str(log))
    monkeypatch.setattr(bw, "has_cuda", lambda: False)          # the CPU build's policy, also on a GPU machine
    book.execute(root, "toy", "smoke", force=True, workers=workers, log=lambda *_: None)
    return _result(root), read_cache_log(log)


@pytest.mark.slow
def test_two_kernels_share_a_page_and_give_the_numbers_of_one(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    make_one_page_repo(root, PAGE)
    two, two_log = _build(root, tmp_path / "two", tmp_path / "two.jsonl", monkeypatch, workers=2)
    computed = [r for r in two_log if r["computed"]]
    assert len(computed) == 6 and len({r["key"] for r in computed}) == 6      # every cell once
    assert len(set(two["pids"])) == 2                                          # … by two kernels
    assert two["threads"] == 1
    assert not (root / bw.HELPERS_DIR / "toy").exists()                        # the helper's copy is gone

    monkeypatch.setenv("OMP_NUM_THREADS", "1")                                 # one kernel with one thread …
    one, one_log = _build(root, tmp_path / "one", tmp_path / "one.jsonl", monkeypatch, workers=1)
    assert len(set(one["pids"])) == 1 and one["threads"] == 1
    assert one["values"] == two["values"]                                      # … gives the same numbers, bit for bit
    three, _ = _build(root, tmp_path / "three", tmp_path / "three.jsonl", monkeypatch, workers=3)
    assert three["values"] == two["values"]


@pytest.mark.slow
def test_a_page_that_runs_alone_gets_one_kernel_and_may_keep_torchs_threads(tmp_path, monkeypatch):
    root = tmp_path / "repo"
    make_one_page_repo(root, PAGE, metadata={"alone": True, "threads": "torch"})
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    monkeypatch.delenv("MKL_NUM_THREADS", raising=False)
    result, log = _build(root, tmp_path / "c", tmp_path / "c.jsonl", monkeypatch, workers=2)
    assert len(set(result["pids"])) == 1
    own = subprocess.run([sys.executable, "-c", "import torch; print(torch.get_num_threads())"], env=dict(os.environ),
                         capture_output=True, text=True, check=True)
    assert result["threads"] == int(own.stdout)                                 # torch's own count, not one


def test_kernel_env_and_page_policy(tmp_path):
    assert bw.kernel_env(0, 1, cpu=True) == {} == bw.kernel_env(0, 1, cpu=False)   # one kernel: as before
    assert bw.kernel_env(0, 2, cpu=False) == {"DSCORE_WORK_RANK": "0", "DSCORE_WORK_WORLD": "2"}
    env = bw.kernel_env(1, 3, cpu=True)
    assert env["DSCORE_WORK_RANK"] == "1" and env["DSCORE_WORK_WORLD"] == "3" and env["OMP_NUM_THREADS"] == "1"
    with pytest.raises(ValueError, match="rank"):
        bw.kernel_env(3, 3, cpu=True)
    with pytest.raises(ValueError, match="workers"):
        bw.kernel_env(0, 0, cpu=True)

    nb = nbformat.v4.new_notebook()
    path = tmp_path / "p.ipynb"
    for meta, expected in (({}, (False, False)), ({"alone": True}, (True, False)),
                           ({"alone": True, "threads": "torch"}, (True, True))):
        nb.metadata = {"dscore": meta}
        nbformat.write(nb, path)
        assert bw.page_policy(path) == expected
    for bad in ({"alone": "yes"}, {"threads": "two"}, {"kernels": 2}):
        nb.metadata = {"dscore": bad}
        nbformat.write(nb, path)
        with pytest.raises(ValueError, match="dscore"):
            bw.page_policy(path)


def test_the_books_pages_declare_a_valid_policy_and_the_benchmarks_keep_torchs_threads():
    root = Path(__file__).resolve().parents[1]
    policies = {p.stem: bw.page_policy(p) for p in sorted((root / "notebooks").glob("*.ipynb"))}
    assert policies["perf_bench"] == (True, True)
    # a page that keeps torch's threads runs alone and computes no artefact another page could read: it uses neither
    # the cache nor a study (the benchmarks, and the tour, which trains one network in its own cells)
    for name, (alone, own) in policies.items():
        if own:
            source = (root / "notebooks" / f"{name}.ipynb").read_text()
            assert alone and "ArtifactCache" not in source and "dscore.studies import" not in source.replace(
                "from dscore.studies import perf", ""), name
