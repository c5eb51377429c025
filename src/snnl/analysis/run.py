"""`snnl analyze`'s computation: per-layer SNNL at the optimal temperature with a bootstrap
interval over batches, the optimal temperature, and per-class same-class-neighbour counts."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from snnl.analysis.features import layer_features
from snnl.analysis.inputs import choose_sample
from snnl.analysis.measures import (
    BatchSNNL,
    bootstrap_interval,
    check_batch_labels,
    per_class_mean,
    same_class_neighbours,
    snnl_per_batch,
)
from snnl.errors import DataError

#: the per-layer columns of :attr:`Analysis.table`, then one ``neighbours[CLASS]`` column per class
COLUMNS = [
    "layer", "layer_index", "features", "samples", "batches", "batch_size",
    "snnl", "snnl_ci_low", "snnl_ci_high", "snnl_sd", "baseline",
    "temperature", "temperature_min", "temperature_max", "boundary_batches", "excluded_anchors",
    "k", "neighbours_mean",
]


def neighbour_column(name: str) -> str:
    """The table column holding class ``name``'s mean same-class-neighbour count."""
    return f"neighbours[{name}]"


@dataclass
class Analysis:
    """The result of :func:`analyze`.

    table: one row per layer, in forward order (:data:`COLUMNS`, then ``neighbours[CLASS]``).
    batches: {layer: :class:`~snnl.analysis.measures.BatchSNNL`}, the per-batch values.
    neighbours: {layer: (n,) int64 same-class counts among each point's k nearest}.
    indices: (n,) int64, the analysed images (indices into the images given), in batch order.
    labels: (n,) int64, their labels. classes: class names. level: the interval's level.
    """

    table: pd.DataFrame
    batches: dict[str, BatchSNNL]
    neighbours: dict[str, np.ndarray]
    indices: np.ndarray
    labels: np.ndarray
    classes: list[str]
    level: float


def analyze(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    layers: Sequence[str],
    *,
    classes: Sequence[str] | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    samples: int = 2048,
    batch_size: int = 256,
    k: int = 10,
    seed: int = 0,
    n_boot: int = 10_000,
    level: float = 0.95,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> Analysis:
    """Measure class entanglement in each of ``layers`` of ``model``.

    The sample: :func:`~snnl.analysis.inputs.choose_sample` (class-stratified, ``min(samples, N)``
    images, seeded, shuffled, cut to whole batches of ``batch_size``). In each layer, on the
    flattened activations (:func:`~snnl.analysis.features.layer_features`):

    * ``snnl``: the mean over batches of the SNNL at each batch's optimal temperature
      (:func:`snnl.optimal_temperature`, squared Euclidean distances); ``snnl_ci_low`` /
      ``snnl_ci_high``: the percentile bootstrap ``level`` interval of that mean over batches
      (``n_boot`` resamples, seeded; NaN with one batch); ``snnl_sd``: the standard deviation
      over batches; ``baseline``: the mean T -> infinity limit (what no class structure gives);
    * ``temperature``: the geometric mean of the batches' optimal temperatures (units of squared
      distance in the layer), with their ``temperature_min`` / ``temperature_max``;
      ``boundary_batches``: batches whose minimiser lies at the end of the search range (the
      classes are separated at every scale tried: the SNNL there is an upper bound);
      ``excluded_anchors``: points without a same-class partner in their batch (left out);
    * ``neighbours[CLASS]``: the mean, over the points of CLASS in the sample, of how many of
      each point's ``k`` nearest other points of the whole sample share its class (0..k;
      NaN when the class is absent); ``neighbours_mean``: the same over all points.

    Args:
        model: any ``nn.Module`` on ``device``. images: (N, C, H, W) uint8 or [0, 1] float, as the
            model expects them (after ``transform``). labels: (N,) int class indices.
        layers: module names (``model.named_modules()``); reported in forward order.
        classes: class names (default "0", "1", ...).

    Raises:
        ConfigError: unknown layer names, or a layer that runs zero or several times per forward.
        DataError: too few images for one batch, a batch without two images of one class, ``k``
            not below the sample size, images the model cannot take, non-finite activations.
    """
    from tqdm.auto import tqdm

    y_all = torch.as_tensor(labels).cpu().long()
    names = _class_names(y_all, images, classes)
    idx = choose_sample(y_all, samples, batch_size, seed)
    y = y_all[torch.from_numpy(idx)]
    check_batch_labels(y, batch_size)
    if isinstance(k, bool) or int(k) != k or not 1 <= k < len(idx):
        raise DataError(f"--k {k}: the sample has {len(idx)} images; k must be an integer in 1..{len(idx) - 1}")
    feats = layer_features(model, images[torch.from_numpy(idx)], layers, transform=transform, batch_size=batch_size,
                           device=device, progress=progress)
    rows, batches, neighbours = [], {}, {}
    for index, (name, x) in enumerate(tqdm(feats.items(), desc="analyze: layers", unit="layer", disable=not progress,
                                           leave=False, total=len(feats))):
        try:
            b = snnl_per_batch(x, y, batch_size, device=device)
        except DataError as err:
            raise DataError(f"layer {name!r}: {err}") from None
        counts = same_class_neighbours(x, y, int(k), device=device)
        row = _layer_row(name, index, x, b, counts, batch_size=batch_size, k=int(k), n_boot=n_boot, level=level,
                         seed=seed)
        per_class = per_class_mean(counts, y.numpy(), len(names))
        row.update({neighbour_column(c): float(v) for c, v in zip(names, per_class)})
        rows.append(row)
        batches[name], neighbours[name] = b, counts
    table = pd.DataFrame(rows, columns=COLUMNS + [neighbour_column(c) for c in names])
    return Analysis(table, batches, neighbours, idx, y.numpy(), names, float(level))


def _class_names(y_all: torch.Tensor, images: torch.Tensor, classes: Sequence[str] | None) -> list[str]:
    """The class names (default "0", "1", ...), after checking one label per image, each in range.

    Raises:
        DataError: not one label per image, or labels outside 0..len(classes)-1.
    """
    if y_all.dim() != 1 or y_all.shape[0] != images.shape[0]:
        raise DataError(f"analyze: {tuple(y_all.shape)} labels for {images.shape[0]} images; pass one label per image")
    top = int(y_all.max()) if y_all.numel() else -1
    if int(y_all.min() if y_all.numel() else 0) < 0 or (classes is not None and top >= len(classes)):
        raise DataError(f"analyze: labels range over {int(y_all.min())}..{top}, outside the {len(classes or [])} "
                        "class names given; pass class indices 0..len(classes)-1")
    return list(classes) if classes is not None else [str(c) for c in range(top + 1)]


def _layer_row(name: str, index: int, x: torch.Tensor, b: BatchSNNL, counts: np.ndarray, *, batch_size: int, k: int,
               n_boot: int, level: float, seed: int) -> dict:
    """One layer's row of :attr:`Analysis.table` (:data:`COLUMNS`) from its per-batch SNNL ``b``
    and same-class-neighbour ``counts``."""
    lo, hi = bootstrap_interval(b.snnl, n_boot=n_boot, level=level, seed=seed)
    return {
        "layer": name, "layer_index": index, "features": int(x.shape[1]), "samples": int(x.shape[0]),
        "batches": len(b.snnl), "batch_size": int(batch_size),
        "snnl": float(b.snnl.mean()), "snnl_ci_low": lo, "snnl_ci_high": hi,
        "snnl_sd": float(b.snnl.std(ddof=1)) if len(b.snnl) > 1 else float("nan"),
        "baseline": float(b.baseline.mean()), "temperature": b.mean_temperature,
        "temperature_min": float(b.temperature.min()), "temperature_max": float(b.temperature.max()),
        "boundary_batches": int(b.at_boundary.sum()), "excluded_anchors": int(b.excluded.sum()),
        "k": k, "neighbours_mean": float(counts.mean()),
    }
