"""The Markdown of the result tables (accuracy.md, ood.md, detection.md), from the tidy frames
of :mod:`snnl.tables.tables`.

accuracy.md and ood.md hold two tables: one estimate per regime (mean and t interval over
seeds), then one row per comparison ``R - REF`` (:func:`snnl.tables.tables.comparisons`) with
the paired difference, its minimum detectable effect at 80% power (MDE) and the number of
pairs. detection.md has one table per dataset and target, a column per regime and comparison.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from snnl.tables import fmt
from snnl.tables.stats import Estimate
from snnl.tables.tables import regimes_of, target_label, score_label

_DIFF_NOTE = (" a comparison R - REF is the difference R - REF paired by seed (n = pairs), with its minimum "
              "detectable effect at 80% power (MDE: the true difference its two-sided test detects 4 times in 5, "
              "with the spread the seeds showed; reported, it changes no verdict). R - baseline is what the claims "
              "judge; official_our_scale - official (the activation scale's effect) is reported, not judged.")


def _est(df: pd.DataFrame, **where: Any) -> Estimate | None:
    sel = df
    for k, v in where.items():
        sel = sel[sel[k] == v]
    if sel.empty:
        return None
    r = sel.iloc[0]
    mde = float(r["mde"]) if "mde" in r and pd.notna(r["mde"]) else float("nan")
    return Estimate(int(r["n"]), float(r["mean"]), float(r["ci_lo"]), float(r["ci_hi"]), mde=mde)


def _cell(est: Estimate | None, diff: bool = False, show_n: bool = False, show_mde: bool = False) -> str:
    if est is None:
        return fmt.NA
    return fmt.cell(est, sig=3 if diff else 4, sign=diff, show_n=show_n, show_mde=show_mde)


def split(df: pd.DataFrame) -> tuple[list[str], list[str]]:
    """(regimes, comparison labels) among the ``regime`` values of a table, in display order."""
    labels = list(dict.fromkeys(df["regime"]))
    diffs = [r for r in labels if " - " in r]
    return regimes_of(r for r in labels if r not in diffs), diffs


def _intro(what: str, level: float) -> str:
    pct = f"{100 * level:g}%"
    return f"{what} Each cell: mean over seeds and its {pct} Student-t interval [lo, hi];{_DIFF_NOTE}\n\n"


def _two_tables(df: pd.DataFrame, keys: list[str], labels: dict[str, dict[str, str]], empty: str) -> str:
    """The per-regime table (a column per regime, n = seeds per regime) and the differences
    table (a row per comparison), rows keyed by ``keys`` (display names in ``labels``)."""
    if df.empty:
        return empty
    regimes, diffs = split(df)
    per, pairs = [], []
    for _, g in df.groupby(keys, sort=False):
        front = [labels.get(k, {}).get(str(g.iloc[0][k]), str(g.iloc[0][k])) for k in keys]
        ests = [_est(g, regime=r) for r in regimes]
        per.append(front + [_cell(e) for e in ests] + [" / ".join(str(e.n) if e else "-" for e in ests)])
        for label in diffs:
            e = _est(g, regime=label)
            if e is not None:
                pairs.append(front + [label, _cell(e, diff=True), fmt.mde(e), str(e.n)])
    names = [k if k != "metric" else "quantity" for k in keys]
    out = ["## Per regime\n\n", fmt.pipe_table(names + regimes + ["n (" + " / ".join(regimes) + ")"], per,
                                               ["l"] * len(keys) + ["r"] * (len(regimes) + 1))]
    if pairs:
        out += ["\n## Paired differences\n\n",
                fmt.pipe_table(names + ["comparison", "difference", "MDE (80% power)", "pairs"], pairs,
                               ["l"] * (len(keys) + 1) + ["r"] * 3)]
    return "".join(out)


def accuracy_markdown(df: pd.DataFrame, level: float = 0.95) -> str:
    intro = _intro("Test accuracy of the models of each regime (baseline: cross-entropy only).", level)
    return "# Test accuracy\n\n" + intro + _two_tables(df, ["dataset"], {}, "No runs.\n")


_OOD_LABELS = {"mean_confidence": "mean max-softmax", "ece": "ECE", "msp_auroc": "max-softmax AUROC (test vs set)"}


def ood_markdown(df: pd.DataFrame, level: float = 0.95) -> str:
    intro = _intro("Mean max-softmax probability on the test split and on each outlier set, expected calibration "
                   "error (ECE) on the test split, and the AUROC of the max-softmax score for test vs outliers.", level)
    return ("# Confidence on outliers\n\n" + intro
            + _two_tables(df, ["dataset", "set", "metric"], {"metric": _OOD_LABELS}, "No evaluations.\n"))


def _detection_rows(t: pd.DataFrame, regimes: list[str], diffs: list[str]) -> list[list[str]]:
    rows = []
    for score in dict.fromkeys(t["score"]):
        s = t[t["score"] == score]
        row = [score_label(score)]
        row += [_cell(_est(s, regime=r, metric="auroc")) for r in regimes]
        row += [_cell(_est(s, regime=d, metric="auroc"), diff=True, show_mde=True) for d in diffs]
        for metric in ("aupr", "fpr95"):
            row += [_cell(_est(s, regime=r, metric=metric)) for r in regimes]
        ns = [_est(s, regime=r, metric="auroc") for r in regimes + diffs]
        rows.append(row + [" / ".join(str(e.n) if e else "-" for e in ns)])
    return rows


def detection_markdown(df: pd.DataFrame, level: float = 0.95) -> str:
    out = ["# Detection of outliers and adversarial examples\n\n",
           _intro("AUROC, AUPR (positives: outliers or successful adversarial examples) and false-positive rate at "
                  "95% true-positive rate of each score: the SNNL of an input against training points of its "
                  "predicted class, per hidden layer and combined over layers; the deep k-NN baseline; and "
                  "1 - max-softmax. n: seeds of each regime, then pairs of each comparison.", level)]
    if df.empty:
        out.append("No evaluations.\n")
        return "".join(out)
    regimes, diffs = split(df)
    header = (["score"] + [f"AUROC {r}" for r in regimes] + [f"AUROC {d}" for d in diffs]
              + [f"AUPR {r}" for r in regimes] + [f"FPR@95 {r}" for r in regimes] + ["n"])
    for dataset in dict.fromkeys(df["dataset"]):
        out.append(f"## {dataset}\n\n")
        d = df[df["dataset"] == dataset]
        for target in dict.fromkeys(d["target"]):
            t = d[d["target"] == target]
            out.append(f"### {target_label(target)} (`{target}`)\n\n")
            out.append(fmt.pipe_table(header, _detection_rows(t, regimes, diffs), ["l"] + ["r"] * (len(header) - 1)))
            out.append("\n")
    return "".join(out)
