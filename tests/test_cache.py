import os

import pytest
import torch

from dscore.cache import ArtifactCache, config_key
from dscore.utils import atomic_path


def test_key_changes_with_config_kind_and_version():
    base = config_key("features", {"model": "convnet3", "seed": 0})
    assert base == config_key("features", {"seed": 0, "model": "convnet3"})  # order-free
    assert base != config_key("features", {"model": "convnet3", "seed": 1})
    assert base != config_key("bins", {"model": "convnet3", "seed": 0})
    assert base != config_key("features", {"model": "convnet3", "seed": 0}, version="2")
    assert config_key("x", {"a": [1, 2]}) != config_key("x", {"a": [2, 1]})
    assert config_key("x", {"a": 1}) != config_key("x", {"a": 1.5})


def test_key_rejects_unclear_values():
    with pytest.raises(TypeError, match="not JSON-able"):
        config_key("x", {"f": object()})


def test_get_or_compute_computes_once_and_round_trips(tmp_path):
    store = ArtifactCache(tmp_path)
    calls = []

    def compute():
        calls.append(1)
        return {"x": torch.arange(6).view(2, 3), "score": 0.5, "names": ["a", "b"]}

    first = store.get_or_compute("toy", {"n": 6}, compute)
    second = store.get_or_compute("toy", {"n": 6}, compute)
    assert len(calls) == 1
    assert torch.equal(first["x"], second["x"]) and second["score"] == 0.5 and second["names"] == ["a", "b"]
    store.get_or_compute("toy", {"n": 7}, compute)
    assert len(calls) == 2
    sidecar = store.path("toy", {"n": 6}).with_suffix(".json")
    assert '"n": 6' in sidecar.read_text()


def test_disabled_cache_always_computes(tmp_path):
    store = ArtifactCache(tmp_path, enabled=False)
    calls = []
    for _ in range(2):
        store.get_or_compute("toy", {}, lambda: calls.append(1) or {"v": 1})
    assert len(calls) == 2
    assert not any(tmp_path.rglob("*.pt"))


def test_loads_refuse_arbitrary_pickles(tmp_path):
    store = ArtifactCache(tmp_path)
    path = store.path("toy", {"evil": True})
    path.parent.mkdir(parents=True)

    class Evil:
        def __reduce__(self):
            return (os.system, ("echo should-not-run",))

    torch.save({"x": Evil()}, path)
    with pytest.raises(Exception):
        store.load("toy", {"evil": True})
    # get_or_compute treats the entry as corrupt and recomputes a safe value
    assert store.get_or_compute("toy", {"evil": True}, lambda: {"x": 1})["x"] == 1


def test_atomic_write_leaves_nothing_on_failure(tmp_path):
    target = tmp_path / "out.pt"
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise RuntimeError("killed")
    assert not target.exists()
    assert list(tmp_path.iterdir()) == []


def test_save_is_atomic_when_interrupted(tmp_path, monkeypatch):
    store = ArtifactCache(tmp_path)

    def boom(obj, f, *a, **k):
        with open(f, "wb") as fh:
            fh.write(b"partial")
        raise KeyboardInterrupt

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(KeyboardInterrupt):
        store.save("toy", {"a": 1}, {"x": torch.zeros(1)})
    assert not store.exists("toy", {"a": 1})
    assert not [p for p in tmp_path.rglob("*") if p.is_file()]


def test_cache_root_follows_env(tmp_path, monkeypatch):
    monkeypatch.setenv("DSCORE_CACHE", str(tmp_path / "elsewhere"))
    assert ArtifactCache().root == tmp_path / "elsewhere"


def test_ledger_records_compute_seconds_also_for_loaded_artefacts(tmp_path):
    import time as _time

    store = ArtifactCache(tmp_path)

    def slow():
        _time.sleep(0.05)
        return {"x": torch.ones(2)}

    store.get_or_compute("k", {"a": 1}, slow)
    assert store.ledger[-1]["computed"] is True and store.ledger[-1]["seconds"] >= 0.05
    again = ArtifactCache(tmp_path)
    again.get_or_compute("k", {"a": 1}, lambda: pytest.fail("must load, not compute"))
    rec = again.ledger[-1]
    assert rec["computed"] is False and rec["seconds"] == pytest.approx(store.ledger[-1]["seconds"])
    assert again.compute_seconds("k", {"a": 2}) is None


# ------------------------------------------------------------------------------------------ concurrency

def _request_all(root, log, keys, out):
    """One of two processes asking for the same artefacts (each takes a while to compute)."""
    import time as _time

    os.environ["DSCORE_CACHE_LOG"] = log
    store = ArtifactCache(root)

    def make(k):
        def compute():
            _time.sleep(0.3)
            return {"x": torch.arange(4) * k, "pid": os.getpid()}
        return compute

    values = [store.get_or_compute("slow", {"k": k}, make(k)) for k in keys]
    torch.save({"values": values, "ledger": store.ledger}, out)


def test_two_processes_compute_each_artefact_once_and_agree(tmp_path):
    import json
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    log = str(tmp_path / "log.jsonl")
    keys = [0, 1, 2, 3]
    procs = [ctx.Process(target=_request_all, args=(str(tmp_path / "c"), log, order, str(tmp_path / f"p{i}.pt")))
             for i, order in enumerate((keys, keys[::-1]))]
    for p in procs:
        p.start()
    for p in procs:
        p.join(300)                  # generous: starting a process with torch is slow on a busy box
        assert p.exitcode == 0
    records = [json.loads(line) for line in open(log)]
    computed = sorted(r["key"] for r in records if r["computed"])
    assert len(records) == 8 and len(computed) == 4 and len(set(computed)) == 4     # every key once, by someone
    outs = [torch.load(tmp_path / f"p{i}.pt", weights_only=False) for i in range(2)]
    by_key = [{int(v["x"][1]): v for v in o["values"]} for o in outs]
    for k in keys:
        assert torch.equal(by_key[0][k]["x"], by_key[1][k]["x"]) and by_key[0][k]["pid"] == by_key[1][k]["pid"]
    assert any(r["waited"] for r in records) or len({r["pid"] for r in records if r["computed"]}) == 2
    assert len(list((tmp_path / "c").rglob("*.pt"))) == 4


def _hold_lock_forever(root, ready):
    import time as _time

    store = ArtifactCache(root)
    with store.lock("held", {"a": 1}):
        open(ready, "w").close()
        _time.sleep(600)


def test_a_killed_holder_leaves_no_stale_lock(tmp_path):
    import multiprocessing
    import time as _time

    ctx = multiprocessing.get_context("spawn")
    ready = tmp_path / "ready"
    p = ctx.Process(target=_hold_lock_forever, args=(str(tmp_path), str(ready)))
    p.start()
    deadline = _time.monotonic() + 300
    while not ready.exists() and _time.monotonic() < deadline:
        _time.sleep(0.05)
    assert ready.exists()
    import fcntl

    lock_file = ArtifactCache(tmp_path).path("held", {"a": 1}).with_suffix(".lock")
    with open(lock_file) as fh:                      # held now …
        with pytest.raises(BlockingIOError):
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    p.kill()
    p.join()
    value = ArtifactCache(tmp_path).get_or_compute("held", {"a": 1}, lambda: {"v": 7})   # … free after the kill
    assert value["v"] == 7


def test_lock_waits_and_loads_what_the_holder_wrote(tmp_path):
    import threading

    store = ArtifactCache(tmp_path)
    other = ArtifactCache(tmp_path)
    got = {}
    with store.lock("t", {"a": 1}):
        worker = threading.Thread(target=lambda: got.update(other.get_or_compute("t", {"a": 1}, lambda: {"v": -1})))
        worker.start()
        worker.join(0.3)
        assert worker.is_alive()                      # blocked on the lock
        store.save("t", {"a": 1}, {"v": 1})
    worker.join(10)
    assert got == {"v": 1} and other.ledger[-1]["computed"] is False and other.ledger[-1]["waited"] is True


def test_corrupt_entry_is_recomputed_under_the_lock(tmp_path):
    store = ArtifactCache(tmp_path)
    store.get_or_compute("c", {"a": 1}, lambda: {"v": torch.ones(3)})
    store.path("c", {"a": 1}).write_bytes(b"not a torch file")
    value = store.get_or_compute("c", {"a": 1}, lambda: {"v": torch.zeros(3)})
    assert torch.equal(value["v"], torch.zeros(3)) and store.ledger[-1]["computed"] is True
