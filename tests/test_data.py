"""Tests of dscore.data: every reader runs on tiny files written here in the real formats."""
from __future__ import annotations

import dataclasses
import math
from collections import Counter
import gzip
import os
import pickle
import struct
from pathlib import Path
from urllib.error import URLError

import numpy as np
import pytest
import torch
import torch.nn.functional as F
import torchvision.datasets
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from dscore import data
from dscore.data import DatasetNotFoundError, ImageDataset, load_dataset

IDX_FILES = data._IDX_FILES
REAL_DEBIAN = Path("/usr/share/datasets/fashion-mnist")


@pytest.fixture(autouse=True)
def isolated(tmp_path, monkeypatch):
    """Fresh memo, an empty data root and Debian dir, no downloads unless a test asks for one."""
    data.clear_cache()
    root = tmp_path / "data"
    root.mkdir()
    empty_debian = tmp_path / "no-debian"
    empty_debian.mkdir()
    monkeypatch.setenv("DSCORE_DATA", str(root))
    monkeypatch.setenv(data.FASHION_MNIST_DEBIAN_DIR_ENV, str(empty_debian))
    monkeypatch.setenv(data.ALLOW_DOWNLOAD_ENV, "0")

    def no_network(self, *a, **k):
        raise URLError("network disabled in tests")

    for cls in (torchvision.datasets.MNIST, torchvision.datasets.CIFAR10, torchvision.datasets.SVHN):
        monkeypatch.setattr(cls, "download", no_network)
    yield root
    data.clear_cache()


# ---------------------------------------------------------------------------------------------------------------
# Writers of the real file formats
# ---------------------------------------------------------------------------------------------------------------

def write_idx(path: Path, array: np.ndarray, gz: bool) -> None:
    """idx format: magic (0, 0, 0x08 = uint8, ndim), big-endian int32 dims, raw bytes."""
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}i", *array.shape)
    payload = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as f:
            f.write(payload)
    else:
        path.write_bytes(payload)


def make_mnist_arrays(seed: int, n_train=20, n_test=10, side=28):
    rng = np.random.default_rng(seed)
    return {
        "train-images-idx3-ubyte": rng.integers(0, 256, (n_train, side, side), dtype=np.uint8),
        "train-labels-idx1-ubyte": (np.arange(n_train) % 10).astype(np.uint8)[rng.permutation(n_train)],
        "t10k-images-idx3-ubyte": rng.integers(0, 256, (n_test, side, side), dtype=np.uint8),
        "t10k-labels-idx1-ubyte": (np.arange(n_test) % 10).astype(np.uint8)[rng.permutation(n_test)],
    }


def write_mnist_dir(folder: Path, arrays: dict, gz: bool) -> None:
    for base, arr in arrays.items():
        write_idx(folder / base, arr, gz)


@pytest.fixture
def lenient_md5(monkeypatch):
    """torchvision checks the md5 of the real CIFAR/SVHN files; our tiny fakes only need to exist."""
    exists = lambda fpath, md5=None: os.path.isfile(fpath)  # noqa: E731
    monkeypatch.setattr(torchvision.datasets.cifar, "check_integrity", exists)
    monkeypatch.setattr(torchvision.datasets.svhn, "check_integrity", exists)


def write_pickle(path: Path, obj) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "wb") as f:
        pickle.dump(obj, f)


# ---------------------------------------------------------------------------------------------------------------
# Registry and argument errors
# ---------------------------------------------------------------------------------------------------------------

def test_list_datasets_names():
    assert set(data.list_datasets()) == {"fashion_mnist", "mnist", "cifar10", "cifar100", "svhn", "tinyimagenet",
                                         "imagefolder", "digits"}


def test_unknown_name_lists_datasets():
    with pytest.raises(ValueError) as err:
        load_dataset("imagenet-9000")
    for name in data.list_datasets():
        assert name in str(err.value)
    assert "imagenet-9000" in str(err.value)


@pytest.mark.parametrize("split", ["val", "Train", "", None])
def test_unknown_split(split):
    with pytest.raises(ValueError, match="split"):
        load_dataset("digits", split)


@pytest.mark.parametrize("kwargs, word", [
    ({"image_size": 0}, "image_size"), ({"image_size": (8, 8, 8)}, "image_size"), ({"image_size": 2.5}, "image_size"),
    ({"download": "yes"}, "download"), ({"download": True}, "download"), ({"progress": 1}, "progress"),
])
def test_bad_arguments(kwargs, word):
    with pytest.raises(ValueError, match=word):
        load_dataset("digits", **kwargs)


def test_imagefolder_needs_root():
    with pytest.raises(ValueError, match="root"):
        load_dataset("imagefolder")


# ---------------------------------------------------------------------------------------------------------------
# digits (also used for the generic ImageDataset behaviour)
# ---------------------------------------------------------------------------------------------------------------

def test_digits_split_shapes_and_determinism():
    from sklearn.datasets import load_digits

    train, test = load_dataset("digits", "train"), load_dataset("digits", "test")
    assert (len(train), len(test)) == (1347, 450)
    assert train.image_shape == (1, 8, 8) and train.image_size == 8 and train.channels == 1
    assert train.images.dtype == torch.float32 and train.labels.dtype == torch.int64
    assert float(train.images.min()) == 0.0 and float(train.images.max()) == 1.0
    assert train.classes == tuple("0123456789") and train.num_classes == 10
    # stratified: every class has ~1/4 of its samples in test
    ref = np.bincount(load_digits().target, minlength=10)
    assert (test.class_counts().numpy() - ref / 4).__abs__().max() <= 1
    # the two splits partition the 1797 images: compare them as byte rows
    all_rows = {r.tobytes() for r in (load_digits().images / 16.0).astype(np.float32).reshape(1797, -1)}
    got = torch.cat([train.images, test.images]).reshape(1797, -1).numpy()
    assert {r.tobytes() for r in got} == all_rows
    # mean/std of the test split are the train split's
    assert test.mean == train.mean and test.std == train.std
    assert train.mean[0] == pytest.approx(float(train.images.mean()), rel=1e-6)
    assert train.std[0] == pytest.approx(float(train.images.std(unbiased=False)), rel=1e-5)
    data.clear_cache()
    again = load_dataset("digits", "test")
    assert again is not test and torch.equal(again.images, test.images) and torch.equal(again.labels, test.labels)


def test_digits_resize():
    small = load_dataset("digits")
    big = load_dataset("digits", image_size=16)
    assert big.image_shape == (1, 16, 16) and len(big) == len(small)
    ref = F.interpolate(small.images, size=(16, 16), mode="bilinear", align_corners=False)
    torch.testing.assert_close(big.images, ref)
    assert torch.equal(big.labels, small.labels)
    assert big.mean[0] == pytest.approx(float(big.images.mean()), rel=1e-6)
    rect = load_dataset("digits", image_size=(4, 6))
    assert rect.image_shape == (1, 4, 6) and rect.image_size == (4, 6)
    assert 0.0 <= float(rect.images.min()) and float(rect.images.max()) <= 1.0


def test_memoisation_and_lru(monkeypatch):
    a = load_dataset("digits")
    assert load_dataset("digits", "train") is a
    assert load_dataset("digits", image_size=8) is not a  # different key (explicit size), same content
    monkeypatch.setattr(data, "MEMO_SIZE", 2)
    b = load_dataset("digits", "test")
    load_dataset("digits", image_size=10)               # evicts the least recently used entries
    assert len(data._MEMO) == 2
    assert load_dataset("digits", "test") is b            # b was used more recently than a
    assert load_dataset("digits") is not a


def test_dataset_is_frozen_and_repr_is_short():
    ds = load_dataset("digits")
    with pytest.raises(dataclasses.FrozenInstanceError):
        ds.labels = ds.labels  # type: ignore[misc]
    text = repr(ds)
    assert len(text) < 120 and "digits" in text and "1347" in text and "\n" not in text


def naive_indices_per_class(labels: torch.Tensor, num_classes: int) -> list[list[int]]:
    out = [[] for _ in range(num_classes)]
    for i, y in enumerate(labels.tolist()):
        out[y].append(i)
    return out


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 4), min_size=1, max_size=60))
def test_per_class_helpers_match_naive(label_list):
    labels = torch.tensor(label_list, dtype=torch.int64)
    ds = ImageDataset("toy", "train", torch.rand(len(labels), 1, 2, 2), labels, tuple("abcde"), (0.5,), (0.2,))
    ref = naive_indices_per_class(labels, 5)
    assert [t.tolist() for t in ds.indices_per_class()] == ref
    assert [ds.class_indices(c).tolist() for c in range(5)] == ref
    assert ds.class_counts().tolist() == [len(r) for r in ref]


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(0, 3), min_size=4, max_size=80), st.integers(0, 2**31 - 1), st.data())
def test_stratified_indices_properties(label_list, seed, draw):
    labels = torch.tensor(label_list + [0, 1, 2, 3], dtype=torch.int64)  # every class present
    smallest = int(torch.bincount(labels).min())
    per_class = draw.draw(st.integers(1, smallest))
    idx = data.stratified_indices(labels, per_class, seed)
    assert idx.dtype == torch.int64 and idx.numel() == 4 * per_class
    assert len(set(idx.tolist())) == idx.numel()
    assert labels[idx].tolist() == sorted(labels[idx].tolist())                      # grouped by class
    assert torch.bincount(labels[idx], minlength=4).tolist() == [per_class] * 4
    for block in idx.view(4, per_class):
        assert block.tolist() == sorted(block.tolist())                              # ascending inside a class
    assert torch.equal(idx, data.stratified_indices(labels, per_class, seed))        # same seed, same picks


def test_stratified_indices_covers_all_members_over_seeds():
    labels = torch.tensor([0] * 6 + [1] * 3)
    seen = set()
    for seed in range(40):
        seen.update(data.stratified_indices(labels, 2, seed).tolist())
    assert seen == set(range(9))  # every sample can be picked: the draw is random, not the first ones


def test_stratified_subset_and_errors():
    ds = load_dataset("digits", "test")
    sub = data.stratified_subset(ds, 5, seed=3)
    assert len(sub) == 50 and sub.class_counts().tolist() == [5] * 10
    assert sub.classes == ds.classes and sub.mean == ds.mean
    assert torch.equal(sub.images, data.stratified_subset(ds, 5, seed=3).images)
    assert not torch.equal(sub.images, data.stratified_subset(ds, 5, seed=4).images)
    smallest = int(ds.class_counts().min())
    with pytest.raises(ValueError) as err:
        data.stratified_subset(ds, smallest + 1, seed=0)
    assert str(smallest + 1) in str(err.value) and str(smallest) in str(err.value)
    with pytest.raises(ValueError, match="per_class"):
        data.stratified_subset(ds, 0)
    with pytest.raises(ValueError, match="labels"):
        data.stratified_indices(torch.tensor([0, 5]), 1, num_classes=3)


def test_subset_and_to():
    ds = load_dataset("digits", "test")
    idx = torch.tensor([5, 0, 7])
    sub = ds.subset(idx)
    assert torch.equal(sub.images, ds.images[idx]) and torch.equal(sub.labels, ds.labels[idx])
    mask = ds.labels == 3
    assert torch.equal(ds.subset(mask).labels, ds.labels[mask])
    assert len(ds.subset([])) == 0
    with pytest.raises(ValueError, match="indices"):
        ds.subset([0, len(ds)])
    with pytest.raises(ValueError, match="indices"):
        ds.subset([-1])
    with pytest.raises(ValueError, match="mask"):
        ds.subset(torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError):
        ds.subset(torch.tensor([0.5]))
    with pytest.raises(ValueError, match="c="):
        ds.class_indices(10)
    assert ds.to("cpu") is ds


def test_imagedataset_validation():
    imgs = torch.rand(3, 1, 2, 2)
    with pytest.raises(ValueError, match="labels must lie"):
        ImageDataset("t", "train", imgs, torch.tensor([0, 1, 2]), ("a", "b"), (0.0,), (1.0,))
    with pytest.raises(ValueError, match="mean/std"):
        ImageDataset("t", "train", imgs, torch.tensor([0, 1, 1]), ("a", "b"), (0.0, 0.0), (1.0,))
    with pytest.raises(ValueError, match="float32"):
        ImageDataset("t", "train", imgs.double(), torch.tensor([0, 1, 1]), ("a", "b"), (0.0,), (1.0,))
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        ImageDataset("t", "train", imgs, torch.tensor([0, 1]), ("a", "b"), (0.0,), (1.0,))


def test_channel_stats_matches_naive():
    g = torch.Generator().manual_seed(0)
    x = torch.rand(10, 3, 5, 4, generator=g)
    old_chunk = data._CHUNK
    try:
        data._CHUNK = 3  # exercise the chunked accumulation
        mean, std = data._channel_stats(x)
    finally:
        data._CHUNK = old_chunk
    per_channel = x.permute(1, 0, 2, 3).reshape(3, -1).double()
    assert mean == pytest.approx(per_channel.mean(1).tolist(), rel=1e-9)
    assert std == pytest.approx(per_channel.std(1, unbiased=False).tolist(), rel=1e-7)


def test_to_float_images_mixed_list_matches_naive():
    g = torch.Generator().manual_seed(1)
    imgs = [torch.randint(0, 256, s, generator=g, dtype=torch.uint8) for s in
            [(3, 6, 6), (1, 6, 6), (3, 9, 5), (3, 6, 6), (1, 4, 4)]]
    with pytest.raises(ValueError, match="6x6 .*9x5|9x5.*6x6"):
        data._to_float_images(imgs, None)
    out = data._to_float_images(imgs, (6, 6))
    for got, src in zip(out, imgs):
        x = src.float().div(255).unsqueeze(0).expand(1, 3, -1, -1)
        if tuple(src.shape[1:]) != (6, 6):
            down = src.shape[1] > 6 or src.shape[2] > 6
            x = F.interpolate(x, size=(6, 6), mode="bilinear", align_corners=False, antialias=down).clamp(0, 1)
        torch.testing.assert_close(got, x[0])


# ---------------------------------------------------------------------------------------------------------------
# MNIST and Fashion-MNIST (idx files)
# ---------------------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("gz", [False, True])
def test_mnist_torchvision_layout(isolated, gz):
    arrays = make_mnist_arrays(0)
    write_mnist_dir(isolated / "MNIST" / "raw", arrays, gz=gz)
    train, test = load_dataset("mnist", "train"), load_dataset("mnist", "test")
    assert train.image_shape == (1, 28, 28) and (len(train), len(test)) == (20, 10)
    assert torch.equal((train.images * 255).round().to(torch.uint8)[:, 0],
                       torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    assert train.labels.tolist() == arrays["train-labels-idx1-ubyte"].tolist()
    assert test.labels.tolist() == arrays["t10k-labels-idx1-ubyte"].tolist()
    assert train.classes[0].startswith("0") and train.num_classes == 10
    ref = arrays["train-images-idx3-ubyte"].astype(np.float64) / 255
    assert test.mean[0] == pytest.approx(ref.mean(), rel=1e-6) and test.std[0] == pytest.approx(ref.std(), rel=1e-6)


def test_mnist_missing_names_path_and_download(isolated):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("mnist")
    msg = str(err.value)
    assert "MNIST" in msg and str(isolated / "MNIST" / "raw") in msg and "download=True" in msg
    assert "DSCORE_DATA" in msg
    assert isinstance(err.value, FileNotFoundError)


def test_mnist_download_failure_is_reported(isolated, capsys):
    with pytest.raises(DatasetNotFoundError, match="network disabled"):
        load_dataset("mnist", download=True)
    assert "downloading MNIST" in capsys.readouterr().out


def fashion_arrays(label: int, seed: int):
    arrays = make_mnist_arrays(seed)
    arrays["train-labels-idx1-ubyte"][:] = label
    arrays["t10k-labels-idx1-ubyte"][:] = label
    return arrays


def test_fashion_prefers_torchvision_layout(isolated, tmp_path, monkeypatch):
    write_mnist_dir(isolated / "FashionMNIST" / "raw", fashion_arrays(1, 0), gz=False)
    debian = tmp_path / "debian"
    write_mnist_dir(debian, fashion_arrays(2, 1), gz=True)
    monkeypatch.setenv(data.FASHION_MNIST_DEBIAN_DIR_ENV, str(debian))
    ds = load_dataset("fashion_mnist", "test")
    assert set(ds.labels.tolist()) == {1}
    assert ds.classes == tuple(torchvision.datasets.FashionMNIST.classes)


@pytest.mark.parametrize("gz", [True, False])
def test_fashion_debian_fallback(isolated, tmp_path, monkeypatch, gz):
    debian = tmp_path / "debian"
    arrays = fashion_arrays(2, 1)
    write_mnist_dir(debian, arrays, gz=gz)
    monkeypatch.setenv(data.FASHION_MNIST_DEBIAN_DIR_ENV, str(debian))
    downloads = []
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", lambda self: downloads.append(1))
    ds = load_dataset("fashion_mnist", "train")
    assert downloads == []
    assert set(ds.labels.tolist()) == {2} and len(ds) == 20
    assert torch.equal((ds.images * 255).round().to(torch.uint8)[:, 0],
                       torch.from_numpy(arrays["train-images-idx3-ubyte"]))
    raw = isolated / "FashionMNIST" / "raw"
    assert sorted(p.name for p in raw.iterdir()) == sorted(IDX_FILES)  # unpacked, no temporary files left
    assert (raw / "train-labels-idx1-ubyte").read_bytes()[8:] == arrays["train-labels-idx1-ubyte"].tobytes()


def test_fashion_corrupt_layout_file_is_replaced_from_debian(isolated, tmp_path, monkeypatch):
    raw = isolated / "FashionMNIST" / "raw"
    write_mnist_dir(raw, fashion_arrays(1, 0), gz=False)
    (raw / "train-images-idx3-ubyte").write_bytes(b"\x00\x00")     # a truncated file, e.g. a killed copy
    debian = tmp_path / "debian"
    write_mnist_dir(debian, fashion_arrays(2, 1), gz=True)
    monkeypatch.setenv(data.FASHION_MNIST_DEBIAN_DIR_ENV, str(debian))
    ds = load_dataset("fashion_mnist", "train")
    assert set(ds.labels.tolist()) == {2} and len(ds) == 20


def test_download_message_only_when_something_is_downloaded(isolated, monkeypatch, capsys):
    write_mnist_dir(isolated / "MNIST" / "raw", make_mnist_arrays(0), gz=False)
    monkeypatch.setattr(torchvision.datasets.MNIST, "download", lambda self: None)
    load_dataset("mnist", download=True)
    assert "downloading" not in capsys.readouterr().out


def test_fashion_layout_with_only_gz_files(isolated):
    write_mnist_dir(isolated / "FashionMNIST" / "raw", fashion_arrays(3, 0), gz=True)
    assert set(load_dataset("fashion_mnist").labels.tolist()) == {3}


def test_fashion_clear_error_when_all_three_fail(isolated, monkeypatch, capsys):
    monkeypatch.delenv(data.ALLOW_DOWNLOAD_ENV)  # the default: try the download as the last resort
    calls = []

    def failing_download(self):
        calls.append(self.root)
        raise URLError("no route to host")

    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download", failing_download)
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("fashion_mnist")
    assert len(calls) == 1
    assert "downloading Fashion-MNIST" in capsys.readouterr().out
    msg = str(err.value)
    for needle in ["Fashion-MNIST", str(isolated / "FashionMNIST" / "raw"), os.environ[data.FASHION_MNIST_DEBIAN_DIR_ENV],
                   "DSCORE_DATA", "apt-get install dataset-fashion-mnist", "download=True", "no route to host"]:
        assert needle in msg, needle
    assert isinstance(err.value, FileNotFoundError)


def test_fashion_download_false_skips_download(isolated, monkeypatch):
    monkeypatch.delenv(data.ALLOW_DOWNLOAD_ENV)
    monkeypatch.setattr(torchvision.datasets.FashionMNIST, "download",
                        lambda self: pytest.fail("download must not be attempted"))
    with pytest.raises(DatasetNotFoundError, match="download not attempted"):
        load_dataset("fashion_mnist", download=False)


@pytest.mark.skipif(not all((REAL_DEBIAN / f"{b}.gz").is_file() for b in IDX_FILES),
                    reason="Debian's dataset-fashion-mnist package is not installed")
def test_real_fashion_mnist_from_debian(isolated, monkeypatch):
    monkeypatch.setenv(data.FASHION_MNIST_DEBIAN_DIR_ENV, str(REAL_DEBIAN))
    train, test = load_dataset("fashion_mnist", "train"), load_dataset("fashion_mnist", "test")
    assert (len(train), len(test)) == (60000, 10000)
    assert train.image_shape == (1, 28, 28) and train.num_classes == 10
    assert train.class_counts().tolist() == [6000] * 10 and test.class_counts().tolist() == [1000] * 10
    assert train.mean[0] == pytest.approx(0.2860, abs=1e-4) and train.std[0] == pytest.approx(0.3530, abs=1e-4)
    assert test.mean == train.mean
    assert 0.0 <= float(train.images.min()) and float(train.images.max()) <= 1.0


# ---------------------------------------------------------------------------------------------------------------
# CIFAR-10/100 (python pickles) and SVHN (.mat)
# ---------------------------------------------------------------------------------------------------------------

def test_cifar10_pickles(isolated, lenient_md5):
    rng = np.random.default_rng(0)
    folder = isolated / "cifar-10-batches-py"
    batches = []
    for i in range(1, 6):
        rows = rng.integers(0, 256, (3, 3072), dtype=np.uint8)
        labels = [(i + j) % 10 for j in range(3)]
        batches.append((rows, labels))
        write_pickle(folder / f"data_batch_{i}", {"data": rows, "labels": labels})
    test_rows = rng.integers(0, 256, (4, 3072), dtype=np.uint8)
    write_pickle(folder / "test_batch", {"data": test_rows, "labels": [9, 8, 7, 6]})
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    write_pickle(folder / "batches.meta", {"label_names": names})

    train, test = load_dataset("cifar10"), load_dataset("cifar10", "test")
    assert train.image_shape == (3, 32, 32) and (len(train), len(test)) == (15, 4)
    expected = np.concatenate([r for r, _ in batches]).reshape(-1, 3, 32, 32)       # R plane, G plane, B plane
    assert torch.equal((train.images * 255).round().to(torch.uint8), torch.from_numpy(expected))
    assert train.labels.tolist() == sum((lab for _, lab in batches), [])
    assert test.labels.tolist() == [9, 8, 7, 6] and train.classes == tuple(names)
    ref = expected.astype(np.float64) / 255
    assert test.mean == pytest.approx(ref.mean(axis=(0, 2, 3)).tolist(), rel=1e-6)
    assert test.std == pytest.approx(ref.std(axis=(0, 2, 3)).tolist(), rel=1e-6)


def test_cifar100_pickles(isolated, lenient_md5):
    rng = np.random.default_rng(1)
    folder = isolated / "cifar-100-python"
    rows = rng.integers(0, 256, (5, 3072), dtype=np.uint8)
    write_pickle(folder / "train", {"data": rows, "fine_labels": [99, 0, 42, 7, 99], "coarse_labels": [1] * 5})
    write_pickle(folder / "test", {"data": rows[:2], "fine_labels": [3, 4], "coarse_labels": [0, 0]})
    names = [f"class{i:02d}" for i in range(100)]
    write_pickle(folder / "meta", {"fine_label_names": names, "coarse_label_names": ["x"] * 20})
    train, test = load_dataset("cifar100"), load_dataset("cifar100", "test")
    assert train.num_classes == 100 and train.classes == tuple(names)
    assert train.labels.tolist() == [99, 0, 42, 7, 99] and test.labels.tolist() == [3, 4]
    assert torch.equal((test.images * 255).round().to(torch.uint8), torch.from_numpy(rows[:2].reshape(-1, 3, 32, 32)))


def test_cifar_missing_and_corrupt(isolated):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("cifar10")
    assert str(isolated / "cifar-10-batches-py" / "data_batch_1") in str(err.value) and "download=True" in str(err.value)
    folder = isolated / "cifar-100-python"
    for f in ("train", "test", "meta"):
        write_pickle(folder / f, {})
    with pytest.raises(DatasetNotFoundError, match="corrupted"):   # md5 check of the real torchvision class
        load_dataset("cifar100")


def test_svhn_mat(isolated, lenient_md5):
    from scipy.io import savemat

    rng = np.random.default_rng(2)
    arrays = {}
    for split, n in (("train", 6), ("test", 3)):
        x = rng.integers(0, 256, (32, 32, 3, n), dtype=np.uint8)       # SVHN stores (H, W, C, N)
        y = (np.arange(n) % 10 + 1).reshape(n, 1).astype(np.uint8)      # labels 1..10, 10 means digit 0
        y[0] = 10
        savemat(isolated / f"{split}_32x32.mat", {"X": x, "y": y})
        arrays[split] = (x, y)
    train, test = load_dataset("svhn"), load_dataset("svhn", "test")
    x, y = arrays["train"]
    assert train.image_shape == (3, 32, 32) and len(train) == 6 and len(test) == 3
    assert torch.equal((train.images * 255).round().to(torch.uint8), torch.from_numpy(x.transpose(3, 2, 0, 1)))
    assert train.labels.tolist() == [int(v) % 10 for v in y[:, 0]] and train.labels[0] == 0
    assert train.classes == tuple("0123456789")
    with pytest.raises(DatasetNotFoundError, match="train_32x32.mat"):
        load_dataset("svhn", root=isolated / "elsewhere")


# ---------------------------------------------------------------------------------------------------------------
# TinyImageNet and generic image folders
# ---------------------------------------------------------------------------------------------------------------

def save_image(path: Path, array: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(array).save(path)


def test_tinyimagenet_layout(isolated):
    rng = np.random.default_rng(3)
    base = isolated / "tiny-imagenet-200"
    wnids = ["n02000002", "n01000001", "n03000003"]                   # file order is not sorted
    (base).mkdir()
    (base / "wnids.txt").write_text("\n".join(wnids) + "\n")
    (base / "words.txt").write_text("n01000001\tgoldfish, Carassius auratus\nn02000002\tcat\n"
                                    "n03000003\tteapot\nn09999999\tunused\n")
    for k, w in enumerate(sorted(wnids)):
        for j in range(2):
            save_image(base / "train" / w / "images" / f"{w}_{j}.png", rng.integers(0, 256, (8, 8, 3), dtype=np.uint8))
        (base / "train" / w / f"{w}_boxes.txt").write_text("ignored")
    save_image(base / "train" / "n03000003" / "images" / "n03000003_grey.JPEG",
               rng.integers(0, 256, (8, 8), dtype=np.uint8))             # a grey JPEG among RGB images
    val_pixels = {}
    lines = []
    for i, w in enumerate(["n03000003", "n01000001", "n01000001", "n02000002"]):
        arr = rng.integers(0, 256, (8, 8, 3), dtype=np.uint8)
        save_image(base / "val" / "images" / f"val_{i}.png", arr)
        val_pixels[i] = arr
        lines.append(f"val_{i}.png\t{w}\t0\t0\t7\t7")
    (base / "val" / "val_annotations.txt").write_text("\n".join(lines) + "\n")

    train = load_dataset("tinyimagenet", "train", progress=False)
    test = load_dataset("tinyimagenet", "test", progress=False)
    assert train.classes == ("goldfish", "cat", "teapot")                # label order = sorted wnids
    assert train.image_shape == (3, 8, 8) and len(train) == 7
    assert train.labels.tolist() == [0, 0, 1, 1, 2, 2, 2]
    assert test.labels.tolist() == [2, 0, 0, 1]
    for i, arr in val_pixels.items():
        assert torch.equal((test.images[i] * 255).round().to(torch.uint8), torch.from_numpy(arr).permute(2, 0, 1))
    grey = train.images[train.labels == 2]
    assert any(torch.equal(img[0], img[1]) and torch.equal(img[1], img[2]) for img in grey)
    assert test.mean == train.mean
    with pytest.raises(ValueError, match="download"):
        load_dataset("tinyimagenet", download=True)


def test_tinyimagenet_missing(isolated):
    with pytest.raises(DatasetNotFoundError) as err:
        load_dataset("tinyimagenet")
    assert str(isolated / "tiny-imagenet-200" / "train") in str(err.value) and "tiny-imagenet-200.zip" in str(err.value)


def test_imagefolder(tmp_path):
    rng = np.random.default_rng(4)
    root = tmp_path / "folder"
    pixels = {}
    for split, per_class in (("train", 3), ("test", 1)):
        for cls in ("zebra", "ant", "moose"):
            if split == "test" and cls == "ant":
                continue                                                  # test lacks a class: labels still follow train
            for j in range(per_class):
                arr = rng.integers(0, 256, (6, 5), dtype=np.uint8)
                save_image(root / split / cls / f"{j}.png", arr)
                pixels[(split, cls, j)] = arr
    (root / "train" / "ant" / "notes.txt").write_text("not an image")
    train = load_dataset("imagefolder", "train", root=root, progress=False)
    test = load_dataset("imagefolder", "test", root=root, progress=False)
    assert train.classes == ("ant", "moose", "zebra") and test.classes == train.classes
    assert train.image_shape == (1, 6, 5) and train.image_size == (6, 5)   # grey files stay 1-channel
    assert train.labels.tolist() == [0, 0, 0, 1, 1, 1, 2, 2, 2]
    assert test.labels.tolist() == [1, 2]
    assert torch.equal((test.images[1, 0] * 255).round().to(torch.uint8), torch.from_numpy(pixels[("test", "zebra", 0)]))
    assert test.mean == train.mean
    resized = load_dataset("imagefolder", "train", root=root, image_size=4, progress=False)
    assert resized.image_shape == (1, 4, 4)


def test_imagefolder_size_errors_and_resize(tmp_path):
    root = tmp_path / "mixed"
    save_image(root / "train" / "a" / "0.png", np.zeros((8, 8, 3), dtype=np.uint8))
    save_image(root / "train" / "a" / "1.png", np.zeros((8, 8, 3), dtype=np.uint8))
    save_image(root / "train" / "b" / "0.jpg", np.full((10, 12, 3), 255, dtype=np.uint8))
    with pytest.raises(ValueError) as err:
        load_dataset("imagefolder", root=root, progress=False)
    assert "8x8 (2 images)" in str(err.value) and "10x12 (1 images)" in str(err.value)
    ds = load_dataset("imagefolder", root=root, image_size=8, progress=False)
    assert ds.image_shape == (3, 8, 8) and ds.labels.tolist() == [0, 0, 1]
    assert float(ds.images[:2].max()) == 0.0 and float(ds.images[2].min()) > 0.95
    with pytest.raises(DatasetNotFoundError, match="test"):
        load_dataset("imagefolder", "test", root=root)
    extra = tmp_path / "extra"
    save_image(extra / "train" / "a" / "0.png", np.zeros((4, 4), dtype=np.uint8))
    save_image(extra / "test" / "z" / "0.png", np.zeros((4, 4), dtype=np.uint8))
    with pytest.raises(ValueError, match="z"):
        load_dataset("imagefolder", "test", root=extra)


def test_imagefolder_without_train_split_uses_own_stats(tmp_path):
    root = tmp_path / "only_test"
    save_image(root / "test" / "a" / "0.png", np.full((4, 4), 51, dtype=np.uint8))
    save_image(root / "test" / "b" / "0.png", np.full((4, 4), 153, dtype=np.uint8))
    with pytest.warns(UserWarning, match="no train split"):
        ds = load_dataset("imagefolder", "test", root=root, progress=False)
    assert ds.mean[0] == pytest.approx(0.4) and ds.std[0] == pytest.approx(0.2)
    assert ds.labels.tolist() == [0, 1]


def test_mean_std_of_test_split_needs_train(isolated):
    write_mnist_dir(isolated / "MNIST" / "raw", make_mnist_arrays(0), gz=False)
    first = load_dataset("mnist", "test")        # train not loaded yet: statistics from one read of the train files
    data.clear_cache()
    train = load_dataset("mnist", "train")
    assert load_dataset("mnist", "test").mean == train.mean == first.mean


# ------------------------------------------------------------------------------------ train/val split

def _split_ds(labels):
    from dscore.data import ImageDataset
    labels = torch.tensor(labels, dtype=torch.long)
    images = torch.arange(len(labels), dtype=torch.float32).view(-1, 1, 1, 1).expand(-1, 1, 2, 2).contiguous()
    return ImageDataset("toy", "train", images, labels, tuple(str(c) for c in range(int(labels.max()) + 1)), (0.5,), (0.2,))


@pytest.mark.parametrize("fraction", [0.1, 0.25, 0.5, 0.9])
@pytest.mark.parametrize("seed", [0, 3])
def test_train_val_split_is_stratified_disjoint_covering_and_seeded(fraction, seed):
    from dscore.data import train_val_split
    labels = [0] * 10 + [1] * 7 + [2] * 23 + [3] * 2
    ds = _split_ds(labels)
    train, val = train_val_split(ds, fraction, seed)
    ids_train = train.images[:, 0, 0, 0].long().tolist()
    ids_val = val.images[:, 0, 0, 0].long().tolist()
    assert not set(ids_train) & set(ids_val) and sorted(ids_train + ids_val) == list(range(len(labels)))
    assert ids_train == sorted(ids_train) and ids_val == sorted(ids_val)
    for c, n in Counter(labels).items():
        want = min(max(math.floor(fraction * n + 0.5), 1), n - 1)
        assert int((val.labels == c).sum()) == want and int((train.labels == c).sum()) == n - want
    assert torch.equal(train.labels, ds.labels[ids_train]) and torch.equal(val.labels, ds.labels[ids_val])
    assert train.mean == val.mean == ds.mean and train.classes == ds.classes
    again_train, again_val = train_val_split(ds, fraction, seed)
    assert torch.equal(again_val.images, val.images) and torch.equal(again_train.images, train.images)


def test_train_val_split_seeds_differ_and_reach_every_sample():
    from dscore.data import train_val_split
    ds = _split_ds([0] * 20 + [1] * 20)
    seen = set()
    vals = []
    for seed in range(40):
        _, val = train_val_split(ds, 0.25, seed)
        vals.append(tuple(val.images[:, 0, 0, 0].long().tolist()))
        seen |= set(vals[-1])
    assert len(set(vals)) > 30 and seen == set(range(40))


@pytest.mark.parametrize("fraction", [0.0, 1.0, -0.2, 1.5, float("nan"), "a"])
def test_train_val_split_rejects_bad_fraction(fraction):
    from dscore.data import train_val_split
    with pytest.raises(ValueError, match="fraction"):
        train_val_split(_split_ds([0, 0, 1, 1]), fraction, 0)


def test_train_val_split_rejects_singleton_class_and_bad_seed():
    from dscore.data import train_val_split
    with pytest.raises(ValueError, match="class 1 has 1 sample"):
        train_val_split(_split_ds([0, 0, 1, 2, 2]), 0.5, 0)
    with pytest.raises(ValueError, match="seed"):
        train_val_split(_split_ds([0, 0, 1, 1]), 0.5, -1)
