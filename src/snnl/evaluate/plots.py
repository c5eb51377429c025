"""Figures of the evaluation, drawn with the project's style (:mod:`snnl.figures`).

Per checkpoint (`snnl evaluate`):
  * ``tsne_layers.png`` (E7): one panel per hidden layer, points coloured by class;
  * ``tsne_gradients.png`` (E10): t-SNE of sign(grad_x CE), drawn as the images
    themselves and coloured by class;
  * ``confidence.png`` (E8): max-softmax histograms, test vs each outlier set.

Baseline vs entangled (`snnl compare-regimes`, :mod:`snnl.evaluate.compare`): the same
three figures with one row (or colour) per regime, read back from the CSVs.
"""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd

from snnl.figures import class_palette, legend_outside, regime_color, save_figure, set_style


def _plt():
    import matplotlib.pyplot as plt

    set_style()
    return plt


def _class_scatter(ax, x, y, labels, classes: Sequence[str], size: float = 6.0) -> None:
    colours = class_palette(len(classes))
    labels = np.asarray(labels)
    for c, name in enumerate(classes):
        m = labels == c
        if m.any():
            ax.scatter(x[m], y[m], s=size, color=colours[c], label=str(name), linewidths=0, alpha=0.85)
    ax.set_xticks([])
    ax.set_yticks([])


def _note(ax, text: str) -> None:
    """An empty panel that says ``text`` (why there is nothing to draw)."""
    import textwrap

    ax.text(0.5, 0.5, textwrap.fill(text, 38), ha="center", va="center", fontsize="small", color="0.3",
            transform=ax.transAxes)
    ax.set_xticks([])
    ax.set_yticks([])


def _class_legend(axes) -> None:
    """The class legend to the right of the top-right panel, taken from the first panel that
    has labelled points (a panel may hold only a note)."""
    for ax in np.ravel(axes):
        handles, labels = ax.get_legend_handles_labels()
        if handles:
            legend_outside(axes[0][-1], handles, labels, title="class")
            return


def plot_tsne_layers(df: pd.DataFrame, classes: Sequence[str], path: str | Path, *, regimes: Sequence[str] = ("",),
                     dataset: str | None = None, layers: Sequence[str] | None = None,
                     skipped: dict[str, dict[str, str]] | None = None) -> Path:
    """``df`` columns: regime (optional), layer, label, x, y. One row of panels per regime,
    one column per layer (``layers``, default: those in ``df`` then those in ``skipped``).
    ``skipped[regime][layer]``: why that panel has no embedding (drawn as a note)."""
    plt = _plt()
    if "regime" not in df.columns:
        df = df.assign(regime="")
    skipped = skipped or {}
    if layers is None:
        layers = list(dict.fromkeys([*df["layer"], *(name for s in skipped.values() for name in s)]))
    layers = list(layers) or ["(no layers)"]
    fig, axes = plt.subplots(len(regimes), len(layers), figsize=(3.0 * len(layers) + 1.5, 3.0 * len(regimes)),
                             squeeze=False)
    for r, regime in enumerate(regimes):
        for c, layer in enumerate(layers):
            ax = axes[r][c]
            sub = df[(df["regime"] == regime) & (df["layer"] == layer)]
            reason = skipped.get(regime, {}).get(layer)
            if sub.empty and reason:
                _note(ax, f"t-SNE skipped: {reason}")
            else:
                _class_scatter(ax, sub["x"].to_numpy(), sub["y"].to_numpy(), sub["label"].to_numpy(), classes)
            if r == 0:
                ax.set_title(layer)
            if c == 0 and regime:
                ax.set_ylabel(regime, color=regime_color(regime), fontweight="bold")
    _class_legend(axes)
    fig.suptitle(f"t-SNE of hidden layers ({dataset})" if dataset else "t-SNE of hidden layers", y=1.02)
    return save_figure(fig, path)


def _image_thumbs(ax, x, y, images: np.ndarray) -> None:
    from matplotlib.offsetbox import AnnotationBbox, OffsetImage

    h = images.shape[-2]
    zoom = max(0.25, min(1.0, 18.0 / h))
    for xi, yi, img in zip(x, y, images):
        if img.shape[0] == 1:
            box = OffsetImage(img[0], cmap="gray_r", zoom=zoom)
        else:
            box = OffsetImage(np.transpose(img, (1, 2, 0)), zoom=zoom)
        ax.add_artist(AnnotationBbox(box, (xi, yi), frameon=False, pad=0.0))
    ax.update_datalim(np.column_stack([x, y]))
    ax.autoscale()
    ax.set_xticks([])
    ax.set_yticks([])


def plot_tsne_gradients(df: pd.DataFrame, images: dict[str, np.ndarray], classes: Sequence[str], path: str | Path, *,
                        regimes: Sequence[str] = ("",), snnl: dict[str, float] | None = None,
                        notes: dict[str, str] | None = None) -> Path:
    """``df`` columns: regime (optional), index, label, x, y; ``images[regime]`` the (n, C, H, W)
    uint8 images in the row order of that regime's rows. Two panels per regime: the images
    at their t-SNE positions, and the points coloured by class. A regime in ``notes`` (no
    embedding, e.g. all sign gradients zero) gets its reason written in both panels."""
    plt = _plt()
    if "regime" not in df.columns:
        df = df.assign(regime="")
    notes = notes or {}
    fig, axes = plt.subplots(len(regimes), 2, figsize=(11.5, 5.0 * len(regimes)), squeeze=False)
    for r, regime in enumerate(regimes):
        sub = df[df["regime"] == regime]
        label = f"{regime} " if regime else ""
        if regime in notes:
            for ax in axes[r]:
                _note(ax, f"t-SNE of sign(grad_x CE) skipped: {notes[regime]}")
        else:
            x, y = sub["x"].to_numpy(), sub["y"].to_numpy()
            _image_thumbs(axes[r][0], x, y, images[regime])
            _class_scatter(axes[r][1], x, y, sub["label"].to_numpy(), classes, size=28.0)
        extra = f" (SNNL of sign gradients {snnl[regime]:.3f})" if snnl and regime in snnl else ""
        axes[r][0].set_title(f"{label}images at t-SNE of sign(grad_x CE){extra}", fontsize="small",
                             color=regime_color(regime) if regime else "black")
        axes[r][1].set_title(f"{label}coloured by class", fontsize="small")
    _class_legend(axes)
    return save_figure(fig, path)


def plot_confidence(df: pd.DataFrame, path: str | Path, *, regimes: Sequence[str] = ("",)) -> Path:
    """``df`` columns: regime (optional), set, msp. One panel per set (test first), one
    histogram per regime (regime colours); or, with a single unnamed regime, one panel with
    a histogram per set."""
    plt = _plt()
    if "regime" not in df.columns:
        df = df.assign(regime="")
    sets = list(dict.fromkeys(df["set"]))
    bins = np.linspace(0.0, 1.0, 26)
    if regimes == ("",) or list(regimes) == [""]:
        fig, ax = plt.subplots(figsize=(6.5, 4.0))
        colours = ["0.35"] + list(class_palette(max(len(sets) - 1, 1)))
        for colour, name in zip(colours, sets):
            v = df.loc[df["set"] == name, "msp"].to_numpy()
            ax.hist(v, bins=bins, density=True, histtype="step", linewidth=2.0, color=colour,
                    label=f"{name} (mean {v.mean():.3f})")
        ax.set_xlabel("max softmax probability")
        ax.set_ylabel("density")
        legend_outside(ax)
    else:
        fig, axes = plt.subplots(1, len(sets), figsize=(3.6 * len(sets) + 1.5, 3.4), squeeze=False)
        for c, name in enumerate(sets):
            ax = axes[0][c]
            for regime in regimes:
                v = df.loc[(df["set"] == name) & (df["regime"] == regime), "msp"].to_numpy()
                if v.size:
                    ax.hist(v, bins=bins, density=True, histtype="step", linewidth=2.0, color=regime_color(regime),
                            label=f"{regime} (mean {v.mean():.3f})")
            ax.set_title(name)
            ax.set_xlabel("max softmax probability")
            ax.legend(fontsize="x-small", loc="upper left")
        axes[0][0].set_ylabel("density")
    fig.suptitle("confidence on test and outlier data", y=1.02)
    return save_figure(fig, path)
