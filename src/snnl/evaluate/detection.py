"""Neighbour-based detection (E9): hidden-layer scores against a reference set of training points.

For a hidden layer l, a reference set R of training points (stratified by class) with
features r_j and labels y_j, and the layer's optimal temperature T_l (the T minimising the
SNNL of R itself, :func:`snnl.optimal_temperature`), the score of an input x with
*predicted* label c = argmax model(x) is the SNNL term of x against R:

    s_l(x) = -log( sum_{j: y_j = c} exp(-d(x, r_j)/T_l) / sum_j exp(-d(x, r_j)/T_l) )

d the squared Euclidean distance. High means "few neighbours from the predicted class".
It is computed by the library's :func:`snnl.snnl_from_distances` (log space, exact) on a
block distance matrix in which queries see only the reference points (query-query
distances are +inf, so they drop out of both sums).

The deep k-NN baseline (after Papernot & McDaniel 2018): the fraction of the k nearest
reference points in the layer whose label differs from the prediction.

Scores over layers are combined by the mean of per-layer z-scores whose means and
standard deviations are fitted on clean validation data only (:class:`ZScoreCombiner`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from snnl.checks import to_unit
from snnl.errors import DataError
from snnl.layers import capture, layer_outputs
from snnl.loss import snnl_from_distances
from snnl.temperature import OptimalTemperature, optimal_temperature

COMBINED = "combined"


# ---------------------------------------------------------------------------------------
# the reference set and the scores


@dataclass
class Reference:
    """Per-layer features of the reference training points, their labels and the layers'
    optimal temperatures (computed on the reference itself)."""

    layers: list[str]
    labels: torch.Tensor
    features: dict[str, torch.Tensor]
    temperatures: dict[str, OptimalTemperature]
    indices: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    _centre: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)
    _sq: dict[str, torch.Tensor] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        for name in self.layers:
            feats = self.features[name]
            centre = feats.mean(dim=0, keepdim=True)
            rc = feats - centre
            self._centre[name] = centre
            self._sq[name] = (rc * rc).sum(dim=1)
            self.features[name] = rc  # stored centred: distances are translation invariant

    @property
    def size(self) -> int:
        return int(self.labels.shape[0])

    def distances(self, layer: str, queries: torch.Tensor) -> torch.Tensor:
        """(b, n) squared Euclidean distances from ``queries`` (b, d) to the reference points,
        computed around the reference mean (exact by translation invariance, and free of the
        cancellation a shared offset causes in the norm expansion), clamped at 0."""
        q = queries.reshape(queries.shape[0], -1).float() - self._centre[layer]
        rc = self.features[layer]
        d = torch.addmm(self._sq[layer].unsqueeze(0), q, rc.T, alpha=-2.0)
        return d.add_((q * q).sum(dim=1, keepdim=True)).clamp_min_(0.0)


def build_reference(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    layers: Sequence[str],
    *,
    indices: np.ndarray | None = None,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
) -> Reference:
    """Features of ``images[indices]`` in every layer and each layer's optimal temperature."""
    if indices is not None:
        images, labels = images[indices], labels[indices]
    labels = torch.as_tensor(labels).long()
    feats = layer_outputs(model, images, layers, batch_size=batch_size, device=device, what="build_reference: images")
    counts = torch.bincount(labels)
    if int((counts[counts > 0] < 2).sum()):
        raise DataError("the reference set needs at least 2 points of each class present; raise evaluate.reference_size")
    temps = {name: optimal_temperature(feats[name], labels.to(feats[name].device)) for name in layers}
    idx = np.asarray(indices if indices is not None else np.arange(labels.shape[0]), dtype=np.int64)
    return Reference(list(layers), labels.to(device), feats, temps, idx)


def snnl_scores(dist: torch.Tensor, pred: torch.Tensor, ref_labels: torch.Tensor, temperature: float) -> torch.Tensor:
    """Per-query SNNL term against the reference set, from the (b, n) query-to-reference
    distances, with the query's label ``pred``; +inf where no reference point has that label.

    Built on :func:`snnl.snnl_from_distances`: the queries and the reference points form one
    batch whose query-query distances are +inf (those pairs weigh exp(-inf) = 0), so each
    query's l_i runs over the reference points only. The reference rows of the matrix are
    never read (their block is filled with zeros). Computed in float64."""
    b, n = dist.shape
    dist = dist.double()  # float64 keeps tiny scores (well-separated queries) apart instead of rounding to 0
    full = dist.new_zeros((b + n, b + n))
    full[:b, :b] = float("inf")
    full[:b, b:] = dist
    full[b:, :b] = dist.T
    labels = torch.cat([pred.to(ref_labels.device).long(), ref_labels.long()])
    per_anchor = snnl_from_distances(full, labels, float(temperature), reduction="none")
    return per_anchor[:b]


def knn_scores(dist: torch.Tensor, pred: torch.Tensor, ref_labels: torch.Tensor, k: int) -> torch.Tensor:
    """Deep k-NN nonconformity: the fraction of the ``k`` nearest reference points (by
    ``dist``, (b, n)) whose label differs from ``pred``."""
    k = min(int(k), dist.shape[1])
    idx = torch.topk(dist, k, dim=1, largest=False).indices
    return (ref_labels[idx] != pred.to(ref_labels.device).long().unsqueeze(1)).float().mean(dim=1)


@dataclass
class SetScores:
    """Everything the evaluation keeps per sample of one image set."""

    pred: np.ndarray
    probs: np.ndarray
    snnl: dict[str, np.ndarray]
    knn: dict[str, np.ndarray]

    @property
    def msp(self) -> np.ndarray:
        return self.probs.max(axis=1)

    def __len__(self) -> int:
        return int(self.pred.shape[0])


@torch.no_grad()
def score_images(
    model: nn.Module,
    images: torch.Tensor,
    reference: Reference,
    *,
    k: int = 50,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    progress: bool = False,
    desc: str = "score",
) -> SetScores:
    """Predictions, softmax probabilities and the per-layer SNNL and deep k-NN scores of
    ``images`` (uint8 or float [0, 1]). Only the images are read: every score uses the
    model's *predicted* label, never a true one."""
    from tqdm.auto import tqdm

    preds, probs = [], []
    snnl = {name: [] for name in reference.layers}
    knn = {name: [] for name in reference.layers}
    starts = range(0, images.shape[0], batch_size)
    with capture(model, reference.layers) as store:
        for start in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False):
            x = to_unit(images[start : start + batch_size].to(device), f"{desc}: images")
            logits = model(x).float()
            pred = logits.argmax(dim=1)
            preds.append(pred.cpu())
            probs.append(torch.softmax(logits.double(), dim=1).cpu())
            for name in reference.layers:
                dist = reference.distances(name, store[name].pop())  # this batch's only
                snnl[name].append(snnl_scores(dist, pred, reference.labels, reference.temperatures[name].temperature).cpu())
                knn[name].append(knn_scores(dist, pred, reference.labels, k).cpu())
    n_classes = probs[0].shape[1] if probs else int(getattr(model, "spec", {}).get("num_classes", 0))

    def cat(parts, dtype, shape):
        return torch.cat(parts).numpy().astype(dtype) if parts else np.zeros(shape, dtype)

    return SetScores(
        pred=cat(preds, np.int64, (0,)),
        probs=cat(probs, np.float64, (0, n_classes)),
        snnl={name: cat(v, np.float64, (0,)) for name, v in snnl.items()},
        knn={name: cat(v, np.float64, (0,)) for name, v in knn.items()},
    )


class ZScoreCombiner:
    """Mean of per-layer z-scores, with each layer's mean and standard deviation fitted on
    clean (validation) data. Non-finite fitted values are ignored in the fit."""

    def __init__(self) -> None:
        self.stats: dict[str, tuple[float, float]] = {}

    def fit(self, per_layer: dict[str, np.ndarray]) -> "ZScoreCombiner":
        for name, values in per_layer.items():
            v = np.asarray(values, dtype=np.float64)
            v = v[np.isfinite(v)]
            if v.size < 2:
                raise DataError(f"cannot fit the z-score of layer {name}: fewer than 2 finite validation scores")
            mean, std = float(v.mean()), float(v.std())
            self.stats[name] = (mean, std if std > 0 else 1.0)
        return self

    def __call__(self, per_layer: dict[str, np.ndarray]) -> np.ndarray:
        if not self.stats:
            raise RuntimeError("fit the combiner on validation scores before combining")
        z = [(np.asarray(per_layer[name], np.float64) - m) / s for name, (m, s) in self.stats.items()]
        return np.mean(z, axis=0)
