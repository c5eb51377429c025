"""The SNNL from a distance matrix in log space: the autograd function behind
:func:`snnl.snnl_from_distances` (any distance, +inf masks a pair out), and the
exponential and log-sum-exp it shares with the Gram path."""

from __future__ import annotations

import math

import torch


def floored_exp(shifted: torch.Tensor) -> torch.Tensor:
    """exp of ``shifted`` (<= 0, or -inf), with arguments below log(smallest normal number)
    raised to it first: CPU exp is several times slower on arguments whose result
    underflows (or is exp(-inf)), and such terms (< 1.2e-38 in float32) cannot change a
    softmax whose largest term is exp(0) = 1. Excluded entries are zeroed by the caller."""
    floor = math.log(torch.finfo(shifted.dtype).tiny) + 0.5
    return shifted.clamp_min(floor).exp_()


def _row_logsumexp(x: torch.Tensor) -> torch.Tensor:
    """log-sum-exp of each row of ``x`` (which may hold -inf), exact to the dtype's precision:
    the entries are shifted by the row maximum and exponentiated with :func:`floored_exp`,
    so an entry whose term underflows adds at most the smallest normal number to a sum that
    is at least 1. A row of -inf only gives a finite (very negative) value: mask it."""
    m = x.amax(dim=1, keepdim=True).clamp_min_(torch.finfo(x.dtype).min)
    return m.squeeze(1) + floored_exp(x - m).sum(dim=1).log_()


def lse_forward(dist: torch.Tensor, temperature: torch.Tensor, same: torch.Tensor, valid: torch.Tensor):
    """Per-anchor l_i = LSE_{k != i}(-d_ik/T) - LSE_{j != i, same}(-d_ij/T), with the two
    LSEs; +inf (and lse_pos = -inf) where ``valid`` is False (no positive at a finite distance)."""
    logits = dist * (-1.0 / temperature)
    logits.diagonal().fill_(float("-inf"))
    lse_all = _row_logsumexp(logits)
    logits.masked_fill_(~same, float("-inf"))
    lse_pos = torch.where(valid, _row_logsumexp(logits), torch.full_like(lse_all, float("-inf")))
    return lse_all - lse_pos, lse_all, lse_pos


def _lse_backward(dist, temperature, same, valid, lse_all, lse_pos, grad_out, need_t: bool):
    """dL/dD (b x b, a fresh tensor) and dL/dT, recomputing the softmaxes from D.

    dl_i/dlogit_ij = p_ij - q_ij (p: softmax over all others, q: over positives), and
    logit = -d / T, so dl/dd = -(p - q) / T and dl/dT = sum (p - q) d / T^2.
    D may hold +inf (pairs masked out): their weights p - q are exactly 0 and so is their
    share of dl/dT (the limit of w d as d -> inf), not 0 * inf = NaN.
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
        weighted = torch.where(p == 0, torch.zeros_like(weighted), weighted)
        grad_t = weighted.sum() * inv_t * inv_t
        grad_t = grad_t.reshape(temperature.shape)
    return p.mul_(-inv_t), grad_t


class LogSpaceSNNL(torch.autograd.Function):
    """Per-anchor SNNL from a distance matrix (any distance), in log space.

    Saves only D (b x b) and two b-vectors; the backward recomputes the softmaxes,
    so no b x b matrix of probabilities is kept between forward and backward.
    Anchors without positives get l_i = +inf and no gradient. D may hold +inf (masked
    pairs: weight 0, no gradient, and a finite dL/dT).
    """

    @staticmethod
    def forward(ctx, dist, temperature, same, valid):
        per_anchor, lse_all, lse_pos = lse_forward(dist, temperature, same, valid)
        ctx.save_for_backward(dist, temperature, same, valid, lse_all, lse_pos)
        return per_anchor

    @staticmethod
    def backward(ctx, grad_out):
        dist, temperature, same, valid, lse_all, lse_pos = ctx.saved_tensors
        grad_dist, grad_t = _lse_backward(
            dist, temperature, same, valid, lse_all, lse_pos, grad_out, ctx.needs_input_grad[1]
        )
        return (grad_dist if ctx.needs_input_grad[0] else None), grad_t, None, None
