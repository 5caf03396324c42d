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

# Property tests draw the same examples on every run, so a run is repeatable and a failure reproduces; set
# DSCORE_HYPOTHESIS=random to explore new examples instead (and pin what it finds as a plain test).
from hypothesis import settings as _hypothesis_settings  # noqa: E402

_hypothesis_settings.register_profile("dscore", derandomize=True, print_blob=True)
_hypothesis_settings.register_profile("random", derandomize=False, print_blob=True)
_hypothesis_settings.load_profile("random" if os.environ.get("DSCORE_HYPOTHESIS") == "random" else "dscore")


# scikit-learn's digits at 16 × 16 px: the small real dataset most algorithm tests run on (loaded once per session)
@pytest.fixture(scope="session")
def digits():
    from dscore.data import load_dataset

    return load_dataset("digits", image_size=16, progress=False)


@pytest.fixture(scope="session")
def digits_test():
    from dscore.data import load_dataset

    return load_dataset("digits", "test", image_size=16, progress=False)

