"""The verdicts on claims C1-C7: exactly the decision rules of docs/RESULTS.md ("Decision rules").

Each claim is decided in cells (a dataset; a dataset and layer; a dataset and outlier set;
a dataset, target and part for C6). A cell's verdict comes from the sign rule or the
margin rule of :mod:`snnl.tables.stats`; the cells of a dataset and then the datasets are
combined by :func:`snnl.tables.stats.aggregate` (not-run cells left out; all reproduced ->
reproduced; any not reproduced -> not reproduced; otherwise inconclusive).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from snnl.tables import fmt
from snnl.tables.inputs import GAN_PIXELS, Inputs, RunKey, knn_agreement
from snnl.tables.stats import (
    FAILED,
    INCONCLUSIVE,
    MET,
    NOT_REPRODUCED,
    NOT_RUN,
    REPRODUCED,
    UNDECIDED,
    Estimate,
    aggregate,
    margin_rule,
    mean_ci,
    paired,
    sign_rule,
    tally,
)
from snnl.tables.tables import (
    BASELINE,
    ENTANGLED,
    _dig,
    _num,
    collect,
    detection_layout,
    detection_value,
    outlier_sets,
    target_label,
    test_accuracy,
)

# The parameters of the decision rules (docs/RESULTS.md, "Parameters"): fixed, not options.
CONFIDENCE = 0.95
C1_MARGIN = 0.05  # nats
C2_MARGIN = 0.05  # nats
C1_MIN_STEPS = 3
KNN_K = 5
COMBINED_SNNL = "snnl_combined"
MSP = "msp"

CLAIMS = ("C1", "C2", "C3", "C4", "C5", "C6", "C7")

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
    claim: str
    statement: str
    rule: str
    cells: list[Cell]
    datasets: dict[str, str]
    verdict: str
    supplementary: list[str] = field(default_factory=list)
    note: str = ""

    @property
    def tally(self) -> str:
        return tally(c.verdict for c in self.cells)


def _finish(claim: str, cells: list[Cell], supplementary: list[str] | None = None, note: str = "",
            rule_text: dict[str, str] | None = None) -> ClaimResult:
    datasets: dict[str, list[str]] = {}
    for c in cells:
        datasets.setdefault(c.dataset, []).append(c.verdict)
    per_dataset = {d: aggregate(v) for d, v in datasets.items()}
    verdict = aggregate(per_dataset.values())
    if verdict == NOT_RUN and not note:
        note = "; ".join(dict.fromkeys(c.note for c in cells if c.note)) or "no inputs"
    return ClaimResult(claim, STATEMENTS[claim], (rule_text or rules())[claim], cells, per_dataset, verdict,
                       supplementary or [], note)


def _not_run(claim: str, note: str, rule_text: dict[str, str] | None = None) -> ClaimResult:
    return _finish(claim, [], note=note, rule_text=rule_text)


def _datasets(keys) -> list[str]:
    return list(dict.fromkeys(k[0] for k in sorted(keys)))


def _missing_regime_note(values: dict[str, Any]) -> str:
    have = [r for r in (BASELINE, ENTANGLED) if r in values]
    return f"only {' and '.join(have) or 'no'} runs" if len(have) < 2 else ""


# ---------------------------------------------------------------------------------------
# C1


def claim_c1(inputs: Inputs, margin: float = C1_MARGIN, level: float = CONFIDENCE) -> ClaimResult:
    text = rules(margin, C2_MARGIN, level)
    probe = inputs.probe()
    if probe is None or probe.empty:
        return _not_run("C1", "no probe curves (--dynamics, or metrics JSONs with probe records)", text)
    base = probe[probe["regime"] == BASELINE]
    if base.empty:
        return _not_run("C1", "no baseline probe curves", text)
    cells = []
    for dataset in dict.fromkeys(base["dataset"]):
        d = base[base["dataset"] == dataset]
        order = d.groupby("layer", sort=False)["layer_index"].max().sort_values(kind="stable")
        layers = list(order.index)
        for layer in layers:
            falls, rises, short = [], [], 0
            for _, g in d[d["layer"] == layer].groupby("seed", sort=True):
                g = g[pd.to_numeric(g["snnl"], errors="coerce").notna()].sort_values("step", kind="stable")
                if len(g) < C1_MIN_STEPS:
                    short += 1
                    continue
                s = g["snnl"].astype(float)
                low = float(s.min())
                falls.append(float(s.iloc[0]) - low)
                rises.append(float(s.iloc[-1]) - low)
            fall, rise = mean_ci(falls, level), mean_ci(rises, level)
            cf, cr = margin_rule(fall, margin), margin_rule(rise, margin)
            last = layer == layers[-1]
            if short or not falls:
                verdict, note = INCONCLUSIVE, f"{short} run(s) with fewer than {C1_MIN_STEPS} probe steps"
            elif not last:
                note = "expected: falls, then rises"
                verdict = (REPRODUCED if cf == MET and cr == MET
                           else NOT_REPRODUCED if FAILED in (cf, cr) else INCONCLUSIVE)
            else:
                note = "last layer; expected: keeps falling (rise below the margin)"
                verdict = (REPRODUCED if cf == MET and cr == FAILED
                           else NOT_REPRODUCED if cf == FAILED or cr == MET else INCONCLUSIVE)
            cells.append(Cell("C1", dataset, layer, verdict,
                              [Quantity("fall = s_0 - min (nats)", fall, cf, diff=False),
                               Quantity("rise = s_end - min (nats)", rise, cr, diff=False)], note))
    return _finish("C1", cells, rule_text=text)


# ---------------------------------------------------------------------------------------
# C2


def quarter_rise(values: pd.Series) -> float:
    """mean(last q) - mean(first q), q = ceil(N / 4), of values in step order (N >= 2)."""
    v = values.astype(float).to_numpy()
    q = math.ceil(len(v) / 4)
    return float(v[-q:].mean() - v[:q].mean())


def _gan_rises(g: pd.DataFrame, layer: str) -> tuple[list[float], int]:
    rises, short = [], 0
    for _, r in g[g["layer"] == layer].groupby("run", sort=True):
        r = r[r["snnl"].notna()].sort_values("step", kind="stable")
        if len(r) < 2:
            short += 1
            continue
        rises.append(quarter_rise(r["snnl"]))
    return rises, short


def claim_c2(inputs: Inputs, margin: float = C2_MARGIN, level: float = CONFIDENCE) -> ClaimResult:
    text = rules(C1_MARGIN, margin, level)
    gan = inputs.gan
    if gan is None or gan.empty:
        return _not_run("C2", "no GAN curve (--gan)", text)
    cells, extra = [], []
    for dataset in dict.fromkeys(gan["dataset"]):
        g = gan[gan["dataset"] == dataset]
        rises, short = _gan_rises(g, GAN_PIXELS)
        est = mean_ci(rises, level)
        cond = margin_rule(est, margin)
        if not rises or short:
            verdict = INCONCLUSIVE
            note = "no pixel-space curve" if not (g["layer"] == GAN_PIXELS).any() else "fewer than 2 logged steps"
        else:
            verdict = {MET: REPRODUCED, FAILED: NOT_REPRODUCED, UNDECIDED: INCONCLUSIVE}[cond]
            note = f"{len(rises)} run(s)"
        cells.append(Cell("C2", dataset, GAN_PIXELS, verdict,
                          [Quantity("rise = last-quarter - first-quarter mean SNNL (nats)", est, cond)], note))
        layers = g.sort_values("layer_index", kind="stable")["layer"].drop_duplicates()
        parts = []
        for layer in layers:
            if layer == GAN_PIXELS:
                continue
            r, _ = _gan_rises(g, layer)
            if r:
                parts.append(f"{layer} {fmt.cell(mean_ci(r, level), sig=3, sign=True)}")
        if parts:
            extra.append(f"{dataset}: rise of SNNL(real vs fake) in the discriminator's layers (not judged): "
                         + "; ".join(parts))
    return _finish("C2", cells, extra, rule_text=text)


# ---------------------------------------------------------------------------------------
# paired-difference claims


def _paired_cell(claim: str, dataset: str, scope: str, values: dict[str, dict[int, Any]], quantity: str,
                 direction: str, level: float) -> Cell:
    missing = _missing_regime_note(values)
    if missing:
        return Cell(claim, dataset, scope, NOT_RUN, [], missing)
    est, _ = paired(values[ENTANGLED], values[BASELINE], level)
    verdict = sign_rule(est, direction)
    note = "" if est.n >= 2 else f"{est.n} pair(s): no interval"
    return Cell(claim, dataset, scope, verdict, [Quantity(quantity, est)], note)


def claim_c3(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    keys = sorted(set(inputs.metrics) | set(inputs.evaluations))
    if not keys:
        return _not_run("C3", "no metrics or evaluations")
    values = collect(keys, lambda k: test_accuracy(inputs, k))
    cells = [_paired_cell("C3", d, "", values[d], "test accuracy, entangled - baseline", ">", level)
             for d in _datasets(keys)]
    return _finish("C3", cells)


def final_snnl(inputs: Inputs, key: RunKey, layer: str, probe: pd.DataFrame | None) -> float | None:
    """The run's SNNL at the optimal T on the probe batch at the end of training."""
    m = inputs.metrics.get(key)
    v = _num(_dig(m, "snnl_optimal", layer, "snnl")) if m is not None else None
    if v is not None or probe is None:
        return v
    dataset, regime, seed = key
    p = probe[(probe["dataset"] == dataset) & (probe["regime"] == regime) & (probe["seed"] == seed)
              & (probe["layer"] == layer)]
    p = p[p["snnl"].notna()]
    return _num(p.sort_values("step", kind="stable")["snnl"].iloc[-1]) if not p.empty else None


def c4_layers(inputs: Inputs, dataset: str, probe: pd.DataFrame | None) -> list[str]:
    layers: list[str] = []
    for (d, regime, _), m in sorted(inputs.metrics.items()):
        if d == dataset and regime == ENTANGLED:
            layers += [str(x) for x in (m.get("layers") or []) if str(x) not in layers]
    if layers:
        return layers
    if probe is not None:
        p = probe[probe["dataset"] == dataset]
        order = list(p.groupby("layer", sort=False)["layer_index"].max().sort_values(kind="stable").index)
        return order[:-1]
    return []


def claim_c4(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    probe = inputs.probe()
    keys = set(inputs.metrics)
    if probe is not None:
        keys |= {tuple(k) for k in probe[["dataset", "regime", "seed"]].drop_duplicates().itertuples(index=False)}
    keys = sorted((str(d), str(r), int(s)) for d, r, s in keys)
    if not keys:
        return _not_run("C4", "no metrics JSONs or probe curves")
    cells = []
    for dataset in _datasets(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        layers = c4_layers(inputs, dataset, probe)
        if not layers:
            cells.append(Cell("C4", dataset, "", NOT_RUN, [], "no hidden layers recorded"))
            continue
        for layer in layers:
            values = collect(dkeys, lambda k, layer=layer: final_snnl(inputs, k, layer, probe))[dataset]
            if all(v is None for r in values.values() for v in r.values()):
                cells.append(Cell("C4", dataset, layer, NOT_RUN, [], "no final SNNL recorded (probe off)"))
                continue
            cells.append(_paired_cell("C4", dataset, layer, values, "final SNNL, entangled - baseline (nats)", ">",
                                      level))
    extra = []
    syn = inputs.synthetic
    if syn is not None and "fine_kmeans_purity" in syn.columns:
        def purity(objective: str, direction: str) -> str:
            r = syn[(syn["objective"] == objective) & (syn["direction"] == direction)]
            return fmt.num(r["fine_kmeans_purity"].mean(), 3) if not r.empty else fmt.NA
        extra.append("E2, 2-D points (not judged): fine k-means purity (4 clusters per class; 1 = small clusters of one "
                     f"class) initial {purity('initial', 'initial')}, after maximising the SNNL "
                     f"{purity('snnl', 'maximise')}, after maximising the triplet loss {purity('triplet', 'maximise')}")
    return _finish("C4", cells, extra)


def claim_c5(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    keys = sorted(inputs.evaluations)
    if not keys:
        return _not_run("C5", "no evaluations")
    cells, extra = [], []
    for dataset in _datasets(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        sets = outlier_sets(inputs, dataset)
        if not sets:
            cells.append(Cell("C5", dataset, "", NOT_RUN, [], "no outlier sets evaluated"))
        for name in sets:
            values = collect(dkeys, lambda k, n=name: _num(_dig(inputs.evaluations[k].summary, "outliers", n,
                                                                 "mean_confidence")))[dataset]
            cells.append(_paired_cell("C5", dataset, name, values, "mean max-softmax on outliers, entangled - baseline",
                                      "<", level))
        parts = []
        for label, path in [("test ECE", ("test", "ece"))] + [(f"max-softmax AUROC {n}", ("outliers", n, "msp_auroc"))
                                                             for n in sets]:
            values = collect(dkeys, lambda k, p=path: _num(_dig(inputs.evaluations[k].summary, *p)))[dataset]
            if BASELINE in values and ENTANGLED in values:
                est, _ = paired(values[ENTANGLED], values[BASELINE], level)
                parts.append(f"{label} {fmt.cell(est, sig=3, sign=True)}")
        if parts:
            extra.append(f"{dataset}, entangled - baseline (not judged): " + "; ".join(parts))
    return _finish("C5", cells, extra)


def claim_c6(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    keys = sorted(inputs.evaluations)
    if not keys:
        return _not_run("C6", "no evaluations")
    cells = []
    for dataset in _datasets(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        targets, scores = detection_layout(inputs, dataset)
        if not targets:
            cells.append(Cell("C6", dataset, "", NOT_RUN, [], "no detection results"))
        for target in targets:
            scope = target
            if COMBINED_SNNL not in scores[target]:
                cells.append(Cell("C6a", dataset, scope, NOT_RUN, [], "no combined SNNL score"))
                cells.append(Cell("C6b", dataset, scope, NOT_RUN, [], "no combined SNNL score"))
                continue
            # C6a: within the entangled runs
            ent = [k for k in dkeys if k[1] == ENTANGLED]
            if not ent:
                cells.append(Cell("C6a", dataset, scope, NOT_RUN, [], "no entangled runs"))
            else:
                diffs = []
                for k in ent:
                    a = detection_value(inputs, k, target, COMBINED_SNNL, "auroc")
                    b = detection_value(inputs, k, target, MSP, "auroc")
                    if a is not None and b is not None:
                        diffs.append(a - b)
                est = mean_ci(diffs, level)
                note = "" if est.n >= 2 else f"{est.n} run(s) with both AUROCs: no interval"
                cells.append(Cell("C6a", dataset, scope, sign_rule(est, ">"),
                                  [Quantity("entangled: AUROC(SNNL combined) - AUROC(max-softmax)", est)], note))
            values = collect(dkeys, lambda k, t=target: detection_value(inputs, k, t, COMBINED_SNNL, "auroc"))[dataset]
            cells.append(_paired_cell("C6b", dataset, scope, values, "AUROC(SNNL combined), entangled - baseline", ">",
                                      level))
    result = _finish("C6", cells)
    return result


def claim_c7(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    keys = sorted(inputs.evaluations)
    if not keys:
        return _not_run("C7", "no evaluations")
    cells, extra = [], []
    path = ("embeddings", "gradients", "snnl_sign_gradients")
    for dataset in _datasets(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        values = collect(dkeys, lambda k: _num(_dig(inputs.evaluations[k].summary, *path)))[dataset]
        skips = [f"{k[1]} seed {k[2]}: {reason}" for k in dkeys
                 if (reason := _dig(inputs.evaluations[k].summary, "embeddings", "gradients", "skipped"))]
        if skips:
            extra.append(f"{dataset}: sign-gradient t-SNE skipped in " + "; ".join(skips))
        if all(v is None for r in values.values() for v in r.values()):
            note = "no sign-gradient embedding" + (f" ({'; '.join(skips)})" if skips else " (gradient_tsne_size 0?)")
            cells.append(Cell("C7", dataset, "", NOT_RUN, [], note))
            continue
        cells.append(_paired_cell("C7", dataset, "", values, "SNNL of sign gradients, entangled - baseline (nats)", ">",
                                  level))
        parts = []
        for regime in (BASELINE, ENTANGLED):
            agree = []
            for k in dkeys:
                t = inputs.evaluations[k].tsne_gradients
                if k[1] == regime and t is not None and {"x", "y", "label"} <= set(t.columns):
                    agree.append(knn_agreement(t[["x", "y"]].to_numpy(), t["label"].to_numpy(), KNN_K))
            if agree:
                parts.append(f"{regime} {fmt.cell(mean_ci(agree, level), sig=3)}")
        if parts:
            extra.append(f"{dataset}: {KNN_K}-NN class agreement in the t-SNE of the sign gradients (not judged; "
                         "1 = clustered by class): " + "; ".join(parts))
    return _finish("C7", cells, extra)


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
