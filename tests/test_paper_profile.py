"""The `paper` profile, dry-run on the CPU: every page of the book executed with the paper's parameters, each grid and
each run shrunk (``--dry-run``), the datasets that are not installed here (CIFAR-10, TinyImageNet) replaced by
Fashion-MNIST through the build's own ``-p`` overrides. The build is first killed by SIGKILL inside a kernel right
after its first distillation checkpoint, then started again: it must resume and finish.

This is the check that a researcher taking the book to a GPU machine does not meet a failure a CPU could have found.
"""
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from dscore import book
from killhook import KILL_ENV, KILL_GROUP_ENV, armed
from test_book_smoke import copy_tree

#: the build's -p pairs: what is not installed here is swapped for Fashion-MNIST, everything else is the profile's
SWAPS = [("dataset", "fashion_mnist"), ("device", "cpu"), ("tiny_setup.dataset", "fashion_mnist"),
         ("tiny_setup.device", "cpu")]

BUILD = """
import os, sys
from pathlib import Path
if os.environ.get({kill!r}):
    os.environ[{group!r}] = str(os.getpgid(0))
from dscore import book
pairs = [tuple(p.split("=", 1)) for p in sys.argv[2:]]
book.build(Path(sys.argv[1]), "paper", dry_run=True, html=False, pairs=pairs)
""".format(kill=KILL_ENV, group=KILL_GROUP_ENV)


def _build(root: Path, cache: Path, log: Path, *, kill_at: str | None = None, timeout: float = 3000) -> int:
    env = armed({**os.environ, "DSCORE_CACHE": str(cache)}, kill_at)
    with open(log, "a") as out:
        proc = subprocess.Popen([sys.executable, "-c", BUILD, str(root), *(f"{k}={v}" for k, v in SWAPS)], cwd=root,
                                env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
        try:
            return proc.wait(timeout=timeout)
        finally:
            if proc.poll() is None:
                os.killpg(proc.pid, signal.SIGKILL)


@pytest.mark.slow
def test_every_page_of_the_paper_profile_dry_runs_and_resumes_after_a_kill(tmp_path):
    from dscore import data

    try:
        data.load_dataset("fashion_mnist", "train", download=False)
    except data.DatasetNotFoundError:
        pytest.skip("Fashion-MNIST is not installed here")
    root = copy_tree(tmp_path / "tree")
    cache, log = tmp_path / "cache", tmp_path / "build.log"
    start = time.perf_counter()
    assert _build(root, cache, log, kill_at="distill_checkpoint:1") == -signal.SIGKILL, log.read_text()[-3000:]
    partial = list((cache / "distill_run" / "partial").glob("*.pt"))
    assert partial, "the build was killed with no distillation checkpoint in place"
    killed = sorted((root / book.OUTPUT_DIR / ".partial").glob("*.ipynb"))
    assert len(killed) == 1, killed
    assert _build(root, cache, log) == 0, log.read_text()[-5000:]
    assert not list((cache / "distill_run" / "partial").glob("*.pt")), "a distillation checkpoint was left behind"
    pages = book.notebook_names(root)
    executed = {p.stem for p in (root / book.OUTPUT_DIR).glob("*.ipynb") if not p.stem.endswith(".failed")}
    assert executed == set(pages)
    for name in pages:
        out = root / book.OUTPUT_DIR / f"{name}.ipynb"
        assert book.error_outputs(out) == [], name
        if "dry_run" in book.declared_parameters(root / "notebooks" / f"{name}.ipynb"):
            assert "dry_run" in out.read_text(), name
    tiny = (root / book.OUTPUT_DIR / "dream_tiny.ipynb").read_text()     # Tab. II ran: ours beside the paper's
    assert "DREAM+: ours" in tiny and "DM: ours" in tiny
    print(f"paper dry run of {len(pages)} pages: {time.perf_counter() - start:.0f} s")
