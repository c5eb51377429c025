"""scikit-learn's 8x8 digits and an MLP trained on them in about a second: the small model of
the attack, detection, embedding and evaluation tests."""

from __future__ import annotations

import functools

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from snnl.models import build_model


@functools.lru_cache(maxsize=1)
def tiny_digits():
    """scikit-learn's 8x8 digits as uint8 N x 1 x 8 x 8 (0..255): (train x, y), (test x, y)."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.round(d.images * (255.0 / 16.0)).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target.astype(np.int64))
    perm = torch.from_numpy(np.random.default_rng(0).permutation(len(y)))
    x, y = x[perm], y[perm]
    return (x[:1400], y[:1400]), (x[1400:], y[1400:])


@functools.lru_cache(maxsize=1)
def tiny_model() -> nn.Module:
    """An MLP trained in about a second on the digits (test accuracy ~0.95), in eval mode."""
    (x, y), _ = tiny_digits()
    torch.manual_seed(0)
    model = build_model("mlp", (1, 8, 8), 10, hidden=(64, 32))
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    g = torch.Generator().manual_seed(0)
    xf = x.float() / 255.0
    for _ in range(400):
        idx = torch.randint(0, len(y), (128,), generator=g)
        opt.zero_grad()
        F.cross_entropy(model(xf[idx]), y[idx]).backward()
        opt.step()
    model.zero_grad(set_to_none=True)
    return model.eval()
