"""Result tables and claim verdicts (issues 7 and 10): the last step of the pipeline before the report.

    from snnl.tables import load_inputs, write_tables
    inputs = load_inputs(metrics=[...], evaluations=[...], dynamics=[...], gan=[...])
    summary = write_tables(inputs, "results/tables")

writes into the output folder, each file atomically and ``summary.json`` last:

    accuracy.csv / .md    test accuracy per dataset and regime, and each comparison R - REF (paired by seed,
                          with its minimum detectable effect at 80% power)
    ood.csv / .md         mean max-softmax on the test split and each outlier set, test ECE, max-softmax AUROC
    detection.csv / .md   AUROC, AUPR, FPR@95%TPR of every detection score and target
    confidence.csv        max-softmax histograms on the test split and the outlier sets (DVC plots)
    bonus.csv / .md       pinned fraction and gradient ratio of the non-baseline runs (reported, not judged)
    claims.csv / .md      C1-C7 (C3-C7 once per comparison R - baseline): evidence, rule and verdict
                          (docs/RESULTS.md, "Decision rules")
    summary.json          the headline numbers and verdicts (DVC metrics)

Runs that diverged (``snnl train --on-divergence record``) are counted and named (summary.json's
``runs.diverged``, a note under accuracy.md and claims.md); none of their numbers enters a table.

The command line is `snnl tables` (:mod:`snnl.commands.tables`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from snnl.atomic import json_safe
from snnl.tables.claims import (
    C1_MARGIN,
    C2_MARGIN,
    CONFIDENCE,
    MACHINE_SPREAD,
    ClaimResult,
    claims_frame,
    claims_markdown,
    claims_summary,
    evaluate_claims,
)
from snnl.tables.bonus import bonus_markdown, bonus_table
from snnl.tables.inputs import Inputs, diverged_note, load_inputs
from snnl.tables.markdown import accuracy_markdown, detection_markdown, ood_markdown
from snnl.tables.stats import (
    POWER,
    Estimate,
    aggregate,
    margin_rule,
    mean_ci,
    paired,
    sign_rule,
)
from snnl.tables.tables import (
    DIFF,
    accuracy_table,
    comparisons,
    regimes_present,
    confidence_table,
    detection_table,
    ood_table,
)

OUTPUTS = ("accuracy.csv", "accuracy.md", "ood.csv", "ood.md", "detection.csv", "detection.md", "confidence.csv",
           "bonus.csv", "bonus.md", "claims.csv", "claims.md", "summary.json")

__all__ = [
    "OUTPUTS",
    "Estimate",
    "Inputs",
    "aggregate",
    "build",
    "load_inputs",
    "margin_rule",
    "mean_ci",
    "paired",
    "sign_rule",
    "write_tables",
]


def _regime_key(regime: str) -> str:
    """summary.json's key of a table row: the regime, ``difference`` for entangled - baseline
    (as before the comparisons), the comparison's label (``official - baseline``) for the others."""
    return "difference" if regime == DIFF else regime


def _nested(df: pd.DataFrame, keys: list[str]) -> dict[str, Any]:
    """Rows -> {key1: {key2: ... {regime: {n, mean, ci_lo, ci_hi[, mde]}}}} (mde on the differences)."""
    out: dict[str, Any] = {}
    for row in df.itertuples(index=False):
        r = row._asdict()
        node = out
        for k in keys:
            node = node.setdefault(str(r[k]), {})
        entry = {"n": int(r["n"]), "mean": r["mean"], "ci_lo": r["ci_lo"], "ci_hi": r["ci_hi"]}
        if " - " in str(r["regime"]):
            entry["mde"] = r.get("mde")
        node[_regime_key(r["regime"])] = entry
    return out


def _config_info(config: str | Path | None) -> dict[str, Any]:
    if config is None:
        return {}
    import hashlib

    path = Path(config)
    if not path.is_file():
        from snnl.errors import ConfigError

        raise ConfigError(f"--config {path}: no such file")
    return {"config": str(path), "config_sha256": hashlib.sha256(path.read_bytes()).hexdigest()}


def summary_dict(acc: pd.DataFrame, ood: pd.DataFrame, det: pd.DataFrame, results: list[ClaimResult],
                 inputs: Inputs, config: str | Path | None = None) -> dict[str, Any]:
    headline = det[det["score"].isin(["snnl_combined", "knn_combined", "msp"]) & (det["metric"] == "auroc")]
    return json_safe({
        "settings": {"confidence": CONFIDENCE, "c1_margin_nats": C1_MARGIN, "c2_margin_nats": C2_MARGIN,
                     "mde_power": POWER, "machine_spread": MACHINE_SPREAD},
        "source": _config_info(config),
        "runs": {"metrics": len(inputs.metrics), "evaluations": len(inputs.evaluations),
                 "diverged": [{"dataset": d, "regime": r, "seed": s, **v} for (d, r, s), v in inputs.diverged.items()]},
        "accuracy": {d: v.get("test_accuracy", {}) for d, v in _nested(acc, ["dataset", "metric"]).items()},
        "ood": _nested(ood, ["dataset", "set", "metric"]),
        "detection_auroc": _nested(headline, ["dataset", "target", "score"]),
        "comparisons": [f"{r} - {ref}" for r, ref in comparisons(regimes_present(inputs))],
        "claims": claims_summary(results),
    })


def build(inputs: Inputs, config: str | Path | None = None) -> dict[str, Any]:
    """Every table and the claims, in memory: {name: DataFrame / list / dict}. ``config`` (the
    pipeline's config file) is only recorded, with its hash, in the summary."""
    acc = accuracy_table(inputs, CONFIDENCE)
    ood = ood_table(inputs, CONFIDENCE)
    det = detection_table(inputs, CONFIDENCE)
    results = evaluate_claims(inputs)
    return {"accuracy": acc, "ood": ood, "detection": det, "confidence": confidence_table(inputs),
            "bonus": bonus_table(inputs, CONFIDENCE), "claims": results,
            "summary": summary_dict(acc, ood, det, results, inputs, config)}


def write_tables(inputs: Inputs, out: str | Path, config: str | Path | None = None) -> dict[str, Any]:
    """Write the tables, the claims and summary.json into ``out`` (each atomically, summary last);
    return the summary."""
    import json

    from snnl.atomic import atomic_write_text

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    b = build(inputs, config)

    def csv(name: str, df: pd.DataFrame) -> None:
        atomic_write_text(out / name, df.to_csv(index=False, float_format="%.10g", lineterminator="\n"))

    # a summary from an earlier run must not outlive a run that fails half-way
    (out / "summary.json").unlink(missing_ok=True)
    csv("accuracy.csv", b["accuracy"])
    note = diverged_note(inputs.diverged)
    atomic_write_text(out / "accuracy.md", accuracy_markdown(b["accuracy"], CONFIDENCE) + note)
    csv("ood.csv", b["ood"])
    atomic_write_text(out / "ood.md", ood_markdown(b["ood"], CONFIDENCE))
    csv("detection.csv", b["detection"])
    atomic_write_text(out / "detection.md", detection_markdown(b["detection"], CONFIDENCE))
    csv("confidence.csv", b["confidence"])
    csv("bonus.csv", b["bonus"])
    atomic_write_text(out / "bonus.md", bonus_markdown(b["bonus"], CONFIDENCE))
    csv("claims.csv", claims_frame(b["claims"]))
    atomic_write_text(out / "claims.md", claims_markdown(b["claims"]) + note)
    atomic_write_text(out / "summary.json", json.dumps(b["summary"], indent=2, allow_nan=False) + "\n")
    return b["summary"]
