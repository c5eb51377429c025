"""The fused SNNL of features whose distances come from one Gram matrix (squared
Euclidean on the centred batch, or cosine on unit rows): the path behind
:func:`snnl.soft_nearest_neighbor_loss` for batches up to ``AUTO_CHUNK_BATCH``."""

from __future__ import annotations

import torch

from snnl.loss_logspace import floored_exp


class GramSNNL(torch.autograd.Function):
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
        per_anchor, e_all, s_all, e_pos, s_pos, expect = two_softmaxes(logits, not_positive, need_t)
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


def two_softmaxes(logits: torch.Tensor, not_positive: torch.Tensor, need_t: bool):
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
    e_all = floored_exp(logits)
    e_all.diagonal().fill_(0.0)
    s_all = e_all.sum(dim=1)
    mean_all = None
    if need_t:  # the diagonal weighs 0: its logit must be 0, not -inf (0 * -inf = NaN)
        logits.diagonal().fill_(0.0)
        mean_all = (e_all * logits).sum(dim=1) / s_all
    logits.masked_fill_(not_positive, float("-inf"))
    m_pos = logits.amax(dim=1, keepdim=True).clamp_min_(torch.finfo(logits.dtype).min)  # -inf: no positive
    logits.sub_(m_pos)
    e_pos = floored_exp(logits).masked_fill_(not_positive, 0.0)
    s_pos = e_pos.sum(dim=1)
    # l_i = (m_all + log s_all) - (m_all + m_pos + log s_pos)
    per_anchor = s_all.log() - s_pos.log() - m_pos.squeeze(1)
    expect = None
    if need_t:
        logits.masked_fill_(not_positive, 0.0)
        mean_pos = (e_pos * logits).sum(dim=1) / s_pos + m_pos.squeeze(1)  # both means relative to m_all
        expect = mean_all - mean_pos
    return per_anchor, e_all, s_all, e_pos, s_pos.clamp_min_(1.0), expect
