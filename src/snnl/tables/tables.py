"""The result tables: test accuracy, confidence on outliers, detection.

Every CSV is tidy, one estimate per row:

    accuracy.csv   dataset, regime, metric, n, mean, ci_lo, ci_hi, mde, seeds
    ood.csv        dataset, set, regime, metric, n, mean, ci_lo, ci_hi, mde, seeds
    detection.csv  dataset, target, score, regime, metric, n, mean, ci_lo, ci_hi, mde, seeds
    confidence.csv dataset, regime, set, kind, confidence, fraction, n  (max-softmax histograms, for `dvc plots`)

``regime`` is a regime (``baseline``, ``entangled``, ``official``, ``official_our_scale``: mean
and t interval over seeds) or a comparison ``R - REF`` (:func:`comparisons`: the paired
difference, paired by seed; n = pairs; ``mde`` its minimum detectable effect at 80% power,
empty on the other rows); ``seeds`` lists the seeds that entered the row. In ood.csv, ``set`` is ``test`` (metrics
``mean_confidence``, ``ece``) or an outlier set (``mean_confidence``, ``msp_auroc``). In
detection.csv, ``target`` is an evaluation comparison (``ood:<set>``,
``adv:<attack>:<eps>``), ``score`` one of ``snnl_<layer>``, ``snnl_combined``,
``knn_<layer>``, ``knn_combined``, ``msp`` and ``metric`` one of ``auroc``, ``aupr``,
``fpr95``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable
from typing import Any

import pandas as pd

from snnl.checks import check_values
from snnl.regimes import BASELINE, ENTANGLED, OFFICIAL, OFFICIAL_OUR_SCALE, REGIMES
from snnl.tables.inputs import Inputs, RunKey
from snnl.tables.stats import Estimate, mean_ci, paired



def diff_label(regime: str, reference: str = BASELINE) -> str:
    """The name of a comparison's rows: ``"entangled - baseline"``."""
    return f"{regime} - {reference}"


DIFF = diff_label(ENTANGLED)
# reported, not judged (docs/RESULTS.md, "Regimes"): how much the activation scale changes the outcome
REPORTED_COMPARISONS = ((OFFICIAL_OUR_SCALE, OFFICIAL),)

ACCURACY_COLUMNS = ["dataset", "regime", "metric", "n", "mean", "ci_lo", "ci_hi", "mde", "seeds"]
OOD_COLUMNS = ["dataset", "set", "regime", "metric", "n", "mean", "ci_lo", "ci_hi", "mde", "seeds"]
DETECTION_COLUMNS = ["dataset", "target", "score", "regime", "metric", "n", "mean", "ci_lo", "ci_hi", "mde", "seeds"]
DETECTION_METRICS = ("auroc", "aupr", "fpr95")

Values = dict[str, dict[int, Any]]  # regime -> seed -> value


def _num(v: Any) -> float | None:
    if v is None:
        return None
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def _dig(obj: Any, *path: str) -> Any:
    for p in path:
        if not isinstance(obj, dict):
            return None
        obj = obj.get(p)
    return obj


def test_accuracy(inputs: Inputs, key: RunKey) -> float | None:
    """The run's test accuracy: the metrics JSON's, else the evaluation's."""
    m = inputs.metrics.get(key)
    if m is not None and _num(m.get("test_accuracy")) is not None:
        return _num(m["test_accuracy"])
    ev = inputs.evaluations.get(key)
    return _num(_dig(ev.summary, "test", "accuracy")) if ev is not None else None


def collect(keys: Iterable[RunKey], value: Callable[[RunKey], Any]) -> dict[str, Values]:
    """dataset -> regime -> seed -> value (None values kept: they count as missing)."""
    out: dict[str, Values] = {}
    for key in keys:
        dataset, regime, seed = key
        out.setdefault(dataset, {}).setdefault(regime, {})[seed] = value(key)
    return out


def regimes_of(values: Iterable[str]) -> list[str]:
    """The regimes named in ``values`` (a collection of names, or a mapping keyed by them) in
    display order: those of :data:`snnl.regimes.REGIMES` first, in its order, then the rest sorted."""
    names = set(values)
    return [r for r in REGIMES if r in names] + sorted(r for r in names if r not in REGIMES)


def comparisons(regimes: Iterable[str], judged: bool = False) -> list[tuple[str, str]]:
    """The comparisons (regime, reference) among ``regimes`` (docs/RESULTS.md, "Comparisons"):
    every regime R other than baseline against baseline (judged: C3-C7 are decided on R -
    baseline), in display order; unless ``judged``, also the reported ones
    (:data:`REPORTED_COMPARISONS`: official_our_scale - official) whose two regimes are present.
    The one place that says which differences the tables and claims show."""
    present = regimes_of(regimes)
    out = [(r, BASELINE) for r in present if r != BASELINE]
    if not judged:
        out += [(r, ref) for r, ref in REPORTED_COMPARISONS if r in present and ref in present]
    return out


def estimates(values: Values, level: float) -> list[tuple[str, Estimate, list[int]]]:
    """(regime, estimate, seeds) per regime, then (``R - REF``, paired difference with its MDE,
    seeds) for each of :func:`comparisons` whose two regimes both have runs."""
    rows = []
    for regime in regimes_of(values):
        seeds = sorted(s for s, v in values[regime].items() if _num(v) is not None)
        rows.append((regime, mean_ci([values[regime][s] for s in seeds], level), seeds))
    for regime, reference in comparisons(values):
        if reference in values:
            est, seeds = paired(values[regime], values[reference], level)
            rows.append((diff_label(regime, reference), est, seeds))
    return rows


def _row(est: Estimate, seeds: list[int], **front: Any) -> dict[str, Any]:
    return {**front, "n": est.n, "mean": est.mean, "ci_lo": est.lo, "ci_hi": est.hi, "mde": est.mde,
            "seeds": " ".join(str(s) for s in seeds)}


def _all_keys(inputs: Inputs) -> list[RunKey]:
    return sorted(set(inputs.metrics) | set(inputs.evaluations))


# ---------------------------------------------------------------------------------------
# accuracy


def accuracy_table(inputs: Inputs, level: float = 0.95) -> pd.DataFrame:
    rows = []
    for dataset, values in collect(_all_keys(inputs), lambda k: test_accuracy(inputs, k)).items():
        for regime, est, seeds in estimates(values, level):
            rows.append(_row(est, seeds, dataset=dataset, regime=regime, metric="test_accuracy"))
    return pd.DataFrame(rows, columns=ACCURACY_COLUMNS)


# ---------------------------------------------------------------------------------------
# outliers


def outlier_sets(inputs: Inputs, dataset: str) -> list[str]:
    names: dict[str, None] = {}
    for (d, _, _), ev in sorted(inputs.evaluations.items()):
        if d == dataset:
            names.update(dict.fromkeys((ev.summary.get("outliers") or {}).keys()))
    return list(names)


def ood_table(inputs: Inputs, level: float = 0.95) -> pd.DataFrame:
    rows = []
    keys = sorted(inputs.evaluations)
    datasets = list(dict.fromkeys(k[0] for k in keys))
    for dataset in datasets:
        dkeys = [k for k in keys if k[0] == dataset]
        specs: list[tuple[str, str, tuple[str, ...]]] = [
            ("test", "mean_confidence", ("test", "mean_confidence")),
            ("test", "ece", ("test", "ece")),
        ]
        for name in outlier_sets(inputs, dataset):
            specs += [(name, "mean_confidence", ("outliers", name, "mean_confidence")),
                      (name, "msp_auroc", ("outliers", name, "msp_auroc"))]
        for set_name, metric, path in specs:
            values = collect(dkeys, lambda k, path=path: _num(_dig(inputs.evaluations[k].summary, *path)))[dataset]
            for regime, est, seeds in estimates(values, level):
                rows.append(_row(est, seeds, dataset=dataset, set=set_name, regime=regime, metric=metric))
    return pd.DataFrame(rows, columns=OOD_COLUMNS)


# ---------------------------------------------------------------------------------------
# detection


def target_order(target: str) -> tuple:
    kind, _, rest = target.partition(":")
    if kind == "ood":
        return (0, rest, 0.0)
    attack, _, eps = rest.partition(":")
    try:
        e = float(eps)
    except ValueError:
        e = math.inf
    return (1, attack, e)


def target_label(target: str) -> str:
    kind, _, rest = target.partition(":")
    if kind == "ood":
        return f"outliers: {rest}"
    if kind == "adv":
        attack, _, eps = rest.partition(":")
        return f"{attack.upper()} eps={eps}"
    return target


def score_order(score: str, layers: list[str]) -> tuple:
    if score == "msp":
        return (2, 0, "")
    family, _, layer = score.partition("_")
    fam = {"snnl": 0, "knn": 1}.get(family, 3)
    if layer == "combined":
        return (fam, len(layers) + 1, layer)
    return (fam, layers.index(layer) if layer in layers else len(layers), layer)


def score_label(score: str) -> str:
    if score == "msp":
        return "max-softmax"
    family, _, layer = score.partition("_")
    name = {"snnl": "SNNL", "knn": "deep k-NN"}.get(family, family)
    return f"{name} {layer}".strip()


def detection_layout(inputs: Inputs, dataset: str) -> tuple[list[str], dict[str, list[str]]]:
    """(targets, target -> scores) over the dataset's evaluations, in display order."""
    targets: dict[str, dict[str, None]] = {}
    layers: list[str] = []
    for (d, _, _), ev in sorted(inputs.evaluations.items()):
        if d != dataset:
            continue
        layers += [x for x in ev.summary.get("layers") or [] if x not in layers]
        for target, scores in (ev.summary.get("detection") or {}).items():
            targets.setdefault(target, {}).update(dict.fromkeys(scores))
    ordered = sorted(targets, key=target_order)
    return ordered, {t: sorted(targets[t], key=lambda s: score_order(s, layers)) for t in ordered}


def detection_value(inputs: Inputs, key: RunKey, target: str, score: str, metric: str) -> float | None:
    ev = inputs.evaluations.get(key)
    return _num(_dig(ev.summary, "detection", target, score, metric)) if ev is not None else None


def detection_table(inputs: Inputs, level: float = 0.95) -> pd.DataFrame:
    rows = []
    keys = sorted(inputs.evaluations)
    for dataset in dict.fromkeys(k[0] for k in keys):
        dkeys = [k for k in keys if k[0] == dataset]
        targets, scores = detection_layout(inputs, dataset)
        for target in targets:
            for score in scores[target]:
                per_metric = {
                    metric: estimates(collect(dkeys, lambda k, m=metric, t=target, s=score: detection_value(inputs, k, t, s, m))[dataset], level)
                    for metric in DETECTION_METRICS
                }
                for i, (regime, _, _) in enumerate(per_metric["auroc"]):
                    for metric in DETECTION_METRICS:
                        _, est, seeds = per_metric[metric][i]
                        rows.append(_row(est, seeds, dataset=dataset, target=target, score=score, regime=regime,
                                         metric=metric))
    return pd.DataFrame(rows, columns=DETECTION_COLUMNS)


# ---------------------------------------------------------------------------------------
# confidence histograms (DVC plots)

CONFIDENCE_COLUMNS = ["dataset", "regime", "set", "kind", "confidence", "fraction", "n"]
SAMPLES_CSV = "samples.csv"


def confidence_table(inputs: Inputs, bins: int = 20) -> pd.DataFrame:
    """Histogram of the max-softmax probability on the test split and each outlier set: per
    (dataset, regime, set), the mean over seeds of the fraction of samples in each of ``bins``
    equal-width bins of [0, 1] (``confidence`` = the bin centre; n = seeds), from each
    evaluation's samples.csv (runs without one are left out). An msp that is NaN or outside
    [0, 1] is a ``DataError`` naming the file, never clipped or dropped."""
    import numpy as np

    edges = np.linspace(0.0, 1.0, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    hists: dict[tuple[str, str, str, str], list[np.ndarray]] = {}
    for (dataset, regime, _), ev in sorted(inputs.evaluations.items()):
        path = ev.path / SAMPLES_CSV
        if not path.is_file():
            continue
        s = pd.read_csv(path, usecols=["set", "kind", "msp"])
        s = s[s["kind"].isin(["test", "outlier"])]
        for (set_name, kind), g in s.groupby(["set", "kind"], sort=False):
            msp = check_values(g["msp"].to_numpy(), f"{path}: msp of set {set_name}", lo=0.0, hi=1.0,
                               fix="max-softmax probabilities lie in [0, 1]; rerun `snnl evaluate` for this folder")
            counts, _ = np.histogram(msp, bins=edges)  # the last bin [lo, 1] holds 1.0
            hists.setdefault((dataset, regime, str(set_name), str(kind)), []).append(counts / max(counts.sum(), 1))
    rows = []
    for (dataset, regime, set_name, kind), hs in hists.items():
        mean = np.mean(hs, axis=0)
        rows += [{"dataset": dataset, "regime": regime, "set": set_name, "kind": kind, "confidence": float(c),
                  "fraction": float(f), "n": len(hs)} for c, f in zip(centres, mean)]
    return pd.DataFrame(rows, columns=CONFIDENCE_COLUMNS)


def regimes_present(inputs: Inputs) -> list[str]:
    """Every regime with a metrics file, an evaluation or a probe curve, in display order."""
    names = {k[1] for k in _all_keys(inputs)}
    probe = inputs.probe()
    if probe is not None:
        names |= set(probe["regime"].astype(str))
    return regimes_of(names)
