"""What each bonus does (docs/RESULTS.md; reported, not judged): the pinned fraction and the
gradient ratio that the probe records for every regularised layer of the non-baseline runs.

    bonus.csv  dataset, regime, layer, quantity, at, steps, n, mean, ci_lo, ci_hi, seeds
    bonus.md   the same as a table per dataset: per regime and layer, each quantity at the first
               and the last probe step (mean and t interval over seeds, n = seeds)

``at`` is ``first`` or ``last``: per run, the first and the last probe step at which the
quantity was recorded; ``steps`` the step(s) that were (one number when every seed agrees).
"""

from __future__ import annotations

import pandas as pd

from snnl.experiments.dynamics import BONUS_LABELS, bonus_long
from snnl.tables import fmt
from snnl.tables.inputs import Inputs
from snnl.tables.stats import Estimate, mean_ci
from snnl.tables.tables import regimes_of

BONUS_COLUMNS = ["dataset", "regime", "layer", "quantity", "at", "steps", "n", "mean", "ci_lo", "ci_hi", "seeds"]


def _steps(steps: list[int]) -> str:
    lo, hi = min(steps), max(steps)
    return str(lo) if lo == hi else f"{lo}-{hi}"


def bonus_table(inputs: Inputs, level: float = 0.95) -> pd.DataFrame:
    """bonus.csv from the probe curves (:meth:`Inputs.probe`); empty when none records the bonus."""
    probe = inputs.probe()
    long = bonus_long(probe) if probe is not None else pd.DataFrame()
    rows = []
    if long.empty:
        return pd.DataFrame(rows, columns=BONUS_COLUMNS)
    long = long.sort_values(["layer_index", "step"], kind="stable")
    for dataset in dict.fromkeys(long["dataset"]):
        d = long[long["dataset"] == dataset]
        for regime in regimes_of(set(d["regime"])):
            r = d[d["regime"] == regime]
            for (layer, quantity), g in r.groupby(["layer", "quantity"], sort=False):
                per_seed = g.groupby("seed", sort=True)
                for at, pick in (("first", per_seed.head(1)), ("last", per_seed.tail(1))):
                    pick = pick.sort_values("seed")
                    est = mean_ci(pick["value"], level)
                    rows.append({"dataset": dataset, "regime": regime, "layer": layer, "quantity": quantity, "at": at,
                                 "steps": _steps([int(s) for s in pick["step"]]), "n": est.n, "mean": est.mean,
                                 "ci_lo": est.lo, "ci_hi": est.hi, "seeds": " ".join(map(str, pick["seed"]))})
    return pd.DataFrame(rows, columns=BONUS_COLUMNS)


def _cell(df: pd.DataFrame, at: str) -> str:
    r = df[df["at"] == at]
    if r.empty:
        return fmt.NA
    row = r.iloc[0]
    est = Estimate(int(row["n"]), float(row["mean"]), float(row["ci_lo"]), float(row["ci_hi"]))
    return f"{fmt.cell(est, sig=3)} (step {row['steps']})"


def bonus_markdown(df: pd.DataFrame, level: float = 0.95) -> str:
    pct = f"{100 * level:g}%"
    out = ["# What each bonus does\n\n",
           "Reported, not judged (docs/RESULTS.md, \"What each bonus does\"). Per non-baseline regime and "
           "regularised layer, on the probe batch: the *pinned fraction* (anchors whose SNNL term in the cleverhans "
           "numerics, at the layer's training temperature, lies within 1e-3 nats of the cap -log(1e-5); for "
           "entangled: what those numerics would have pinned) and the *gradient ratio* |grad(alpha SNNL_layer)| / "
           "|grad CE| (the regime's own numerics), at the first and the last probe step. Each cell: mean over seeds "
           f"and its {pct} Student-t interval; n = seeds.\n\n"]
    if df.empty:
        out.append("No bonus measurements (no non-baseline run recorded them).\n")
        return "".join(out)
    for dataset in dict.fromkeys(df["dataset"]):
        d = df[df["dataset"] == dataset]
        rows = []
        for (regime, layer, quantity), g in d.groupby(["regime", "layer", "quantity"], sort=False):
            rows.append([regime, layer, BONUS_LABELS.get(quantity, quantity), _cell(g, "first"), _cell(g, "last"),
                         str(int(g["n"].max()))])
        out.append(f"## {dataset}\n\n")
        out.append(fmt.pipe_table(["regime", "layer", "quantity", "first probe step", "last probe step", "n"], rows,
                                  ["l", "l", "l", "r", "r", "r"]))
        out.append("\n")
    return "".join(out)
