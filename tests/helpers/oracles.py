"""Independent reference implementations, written from the formula, never from snnl's code."""

from __future__ import annotations

import math

import numpy as np
import torch


def snnl_loop(x, y, temperature: float, distance: str = "sqeuclidean") -> tuple[float, int]:
    """Literal float64 loop over anchors and pairs. Returns (mean loss over valid anchors, n_excluded).

    d_ij is computed pair by pair (no norm expansion, no centring); the sums are taken
    with max shifts, which is the same number in exact arithmetic and keeps the oracle
    meaningful when exp(-d/T) underflows.
    """
    x = np.asarray(x, dtype=np.float64).reshape(len(x), -1)
    y = np.asarray(y)
    b = len(x)
    total, n, excluded = 0.0, 0, 0
    for i in range(b):
        logits, same = [], []
        for j in range(b):
            if j == i:
                continue
            if distance == "sqeuclidean":
                d = float(np.sum((x[i] - x[j]) ** 2))
            else:
                d = 1.0 - float(np.dot(x[i], x[j]) / (np.linalg.norm(x[i]) * np.linalg.norm(x[j])))
            logits.append(-d / temperature)
            same.append(y[j] == y[i])
        if not any(same):
            excluded += 1
            continue
        pos = [a for a, s in zip(logits, same) if s]
        m, mp = max(logits), max(pos)
        log_den = m + math.log(math.fsum(math.exp(a - m) for a in logits))
        log_num = mp + math.log(math.fsum(math.exp(a - mp) for a in pos))
        total += log_den - log_num
        n += 1
    return total / n, excluded


def snnl_torch_reference(x: torch.Tensor, y: torch.Tensor, temperature: float) -> torch.Tensor:
    """Differentiable float64 reference: broadcast differences (no norm expansion, no
    centring, no custom backward), masked log-sum-exp by plain autograd."""
    x = x.reshape(len(x), -1).double()
    d = ((x.unsqueeze(1) - x.unsqueeze(0)) ** 2).sum(-1)
    logits = -d / temperature
    b = len(x)
    eye = torch.eye(b, dtype=torch.bool)
    same = (y.unsqueeze(0) == y.unsqueeze(1)) & ~eye
    valid = same.any(1)
    lse_all = torch.logsumexp(logits.masked_fill(eye, -math.inf), 1)
    lse_pos = torch.logsumexp(logits.masked_fill(~same, -math.inf), 1)
    return (lse_all - lse_pos)[valid].mean()


CLEVERHANS_EPS = 1e-5  # cleverhans v3.1's STABILITY_EPS, written here independently of snnl.legacy


def cleverhans_terms_loop(x: torch.Tensor, y: torch.Tensor, temperature) -> torch.Tensor:
    """Each anchor's cleverhans v3.1 term, written from the formula with an explicit loop over
    anchors (float64, differentiable): d_ij = |x_i|^2 + |x_j|^2 - 2 x_i.x_j, f_ij = exp(-d_ij / T),
    f_ii = exp(-d_ii / T) - 1, term_i = -log(eps + sum_j same_ij f_ij / (eps + sum_k f_ik))."""
    x = x.reshape(len(x), -1).double()
    terms = []
    for i in range(len(x)):
        row = []
        for j in range(len(x)):
            d = (x[i] * x[i]).sum() + (x[j] * x[j]).sum() - 2 * (x[i] * x[j]).sum()
            f = torch.exp(-d / temperature)
            row.append(f - 1.0 if i == j else f)
        denom = CLEVERHANS_EPS + sum(row)
        summed = sum(f / denom for j, f in enumerate(row) if y[j] == y[i])
        terms.append(-torch.log(CLEVERHANS_EPS + summed))
    return torch.stack(terms)
