"""The figure of `snnl analyze`: per-layer SNNL at the optimal temperature with its interval
(the paper's per-layer plots), and the per-class same-class-neighbour counts per layer."""

from __future__ import annotations

import math
from typing import Sequence

import numpy as np
import pandas as pd

from snnl.figures import layer_styles, set_style


def plot_analysis(table: pd.DataFrame, classes: Sequence[str], *, level: float = 0.95, title: str | None = None):
    """A two-panel matplotlib Figure from :attr:`snnl.analysis.Analysis.table` (layers in its
    row order, the forward order).

    Left: the SNNL at the optimal temperature per layer, error bars the bootstrap interval over
    batches, the optimal temperature written above each point (few layers), and the T -> infinity
    limit (no class structure) as a grey dashed line. Right: the mean number of same-class points
    among each point's k nearest neighbours, per class (rows) and layer (columns); values written
    in the cells when the grid is small."""
    import matplotlib.pyplot as plt
    import seaborn as sns

    from snnl.analysis.run import neighbour_column

    set_style()
    layers = [str(v) for v in table["layer"]]
    n_layers, n_classes = len(layers), len(classes)
    width = max(11.0, 2.0 + 1.4 * n_layers)
    height = max(4.6, min(0.32 * n_classes + 2.2, 14.0))
    fig, (ax, hm) = plt.subplots(1, 2, figsize=(width, height), gridspec_kw={"width_ratios": [1.15, 1.0]})
    styles = layer_styles(layers, input_name=None)
    x = np.arange(n_layers)
    snnl = table["snnl"].to_numpy(float)
    lo, hi = table["snnl_ci_low"].to_numpy(float), table["snnl_ci_high"].to_numpy(float)
    for i, name in enumerate(layers):
        err = None if math.isnan(lo[i]) else [[snnl[i] - lo[i]], [hi[i] - snnl[i]]]
        ax.errorbar(x[i], snnl[i], yerr=err, fmt="o", color=styles[name]["color"], markersize=7, capsize=5,
                    elinewidth=1.8)
        if n_layers <= 12:
            ax.annotate(f"T*={table['temperature'].iloc[i]:.3g}", (x[i], hi[i] if not math.isnan(hi[i]) else snnl[i]),
                        textcoords="offset points", xytext=(0, 7), ha="center", fontsize="x-small", color="0.3")
    ax.plot(x, snnl, color="0.6", linewidth=1.0, zorder=0)
    ax.plot(x, table["baseline"].to_numpy(float), color="0.5", linestyle="--", linewidth=1.2,
            label="T → ∞ limit (no class structure)")
    batches, size = int(table["batches"].iloc[0]), int(table["batch_size"].iloc[0])
    ax.set_ylabel("SNNL at the optimal temperature")
    ax.set_title(f"SNNL per layer (mean of {batches} batches of {size};\n"
                 f"bars: {level:.0%} bootstrap interval over batches)", fontsize="medium")
    ax.set_xticks(x, layers, rotation=30 if n_layers > 4 or max(map(len, layers)) > 8 else 0, ha="right"
                  if n_layers > 4 or max(map(len, layers)) > 8 else "center")
    ax.set_xlabel("layer (forward order)")
    ax.set_ylim(bottom=0)
    ax.legend(loc="lower left", fontsize="small")

    k = int(table["k"].iloc[0])
    grid = pd.DataFrame({c: table[neighbour_column(c)].to_numpy(float) for c in classes}, index=layers).T
    annotate = n_classes <= 12 and n_layers <= 12
    sns.heatmap(grid, ax=hm, vmin=0, vmax=k, cmap="viridis", annot=annotate, fmt=".1f",
                annot_kws={"fontsize": "x-small"}, cbar_kws={"label": f"same-class points among the {k} nearest"},
                yticklabels=n_classes <= 40)
    hm.set_xlabel("layer (forward order)")
    hm.set_ylabel("class")
    hm.set_title(f"Same-class neighbours per class (k = {k})", fontsize="medium")
    hm.set_xticklabels(layers, rotation=30 if n_layers > 4 else 0, ha="right" if n_layers > 4 else "center")
    hm.tick_params(axis="y", labelrotation=0)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    return fig
