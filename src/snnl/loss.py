"""The Soft Nearest Neighbor Loss, computed exactly in log space.

See :func:`soft_nearest_neighbor_loss` for the formula and the conventions.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Sequence, Union

import torch
import torch.nn.functional as F

from snnl.errors import DataError
from snnl.loss_blockwise import ChunkedGramSNNL
from snnl.loss_gram import GramSNNL
from snnl.loss_inputs import (
    LOW_PRECISION,
    as_compute_dtype,
    check_labels,
    check_some_partner,
    distance_masks,
    gram_masks,
    temperature_tensor,
    valid_anchors,
)
from snnl.loss_logspace import LogSpaceSNNL, lse_forward

DistanceSpec = Union[str, Callable[[torch.Tensor], torch.Tensor]]



class SNNLResult(NamedTuple):
    """What :func:`soft_nearest_neighbor_loss` returns with ``return_stats=True``.

    loss: the reduced loss (or the per-anchor values for ``reduction="none"``).
    per_anchor: l_i for every anchor, ``+inf`` for anchors without a positive.
    valid: boolean mask of anchors with at least one same-class partner.
    n_excluded: number of anchors excluded from the mean (no same-class partner), as a
        0-d int64 tensor on the features' device: computing it makes no host
        synchronisation; ``int(result.n_excluded)`` reads it.
    """

    loss: torch.Tensor
    per_anchor: torch.Tensor
    valid: torch.Tensor
    n_excluded: torch.Tensor


def pairwise_distances(features: torch.Tensor, distance: DistanceSpec = "sqeuclidean") -> torch.Tensor:
    """b x b matrix of pairwise distances between the rows of ``features`` (flattened).

    ``"sqeuclidean"``: squared Euclidean distance, computed from the *centred* batch
    (distances are translation invariant, so centring is exact and removes the
    cancellation that a shared offset causes in the norm expansion), clamped at 0.
    ``"cosine"``: ``1 - cos(x_i, x_j)``, clamped at 0.
    A callable receives the (b, d) float tensor and must return a (b, b) tensor of
    non-negative distances.
    """
    x = as_compute_dtype(features)
    device_type = x.device.type
    with torch.autocast(device_type=device_type, enabled=False):
        if distance == "sqeuclidean":
            xc = x - x.mean(dim=0, keepdim=True)
            sq = (xc * xc).sum(dim=1)
            d = torch.addmm(sq.unsqueeze(0), xc, xc.T, alpha=-2.0)
            d = d + sq.unsqueeze(1)
            # relu == clamp at 0, but it saves its output (shared with the next op)
            return torch.relu(d)
        if distance == "cosine":
            u = F.normalize(x, dim=1)
            return torch.relu(torch.addmm(torch.ones((), dtype=u.dtype, device=u.device), u, u.T, alpha=-1.0))
        if callable(distance):
            d = distance(x)
            if d.shape != (x.shape[0], x.shape[0]):
                raise DataError(
                    f"custom distance returned shape {tuple(d.shape)}, expected ({x.shape[0]}, {x.shape[0]}); "
                    "it must map a (b, d) tensor to a (b, b) distance matrix"
                )
            return d.float() if d.dtype in LOW_PRECISION else d
    raise ValueError(f"unknown distance {distance!r}: use 'sqeuclidean', 'cosine' or a callable")


AUTO_CHUNK_BATCH = 8192  # plain path up to here: faster, and its b x b matrices still fit (~1.1 GiB at 8192)
BLOCK_ELEMENTS = 1 << 24  # entries of one block: 64 MiB in float32


def _block_rows(b: int, chunk_size) -> int:
    """Anchor rows per forward block: ``chunk_size``, or as many as BLOCK_ELEMENTS allow."""
    if chunk_size is None:
        return max(1, BLOCK_ELEMENTS // b)
    return int(chunk_size)


def _tile_size(b: int, chunk_size) -> int:
    """Side of the square tiles of the backward: ``chunk_size``, or sqrt(BLOCK_ELEMENTS)."""
    if chunk_size is None:
        return max(1, math.isqrt(BLOCK_ELEMENTS))
    return int(chunk_size)


def snnl_from_distances(
    dist: torch.Tensor,
    labels: torch.Tensor,
    temperature,
    *,
    reduction: str = "mean",
    return_stats: bool = False,
):
    """SNNL from a precomputed (b, b) distance matrix; see :func:`soft_nearest_neighbor_loss`.

    ``dist`` holds non-negative distances; ``+inf`` masks a pair out (it weighs
    exp(-inf) = 0 in both sums and gets no gradient; dL/dT stays finite). An anchor counts
    as valid when it has a same-class partner at a finite distance; the others get
    l_i = +inf and are excluded and counted, as anchors without a partner are.
    The diagonal is ignored.

    Raises:
        DataError: ``dist`` is not square, or holds NaN, -inf or negative values.
    """
    check_distances(dist)
    return _reduce(dist, labels, temperature, reduction, return_stats, kind=None)


def check_distances(dist: torch.Tensor) -> None:
    """Raise ``DataError`` unless ``dist`` is a square matrix of distances >= 0 (+inf allowed,
    the diagonal ignored). One host read: call it once per matrix, not per temperature."""
    b = dist.shape[0]
    if dist.dim() != 2 or dist.shape[1] != b:
        raise DataError(f"distance matrix must be square (b, b), got {tuple(dist.shape)}")
    bad = torch.isnan(dist) | (dist < 0)
    bad.fill_diagonal_(False)
    if bool(bad.any()):
        raise DataError(
            f"snnl_from_distances: the distance matrix holds {int(bad.sum())} NaN or negative entries; "
            "distances must be >= 0, with +inf to mask a pair out"
        )


def snnl_at_temperatures(dist: torch.Tensor, labels: torch.Tensor):
    """A function ``f(T) -> mean SNNL`` (a 0-d tensor, no gradient) for one distance matrix
    evaluated at many temperatures, as searches over T do: the matrix is checked
    (:func:`check_distances`) and its masks are built once, not at every T.

    Raises:
        DataError: as :func:`snnl_from_distances`.
    """
    check_distances(dist)
    labels = check_labels(labels, dist.shape[0], dist.device)
    same, valid = distance_masks(labels, dist)
    n_valid = valid.sum()

    def at(temperature) -> torch.Tensor:
        with torch.no_grad():
            per_anchor, _, _ = lse_forward(dist, temperature_tensor(temperature, dist), same, valid)
            return torch.where(valid, per_anchor, torch.zeros_like(per_anchor)).sum() / n_valid

    return at


def _reduce(inp, labels, temperature, reduction, return_stats, kind, rows=None, tile=None):
    """Masks, the no-positive policy, the per-anchor values and the reduction.

    ``kind=None``: ``inp`` is a (b, b) distance matrix; otherwise (b, d) features for
    :class:`GramSNNL`, or for :class:`ChunkedGramSNNL` by blocks of ``rows`` anchors."""
    b = inp.shape[0]
    if b < 2:
        raise DataError(f"SNNL needs at least 2 samples in the batch, got {b}")
    labels = check_labels(labels, b, inp.device)
    if kind is None:
        same, valid = distance_masks(labels, inp)
    elif rows is None:
        not_positive, valid = gram_masks(labels)
    else:
        valid = valid_anchors(labels)
    check_some_partner(valid)
    n_valid = valid.sum()
    t = temperature_tensor(temperature, inp)
    if kind is None:
        per_anchor = LogSpaceSNNL.apply(inp, t, same, valid)
    elif rows is None:
        per_anchor = GramSNNL.apply(not_positive, valid, kind, inp, t)[0]
    else:
        per_anchor = ChunkedGramSNNL.apply(inp, t, labels, valid, kind, rows, tile)
    if reduction in ("mean", "sum"):
        # where, not per_anchor[valid]: boolean indexing would synchronise with the device
        loss = torch.where(valid, per_anchor, torch.zeros_like(per_anchor)).sum()
        if reduction == "mean":
            loss = loss / n_valid
    elif reduction == "none":
        loss = per_anchor
    else:
        raise ValueError(f"unknown reduction {reduction!r}: use 'mean', 'sum' or 'none'")
    if return_stats:
        return SNNLResult(loss, per_anchor, valid, b - n_valid)
    return loss


def soft_nearest_neighbor_loss(
    features: torch.Tensor,
    labels: torch.Tensor,
    temperature: Union[float, torch.Tensor] = 1.0,
    *,
    distance: DistanceSpec = "sqeuclidean",
    reduction: str = "mean",
    return_stats: bool = False,
    chunk_size: int | None = None,
):
    r"""Soft Nearest Neighbor Loss (Frosst, Papernot & Hinton, ICML 2019), exact and in log space.

    For a batch of b points x_i (any shape, flattened per sample) with labels y_i::

        l_i  = -log( sum_{j != i, y_j = y_i} exp(-d_ij / T) / sum_{k != i} exp(-d_ik / T) )
             = LSE_{k != i}(-d_ik / T) - LSE_{j != i, y_j = y_i}(-d_ij / T)
        SNNL = mean over valid anchors i of l_i

    It is computed in the second (log-sum-exp) form with masks: no epsilon anywhere,
    finite for any d/T. Low SNNL means classes are separated, high means entangled;
    as T -> infinity it tends to the class-frequency baseline.

    Distances: ``"sqeuclidean"`` (the paper's; from the centred batch, exact and immune
    to a shared offset), ``"cosine"`` (1 - cos), or a callable mapping the (b, d)
    features to a (b, b) distance matrix. The diagonal is excluded by a mask.

    No-positive policy: an anchor with no same-class partner in the batch has
    l_i = +inf; it is excluded from the mean and counted. With ``return_stats=True``
    the function returns an :class:`SNNLResult` (``loss``, ``per_anchor``, ``valid``,
    ``n_excluded``). A batch in which no anchor has a partner raises ``DataError`` when
    the labels are on the CPU; labels on an accelerator are never read on the host, and
    such a batch gives a NaN loss (0 / 0) with ``n_excluded`` equal to the batch size.

    Host synchronisation: none, for the built-in distances (the loss, its backward and
    the statistics stay on the device until someone reads them); a callable distance
    goes through :func:`snnl_from_distances`, which validates the matrix on the host.

    Temperature modes: fixed (a positive float, or a 0-d tensor; one that requires grad gets
    dSNNL/dT); ``snnl.optimal_temperature`` gives the T minimising the SNNL (what analyses
    report); ``snnl.OnlineTemperature`` learns log T during training (T stays > 0).

    Args:
        features: (b, ...) float tensor; float16/bfloat16 (e.g. under autocast) is
            computed in float32, float32 and float64 in their own precision.
        labels: (b,) integer class labels.
        temperature: T > 0.
        distance: ``"sqeuclidean"``, ``"cosine"`` or a callable.
        reduction: ``"mean"`` over valid anchors, ``"sum"`` over valid anchors, or
            ``"none"`` (per-anchor values, +inf for anchors without a positive).
        return_stats: return an :class:`SNNLResult` instead of the loss alone.
        chunk_size: ``None`` (default) computes batches of up to ``AUTO_CHUNK_BATCH``
            samples with full b x b matrices and larger ones blockwise; an integer
            forces the blockwise path with that many anchors per block. The blockwise
            path (log-sum-exp by blocks of anchor rows, backward recomputing each
            block) never holds a b x b matrix: memory O(rows * b + b * d). Built-in
            distances only.
    """
    if features.dim() < 1:
        raise DataError("features must have a batch dimension")
    if chunk_size is not None and (isinstance(chunk_size, bool) or int(chunk_size) < 1):
        raise ValueError(f"chunk_size must be a positive number of rows or None, got {chunk_size!r}")
    if callable(distance):
        if chunk_size is not None:
            raise ValueError("chunk_size needs a built-in distance ('sqeuclidean' or 'cosine'), not a callable")
        dist = pairwise_distances(features, distance)
        return snnl_from_distances(dist, labels, temperature, reduction=reduction, return_stats=return_stats)
    if distance not in ("sqeuclidean", "cosine"):
        raise ValueError(f"unknown distance {distance!r}: use 'sqeuclidean', 'cosine' or a callable")
    x = as_compute_dtype(features)
    with torch.autocast(device_type=x.device.type, enabled=False):
        z = x - x.mean(dim=0, keepdim=True) if distance == "sqeuclidean" else F.normalize(x, dim=1)
        b = z.shape[0]
        rows = tile = None
        if chunk_size is not None or b > AUTO_CHUNK_BATCH:
            rows, tile = _block_rows(b, chunk_size), _tile_size(b, chunk_size)
        return _reduce(z, labels, temperature, reduction, return_stats, kind=distance, rows=rows, tile=tile)



def soft_nearest_neighbor_losses(
    features: Sequence[torch.Tensor],
    labels: torch.Tensor,
    temperatures: Sequence[Union[float, torch.Tensor]],
    *,
    distance: str = "sqeuclidean",
) -> torch.Tensor:
    """The SNNL of several representations of one batch (e.g. every hidden layer), at once.

    Equal to ``torch.stack([soft_nearest_neighbor_loss(f, labels, t, distance=distance)
    for f, t in zip(features, temperatures)])`` (mean reduction), values and gradients,
    but the work after each layer's Gram product runs once on the stack of the layers, so
    the number of operations (kernel launches on a GPU) hardly grows with the number of
    layers. It makes no host synchronisation.

    Args:
        features: L tensors (b, ...) of the same batch (flattened per sample; each layer
            its own width), on one device.
        labels: (b,) integer class labels.
        temperatures: L positive temperatures (floats or 0-d tensors; a tensor that
            requires grad receives dSNNL_l/dT_l).
        distance: ``"sqeuclidean"`` or ``"cosine"``.

    Returns:
        (L,) tensor: the mean SNNL of each layer over its valid anchors.

    Raises:
        DataError / ValueError: as :func:`soft_nearest_neighbor_loss`; also when the layers
        disagree on the batch size, or their number differs from the temperatures'.
    """
    features, temperatures = list(features), list(temperatures)
    if not features or len(features) != len(temperatures):
        raise ValueError(f"need one temperature per layer: got {len(features)} layers and {len(temperatures)} temperatures")
    if distance not in ("sqeuclidean", "cosine"):
        raise ValueError(f"unknown distance {distance!r}: use 'sqeuclidean' or 'cosine'")
    b = features[0].shape[0]
    if any(f.dim() < 1 or f.shape[0] != b for f in features):
        raise DataError(f"every layer must hold the same batch: got batch sizes {[f.shape[0] for f in features]}")
    xs = [as_compute_dtype(f) for f in features]
    dtype = torch.promote_types(xs[0].dtype, xs[-1].dtype) if len({x.dtype for x in xs}) > 1 else xs[0].dtype
    with torch.autocast(device_type=xs[0].device.type, enabled=False):
        zs = [x.to(dtype) for x in xs]
        zs = [z - z.mean(dim=0, keepdim=True) if distance == "sqeuclidean" else F.normalize(z, dim=1) for z in zs]
        if b > AUTO_CHUNK_BATCH or b < 2:
            return torch.stack([_reduce(z, labels, t, "mean", False, kind=distance, rows=_block_rows(b, None),
                                        tile=_tile_size(b, None)) for z, t in zip(zs, temperatures)])
        labels = check_labels(labels, b, zs[0].device)
        not_positive, valid = gram_masks(labels)
        check_some_partner(valid)
        ts = [temperature_tensor(t, zs[0]) for t in temperatures]
        per_anchor = GramSNNL.apply(not_positive, valid, distance, *zs, *ts)
        return torch.where(valid, per_anchor, torch.zeros_like(per_anchor)).sum(dim=1) / valid.sum()

