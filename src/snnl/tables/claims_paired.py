"""C3-C7, the claims on paired differences (entangled - baseline, paired by seed): test
accuracy, final SNNL of the hidden layers, confidence on outliers, detection AUROC and the
class structure of the sign gradients."""

from __future__ import annotations

import pandas as pd

from snnl.tables import fmt
from snnl.tables.inputs import Inputs, RunKey, knn_agreement
from snnl.tables.stats import NOT_RUN, mean_ci, paired, sign_rule
from snnl.tables.tables import (
    BASELINE,
    ENTANGLED,
    _dig,
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
    MSP,
    Cell,
    ClaimResult,
    Quantity,
    datasets_of,
    finish,
    not_run,
    paired_cell,
)


def claim_c3(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    keys = sorted(set(inputs.metrics) | set(inputs.evaluations))
    if not keys:
        return not_run("C3", "no metrics or evaluations")
    values = collect(keys, lambda k: test_accuracy(inputs, k))
    cells = [paired_cell("C3", d, "", values[d], "test accuracy, entangled - baseline", ">", level)
             for d in datasets_of(keys)]
    return finish("C3", cells)


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
        return not_run("C4", "no metrics JSONs or probe curves")
    cells = []
    for dataset in datasets_of(keys):
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
            cells.append(paired_cell("C4", dataset, layer, values, "final SNNL, entangled - baseline (nats)", ">",
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
    return finish("C4", cells, extra)


def claim_c5(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    keys = sorted(inputs.evaluations)
    if not keys:
        return not_run("C5", "no evaluations")
    cells, extra = [], []
    for dataset in datasets_of(keys):
        dkeys = [k for k in keys if k[0] == dataset]
        sets = outlier_sets(inputs, dataset)
        if not sets:
            cells.append(Cell("C5", dataset, "", NOT_RUN, [], "no outlier sets evaluated"))
        for name in sets:
            values = collect(dkeys, lambda k, n=name: _num(_dig(inputs.evaluations[k].summary, "outliers", n,
                                                                 "mean_confidence")))[dataset]
            cells.append(paired_cell("C5", dataset, name, values, "mean max-softmax on outliers, entangled - baseline",
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
    return finish("C5", cells, extra)


def claim_c6(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    keys = sorted(inputs.evaluations)
    if not keys:
        return not_run("C6", "no evaluations")
    cells = []
    for dataset in datasets_of(keys):
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
            cells.append(paired_cell("C6b", dataset, scope, values, "AUROC(SNNL combined), entangled - baseline", ">",
                                      level))
    result = finish("C6", cells)
    return result


def claim_c7(inputs: Inputs, level: float = CONFIDENCE) -> ClaimResult:
    keys = sorted(inputs.evaluations)
    if not keys:
        return not_run("C7", "no evaluations")
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
            cells.append(Cell("C7", dataset, "", NOT_RUN, [], note))
            continue
        cells.append(paired_cell("C7", dataset, "", values, "SNNL of sign gradients, entangled - baseline (nats)", ">",
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
    return finish("C7", cells, extra)
