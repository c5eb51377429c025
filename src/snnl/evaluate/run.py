"""`snnl evaluate`: one checkpoint, its dataset and its outlier sets -> CSVs, a JSON summary, figures.

Outputs in OUT (each written atomically; ``summary.json`` last, so its presence means the
run finished):

  samples.csv          one row per sample of every evaluated set: set, kind (test, val,
                       outlier, adversarial), attack, epsilon, index (into the source
                       split), label (-1 for outliers), pred, correct, msp (max softmax),
                       clean_pred / success (adversarial rows), and the detection scores
                       snnl_<layer>, snnl_combined, knn_<layer>, knn_combined
  detection.csv        comparison (ood:<set> / adv:<attack>:<eps>), score, layer, n_neg,
                       n_pos, auroc, aupr, fpr95  (score msp = 1 - max softmax)
  attacks.csv          attack, epsilon, n, clean_accuracy, accuracy, success_rate, mean_confidence
  tsne_layers.csv      layer, index, label, pred, x, y                       (E7)
  tsne_gradients.csv   index, label, pred, x, y  + tsne_gradients_images.npy (E10)
  tsne_layers.png, tsne_gradients.png, confidence.png
  summary.json         accuracy, ECE, confidences, attacks, detection, temperatures, settings

An embedding with nothing to embed (every point identical: a dead layer, or a model whose
input gradient is zero for every image) is skipped, never a crash: summary.json says why
(``embeddings.layers.skipped`` {layer: reason}, ``embeddings.gradients.skipped`` reason or
null), the figure shows the reason in place of the points, and the skipped gradient
embedding writes no tsne_gradients.csv / .npy.

Protocol (see docs/DEVIATIONS.md): the reference set is a stratified sample of the
training split; the z-scores that combine layers are fitted on the validation split
(or, for data without one, on training points outside the reference set); adversarial
detection compares successful adversarial examples (clean prediction right, attacked
prediction wrong) with the clean versions of the correctly classified attacked images.

Where each step lives: the sets and their subsets in :mod:`snnl.evaluate.sets`, the stages
(reference, clean sets, calibration, outliers, attacks, embeddings) in
:mod:`snnl.evaluate.stages`, the rows they gather in :mod:`snnl.evaluate.samples`, the files
in :mod:`snnl.evaluate.outputs`; baseline-vs-entangled figures in :mod:`snnl.evaluate.compare`.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from snnl.evaluate.config import EvaluateConfig
from snnl.evaluate.detection import Reference
from snnl.evaluate.outputs import (
    ATTACK_COLUMNS,
    ATTACKS_CSV,
    DETECTION_CSV,
    SAMPLES_CSV,
    SUMMARY_JSON,
    file_list,
    finish,
    write_csv,
    write_figures,
)
from snnl.evaluate.samples import Results, detection_scores
from snnl.evaluate.sets import check_compatible, checkpoint_info, stratified_subset
from snnl.evaluate.stages import (
    Clean,
    GradientEmbedding,
    Stage,
    attack_stage,
    calibration_stage,
    clean_stage,
    gradient_embedding_stage,
    layer_embedding_stage,
    outlier_stage,
    reference_stage,
)
from snnl.layers import resolve_layers

__all__ = ["evaluate", "stratified_subset"]


def evaluate(
    model: nn.Module,
    data: Any,
    outliers: dict[str, Any],
    cfg: EvaluateConfig,
    out: str | Path,
    *,
    checkpoint: dict[str, Any] | None = None,
    device: str | torch.device = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate ``model`` on the prepared dataset ``data`` (``.train``, ``.test``, optional
    ``.val``, ``.classes``, ``.shape``) and the outlier sets (each with ``.test``), write the
    outputs into ``out`` and return the summary.

    Raises:
        DataError: the model, the data and the outlier sets do not fit together, or a set is
            too small for a stage.
        ConfigError: ``cfg.layers`` names modules the model does not have."""
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # a summary from an earlier run must not outlive a run that fails half-way
    (out / SUMMARY_JSON).unlink(missing_ok=True)
    torch.manual_seed(cfg.seed)
    device = torch.device(device)
    model.to(device).eval()
    st = Stage(model, cfg, device, resolve_layers(model, cfg.layers, key="evaluate.layers"), progress)
    check_compatible(model, data, outliers, checkpoint)
    m = measure(st, data, outliers)
    figures = write_tables_and_figures(st, out, data, checkpoint, m)
    summary = {
        "checkpoint": checkpoint_info(checkpoint),
        "dataset": dataset_info(data),
        "outlier_sets": {name: {"name": getattr(o, "name", name), "n_available": int(o.test[1].shape[0])}
                         for name, o in outliers.items()},
        "config": cfg.to_dict(),
        "epsilons": m.epsilons,
        "device": str(device),
        "layers": st.layers,
        "test": m.test,
        "outliers": m.outliers,
        "attacks": m.attacks,
        "reference": reference_info(m.reference),
        "combine": combine_info(m.clean),
        "detection": m.results.detection,
        "embeddings": m.embeddings,
        "files": file_list(figures, m.tsne_layers is not None, m.gradients_frame is not None),
        "timings_s": st.timings,
        "wall_time_s": round(time.perf_counter() - t_start, 3),
    }
    summary = finish(out, summary, m.tsne_layers, m.gradients_frame, m.gradients_images)
    st.say(f"done in {summary['wall_time_s']:.1f} s: test accuracy {m.test['accuracy']:.4f}, "
           f"ECE {m.test['ece']:.4f}; outputs in {out}")
    return summary


@dataclass
class Measured:
    """Everything the stages measured, before anything is written."""

    reference: Reference
    clean: Clean
    results: Results
    test: dict[str, Any]
    outliers: dict[str, dict]
    epsilons: list[float]
    attacks: list[dict]
    tsne_layers: pd.DataFrame | None
    embeddings: dict[str, Any]
    gradients: GradientEmbedding | None

    @property
    def gradients_frame(self) -> pd.DataFrame | None:
        return self.gradients.frame if self.gradients else None

    @property
    def gradients_images(self) -> np.ndarray | None:
        return self.gradients.images if self.gradients else None


def measure(st: Stage, data: Any, outliers: dict[str, Any]) -> Measured:
    """Run the stages in order (reference, clean sets, calibration, outliers, attacks,
    embeddings), timing each in ``st.timings``."""
    reference, ref_idx = reference_stage(st, data)
    st.lap("reference")
    clean = clean_stage(st, data, reference, ref_idx)
    st.lap("clean")
    results = Results(clean.combine)
    test_det = detection_scores(results.add("test", "test", np.arange(len(clean.test)), clean.test_y.numpy(),
                                            clean.test))
    results.add(clean.fit_set.name, "val", clean.fit_set.indices, np.asarray(clean.fit_set.labels), clean.fit)
    test = calibration_stage(st, clean)
    summary_outliers = outlier_stage(st, outliers, reference, results, test_det)
    st.lap("outliers")
    epsilons = st.cfg.epsilons_for(int(data.shape[0]))
    attack_rows = attack_stage(st, clean, reference, results, test_det, epsilons)
    st.lap("attacks")
    tsne_df, layers_info = layer_embedding_stage(st, clean)
    st.lap("tsne_layers")
    grad = gradient_embedding_stage(st, clean)
    st.lap("tsne_gradients")
    embeddings = {**({"layers": layers_info} if layers_info else {}), **({"gradients": grad.info} if grad else {})}
    return Measured(reference, clean, results, test, summary_outliers, epsilons, attack_rows, tsne_df, embeddings,
                    grad)


def write_tables_and_figures(st: Stage, out: Path, data: Any, checkpoint: dict[str, Any] | None,
                             m: Measured) -> list[str]:
    """samples.csv, detection.csv, attacks.csv and the figures; return the figures' names."""
    samples = m.results.samples_frame()
    write_csv(out / SAMPLES_CSV, samples)
    write_csv(out / DETECTION_CSV, m.results.detection_frame())
    write_csv(out / ATTACKS_CSV, pd.DataFrame(m.attacks, columns=ATTACK_COLUMNS))
    figures = write_figures(out, list(data.classes), samples, m.tsne_layers, m.gradients_frame, m.gradients_images,
                            regime=(checkpoint or {}).get("regime"), dataset=getattr(data, "name", None),
                            embeddings=m.embeddings)
    st.lap("write")
    return figures


def dataset_info(data: Any) -> dict[str, Any]:
    """``summary["dataset"]``: name, image shape, class names and the size of every split."""
    splits = getattr(data, "splits", None)
    return {"name": getattr(data, "name", None), "shape": [int(s) for s in data.shape], "classes": list(data.classes),
            "sizes": {k: int(v[1].shape[0]) for k, v in (splits or {}).items()}}


def reference_info(reference: Reference) -> dict[str, Any]:
    """``summary["reference"]``: its size and each layer's optimal temperature and SNNL there."""
    return {
        "n": reference.size,
        "temperatures": {name: {"temperature": t.temperature, "snnl": t.loss, "at_boundary": t.at_boundary}
                         for name, t in reference.temperatures.items()},
    }


def combine_info(clean: Clean) -> dict[str, Any]:
    """``summary["combine"]``: the z-score fit set and every layer score's fitted mean and std."""
    return {"fit_on": clean.fit_set.name, "n": len(clean.fit),
            "stats": {f"{fam}_{name}": {"mean": m, "std": sd}
                      for fam, c in clean.combine.items() for name, (m, sd) in c.stats.items()}}
