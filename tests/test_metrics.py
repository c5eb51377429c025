"""Evaluation metrics against scikit-learn and against hand-computed values."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, roc_auc_score

from snnl.evaluate.metrics import accuracy, detection_metrics, expected_calibration_error, fpr_at_tpr


def test_auroc_and_aupr_match_sklearn_on_random_scores():
    rng = np.random.default_rng(0)
    neg = rng.normal(0.0, 1.0, 300)
    pos = rng.normal(1.0, 1.0, 200)
    m = detection_metrics(neg, pos)
    y = np.r_[np.zeros(300), np.ones(200)]
    s = np.r_[neg, pos]
    assert m["auroc"] == pytest.approx(roc_auc_score(y, s), abs=1e-12)
    assert m["aupr"] == pytest.approx(average_precision_score(y, s), abs=1e-12)
    assert (m["n_neg"], m["n_pos"]) == (300, 200)


def test_auroc_hand_made():
    # pairs (pos, neg) with pos > neg: 3 > {1, 2}: 2; 0.5 > none: 0; 2.5 > {1, 2}: 2; ties none -> 4 / 6
    m = detection_metrics([1.0, 2.0], [3.0, 0.5, 2.5])
    assert m["auroc"] == pytest.approx(4 / 6)
    # a tie between a positive and a negative counts one half
    assert detection_metrics([1.0], [1.0])["auroc"] == pytest.approx(0.5)
    assert detection_metrics([0.0, 0.1], [0.2, 0.3])["auroc"] == 1.0
    assert detection_metrics([0.2, 0.3], [0.0, 0.1])["auroc"] == 0.0


def test_fpr_at_95_tpr_hand_made():
    # 20 positives 1..20 (score = value), negatives 0.5, 1.5, ..., 9.5 and 100.
    pos = np.arange(1, 21, dtype=float)
    neg = np.r_[np.arange(10) + 0.5, 100.0]
    # 95% TPR = 19 of 20 positives: threshold 2 (scores >= 2). Negatives >= 2: 2.5 ... 9.5 (8) and 100 -> 9 / 11
    assert detection_metrics(neg, pos)["fpr95"] == pytest.approx(9 / 11)
    # perfectly separated: 0 false positives at any TPR
    assert detection_metrics([0.0, 0.1, 0.2], np.linspace(1, 2, 40))["fpr95"] == 0.0
    # reversed: every negative above every positive -> FPR 1
    assert detection_metrics([5.0, 6.0], [1.0, 2.0])["fpr95"] == 1.0


def test_fpr_at_tpr_against_a_threshold_sweep():
    rng = np.random.default_rng(1)
    neg, pos = rng.normal(0, 1, 137), rng.normal(1.5, 1, 91)
    labels = np.r_[np.zeros(neg.size), np.ones(pos.size)]
    scores = np.r_[neg, pos]
    best = 1.0
    for t in np.unique(scores):
        tpr = (pos >= t).mean()
        if tpr >= 0.95:
            best = min(best, (neg >= t).mean())
    assert fpr_at_tpr(labels, scores, 0.95) == pytest.approx(best)


def auroc_pairs(neg, pos) -> float:
    """The oracle: P(pos > neg) + P(pos = neg) / 2 over all pairs, compared as Python floats."""
    wins = sum((p > n) + 0.5 * (p == n) for p in pos for n in neg)
    return wins / (len(pos) * len(neg))


def test_infinite_scores_rank_above_every_finite_score():
    # +inf is the SNNL score of a sample with no reference point of its predicted label; it must rank
    # strictly above a huge finite score (1e17 + 1 == 1e17 in float64: mapping inf to max + 1 makes a tie)
    neg = [0.0, 1e17, 3.0, -np.inf]
    pos = [np.inf, 2.0, 1e17, 5.0]
    m = detection_metrics(neg, pos)
    assert m["auroc"] == pytest.approx(auroc_pairs(neg, pos), abs=1e-12)
    labels = np.r_[np.zeros(4), np.ones(4)]
    scores = np.r_[neg, pos]
    best = 1.0
    for t in np.unique(scores):  # threshold sweep, infinities included
        if (np.asarray(pos) >= t).mean() >= 0.95:
            best = min(best, (np.asarray(neg) >= t).mean())
    assert fpr_at_tpr(labels, scores, 0.95) == pytest.approx(best)
    assert m["fpr95"] == pytest.approx(best)


def test_detection_inputs_are_checked():
    with pytest.raises(ValueError, match="negatives: 1 of 2 values are NaN"):
        detection_metrics([0.0, float("nan")], [1.0])
    with pytest.raises(ValueError, match="my comparison: positives"):
        detection_metrics([0.0], [float("nan")], what="my comparison")
    with pytest.raises(ValueError, match="outside 0..1"):
        fpr_at_tpr([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="2 labels for 3 rows"):
        fpr_at_tpr([0, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError, match="NaN"):
        fpr_at_tpr([0, 1, 1], [0.1, float("nan"), 0.3])


def test_detection_metrics_undefined_sides_and_infinities():
    m = detection_metrics([], [1.0, 2.0])
    assert m["auroc"] is None and m["aupr"] is None and m["fpr95"] is None and m["n_neg"] == 0
    with pytest.raises(ValueError, match="NaN"):
        detection_metrics([0.0, float("nan")], [1.0])
    # +inf counts as the highest score: same ranking as a large finite value
    assert detection_metrics([0.0, 1.0], [float("inf"), 0.5])["auroc"] == pytest.approx(
        detection_metrics([0.0, 1.0], [1e9, 0.5])["auroc"]
    )


def test_ece_known_case():
    # 4 samples, 2 classes, 10 bins.
    # conf 0.95 (correct), 0.95 (wrong) -> bin (0.9, 1]: acc 0.5, conf 0.95, weight 2/4
    # conf 0.65 (correct), 0.65 (correct) -> bin (0.6, 0.7]: acc 1.0, conf 0.65, weight 2/4
    probs = np.array([[0.95, 0.05], [0.95, 0.05], [0.35, 0.65], [0.65, 0.35]])
    labels = np.array([0, 1, 1, 0])
    expected = 0.5 * abs(0.5 - 0.95) + 0.5 * abs(1.0 - 0.65)
    assert expected_calibration_error(probs, labels, n_bins=10) == pytest.approx(expected, abs=1e-6)


def ece_loop(probs: np.ndarray, labels: np.ndarray, n_bins: int) -> float:
    """The oracle: float64 loop over (lo, hi] bins of [0, 1]; the last bin ends at and holds 1.0."""
    conf, pred = probs.max(1), probs.argmax(1)
    edges = np.linspace(0, 1, n_bins + 1)
    ece = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (conf > lo) & (conf <= hi)
        if m.any():
            ece += m.mean() * abs((pred[m] == labels[m]).mean() - conf[m].mean())
    return ece


def test_ece_against_an_explicit_loop():
    rng = np.random.default_rng(2)
    logits = rng.normal(0, 2, (500, 5))
    probs = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    labels = rng.integers(0, 5, 500)
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(ece_loop(probs, labels, 15), abs=1e-6)


def test_ece_puts_confidence_one_in_the_last_bin():
    # (0.95, right) and (1.0, wrong) share the last bin (14/15, 1]: |0.5 - 0.975| = 0.475
    probs, labels = np.array([[0.95, 0.05], [1.0, 0.0]]), np.array([0, 1])
    assert ece_loop(probs, labels, 15) == pytest.approx(0.475)
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(0.475, abs=1e-12)
    # 500 at exactly 1.0 (15 of them wrong), 500 at 0.95 (all right): |0.985 - 0.975| = 0.010
    probs = np.array([[0.95, 0.05]] * 500 + [[1.0, 0.0]] * 500)
    labels = np.zeros(1000, int)
    labels[500:515] = 1
    assert ece_loop(probs, labels, 15) == pytest.approx(0.010)
    assert expected_calibration_error(probs, labels, n_bins=15) == pytest.approx(0.010, abs=1e-12)


@pytest.mark.parametrize("n_bins", [1, 10, 15, 20])
def test_ece_of_a_confident_float64_softmax_against_the_loop(n_bins):
    # large logits: a float64 softmax reaches exactly 1.0 on many rows
    rng = np.random.default_rng(5)
    logits = rng.normal(0, 1, (400, 4)) * rng.choice([1.0, 60.0], (400, 1))
    probs = np.exp(logits - logits.max(1, keepdims=True))
    probs /= probs.sum(1, keepdims=True)
    assert (probs.max(1) == 1.0).sum() > 50
    labels = np.where(rng.random(400) < 0.8, probs.argmax(1), rng.integers(0, 4, 400))
    expected = ece_loop(probs, labels, n_bins)
    assert expected_calibration_error(probs, labels, n_bins) == pytest.approx(expected, abs=1e-12)


GOOD = np.array([[0.9, 0.1], [0.2, 0.8], [0.6, 0.4]])


@pytest.mark.parametrize("probs, labels, match", [
    (np.array([[0.9, 0.1], [np.nan, np.nan], [0.6, 0.4]]), [0, 1, 0], "NaN"),
    (np.array([[1.0000001, 0.0], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 0], "above 1"),
    (np.array([[1.1, -0.1], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 0], "below 0"),
    (np.array([[np.inf, 0.0], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 0], r"\+inf"),
    (np.array([[0.5, 0.4], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 0], "sum to 1"),
    (np.array([[2.0, -1.0], [0.2, 0.8], [0.6, 0.4]]), [0, 1, 0], "below 0"),  # logits, not probabilities
    (GOOD, [0, 5, 0], "outside 0..1"),
    (GOOD, [0, -1, 0], "outside 0..1"),
    (GOOD, [0, 0.5, 0], "not integers"),
    (GOOD, [0, 1], "2 labels for 3 rows"),
    (GOOD[:, 0], [0, 1, 0], "shape"),
])
def test_ece_rejects_malformed_inputs_instead_of_changing_the_number(probs, labels, match):
    with pytest.raises(ValueError, match=match) as err:
        expected_calibration_error(probs, np.asarray(labels))
    assert "expected_calibration_error" in str(err.value)


def test_ece_of_the_good_rows_is_unchanged_by_the_checks():
    assert expected_calibration_error(GOOD, np.array([0, 1, 0]), 10) == pytest.approx(
        ece_loop(GOOD, np.array([0, 1, 0]), 10), abs=1e-12)
    # a float32 softmax (rows sum to 1 within rounding) passes
    import torch

    p = torch.softmax(torch.randn(300, 10) * 3, dim=1)
    y = torch.randint(0, 10, (300,))
    assert expected_calibration_error(p, y) == pytest.approx(ece_loop(p.double().numpy(), y.numpy(), 15), abs=1e-9)


def test_ece_perfectly_calibrated_is_zero_and_shape_errors():
    probs = np.array([[1.0, 0.0], [0.0, 1.0]])
    assert expected_calibration_error(probs, np.array([0, 1])) == pytest.approx(0.0, abs=1e-9)
    with pytest.raises(ValueError, match="one label per row"):
        expected_calibration_error(probs, np.array([0, 1, 1]))
    assert math.isnan(expected_calibration_error(np.zeros((0, 3)), np.zeros(0, int)))


def test_accuracy():
    assert accuracy([0, 1, 2, 2], [0, 1, 1, 2]) == 0.75
    assert math.isnan(accuracy([], []))
    with pytest.raises(ValueError, match="3 labels for 4 rows"):
        accuracy([0, 1, 2], [0, 1, 1, 2])
    with pytest.raises(ValueError, match="NaN"):
        accuracy([0, float("nan")], [0, 1])
