"""Two smoke builds at once — two checkouts, one ``$DSCORE_CACHE`` — as a user gets by starting ``make book``
in two clones that share a cache: both finish, no artefact is computed twice (every process's cache calls are
counted through ``$DSCORE_CACHE_LOG``), nothing in the cache is half-written, and the two books agree: the
same glued numbers and verdicts, the same downloadable artefacts, byte for byte."""
import hashlib
import json
import threading
from collections import Counter
from pathlib import Path

import nbformat
import pytest
import torch

from dscore.cache import CACHE_LOG_ENV

from test_book_smoke import assert_pages_intact, copy_tree, executed_pages, run_build

# Two pages that read the same distillation runs and evaluations (the main table's IPC-1 runs feed the
# stability page), so the builds race for the same cache keys from their first cell on.
PAGES = ("dream_main", "dream_stability")


def glued(path: Path) -> dict[str, str]:
    """The page's glued values (scrapbook records) by name, without its wall-clock ones."""
    out = {}
    for cell in nbformat.read(path, as_version=4).cells:
        for o in cell.get("outputs", []):
            name = o.get("metadata", {}).get("scrapbook", {}).get("name")
            if name and not name.endswith("_seconds"):
                out[name] = json.dumps(o.get("data", {}), sort_keys=True)
    return out


def downloads(root: Path, page: str) -> dict[str, str]:
    folder = root / "book" / "nb" / f"{page}_files"
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())
            if p.suffix in (".npy", ".npz", ".csv")}


@pytest.mark.book
@pytest.mark.slow
def test_two_builds_on_one_cache_compute_each_artefact_once_and_agree(tmp_path, monkeypatch):
    cache, ledger = tmp_path / "cache", tmp_path / "cache-calls.jsonl"
    monkeypatch.setenv(CACHE_LOG_ENV, str(ledger))
    roots = [copy_tree(tmp_path / name) for name in ("clone-a", "clone-b")]
    status: dict[int, int] = {}

    def build(i: int) -> None:
        status[i] = run_build(roots[i], cache, tmp_path / f"build-{i}.log", html=False, only=PAGES, timeout=1500)

    threads = [threading.Thread(target=build, args=(i,)) for i in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    for i in range(2):
        assert status.get(i) == 0, (tmp_path / f"build-{i}.log").read_text()[-3000:]

    calls = [json.loads(line) for line in ledger.read_text().splitlines()]
    pids = {c["pid"] for c in calls}
    assert len(pids) >= 4, "each build runs each page in its own kernel"
    computed = Counter((c["kind"], c["key"]) for c in calls if c["computed"])
    assert computed and max(computed.values()) == 1, [k for k, n in computed.items() if n > 1]
    # the builds really overlapped on keys: some call found its artefact being computed by the other process
    # and waited for it, or loaded what the other had written
    loaded = {(c["kind"], c["key"]) for c in calls if not c["computed"]}
    assert loaded & set(computed), "the second build should have read artefacts the first computed"

    # nothing half-written: every artefact in the shared cache loads, and no temporary file is left behind
    stored = sorted(p for p in cache.rglob("*.pt") if "partial" not in p.parts)
    assert stored
    for path in stored:
        torch.load(path, weights_only=True)
    assert not [p for p in cache.rglob("*") if ".tmp" in p.name]

    for root in roots:
        assert set(executed_pages(root)) >= set(PAGES)
        assert_pages_intact(root)
    for page in PAGES:
        a, b = (executed_pages(root)[page] for root in roots)
        assert glued(a) and glued(a) == glued(b), page
        assert downloads(roots[0], page) == downloads(roots[1], page), page
