"""The verdicts on claims C1-C7: exactly the decision rules of docs/RESULTS.md ("Decision rules").

Each claim is decided in cells (a dataset; a dataset and layer; a dataset and outlier set;
a dataset, target and part for C6). A cell's verdict comes from the sign rule or the
margin rule of :mod:`snnl.tables.stats`; the cells of a dataset and then the datasets are
combined by :func:`snnl.tables.stats.aggregate` (not-run cells left out; all reproduced ->
reproduced; any not reproduced -> not reproduced; otherwise inconclusive).

C3-C7 are decided once per comparison R - baseline (:func:`snnl.tables.tables.comparisons`):
rows ``C3`` (entangled), ``C3 · official``, ``C3 · official_our_scale``...; the entangled rows
are always there, the others for each regime present in the inputs. ``C1 (long)`` (C1 on the
long baseline runs, --dynamics-long) is a row only when those runs are given.

Where each part lives: the parameters, rule texts, cells and their combination in
:mod:`snnl.tables.verdicts`; C1 and C2 in :mod:`snnl.tables.claims_curves`; C3-C7 in
:mod:`snnl.tables.claims_paired`. This module runs them all and writes claims.csv / .md.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pandas as pd

from snnl.regimes import BASELINE, ENTANGLED
from snnl.tables import fmt
from snnl.tables.claims_curves import claim_c1, claim_c1_long, claim_c2, quarter_rise
from snnl.tables.claims_paired import c4_layers, claim_c3, claim_c4, claim_c5, claim_c6, claim_c7, final_snnl
from snnl.tables.inputs import Inputs
from snnl.tables.stats import NOT_RUN, tally
from snnl.tables.tables import comparisons, regimes_present, target_label
from snnl.tables.verdicts import (
    C1_LONG,
    C1_MARGIN,
    C1_MIN_STEPS,
    C2_MARGIN,
    CLAIMS,
    COMBINED_SNNL,
    CONFIDENCE,
    KNN_K,
    MACHINE_SPREAD,
    MSP,
    PAIRED_CLAIMS,
    STATEMENTS,
    Cell,
    ClaimResult,
    Quantity,
    rules,
)

__all__ = [
    "C1_LONG", "C1_MARGIN", "C1_MIN_STEPS", "C2_MARGIN", "CLAIMS", "COMBINED_SNNL", "CONFIDENCE", "KNN_K",
    "MACHINE_SPREAD", "MSP", "PAIRED_CLAIMS", "STATEMENTS",
    "Cell", "ClaimResult", "Quantity", "c4_layers", "claim_c1", "claim_c1_long", "claim_c2", "claim_c3", "claim_c4",
    "claim_c5", "claim_c6", "claim_c7", "claims_frame", "claims_markdown", "claims_summary", "compared_regimes",
    "evaluate_claims", "final_snnl",
    "quarter_rise", "rules",
]


CLAIM_FUNCTIONS: dict[str, Callable[..., ClaimResult]] = {
    "C1": claim_c1, "C2": claim_c2, "C3": claim_c3, "C4": claim_c4, "C5": claim_c5, "C6": claim_c6, "C7": claim_c7,
}


def compared_regimes(inputs: Inputs) -> list[str]:
    """The regimes R of the judged comparisons R - baseline: entangled always (its rows keep
    their names and stay, "not run" without its runs), then every other non-baseline regime present."""
    present = [r for r, _ in comparisons(regimes_present(inputs), judged=True)]
    return [ENTANGLED] + [r for r in present if r != ENTANGLED]


def evaluate_claims(inputs: Inputs) -> list[ClaimResult]:
    """C1, C1 (long) when long runs are given, C2, then C3-C7 once per comparison (claim by
    claim), with the fixed parameters of the decision rules."""
    results = [claim_c1(inputs)]
    long = claim_c1_long(inputs)
    results += [long] if long is not None else []
    results.append(claim_c2(inputs))
    regimes = compared_regimes(inputs)
    regimes += [r for r in dict.fromkeys(k[1] for k in inputs.diverged) if r != BASELINE and r not in regimes]
    for claim in PAIRED_CLAIMS:
        results += [with_diverged_note(CLAIM_FUNCTIONS[claim](inputs, regime=r), inputs, r) for r in regimes]
    return results


def with_diverged_note(result: ClaimResult, inputs: Inputs, regime: str) -> ClaimResult:
    """A "not run" comparison R - baseline says which of its runs diverged (they were run, but
    none of their numbers is used), so that it does not read as never run."""
    counts = {r: sum(k[1] == r for k in inputs.diverged) for r in (BASELINE, regime)}
    left_out = ", ".join(f"{n} {r}" for r, n in counts.items() if n)
    if result.verdict == NOT_RUN and left_out:
        result.note = f"{result.note}; diverged, left out: {left_out} run(s)" if result.note else \
            f"diverged, left out: {left_out} run(s)"
    return result


# ---------------------------------------------------------------------------------------
# output


CLAIMS_COLUMNS = ["claim", "level", "dataset", "scope", "quantity", "n", "estimate", "ci_lo", "ci_hi", "mde",
                  "condition", "verdict", "note", "rule"]


def claims_frame(results: list[ClaimResult]) -> pd.DataFrame:
    """claims.csv: per claim one ``claim`` row, one ``dataset`` row per dataset, and one row per
    cell and quantity (``cell``)."""
    rows = []
    blank = {"scope": "", "quantity": "", "n": None, "estimate": None, "ci_lo": None, "ci_hi": None, "mde": None,
             "condition": ""}
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
                               ci_hi=q.estimate.hi, mde=q.estimate.mde, condition=q.condition)
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
            parts.append(f"{d}: {fmt.cell(q.estimate, sig=3, sign=q.diff, show_n=True, show_mde=True)}")
        else:
            parts.append(f"{d}: {tally(c.verdict for c in cells)}")
    return "; ".join(parts)


def _footnote(level: float) -> str:
    return ("\nRows: `C3`-`C7` compare entangled with baseline; `C3 · R` (and so on) compare regime R with "
            "baseline, one row per regime R present (docs/RESULTS.md, \"Comparisons\"; never pooled). `C1 (long)` "
            "(C1 on the long baseline runs, `--dynamics-long`) is shown only when those runs are given; without them "
            "the row is omitted. MDE: the minimum detectable effect of a paired difference at 80% power with the "
            f"two-sided {100 * level:g}% test (reported; it changes no verdict). A C3 cell whose interval has an end "
            f"within {MACHINE_SPREAD:g} of 0 is marked machine-sensitive (docs/RESULTS.md, \"Machines\").\n")


def _cell_rows(r: ClaimResult) -> list[list[str]]:
    rows = []
    for c in r.cells:
        if not c.quantities:
            rows.append([c.claim, c.dataset, c.scope, "-", fmt.NA, "", fmt.NA, "", c.verdict, c.note])
        for q in c.quantities:
            rows.append([c.claim, c.dataset, c.scope if c.claim[:2] != "C6" else target_label(c.scope),
                         q.name, fmt.cell(q.estimate, sig=3, sign=q.diff), str(q.estimate.n), fmt.mde(q.estimate),
                         q.condition, c.verdict, c.note])
    return rows


def claims_markdown(results: list[ClaimResult], margin1: float = C1_MARGIN, margin2: float = C2_MARGIN,
                    level: float = CONFIDENCE) -> str:
    pct = f"{100 * level:g}%"
    intro = ("Decided by the rules of `docs/RESULTS.md`, section \"Decision rules\" (written before the runs; "
             f"implemented in `snnl.tables.claims`): {pct} Student-t intervals over seeds; differences are R "
             f"- baseline, paired by seed; margins {margin1:g} nats (C1) and {margin2:g} nats (C2). A claim is "
             "reproduced when every cell is, not reproduced when any cell is not, inconclusive otherwise; not run "
             "when its inputs are absent.\n\n")
    out = ["# Claims C1-C7: verdicts\n\n", intro]
    rows = [[r.claim, r.statement, f"**{r.verdict}**",
             "; ".join(f"{d}: {v}" for d, v in r.datasets.items()) or "-", _evidence(r)] for r in results]
    out.append(fmt.pipe_table(["claim", "the paper's claim", "verdict", "by dataset", "evidence"], rows))
    out.append(_footnote(level))
    for r in results:
        out.append(f"\n## {r.claim}: {r.statement}\n\n")
        out.append(f"**Verdict: {r.verdict}**" + (f" ({r.tally})" if r.cells else "")
                   + (f". {r.note}" if r.note and r.verdict == NOT_RUN else "") + "\n\n")
        out.append(f"Rule: {r.rule}\n\n")
        if r.cells:
            out.append(fmt.pipe_table(["part", "dataset", "scope", "quantity", f"estimate [{pct} CI]", "n",
                                       "MDE (80% power)", "condition", "verdict", "note"], _cell_rows(r),
                                      ["l", "l", "l", "l", "r", "r", "r", "l", "l", "l"]))
        if r.supplementary:
            out.append("\nAlso reported, not judged:\n\n" + "".join(f"- {s}\n" for s in r.supplementary))
    return "".join(out)


def _estimates(r: ClaimResult) -> list[dict[str, Any]]:
    return [{"part": c.claim, "dataset": c.dataset, "scope": c.scope, "quantity": q.name, "n": q.estimate.n,
             "mean": q.estimate.mean, "ci_lo": q.estimate.lo, "ci_hi": q.estimate.hi, "mde": q.estimate.mde,
             "condition": q.condition, "verdict": c.verdict}
            for c in r.cells for q in c.quantities]


def claims_summary(results: list[ClaimResult]) -> dict[str, Any]:
    """summary.json's ``claims``: per row (``C3``, ``C3 · official``, ``C1 (long)``...) the verdict,
    the dataset verdicts, the cell tally, every estimate with its interval and MDE, and the
    claim's extra entries (C3: ``machine_sensitive`` per dataset)."""
    return {r.claim: {"verdict": r.verdict, "datasets": dict(r.datasets), "cells": r.tally or r.note,
                      "estimates": _estimates(r), **r.summary}
            for r in results}
