"""t-SNE embeddings (scikit-learn) of hidden layers (E7) and of adversarial gradients (E10).

E7: each hidden layer's representation of a stratified test subset, reduced with PCA
(scikit-learn) to ``pca`` components when wider, then embedded in 2-D with t-SNE.

E10 (the official demo's figure): for 128 test images, sign(grad_x CE(model(x), y)) with
the true label, flattened; t-SNE of those sign vectors. A CE-trained model's gradients
cluster by class, an SNNL-maximised model's much less. The clustering is quantified by
the SNNL of the sign vectors at the optimal temperature (by true class; high =
entangled), computed with :func:`snnl.optimal_temperature`.

Degenerate inputs never reach scikit-learn, whose PCA initialisation divides by the
spread of the points and whose Barnes-Hut t-SNE then kills the process (segmentation
fault) when all points are identical: :func:`tsne_2d` raises a one-line error on NaN/inf
features or fewer than 4 points and :class:`DegenerateEmbedding` on identical points;
:func:`layer_embeddings` and :func:`gradient_embedding` skip such a layer or gradient set
and return the reason (``snnl evaluate`` writes it into summary.json and the figure).
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
import torch
from torch import nn

from snnl.attacks import input_gradient
from snnl.checks import as_numpy, check_values, to_unit
from snnl.errors import DataError
from snnl.layers import LOGITS, layer_outputs
from snnl.temperature import optimal_temperature


class DegenerateEmbedding(DataError):
    """t-SNE has nothing to embed: every point is the same (zero spread)."""


#: features whose spread (standard deviation of all entries) lies outside this range are
#: rescaled by a power of two (exact) to a spread near 1 before t-SNE: scikit-learn's
#: perplexity search starts at precision 1 and takes at most 100 halvings or doublings, so
#: far from 1 it returns wrong affinities (at a spread of 1e16 the clusters mix; at 1e30 the
#: embedding is noise), and squared distances overflow (1e155) or underflow to 0
_SPREAD_RANGE = (2.0**-20, 2.0**20)


def check_embeddable(features: np.ndarray, what: str = "tsne_2d: features") -> np.ndarray:
    """``features`` (n, ...) as a float64 (n, d) array ready for t-SNE: finite, at least 4
    points, not all identical, with a spread scikit-learn handles (rescaled by a power of
    two where it lies outside :data:`_SPREAD_RANGE`; t-SNE's affinities, calibrated to a
    perplexity, do not depend on a global scale, so this changes nothing but the numerics).

    Raises :class:`~snnl.errors.DataError` on NaN/inf or fewer than 4 points, and
    :class:`DegenerateEmbedding` (a ``DataError``) when all points are identical, where
    scikit-learn's PCA initialisation divides by a zero spread and its Barnes-Hut t-SNE
    then crashes the process (segmentation fault)."""
    arr = as_numpy(features)
    x = check_values(arr.reshape(arr.shape[0], -1) if arr.ndim else arr, what,
                     fix="t-SNE needs finite features; find where the NaN or inf comes from (a diverged model?)")
    if x.ndim != 2 or x.shape[0] < 4:
        raise DataError(f"{what}: t-SNE needs at least 4 points (rows), got shape {arr.shape}")
    if not (x != x[0]).any():
        raise DegenerateEmbedding(f"{what}: all {x.shape[0]} points are identical (zero spread): t-SNE has nothing "
                                  "to embed and scikit-learn would crash on them")
    big = float(np.abs(x).max())
    spread = float(np.std(x / big)) * big  # no overflow on the way
    if spread > 0 and not _SPREAD_RANGE[0] <= spread <= _SPREAD_RANGE[1]:
        x = x * 2.0 ** -float(np.round(np.log2(spread)))
    return x


def tsne_2d(features: np.ndarray, *, seed: int = 0, perplexity: float = 30.0, pca: int = 50) -> np.ndarray:
    """(n, 2) float64 t-SNE coordinates of ``features`` (n, d) (n, ...: flattened per row).

    PCA (scikit-learn) to ``pca`` components first when d is larger (0: no PCA); then
    scikit-learn's TSNE with PCA initialisation, seeded with ``seed``. The perplexity is
    capped at (n - 1) / 3 for small n (so it always stays below n). Raises
    :class:`~snnl.errors.DataError` (a ``ValueError``) on NaN/inf features, fewer than 4
    points or a perplexity that is not a positive number, and :class:`DegenerateEmbedding`
    when all points are identical (see :func:`check_embeddable`)."""
    from sklearn.decomposition import PCA
    from sklearn.manifold import TSNE

    if isinstance(perplexity, bool) or not (perplexity > 0 and perplexity < float("inf")):
        raise DataError(f"tsne_2d: perplexity must be a positive number, got {perplexity!r}")
    if isinstance(pca, bool) or int(pca) != pca or pca < 0:
        raise DataError(f"tsne_2d: pca must be an integer >= 0 (0: no PCA), got {pca!r}")
    x = check_embeddable(features)
    n = x.shape[0]
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
) -> tuple[np.ndarray, dict[str, np.ndarray], dict[str, str]]:
    """(predictions (n,), {layer: (n, 2) t-SNE coordinates}, {layer: why it was skipped})
    for ``images`` (uint8 or float [0, 1]).

    A layer whose outputs are identical for every image (a dead layer: all zeros, say) has
    no embedding; it is left out of the coordinates and its reason recorded in the third
    element instead of failing the whole evaluation."""
    from tqdm.auto import tqdm

    feats = layer_outputs(model, images, [*layers, LOGITS], batch_size=batch_size, device=device,
                          what="layer_embeddings: images")
    coords, skipped = {}, {}
    for name in tqdm(list(layers), desc="t-SNE layers", unit="layer", disable=not progress, leave=False):
        try:
            coords[name] = tsne_2d(feats[name].cpu().numpy(), seed=seed, perplexity=perplexity, pca=pca)
        except DegenerateEmbedding:
            skipped[name] = f"layer {name}: its outputs are identical for all {len(images)} images (a dead layer?)"
    return feats[LOGITS].argmax(dim=1).cpu().numpy(), coords, skipped


def sign_gradients(
    model: nn.Module, images: torch.Tensor, labels: torch.Tensor, *, device: torch.device | str = "cpu"
) -> torch.Tensor:
    """sign(grad_x CE(model(x), y)) per image, flattened: (n, C*H*W), values in {-1, 0, 1}."""
    was_training = model.training
    model.eval()
    try:
        x = to_unit(images.to(device), "sign_gradients: images")
        grad = input_gradient(model, x, torch.as_tensor(labels).long().to(device))
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
) -> tuple[np.ndarray | None, dict[str, Any]]:
    """((n, 2) t-SNE coordinates of the sign gradients, or None when skipped;
    {snnl, temperature, skipped}).

    ``snnl``/``temperature``: the SNNL of the sign vectors by true class at the optimal
    temperature (NaN when no class has 2 samples or every sign vector is zero).
    ``skipped``: None, or why there is no embedding: when every sign vector is the same
    (a model whose input gradient is zero for all images, e.g. saturated or dead), t-SNE
    has nothing to embed (and scikit-learn would crash on it), so the coordinates are
    None and the reason says so."""
    signs = sign_gradients(model, images, labels, device=device)
    stats: dict[str, Any] = {"snnl": float("nan"), "temperature": float("nan"), "skipped": None}
    try:
        coords = tsne_2d(signs.numpy(), seed=seed, perplexity=perplexity, pca=0)
    except DegenerateEmbedding:
        zero = not bool(signs.abs().sum() > 0)
        what = "zero (the model's input gradient vanishes)" if zero else "identical"
        stats["skipped"] = f"all {signs.shape[0]} sign-gradient vectors are {what}: no t-SNE embedding"
        coords = None
    counts = torch.bincount(torch.as_tensor(labels).long())
    if int((counts >= 2).sum()) >= 1 and signs.abs().sum() > 0:
        opt = optimal_temperature(signs.double(), torch.as_tensor(labels).long())
        stats.update(snnl=float(opt.loss), temperature=float(opt.temperature))
    return coords, stats
