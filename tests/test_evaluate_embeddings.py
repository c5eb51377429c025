"""t-SNE of hidden layers (E7) and of sign(grad_x CE) (E10)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from test_attacks import tiny_digits, tiny_model

from snnl.evaluate.embeddings import gradient_embedding, layer_embeddings, sign_gradients, tsne_2d


def test_sign_gradients_are_the_signs_of_the_input_gradient():
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x = xt[:40].float() / 255.0
    xr = x.clone().requires_grad_(True)
    (g,) = torch.autograd.grad(F.cross_entropy(model(xr), yt[:40]), xr)
    s = sign_gradients(model, xt[:40], yt[:40])
    assert s.shape == (40, 64)
    assert set(torch.unique(s).tolist()) <= {-1.0, 0.0, 1.0}
    clear = g.flatten(1).abs() > 1e-7
    assert torch.equal(s[clear], g.flatten(1).sign()[clear])


def test_tsne_is_seeded_and_separates_obvious_clusters():
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 80)), rng.normal(12, 1, (30, 80))])
    a = tsne_2d(x, seed=1, perplexity=10, pca=10)
    b = tsne_2d(x, seed=1, perplexity=10, pca=10)
    assert a.shape == (60, 2) and np.array_equal(a, b)
    # each point's nearest embedded neighbour is from its own cluster
    d = ((a[:, None] - a[None]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    labels = np.r_[np.zeros(30), np.ones(30)]
    assert (labels[d.argmin(1)] == labels).all()
    with pytest.raises(ValueError, match="at least 4"):
        tsne_2d(x[:3])


def test_layer_and_gradient_embeddings_of_the_tiny_model():
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    pred, coords = layer_embeddings(model, xt[:60], ["fc1", "fc2"], perplexity=10)
    assert set(coords) == {"fc1", "fc2"} and all(c.shape == (60, 2) for c in coords.values())
    assert np.isfinite(np.concatenate(list(coords.values()))).all()
    assert pred.shape == (60,)
    xy, stats = gradient_embedding(model, xt[:64], yt[:64], perplexity=10)
    assert xy.shape == (64, 2) and np.isfinite(xy).all()
    # a CE-trained model's sign gradients cluster by class: SNNL well below the ~2.3 of chance
    assert 0 <= stats["snnl"] < 2.0 and stats["temperature"] > 0
