"""The frame of the claim verdicts (docs/RESULTS.md, "Decision rules"): the fixed parameters,
each claim's statement and rule text, the cells a claim is decided in and how cells combine
into a verdict (:func:`finish`). The claims themselves: :mod:`snnl.tables.claims_curves` (C1,
C2), :mod:`snnl.tables.claims_paired` (C3-C7); all of them: :mod:`snnl.tables.claims`."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from snnl.tables.stats import NOT_RUN, Estimate, aggregate, paired, sign_rule, tally
from snnl.tables.tables import BASELINE, ENTANGLED, diff_label

# The parameters of the decision rules (docs/RESULTS.md, "Parameters"): fixed, not options.
CONFIDENCE = 0.95
C1_MARGIN = 0.05  # nats
C2_MARGIN = 0.05  # nats
C1_MIN_STEPS = 3
KNN_K = 5
COMBINED_SNNL = "snnl_combined"
MSP = "msp"

CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")
PAIRED_CLAIMS = ("C3", "C4", "C5", "C6", "C7")  # decided once per comparison R - baseline
C1_LONG = "C1 (long)"  # C1 on the long baseline runs (docs/RESULTS.md, "C1 on a longer horizon")
# docs/RESULTS.md, "Machines": the entangled accuracy moved by this much between two machines; a C3
# interval with an end within it of 0 is machine-sensitive
MACHINE_SPREAD = 0.0066

STATEMENTS = {
    "C1": "In ordinary (cross-entropy) training, the SNNL of every layer but the last first falls, then rises; "
          "the last layer's keeps falling.",
    "C2": "Real and generated data become more entangled (their SNNL rises) as a GAN trains.",
    "C3": "Every entangled model is (marginally) more accurate than its baseline.",
    "C4": "The hidden layers of entangled models are class-mixed (class-independent clusters).",
    "C5": "Entangled models are less confident on outlier data.",
    "C6": "Outliers and adversarial examples are detectable from hidden-layer neighbourhoods, better in entangled "
          "models.",
    "C7": "The sign gradients sign(grad_x CE) cluster by class for a CE model, much less for an SNNL-maximised one.",
}


def rules(margin1: float = C1_MARGIN, margin2: float = C2_MARGIN, level: float = CONFIDENCE) -> dict[str, str]:
    """The decision rule of each claim in one paragraph (the long form is docs/RESULTS.md)."""
    pct = f"{100 * level:g}%"
    return {
        "C1": (f"Baseline probe curves. Per run and layer: fall = s_0 - min, rise = s_end - min. Margin rule "
               f"(delta = {margin1:g} nats; {pct} t interval over seeds, the point for one seed). Every layer but "
               "the last: reproduced if fall >= delta and rise >= delta are both met, not reproduced if either "
               "fails. Last layer (logits): reproduced if fall >= delta is met and rise >= delta fails, not "
               "reproduced if fall >= delta fails or rise >= delta is met. Otherwise, or with fewer than "
               f"{C1_MIN_STEPS} probe steps, inconclusive. Cells: dataset x layer."),
        "C2": (f"GAN curve, pixel space. rise = mean of the last q - mean of the first q logged values, "
               f"q = ceil(N/4). Margin rule on rise >= {margin2:g} nats ({pct} t interval over runs, the point for "
               "one run): met -> reproduced, failed -> not reproduced, undecided -> inconclusive. Cells: datasets."),
        "C3": (f"Paired difference of test accuracy, entangled - baseline; reproduced if its {pct} t interval lies "
               "above 0, not reproduced if below 0, inconclusive otherwise (or n < 2). Cells: datasets."),
        "C4": (f"Final SNNL at the optimal T on the probe batch, per regularised hidden layer; paired difference "
               f"entangled - baseline; reproduced if its {pct} interval lies above 0 (more class-mixed), not "
               "reproduced if below 0, inconclusive otherwise. Cells: dataset x layer. The 'clusters' half is "
               "judged by eye (t-SNE), not here."),
        "C5": (f"Mean max-softmax on each outlier set; paired difference entangled - baseline; reproduced if its "
               f"{pct} interval lies below 0, not reproduced if above 0, inconclusive otherwise. Cells: dataset x "
               "outlier set."),
        "C6": (f"AUROC of the combined SNNL score per target (outlier set, attack and epsilon). C6a: in entangled "
               f"runs, AUROC(SNNL combined) - AUROC(max-softmax), {pct} interval over seeds above 0. C6b: "
               "AUROC(SNNL combined) paired difference entangled - baseline above 0. Sign rule each (below 0: not "
               "reproduced). Cells: dataset x target x part; all must hold."),
        "C7": (f"SNNL (optimal T, by class) of the E10 sign-gradient vectors; paired difference entangled - "
               f"baseline; reproduced if its {pct} interval lies above 0 (entangled less class-clustered), not "
               "reproduced if below 0, inconclusive otherwise. Cells: datasets."),
    }


@dataclass
class Quantity:
    name: str
    estimate: Estimate
    condition: str = ""  # met / failed / undecided (margin rules)
    diff: bool = True  # a difference (signed display)


@dataclass
class Cell:
    claim: str  # C1 ... C7, or C6a / C6b
    dataset: str
    scope: str  # what the cell covers besides the dataset (layer, outlier set, target), "" for the dataset
    verdict: str
    quantities: list[Quantity] = field(default_factory=list)
    note: str = ""


@dataclass
class ClaimResult:
    claim: str  # "C3", or "C3 · official" for the comparison official - baseline, or "C1 (long)"
    statement: str
    rule: str
    cells: list[Cell]
    datasets: dict[str, str]
    verdict: str
    supplementary: list[str] = field(default_factory=list)
    note: str = ""
    summary: dict[str, Any] = field(default_factory=dict)  # extra entries of summary.json's claim record

    @property
    def tally(self) -> str:
        return tally(c.verdict for c in self.cells)


def base_claim(claim: str) -> str:
    """"C3 · official" -> "C3"; "C1 (long)" -> "C1"; "C6a · official" -> "C6a"."""
    return claim.split()[0]


def claim_id(claim: str, regime: str = ENTANGLED) -> str:
    """The row of ``claim`` for the comparison ``regime`` - baseline: "C3" for entangled (the
    rows of the original protocol keep their names), "C3 · official" otherwise."""
    return claim if regime == ENTANGLED else f"{claim} · {regime}"


def _statement_and_rule(claim: str, rule_text: dict[str, str] | None, regime: str) -> tuple[str, str]:
    base = base_claim(claim)[:2]
    statement, rule = STATEMENTS[base], (rule_text or rules())[base]
    if claim == C1_LONG:
        statement += " (Long baseline runs: experiments.dynamics.long_epochs.)"
    if regime != ENTANGLED:
        statement += f" Comparison {diff_label(regime)}: {regime} read as the entangled model."
        rule = rule.replace("entangled", regime)
    return statement, rule


def finish(claim: str, cells: list[Cell], supplementary: list[str] | None = None, note: str = "",
            rule_text: dict[str, str] | None = None, regime: str = ENTANGLED) -> ClaimResult:
    """The result of ``claim`` (its row name, :func:`claim_id`) from its cells; ``regime``: the
    comparison ``regime`` - baseline it decides (its statement and rule text say so)."""
    datasets: dict[str, list[str]] = {}
    for c in cells:
        datasets.setdefault(c.dataset, []).append(c.verdict)
    per_dataset = {d: aggregate(v) for d, v in datasets.items()}
    verdict = aggregate(per_dataset.values())
    if verdict == NOT_RUN and not note:
        note = "; ".join(dict.fromkeys(c.note for c in cells if c.note)) or "no inputs"
    statement, rule = _statement_and_rule(claim, rule_text, regime)
    return ClaimResult(claim, statement, rule, cells, per_dataset, verdict, supplementary or [], note)


def not_run(claim: str, note: str, rule_text: dict[str, str] | None = None, regime: str = ENTANGLED) -> ClaimResult:
    return finish(claim, [], note=note, rule_text=rule_text, regime=regime)


def datasets_of(keys) -> list[str]:
    return list(dict.fromkeys(k[0] for k in sorted(keys)))


def missing_regime_note(values: dict[str, Any], regime: str = ENTANGLED) -> str:
    have = [r for r in (BASELINE, regime) if r in values]
    return f"only {' and '.join(have) or 'no'} runs" if len(have) < 2 else ""


def paired_cell(claim: str, dataset: str, scope: str, values: dict[str, dict[int, Any]], quantity: str,
                 direction: str, level: float, regime: str = ENTANGLED) -> Cell:
    """A cell decided by the sign rule on the paired difference ``regime`` - baseline (with its MDE)."""
    missing = missing_regime_note(values, regime)
    if missing:
        return Cell(claim, dataset, scope, NOT_RUN, [], missing)
    est, _ = paired(values[regime], values[BASELINE], level)
    verdict = sign_rule(est, direction)
    note = "" if est.n >= 2 else f"{est.n} pair(s): no interval"
    return Cell(claim, dataset, scope, verdict, [Quantity(quantity, est)], note)
