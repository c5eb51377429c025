"""Deterministic stratified splits: every class keeps its share, up to rounding."""

from __future__ import annotations

from typing import Any

import numpy as np

from snnl.data.loaded import LoadedData
from snnl.errors import ConfigError

Arrays = tuple[np.ndarray, np.ndarray]

# Independent random streams per step, so changing one size does not reshuffle another.
_TEST_STREAM, _TRAIN_STREAM, _VAL_STREAM, _SUBSAMPLE_STREAM = 1, 2, 3, 4


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, stream]))


def stratified_take(labels: np.ndarray, size: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """Split indices of ``labels`` into (taken, rest), ``size`` taken, stratified by class.

    Each class gets ``size * count / total`` rounded by largest remainder (ties go to the
    lower class id), so the totals are exact. Both index arrays are sorted.
    """
    total = len(labels)
    if not 0 <= size <= total:
        raise ValueError(f"cannot take {size} of {total} items")
    classes, counts = np.unique(labels, return_counts=True)
    quota = size * counts / total
    share = np.floor(quota).astype(np.int64)
    remainder = quota - share
    order = np.lexsort((classes, -remainder))  # largest remainder first, then lower class id
    share[order[: size - share.sum()]] += 1
    taken = []
    for cls, k in zip(classes, share):
        members = np.flatnonzero(labels == cls)
        taken.append(rng.permutation(members)[:k])
    taken_idx = np.sort(np.concatenate(taken)) if taken else np.zeros(0, np.int64)
    mask = np.ones(total, bool)
    mask[taken_idx] = False
    return taken_idx, np.flatnonzero(mask)


def _take(arrays: Arrays, idx: np.ndarray) -> Arrays:
    return arrays[0][idx], arrays[1][idx]


def _subsample(arrays: Arrays, size: int | None, seed: int, stream: int, what: str) -> Arrays:
    if size is None:
        return arrays
    if size > len(arrays[1]):
        raise ConfigError(f"`{what}` is {size} but only {len(arrays[1])} images are available; lower it")
    idx, _ = stratified_take(arrays[1], size, _rng(seed, stream))
    return _take(arrays, idx)


def make_splits(name: str, data: LoadedData, options: dict[str, Any]) -> dict[str, Arrays]:
    """train / val / test (or test alone for outlier-only sets) from a loader's pools."""
    seed = options.get("seed", 0)
    pools = data.pools
    if set(pools) == {"test"}:
        return {"test": _subsample(pools["test"], options.get("n"), seed, _SUBSAMPLE_STREAM, f"datasets.{name}.n")}
    if set(pools) == {"all"}:
        everything = pools["all"]
        test_size = options["test_size"]
        if test_size is None or test_size >= len(everything[1]):
            raise ConfigError(
                f"`datasets.{name}.test_size` must be below the {len(everything[1])} images of {name}, got {test_size}"
            )
        test_idx, rest_idx = stratified_take(everything[1], test_size, _rng(seed, _TEST_STREAM))
        test, train = _take(everything, test_idx), _take(everything, rest_idx)
    elif set(pools) == {"train", "test"}:
        train = pools["train"]
        test = _subsample(pools["test"], options.get("test_size"), seed, _TEST_STREAM, f"datasets.{name}.test_size")
    else:  # pragma: no cover - a loader bug
        raise AssertionError(f"loader for {name} returned pools {sorted(pools)}")
    train = _subsample(train, options.get("train_size"), seed, _TRAIN_STREAM, f"datasets.{name}.train_size")
    val_size = options["val_size"]
    if val_size >= len(train[1]):
        raise ConfigError(
            f"`datasets.{name}.val_size` is {val_size} but the training set has only {len(train[1])} images; lower it"
        )
    val_idx, train_idx = stratified_take(train[1], val_size, _rng(seed, _VAL_STREAM))
    return {"train": _take(train, train_idx), "val": _take(train, val_idx), "test": test}
