"""Metrics of the evaluation: detection through scikit-learn, the calibration error by an
explicit float64 binning.

Every function checks its inputs first (:mod:`snnl.checks`) and raises
:class:`~snnl.errors.DataError` (a ``ValueError``) on NaN, on infinities where they are not
allowed, on probabilities outside [0, 1] or rows not summing to 1, on labels outside the
classes and on shape mismatches, instead of returning a silently changed number.

Detection convention: the *positives* are the samples to detect (outliers, successful
adversarial examples), the *negatives* the clean in-distribution samples, and a higher
score means "more likely a positive". A score may be +inf or -inf (the SNNL score is +inf
when no reference point shares the predicted label): AUROC, AUPR and the FPR at a TPR
depend only on the order of the scores, so they are computed on the scores' ranks, in
which +inf is above and -inf below every finite score.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from sklearn.metrics import average_precision_score, roc_auc_score, roc_curve

from snnl.checks import as_numpy, check_labels, check_probabilities, check_values


def _ranks(scores: np.ndarray) -> np.ndarray:
    """Dense ranks (0, 1, ...) of ``scores``, ties kept, +-inf ordered: same order, all finite."""
    return np.unique(scores, return_inverse=True)[1].reshape(-1).astype(np.float64)


def _scores(scores: Any, what: str) -> np.ndarray:
    fix = "detection scores may be +inf or -inf but never NaN; find where the NaN comes from (a diverged model?)"
    return check_values(scores, what, posinf=True, neginf=True, fix=fix).ravel()


def fpr_at_tpr(labels: Any, scores: Any, tpr: float = 0.95, *, what: str = "fpr_at_tpr") -> float:
    """False-positive rate at the first threshold whose true-positive rate reaches ``tpr``.

    ``labels`` (N,) in {0, 1} (1 = positive), ``scores`` (N,) real, +-inf allowed, NaN not.
    From :func:`sklearn.metrics.roc_curve` on the scores' ranks, every threshold kept.
    Raises ``DataError`` (a ``ValueError``) on bad inputs."""
    s = _scores(scores, f"{what}: scores")
    y = check_labels(as_numpy(labels).reshape(-1), f"{what}: labels", n=s.size, n_classes=2)
    fpr_arr, tpr_arr, _ = roc_curve(y, _ranks(s), drop_intermediate=False)
    idx = int(np.searchsorted(tpr_arr, tpr - 1e-12, side="left"))
    return float(fpr_arr[min(idx, len(fpr_arr) - 1)])


def detection_metrics(negatives: Any, positives: Any, *, what: str = "detection_metrics") -> dict[str, Any]:
    """AUROC, AUPR (positives = the class to detect) and FPR at 95% TPR of a score.

    ``negatives``, ``positives``: 1-D scores (flattened), real, +-inf allowed (ordered above
    / below every finite score), NaN not. Returns ``n_neg``, ``n_pos`` and ``None`` for the
    three metrics when either side is empty (the metrics are undefined). Raises
    ``DataError`` (a ``ValueError``) naming ``what`` on NaN scores."""
    neg = _scores(negatives, f"{what}: negatives")
    pos = _scores(positives, f"{what}: positives")
    out: dict[str, Any] = {"n_neg": int(neg.size), "n_pos": int(pos.size), "auroc": None, "aupr": None, "fpr95": None}
    if neg.size == 0 or pos.size == 0:
        return out
    ranks = _ranks(np.concatenate([neg, pos]))
    labels = np.concatenate([np.zeros(neg.size), np.ones(pos.size)])
    out["auroc"] = float(roc_auc_score(labels, ranks))
    out["aupr"] = float(average_precision_score(labels, ranks))
    out["fpr95"] = fpr_at_tpr(labels, ranks, 0.95, what=what)
    return out


def expected_calibration_error(probs: Any, labels: Any, n_bins: int = 15) -> float:
    """Top-label expected calibration error (L1), in float64.

    ``probs`` (N, K) probabilities (rows in [0, 1] summing to 1), ``labels`` (N,) class
    indices in 0..K-1. The confidence of a row is its largest probability, its prediction
    the argmax; with ``n_bins`` equal-width bins (lo, hi] of [0, 1] (the first bin also
    takes 0, the last one holds 1.0):

        ECE = sum_b (n_b / N) |accuracy_b - mean confidence_b|

    (Guo et al. 2017). NaN for N = 0. Raises ``DataError`` (a ``ValueError``) on NaN or inf,
    values outside [0, 1], rows not summing to 1, labels outside the classes or a label
    count that differs from the rows; never re-normalises."""
    p, y = check_probabilities(probs, labels, what="expected_calibration_error")
    if isinstance(n_bins, bool) or int(n_bins) != n_bins or n_bins < 1:
        raise ValueError(f"expected_calibration_error: n_bins must be an integer >= 1, got {n_bins!r}")
    n_bins = int(n_bins)
    if p.shape[0] == 0:
        return math.nan
    conf, correct = p.max(axis=1), (p.argmax(axis=1) == y).astype(np.float64)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    # first edge >= conf is the bin's upper edge: (lo, hi] bins; conf = 0 joins the first bin
    bins = np.clip(np.searchsorted(edges, conf, side="left") - 1, 0, n_bins - 1)
    acc_sum = np.bincount(bins, weights=correct, minlength=n_bins)
    conf_sum = np.bincount(bins, weights=conf, minlength=n_bins)
    return float(np.abs(acc_sum - conf_sum).sum() / p.shape[0])


def accuracy(pred: Any, labels: Any) -> float:
    """Fraction of ``pred`` (N,) equal to ``labels`` (N,), both class indices; NaN for N = 0.
    Raises ``DataError`` (a ``ValueError``) on a length mismatch or non-integer entries."""
    y = check_labels(labels, "accuracy: labels")
    p = check_labels(pred, "accuracy: pred", n=y.shape[0])
    return float((p == y).mean()) if p.size else math.nan
