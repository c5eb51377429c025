"""The torchvision loaders on tiny files in each dataset's original format.

No network: sockets and DNS are disabled for every test in this file. The files are
written with gzip/struct/pickle/scipy directly (tests/helpers/torchvision_files.py, not with
snnl or torchvision code) and read back through torchvision's own dataset classes, as after a real download.
"""

from __future__ import annotations

import gzip
import shutil
import socket
import tarfile
from pathlib import Path

import numpy as np
import pytest
import torchvision.datasets as tvd

from helpers.torchvision_files import (CIFAR_NAMES, cifar_md5_tables, svhn_split_list, write_cifar, write_idx_set,
                                      write_svhn)
from snnl.data import dataset_options
from snnl.data.prepare import build_splits
from snnl.data.torchvision_sets import load_torchvision
from snnl.errors import DataError

IDX_SETS = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}
N_TRAIN, N_TEST = 40, 20  # 4 and 2 per class


@pytest.fixture(autouse=True)
def no_network(monkeypatch):
    def refuse(*args, **kwargs):
        raise OSError("network access is disabled in snnl's tests")

    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    monkeypatch.setattr(socket.socket, "connect", refuse)


def _check_idx_pools(data, arrays) -> None:
    train_x, train_y = data.pools["train"]
    test_x, test_y = data.pools["test"]
    assert train_x.shape == (N_TRAIN, 1, 28, 28) and train_x.dtype == np.uint8
    assert test_x.shape == (N_TEST, 1, 28, 28)
    np.testing.assert_array_equal(train_x[:, 0], arrays["train-images-idx3-ubyte"])
    np.testing.assert_array_equal(train_y, arrays["train-labels-idx1-ubyte"].astype(np.int64))
    np.testing.assert_array_equal(test_x[:, 0], arrays["t10k-images-idx3-ubyte"])
    np.testing.assert_array_equal(test_y, arrays["t10k-labels-idx1-ubyte"].astype(np.int64))
    assert train_y.dtype == np.int64


@pytest.mark.parametrize("name", sorted(IDX_SETS))
def test_idx_flat_gz_folder(tmp_path, name):
    """A folder of the original .gz files (the Debian package's layout) is read via torchvision."""
    arrays = write_idx_set(tmp_path / "orig")
    options = dataset_options(name, {"datasets": {name: {"raw_dir": str(tmp_path / "orig")}}})
    data = load_torchvision(name, options)
    _check_idx_pools(data, arrays)
    assert data.source["reader"] == f"torchvision.datasets.{IDX_SETS[name]}"
    assert len(data.classes) == 10
    assert not any(p.name.endswith("-ubyte") for p in (tmp_path / "orig").iterdir()), "raw_dir must stay untouched"


@pytest.mark.parametrize("name", sorted(IDX_SETS))
def test_idx_torchvision_root_layout(tmp_path, name):
    """ROOT/<Class>/raw/ with uncompressed files, as torchvision leaves them after a download."""
    arrays = write_idx_set(tmp_path / IDX_SETS[name] / "raw", compressed=False)
    data = load_torchvision(name, dataset_options(name, {"datasets": {name: {"raw_dir": str(tmp_path)}}}))
    _check_idx_pools(data, arrays)


def test_idx_download_path_uses_torchvision_download(tmp_path, monkeypatch):
    """download: true runs torchvision's MNIST.download; only the HTTP fetch is replaced by a local copy."""
    originals = tmp_path / "server"
    arrays = write_idx_set(originals)
    fetched = []

    def fake_fetch(url, download_root, filename=None, md5=None, **kwargs):
        fetched.append(url)
        shutil.copy(originals / filename, Path(download_root) / filename)
        from torchvision.datasets.utils import extract_archive

        extract_archive(str(Path(download_root) / filename), str(download_root))

    monkeypatch.setattr("torchvision.datasets.mnist.download_and_extract_archive", fake_fetch)
    root = tmp_path / "raw"
    options = dataset_options("kmnist", {"datasets": {"kmnist": {"raw_dir": str(root), "download": True}}})
    data = load_torchvision("kmnist", options)
    _check_idx_pools(data, arrays)
    assert len(fetched) == 4 and all("kmnist" in url for url in fetched)
    assert (root / "KMNIST" / "raw" / "train-images-idx3-ubyte").is_file()
    assert data.source["downloaded"] is True
    # Second time: files are present, nothing is fetched.
    load_torchvision("kmnist", options)
    assert len(fetched) == 4


def test_download_failure_is_a_clear_error(tmp_path):
    options = dataset_options("mnist", {"datasets": {"mnist": {"raw_dir": str(tmp_path / "raw"), "download": True}}})
    with pytest.raises(DataError, match=r"downloading dataset `mnist` into .* failed.*raw_dir"):
        load_torchvision("mnist", options)


@pytest.mark.parametrize("name", ["mnist", "kmnist", "svhn", "cifar10", "fashion_mnist"])
def test_missing_offline_dataset_names_places_and_both_fixes(tmp_path, name, monkeypatch):
    monkeypatch.chdir(tmp_path)  # default search root data/raw is empty here
    monkeypatch.setattr("snnl.data.torchvision_sets.SETS", _without_extra_dirs())
    options = dataset_options(name)
    with pytest.raises(DataError) as info:
        load_torchvision(name, options)
    message = str(info.value)
    assert f"`{name}` is not available offline" in message
    assert "data/raw" in message  # where it looked
    assert "download: true" in message and "raw_dir" in message  # the two ways to get it


def _without_extra_dirs():
    from dataclasses import replace

    from snnl.data.torchvision_sets import SETS

    return {k: replace(v, extra_dirs=()) for k, v in SETS.items()}


def test_incomplete_folder_is_reported(tmp_path):
    write_idx_set(tmp_path)
    (tmp_path / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"incomplete: missing t10k-labels-idx1-ubyte"):
        load_torchvision("mnist", dataset_options("mnist", {"datasets": {"mnist": {"raw_dir": str(tmp_path)}}}))


def test_corrupt_idx_file_is_a_data_error(tmp_path):
    write_idx_set(tmp_path)
    with gzip.open(tmp_path / "train-images-idx3-ubyte.gz", "wb") as fh:
        fh.write(b"\x00\x00\x08\x03garbage")
    with pytest.raises(DataError, match=r"could not read the original `mnist` files in .*corrupt"):
        load_torchvision("mnist", dataset_options("mnist", {"datasets": {"mnist": {"raw_dir": str(tmp_path)}}}))


def test_idx_splits_stratified_and_official_test_kept(tmp_path):
    write_idx_set(tmp_path)
    options = dataset_options("fashion_mnist", {"datasets": {"fashion_mnist": {"raw_dir": str(tmp_path), "val_size": 10}}})
    splits, classes, _, _ = build_splits("fashion_mnist", options)
    assert classes[0] == "T-shirt/top" and classes[9] == "Ankle boot"
    assert np.bincount(splits["val"][1], minlength=10).tolist() == [1] * 10
    assert np.bincount(splits["train"][1], minlength=10).tolist() == [3] * 10
    assert len(splits["test"][1]) == N_TEST


# ------------------------------------------------------------------ CIFAR-10


def trust_cifar_files(monkeypatch, folder: Path) -> None:
    """torchvision checks CIFAR files against the real MD5s; point its table at the tiny files."""
    for key, value in cifar_md5_tables(folder).items():
        monkeypatch.setattr(tvd.CIFAR10, key, value)


def _check_cifar(data, written) -> None:
    train_chw, train_labels, test_chw, test_labels = written
    np.testing.assert_array_equal(data.pools["train"][0], train_chw)
    np.testing.assert_array_equal(data.pools["train"][1], train_labels)
    np.testing.assert_array_equal(data.pools["test"][0], test_chw)
    np.testing.assert_array_equal(data.pools["test"][1], test_labels)
    assert data.classes == CIFAR_NAMES


@pytest.mark.parametrize("layout", ["torchvision_root", "batches_folder", "tarball"])
def test_cifar10_layouts(tmp_path, monkeypatch, layout):
    batches = tmp_path / "build" / "cifar-10-batches-py"
    written = write_cifar(batches)
    trust_cifar_files(monkeypatch, batches)
    if layout == "torchvision_root":
        raw_dir = tmp_path / "build"
    elif layout == "batches_folder":
        raw_dir = batches
    else:
        raw_dir = tmp_path / "dl"
        raw_dir.mkdir()
        with tarfile.open(raw_dir / "cifar-10-python.tar.gz", "w:gz") as tar:
            tar.add(batches, arcname="cifar-10-batches-py")
    data = load_torchvision("cifar10", dataset_options("cifar10", {"datasets": {"cifar10": {"raw_dir": str(raw_dir)}}}))
    _check_cifar(data, written)
    assert data.pools["train"][0].flags["C_CONTIGUOUS"]


def test_cifar10_md5_mismatch_is_a_data_error(tmp_path):
    write_cifar(tmp_path / "cifar-10-batches-py")  # real MD5 table: these tiny files do not match
    with pytest.raises(DataError, match=r"corrupt, truncated or not the originals"):
        load_torchvision("cifar10", dataset_options("cifar10", {"datasets": {"cifar10": {"raw_dir": str(tmp_path)}}}))


# ------------------------------------------------------------------ SVHN


def test_svhn_mat_files(tmp_path, monkeypatch):
    written = write_svhn(tmp_path / "SVHN")
    monkeypatch.setattr(tvd.SVHN, "split_list", svhn_split_list(tmp_path / "SVHN"))
    data = load_torchvision("svhn", dataset_options("svhn", {"datasets": {"svhn": {"raw_dir": str(tmp_path)}}}))
    for split in ("train", "test"):
        np.testing.assert_array_equal(data.pools[split][0], written[split][0])
        np.testing.assert_array_equal(data.pools[split][1], written[split][1])  # 10 -> 0
    assert data.pools["train"][0].shape == (30, 3, 32, 32)
    assert data.classes == [str(d) for d in range(10)]
