"""The project's plotting style: one place for colours, the theme and atomic PNG writing.

Every figure of the project should

  * use :data:`REGIME_COLORS` for the training regimes (:data:`snnl.regimes.REGIMES`) and
    :data:`REAL_FAKE_COLORS` for real vs generated data, so a colour means the same thing in
    every figure;
  * draw per-layer curves with :func:`layer_styles` (a sequential palette from the
    first to the last hidden layer; the last layer of the list, usually the logits,
    black and dashed so it stands out);
  * be written by :func:`save_figure` (temporary file + ``os.replace``, readable dpi,
    figure closed afterwards).

Importing this module selects matplotlib's non-interactive ``Agg`` backend, so no
figure ever opens a window (pipelines, CI, SSH sessions).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import seaborn as sns

from snnl.atomic import atomic_write

#: Colours of the two training regimes, everywhere in the project (colour-blind safe:
#: seaborn's "colorblind" blue and vermillion).
REGIME_COLORS: dict[str, str] = {"baseline": "#0173B2", "entangled": "#D55E00", "official": "#CA9161",
                                 "official_our_scale": "#CC78BC"}

#: Colours of real and generated (fake) data in the GAN experiment.
REAL_FAKE_COLORS: dict[str, str] = {"real": "#029E73", "fake": "#CC78BC"}

#: How raw inputs (pixel space) are drawn next to layer curves.
INPUT_STYLE: dict = {"color": "0.55", "linestyle": ":", "linewidth": 2.0}

#: How the last layer (the logits) is drawn among layer curves.
LAST_LAYER_STYLE: dict = {"color": "black", "linestyle": "--", "linewidth": 2.2}

#: The dpi of every PNG: readable in a report and on screen, a few hundred kB at most.
DPI = 150

_LAYER_PALETTE = "crest"


def set_style() -> None:
    """The seaborn theme of the project's figures (white grid, readable font sizes)."""
    sns.set_theme(context="notebook", style="whitegrid", font_scale=0.95)
    plt.rcParams.update(
        {
            "figure.dpi": 100,
            "savefig.dpi": DPI,
            "axes.titleweight": "bold",
            "figure.titleweight": "bold",
            "legend.frameon": True,
            "legend.framealpha": 0.9,
        }
    )


def regime_color(regime: str) -> str:
    """The colour of ``regime`` (:data:`REGIME_COLORS`); a neutral grey for anything else."""
    return REGIME_COLORS.get(str(regime), "0.3")


def class_palette(n: int) -> list:
    """``n`` distinguishable colours for classes (colour-blind-safe up to 10)."""
    if n <= 10:
        return sns.color_palette("colorblind", n)
    return sns.color_palette("husl", n)


def layer_styles(layers: Sequence[str], input_name: str | None = "input") -> dict[str, dict]:
    """Line styles for per-layer curves, keyed by layer name.

    Hidden layers get a sequential palette (light = early, dark = deep); the last
    entry of ``layers`` gets :data:`LAST_LAYER_STYLE` (black, dashed) and a layer named
    ``input_name`` (raw inputs, pixel space) gets :data:`INPUT_STYLE` (grey, dotted).
    """
    layers = list(dict.fromkeys(layers))
    styles: dict[str, dict] = {}
    if input_name is not None and input_name in layers:
        styles[input_name] = dict(INPUT_STYLE)
    hidden = [name for name in layers if name != input_name]
    if hidden:
        middle = hidden[:-1]
        for name, colour in zip(middle, sns.color_palette(_LAYER_PALETTE, max(len(middle), 1))):
            styles[name] = {"color": colour, "linestyle": "-", "linewidth": 1.8}
        styles[hidden[-1]] = dict(LAST_LAYER_STYLE)
    return {name: styles[name] for name in layers}


def save_figure(fig: matplotlib.figure.Figure, path: str | Path, dpi: int = DPI, close: bool = True) -> Path:
    """Save ``fig`` to ``path`` atomically (PNG unless the suffix says otherwise) and close it.

    The image goes to a temporary file next to ``path`` and is moved into place with
    ``os.replace``, so a killed job never leaves a truncated figure behind.
    """
    path = Path(path)
    fmt = path.suffix.lstrip(".").lower() or "png"
    try:
        atomic_write(path, lambda fh: fig.savefig(fh, format=fmt, dpi=dpi, bbox_inches="tight", facecolor="white"))
    finally:
        if close:
            plt.close(fig)
    return path


def legend_outside(ax, handles: Iterable | None = None, labels: Iterable | None = None, title: str | None = None):
    """A legend to the right of ``ax`` (keeps the curves unobstructed)."""
    kwargs = {"loc": "center left", "bbox_to_anchor": (1.02, 0.5), "title": title, "fontsize": "small"}
    if handles is not None:
        return ax.legend(list(handles), list(labels or []), **kwargs)
    return ax.legend(**kwargs)


def notice_figure(title: str, text: str, path: str | Path) -> Path:
    """A figure that only says why the figure expected at ``path`` has nothing to show (e.g. a run
    it needs diverged), so that a report keeps its slot and says so; saved with :func:`save_figure`."""
    import textwrap

    fig, ax = plt.subplots(figsize=(7, 2.2))
    ax.axis("off")
    ax.set_title(title)
    ax.text(0.5, 0.5, textwrap.fill(text, 90), ha="center", va="center", fontsize="medium", transform=ax.transAxes)
    return save_figure(fig, path)
