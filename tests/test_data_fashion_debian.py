"""The full Fashion-MNIST from Debian's package `dataset-fashion-mnist`, offline.

`make test` (and so `.ci/run`) installs the package with apt-get when it is missing.
The test skips only where apt-get is unavailable; where apt-get exists but the package
is not installed it fails, saying how to install it.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path

import numpy as np
import pytest

from snnl.cli import main
from snnl.data import dataset_options, load_prepared
from snnl.data.defaults import DEBIAN_FASHION_MNIST_DIR
from snnl.data.torchvision_sets import load_torchvision

FILES = [
    "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte.gz",
    "t10k-images-idx3-ubyte.gz",
    "t10k-labels-idx1-ubyte.gz",
]
DEBIAN = Path(DEBIAN_FASHION_MNIST_DIR)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def debian_files() -> Path:
    if all((DEBIAN / f).is_file() for f in FILES):
        return DEBIAN
    if shutil.which("apt-get") is None:
        pytest.skip(
            f"Debian's dataset-fashion-mnist is not installed ({DEBIAN} missing) and apt-get is unavailable "
            "on this system, so it cannot be installed; the full Fashion-MNIST test runs where apt exists"
        )
    pytest.fail(
        f"{DEBIAN} lacks the Fashion-MNIST files although apt-get exists: install them with "
        "`apt-get update && apt-get install -y dataset-fashion-mnist` (as root), or run `make test`, which does"
    )


def read_idx_gz(path: Path) -> np.ndarray:
    """An independent IDX reader: big-endian header, unsigned-byte payload."""
    with gzip.open(path, "rb") as fh:
        data = fh.read()
    assert data[:2] == b"\x00\x00" and data[2] == 0x08
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, np.uint8, offset=4 + 4 * ndim).reshape(dims)


@pytest.fixture(scope="module")
def loaded(debian_files, tmp_path_factory):
    # Default options: raw_dir unset, so the Debian folder is found by the default search
    # (run from an empty folder so that no ./data/raw can be picked up first).
    import os

    here = os.getcwd()
    os.chdir(tmp_path_factory.mktemp("cwd"))
    try:
        return load_torchvision("fashion_mnist", dataset_options("fashion_mnist"))
    finally:
        os.chdir(here)


def test_full_set_sizes_and_label_counts(loaded, debian_files):
    train_x, train_y = loaded.pools["train"]
    test_x, test_y = loaded.pools["test"]
    assert train_x.shape == (60000, 1, 28, 28) and test_x.shape == (10000, 1, 28, 28)
    assert np.bincount(train_y, minlength=10).tolist() == [6000] * 10
    assert np.bincount(test_y, minlength=10).tolist() == [1000] * 10
    assert loaded.source["folder"] == str(debian_files.resolve())


def test_pixels_match_an_independent_reader(loaded, debian_files):
    np.testing.assert_array_equal(loaded.pools["test"][0][:, 0], read_idx_gz(debian_files / FILES[2]))
    np.testing.assert_array_equal(loaded.pools["test"][1], read_idx_gz(debian_files / FILES[3]))
    np.testing.assert_array_equal(loaded.pools["train"][1], read_idx_gz(debian_files / FILES[1]))
    train_images = read_idx_gz(debian_files / FILES[0])
    for i in (0, 12345, 59999):
        np.testing.assert_array_equal(loaded.pools["train"][0][i, 0], train_images[i])


def test_prepare_data_offline_end_to_end(debian_files, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert main(["prepare-data", "--dataset", "fashion_mnist", "--out", "prepared/fashion_mnist"]) == 0
    ds = load_prepared(tmp_path / "prepared" / "fashion_mnist")
    sizes = {split: len(labels) for split, (_, labels) in ds.splits.items()}
    assert sizes == {"train": 55000, "val": 5000, "test": 10000}
    assert np.bincount(ds.val[1].numpy()).tolist() == [500] * 10
    assert ds.classes[0] == "T-shirt/top" and ds.shape == (1, 28, 28)
