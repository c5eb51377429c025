"""The Soft Nearest Neighbor Loss, computed exactly in log space.

See :func:`soft_nearest_neighbor_loss` for the formula and the conventions.
"""

from __future__ import annotations

import math
from typing import Callable, NamedTuple, Union

import torch
import torch.nn.functional as F

from snnl.errors import DataError

DistanceSpec = Union[str, Callable[[torch.Tensor], torch.Tensor]]

_LOW_PRECISION = (torch.float16, torch.bfloat16)


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


def _as_compute_dtype(features: torch.Tensor) -> torch.Tensor:
    """Flatten per sample; half precision (autocast or not) is computed in float32."""
    x = features.reshape(features.shape[0], -1)
    if x.dtype in _LOW_PRECISION or not x.is_floating_point():
        x = x.float()
    return x


def pairwise_distances(features: torch.Tensor, distance: DistanceSpec = "sqeuclidean") -> torch.Tensor:
    """b x b matrix of pairwise distances between the rows of ``features`` (flattened).

    ``"sqeuclidean"``: squared Euclidean distance, computed from the *centred* batch
    (distances are translation invariant, so centring is exact and removes the
    cancellation that a shared offset causes in the norm expansion), clamped at 0.
    ``"cosine"``: ``1 - cos(x_i, x_j)``, clamped at 0.
    A callable receives the (b, d) float tensor and must return a (b, b) tensor of
    non-negative distances.
    """
    x = _as_compute_dtype(features)
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
            return d.float() if d.dtype in _LOW_PRECISION else d
    raise ValueError(f"unknown distance {distance!r}: use 'sqeuclidean', 'cosine' or a callable")


def _check_labels(labels: torch.Tensor, b: int, device: torch.device) -> torch.Tensor:
    labels = torch.as_tensor(labels, device=device)
    if labels.dim() != 1 or labels.shape[0] != b:
        raise DataError(
            f"labels must be a 1-D tensor with one label per sample: got shape {tuple(labels.shape)} "
            f"for {b} samples"
        )
    if labels.is_floating_point():
        raise DataError("labels must be integers (class indices), got a floating-point tensor")
    return labels


def _check_some_partner(valid: torch.Tensor) -> None:
    """Raise when no anchor has a partner, for a ``valid`` mask on the CPU.

    Read through NumPy (a view, no copy), so it records no tensor op and makes no device
    synchronisation; a mask on an accelerator is not read here (the loss is then NaN,
    0 / 0, and ``n_excluded`` equals the batch size)."""
    if valid.device.type == "cpu" and not valid.numpy().any():
        raise DataError(
            f"no anchor in this batch of {valid.shape[0]} has a same-class partner (every label occurs once), "
            "so the SNNL is undefined; use larger batches or class-balanced sampling"
        )


def _pair_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(same-class off-diagonal mask, valid-anchor mask)."""
    b = labels.shape[0]
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    same.fill_diagonal_(False)
    valid = same.any(dim=1)
    assert same.shape == (b, b)
    return same, valid


def _row_logsumexp(x: torch.Tensor) -> torch.Tensor:
    """log-sum-exp of each row of ``x`` (which may hold -inf), exact to the dtype's precision:
    the entries are shifted by the row maximum and exponentiated with :func:`_floored_exp`,
    so an entry whose term underflows adds at most the smallest normal number to a sum that
    is at least 1. A row of -inf only gives a finite (very negative) value: mask it."""
    m = x.amax(dim=1, keepdim=True).clamp_min_(torch.finfo(x.dtype).min)
    return m.squeeze(1) + _floored_exp(x - m).sum(dim=1).log_()


def _lse_forward(dist: torch.Tensor, temperature: torch.Tensor, same: torch.Tensor, valid: torch.Tensor):
    """Per-anchor l_i = LSE_{k != i}(-d_ik/T) - LSE_{j != i, same}(-d_ij/T), with the two
    LSEs; +inf (and lse_pos = -inf) where ``valid`` is False (no positive at a finite distance)."""
    logits = dist * (-1.0 / temperature)
    logits.diagonal().fill_(float("-inf"))
    lse_all = _row_logsumexp(logits)
    logits.masked_fill_(~same, float("-inf"))
    lse_pos = torch.where(valid, _row_logsumexp(logits), torch.full_like(lse_all, float("-inf")))
    return lse_all - lse_pos, lse_all, lse_pos


def _lse_backward(dist, temperature, same, valid, lse_all, lse_pos, grad_out, need_t: bool, masked=False):
    """dL/dD (b x b, a fresh tensor) and dL/dT, recomputing the softmaxes from D.

    dl_i/dlogit_ij = p_ij - q_ij (p: softmax over all others, q: over positives), and
    logit = -d / T, so dl/dd = -(p - q) / T and dl/dT = sum (p - q) d / T^2.
    ``masked``: D may hold +inf (pairs masked out); their weights p - q are exactly 0 and
    so is their share of dl/dT (the limit of w d as d -> inf), not 0 * inf = NaN.
    """
    inv_t = 1.0 / temperature
    g = torch.where(valid, grad_out, torch.zeros_like(grad_out))
    lse_pos_safe = torch.where(valid, lse_pos, torch.zeros_like(lse_pos))
    logits = dist * (-inv_t)
    logits.diagonal().fill_(float("-inf"))
    q = torch.exp(logits - lse_pos_safe.unsqueeze(1))
    q.masked_fill_(~same, 0.0)
    p = logits.sub_(lse_all.unsqueeze(1)).exp_()
    p.sub_(q).mul_(g.unsqueeze(1))  # p now holds dL/dlogits
    del q
    grad_t = None
    if need_t:
        weighted = p * dist
        if masked:
            weighted = torch.where(p == 0, torch.zeros_like(weighted), weighted)
        grad_t = weighted.sum() * inv_t * inv_t
        grad_t = grad_t.reshape(temperature.shape)
    return p.mul_(-inv_t), grad_t


class _LogSpaceSNNL(torch.autograd.Function):
    """Per-anchor SNNL from a distance matrix (any distance), in log space.

    Saves only D (b x b) and two b-vectors; the backward recomputes the softmaxes,
    so no b x b matrix of probabilities is kept between forward and backward.
    Anchors without positives get l_i = +inf and no gradient. D may hold +inf (masked
    pairs: weight 0, no gradient, and a finite dL/dT).
    """

    @staticmethod
    def forward(ctx, dist, temperature, same, valid):
        per_anchor, lse_all, lse_pos = _lse_forward(dist, temperature, same, valid)
        ctx.save_for_backward(dist, temperature, same, valid, lse_all, lse_pos)
        return per_anchor

    @staticmethod
    def backward(ctx, grad_out):
        dist, temperature, same, valid, lse_all, lse_pos = ctx.saved_tensors
        grad_dist, grad_t = _lse_backward(
            dist, temperature, same, valid, lse_all, lse_pos, grad_out, ctx.needs_input_grad[1], masked=True
        )
        return (grad_dist if ctx.needs_input_grad[0] else None), grad_t, None, None


class _GramSNNL(torch.autograd.Function):
    """Per-anchor SNNL straight from features whose distances come from one Gram matrix.

    ``kind="sqeuclidean"``: z is the centred batch and d_ik = |z_i|^2 + |z_k|^2 - 2 z_i.z_k;
    ``kind="cosine"``: z holds unit rows and d_ik = 1 - z_i.z_k. A term that depends on the
    anchor i alone cancels in l_i = LSE_k(-d_ik/T) - LSE_j(-d_ij/T), so the logits are
    taken as a_ik / T with a_ik = 2 z_i.z_k - |z_k|^2 (resp. z_i.z_k): one ``addmm`` with
    a broadcast bias gives them, with no distance matrix, clamp or rescaling pass.

    Each log-sum-exp is taken with its own row maximum (exact for any d/T), and its
    exponentials are kept for the backward, which therefore computes no exponential:
    dl_i/dlogit_ik = p_ik - q_ik with p = e_all / s_all (all others) and q = e_pos / s_pos
    (positives). dL/dz needs one (b x b) @ (b x d) product, (A + A^T) z with A = dL/da;
    dL/dT = -(1/T) sum_i g_i (E_p[logit_i] - E_q[logit_i]), whose expectations the forward
    takes only when T requires a gradient. Excluded entries (the diagonal, and the other
    classes in the positives' sum) hold a large finite negative number instead of -inf, so
    that their weights are exactly 0 and their products with the logits 0, not NaN.
    Saved: z and two b x b matrices of exponentials.
    """

    @staticmethod
    def forward(ctx, z, temperature, not_positive, valid, kind):
        if kind == "sqeuclidean":
            logits = torch.addmm((z * z).sum(1).unsqueeze(0), z, z.T, beta=-1.0, alpha=2.0)
        else:
            logits = z @ z.T
        logits.mul_(temperature.reciprocal())
        need_t = temperature.requires_grad
        per_anchor, e_all, s_all, e_pos, s_pos, expect = _two_softmaxes(logits, not_positive, need_t)
        del logits
        ctx.kind = kind
        if expect is not None:
            expect = torch.where(valid, expect, torch.zeros_like(expect))
        ctx.save_for_backward(z, temperature, valid, e_all, s_all, e_pos, s_pos, expect)
        return per_anchor

    @staticmethod
    def backward(ctx, grad_out):
        z, temperature, valid, e_all, s_all, e_pos, s_pos, expect = ctx.saved_tensors
        inv_t = temperature.reciprocal()
        g = torch.where(valid, grad_out, torch.zeros_like(grad_out))
        grad_t = None
        if ctx.needs_input_grad[1]:  # logit = a / T: dlogit/dT = -logit / T
            grad_t = ((g * expect).sum() * -inv_t).reshape(temperature.shape)
        grad_z = None
        if ctx.needs_input_grad[0]:
            g_t = g * inv_t
            # dL/da = (p - q) g / T, with p = e_all / s_all and q = e_pos / s_pos
            a_grad = torch.addcmul(e_all * (g_t / s_all).unsqueeze(1), e_pos, (g_t / s_pos).unsqueeze(1), value=-1.0)
            colsum = a_grad.sum(0).unsqueeze(1) if ctx.kind == "sqeuclidean" else None
            sym = a_grad.add_(a_grad.T.clone())  # A + A^T: one (b x b) @ (b x d) product, not two
            if ctx.kind == "sqeuclidean":  # a_ik = 2 z_i.z_k - |z_k|^2: dL/dz = 2 ((A + A^T) z - colsum(A) z)
                grad_z = torch.addmm(colsum * z, sym, z, beta=-2.0, alpha=2.0)
            else:
                grad_z = sym @ z
        return grad_z, grad_t, None, None, None


def _floored_exp(shifted: torch.Tensor) -> torch.Tensor:
    """exp of ``shifted`` (<= 0, or -inf), with arguments below log(smallest normal number)
    raised to it first: CPU exp is several times slower on arguments whose result
    underflows (or is exp(-inf)), and such terms (< 1.2e-38 in float32) cannot change a
    softmax whose largest term is exp(0) = 1. Excluded entries are zeroed by the caller."""
    floor = math.log(torch.finfo(shifted.dtype).tiny) + 0.5
    return shifted.clamp_min(floor).exp_()


def _two_softmaxes(logits: torch.Tensor, not_positive: torch.Tensor, need_t: bool):
    """The two row-wise softmaxes of the SNNL from a (b, b) matrix of logits, each shifted
    by its own row maximum (exact for any d/T). ``logits`` is scratch space (overwritten).

    Returns per-anchor l_i (+inf for anchors without a positive); the exponentials
    e_all = exp(logit - max) over all others and e_pos over the positives (0 elsewhere);
    their row sums s_all and s_pos (s_pos set to 1 where there is no positive: it is >= 1
    wherever there is one, from its maximum's exp(0)); and, when ``need_t``, the difference
    of softmax-weighted means E_p[logit_i] - E_q[logit_i] (dl_i/dT = -that / T).
    """
    logits.diagonal().fill_(float("-inf"))  # out of the row maximum
    m_all = logits.amax(dim=1, keepdim=True)
    logits.sub_(m_all)  # now logit - m_all: one shift for both softmaxes
    e_all = _floored_exp(logits)
    e_all.diagonal().fill_(0.0)
    s_all = e_all.sum(dim=1)
    mean_all = None
    if need_t:  # the diagonal weighs 0: its logit must be 0, not -inf (0 * -inf = NaN)
        logits.diagonal().fill_(0.0)
        mean_all = (e_all * logits).sum(dim=1) / s_all
    logits.masked_fill_(not_positive, float("-inf"))
    m_pos = logits.amax(dim=1, keepdim=True).clamp_min_(torch.finfo(logits.dtype).min)  # -inf: no positive
    logits.sub_(m_pos)
    e_pos = _floored_exp(logits).masked_fill_(not_positive, 0.0)
    s_pos = e_pos.sum(dim=1)
    # l_i = (m_all + log s_all) - (m_all + m_pos + log s_pos)
    per_anchor = s_all.log() - s_pos.log() - m_pos.squeeze(1)
    expect = None
    if need_t:
        logits.masked_fill_(not_positive, 0.0)
        mean_pos = (e_pos * logits).sum(dim=1) / s_pos + m_pos.squeeze(1)  # both means relative to m_all
        expect = mean_all - mean_pos
    return per_anchor, e_all, s_all, e_pos, s_pos.clamp_min_(1.0), expect


# The blockwise path: used automatically above AUTO_CHUNK_BATCH samples, or on request.
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


def _tile_dist(z, sq, rows: slice, cols: slice, kind):
    """Distances (clamped at 0) between the samples of ``rows`` and of ``cols``."""
    gram = z[rows] @ z[cols].T
    if kind == "sqeuclidean":
        return gram.mul_(-2.0).add_(sq[rows].unsqueeze(1)).add_(sq[cols].unsqueeze(0)).clamp_min_(0.0)
    return gram.neg_().add_(1.0).clamp_min_(0.0)


def _tile_same(labels, rows: slice, cols: slice):
    """Same-class mask between the samples of ``rows`` and of ``cols`` (diagonal included)."""
    return labels[rows].unsqueeze(1) == labels[cols].unsqueeze(0)


def _fill_self_pairs(m: torch.Tensor, rows: slice, cols: slice, value) -> torch.Tensor:
    """Set the entries that pair a sample with itself (where the row and column ranges overlap)."""
    m.diagonal(offset=rows.start - cols.start).fill_(value)  # empty where they do not overlap
    return m


class _ChunkedGramSNNL(torch.autograd.Function):
    """:class:`_GramSNNL` computed by blocks, for batches whose b x b matrices do not fit.

    Forward: blocks of ``rows`` anchors against the whole batch, each row's log-sum-exps
    taken within its block. Backward: square tiles recomputed from z, never stored; the
    distance matrix is symmetric, so one tile (I, J) gives both A_IJ and A_JI (A = dL/dD)
    and only the tiles with J >= I are computed. Memory: a few blocks of BLOCK_ELEMENTS
    entries plus O(b d). Work: the Gram product once in the forward and half of it again
    in the backward, and one (A + A^T) z product: about 1.25 times the plain path's matrix
    products, instead of the 2 times of a row-block backward.
    """

    @staticmethod
    def forward(ctx, z, temperature, labels, valid, kind, rows, tile):
        b = z.shape[0]
        inv_t = 1.0 / temperature
        sq = (z * z).sum(1) if kind == "sqeuclidean" else None
        lse_all = z.new_empty(b)
        lse_pos = z.new_empty(b)
        whole = slice(0, b)
        for start in range(0, b, rows):
            block = slice(start, min(start + rows, b))
            logits = _tile_dist(z, sq, block, whole, kind).mul_(-inv_t)
            _fill_self_pairs(logits, block, whole, float("-inf"))
            lse_all[block] = torch.logsumexp(logits, dim=1)
            logits.masked_fill_(~_tile_same(labels, block, whole), float("-inf"))
            lse_pos[block] = torch.logsumexp(logits, dim=1)
        ctx.kind, ctx.tile = kind, tile
        ctx.save_for_backward(z, temperature, labels, valid, lse_all, lse_pos)
        return lse_all - lse_pos

    @staticmethod
    def backward(ctx, grad_out):
        z, temperature, labels, valid, lse_all, lse_pos = ctx.saved_tensors
        kind, tile = ctx.kind, ctx.tile
        need_z, need_t = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
        b = z.shape[0]
        inv_t = 1.0 / temperature
        g = torch.where(valid, grad_out, torch.zeros_like(grad_out))
        lse_pos = torch.where(valid, lse_pos, torch.zeros_like(lse_pos))
        sq = (z * z).sum(1) if kind == "sqeuclidean" else None
        s_z = torch.zeros_like(z)  # (A + A^T) z
        s_rowsum = z.new_zeros(b)  # rowsum(A + A^T)
        grad_t = z.new_zeros(())

        def dl_dlogits(logits, same, row_lse_all, row_lse_pos, row_g):
            """p - q times the upstream gradient, for anchors along dim 0 (a fresh tensor)."""
            q = torch.exp(logits - row_lse_pos).masked_fill_(~same, 0.0)
            return torch.exp(logits - row_lse_all).sub_(q).mul_(row_g)

        tiles = [slice(s, min(s + tile, b)) for s in range(0, b, tile)]
        for i, ti in enumerate(tiles):
            for tj in tiles[i:]:
                dist = _tile_dist(z, sq, ti, tj, kind)
                logits = _fill_self_pairs(dist * (-inv_t), ti, tj, float("-inf"))
                same = _tile_same(labels, ti, tj)
                # rows of ti against tj, and rows of tj against ti (the transposed tile)
                e_i = dl_dlogits(logits, same, lse_all[ti, None], lse_pos[ti, None], g[ti, None])
                e_j = None
                if ti != tj:
                    e_j = dl_dlogits(logits, same, lse_all[None, tj], lse_pos[None, tj], g[None, tj])
                del logits, same
                if need_t:
                    grad_t += (e_i * dist).sum()
                    if e_j is not None:
                        grad_t += (e_j * dist).sum()
                if not need_z:
                    continue
                clamped = dist <= 0
                del dist
                sym = e_i if e_j is None else e_i.add_(e_j)  # tile (ti, tj) of dL/dlogits + its transpose
                del e_j
                sym.mul_(-inv_t).masked_fill_(clamped, 0.0)  # dL/dD: logit = -d / T, then the clamp
                if ti == tj:
                    sym = sym.add_(sym.T.clone())
                    s_rowsum[ti] += sym.sum(1)
                    s_z[ti] += sym @ z[ti]
                else:
                    s_rowsum[ti] += sym.sum(1)
                    s_rowsum[tj] += sym.sum(0)
                    s_z[ti] += sym @ z[tj]
                    s_z[tj] += sym.T @ z[ti]
        grad_z = None
        if need_z:
            if kind == "sqeuclidean":
                grad_z = s_rowsum.unsqueeze(1).mul(z).sub_(s_z).mul_(2.0)
            else:
                grad_z = s_z.neg_()
        if need_t:
            grad_t = (grad_t * inv_t * inv_t).reshape(temperature.shape)
        return grad_z, grad_t, None, None, None, None, None


def _temperature_tensor(temperature, like: torch.Tensor) -> torch.Tensor:
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a scalar, got shape {tuple(temperature.shape)}")
        t = temperature.reshape(())
        if t.dtype != like.dtype:
            t = t.to(like.dtype)
        if not t.requires_grad and t.device.type == "cpu":
            value = float(t.detach().numpy())  # through NumPy: no tensor op, no sync
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"temperature must be a positive finite number, got {value}")
        return t.to(like.device)
    t = float(temperature)
    if not (t > 0 and t < float("inf")):
        raise ValueError(
            f"temperature must be a positive finite number, got {temperature!r}; "
            "use optimal_temperature() to pick one, or OnlineTemperature to learn one"
        )
    return torch.full((), t, dtype=like.dtype, device=like.device)  # a fill: no host-to-device copy


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
    labels = _check_labels(labels, dist.shape[0], dist.device)
    same, _ = _pair_masks(labels)
    valid = (same & (dist < float("inf"))).any(dim=1)
    _check_some_partner(valid)
    if not bool(valid.any()):
        raise DataError("no anchor has a same-class partner at a finite distance, so the SNNL is undefined")
    n_valid = valid.sum()

    def at(temperature) -> torch.Tensor:
        with torch.no_grad():
            per_anchor, _, _ = _lse_forward(dist, _temperature_tensor(temperature, dist), same, valid)
            return torch.where(valid, per_anchor, torch.zeros_like(per_anchor)).sum() / n_valid

    return at


def _valid_anchors(labels: torch.Tensor) -> torch.Tensor:
    """Anchors whose label occurs at least twice, without forming a b x b mask: after a
    sort, a label occurs twice when it equals its predecessor or its successor. Unlike
    ``torch.unique`` this has no data-dependent output size (no device synchronisation)."""
    ordered, order = torch.sort(labels)
    repeat = ordered[1:] == ordered[:-1]
    has = torch.zeros_like(ordered, dtype=torch.bool)
    has[1:] |= repeat
    has[:-1] |= repeat
    return torch.empty_like(has).scatter_(0, order, has)


def _reduce(inp, labels, temperature, reduction, return_stats, kind, rows=None, tile=None):
    """Masks, the no-positive policy, the per-anchor values and the reduction.

    ``kind=None``: ``inp`` is a (b, b) distance matrix; otherwise (b, d) features for
    :class:`_GramSNNL`, or for :class:`_ChunkedGramSNNL` by blocks of ``rows`` anchors."""
    b = inp.shape[0]
    if b < 2:
        raise DataError(f"SNNL needs at least 2 samples in the batch, got {b}")
    labels = _check_labels(labels, b, inp.device)
    if kind is None:
        same, valid = _pair_masks(labels)
        valid = (same & (inp < float("inf"))).any(dim=1)  # a partner at +inf (masked out) does not count
    elif rows is None:
        # excluded from the positives' sum: the other classes and the anchor itself
        not_positive = labels.unsqueeze(0) != labels.unsqueeze(1)
        not_positive.diagonal().fill_(True)
        valid = not_positive.all(dim=1).logical_not_()
    else:
        valid = _valid_anchors(labels)
    _check_some_partner(valid)
    if kind is None and not bool(valid.any()):  # a distance matrix: validated (and synchronised) anyway
        raise DataError(
            f"no anchor in this batch of {b} has a same-class partner at a finite distance, "
            "so the SNNL is undefined; use larger batches or class-balanced sampling"
        )
    n_valid = valid.sum()
    t = _temperature_tensor(temperature, inp)
    if kind is None:
        per_anchor = _LogSpaceSNNL.apply(inp, t, same, valid)
    elif rows is None:
        per_anchor = _GramSNNL.apply(inp, t, not_positive, valid, kind)
    else:
        per_anchor = _ChunkedGramSNNL.apply(inp, t, labels, valid, kind, rows, tile)
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

    Distances (``distance``): ``"sqeuclidean"`` (the paper's; computed from the
    centred batch, which is exact by translation invariance and immune to a shared
    offset, clamped at 0), ``"cosine"`` (1 - cos), or a callable mapping the (b, d)
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

    Temperature modes:
      * fixed: pass a positive float (or a 0-d tensor; a tensor that requires grad
        receives the exact gradient dSNNL/dT);
      * optimal: ``snnl.optimal_temperature(features, labels)`` returns the T that
        minimises SNNL and the loss there, the value every analysis reports
        (it makes the measure invariant to rescaling the representation);
      * online: ``snnl.OnlineTemperature`` learns log T during training, always
        *minimising* SNNL whatever the regularizer's sign, and can never reach T <= 0.

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
    x = _as_compute_dtype(features)
    with torch.autocast(device_type=x.device.type, enabled=False):
        z = x - x.mean(dim=0, keepdim=True) if distance == "sqeuclidean" else F.normalize(x, dim=1)
        b = z.shape[0]
        rows = tile = None
        if chunk_size is not None or b > AUTO_CHUNK_BATCH:
            rows, tile = _block_rows(b, chunk_size), _tile_size(b, chunk_size)
        return _reduce(z, labels, temperature, reduction, return_stats, kind=distance, rows=rows, tile=tile)
