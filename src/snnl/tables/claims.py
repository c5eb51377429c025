"""The verdicts on claims C1-C7: exactly the decision rules of docs/RESULTS.md ("Decision rules").

Each claim is decided in cells (a dataset; a dataset and layer; a dataset and outlier set;
a dataset, target and part for C6). A cell's verdict comes from the sign rule or the
margin rule of :mod:`snnl.tables.stats`; the cells of a dataset and then the datasets are
combined by :func:`snnl.tables.stats.aggregate` (not-run cells left out; all reproduced ->
reproduced; any not reproduced -> not reproduced; otherwise inconclusive).

Where each part lives: the parameters, rule texts, cells and their combination in
:mod:`snnl.tables.verdicts`; C1 and C2 in :mod:`snnl.tables.claims_curves`; C3-C7 in
:mod:`snnl.tables.claims_paired`. This module runs them all and writes claims.csv / .md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from snnl.tables import fmt
from snnl.tables.claims_curves import claim_c1, claim_c2, quarter_rise
from snnl.tables.claims_paired import c4_layers, claim_c3, claim_c4, claim_c5, claim_c6, claim_c7, final_snnl
from snnl.tables.inputs import Inputs
from snnl.tables.stats import NOT_RUN, tally
from snnl.tables.tables import target_label
from snnl.tables.verdicts import (
    C1_MARGIN,
    C1_MIN_STEPS,
    C2_MARGIN,
    CLAIMS,
    COMBINED_SNNL,
    CONFIDENCE,
    KNN_K,
    MSP,
    STATEMENTS,
    Cell,
    ClaimResult,
    Quantity,
    rules,
)

__all__ = [
    "C1_MARGIN", "C1_MIN_STEPS", "C2_MARGIN", "CLAIMS", "COMBINED_SNNL", "CONFIDENCE", "KNN_K", "MSP", "STATEMENTS",
    "Cell", "ClaimResult", "Quantity", "c4_layers", "claim_c1", "claim_c2", "claim_c3", "claim_c4", "claim_c5",
    "claim_c6", "claim_c7", "claims_frame", "claims_markdown", "claims_summary", "evaluate_claims", "final_snnl",
    "quarter_rise", "rules",
]


CLAIM_FUNCTIONS: dict[str, Callable[[Inputs], ClaimResult]] = {
    "C1": claim_c1, "C2": claim_c2, "C3": claim_c3, "C4": claim_c4, "C5": claim_c5, "C6": claim_c6, "C7": claim_c7,
}


def evaluate_claims(inputs: Inputs) -> list[ClaimResult]:
    """C1-C7 with the fixed parameters of the decision rules."""
    return [CLAIM_FUNCTIONS[c](inputs) for c in CLAIMS]


# ---------------------------------------------------------------------------------------
# output


CLAIMS_COLUMNS = ["claim", "level", "dataset", "scope", "quantity", "n", "estimate", "ci_lo", "ci_hi", "condition",
                  "verdict", "note", "rule"]


def claims_frame(results: list[ClaimResult]) -> pd.DataFrame:
    """claims.csv: per claim one ``claim`` row, one ``dataset`` row per dataset, and one row per
    cell and quantity (``cell``)."""
    rows = []
    blank = {"scope": "", "quantity": "", "n": None, "estimate": None, "ci_lo": None, "ci_hi": None, "condition": ""}
    for r in results:
        rows.append({**blank, "claim": r.claim, "level": "claim", "dataset": "", "verdict": r.verdict,
                     "note": r.note or r.tally, "rule": r.rule})
        for d, v in r.datasets.items():
            cells = [c.verdict for c in r.cells if c.dataset == d]
            rows.append({**blank, "claim": r.claim, "level": "dataset", "dataset": d, "verdict": v,
                         "note": tally(cells), "rule": ""})
        for c in r.cells:
            qs = c.quantities or [None]
            for q in qs:
                row = {**blank, "claim": c.claim, "level": "cell", "dataset": c.dataset, "scope": c.scope,
                       "verdict": c.verdict, "note": c.note, "rule": ""}
                if q is not None:
                    row.update(quantity=q.name, n=q.estimate.n, estimate=q.estimate.mean, ci_lo=q.estimate.lo,
                               ci_hi=q.estimate.hi, condition=q.condition)
                rows.append(row)
    return pd.DataFrame(rows, columns=CLAIMS_COLUMNS)


def _evidence(r: ClaimResult) -> str:
    """Short evidence for the overview: the number when a dataset has one cell, else the tally."""
    if r.verdict == NOT_RUN:
        return r.note
    parts = []
    for d in r.datasets:
        cells = [c for c in r.cells if c.dataset == d]
        if len(cells) == 1 and len(cells[0].quantities) == 1:
            q = cells[0].quantities[0]
            parts.append(f"{d}: {fmt.cell(q.estimate, sig=3, sign=q.diff, show_n=True)}")
        else:
            parts.append(f"{d}: {tally(c.verdict for c in cells)}")
    return "; ".join(parts)


def claims_markdown(results: list[ClaimResult], margin1: float = C1_MARGIN, margin2: float = C2_MARGIN,
                    level: float = CONFIDENCE) -> str:
    pct = f"{100 * level:g}%"
    intro = ("Decided by the rules of `docs/RESULTS.md`, section \"Decision rules\" (written before the runs; "
             f"implemented in `snnl.tables.claims`): {pct} Student-t intervals over seeds; differences are entangled "
             f"- baseline, paired by seed; margins {margin1:g} nats (C1) and {margin2:g} nats (C2). A claim is "
             "reproduced when every cell is, not reproduced when any cell is not, inconclusive otherwise; not run "
             "when its inputs are absent.\n\n")
    out = ["# Claims C1-C7: verdicts\n\n", intro]
    rows = [[r.claim, r.statement, f"**{r.verdict}**",
             "; ".join(f"{d}: {v}" for d, v in r.datasets.items()) or "-", _evidence(r)] for r in results]
    out.append(fmt.pipe_table(["claim", "the paper's claim", "verdict", "by dataset", "evidence"], rows))
    for r in results:
        out.append(f"\n## {r.claim}: {r.statement}\n\n")
        out.append(f"**Verdict: {r.verdict}**" + (f" ({r.tally})" if r.cells else "")
                   + (f". {r.note}" if r.note and r.verdict == NOT_RUN else "") + "\n\n")
        out.append(f"Rule: {r.rule}\n\n")
        if r.cells:
            rows = []
            for c in r.cells:
                if not c.quantities:
                    rows.append([c.claim, c.dataset, c.scope, "-", fmt.NA, "", "", c.verdict, c.note])
                for q in c.quantities:
                    rows.append([c.claim, c.dataset, c.scope if c.claim[:2] != "C6" else target_label(c.scope),
                                 q.name, fmt.cell(q.estimate, sig=3, sign=q.diff), str(q.estimate.n), q.condition,
                                 c.verdict, c.note])
            out.append(fmt.pipe_table(["part", "dataset", "scope", "quantity", f"estimate [{pct} CI]", "n",
                                       "condition", "verdict", "note"], rows,
                                      ["l", "l", "l", "l", "r", "r", "l", "l", "l"]))
        if r.supplementary:
            out.append("\nAlso reported, not judged:\n\n" + "".join(f"- {s}\n" for s in r.supplementary))
    return "".join(out)


def claims_summary(results: list[ClaimResult]) -> dict[str, Any]:
    return {r.claim: {"verdict": r.verdict, "datasets": dict(r.datasets), "cells": r.tally or r.note}
            for r in results}
