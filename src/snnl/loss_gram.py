"""The fused SNNL of features whose distances come from one Gram matrix (squared
Euclidean on the centred batch, or cosine on unit rows), for one layer or several layers
of the same batch at once: the path behind :func:`snnl.soft_nearest_neighbor_loss` for
batches up to ``AUTO_CHUNK_BATCH``, and behind :func:`snnl.soft_nearest_neighbor_losses`."""

from __future__ import annotations

import torch

from snnl.loss_logspace import floored_exp


class GramSNNL(torch.autograd.Function):
    """Per-anchor SNNL of L layers of one batch: ``apply(not_positive, valid, kind, *zs, *ts)``
    with L feature matrices z_l (b, d_l) and L 0-d temperatures; returns (L, b).

    ``kind="sqeuclidean"``: z is the centred batch and d_ik = |z_i|^2 + |z_k|^2 - 2 z_i.z_k;
    ``kind="cosine"``: z holds unit rows and d_ik = 1 - z_i.z_k. A term that depends on the
    anchor i alone cancels in l_i = LSE_k(-d_ik/T) - LSE_j(-d_ij/T), so the logits are
    taken as a_ik / T with a_ik = 2 z_i.z_k - |z_k|^2 (resp. z_i.z_k): one ``addmm`` per
    layer with a broadcast bias gives them, with no distance matrix, clamp or rescaling pass.
    Everything after the Gram products runs once on the (L, b, b) stack of the layers, so
    the number of operations (kernel launches on a GPU) hardly grows with L.

    Each log-sum-exp is taken with its own row maximum (exact for any d/T), and its
    exponentials are kept for the backward, which therefore computes no exponential:
    dl_i/dlogit_ik = p_ik - q_ik with p = e_all / s_all (all others) and q = e_pos / s_pos
    (positives). dL/dz_l needs one (b x b) @ (b x d_l) product, (A + A^T) z with
    A = dL/da; dL/dT = -(1/T) sum_i g_i (E_p[logit_i] - E_q[logit_i]), whose expectations the
    forward takes only when a temperature requires a gradient.
    Saved: the z_l and two (L, b, b) stacks of exponentials.
    """

    @staticmethod
    def forward(ctx, not_positive, valid, kind, *zs_and_ts):
        n = len(zs_and_ts) // 2
        zs, ts = zs_and_ts[:n], zs_and_ts[n:]
        b = zs[0].shape[0]
        logits = zs[0].new_empty((n, b, b))
        for layer, z in enumerate(zs):
            if kind == "sqeuclidean":
                torch.addmm((z * z).sum(1).unsqueeze(0), z, z.T, beta=-1.0, alpha=2.0, out=logits[layer])
            else:
                torch.mm(z, z.T, out=logits[layer])
        inv_t = torch.stack(ts).reciprocal()
        logits.mul_(inv_t.view(n, 1, 1))
        need_t = any(t.requires_grad for t in ts)
        per_anchor, e_all, s_all, e_pos, s_pos, expect = two_softmaxes(logits, not_positive, need_t)
        del logits
        ctx.kind = kind
        if expect is not None:
            expect = torch.where(valid, expect, torch.zeros_like(expect))
        ctx.save_for_backward(valid, inv_t, e_all, s_all, e_pos, s_pos, expect, *zs)
        ctx.t_shapes = [t.shape for t in ts]
        return per_anchor

    @staticmethod
    def backward(ctx, grad_out):
        valid, inv_t, e_all, s_all, e_pos, s_pos, expect, *zs = ctx.saved_tensors
        n = len(zs)
        need_z = ctx.needs_input_grad[3 : 3 + n]
        need_t = ctx.needs_input_grad[3 + n :]
        g = torch.where(valid, grad_out, torch.zeros_like(grad_out))  # (L, b)
        grad_ts = [None] * n
        if any(need_t):  # logit = a / T: dlogit/dT = -logit / T
            per_layer = (g * expect).sum(1) * -inv_t
            grad_ts = [per_layer[i].reshape(shape) if need_t[i] else None for i, shape in enumerate(ctx.t_shapes)]
        grad_zs = [None] * n
        if any(need_z):
            g_t = g * inv_t.unsqueeze(1)
            # dL/da = (p - q) g / T, with p = e_all / s_all and q = e_pos / s_pos
            a_grad = torch.addcmul(e_all * (g_t / s_all).unsqueeze(-1), e_pos, (g_t / s_pos).unsqueeze(-1), value=-1.0)
            colsum = a_grad.sum(1) if ctx.kind == "sqeuclidean" else None  # (L, b): sum over the anchors
            sym = a_grad.add_(a_grad.transpose(1, 2).clone())  # A + A^T: one (b x b) @ (b x d) product, not two
            for i, z in enumerate(zs):
                if not need_z[i]:
                    continue
                if ctx.kind == "sqeuclidean":  # a_ik = 2 z_i.z_k - |z_k|^2: dL/dz = 2 ((A + A^T) z - colsum(A) z)
                    grad_zs[i] = torch.addmm(colsum[i].unsqueeze(1) * z, sym[i], z, beta=-2.0, alpha=2.0)
                else:
                    grad_zs[i] = sym[i] @ z
        return (None, None, None, *grad_zs, *grad_ts)


def two_softmaxes(logits: torch.Tensor, not_positive: torch.Tensor, need_t: bool):
    """The two row-wise softmaxes of the SNNL from a (..., b, b) stack of logits, each
    shifted by its own row maximum (exact for any d/T). ``logits`` is scratch space.

    Returns per-anchor l_i (..., b) (+inf for anchors without a positive); the
    exponentials e_all = exp(logit - max) over all others and e_pos over the positives (0
    elsewhere); their row sums s_all and s_pos (s_pos set to 1 where there is no positive:
    it is >= 1 wherever there is one, from its maximum's exp(0)); and, when ``need_t``, the
    difference of softmax-weighted means E_p[logit_i] - E_q[logit_i] (dl_i/dT = -that / T).
    ``not_positive`` (b, b) marks the other classes and the diagonal.
    """
    diagonal = logits.diagonal(dim1=-2, dim2=-1)
    diagonal.fill_(float("-inf"))  # out of the row maximum
    m_all = logits.amax(dim=-1, keepdim=True)
    logits.sub_(m_all)  # now logit - m_all: one shift for both softmaxes
    e_all = floored_exp(logits)
    e_all.diagonal(dim1=-2, dim2=-1).fill_(0.0)
    s_all = e_all.sum(dim=-1)
    mean_all = None
    if need_t:  # the diagonal weighs 0: its logit must be 0, not -inf (0 * -inf = NaN)
        diagonal.fill_(0.0)
        mean_all = (e_all * logits).sum(dim=-1) / s_all
    logits.masked_fill_(not_positive, float("-inf"))
    m_pos = logits.amax(dim=-1, keepdim=True).clamp_min_(torch.finfo(logits.dtype).min)  # -inf: no positive
    logits.sub_(m_pos)
    e_pos = floored_exp(logits).masked_fill_(not_positive, 0.0)
    s_pos = e_pos.sum(dim=-1)
    # l_i = (m_all + log s_all) - (m_all + m_pos + log s_pos)
    per_anchor = s_all.log() - s_pos.log() - m_pos.squeeze(-1)
    expect = None
    if need_t:
        logits.masked_fill_(not_positive, 0.0)
        mean_pos = (e_pos * logits).sum(dim=-1) / s_pos + m_pos.squeeze(-1)  # both means relative to m_all
        expect = mean_all - mean_pos
    return per_anchor, e_all, s_all, e_pos, s_pos.clamp_min_(1.0), expect
