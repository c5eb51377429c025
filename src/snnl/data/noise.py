"""Noise images (uniform and Gaussian) shaped like a dataset: an outlier set."""

from __future__ import annotations

from typing import Any

import numpy as np

from snnl.data.loaded import LoadedData


def load_noise(options: dict[str, Any]) -> LoadedData:
    """``n`` images of shape ``options["shape"]``, split evenly (first kinds get the remainder) over ``kinds``.

    uniform: every pixel an independent integer in 0..255.
    gaussian: N(gaussian_mean, gaussian_std) in units of the [0, 1] pixel range,
    scaled to 0..255, rounded and clipped.
    Labels index ``kinds``.
    """
    kinds: list[str] = list(options["kinds"])
    n, shape = options["n"], tuple(options["shape"])
    rng = np.random.default_rng(np.random.SeedSequence([options["seed"], 17]))
    counts = [n // len(kinds) + (i < n % len(kinds)) for i in range(len(kinds))]
    images, labels = [], []
    for label, (kind, count) in enumerate(zip(kinds, counts)):
        if kind == "uniform":
            block = rng.integers(0, 256, size=(count, *shape), dtype=np.uint8)
        else:
            values = rng.normal(options["gaussian_mean"], options["gaussian_std"], size=(count, *shape))
            block = np.rint(values * 255.0).clip(0, 255).astype(np.uint8)
        images.append(block)
        labels.append(np.full(count, label, np.int64))
    order = rng.permutation(n)
    return LoadedData(
        classes=kinds,
        pools={"test": (np.concatenate(images)[order], np.concatenate(labels)[order])},
        source={"kind": "generated", "origin": f"numpy noise: {', '.join(kinds)}; shape {list(shape)}"},
    )
