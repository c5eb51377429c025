"""What `snnl evaluate` keeps of every scored set: its rows of samples.csv and the detection
comparisons (rows of detection.csv and ``summary["detection"]``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from snnl.evaluate.detection import COMBINED, SetScores, ZScoreCombiner
from snnl.evaluate.metrics import detection_metrics

SAMPLE_COLUMNS = ["set", "kind", "attack", "epsilon", "index", "label", "pred", "correct", "clean_pred", "success",
                  "msp"]
DETECTION_COLUMNS = ["comparison", "kind", "score", "layer", "n_neg", "n_pos", "auroc", "aupr", "fpr95"]


def score_columns(scores: SetScores, combine: dict[str, ZScoreCombiner]) -> dict[str, np.ndarray]:
    """msp and every detection score column of a set (combined columns need fitted combiners)."""
    cols: dict[str, np.ndarray] = {"msp": scores.msp}
    for family, per_layer in (("snnl", scores.snnl), ("knn", scores.knn)):
        for name, values in per_layer.items():
            cols[f"{family}_{name}"] = values
        cols[f"{family}_{COMBINED}"] = combine[family](per_layer)
    return cols


def detection_scores(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Score columns oriented so that higher means "outlier / adversarial"."""
    out = {}
    for name, values in cols.items():
        out[name] = 1.0 - values if name == "msp" else values
    return out


def split_score_name(name: str) -> tuple[str, str]:
    """``snnl_fc1`` -> (``snnl``, ``fc1``); ``msp`` -> (``msp``, "")."""
    if name == "msp":
        return "msp", ""
    family, layer = name.split("_", 1)
    return family, layer


class Results:
    """The rows of samples.csv and of detection.csv, gathered set by set.

    ``combine``: the fitted z-score combiners ({"snnl", "knn"}) of the combined columns."""

    def __init__(self, combine: dict[str, ZScoreCombiner]) -> None:
        self.combine = combine
        self.frames: list[pd.DataFrame] = []
        self.detection: dict[str, dict[str, dict]] = {}
        self.rows: list[dict] = []

    def add(self, set_name: str, kind: str, idx: np.ndarray, labels: np.ndarray, s: SetScores,
            **extra: Any) -> dict[str, np.ndarray]:
        """Add one set's rows (``kind``: test, val, outlier or adversarial); return its score columns."""
        cols = score_columns(s, self.combine)
        base = {
            "set": set_name,
            "kind": kind,
            "attack": extra.pop("attack", ""),
            "epsilon": extra.pop("epsilon", np.nan),
            "index": idx,
            "label": labels,
            "pred": s.pred,
            "correct": (s.pred == labels) if kind != "outlier" else np.full(len(s), None, dtype=object),
        }
        self.frames.append(pd.DataFrame({**base, **extra, **cols}))
        return cols

    def compare(self, name: str, kind: str, neg: dict[str, np.ndarray], pos: dict[str, np.ndarray]) -> None:
        """Detection metrics of every score, ``neg`` (clean) against ``pos`` (outlier / adversarial)."""
        self.detection[name] = {}
        for score in neg:
            m = detection_metrics(neg[score], pos[score], what=f"detection score {score} for {name}")
            self.detection[name][score] = m
            family, layer = split_score_name(score)
            self.rows.append({"comparison": name, "kind": kind, "score": family, "layer": layer, **m})

    def samples_frame(self) -> pd.DataFrame:
        """samples.csv: every set's rows, the fixed columns first."""
        samples = pd.concat(self.frames, ignore_index=True)
        for col in ("clean_pred", "success"):
            if col not in samples.columns:
                samples[col] = pd.NA
        return samples[SAMPLE_COLUMNS + [c for c in samples.columns if c not in SAMPLE_COLUMNS]]

    def detection_frame(self) -> pd.DataFrame:
        """detection.csv: one row per (comparison, score)."""
        return pd.DataFrame(self.rows, columns=DETECTION_COLUMNS)
