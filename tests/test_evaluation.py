"""Tests of dscore.evaluation: cached evaluation runs on scikit-learn's digits with a tiny ConvNet."""
import pytest
import torch

from dscore.cache import ArtifactCache
from dscore.data import load_dataset
from dscore.evaluation import evaluate_cached, summarise_runs, train_set_digest
from dscore.train import PROTOCOLS

PROTO = PROTOCOLS["coreset"].replace(epochs=2, batch_size=32, lr=0.05)
ARCH = dict(arch="convnet", arch_kwargs={"width": 8, "depth": 2})


@pytest.fixture(scope="module")
def digits_native():
    """Train and test at the native 8 px (the conftest's ``digits`` is at 16 px)."""
    return load_dataset("digits", "train"), load_dataset("digits", "test")


def test_run_is_cached_and_reproducible(digits_native, tmp_path):
    train, test = digits_native
    x, y = train.images[:200], train.labels[:200]
    store = ArtifactCache(tmp_path)
    a = evaluate_cached(x, y, test, protocol=PROTO, seed=0, cache=store, **ARCH)
    assert 0.0 <= a["acc"] <= 1.0 and a["num_train"] == 200 and a["best_of_checks"] is None
    assert a["checks"] == [[2, a["acc"]]]                            # the final epoch only
    assert [r["computed"] for r in store.ledger] == [True]
    b = evaluate_cached(x, y, test, protocol=PROTO, seed=0, cache=store, **ARCH)
    assert b == a and [r["computed"] for r in store.ledger] == [True, False]
    fresh = evaluate_cached(x, y, test, protocol=PROTO, seed=0, cache=ArtifactCache(tmp_path / "other"), **ARCH)
    assert fresh["acc"] == a["acc"]                                   # same seed → same run on the CPU


def test_every_input_of_a_run_is_in_its_key(digits_native, tmp_path):
    train, test = digits_native
    x, y = train.images[:100], train.labels[:100]
    store = ArtifactCache(tmp_path)
    evaluate_cached(x, y, test, protocol=PROTO, seed=0, cache=store, **ARCH)
    changes = [dict(seed=1), dict(protocol=PROTO.replace(lr=0.1)), dict(arch_kwargs={"width": 4, "depth": 2}),
               dict(eval_every=1)]
    for change in changes:
        kwargs = {"protocol": PROTO, "seed": 0, **ARCH, **change}
        evaluate_cached(x, y, test, cache=store, **kwargs)
        assert store.ledger[-1]["computed"], f"changing {sorted(change)} must give a new run"
    y2 = y.clone()
    y2[0] = (y2[0] + 1) % 10
    evaluate_cached(x, y2, test, protocol=PROTO, seed=0, cache=store, **ARCH)
    assert store.ledger[-1]["computed"], "another training set must give a new run"
    evaluate_cached(x, y, test.subset(torch.arange(50)), protocol=PROTO, seed=0, cache=store, **ARCH)
    assert store.ledger[-1]["computed"], "another evaluation set must give a new run"
    assert train_set_digest(x, y) != train_set_digest(x, y2)


def test_best_of_checks_is_recorded_beside_the_final_accuracy(digits_native, tmp_path):
    train, test = digits_native
    out = evaluate_cached(train.images[:100], train.labels[:100], test, protocol=PROTO.replace(epochs=3), seed=0,
                          eval_every=1, cache=ArtifactCache(tmp_path), **ARCH)
    accs = [a for _, a in out["checks"]]
    assert [e for e, _ in out["checks"]] == [1, 2, 3]
    assert out["best_of_checks"] == max(accs) and out["acc"] == pytest.approx(accs[-1])


def test_bad_arguments_fail_before_training(digits_native, tmp_path):
    train, test = digits_native
    x, y = train.images[:10], train.labels[:10]
    kw = dict(cache=ArtifactCache(tmp_path), seed=0)
    with pytest.raises(ValueError, match="arch='resnet9000'"):
        evaluate_cached(x, y, test, arch="resnet9000", protocol=PROTO, **kw)
    with pytest.raises(ValueError, match="unknown key"):
        evaluate_cached(x, y, test, arch="convnet", arch_kwargs={"widht": 2}, protocol=PROTO, **kw)
    with pytest.raises(ValueError, match="TrainProtocol"):
        evaluate_cached(x, y, test, arch="convnet", protocol="coreset", **kw)
    with pytest.raises(ValueError, match="train_labels"):
        evaluate_cached(x, y[:5], test, arch="convnet", protocol=PROTO, **kw)
    assert not kw["cache"].ledger


def test_summarise_runs():
    runs = [{"acc": 0.5, "seed": 0, "best_of_checks": 0.6}, {"acc": 0.7, "seed": 1, "best_of_checks": 0.8}]
    s = summarise_runs(runs)
    assert s["mean"] == pytest.approx(0.6) and s["std"] == pytest.approx(0.1414213, rel=1e-5) and s["n"] == 2
    assert s["best_mean"] == pytest.approx(0.7)
    assert summarise_runs(runs[:1])["std"] == 0.0
    assert "best_mean" not in summarise_runs([{"acc": 0.5, "best_of_checks": None}])
    with pytest.raises(ValueError, match="empty"):
        summarise_runs([])
