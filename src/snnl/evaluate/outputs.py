"""The write stage of `snnl evaluate`: the files of one evaluation folder (listed in
:mod:`snnl.evaluate.run`), each written atomically, ``summary.json`` last."""

from __future__ import annotations

import io
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd

from snnl.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text, json_safe

SAMPLES_CSV = "samples.csv"
DETECTION_CSV = "detection.csv"
ATTACKS_CSV = "attacks.csv"
TSNE_LAYERS_CSV = "tsne_layers.csv"
TSNE_GRADIENTS_CSV = "tsne_gradients.csv"
TSNE_GRADIENTS_IMAGES = "tsne_gradients_images.npy"
SUMMARY_JSON = "summary.json"
FIGURES = ("confidence.png", "tsne_layers.png", "tsne_gradients.png")
OUTPUTS = {SAMPLES_CSV, DETECTION_CSV, ATTACKS_CSV, TSNE_LAYERS_CSV, TSNE_GRADIENTS_CSV, TSNE_GRADIENTS_IMAGES,
           SUMMARY_JSON, *FIGURES}
ATTACK_COLUMNS = ["attack", "epsilon", "n", "clean_accuracy", "accuracy", "success_rate", "mean_confidence"]


def write_csv(path: Path, df: pd.DataFrame) -> None:
    """``df`` without its index, floats with 8 significant digits, atomically."""
    atomic_write_text(path, df.to_csv(index=False, float_format="%.8g"))


def write_npy(path: Path, array: np.ndarray) -> None:
    buf = io.BytesIO()
    np.save(buf, array, allow_pickle=False)
    atomic_write_bytes(path, buf.getvalue())


def file_list(figures: Sequence[str], layers: bool, gradients: bool) -> list[str]:
    """``summary["files"]``: every file the folder holds once the run has finished."""
    return sorted([SAMPLES_CSV, DETECTION_CSV, ATTACKS_CSV, SUMMARY_JSON]
                  + ([TSNE_LAYERS_CSV] if layers else [])
                  + ([TSNE_GRADIENTS_CSV, TSNE_GRADIENTS_IMAGES] if gradients else [])
                  + list(figures))


def write_figures(out: Path, classes: Sequence[str], samples: pd.DataFrame, tsne_df: pd.DataFrame | None,
                  grad_df: pd.DataFrame | None, grad_images: np.ndarray | None, *, regime: str | None,
                  dataset: str | None, embeddings: dict[str, Any]) -> list[str]:
    """confidence.png, and tsne_layers.png / tsne_gradients.png where those embeddings ran
    (an embedding that was skipped is drawn as a note saying why); return their names."""
    from snnl.evaluate import plots

    written = []
    key = regime or ""
    conf = samples[samples["kind"].isin(["test", "outlier"])][["set", "msp"]]
    plots.plot_confidence(conf, out / "confidence.png")
    written.append("confidence.png")
    if tsne_df is not None:
        info = embeddings["layers"]
        plots.plot_tsne_layers(tsne_df.assign(regime=key), classes, out / "tsne_layers.png", regimes=(key,),
                               dataset=dataset, layers=info["layers"], skipped={key: info["skipped"]})
        written.append("tsne_layers.png")
    grad = embeddings.get("gradients")
    if grad is not None:
        frame = grad_df if grad_df is not None else pd.DataFrame(columns=["index", "label", "x", "y"])
        snnl = grad["snnl_sign_gradients"]
        plots.plot_tsne_gradients(frame.assign(regime=key), {key: grad_images}, classes, out / "tsne_gradients.png",
                                  regimes=(key,), snnl={key: snnl} if snnl is not None and math.isfinite(snnl) else None,
                                  notes={key: grad["skipped"]} if grad["skipped"] else None)
        written.append("tsne_gradients.png")
    return written


def finish(out: Path, summary: dict[str, Any], tsne_df: pd.DataFrame | None, grad_df: pd.DataFrame | None,
           grad_images: np.ndarray | None) -> dict[str, Any]:
    """Write the embeddings' files, remove outputs an earlier run with other settings left,
    then summary.json (JSON-safe); return the summary as written."""
    summary = json_safe(summary)
    if tsne_df is not None:
        write_csv(out / TSNE_LAYERS_CSV, tsne_df)
    if grad_df is not None:
        write_csv(out / TSNE_GRADIENTS_CSV, grad_df)
        write_npy(out / TSNE_GRADIENTS_IMAGES, grad_images)
    for stale in OUTPUTS - set(summary["files"]):  # left by an earlier run with other settings
        (out / stale).unlink(missing_ok=True)
    atomic_write_json(out / SUMMARY_JSON, summary)
    return summary


def write_diverged(out: Path, checkpoint: dict[str, Any]) -> dict[str, Any]:
    """The evaluation folder of a run that diverged (``checkpoint``: the info of
    :func:`snnl.evaluate.sets.checkpoint_info`, with ``diverged``): samples.csv and detection.csv
    with their columns and no rows, no other file, and summary.json = {checkpoint, diverged,
    files}. Readers check :func:`snnl.errors.is_diverged` on the summary and use none of it."""
    from snnl.evaluate.samples import DETECTION_COLUMNS, SAMPLE_COLUMNS

    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / SAMPLES_CSV, pd.DataFrame(columns=SAMPLE_COLUMNS))
    write_csv(out / DETECTION_CSV, pd.DataFrame(columns=DETECTION_COLUMNS))
    summary = {"checkpoint": checkpoint, "diverged": checkpoint["diverged"], "files": [SAMPLES_CSV, DETECTION_CSV]}
    return finish(out, summary, None, None, None)
