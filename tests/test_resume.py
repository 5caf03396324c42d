"""Kill and resume: real runs in a subprocess are SIGKILLed at named points (``DSCORE_TEST_KILL_AT``,
the hook in tests/killhook, loaded from outside the library), started again, and must finish with exactly the results of an
uninterrupted run with the same seed — and nothing half-written may ever be visible in the cache.

Runs: a DREAM+ distillation (:func:`dscore.distill.distill_cached`, checkpoint every iteration) and an
ADQ selection (:func:`dscore.quantize.pipeline.adq_indices`: feature network, features, bins,
contrastive head, bin scores), both on scikit-learn's digits at 16 px with tiny networks. The whole
smoke book is killed and resumed in tests/test_book_smoke.py.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from killhook import KILL_ENV, armed
from killhook.sitecustomize import kill_point

ROOT = Path(__file__).resolve().parent.parent

# The run itself, in a fresh interpreter: one task, its result saved with torch.save (tensors, numbers,
# strings) together with the cache ledger (which artefacts were computed and which were loaded).
WORKER = r"""
import json, sys
import torch
import dscore
torch.set_num_threads(1)
from dscore.cache import ArtifactCache
args = json.loads(sys.argv[1])
store = ArtifactCache(args["cache"])
if args["task"] == "distill":
    from dscore.data import load_dataset
    from dscore.distill import distill_cached, preset
    ds = load_dataset("digits", image_size=16, progress=False)
    result = distill_cached(ds, preset("dreamplus", "digits", 2, **args["config"]), cache=store, progress=False)
    out = {"images": result.images, "labels": result.labels,
           "snapshot_iterations": [i for i, _ in result.snapshots], "snapshots": [s for _, s in result.snapshots],
           "history": {k: v for k, v in result.history.items() if not k.startswith("time_")}}
else:
    from dscore.data import load_dataset
    from dscore.quantize.pipeline import adq_indices
    ds = load_dataset("digits", image_size=16, progress=False)
    indices, report = adq_indices(ds, 0.2, cache=store, **args["config"])
    out = {"indices": indices, "report": report}
out["ledger"] = [[r["kind"], r["computed"]] for r in store.ledger]
torch.save(out, args["out"])
"""

DISTILL = dict(iterations=4, outer_loops=2, batch_real=16, num_clusters=4, n_data=32, net_batch=16, batch_syn=8,
               arch="convnet", arch_kwargs={"width": 8, "depth": 2}, checkpoint_every=1, snapshot_every=1,
               diag_every=1, seed=3)
ADQ = dict(sampling={"beta": 0.6}, seed=1, bins={"num_bins": 4}, device="cpu", progress=False,
           extractor={"arch": "convnet3", "arch_kwargs": {"width": 8}, "epochs": 1, "batch_size": 256},
           scores={"patch": 8, "head_epochs": 1, "head_batch_size": 64, "head_max_images": 128, "hidden_dim": 32,
                   "max_negatives": 64})


def run_worker(task: str, cache: Path, out: Path, config: dict, kill_at: str | None = None) -> int:
    """Run the task in a subprocess; returns the exit status (−9: SIGKILLed).

    The package is imported from a copy taken once per test (beside ``cache``), so every start of a run
    sees the same code — and the same code version in its cache keys — even while the checkout changes."""
    src = cache.parent / "src"
    if not src.exists():
        shutil.copytree(ROOT / "dscore", src / "dscore", ignore=shutil.ignore_patterns("__pycache__"))
    env = armed({**os.environ, "PYTHONPATH": str(src) + os.pathsep + os.environ.get("PYTHONPATH", "")}, kill_at)
    args = json.dumps({"task": task, "cache": str(cache), "out": str(out), "config": config})
    proc = subprocess.run([sys.executable, "-c", WORKER + f"\nassert dscore.__file__.startswith({str(src)!r})\n", args],
                          env=env, cwd=src, capture_output=True, text=True, timeout=1800)
    if proc.returncode not in (0, -signal.SIGKILL):
        raise AssertionError(f"worker failed (exit {proc.returncode}):\n{proc.stderr[-4000:]}")
    return proc.returncode


def visible_artefacts(cache: Path) -> list[Path]:
    """Every ``.pt`` file a reader could pick up (temporary files are hidden ``.<name>.tmp``)."""
    return sorted(p for p in cache.rglob("*.pt") if not p.name.startswith("."))


def assert_nothing_half_written(cache: Path) -> None:
    """Every visible artefact and sidecar loads completely: a kill never leaves a truncated file in place."""
    for path in visible_artefacts(cache):
        torch.load(path, map_location="cpu", weights_only=True)
    for path in cache.rglob("*.json"):
        if not path.name.startswith("."):
            json.loads(path.read_text())


def partial_iteration(cache: Path) -> int:
    (ckpt,) = list((cache / "distill_run" / "partial").glob("*.pt"))
    return int(torch.load(ckpt, map_location="cpu", weights_only=True)["iteration"])


def assert_same(a, b, where: str = "result") -> None:
    """Exact equality of nested results (tensors bit for bit, floats exactly, NaN equal to NaN)."""
    if torch.is_tensor(a):
        assert torch.is_tensor(b) and a.dtype == b.dtype and a.shape == b.shape, where
        assert torch.equal(a, b) or bool(torch.equal(a.isnan(), b.isnan()) and torch.equal(a.nan_to_num(), b.nan_to_num())), where
    elif isinstance(a, dict):
        assert isinstance(b, dict) and set(a) == set(b), f"{where}: keys {sorted(a)} != {sorted(b)}"
        for k in a:
            assert_same(a[k], b[k], f"{where}[{k!r}]")
    elif isinstance(a, (list, tuple)):
        assert isinstance(b, (list, tuple)) and len(a) == len(b), f"{where}: lengths differ"
        for i, (x, y) in enumerate(zip(a, b)):
            assert_same(x, y, f"{where}[{i}]")
    elif isinstance(a, float) and a != a:
        assert isinstance(b, float) and b != b, where
    else:
        assert a == b, f"{where}: {a!r} != {b!r}"


def load(path: Path) -> dict:
    return torch.load(path, map_location="cpu", weights_only=True)


@pytest.mark.slow
def test_distillation_killed_after_checkpoints_and_mid_write_resumes_to_the_same_images(tmp_path):
    ref_cache, cache = tmp_path / "reference", tmp_path / "killed"
    assert run_worker("distill", ref_cache, tmp_path / "ref.pt", DISTILL) == 0
    reference = load(tmp_path / "ref.pt")
    assert len(reference["history"]["loss"]) == 4 * 2 and reference["snapshot_iterations"] == [0, 1, 2, 3, 4]

    # 1. killed right after the checkpoint of iteration 2
    assert run_worker("distill", cache, tmp_path / "out.pt", DISTILL, "distill_checkpoint:2") == -signal.SIGKILL
    assert partial_iteration(cache) == 2 and not (tmp_path / "out.pt").exists()
    assert_nothing_half_written(cache)
    # 2. restarted and killed after its first checkpoint: iteration 3, so it went on from 2
    assert run_worker("distill", cache, tmp_path / "out.pt", DISTILL, "distill_checkpoint:1") == -signal.SIGKILL
    assert partial_iteration(cache) == 3
    # 3. restarted and killed while the finished run is written into the cache (after the last checkpoint,
    #    the 2nd atomic write: the artefact's temporary file is complete but not yet renamed)
    assert run_worker("distill", cache, tmp_path / "out.pt", DISTILL, "atomic_write:2") == -signal.SIGKILL
    assert partial_iteration(cache) == 4
    assert list((cache / "distill_run").rglob(".*.tmp")), "the kill should have hit the artefact's temporary file"
    assert [p.parent.name for p in visible_artefacts(cache)] == ["partial"]      # no finished run is visible
    assert_nothing_half_written(cache)
    # 4. restarted: finishes from the last checkpoint, removes it, and equals the uninterrupted run
    assert run_worker("distill", cache, tmp_path / "out.pt", DISTILL) == 0
    resumed = load(tmp_path / "out.pt")
    assert resumed.pop("ledger") == reference.pop("ledger") == [["distill_run", True]]
    assert_same(resumed, reference)
    assert not list((cache / "distill_run" / "partial").glob("*.pt"))
    assert_nothing_half_written(cache)
    # the stored artefact itself is identical too
    (stored,) = visible_artefacts(cache)
    (ref_stored,) = visible_artefacts(ref_cache)
    assert stored.relative_to(cache) == ref_stored.relative_to(ref_cache)
    def untimed(run: dict) -> dict:       # the history's wall times are measurements, not results
        return {**run, "history": {k: v for k, v in run["history"].items() if not k.startswith("time_")}}

    assert_same(untimed(load(stored)), untimed(load(ref_stored)), "stored run")


@pytest.mark.slow
def test_adq_selection_killed_while_writing_artefacts_resumes_to_the_same_indices(tmp_path):
    ref_cache, cache = tmp_path / "reference", tmp_path / "killed"
    assert run_worker("adq", ref_cache, tmp_path / "ref.pt", ADQ) == 0
    reference = load(tmp_path / "ref.pt")
    ledger = reference.pop("ledger")          # [kind, computed] per cache request, in order
    made = [kind for kind, computed in ledger if computed]
    assert {"feature_net", "features", "bins", "contrastive_head", "bin_scores"} <= set(made)
    n = len(made)           # each computed artefact is two atomic writes: its .pt and its .json sidecar

    # 1. killed while the first artefact (the feature network) is being written: nothing is visible
    assert run_worker("adq", cache, tmp_path / "out.pt", ADQ, "atomic_write:1") == -signal.SIGKILL
    assert visible_artefacts(cache) == [] and list(cache.rglob(".*.tmp"))
    # 2. restarted (the network is computed again), killed in the second write of the 2nd artefact
    assert run_worker("adq", cache, tmp_path / "out.pt", ADQ, "atomic_write:4") == -signal.SIGKILL
    assert 1 <= len(visible_artefacts(cache)) <= 2
    assert_nothing_half_written(cache)
    # 3. restarted, killed in its third write (an artefact after the one run 2 was writing)
    assert run_worker("adq", cache, tmp_path / "out.pt", ADQ, "atomic_write:3") == -signal.SIGKILL
    assert_nothing_half_written(cache)
    stored = len(visible_artefacts(cache))
    assert 1 <= stored < n
    # 4. restarted: loads what the killed runs stored, computes the rest, and equals the uninterrupted run
    assert run_worker("adq", cache, tmp_path / "out.pt", ADQ) == 0
    resumed = load(tmp_path / "out.pt")
    resumed_ledger = resumed.pop("ledger")
    assert [kind for kind, _ in resumed_ledger] == [kind for kind, _ in ledger]
    assert [kind for kind, computed in resumed_ledger if computed] == made[stored:]
    assert_same(resumed, reference)
    # every stored artefact (network weights, features, bins, head, scores) is bit-identical
    ours = {p.relative_to(cache) for p in visible_artefacts(cache)}
    theirs = {p.relative_to(ref_cache) for p in visible_artefacts(ref_cache)}
    assert ours == theirs and len(ours) == n
    for rel in sorted(ours):
        assert_same(load(cache / rel), load(ref_cache / rel), str(rel.parent.parent))
    assert_nothing_half_written(cache)


def test_kill_point_is_inactive_unless_named(monkeypatch):
    monkeypatch.delenv(KILL_ENV, raising=False)
    kill_point("atomic_write")                       # no variable: nothing happens
    monkeypatch.setenv(KILL_ENV, "distill_checkpoint:1")
    kill_point("atomic_write")                       # another label: nothing happens
    for bad in ("atomic_write:zero", "nowhere:1"):
        monkeypatch.setenv(KILL_ENV, bad)
        with pytest.raises(ValueError, match=f"DSCORE_TEST_KILL_AT='{bad}'"):
            kill_point("atomic_write")


def test_the_hook_kills_at_the_nth_atomic_write_from_outside_the_library(tmp_path):
    """The library has no kill hook of its own: the hook, loaded at start-up from the test's PYTHONPATH, watches the
    renames of :func:`dscore.utils.atomic_path` and kills before the third one."""
    code = ("from dscore.utils import atomic_write_text\n"
            f"for i in range(5):\n    print(i, flush=True)\n    atomic_write_text({str(tmp_path)!r} + f'/f{{i}}', 'x')\n")
    env = armed({**os.environ, "PYTHONPATH": str(ROOT)}, "atomic_write:3")
    proc = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr
    assert proc.stdout.split() == ["0", "1", "2"]
    names = sorted(p.name for p in tmp_path.iterdir())
    assert names[1:] == ["f0", "f1"] and names[0].startswith(".f2.")   # the third is written, never renamed into place
    unarmed = subprocess.run([sys.executable, "-c", code], env=armed({**os.environ, "PYTHONPATH": str(ROOT)}, None),
                             capture_output=True, text=True, timeout=120)
    assert unarmed.returncode == 0
    assert sorted(p.name for p in tmp_path.iterdir() if not p.name.startswith(".")) == [f"f{i}" for i in range(5)]


def test_an_unfinished_html_build_makes_the_next_one_render_every_page(tmp_path, monkeypatch):
    """Sphinx re-renders only pages older than their source, so a page cut short by a kill would survive an
    incremental build: after a build that did not finish (killed, or failed) the next one passes ``--all``."""
    from dscore import book

    commands, exit_codes = [], [0, 1, 0, 0]

    def fake_jupyter_book(cmd, cwd):
        commands.append(cmd)
        (tmp_path / "_build" / "html").mkdir(parents=True, exist_ok=True)
        (tmp_path / "_build" / "html" / "index.html").write_text("<html></html>")
        return subprocess.CompletedProcess(cmd, exit_codes[len(commands) - 1])

    monkeypatch.setattr(book.runner.subprocess, "run", fake_jupyter_book)
    marker = tmp_path / book.HTML_INCOMPLETE
    book.build_html(tmp_path, log=lambda _: None)                     # first build: incremental, finishes
    assert "--all" not in commands[-1] and not marker.exists()
    with pytest.raises(book.BookError, match="exit 1"):
        book.build_html(tmp_path, log=lambda _: None)                 # fails: the marker stays
    assert marker.exists()
    book.build_html(tmp_path, log=lambda _: None)                     # so the next one renders everything
    assert "--all" in commands[-1] and not marker.exists()
    marker.write_text("")                                             # as a build killed mid-way leaves it
    book.build_html(tmp_path, log=lambda _: None)
    assert "--all" in commands[-1] and not marker.exists()
