"""The stages of `snnl evaluate` (:func:`snnl.evaluate.run.evaluate` runs them in this order):

    reference     the reference set of training points and its layers' temperatures (E9)
    clean         the test split and the z-score fit set, scored; the combiners fitted
    calibration   accuracy, ECE, NLL and mean confidence on the test split (E8)
    outliers      every outlier set scored and compared with the test split (E8, E9)
    attacks       FGSM / PGD at every epsilon, scored and compared with the clean images (E9)
    embeddings    t-SNE of the hidden layers (E7) and of the sign gradients (E10)

Each stage reads the :class:`Stage` (model, settings, device) and the earlier stages' results.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from snnl.attacks import attack_batches, make_attack
from snnl.checks import to_unit
from snnl.evaluate.config import EvaluateConfig
from snnl.evaluate.detection import Reference, SetScores, ZScoreCombiner, build_reference, score_images
from snnl.evaluate.embeddings import gradient_embedding, layer_embeddings
from snnl.evaluate.metrics import accuracy, expected_calibration_error
from snnl.evaluate.samples import Results, detection_scores
from snnl.evaluate.sets import ATTACK, GRAD, OUTLIER, PGD, REF, TSNE, FitSet, stratified_subset, zscore_fit_set


@dataclass
class Stage:
    """What every stage reads: the model (in eval mode, on ``device``), its layers, the settings."""

    model: nn.Module
    cfg: EvaluateConfig
    device: torch.device
    layers: list[str]
    progress: bool = True
    timings: dict[str, float] = field(default_factory=dict)
    _clock: float = field(default_factory=time.perf_counter)

    def say(self, msg: str) -> None:
        if self.progress:
            from tqdm.auto import tqdm

            tqdm.write(f"snnl evaluate: {msg}")

    def lap(self, stage: str) -> None:
        """Record the seconds since the last lap as ``timings[stage]``."""
        now = time.perf_counter()
        self.timings[stage] = round(now - self._clock, 3)
        self._clock = now

    def score(self, images: torch.Tensor, reference: Reference, desc: str) -> SetScores:
        """:func:`snnl.evaluate.detection.score_images` with the settings' k and batch size."""
        cfg = self.cfg
        return score_images(self.model, images, reference, desc=desc, k=cfg.k, batch_size=cfg.batch_size,
                            device=self.device, progress=self.progress)


def reference_stage(st: Stage, data: Any) -> tuple[Reference, np.ndarray]:
    """(the reference set, its indices into the training split)."""
    train_x, train_y = data.train
    ref_size = min(st.cfg.reference_size, int(train_y.shape[0]))
    ref_idx = stratified_subset(train_y, ref_size, st.cfg.seed, REF)
    st.say(f"reference set: {len(ref_idx)} training points, layers {', '.join(st.layers)}")
    reference = build_reference(st.model, train_x, train_y, st.layers, indices=ref_idx, batch_size=st.cfg.batch_size,
                                device=st.device)
    return reference, ref_idx


@dataclass
class Clean:
    """The clean sets, scored: the test split and the z-score fit set, and the fitted combiners."""

    test_x: torch.Tensor
    test_y: torch.Tensor  # int64
    test: SetScores
    fit_set: FitSet
    fit: SetScores
    combine: dict[str, ZScoreCombiner]


def clean_stage(st: Stage, data: Any, reference: Reference, ref_idx: np.ndarray) -> Clean:
    """Score the test split and the z-score fit set (:func:`snnl.evaluate.sets.zscore_fit_set`);
    fit the combiners of the layers' SNNL and k-NN scores on the latter."""
    test_x, test_y = data.test
    test_y = test_y.long()
    st.say(f"scoring the test split ({len(test_y)} images)")
    test = st.score(test_x, reference, "test")
    fit_set = zscore_fit_set(data, ref_idx, st.cfg.seed)
    st.say(f"scoring the z-score fit set ({fit_set.name}, {len(fit_set.indices)} images)")
    fit = st.score(fit_set.images, reference, fit_set.name)
    combine = {"snnl": ZScoreCombiner().fit(fit.snnl), "knn": ZScoreCombiner().fit(fit.knn)}
    return Clean(test_x, test_y, test, fit_set, fit, combine)


def calibration_stage(st: Stage, clean: Clean) -> dict[str, Any]:
    """``summary["test"]``: n, accuracy, ECE, NLL and mean confidence on the test split."""
    test, y = clean.test, clean.test_y.numpy()
    return {
        "n": len(test),
        "accuracy": accuracy(test.pred, y),
        "ece": expected_calibration_error(test.probs, y, st.cfg.ece_bins),
        "nll": float(-np.mean(np.log(np.clip(test.probs[np.arange(len(test)), y], 1e-300, None)))),
        "mean_confidence": float(test.msp.mean()),
    }


def outlier_stage(st: Stage, outliers: dict[str, Any], reference: Reference, results: Results,
                  test_det: dict[str, np.ndarray]) -> dict[str, dict]:
    """Score a stratified sample of every outlier set's test split against the test split;
    return ``summary["outliers"]``."""
    summary = {}
    for name, ods in outliers.items():
        ox, oy = ods.test
        idx = stratified_subset(oy, st.cfg.outlier_size, st.cfg.seed, OUTLIER)
        st.say(f"scoring outlier set {name} ({len(idx)} images)")
        s = st.score(ox[idx], reference, name)
        cols = results.add(name, "outlier", idx, np.full(len(idx), -1), s)
        results.compare(f"ood:{name}", "ood", test_det, detection_scores(cols))
        summary[name] = {
            "n": len(s),
            "mean_confidence": float(s.msp.mean()),
            "msp_auroc": results.detection[f"ood:{name}"]["msp"]["auroc"],
        }
    return summary


@dataclass
class Attacked:
    """The stratified sample of test images every attack runs on, and their clean predictions."""

    idx: np.ndarray
    x: torch.Tensor
    y: torch.Tensor
    clean_pred: np.ndarray
    clean_ok: np.ndarray  # clean prediction right
    neg: dict[str, np.ndarray]  # the clean detection scores of the correctly classified ones


def attack_stage(st: Stage, clean: Clean, reference: Reference, results: Results, test_det: dict[str, np.ndarray],
                 epsilons: list[float]) -> list[dict]:
    """Every attack at every epsilon; return the rows of attacks.csv."""
    idx = stratified_subset(clean.test_y, st.cfg.attack_size, st.cfg.seed, ATTACK)
    clean_pred = clean.test.pred[idx]
    clean_ok = clean_pred == clean.test_y[idx].numpy()
    atk = Attacked(idx, clean.test_x[idx], clean.test_y[idx], clean_pred, clean_ok,
                   {k: v[idx][clean_ok] for k, v in test_det.items()})
    return [_attack(st, name, eps, atk, reference, results) for name in st.cfg.attacks for eps in epsilons]


def _attack(st: Stage, attack_name: str, eps: float, atk: Attacked, reference: Reference, results: Results) -> dict:
    """One attack at one epsilon: the adversarial images scored, compared (successful ones
    against the clean versions of the correctly classified images) and summarised."""
    cfg = st.cfg
    gen = torch.Generator(device="cpu").manual_seed(int(np.random.SeedSequence([cfg.seed, PGD]).generate_state(1)[0]))
    attack = make_attack(attack_name, steps=cfg.pgd_steps, step_size=cfg.pgd_step_size,
                         random_start=cfg.pgd_random_start, generator=gen)
    label = f"{attack_name} eps={eps:.4g}"
    st.say(f"attack {label} on {len(atk.idx)} test images")
    adv = attack_batches(attack, st.model, atk.x, atk.y, eps, batch_size=cfg.batch_size, device=st.device,
                         progress=st.progress, desc=label)
    s = st.score(adv, reference, f"score {label}")
    y = atk.y.numpy()
    success = atk.clean_ok & (s.pred != y)
    cols = results.add(f"{attack_name}@{eps:.4g}", "adversarial", atk.idx, y, s,
                       attack=attack_name, epsilon=eps, clean_pred=atk.clean_pred, success=success)
    pos = {k: v[success] for k, v in detection_scores(cols).items()}
    results.compare(f"adv:{attack_name}:{eps:.4g}", "adv", atk.neg, pos)
    return {
        "attack": attack_name,
        "epsilon": eps,
        "n": len(s),
        "clean_accuracy": float(atk.clean_ok.mean()) if len(s) else math.nan,
        "accuracy": accuracy(s.pred, y),
        "success_rate": float(success.sum() / max(int(atk.clean_ok.sum()), 1)),
        "mean_confidence": float(s.msp.mean()) if len(s) else math.nan,
    }


TSNE_LAYER_COLUMNS = ["layer", "index", "label", "pred", "x", "y"]


def layer_embedding_stage(st: Stage, clean: Clean) -> tuple[pd.DataFrame | None, dict[str, Any] | None]:
    """(tsne_layers.csv's rows, ``summary["embeddings"]["layers"]``), or (None, None) when
    ``tsne_size`` < 4 turns the embedding off."""
    cfg = st.cfg
    if cfg.tsne_size < 4:
        return None, None
    idx = stratified_subset(clean.test_y, cfg.tsne_size, cfg.seed, TSNE)
    st.say(f"t-SNE of {len(st.layers)} hidden layers on {len(idx)} test images")
    pred, coords, skipped = layer_embeddings(st.model, clean.test_x[idx], st.layers, seed=cfg.seed,
                                             perplexity=cfg.tsne_perplexity, pca=cfg.tsne_pca,
                                             batch_size=cfg.batch_size, device=st.device, progress=st.progress)
    labels = clean.test_y.numpy()[idx]
    frames = [pd.DataFrame({"layer": name, "index": idx, "label": labels, "pred": pred, "x": xy[:, 0], "y": xy[:, 1]})
              for name, xy in coords.items()]
    df = pd.concat(frames or [pd.DataFrame(columns=TSNE_LAYER_COLUMNS)], ignore_index=True)
    for reason in skipped.values():
        st.say(f"t-SNE skipped: {reason}")
    return df, {"n": len(idx), "layers": st.layers, "skipped": skipped}


@dataclass
class GradientEmbedding:
    """tsne_gradients.csv's rows and the embedded images (None when skipped), and
    ``summary["embeddings"]["gradients"]``."""

    frame: pd.DataFrame | None
    images: np.ndarray | None  # uint8 (n, C, H, W)
    info: dict[str, Any]


def gradient_embedding_stage(st: Stage, clean: Clean) -> GradientEmbedding | None:
    """The t-SNE of sign(grad_x CE), or None when ``gradient_tsne_size`` < 4 turns it off."""
    cfg = st.cfg
    if cfg.gradient_tsne_size < 4:
        return None
    idx = stratified_subset(clean.test_y, cfg.gradient_tsne_size, cfg.seed, GRAD)
    st.say(f"t-SNE of sign(grad_x CE) for {len(idx)} test images")
    xy, stats = gradient_embedding(st.model, clean.test_x[idx], clean.test_y[idx], seed=cfg.seed,
                                   perplexity=cfg.tsne_perplexity, device=st.device)
    frame, images = None, None
    if xy is not None:
        frame = pd.DataFrame({"index": idx, "label": clean.test_y.numpy()[idx], "pred": clean.test.pred[idx],
                              "x": xy[:, 0], "y": xy[:, 1]})
        images = np.rint(to_unit(clean.test_x[idx]).numpy() * 255.0).astype(np.uint8)  # uint8 or [0, 1] floats
    else:
        st.say(f"t-SNE of sign gradients skipped: {stats['skipped']}")
    info = {"n": len(idx), "snnl_sign_gradients": stats["snnl"], "temperature": stats["temperature"],
            "skipped": stats["skipped"]}
    return GradientEmbedding(frame, images, info)
