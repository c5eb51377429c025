"""C3-C7, the claims on paired differences (R - baseline, paired by seed): test accuracy, final
SNNL of the hidden layers, confidence on outliers, detection AUROC and the class structure of
the sign gradients. Each is decided once per comparison (docs/RESULTS.md, "Comparisons"):
``regime`` R is ``entangled`` (rows ``C3``...) or another regime (rows ``C3 · official``...)."""

from __future__ import annotations

import pandas as pd

from snnl.tables import fmt
from snnl.tables.inputs import Inputs, RunKey, knn_agreement
from snnl.tables.stats import NOT_RUN, differences, mean_ci, paired, sign_rule
from snnl.tables.tables import (
    BASELINE,
    ENTANGLED,
    _dig,
    diff_label,
    _num,
    collect,
    detection_layout,
    detection_value,
    outlier_sets,
    test_accuracy,
)
from snnl.tables.verdicts import (
    COMBINED_SNNL,
    CONFIDENCE,
    KNN_K,
    MACHINE_SPREAD,
    MSP,
    Cell,
    ClaimResult,
    Quantity,
    claim_id,
    datasets_of,
    finish,
    not_run,
    paired_cell,
)


def machine_sensitive(cell: Cell, spread: float = MACHINE_SPREAD) -> bool:
    """docs/RESULTS.md, "Machines": the cell's interval has an end within ``spread`` of 0."""
    return any(q.estimate.has_interval and min(abs(q.estimate.lo), abs(q.estimate.hi)) <= spread
               for q in cell.quantities)


def claim_c3(inputs: Inputs, level: float = CONFIDENCE, regime: str = ENTANGLED) -> ClaimResult:
    claim = claim_id("C3", regime)
    keys = sorted(set(inputs.metrics) | set(inputs.evaluations))
    if not keys:
        return not_run(claim, "no metrics or evaluations", regime=regime)
    values = collect(keys, lambda k: test_accuracy(inputs, k))
    cells = [paired_cell(claim, d, "", values[d], f"test accuracy, {diff_label(regime)}", ">", level, regime)
             for d in datasets_of(keys)]
    flags = {c.dataset: machine_sensitive(c) for c in cells if c.quantities}
    for c in cells:
        if flags.get(c.dataset):
            c.note = "; ".join(filter(None, [c.note, f"machine-sensitive (an interval end within {MACHINE_SPREAD:g} "
                                                     "of 0)"]))
    result = finish(claim, cells, regime=regime)
    result.summary["machine_sensitive"] = flags
    return result


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


def c4_layers(inputs: Inputs, dataset: str, probe: pd.DataFrame | None, regime: str = ENTANGLED) -> list[str]:
    """The layers ``regime``'s runs of ``dataset`` regularise (their ``layers``); else every probe layer but the last."""
    layers: list[str] = []
    for (d, r, _), m in sorted(inputs.metrics.items()):
        if d == dataset and r == regime:
            layers += [str(x) for x in (m.get("layers") or []) if str(x) not in layers]
    if layers:
        return layers
    if probe is not None:
        p = probe[probe["dataset"] == dataset]
        order = list(p.groupby("layer", sort=False)["layer_index"].max().sort_values(kind="stable").index)
        return order[:-1]
    return []


def claim_c4(inputs: Inputs, level: float = CONFIDENCE, regime: str = ENTANGLED) -> ClaimResult:
    claim = claim_id("C4", regime)
    probe = inputs.probe()
    keys = set(inputs.metrics)
    if probe is not None:
        keys |= {tuple(k) for k in probe[["dataset", "regime", "seed"]].drop_duplicates().itertuples(index=False)}
    keys = sorted((str(d), str(r), int(s)) for d, r, s in keys)
    if not keys:
        return not_run(claim, "no metrics JSONs or probe curves", regime=regime)
    cells = []
    for dataset in datasets_of(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        layers = c4_layers(inputs, dataset, probe, regime)
        if not layers:
            cells.append(Cell(claim, dataset, "", NOT_RUN, [], "no hidden layers recorded"))
            continue
        for layer in layers:
            values = collect(dkeys, lambda k, layer=layer: final_snnl(inputs, k, layer, probe))[dataset]
            if all(v is None for r in values.values() for v in r.values()):
                cells.append(Cell(claim, dataset, layer, NOT_RUN, [], "no final SNNL recorded (probe off)"))
                continue
            cells.append(paired_cell(claim, dataset, layer, values, f"final SNNL, {diff_label(regime)} (nats)", ">",
                                      level, regime))
    extra = []
    syn = inputs.synthetic
    if syn is not None and "fine_kmeans_purity" in syn.columns and regime == ENTANGLED:  # once, beside C4
        def purity(objective: str, direction: str) -> str:
            r = syn[(syn["objective"] == objective) & (syn["direction"] == direction)]
            return fmt.num(r["fine_kmeans_purity"].mean(), 3) if not r.empty else fmt.NA
        extra.append("E2, 2-D points (not judged): fine k-means purity (4 clusters per class; 1 = small clusters of one "
                     f"class) initial {purity('initial', 'initial')}, after maximising the SNNL "
                     f"{purity('snnl', 'maximise')}, after maximising the triplet loss {purity('triplet', 'maximise')}")
    return finish(claim, cells, extra, regime=regime)


def claim_c5(inputs: Inputs, level: float = CONFIDENCE, regime: str = ENTANGLED) -> ClaimResult:
    claim = claim_id("C5", regime)
    keys = sorted(inputs.evaluations)
    if not keys:
        return not_run(claim, "no evaluations", regime=regime)
    cells, extra = [], []
    for dataset in datasets_of(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        sets = outlier_sets(inputs, dataset)
        if not sets:
            cells.append(Cell(claim, dataset, "", NOT_RUN, [], "no outlier sets evaluated"))
        for name in sets:
            values = collect(dkeys, lambda k, n=name: _num(_dig(inputs.evaluations[k].summary, "outliers", n,
                                                                 "mean_confidence")))[dataset]
            cells.append(paired_cell(claim, dataset, name, values,
                                      f"mean max-softmax on outliers, {diff_label(regime)}", "<", level, regime))
        parts = []
        for label, path in [("test ECE", ("test", "ece"))] + [(f"max-softmax AUROC {n}", ("outliers", n, "msp_auroc"))
                                                             for n in sets]:
            values = collect(dkeys, lambda k, p=path: _num(_dig(inputs.evaluations[k].summary, *p)))[dataset]
            if BASELINE in values and regime in values:
                est, _ = paired(values[regime], values[BASELINE], level)
                parts.append(f"{label} {fmt.cell(est, sig=3, sign=True, show_mde=True)}")
        if parts:
            extra.append(f"{dataset}, {diff_label(regime)} (not judged): " + "; ".join(parts))
    return finish(claim, cells, extra, regime=regime)


def claim_c6(inputs: Inputs, level: float = CONFIDENCE, regime: str = ENTANGLED) -> ClaimResult:
    claim = claim_id("C6", regime)
    c6a, c6b = claim_id("C6a", regime), claim_id("C6b", regime)
    keys = sorted(inputs.evaluations)
    if not keys:
        return not_run(claim, "no evaluations", regime=regime)
    cells = []
    for dataset in datasets_of(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        targets, scores = detection_layout(inputs, dataset)
        if not targets:
            cells.append(Cell(claim, dataset, "", NOT_RUN, [], "no detection results"))
        for target in targets:
            scope = target
            if COMBINED_SNNL not in scores[target]:
                cells.append(Cell(c6a, dataset, scope, NOT_RUN, [], "no combined SNNL score"))
                cells.append(Cell(c6b, dataset, scope, NOT_RUN, [], "no combined SNNL score"))
                continue
            # C6a: within the runs of the regime
            ent = [k for k in dkeys if k[1] == regime]
            if not ent:
                cells.append(Cell(c6a, dataset, scope, NOT_RUN, [], f"no {regime} runs"))
            else:
                diffs = []
                for k in ent:
                    a = detection_value(inputs, k, target, COMBINED_SNNL, "auroc")
                    b = detection_value(inputs, k, target, MSP, "auroc")
                    if a is not None and b is not None:
                        diffs.append(a - b)
                est = differences(diffs, level)
                note = "" if est.n >= 2 else f"{est.n} run(s) with both AUROCs: no interval"
                cells.append(Cell(c6a, dataset, scope, sign_rule(est, ">"),
                                  [Quantity(f"{regime}: AUROC(SNNL combined) - AUROC(max-softmax)", est)], note))
            values = collect(dkeys, lambda k, t=target: detection_value(inputs, k, t, COMBINED_SNNL, "auroc"))[dataset]
            cells.append(paired_cell(c6b, dataset, scope, values, f"AUROC(SNNL combined), {diff_label(regime)}", ">",
                                      level, regime))
    return finish(claim, cells, regime=regime)


def claim_c7(inputs: Inputs, level: float = CONFIDENCE, regime: str = ENTANGLED) -> ClaimResult:
    claim = claim_id("C7", regime)
    keys = sorted(inputs.evaluations)
    if not keys:
        return not_run(claim, "no evaluations", regime=regime)
    cells, extra = [], []
    path = ("embeddings", "gradients", "snnl_sign_gradients")
    for dataset in datasets_of(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        values = collect(dkeys, lambda k: _num(_dig(inputs.evaluations[k].summary, *path)))[dataset]
        skips = [f"{k[1]} seed {k[2]}: {reason}" for k in dkeys
                 if (reason := _dig(inputs.evaluations[k].summary, "embeddings", "gradients", "skipped"))]
        if skips:
            extra.append(f"{dataset}: sign-gradient t-SNE skipped in " + "; ".join(skips))
        if all(v is None for r in values.values() for v in r.values()):
            note = "no sign-gradient embedding" + (f" ({'; '.join(skips)})" if skips else " (gradient_tsne_size 0?)")
            cells.append(Cell(claim, dataset, "", NOT_RUN, [], note))
            continue
        cells.append(paired_cell(claim, dataset, "", values, f"SNNL of sign gradients, {diff_label(regime)} (nats)",
                                  ">", level, regime))
        parts = []
        for r in (BASELINE, regime):
            agree = []
            for k in dkeys:
                t = inputs.evaluations[k].tsne_gradients
                if k[1] == r and t is not None and {"x", "y", "label"} <= set(t.columns):
                    agree.append(knn_agreement(t[["x", "y"]].to_numpy(), t["label"].to_numpy(), KNN_K))
            if agree:
                parts.append(f"{r} {fmt.cell(mean_ci(agree, level), sig=3)}")
        if parts:
            extra.append(f"{dataset}: {KNN_K}-NN class agreement in the t-SNE of the sign gradients (not judged; "
                         "1 = clustered by class): " + "; ".join(parts))
    return finish(claim, cells, extra, regime=regime)
