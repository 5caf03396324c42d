"""nbval over notebooks/: every notebook run top to bottom as JupyterLab runs it (no papermill, no injected
parameters), with the defaults of its parameters cell — the smoke profile — so a page that only breaks outside the
book runner is caught. The same command is ``make nbval``."""
import os
import subprocess
import sys

import pytest

from dscore import book
from dscore.paths import repo_root

ROOT = repo_root()
NBVAL = [sys.executable, "-m", "pytest", "--nbval-lax", "--nbval-current-env", "-p", "no:cacheprovider",
         "-o", "addopts=", str(ROOT / "notebooks")]


def _env():
    # the same artefact cache as the rest of the suite (tests/conftest.py), so the pages reuse what the smoke book
    # build computed
    return dict(os.environ)


def test_nbval_collects_every_notebook():
    result = subprocess.run(NBVAL + ["--collect-only", "-q"], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    collected = {line.split("::")[0].rsplit("/", 1)[-1] for line in result.stdout.splitlines() if "::" in line}
    assert collected == {p.name for p in (ROOT / "notebooks").glob("*.ipynb")}


def test_notebook_defaults_are_the_smoke_profile():
    for path in (ROOT / "notebooks").glob("*.ipynb"):
        assert book.declared_parameters(path)["profile"] == "smoke", f"{path.name}: nbval runs the defaults"


@pytest.mark.book
@pytest.mark.slow
def test_every_notebook_runs_under_nbval():
    result = subprocess.run(NBVAL + ["-q"], cwd=ROOT, env=_env(), capture_output=True, text=True)
    assert result.returncode == 0, (result.stdout + result.stderr)[-8000:]
