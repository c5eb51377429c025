"""Tiny stand-ins of MNIST, Fashion-MNIST, KMNIST, SVHN and CIFAR-10 in each dataset's original
on-disk format, written with gzip/struct/pickle/scipy directly (not with snnl or torchvision
code), for tests that read them back through torchvision (tests/test_data_torchvision.py) or
run the pipeline on them (tests/test_paper_rehearsal.py).

Images are uint8 noise with a brighter band whose position is the class, so a model can learn
something from them; labels are balanced (``n`` a multiple of 10 gives ``n / 10`` per class).
"""

from __future__ import annotations

import gzip
import hashlib
import pickle
import struct
from pathlib import Path

import numpy as np
import scipy.io

IDX_CLASSES = {"mnist": "MNIST", "fashion_mnist": "FashionMNIST", "kmnist": "KMNIST"}  # torchvision's class names
CIFAR_NAMES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
CIFAR_FOLDER = "cifar-10-batches-py"


def labels(n: int, salt: int) -> np.ndarray:
    """``n`` labels 0..9, balanced, in a seeded order (uint8)."""
    return np.random.default_rng(salt).permutation(np.arange(n) % 10).astype(np.uint8)


def images(y: np.ndarray, shape: tuple[int, ...], salt: int) -> np.ndarray:
    """uint8 images of ``shape`` (C, H, W or H, W), noise in [0, 128) plus 127 on the rows
    ``2 * label`` to ``2 * label + 1`` (the class's band), one per label in ``y``."""
    rng = np.random.default_rng(salt)
    out = rng.integers(0, 128, size=(len(y), *shape), dtype=np.uint8)
    for i, label in enumerate(y):
        out[i, ..., 2 * int(label):2 * int(label) + 2, :] += 127
    return out


def idx_bytes(array: np.ndarray) -> bytes:
    """The IDX format (LeCun): magic 0x0000 0x08(ubyte) ndim, big-endian dims, raw bytes."""
    header = struct.pack(">HBB", 0, 0x08, array.ndim) + struct.pack(f">{array.ndim}I", *array.shape)
    return header + array.astype(np.uint8).tobytes()


def write_idx_set(folder: Path, compressed: bool = True, n_train: int = 40, n_test: int = 20,
                  both: bool = False, salt: int = 0) -> dict[str, np.ndarray]:
    """The four IDX files of the MNIST family in ``folder``: gzipped (``compressed``), plain, or
    (``both``) the two side by side as torchvision leaves them after a download; ``salt`` makes
    another set (MNIST, Fashion-MNIST and KMNIST must differ). Returns {file stem: array}."""
    folder.mkdir(parents=True, exist_ok=True)
    train_y, test_y = labels(n_train, 2 + salt), labels(n_test, 4 + salt)
    arrays = {
        "train-images-idx3-ubyte": images(train_y, (28, 28), 1 + salt),
        "train-labels-idx1-ubyte": train_y,
        "t10k-images-idx3-ubyte": images(test_y, (28, 28), 3 + salt),
        "t10k-labels-idx1-ubyte": test_y,
    }
    for name, array in arrays.items():
        data = idx_bytes(array)
        if compressed or both:
            with gzip.open(folder / f"{name}.gz", "wb") as fh:
                fh.write(data)
        if not compressed or both:
            (folder / name).write_bytes(data)
    return arrays


def write_cifar(folder: Path, per_batch: int = 10,
                n_test: int | None = None) -> tuple[np.ndarray, list[int], np.ndarray, list[int]]:
    """cifar-10-batches-py in ``folder``: five training batches of ``per_batch`` images and a test
    batch of ``n_test`` (default ``per_batch``), pickled dicts with 'data' (N x 3072, R then G then B planes) and
    'labels', and batches.meta. Returns (train CHW, train labels, test CHW, test labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    train_labels = [int(v) for v in labels(5 * per_batch, 9)]
    train_chw = images(np.asarray(train_labels), (3, 32, 32), 5)
    for b in range(5):
        rows = slice(b * per_batch, (b + 1) * per_batch)
        batch = {"data": train_chw[rows].reshape(per_batch, -1), "labels": train_labels[rows],
                 "batch_label": f"training batch {b + 1} of 5"}
        (folder / f"data_batch_{b + 1}").write_bytes(pickle.dumps(batch, protocol=2))
    n_test = per_batch if n_test is None else n_test
    test_labels = [int(v) for v in labels(n_test, 10)]
    test_chw = images(np.asarray(test_labels), (3, 32, 32), 6)
    (folder / "test_batch").write_bytes(pickle.dumps({"data": test_chw.reshape(n_test, -1), "labels": test_labels}))
    (folder / "batches.meta").write_bytes(pickle.dumps({"label_names": CIFAR_NAMES, "num_vis": 3072}))
    return train_chw, train_labels, test_chw, test_labels


def write_svhn(folder: Path, n_train: int = 30, n_test: int = 10) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """SVHN's format 2 in ``folder``: train_32x32.mat and test_32x32.mat, X 32 x 32 x 3 x N uint8,
    y N x 1 with the digit 0 labelled 10. Returns {split: (CHW images, digits 0..9)}."""
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, n, salt in (("train", n_train, 7), ("test", n_test, 8)):
        digits = labels(n, salt + 100).astype(np.int64)
        chw = images(digits, (3, 32, 32), salt)
        y = np.where(digits == 0, 10, digits)[:, None].astype(np.uint8)
        scipy.io.savemat(folder / f"{split}_32x32.mat", {"X": chw.transpose(2, 3, 1, 0), "y": y})
        out[split] = (chw, digits)
    return out


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def cifar_md5_tables(folder: Path) -> dict:
    """torchvision.datasets.CIFAR10's train_list, test_list and meta for the files in ``folder``
    (torchvision checks the real files' MD5s, which tiny stand-ins cannot match)."""
    return {
        "train_list": [[f"data_batch_{i}", md5(folder / f"data_batch_{i}")] for i in range(1, 6)],
        "test_list": [["test_batch", md5(folder / "test_batch")]],
        "meta": {"filename": "batches.meta", "key": "label_names", "md5": md5(folder / "batches.meta")},
    }


def svhn_split_list(folder: Path) -> dict:
    """torchvision.datasets.SVHN's split_list for the .mat files in ``folder`` (URLs left invalid)."""
    return {split: [f"http://invalid/{split}.mat", f"{split}_32x32.mat", md5(folder / f"{split}_32x32.mat")]
            for split in ("train", "test")}


def write_raw_root(root: Path, n_train: int = 200, n_test: int = 100) -> dict:
    """The five sets in ``root`` (e.g. data/raw) as torchvision's own download leaves them:
    ROOT/MNIST/raw, ROOT/FashionMNIST/raw, ROOT/KMNIST/raw (the .gz originals and the extracted
    files), ROOT/cifar-10-batches-py, ROOT/SVHN/*.mat; ``n_train`` training and ``n_test`` test
    images each (multiples of 10; ``n_train`` a multiple of 50 for CIFAR-10's five balanced batches).
    Returns the MD5 tables that torchvision must be given to trust the CIFAR-10 and SVHN files:
    {"cifar10": cifar_md5_tables, "svhn": svhn_split_list}."""
    for i, cls in enumerate(IDX_CLASSES.values()):
        write_idx_set(root / cls / "raw", n_train=n_train, n_test=n_test, both=True, salt=20 * i)
    if n_train % 50 or n_test % 10:
        raise ValueError(f"n_train={n_train}, n_test={n_test}: give multiples of 50 and 10 (balanced classes)")
    write_cifar(root / CIFAR_FOLDER, per_batch=n_train // 5, n_test=n_test)
    write_svhn(root / "SVHN", n_train=n_train, n_test=n_test)
    return {"cifar10": cifar_md5_tables(root / CIFAR_FOLDER), "svhn": svhn_split_list(root / "SVHN")}
