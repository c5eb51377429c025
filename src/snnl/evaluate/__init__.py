"""Evaluation of trained models (issue 5; E7-E10 of ../shared/PAPER.md).

    from snnl.evaluate import evaluate, load_evaluate_config
    summary = evaluate(model, load_prepared("data/prepared/mnist5k"), {"noise": load_prepared(...)},
                       load_evaluate_config("config/default.yaml"), "results/eval/mnist5k/baseline/seed0")

Accuracy, calibration (ECE, max-softmax on outliers), FGSM/PGD attacks (:mod:`snnl.attacks`),
neighbour-based detection with the SNNL against a reference set and the max-softmax and
deep k-NN baselines, and t-SNE embeddings of hidden layers and of adversarial gradients.
The command lines are `snnl evaluate` (:mod:`snnl.commands.evaluate`) and `snnl compare-regimes`
(:mod:`snnl.commands.compare_regimes`).
"""

import importlib

# Imported on first use (PEP 562), so that reading the `evaluate:` section (config checks,
# the Snakefile) does not pay for scikit-learn, SciPy and pandas.
_SOURCES = {
    "snnl.evaluate.config": ["EvaluateConfig", "load_evaluate_config"],
    "snnl.evaluate.detection": [
        "Reference", "SetScores", "ZScoreCombiner", "build_reference", "knn_scores", "score_images", "snnl_scores",
    ],
    "snnl.evaluate.embeddings": ["gradient_embedding", "layer_embeddings", "sign_gradients", "tsne_2d"],
    "snnl.evaluate.metrics": ["accuracy", "detection_metrics", "expected_calibration_error", "fpr_at_tpr"],
    "snnl.evaluate.compare": ["compare_regimes"],
    "snnl.evaluate.run": ["evaluate"],
    "snnl.evaluate.sets": ["stratified_subset"],
    "snnl.layers": ["resolve_layers"],
}
_MODULE_OF = {name: module for module, names in _SOURCES.items() for name in names}


def __getattr__(name: str):
    if name in _MODULE_OF:
        value = getattr(importlib.import_module(_MODULE_OF[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "EvaluateConfig",
    "Reference",
    "SetScores",
    "ZScoreCombiner",
    "accuracy",
    "build_reference",
    "compare_regimes",
    "detection_metrics",
    "evaluate",
    "expected_calibration_error",
    "fpr_at_tpr",
    "gradient_embedding",
    "knn_scores",
    "layer_embeddings",
    "load_evaluate_config",
    "resolve_layers",
    "score_images",
    "sign_gradients",
    "snnl_scores",
    "stratified_subset",
    "tsne_2d",
]


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
