"""E3: the SNNL as a function of the temperature, for raw inputs and every layer of a model.

For each representation (pixel space, each hidden layer, the logits) the SNNL is
evaluated on a log-spaced grid of temperatures spanning ``decades`` decades either side
of the median pairwise squared distance: the same range :func:`snnl.optimal_temperature`
searches. The curve has a finite minimiser whenever the classes are neither perfectly
separated (then SNNL -> 0 as T -> 0) nor indistinguishable; as T -> infinity it tends to
the class-frequency baseline ``mean_i log((b - 1) / (n_{y_i} - 1))``. The minimiser on
the grid is reported next to :func:`snnl.optimal_temperature`'s answer (a grid search
refined by golden sections): they agree within one grid step.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from snnl.layers import INPUT, LOGITS, layer_outputs, resolve_layers
from snnl.loss import pairwise_distances, snnl_at_temperatures
from snnl.temperature import distance_scale, optimal_temperature

CURVE_COLUMNS = ["model", "layer", "layer_index", "log10_t", "snnl"]
MINIMA_COLUMNS = [
    "model", "layer", "layer_index", "log10_t_grid", "snnl_grid", "log10_t_optimal", "snnl_optimal",
    "at_boundary", "grid_step", "baseline",
]


@dataclass
class TemperatureCurve:
    """``curves``: one row per (layer, grid temperature); ``minima``: one row per layer."""

    curves: pd.DataFrame
    minima: pd.DataFrame


def baseline_snnl(labels: torch.Tensor) -> float:
    """The SNNL's limit as T -> infinity: ``mean_i log((b - 1) / (n_{y_i} - 1))`` over anchors
    with a same-class partner."""
    labels = torch.as_tensor(labels)
    counts = torch.bincount(labels)[labels].double()
    valid = counts >= 2
    b = labels.shape[0]
    return float(torch.log((b - 1) / (counts[valid] - 1)).mean())


def curve_for_features(
    features: torch.Tensor, labels: torch.Tensor, decades: float = 4.0, points: int = 81
) -> tuple[np.ndarray, np.ndarray, float]:
    """(log10 T grid, SNNL on it, grid step in log10 T) for one representation.

    The grid is centred (in log T) on the median positive pairwise squared distance, as in
    :func:`snnl.optimal_temperature`; distances are computed once, in float64.
    """
    with torch.no_grad():
        dist = pairwise_distances(features.detach().double())
        labels = torch.as_tensor(labels, device=dist.device)
        centre = math.log10(distance_scale(dist))
        grid = np.linspace(centre - decades, centre + decades, points)
        snnl_at = snnl_at_temperatures(dist, labels)
        values = np.array([float(snnl_at(10.0**g)) for g in grid])
    return grid, values, float(grid[1] - grid[0])


def representations(
    model: nn.Module | None,
    images: torch.Tensor,
    layers: Sequence[str] | None = None,
    include_input: bool = True,
    include_logits: bool = True,
    batch_size: int = 500,
) -> dict[str, torch.Tensor]:
    """Flattened features, keyed by layer name in network order: ``input`` (pixels in [0, 1]),
    the hidden layers (``model.hidden_layers`` unless ``layers`` is given) and ``logits``."""
    names = [INPUT] if include_input else []
    if model is not None:
        names += resolve_layers(model, "all" if layers is None else layers, logits=include_logits)
    if not names:
        raise ValueError("nothing to measure: give a model, or include the raw inputs")
    return layer_outputs(nn.Identity() if model is None else model, images, names, batch_size=batch_size, cpu=True)


def temperature_curve(
    model: nn.Module | None,
    images: torch.Tensor,
    labels: torch.Tensor,
    *,
    label: str = "model",
    layers: Sequence[str] | None = None,
    include_input: bool = True,
    include_logits: bool = True,
    decades: float = 4.0,
    points: int = 81,
    batch_size: int = 500,
) -> TemperatureCurve:
    """E3 for one model: SNNL against log10 T for each representation, and the minimisers.

    ``model``: any ``nn.Module`` taking [0, 1] images (``None``: raw inputs only), whose
    hidden layers are ``model.hidden_layers`` (or ``layers``). ``images``: uint8 or [0, 1]
    float (N, ...). ``labels``: int64 (N,).
    """
    labels = torch.as_tensor(labels).long().cpu()
    feats = representations(model, images, layers, include_input, include_logits, batch_size)
    baseline = baseline_snnl(labels)
    curve_rows, minima_rows = [], []
    for index, (name, x) in enumerate(feats.items()):
        grid, values, step = curve_for_features(x, labels, decades, points)
        opt = optimal_temperature(x, labels, decades=decades)
        best = int(np.argmin(values))
        curve_rows.append(pd.DataFrame({"model": label, "layer": name, "layer_index": index, "log10_t": grid, "snnl": values}))
        minima_rows.append(
            {
                "model": label, "layer": name, "layer_index": index,
                "log10_t_grid": float(grid[best]), "snnl_grid": float(values[best]),
                "log10_t_optimal": math.log10(opt.temperature), "snnl_optimal": float(opt.loss),
                "at_boundary": bool(opt.at_boundary), "grid_step": step, "baseline": baseline,
            }
        )
    return TemperatureCurve(pd.concat(curve_rows, ignore_index=True)[CURVE_COLUMNS], pd.DataFrame(minima_rows)[MINIMA_COLUMNS])


def combine(results: Sequence[TemperatureCurve]) -> TemperatureCurve:
    return TemperatureCurve(
        pd.concat([r.curves for r in results], ignore_index=True),
        pd.concat([r.minima for r in results], ignore_index=True),
    )


# ---------------------------------------------------------------------------------------
# figure


def plot(result: TemperatureCurve, title: str | None = None, regimes: dict[str, str] | None = None):
    """One panel per model; one curve per layer (pixels grey dotted, last layer black dashed),
    each minimiser marked by a dot (the grid's) and a cross (``optimal_temperature``'s); the
    T -> infinity baseline as a thin horizontal line. ``regimes`` maps a model label to its
    regime, which colours the panel title."""
    import matplotlib.pyplot as plt
    from matplotlib.lines import Line2D

    from snnl.figures import layer_styles, regime_color, set_style

    set_style()
    curves, minima = result.curves, result.minima
    models = list(dict.fromkeys(curves["model"]))
    n = len(models)
    fig, axes = plt.subplots(1, n, figsize=(5.6 * n + 2.2, 4.6), sharey=True, squeeze=False)
    all_layers = list(dict.fromkeys(curves.sort_values("layer_index", kind="stable")["layer"]))
    styles = layer_styles(all_layers, input_name=INPUT)
    for ax, model in zip(axes[0], models):
        c, m = curves[curves["model"] == model], minima[minima["model"] == model]
        for layer in dict.fromkeys(c["layer"]):
            part = c[c["layer"] == layer]
            style = styles[layer]
            ax.plot(part["log10_t"], part["snnl"], label=_layer_label(layer), **style)
            row = m[m["layer"] == layer].iloc[0]
            ax.plot(row["log10_t_grid"], row["snnl_grid"], "o", color=style["color"], markersize=6, zorder=5)
            ax.plot(row["log10_t_optimal"], row["snnl_optimal"], "x", color="black", markersize=5, zorder=6)
        if not m.empty:
            ax.axhline(float(m["baseline"].iloc[0]), color="0.4", linewidth=0.8, linestyle="-.", zorder=1)
        regime = (regimes or {}).get(model, model)
        ax.set_title(model, color=regime_color(regime))
        ax.set_xlabel("log$_{10}$ temperature T  (T in squared-distance units of each layer)")
    # the interesting region: from 0 to a little above the T -> infinity limit (at small T
    # the SNNL grows like 1/T and would flatten everything else; those parts leave the axes)
    top = 1.6 * max(float(minima["baseline"].max()), float(minima["snnl_grid"].max()), 1e-3)
    axes[0][0].set_ylim(0, top)
    axes[0][0].set_ylabel("SNNL (nats)")
    handles = [Line2D([], [], label=_layer_label(n), **styles[n]) for n in all_layers]
    handles += [
        Line2D([], [], marker="o", linestyle="none", color="0.3", label="minimum on the grid"),
        Line2D([], [], marker="x", linestyle="none", color="black", label="optimal_temperature"),
        Line2D([], [], color="0.4", linewidth=0.8, linestyle="-.", label="T → ∞ limit"),
    ]
    axes[0][-1].legend(handles=handles, loc="center left", bbox_to_anchor=(1.02, 0.5), fontsize="small", title="layer")
    fig.suptitle(
        title or "E3: SNNL against temperature for the raw inputs and each layer, minimiser marked\n"
        "(y axis cut at 1.6 × the T → ∞ limit; at small T the SNNL grows like 1/T)"
    )
    fig.tight_layout()
    return fig


def _layer_label(layer: str) -> str:
    if layer == INPUT:
        return "input (pixels)"
    if layer == LOGITS:
        return "logits (last layer)"
    return layer
