"""t-SNE of hidden layers (E7) and of sign(grad_x CE) (E10)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from helpers.digits import tiny_digits, tiny_model

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
    pred, coords, skipped = layer_embeddings(model, xt[:60], ["fc1", "fc2"], perplexity=10)
    assert set(coords) == {"fc1", "fc2"} and all(c.shape == (60, 2) for c in coords.values()) and skipped == {}
    assert np.isfinite(np.concatenate(list(coords.values()))).all()
    assert pred.shape == (60,)
    xy, stats = gradient_embedding(model, xt[:64], yt[:64], perplexity=10)
    assert xy.shape == (64, 2) and np.isfinite(xy).all()
    # a CE-trained model's sign gradients cluster by class: SNNL well below the ~2.3 of chance
    assert 0 <= stats["snnl"] < 2.0 and stats["temperature"] > 0 and stats["skipped"] is None


def run_child(code: str) -> subprocess.CompletedProcess:
    """Run ``code`` in a fresh interpreter (a segmentation fault there fails the test, not the run)."""
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True,
                          env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=300)


def test_tsne_of_identical_points_is_a_clear_error_not_a_crash():
    child = run_child("""
        import numpy as np
        from snnl.evaluate.embeddings import tsne_2d
        for x in (np.zeros((20, 50)), np.full((30, 8), 3.5)):
            try:
                tsne_2d(x, perplexity=5)
            except ValueError as e:
                print(type(e).__name__, e)
    """)
    assert child.returncode == 0, f"the process died (return code {child.returncode}): {child.stderr[-500:]}"
    lines = child.stdout.strip().splitlines()
    assert len(lines) == 2 and all(line.startswith("DegenerateEmbedding") and "identical" in line for line in lines)


def test_zero_input_gradients_skip_the_embedding_and_say_why():
    child = run_child("""
        import json, torch
        from torch import nn
        from snnl.evaluate.embeddings import gradient_embedding
        model = nn.Sequential(nn.Flatten(), nn.Linear(64, 10))
        with torch.no_grad():
            model[1].weight.zero_()  # grad_x CE = W^T (softmax - onehot) = 0 for every image
        images = torch.randint(0, 256, (32, 1, 8, 8), dtype=torch.uint8)
        xy, stats = gradient_embedding(model, images, torch.arange(32) % 4, perplexity=5)
        print(json.dumps({"coords": None if xy is None else xy.tolist(), **stats}))
    """)
    assert child.returncode == 0, f"the process died (return code {child.returncode}): {child.stderr[-500:]}"
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["coords"] is None
    assert "zero" in out["skipped"] and "32" in out["skipped"]
    assert out["snnl"] is None or np.isnan(out["snnl"])


def test_a_dead_layer_is_skipped_and_the_others_embedded():
    child = run_child("""
        import json, torch
        from snnl.evaluate.embeddings import layer_embeddings
        from snnl.models import build_model
        torch.manual_seed(0)
        model = build_model("mlp", (1, 8, 8), 10, hidden=(16, 16)).eval()
        with torch.no_grad():
            model.fc2[0].weight.zero_()
            model.fc2[0].bias.fill_(-1.0)  # ReLU(-1) = 0 for every image: a dead layer
        images = torch.randint(0, 256, (40, 1, 8, 8), dtype=torch.uint8)
        pred, coords, skipped = layer_embeddings(model, images, ["fc1", "fc2"], perplexity=5)
        print(json.dumps({"layers": sorted(coords), "shape": list(coords["fc1"].shape), "skipped": skipped}))
    """)
    assert child.returncode == 0, f"the process died (return code {child.returncode}): {child.stderr[-500:]}"
    out = json.loads(child.stdout.strip().splitlines()[-1])
    assert out["layers"] == ["fc1"] and out["shape"] == [40, 2]
    assert list(out["skipped"]) == ["fc2"] and "identical" in out["skipped"]["fc2"]


def test_tsne_input_checks():
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1, (30, 6))
    for bad, match in ((np.nan, "NaN"), (np.inf, r"\+inf"), (-np.inf, "-inf")):
        y = x.copy()
        y[4, 2] = bad
        with pytest.raises(ValueError, match=match):
            tsne_2d(y, perplexity=5)
    with pytest.raises(ValueError, match="at least 4"):
        tsne_2d(x[:3], perplexity=5)
    for perplexity in (0.0, -3.0, float("nan")):
        with pytest.raises(ValueError, match="perplexity"):
            tsne_2d(x, perplexity=perplexity)
    with pytest.raises(ValueError, match="identical"):
        tsne_2d(np.ones((10, 3)))


def test_tsne_of_huge_or_tiny_features_keeps_the_clusters():
    # the data of test_tsne_is_seeded_and_separates_obvious_clusters, scaled: t-SNE does not depend on a
    # global scale, but scikit-learn's perplexity search does (1e16: clusters mixed; 1e200: squared
    # distances overflow and it failed with a reshape error; 1e-30: a division by zero)
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (30, 80)), rng.normal(12, 1, (30, 80))])
    labels = np.r_[np.zeros(30), np.ones(30)]
    for scale in (1e16, 1e200, 1e-30):
        a = tsne_2d(x * scale, seed=1, perplexity=10, pca=10)
        assert np.isfinite(a).all()
        d = ((a[:, None] - a[None]) ** 2).sum(-1)
        np.fill_diagonal(d, np.inf)
        assert (labels[d.argmin(1)] == labels).all(), scale
