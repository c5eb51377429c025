"""Helpers shared by the experiments: atomic CSV output, layer capture, devices, measures."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from snnl.atomic import atomic_write_text
from snnl.checks import to_unit  # noqa: F401 (used here; re-exported)
from snnl.temperature import optimal_temperature
from snnl.layers import capture  # noqa: F401 (used here; re-exported)

INPUT = "input"
LOGITS = "logits"


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` (without its index) to ``path`` atomically."""
    return atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def seeded_subset(n_total: int, n: int, seed: int) -> torch.Tensor:
    """Indices of a seeded random subset of size ``min(n, n_total)`` (sorted)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_total, generator=g)[: min(n, n_total)].sort().values


@torch.no_grad()
def layer_outputs(
    model: nn.Module, images: torch.Tensor, layers: Sequence[str], batch_size: int = 500
) -> dict[str, torch.Tensor]:
    """Per-sample flattened float32 outputs of ``layers`` for ``images`` (uint8 or [0, 1]).

    ``"input"`` is the [0, 1] images themselves and ``"logits"`` the model's output. The
    model runs in eval mode on its own device; its train/eval mode is restored afterwards.
    """
    try:
        device = next(model.parameters()).device
    except StopIteration:
        device = torch.device("cpu")
    hooked = [n for n in layers if n not in (INPUT, LOGITS)]
    was_training = model.training
    model.eval()
    outs: list[torch.Tensor] = []
    try:
        with capture(model, hooked) as store:
            for start in range(0, images.shape[0], batch_size):
                x = to_unit(images[start : start + batch_size]).to(device)
                outs.append(model(x).detach())
    finally:
        model.train(was_training)
    result = {}
    for name in layers:
        if name == INPUT:
            parts = [to_unit(images)]
        elif name == LOGITS:
            parts = outs
        else:
            parts = store[name]
        result[name] = torch.cat([p.reshape(p.shape[0], -1).float().cpu() for p in parts])
    return result


def snnl_at_optimal(features: torch.Tensor, labels: torch.Tensor) -> dict:
    """``{"snnl", "temperature", "at_boundary"}``: the SNNL at the optimal temperature."""
    opt = optimal_temperature(features, labels)
    return {"snnl": float(opt.loss), "temperature": float(opt.temperature), "at_boundary": bool(opt.at_boundary)}


def purity(assignments: np.ndarray, labels: np.ndarray) -> float:
    """Cluster purity: the fraction of points whose class is the majority class of their cluster."""
    assignments, labels = np.asarray(assignments), np.asarray(labels)
    total = 0
    for c in np.unique(assignments):
        total += np.bincount(labels[assignments == c]).max()
    return float(total / len(labels))


def kmeans_purity(points: np.ndarray, labels: np.ndarray, k: int, seed: int = 0) -> float:
    """Purity of a k-means clustering (k clusters, 10 restarts) of ``points`` with respect to ``labels``."""
    from sklearn.cluster import KMeans

    km = KMeans(n_clusters=k, n_init=10, random_state=seed).fit(np.asarray(points, dtype=np.float64))
    return purity(km.labels_, labels)

