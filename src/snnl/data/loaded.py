"""What every loader returns: image pools before splitting, class names and a source note."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from snnl.errors import DataError


@dataclass
class LoadedData:
    """Images (uint8, N x C x H x W) and labels (int64, N) grouped in pools.

    ``pools`` is one of: ``{"all": ...}`` (the loader has no official split; it is split
    here), ``{"train": ..., "test": ...}`` (official split; validation is carved from
    train) or ``{"test": ...}`` (an outlier-only set).
    """

    classes: list[str]
    pools: dict[str, tuple[np.ndarray, np.ndarray]]
    source: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        for pool, (images, labels) in self.pools.items():
            check_arrays(images, labels, len(self.classes), where=f"{pool} pool")


def check_arrays(images: np.ndarray, labels: np.ndarray, n_classes: int, where: str) -> None:
    """Raise DataError unless images are uint8 N x C x H x W and labels int64 in [0, n_classes)."""
    if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1] not in (1, 3):
        raise DataError(
            f"{where}: images must be uint8 N x C x H x W with C in (1, 3), got {images.dtype} {images.shape}"
        )
    if labels.dtype != np.int64 or labels.ndim != 1 or len(labels) != len(images):
        raise DataError(f"{where}: labels must be int64 of length {len(images)}, got {labels.dtype} {labels.shape}")
    if len(labels) and (labels.min() < 0 or labels.max() >= n_classes):
        raise DataError(f"{where}: labels must lie in [0, {n_classes}), got [{labels.min()}, {labels.max()}]")
