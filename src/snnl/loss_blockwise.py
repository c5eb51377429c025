"""The blockwise SNNL for batches whose b x b matrices do not fit: the path behind
:func:`snnl.soft_nearest_neighbor_loss` above ``AUTO_CHUNK_BATCH`` samples, or with
``chunk_size``."""

from __future__ import annotations

import torch


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


class ChunkedGramSNNL(torch.autograd.Function):
    """:class:`snnl.loss_gram.GramSNNL` computed by blocks, for batches whose b x b matrices do not fit.

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
