"""Builders of the files `snnl tables` reads, in the schemas `snnl train --metrics` and
`snnl evaluate` (summary.json) write, and the textbook t interval (tests/test_tables.py,
tests/test_claims.py)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
from scipy import stats as st

LAYERS = ["conv1", "conv2", "conv3"]
PROBE_LAYERS = LAYERS + ["logits"]


def make_metrics(dataset: str, regime: str, seed: int, acc: float, final: dict[str, float] | None = None,
                 curves: dict[str, list[float]] | None = None, steps: list[int] | None = None) -> dict:
    final = final or {layer: 1.0 for layer in PROBE_LAYERS}
    probe = []
    if curves:
        steps = steps or list(range(len(next(iter(curves.values())))))
        for i, step in enumerate(steps):
            for layer, values in curves.items():
                probe.append({"step": step, "epoch": step / 10, "layer": layer, "snnl": values[i],
                              "temperature": 1.0, "at_boundary": False})
    return {"dataset": dataset, "regime": regime, "seed": seed, "model": "cnn", "steps": 100, "alpha": 0.1,
            "layers": list(LAYERS), "train_accuracy": acc + 0.01, "val_accuracy": acc, "test_accuracy": acc,
            "snnl_optimal": {k: {"snnl": v, "temperature": 1.0, "at_boundary": False} for k, v in final.items()},
            "probe": probe}


def make_summary(dataset: str, regime: str, seed: int, acc: float = 0.9, ece: float = 0.05, conf: float = 0.95,
                 outliers: dict[str, float] | None = None, auroc: dict[str, dict[str, float]] | None = None,
                 grad_snnl: float | None = 1.0) -> dict:
    """``outliers``: set -> mean confidence; ``auroc``: comparison -> score -> AUROC."""
    outliers = outliers if outliers is not None else {"noise": 0.6}
    auroc = auroc if auroc is not None else {f"ood:{n}": {"snnl_combined": 0.9, "msp": 0.8} for n in outliers}
    detection = {}
    for comp, scores in auroc.items():
        detection[comp] = {
            s: {"n_neg": 100, "n_pos": 50, "auroc": a, "aupr": None if a is None else a - 0.1,
                "fpr95": None if a is None else 1 - a}
            for s, a in scores.items()
        }
    return {
        "checkpoint": {"path": "x.pt", "regime": regime, "seed": seed, "step": 100, "dataset": dataset},
        "dataset": {"name": dataset, "shape": [1, 28, 28], "classes": [str(i) for i in range(10)]},
        "layers": list(LAYERS),
        "test": {"n": 1000, "accuracy": acc, "ece": ece, "nll": 0.3, "mean_confidence": conf},
        "outliers": {n: {"n": 500, "mean_confidence": c, "msp_auroc": auroc.get(f"ood:{n}", {}).get("msp")}
                     for n, c in outliers.items()},
        "detection": detection,
        "embeddings": {"gradients": {"n": 128, "snnl_sign_gradients": grad_snnl, "temperature": 2.0}}
        if grad_snnl is not None else {},
    }


def write_run(root: Path, dataset: str, regime: str, seed: int, metrics: dict | None, summary: dict | None) -> None:
    if metrics is not None:
        p = root / "metrics" / dataset / regime / f"seed{seed}.json"
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(metrics))
    if summary is not None:
        d = root / "evaluation" / dataset / regime / f"seed{seed}"
        d.mkdir(parents=True, exist_ok=True)
        (d / "summary.json").write_text(json.dumps(summary))


def t_interval(values, level=0.95):
    """The textbook interval, computed independently of snnl.tables.stats."""
    x = np.asarray(values, dtype=float)
    n = len(x)
    m = x.sum() / n
    s = math.sqrt(((x - m) ** 2).sum() / (n - 1))
    h = st.t.ppf(1 - (1 - level) / 2, df=n - 1) * s / math.sqrt(n)
    return m, m - h, m + h
