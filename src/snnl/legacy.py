"""The official code's numerics: for comparison, and for the replication's ``official`` regime
(:mod:`snnl.regimes`), which trains with them to reproduce the official demo. Do not train
with this otherwise.

A line-by-line port of ``SNNLCrossEntropy.SNNL`` from cleverhans v3.1 (TensorFlow 1):
distances by the norm expansion of the *uncentred* batch, ``exp`` then divide,
the diagonal removed by subtracting an identity matrix, and ``eps = 1e-5`` added
before the division and before the log. Its failures (a loss pinned at
-log(1e-5) = 11.51 with zero gradient once neighbours are ~17 temperatures away;
garbage distances when activations share a large offset) are what
:func:`snnl.soft_nearest_neighbor_loss` fixes; the tests assert both.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

STABILITY_EPS = 1e-5


def _pairwise_euclid_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    sqr_norm_a = (a**2).sum(1).reshape(1, -1)
    sqr_norm_b = (b**2).sum(1).reshape(-1, 1)
    inner_prod = b @ a.T
    tile_1 = sqr_norm_a.expand(b.shape[0], -1)
    tile_2 = sqr_norm_b.expand(-1, a.shape[0])
    return tile_1 + tile_2 - 2 * inner_prod


def _pairwise_cos_distance(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    return 1 - F.normalize(a, dim=1) @ F.normalize(b, dim=1).T


def legacy_snnl_terms(
    features: torch.Tensor, labels: torch.Tensor, temperature, *, cos_distance: bool = False
) -> torch.Tensor:
    """Each anchor's term ``-log(eps + sum_j same_ij f_ij / (eps + sum_j f_ij))`` with the official
    cleverhans v3.1 numerics; shape (b,), the features' dtype. An anchor whose neighbours all sit far
    away (or that has no same-class partner) is pinned at the cap ``-log(eps)`` = 11.513."""
    x = features.reshape(features.shape[0], -1)
    dist = _pairwise_cos_distance(x, x) if cos_distance else _pairwise_euclid_distance(x, x)
    fits = torch.exp(-(dist / temperature))
    f = fits - torch.eye(x.shape[0], dtype=x.dtype, device=x.device)
    pick = f / (STABILITY_EPS + f.sum(1, keepdim=True))
    same = (labels.unsqueeze(0) == labels.unsqueeze(1)).to(x.dtype)
    summed = (pick * same).sum(1)
    return -torch.log(STABILITY_EPS + summed)


def legacy_snnl(
    features: torch.Tensor, labels: torch.Tensor, temperature, *, cos_distance: bool = False
) -> torch.Tensor:
    """SNNL with the official cleverhans v3.1 numerics (``SNNLCrossEntropy.SNNL``): the mean of
    :func:`legacy_snnl_terms` over every anchor. features (b, ...) float, labels (b,) int,
    temperature > 0 (float or 0-d tensor); a 0-d tensor in the features' dtype."""
    return legacy_snnl_terms(features, labels, temperature, cos_distance=cos_distance).mean()
