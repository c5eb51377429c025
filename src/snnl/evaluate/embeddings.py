"""t-SNE embeddings (scikit-learn) of hidden layers (E7) and of adversarial gradients (E10).

E7: each hidden layer's representation of a stratified test subset, reduced with PCA
(scikit-learn) to ``pca`` components when wider, then embedded in 2-D with t-SNE.

E10 (the official demo's figure): for 128 test images, sign(grad_x CE(model(x), y)) with
the true label, flattened; t-SNE of those sign vectors. A CE-trained model's gradients
cluster by class, an SNNL-maximised model's much less. The clustering is quantified by
the SNNL of the sign vectors at the optimal temperature (by true class; high =
entangled), computed with :func:`snnl.optimal_temperature`.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np
import torch
from torch import nn

from snnl.attacks import input_gradient
from snnl.evaluate.detection import forward_features, to_unit
from snnl.temperature import optimal_temperature


def tsne_2d(features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0, pca: int = 50) -> np.ndarray:
    """(n, 2) t-SNE coordinates of ``features`` (n, d): PCA to ``pca`` components first when
    d is larger (0: no PCA); the perplexity is capped below n / 3 for small n."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    x = np.asarray(features, dtype=np.float64).reshape(features.shape[0], -1)
    n = x.shape[0]
    if n < 4:
        raise ValueError(f"t-SNE needs at least 4 points, got {n}")
    if pca and x.shape[1] > pca and n > pca:
        x = PCA(n_components=int(pca), random_state=seed).fit_transform(x)
    perp = float(min(perplexity, max((n - 1) / 3.0, 1.0)))
    tsne = TSNE(n_components=2, perplexity=perp, init="pca", learning_rate="auto", random_state=seed)
    return tsne.fit_transform(x).astype(np.float64)


def layer_embeddings(
    model: nn.Module,
    images: torch.Tensor,
    layers: Sequence[str],
    *,
    seed: int = 0,
    perplexity: float = 30.0,
    pca: int = 50,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """(predictions, {layer: (n, 2) t-SNE coordinates}) for ``images``."""
    from tqdm.auto import tqdm

    logits, feats = forward_features(model, images, layers, batch_size=batch_size, device=device)
    coords = {}
    for name in tqdm(list(layers), desc="t-SNE layers", unit="layer", disable=not progress, leave=False):
        coords[name] = tsne_2d(feats[name].cpu().numpy(), seed=seed, perplexity=perplexity, pca=pca)
    return logits.argmax(dim=1).cpu().numpy(), coords


def sign_gradients(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """sign(grad_x CE(model(x), y)) per image, flattened: (n, C*H*W), values in {-1, 0, 1}."""
    was_training = model.training
    model.eval()
    try:
        grad = input_gradient(model, to_unit(images.to(device)), torch.as_tensor(labels).long().to(device))
    finally:
        model.train(was_training)
    return grad.sign().reshape(grad.shape[0], -1).cpu()


def gradient_embedding(
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    seed: int = 0,
    perplexity: float = 30.0,
    device: torch.device | str = "cpu",
) -> tuple[np.ndarray, dict[str, float]]:
    """((n, 2) t-SNE coordinates of the sign gradients, {snnl, temperature} of the sign
    vectors by true class at the optimal temperature)."""
    signs = sign_gradients(model, images, labels, device=device)
    coords = tsne_2d(signs.numpy(), seed=seed, perplexity=perplexity, pca=0)
    stats: dict[str, float] = {"snnl": float("nan"), "temperature": float("nan")}
    counts = torch.bincount(torch.as_tensor(labels).long())
    if int((counts >= 2).sum()) >= 1 and signs.abs().sum() > 0:
        opt = optimal_temperature(signs.double(), torch.as_tensor(labels).long())
        stats = {"snnl": float(opt.loss), "temperature": float(opt.temperature)}
    return coords, stats
