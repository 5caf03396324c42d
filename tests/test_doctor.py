"""`make doctor`: one screen on what the machine has, read-only."""
from dscore import data
from dscore.book import doctor


def test_doctor_reports_every_item_and_finds_the_cache_size(tmp_path, monkeypatch):
    cache = tmp_path / "cache"
    (cache / "kind").mkdir(parents=True)
    (cache / "kind" / "a.pt").write_bytes(b"x" * 2**20)
    monkeypatch.setenv("DSCORE_CACHE", str(cache))
    rows = dict(doctor.report())
    assert list(rows) == ["python", "venv", "torch", "GPUs", "fashion_mnist", "cache", "chromium"]
    assert rows["cache"] == f"{cache} (1.0 MiB)"


def test_doctor_says_where_the_dataset_is_missing(tmp_path, monkeypatch):
    monkeypatch.setenv("DSCORE_DATA", str(tmp_path / "nothing"))
    monkeypatch.setenv(data.FASHION_MNIST_DEBIAN_DIR_ENV, str(tmp_path / "no-debian"))
    monkeypatch.setenv(data.ALLOW_DOWNLOAD_ENV, "0")
    data.clear_cache()
    rows = dict(doctor.report())
    assert rows["fashion_mnist"].startswith("not found") and "make data" in rows["fashion_mnist"]
    data.clear_cache()
