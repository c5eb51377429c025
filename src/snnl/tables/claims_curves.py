"""C1 and C2, the claims on curves: the SNNL of each layer during ordinary training (the probe
curves) and of real vs generated data during GAN training."""

from __future__ import annotations

import math

import pandas as pd

from snnl.tables import fmt
from snnl.tables.inputs import GAN_PIXELS, Inputs
from snnl.tables.stats import FAILED, INCONCLUSIVE, MET, NOT_REPRODUCED, REPRODUCED, UNDECIDED, margin_rule, mean_ci
from snnl.tables.tables import BASELINE
from snnl.tables.verdicts import (
    C1_LONG,
    C1_MARGIN,
    C1_MIN_STEPS,
    C2_MARGIN,
    CONFIDENCE,
    Cell,
    ClaimResult,
    Quantity,
    finish,
    not_run,
    rules,
)


def _c1_cell(d: pd.DataFrame, claim: str, dataset: str, layer: str, last: bool, margin: float,
             level: float) -> Cell:
    """One (dataset, layer) cell of C1 from the baseline probe curves ``d`` of that dataset."""
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
    return Cell(claim, dataset, layer, verdict,
                [Quantity("fall = s_0 - min (nats)", fall, cf, diff=False),
                 Quantity("rise = s_end - min (nats)", rise, cr, diff=False)], note)


def c1_from(probe: pd.DataFrame | None, claim: str = "C1", margin: float = C1_MARGIN,
            level: float = CONFIDENCE, absent: str = "no probe curves") -> ClaimResult:
    """C1's rule on the baseline curves of ``probe`` (a probe frame), in the row ``claim``."""
    text = rules(margin, C2_MARGIN, level)
    if probe is None or probe.empty:
        return not_run(claim, absent, text)
    base = probe[probe["regime"] == BASELINE]
    if base.empty:
        return not_run(claim, "no baseline probe curves", text)
    cells = []
    for dataset in dict.fromkeys(base["dataset"]):
        d = base[base["dataset"] == dataset]
        order = d.groupby("layer", sort=False)["layer_index"].max().sort_values(kind="stable")
        layers = list(order.index)
        cells += [_c1_cell(d, claim, dataset, layer, layer == layers[-1], margin, level) for layer in layers]
    return finish(claim, cells, rule_text=text)


def claim_c1(inputs: Inputs, margin: float = C1_MARGIN, level: float = CONFIDENCE) -> ClaimResult:
    """C1 on the regular runs' probe curves (--dynamics, else the metrics' probe records)."""
    return c1_from(inputs.probe(), "C1", margin, level,
                   "no probe curves (--dynamics, or metrics JSONs with probe records)")


def claim_c1_long(inputs: Inputs, margin: float = C1_MARGIN, level: float = CONFIDENCE) -> ClaimResult | None:
    """C1 on the long baseline runs (--dynamics-long; docs/RESULTS.md, "C1 on a longer horizon"),
    in its own row ``C1 (long)``; None (no row) when no long runs were given."""
    if inputs.dynamics_long is None:
        return None
    return c1_from(inputs.dynamics_long, C1_LONG, margin, level, "no long probe curves (--dynamics-long)")


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
        return not_run("C2", "no GAN curve (--gan)", text)
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
    return finish("C2", cells, extra, rule_text=text)
