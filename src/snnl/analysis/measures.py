"""The numbers `snnl analyze` reports for one layer, from its flattened activations.

* **SNNL at the optimal temperature, per batch** (:func:`snnl_per_batch`): the analysed
  sample, already in batch order, is cut into consecutive batches of ``batch_size``; in each
  batch :func:`snnl.optimal_temperature` finds the T minimising the batch's SNNL (squared
  Euclidean distances) and returns the SNNL there. The layer's SNNL is the mean over batches,
  with a seeded percentile bootstrap interval of that mean (:func:`bootstrap_interval`);
  its optimal temperature is the geometric mean of the batches' optima (T scales with the
  square of the representation's scale, so the log scale is the natural one).
* **Same-class-neighbour counts** (:func:`same_class_neighbours`): for every point of the
  sample, how many of its ``k`` nearest other points of the sample (squared Euclidean
  distance in the layer) share its label; :func:`per_class_mean` averages them per class.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import torch

from snnl.errors import DataError
from snnl.temperature import optimal_temperature


@dataclass(frozen=True)
class BatchSNNL:
    """Per-batch results of :func:`snnl_per_batch`; every field is a (batches,) numpy array.

    snnl: float64, the SNNL at the batch's optimal temperature.
    temperature: float64, that temperature (units: squared distance in the layer).
    at_boundary: bool, the minimiser lies at the end of the search range (the SNNL keeps
        falling beyond it: e.g. perfectly separated classes, where SNNL -> 0 as T -> 0).
    excluded: int64, anchors without a same-class partner in the batch (left out of the mean).
    baseline: float64, the T -> infinity limit of the batch's SNNL (no class structure at all,
        :func:`snnl.experiments.temperature_curve.baseline_snnl`).
    """

    snnl: np.ndarray
    temperature: np.ndarray
    at_boundary: np.ndarray
    excluded: np.ndarray
    baseline: np.ndarray

    @property
    def mean_temperature(self) -> float:
        """Geometric mean of the per-batch optimal temperatures."""
        return float(np.exp(np.mean(np.log(self.temperature))))


def batch_slices(n: int, batch_size: int) -> list[slice]:
    """Consecutive slices of ``batch_size`` covering ``n`` points (``n`` a multiple of it)."""
    if batch_size < 2 or n < batch_size or n % batch_size:
        raise DataError(f"{n} points do not split into batches of {batch_size}: need batch_size >= 2 and "
                        "a whole number of batches (choose the sample with snnl.analysis.choose_sample)")
    return [slice(start, start + batch_size) for start in range(0, n, batch_size)]


def check_batch_labels(labels: torch.Tensor, batch_size: int) -> None:
    """Raise :class:`DataError` naming the first batch of ``labels`` (in batch order) in which
    no two points share a class: its SNNL is undefined at every temperature."""
    y = torch.as_tensor(labels).cpu().long()
    for i, s in enumerate(batch_slices(int(y.shape[0]), batch_size)):
        if int(torch.bincount(y[s]).max()) < 2:
            raise DataError(f"batch {i} of {batch_size} images has no two images of one class, so its SNNL is "
                            "undefined; raise --batch-size (it must hold several images per class)")


@torch.no_grad()
def snnl_per_batch(
    features: torch.Tensor, labels: torch.Tensor, batch_size: int, *, device: torch.device | str = "cpu"
) -> BatchSNNL:
    """The SNNL at its optimal temperature in each consecutive batch of ``features``.

    Args:
        features: (n, ...) float activations of one layer, flattened per sample; n a
            multiple of ``batch_size`` (the points in batch order).
        labels: (n,) integer class indices.
        batch_size: points per batch (>= 2).
        device: where each batch's distances are computed (float64).

    Raises:
        DataError: a batch holds no two points of one class, or non-finite features.
    """
    from snnl.experiments.temperature_curve import baseline_snnl

    y = torch.as_tensor(labels).cpu().long()
    check_batch_labels(y, batch_size)
    rows = []
    for s in batch_slices(int(features.shape[0]), batch_size):
        yb = y[s]
        opt = optimal_temperature(features[s].to(device), yb.to(device))
        excluded = int((torch.bincount(yb)[yb] < 2).sum())
        rows.append((float(opt.loss), float(opt.temperature), bool(opt.at_boundary), excluded, baseline_snnl(yb)))
    snnl, temp, boundary, excluded, baseline = zip(*rows)
    return BatchSNNL(np.array(snnl, np.float64), np.array(temp, np.float64), np.array(boundary, bool),
                     np.array(excluded, np.int64), np.array(baseline, np.float64))


def bootstrap_interval(values: np.ndarray, *, n_boot: int = 10_000, level: float = 0.95, seed: int = 0) -> tuple[float, float]:
    """Percentile bootstrap interval of the mean of ``values`` (the batches' SNNLs).

    ``n_boot`` resamples of len(values) values drawn with replacement (NumPy's
    ``default_rng(seed)``, so every layer is resampled with the same batch indices); the
    interval runs between the (1 - level)/2 and (1 + level)/2 quantiles of their means.
    Fewer than 2 values: (NaN, NaN), there is no spread to resample.

    Raises:
        DataError: ``values`` holds NaN or inf, ``n_boot`` < 1 or ``level`` outside (0, 1).
    """
    x = np.asarray(values, dtype=np.float64).ravel()
    if not np.isfinite(x).all():
        raise DataError("bootstrap_interval: the values hold NaN or inf; every batch needs a finite SNNL")
    if int(n_boot) < 1 or not 0.0 < float(level) < 1.0:
        raise DataError(f"bootstrap_interval: need n_boot >= 1 and 0 < level < 1, got n_boot={n_boot}, level={level}")
    if x.size < 2:
        return math.nan, math.nan
    rng = np.random.default_rng(int(seed))
    means = x[rng.integers(0, x.size, size=(int(n_boot), x.size))].mean(axis=1)
    lo, hi = np.quantile(means, [(1.0 - level) / 2.0, (1.0 + level) / 2.0])
    return float(lo), float(hi)


@torch.no_grad()
def same_class_neighbours(
    features: torch.Tensor, labels: torch.Tensor, k: int, *, device: torch.device | str = "cpu", block: int = 1024
) -> np.ndarray:
    """For each point, how many of its ``k`` nearest *other* points share its label.

    Distances are squared Euclidean between the flattened rows of ``features`` (n, ...),
    computed around the sample mean in float32 (:meth:`snnl.evaluate.detection.Reference.distances`),
    by blocks of ``block`` rows on ``device``; a point is never its own neighbour (a
    duplicate of it is). Ties at the k-th distance are broken arbitrarily.

    Returns:
        (n,) int64 counts in 0..k.

    Raises:
        DataError: ``k`` is not in 1..n-1.
    """
    from snnl.evaluate.detection import Reference
    from snnl.loss_inputs import flatten_per_sample

    n = int(features.shape[0])
    if isinstance(k, bool) or int(k) != k or not 1 <= k <= n - 1:
        raise DataError(f"k = {k!r} nearest neighbours among {n} points: k must be an integer in 1..{n - 1}; "
                        "lower --k or analyse more images")
    x = flatten_per_sample(features).float().to(device)
    y = torch.as_tensor(labels).long().to(device)
    ref = Reference(["layer"], y, {"layer": x}, {})
    counts = []
    for start in range(0, n, block):
        rows = torch.arange(start, min(start + block, n), device=device)
        dist = ref.distances("layer", x[rows])
        dist[torch.arange(rows.numel(), device=device), rows] = float("inf")  # not its own neighbour
        nearest = torch.topk(dist, int(k), dim=1, largest=False).indices
        counts.append((y[nearest] == y[rows].unsqueeze(1)).sum(dim=1).cpu())
    return torch.cat(counts).numpy().astype(np.int64)


def per_class_mean(counts: np.ndarray, labels: np.ndarray, n_classes: int) -> np.ndarray:
    """(n_classes,) float64: the mean of ``counts`` over the points of each class; NaN for a
    class with no point in the sample."""
    y = np.asarray(labels, dtype=np.int64)
    total = np.bincount(y, weights=np.asarray(counts, dtype=np.float64), minlength=n_classes)
    size = np.bincount(y, minlength=n_classes).astype(np.float64)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(size > 0, total / np.maximum(size, 1.0), np.nan)
