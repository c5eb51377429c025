"""Baseline vs entangled: figures and a merged detection table from finished evaluations
(the command is `snnl compare-regimes`, :mod:`snnl.commands.compare_regimes`).

Outputs (each optional; with ``out`` a folder, the ones not named go there under these names):

    detection       detection_compare.csv        every evaluation's detection.csv with a ``regime`` column
    confidence      confidence_compare.png       max-softmax histograms, one colour per regime (E8)
    tsne_layers     tsne_layers_compare.png      t-SNE of the hidden layers, one row per regime (E7)
    tsne_gradients  tsne_gradients_compare.png   t-SNE of the sign gradients, one panel per regime (E10)

A t-SNE figure needs that embedding in every evaluation (or, for the gradients, the reason
it was skipped); :func:`missing_embeddings` says why one cannot be drawn.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from snnl.errors import DataError, is_diverged
from snnl.evaluate.outputs import (
    DETECTION_CSV,
    SAMPLES_CSV,
    SUMMARY_JSON,
    TSNE_GRADIENTS_CSV,
    TSNE_GRADIENTS_IMAGES,
    TSNE_LAYERS_CSV,
    write_csv,
)
from snnl.evaluate.samples import DETECTION_COLUMNS

COMPARE_FILES = {
    "detection": "detection_compare.csv",
    "confidence": "confidence_compare.png",
    "tsne_layers": "tsne_layers_compare.png",
    "tsne_gradients": "tsne_gradients_compare.png",
}


@dataclass
class Evaluations:
    """Several regimes' evaluation folders, read back: ``regime -> ...`` or per-regime frames."""

    regimes: list[str]
    summaries: dict[str, dict[str, Any]] = field(default_factory=dict)
    detection: list[pd.DataFrame] = field(default_factory=list)
    confidence: list[pd.DataFrame] = field(default_factory=list)
    tsne_layers: list[pd.DataFrame] = field(default_factory=list)
    layer_skips: dict[str, dict[str, str]] = field(default_factory=dict)
    tsne_gradients: list[pd.DataFrame] = field(default_factory=list)
    images: dict[str, np.ndarray] = field(default_factory=dict)
    snnl: dict[str, float | None] = field(default_factory=dict)
    gradient_notes: dict[str, str] = field(default_factory=dict)
    diverged: dict[str, dict[str, Any]] = field(default_factory=dict)  # regime -> {step, epoch, reason}

    @property
    def classes(self) -> list[str]:
        return self.summaries[self.regimes[0]]["dataset"]["classes"]

    @property
    def has_layers(self) -> bool:
        return len(self.tsne_layers) == len(self.regimes)

    @property
    def has_gradients(self) -> bool:  # every regime embedded its gradients or said why not
        return len(self.tsne_gradients) + len(self.gradient_notes) == len(self.regimes)


def read_evaluations(dirs: dict[str, str | Path]) -> Evaluations:
    """Read the folders ``{regime: OUT of snnl evaluate}``.

    Raises:
        DataError: a folder has no summary.json (its evaluation has not finished).
    """
    ev = Evaluations(list(dirs))
    for regime, d in dirs.items():
        d = Path(d)
        path = d / SUMMARY_JSON
        if not path.is_file():
            raise DataError(f"{path} does not exist: run `snnl evaluate ... --out {d}` first")
        ev.summaries[regime] = summary = json.loads(path.read_text())
        if is_diverged(summary):
            ev.diverged[regime] = summary["diverged"]
            continue
        ev.detection.append(pd.read_csv(d / DETECTION_CSV).assign(regime=regime))
        s = pd.read_csv(d / SAMPLES_CSV, usecols=["set", "kind", "msp"])
        ev.confidence.append(s[s["kind"].isin(["test", "outlier"])].assign(regime=regime))
        embeddings = summary.get("embeddings") or {}
        if (d / TSNE_LAYERS_CSV).is_file():
            ev.tsne_layers.append(pd.read_csv(d / TSNE_LAYERS_CSV).assign(regime=regime))
            ev.layer_skips[regime] = (embeddings.get("layers") or {}).get("skipped") or {}
        grad = embeddings.get("gradients") or {}
        if (d / TSNE_GRADIENTS_CSV).is_file():
            ev.tsne_gradients.append(pd.read_csv(d / TSNE_GRADIENTS_CSV).assign(regime=regime))
            ev.images[regime] = np.load(d / TSNE_GRADIENTS_IMAGES, allow_pickle=False)
            ev.snnl[regime] = grad.get("snnl_sign_gradients")
        elif grad.get("skipped"):
            ev.gradient_notes[regime] = grad["skipped"]
    return ev


def output_paths(out: str | Path | None = None, **paths: str | Path | None) -> dict[str, Path]:
    """``{output: path}``: the paths given, then (with ``out``) the default names in ``out`` for the rest.

    Raises:
        ValueError: an unknown output name.
    """
    unknown = sorted(set(paths) - set(COMPARE_FILES))
    if unknown:
        raise ValueError(f"unknown compare output(s) {unknown}; choose from {sorted(COMPARE_FILES)}")
    chosen = {name: Path(p) for name, p in paths.items() if p is not None}
    if out is not None:
        for name, filename in COMPARE_FILES.items():
            chosen.setdefault(name, Path(out) / filename)
    return {name: chosen[name] for name in COMPARE_FILES if name in chosen}


def missing_embeddings(ev: Evaluations, outputs: dict[str, Path]) -> list[str]:
    """Why each requested t-SNE figure cannot be drawn from ``ev`` (empty when all can, or when a
    run diverged: then every figure is a notice, :func:`draw_diverged`)."""
    why = []
    if ev.diverged:
        return why
    if "tsne_layers" in outputs and not ev.has_layers:
        why.append("tsne_layers: an evaluation has no tsne_layers.csv (evaluate.tsne_size < 4)")
    if "tsne_gradients" in outputs and not ev.has_gradients:
        why.append("tsne_gradients: an evaluation has no gradient t-SNE (evaluate.gradient_tsne_size < 4)")
    return why


def compare_regimes(dirs: dict[str, str | Path], out: str | Path | None = None,
                    **paths: str | Path | None) -> list[Path]:
    """Figures and a merged detection table for evaluations of several regimes.

    ``dirs`` maps a regime name (``baseline``, ``entangled``) to an OUT folder of
    :func:`snnl.evaluate.evaluate`. ``out``: a folder for the outputs under their default
    names (``detection_compare.csv``, ``confidence_compare.png``, ``tsne_layers_compare.png``,
    ``tsne_gradients_compare.png``); ``paths`` (``detection=``, ``confidence=``,
    ``tsne_layers=``, ``tsne_gradients=``) put single outputs elsewhere. A t-SNE figure is
    written only when every evaluation has that embedding. Returns the paths written."""
    return draw_comparison(read_evaluations(dirs), output_paths(out, **paths))


def draw_comparison(ev: Evaluations, outputs: dict[str, Path]) -> list[Path]:
    """Write ``outputs`` ({output: path}, see :func:`output_paths`) from the evaluations ``ev``;
    a t-SNE figure only where every evaluation has that embedding. Returns the paths written."""
    from snnl.evaluate import plots

    if ev.diverged:
        return draw_diverged(ev, outputs)
    written = []
    if "detection" in outputs:
        table = pd.concat(ev.detection, ignore_index=True)
        write_csv(outputs["detection"], table[["regime"] + [c for c in table.columns if c != "regime"]])
        written.append(outputs["detection"])
    if "confidence" in outputs:
        written.append(plots.plot_confidence(pd.concat(ev.confidence, ignore_index=True), outputs["confidence"],
                                             regimes=ev.regimes))
    if "tsne_layers" in outputs and ev.has_layers:
        written.append(plots.plot_tsne_layers(pd.concat(ev.tsne_layers, ignore_index=True), ev.classes,
                                              outputs["tsne_layers"], regimes=ev.regimes,
                                              dataset=ev.summaries[ev.regimes[0]]["dataset"]["name"],
                                              skipped=ev.layer_skips))
    if "tsne_gradients" in outputs and ev.has_gradients:
        frames = ev.tsne_gradients or [pd.DataFrame(columns=["regime", "index", "label", "x", "y"])]
        written.append(plots.plot_tsne_gradients(pd.concat(frames, ignore_index=True), ev.images, ev.classes,
                                                 outputs["tsne_gradients"], regimes=ev.regimes,
                                                 snnl={k: v for k, v in ev.snnl.items() if v is not None},
                                                 notes=ev.gradient_notes))
    return written


def draw_diverged(ev: Evaluations, outputs: dict[str, Path]) -> list[Path]:
    """``outputs`` when a compared run diverged (its summary says ``diverged``): the detection
    table of the runs that finished (no rows if none did), and each figure a notice naming the
    diverged run, since a comparison without one side would mislead. Returns the paths written."""
    from snnl.figures import notice_figure

    runs = "; ".join(f"{r} (seed {ev.summaries[r]['checkpoint'].get('seed')}) diverged at step {d.get('step')}: "
                     f"{d.get('reason')}" for r, d in ev.diverged.items())
    written = []
    for name, path in outputs.items():
        if name == "detection":
            table = pd.concat([pd.DataFrame(columns=["regime", *DETECTION_COLUMNS]), *ev.detection], ignore_index=True)
            write_csv(path, table[["regime", *DETECTION_COLUMNS]])
            written.append(path)
        else:
            written.append(notice_figure(f"{name}: no comparison", f"{runs}. A diverged run has no model to "
                                         "compare; see the claims table for how it was counted.", path))
    return written
