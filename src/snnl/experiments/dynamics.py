"""E4 (claim C1): per-layer SNNL at the optimal temperature during ordinary training.

Reads the probe logs that training writes (one CSV per (dataset, regime, seed)) and
draws one panel per (dataset, regime): the SNNL of every layer against the training
step on a log axis, the last layer (the logits) black and dashed. The paper's claim:
in all layers but the last the SNNL first falls, then rises; the last keeps falling.

A probe log is a long-format CSV with at least the columns

    step   (int, training step; 0 = the untrained model)
    layer  (str, module name; the last layer to appear in the file is drawn as the last layer)
    snnl   (float, SNNL at the optimal temperature on the fixed probe batch)

Other columns (``epoch``, ``temperature``, ``at_boundary``...) are carried along and
ignored. Which run a file belongs to comes from its path, ``.../{dataset}/{regime}/seed{seed}...``
(e.g. ``results/logs/mnist5k/baseline/seed0.probe.csv``), or from an explicit label
``DATASET/REGIME[/SEED]``.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from snnl.errors import DataError
from snnl.regimes import REGIMES

REQUIRED_COLUMNS = ("step", "layer", "snnl")
_SEED_PART = re.compile(r"seed(\d+)(?!\d)")


def parse_run_path(path: str | Path) -> dict | None:
    """``{"dataset", "regime", "seed"}`` from a path ``.../{dataset}/{regime}/seed{seed}...``:
    the last path component starting with ``seed<digits>`` (a file ``seed0.csv`` or a
    folder ``seed0/``) and the two folders above it. None when there is no such component."""
    parts = Path(path).parts
    for i in range(len(parts) - 1, 1, -1):
        m = _SEED_PART.match(parts[i])
        if m:
            return {"dataset": parts[i - 2], "regime": parts[i - 1], "seed": int(m.group(1))}
    return None


def parse_label(label: str, index: int = 0) -> dict:
    """``DATASET/REGIME[/SEED]`` -> ``{"dataset", "regime", "seed"}`` (seed defaults to ``index``)."""
    parts = [p for p in label.split("/") if p != ""]
    if len(parts) not in (2, 3):
        raise DataError(f"label {label!r} must read DATASET/REGIME or DATASET/REGIME/SEED, e.g. mnist5k/baseline/0")
    seed = index
    if len(parts) == 3:
        text = parts[2].removeprefix("seed")
        if not text.isdigit():
            raise DataError(f"label {label!r}: the seed must be an integer, got {parts[2]!r}")
        seed = int(text)
    return {"dataset": parts[0], "regime": parts[1], "seed": seed}


def read_log(path: str | Path, run: dict | None = None) -> pd.DataFrame:
    """One probe log, checked, with ``dataset``, ``regime``, ``seed``, ``layer_index`` added."""
    path = Path(path)
    if not path.is_file():
        raise DataError(f"training log {path} does not exist; train the run first (it writes the probe log)")
    run = run or parse_run_path(path)
    if run is None:
        raise DataError(
            f"cannot tell which run {path} belongs to: its path does not read .../DATASET/REGIME/seedN...; "
            "pass --label DATASET/REGIME/SEED for every --logs file"
        )
    try:
        df = pd.read_csv(path)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
        raise DataError(f"training log {path} is not a readable CSV ({err})") from err
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise DataError(
            f"training log {path} lacks column(s) {', '.join(missing)}; a probe log needs "
            f"{', '.join(REQUIRED_COLUMNS)} (it has {', '.join(map(str, df.columns)) or 'none'})"
        )
    if df.empty:
        raise DataError(f"training log {path} has no rows; was the run's probe enabled (probe_points > 0)?")
    df = df.copy()
    df["step"] = pd.to_numeric(df["step"], errors="coerce")
    df["snnl"] = pd.to_numeric(df["snnl"], errors="coerce")
    if df["step"].isna().any() or (df["step"] < 0).any():
        raise DataError(f"training log {path}: column `step` must hold non-negative integers")
    df["layer"] = df["layer"].astype(str)
    order = {name: i for i, name in enumerate(dict.fromkeys(df["layer"]))}
    df["layer_index"] = df["layer"].map(order)
    for key in ("dataset", "regime", "seed"):
        df[key] = run[key]
    front = ["dataset", "regime", "seed", "step", "layer", "layer_index", "snnl"]
    return df[front + [c for c in df.columns if c not in front]]


def read_logs(paths: Sequence[str | Path], labels: Sequence[str] | None = None) -> pd.DataFrame:
    """All logs in one tidy frame; ``labels`` (one per path) override the path pattern."""
    if not paths:
        raise DataError("no training logs given; pass --logs FILE [FILE ...]")
    if labels and len(labels) != len(paths):
        raise DataError(f"{len(labels)} --label value(s) for {len(paths)} --logs file(s); give one label per file")
    frames = []
    for i, path in enumerate(paths):
        run = parse_label(labels[i], i) if labels else None
        frames.append(read_log(path, run))
    df = pd.concat(frames, ignore_index=True)
    dup = df.duplicated(["dataset", "regime", "seed", "step", "layer"])
    if dup.any():
        row = df[dup].iloc[0]
        raise DataError(
            f"two logs give run {row['dataset']}/{row['regime']}/seed{row['seed']} step {row['step']} layer "
            f"{row['layer']}: each (dataset, regime, seed) must come from one file (check the paths or --label)"
        )
    return df


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
