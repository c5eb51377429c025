"""Training data as tensors: the splits a run uses, their fingerprint, the input statistics."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Any, Sequence

import torch

from snnl.errors import DataError


@dataclass
class TrainData:
    """Tensors to train on: each split is (uint8 images N x C x H x W, int64 labels) or None."""

    train: tuple[torch.Tensor, torch.Tensor]
    val: tuple[torch.Tensor, torch.Tensor] | None = None
    test: tuple[torch.Tensor, torch.Tensor] | None = None
    classes: Sequence[str] | None = None
    name: str = "data"

    def __post_init__(self) -> None:
        if self.train is None:
            raise DataError(f"{self.name} has no train split (outlier sets have only `test`); train on an in-distribution set")
        for split in ("train", "val", "test"):
            pair = getattr(self, split)
            if pair is None:
                continue
            images, labels = pair
            images, labels = torch.as_tensor(images), torch.as_tensor(labels)
            if images.dim() != 4:
                raise DataError(f"{self.name}/{split}: images must be N x C x H x W, got shape {tuple(images.shape)}")
            if images.dtype != torch.uint8:
                raise DataError(f"{self.name}/{split}: images must be uint8 (0..255), got {images.dtype}")
            if labels.dim() != 1 or labels.shape[0] != images.shape[0]:
                raise DataError(f"{self.name}/{split}: need one label per image, got {tuple(labels.shape)} for {images.shape[0]}")
            setattr(self, split, (images, labels.long()))
        if self.train[0].shape[0] < 2:
            raise DataError(f"{self.name}: the train split needs at least 2 images")

    @classmethod
    def from_prepared(cls, ds: Any) -> "TrainData":
        """From :class:`snnl.data.PreparedDataset` (or anything with ``.splits``/``.train``...)."""
        splits = getattr(ds, "splits", None)
        get = (lambda s: splits.get(s)) if isinstance(splits, dict) else (lambda s: getattr(ds, s, None))
        return cls(get("train"), get("val"), get("test"), list(ds.classes), getattr(ds, "name", "data"))

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.train[0].shape[1:])  # type: ignore[return-value]

    @property
    def num_classes(self) -> int:
        if self.classes is not None:
            return len(self.classes)
        return int(max(int(p[1].max()) for p in (self.train, self.val, self.test) if p is not None)) + 1

    def fingerprint(self) -> dict[str, Any]:
        """Sizes and a hash of the training split: what a checkpoint must match to resume."""
        h = hashlib.sha1()
        for t in self.train:
            h.update(t.contiguous().cpu().numpy())  # buffer protocol: no copy
        return {
            "name": self.name,
            "shape": list(self.shape),
            "num_classes": self.num_classes,
            "sizes": {s: (0 if getattr(self, s) is None else int(getattr(self, s)[0].shape[0])) for s in ("train", "val", "test")},
            "train_sha1": h.hexdigest(),
        }


def channel_stats(images: torch.Tensor, chunk: int = 4096) -> tuple[list[float], list[float]]:
    """Exact per-channel mean and std of uint8 images, in [0, 1] units (integer sums)."""
    c = images.shape[1]
    s = torch.zeros(c, dtype=torch.int64)
    ss = torch.zeros(c, dtype=torch.int64)
    for start in range(0, images.shape[0], chunk):
        block = images[start : start + chunk].cpu().to(torch.int64)
        s += block.sum(dim=(0, 2, 3))
        ss += (block * block).sum(dim=(0, 2, 3))
    n = images.shape[0] * images.shape[2] * images.shape[3]
    mean = s.double() / n
    var = (ss.double() / n - mean * mean).clamp_min(0)
    return (mean / 255).tolist(), (var.sqrt() / 255).tolist()
