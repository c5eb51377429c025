"""Evaluation of trained models (issue 5; E7-E10 of ../shared/PAPER.md).

    from snnl.evaluate import evaluate, load_evaluate_config
    summary = evaluate(model, load_prepared("data/prepared/mnist5k"), {"noise": load_prepared(...)},
                       load_evaluate_config("config/default.yaml"), "results/eval/mnist5k/baseline/seed0")

Accuracy, calibration (ECE, max-softmax on outliers), FGSM/PGD attacks (:mod:`snnl.attacks`),
neighbour-based detection with the SNNL against a reference set and the max-softmax and
deep k-NN baselines, and t-SNE embeddings of hidden layers and of adversarial gradients.
The command line is `snnl evaluate` (:mod:`snnl.commands.evaluate`).
"""

from snnl.evaluate.config import EvaluateConfig, load_evaluate_config, read_evaluate_section
from snnl.evaluate.detection import (
    Reference,
    SetScores,
    ZScoreCombiner,
    build_reference,
    capture_layers,
    knn_scores,
    resolve_layers,
    score_images,
    snnl_scores,
)
from snnl.evaluate.embeddings import gradient_embedding, layer_embeddings, sign_gradients, tsne_2d
from snnl.evaluate.metrics import accuracy, detection_metrics, expected_calibration_error, fpr_at_tpr
from snnl.evaluate.run import compare_regimes, evaluate, stratified_subset

__all__ = [
    "EvaluateConfig",
    "Reference",
    "SetScores",
    "ZScoreCombiner",
    "accuracy",
    "build_reference",
    "capture_layers",
    "compare_regimes",
    "detection_metrics",
    "evaluate",
    "expected_calibration_error",
    "fpr_at_tpr",
    "gradient_embedding",
    "knn_scores",
    "layer_embeddings",
    "load_evaluate_config",
    "read_evaluate_section",
    "resolve_layers",
    "score_images",
    "sign_gradients",
    "snnl_scores",
    "stratified_subset",
    "tsne_2d",
]
