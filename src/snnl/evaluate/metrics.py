"""Metrics of the evaluation, all through scikit-learn or torchmetrics.

Detection convention: the *positives* are the samples to detect (outliers, successful
adversarial examples), the *negatives* the clean in-distribution samples, and a higher
score means "more likely a positive".
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import torch
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve


def _as_numpy(a: Any) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        a = a.detach().cpu().numpy()
    return np.asarray(a, dtype=np.float64).ravel()


def fpr_at_tpr(labels: Any, scores: Any, tpr: float = 0.95) -> float:
    """False-positive rate at the first threshold whose true-positive rate reaches ``tpr``
    (from :func:`sklearn.metrics.roc_curve`, every threshold kept)."""
    fpr_arr, tpr_arr, _ = roc_curve(_as_numpy(labels), _as_numpy(scores), drop_intermediate=False)
    idx = int(np.searchsorted(tpr_arr, tpr - 1e-12, side="left"))
    return float(fpr_arr[min(idx, len(fpr_arr) - 1)])


def detection_metrics(negatives: Any, positives: Any) -> dict[str, Any]:
    """AUROC, AUPR (positives = the class to detect) and FPR at 95% TPR of a score.

    Returns ``n_neg``, ``n_pos`` and ``None`` for the three metrics when either side is
    empty (the metrics are undefined). Raises ``ValueError`` on NaN scores.
    """
    neg, pos = _as_numpy(negatives), _as_numpy(positives)
    out: dict[str, Any] = {"n_neg": int(neg.size), "n_pos": int(pos.size), "auroc": None, "aupr": None, "fpr95": None}
    if neg.size == 0 or pos.size == 0:
        return out
    scores = np.concatenate([neg, pos])
    if np.isnan(scores).any():
        raise ValueError("detection scores contain NaN")
    # +-inf would break roc_curve's thresholds; map them beyond the finite range (same order)
    if not np.isfinite(scores).all():
        finite = scores[np.isfinite(scores)]
        lo, hi = (finite.min(), finite.max()) if finite.size else (0.0, 0.0)
        scores = np.where(scores == np.inf, hi + 1.0, np.where(scores == -np.inf, lo - 1.0, scores))
    labels = np.concatenate([np.zeros(neg.size), np.ones(pos.size)])
    out["auroc"] = float(roc_auc_score(labels, scores))
    out["aupr"] = float(average_precision_score(labels, scores))
    out["fpr95"] = fpr_at_tpr(labels, scores, 0.95)
    return out


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Top-label expected calibration error (L1, ``n_bins`` equal-width confidence bins),
    by :func:`torchmetrics.functional.classification.multiclass_calibration_error`."""
    from torchmetrics.functional.classification import multiclass_calibration_error

    p = torch.as_tensor(np.asarray(probs), dtype=torch.float64) if not isinstance(probs, torch.Tensor) else probs.double()
    y = torch.as_tensor(labels).long()
    if p.dim() != 2 or p.shape[0] != y.shape[0]:
        raise ValueError(f"probs must be (N, classes) with one label per row, got {tuple(p.shape)} and {tuple(y.shape)}")
    if p.shape[0] == 0:
        return math.nan
    return float(multiclass_calibration_error(p, y, num_classes=p.shape[1], n_bins=int(n_bins), norm="l1"))


def accuracy(pred: Any, labels: Any) -> float:
    p, y = np.asarray(pred), np.asarray(labels)
    return float((p == y).mean()) if p.size else math.nan
