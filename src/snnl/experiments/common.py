"""Helpers shared by the experiments: atomic CSV output, seeded subsets, measures. (Layer
outputs: :func:`snnl.layers.layer_outputs`.)"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import torch

from snnl.atomic import atomic_write_text
from snnl.errors import DataError
from snnl.temperature import optimal_temperature


def read_csv(path: Path, what: str, if_missing: str, if_unreadable: str = "") -> pd.DataFrame:
    """The CSV file ``path`` (a ``what``: "GAN curve", "training log"), or a DataError naming it and
    the fix (``if_missing`` when it does not exist, ``if_unreadable`` when pandas cannot parse it)."""
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist; {if_missing}")
    try:
        return pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"{what} {path} is not a readable CSV ({err}){'; ' + if_unreadable if if_unreadable else ''}") \
            from err


def write_csv(df: pd.DataFrame, path: str | Path) -> Path:
    """Write ``df`` (without its index) to ``path`` atomically."""
    return atomic_write_text(path, df.to_csv(index=False, lineterminator="\n"))


def seeded_subset(n_total: int, n: int, seed: int) -> torch.Tensor:
    """Indices of a seeded random subset of size ``min(n, n_total)`` (sorted)."""
    g = torch.Generator().manual_seed(int(seed))
    return torch.randperm(n_total, generator=g)[: min(n, n_total)].sort().values


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

