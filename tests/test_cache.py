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
