"""E4 (claim C1): per-layer SNNL at the optimal temperature during ordinary training.

Reads the probe logs that training writes (one CSV per (dataset, regime, seed)) and
draws one panel per (dataset, regime): the SNNL of every layer against the training
step on a log axis, the last layer (the logits) black and dashed. The paper's claim:
in all layers but the last the SNNL first falls, then rises; the last keeps falling.

A probe log (``snnl train --probe-log``) is a long-format CSV with the columns

    dataset, regime, seed  (the run the file belongs to: read from here, never from its path)
    step   (int, training step; 0 = the untrained model)
    epoch  (float)
    layer  (str, module name; the last layer to appear in the file is drawn as the last layer)
    snnl   (float, SNNL at the optimal temperature on the fixed probe batch)
    temperature, at_boundary  (that optimal temperature; whether it is at the search's boundary)
    train_temperature, pinned_fraction, grad_ratio  (the bonus measurements of a regularised
           layer, empty for the baseline and the logits; docs/RESULTS.md, "What each bonus does")

Files written before 2026-12-01 lack the identity columns and are refused with the fix (rerun
the training that writes them).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from snnl.errors import DataError
from snnl.experiments.common import read_csv
from snnl.regimes import BASELINE, REGIMES

IDENTITY_COLUMNS = ("dataset", "regime", "seed")
REQUIRED_COLUMNS = ("step", "layer", "snnl")
BONUS_COLUMNS = ("train_temperature", "pinned_fraction", "grad_ratio")
DIVERGED_COLUMN = "diverged_at_step"  # in the log of a run that diverged (snnl.training.outcome)


def _identity(df: pd.DataFrame, path: Path) -> pd.DataFrame:
    """``df`` with its identity columns checked and typed (dataset, regime: str; seed: int)."""
    missing = [c for c in IDENTITY_COLUMNS if c not in df.columns]
    seeds = pd.to_numeric(df["seed"], errors="coerce") if "seed" in df.columns else None
    if missing or df["dataset"].isna().any() or df["regime"].isna().any() or seeds.isna().any() \
            or (seeds != seeds.round()).any():
        raise DataError(f"cannot tell which run probe log {path} belongs to: it lacks the identity columns "
                        f"{', '.join(IDENTITY_COLUMNS)} (or leaves them empty); rerun the training that writes it "
                        "(`snnl train --probe-log`, since 2026-12-01 it records them)")
    df["dataset"], df["regime"], df["seed"] = df["dataset"].astype(str), df["regime"].astype(str), seeds.astype(int)
    return df


def read_log(path: str | Path) -> pd.DataFrame:
    """One probe log, checked, with ``layer_index`` added; the run from its own columns.

    Raises:
        DataError: the file is missing, unreadable, empty, or lacks a needed or identity column.
    """
    path = Path(path)
    df = read_csv(path, "training log", "train the run first (it writes the probe log)")
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"training log {path} lacks column(s) {', '.join(missing)}; a probe log needs "
            f"{', '.join(REQUIRED_COLUMNS)} (it has {', '.join(map(str, df.columns)) or 'none'})"
        )
    if df.empty:
        raise DataError(f"training log {path} has no rows; was the run's probe enabled (probe_points > 0)?")
    df = _identity(df.copy(), path)
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    df["snnl"] = pd.to_numeric(df["snnl"], errors="coerce")
    if df["step"].isna().any() or (df["step"] < 0).any():
        raise DataError(f"training log {path}: column `step` must hold non-negative integers")
    df["layer"] = df["layer"].astype(str)
    order = {name: i for i, name in enumerate(dict.fromkeys(df["layer"]))}
    df["layer_index"] = df["layer"].map(order)
    for col in BONUS_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else float("nan")
    front = ["dataset", "regime", "seed", "step", "layer", "layer_index", "snnl"]
    return df[front + [c for c in df.columns if c not in front]]


def read_logs(paths: Sequence[str | Path]) -> pd.DataFrame:
    """All logs in one tidy frame (each run from its file's identity columns).

    Raises:
        DataError: no paths, a bad file (:func:`read_log`), or one run's step and layer in two files.
    """
    if not paths:
        raise DataError("no training logs given; pass --logs FILE [FILE ...]")
    df = pd.concat([read_log(path) for path in paths], ignore_index=True)
    dup = df.duplicated(["dataset", "regime", "seed", "step", "layer"])
    if dup.any():
        row = df[dup].iloc[0]
        raise DataError(
            f"two logs give run {row['dataset']}/{row['regime']}/seed{row['seed']} step {row['step']} layer "
            f"{row['layer']}: each (dataset, regime, seed) must come from one file (check the files' dataset, "
            "regime and seed columns)"
        )
    return df


def set_aside_diverged(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[tuple[str, str, int], int]]:
    """The rows of the runs that finished (without :data:`DIVERGED_COLUMN`), and {(dataset, regime,
    seed): the step it diverged at} for the runs whose log says they diverged: curves that stop
    at a divergence, measured on weights already blowing up, are left out of every figure and
    claim, by name."""
    if DIVERGED_COLUMN not in df.columns:
        return df, {}
    at = pd.to_numeric(df[DIVERGED_COLUMN], errors="coerce")
    runs = df.loc[at.notna(), ["dataset", "regime", "seed"]].assign(step=at[at.notna()]).drop_duplicates()
    diverged = {(r.dataset, r.regime, int(r.seed)): int(r.step) for r in runs.itertuples(index=False)}
    return df[at.isna()].drop(columns=DIVERGED_COLUMN).reset_index(drop=True), diverged


BONUS_LABELS = {"pinned_fraction": "pinned fraction (cleverhans numerics)",
                "grad_ratio": "gradient ratio |grad(alpha SNNL)| / |grad CE|"}


def bonus_long(probe: pd.DataFrame) -> pd.DataFrame:
    """The bonus measurements of the non-baseline runs in long form, one row per (run, step,
    layer, quantity) with a finite value: dataset, regime, seed, step, layer, layer_index,
    quantity (``pinned_fraction`` or ``grad_ratio``), value (a fraction in [0, 1]; a ratio >= 0).
    Empty where the probe recorded none (baseline, logits, logs written before 2026-12-01)."""
    cols = ["dataset", "regime", "seed", "step", "layer", "layer_index"]
    quantities = [c for c in ("pinned_fraction", "grad_ratio") if c in probe.columns]
    df = probe[probe["regime"] != BASELINE]
    if not quantities or df.empty:
        return pd.DataFrame(columns=cols + ["quantity", "value"])
    long = df[cols + quantities].melt(id_vars=cols, value_vars=quantities, var_name="quantity", value_name="value")
    long["value"] = pd.to_numeric(long["value"], errors="coerce")
    return long[long["value"].notna()].reset_index(drop=True)


def _ordered(values, preferred: Sequence[str] = ()) -> list:
    seen = list(dict.fromkeys(values))
    return [v for v in preferred if v in seen] + [v for v in seen if v not in preferred]


def plot(df: pd.DataFrame, band: str = "sd", title: str | None = None):
    """One panel per (dataset row, regime column); one line per layer (mean over seeds, with a
    band: ``sd``, ``ci`` or ``none``); step on a symmetric-log axis so step 0 shows."""
    import matplotlib.pyplot as plt
    import seaborn as sns
    from matplotlib.lines import Line2D

    from snnl.figures import layer_styles, regime_color, set_style

    set_style()
    datasets = _ordered(df["dataset"])
    regimes = _ordered(df["regime"], REGIMES)
    fig, axes = plt.subplots(
        len(datasets), len(regimes), figsize=(5.2 * len(regimes) + 2.0, 3.9 * len(datasets)), squeeze=False, sharex="row", sharey="row"
    )
    errorbar = {"sd": "sd", "ci": ("ci", 95), "none": None}[band]
    for r, dataset in enumerate(datasets):
        row_df = df[df["dataset"] == dataset]
        layers = list(row_df.sort_values("layer_index", kind="stable")["layer"].drop_duplicates())
        styles = layer_styles(layers, input_name=None)
        for c, regime in enumerate(regimes):
            ax = axes[r][c]
            part = row_df[row_df["regime"] == regime]
            if part.empty:
                ax.set_visible(False)
                continue
            seeds = part["seed"].nunique()
            for layer in layers:
                lp = part[part["layer"] == layer]
                if lp.empty:
                    continue
                style = styles[layer]
                sns.lineplot(
                    data=lp, x="step", y="snnl", ax=ax, errorbar=errorbar if seeds > 1 else None,
                    color=style["color"], linestyle=style["linestyle"], linewidth=style["linewidth"],
                    marker="o", markersize=3.5, markeredgewidth=0, label=None, legend=False,
                )
            ax.set_xscale("symlog", linthresh=1.0)
            ax.set_xlim(left=0)
            ax.set_title(f"{dataset} · {regime}  ({seeds} seed{'s' if seeds != 1 else ''})", color=regime_color(regime))
            ax.set_xlabel("training step (log scale; 0 = untrained)")
            ax.set_ylabel("SNNL at optimal T (nats)" if c == 0 else "")
        handles = [Line2D([], [], label=(f"{n} (last layer)" if i == len(layers) - 1 else n), **styles[n])
                   for i, n in enumerate(layers)]
        visible = [ax for ax in axes[r] if ax.get_visible()]
        if visible:
            visible[-1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", title="layer")
    band_note = {"sd": "mean ± 1 s.d. over seeds", "ci": "mean and 95% CI over seeds", "none": "mean over seeds"}[band]
    fig.suptitle(
        title or f"E4: per-layer SNNL at the optimal temperature during training ({band_note})"
    )
    fig.tight_layout()
    return fig


def plot_bonus(long: pd.DataFrame, title: str | None = None):
    """What each bonus does: per dataset two rows of panels (pinned fraction, gradient ratio) and
    one column per regularised layer; x: the training step (symmetric-log axis, so step 0 shows);
    one line per regime in its colour (mean over seeds). ``long``: :func:`bonus_long`'s frame.

    Raises:
        DataError: ``long`` is empty (no non-baseline run recorded the bonus measurements).
    """
    import matplotlib.pyplot as plt
    import seaborn as sns

    from snnl.figures import legend_outside, regime_color, set_style

    if long.empty:
        raise DataError("no bonus measurements (pinned_fraction, grad_ratio) in the non-baseline runs' probe records; "
                        "train the entangled/official regimes with the current code (the probe records them)")
    set_style()
    datasets, regimes = _ordered(long["dataset"]), _ordered(long["regime"], REGIMES)
    quantities = [q for q in BONUS_LABELS if q in set(long["quantity"])]
    layers = list(long.sort_values("layer_index", kind="stable")["layer"].drop_duplicates())
    nrows = len(datasets) * len(quantities)
    fig, axes = plt.subplots(nrows, len(layers), figsize=(4.6 * len(layers) + 2.2, 3.4 * nrows), squeeze=False,
                             sharex=True)
    for i, (dataset, quantity) in enumerate((d, q) for d in datasets for q in quantities):
        part = long[(long["dataset"] == dataset) & (long["quantity"] == quantity)]
        for j, layer in enumerate(layers):
            ax = axes[i][j]
            for regime in regimes:
                lp = part[(part["layer"] == layer) & (part["regime"] == regime)]
                if not lp.empty:
                    seeds = lp["seed"].nunique()
                    sns.lineplot(data=lp, x="step", y="value", ax=ax, errorbar=None, color=regime_color(regime),
                                 marker="o", markersize=3.5, markeredgewidth=0,
                                 label=f"{regime} ({seeds} seed{'s' if seeds != 1 else ''})")
            ax.set_xscale("symlog", linthresh=1.0)
            if quantity == "grad_ratio" and (part["value"] > 0).all() and not part.empty:
                ax.set_yscale("log")
            ax.set_title(f"{dataset} · {layer}")
            ax.set_xlabel("training step (log scale; 0 = untrained)")
            ax.set_ylabel(BONUS_LABELS[quantity] if j == 0 else "")
            if ax.get_legend() is not None:
                ax.get_legend().remove()
        handles, labels = axes[i][0].get_legend_handles_labels()
        if handles:
            legend_outside(axes[i][-1], handles, labels, title="regime (mean over seeds)")
    fig.suptitle(title or "What each bonus does: anchors pinned at the cap, and the SNNL's gradient against CE's")
    fig.tight_layout()
    return fig
