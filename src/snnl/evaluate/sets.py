"""The load stage of `snnl evaluate`: the image sets it scores, drawn reproducibly.

Every subset is a class-stratified sample drawn from its own random stream (seeded with
``[seed, stream]``), so changing one subset's size never moves another's points.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from snnl.errors import DataError

# independent random streams (seeded with [seed, stream]) for each subset
REF, HOLDOUT, OUTLIER, ATTACK, TSNE, GRAD, PGD = range(1, 8)


def stream_rng(seed: int, stream: int) -> np.random.Generator:
    """The numpy generator of random stream ``stream`` under ``seed``."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def stratified_subset(labels: torch.Tensor | np.ndarray, size: int | None, seed: int, stream: int) -> np.ndarray:
    """Sorted indices of a class-stratified sample of ``size`` (all when None or too large)."""
    from snnl.data.splits import stratified_take

    y = np.asarray(labels)
    if size is None or size >= y.shape[0]:
        return np.arange(y.shape[0])
    taken, _ = stratified_take(y, int(size), stream_rng(seed, stream))
    return taken


def validation_split(data: Any) -> tuple[torch.Tensor, torch.Tensor] | None:
    """``data.val`` (images, labels), or None for a dataset without a validation split."""
    try:
        return data.val
    except (DataError, AttributeError):
        return None


@dataclass
class FitSet:
    """The clean images the z-scores that combine layers are fitted on: the validation split
    (``name`` ``val``), or training points outside the reference set (``train_holdout``)."""

    name: str
    images: torch.Tensor
    labels: torch.Tensor
    indices: np.ndarray  # into the source split


def zscore_fit_set(data: Any, ref_idx: np.ndarray, seed: int) -> FitSet:
    """The validation split, or (without one) a stratified sample of at most 1000 training
    points outside the reference set ``ref_idx``.

    Raises:
        DataError: no validation split and fewer than 2 training points left over.
    """
    val = validation_split(data)
    if val is not None:
        return FitSet("val", val[0], val[1], np.arange(int(val[1].shape[0])))
    train_x, train_y = data.train
    rest = np.setdiff1d(np.arange(int(train_y.shape[0])), ref_idx)
    if rest.size < 2:
        raise DataError("no validation split and no training points outside the reference set to fit the z-scores; "
                        "lower evaluate.reference_size")
    idx = rest[stratified_subset(train_y[rest], min(1000, rest.size), seed, HOLDOUT)]
    return FitSet("train_holdout", train_x[idx], train_y[idx], idx)


def check_compatible(model: nn.Module, data: Any, outliers: dict[str, Any], ckpt: dict[str, Any] | None) -> None:
    """The model takes the data's image shape and class count, and every outlier set has the
    data's image shape.

    Raises:
        DataError: naming the mismatch and the fix (the dataset the checkpoint was trained on;
            ``snnl prepare-data --like`` for an outlier set).
    """
    shape = [int(s) for s in data.shape]
    spec = getattr(model, "spec", None) or (ckpt or {}).get("model_spec") or {}
    if spec:
        if list(spec.get("input_shape", shape)) != shape:
            raise DataError(f"the model takes inputs of shape {spec['input_shape']}, the data {getattr(data, 'name', '')} "
                            f"has {shape}; pass the dataset the checkpoint was trained on")
        if int(spec.get("num_classes", len(data.classes))) != len(data.classes):
            raise DataError(f"the model has {spec['num_classes']} classes, the data {len(data.classes)}; "
                            "pass the dataset the checkpoint was trained on")
    for name, o in outliers.items():
        if [int(s) for s in o.shape] != shape:
            raise DataError(f"outlier set `{name}` has images of shape {list(o.shape)}, the model takes {shape}; "
                            f"prepare it with `snnl prepare-data --dataset {getattr(o, 'name', name)} --like "
                            f"{getattr(data, 'name', 'DATASET')}`")


def checkpoint_info(ckpt: dict[str, Any] | None) -> dict[str, Any]:
    """What summary.json records of the checkpoint: path, regime, seed, step, model spec,
    dataset name and the test accuracy training reported."""
    if not ckpt:
        return {}
    info = {k: ckpt.get(k) for k in ("path", "regime", "seed", "step", "model_spec")}
    ds = ckpt.get("dataset")
    info["dataset"] = ds.get("name") if isinstance(ds, dict) else ds
    metrics = ckpt.get("metrics") or {}
    if isinstance(metrics, dict) and "test_accuracy" in metrics:
        info["train_reported_test_accuracy"] = metrics["test_accuracy"]
    return info
