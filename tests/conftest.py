import os
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent

# Keep the artefact cache of the test run away from the user's cache unless told otherwise.
os.environ.setdefault("DSCORE_CACHE", str(ROOT / ".dscore-cache" / "tests"))


@pytest.fixture
def repo_root() -> Path:
    return ROOT

# The tests use small tensors, for which one thread is faster than several competing ones.
torch.set_num_threads(1)


# scikit-learn's digits at 16 × 16 px: the small real dataset most algorithm tests run on (loaded once per session)
@pytest.fixture(scope="session")
def digits():
    from dscore.data import load_dataset

    return load_dataset("digits", image_size=16, progress=False)


@pytest.fixture(scope="session")
def digits_test():
    from dscore.data import load_dataset

    return load_dataset("digits", "test", image_size=16, progress=False)

