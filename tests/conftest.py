import os
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# Keep the artefact cache of the test run away from the user's cache unless told otherwise.
os.environ.setdefault("DSCORE_CACHE", str(ROOT / ".dscore-cache" / "tests"))


@pytest.fixture
def repo_root() -> Path:
    return ROOT
