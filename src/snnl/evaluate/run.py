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
"""

from __future__ import annotations

import io
import json
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from snnl.attacks import attack_batches, make_attack
from snnl.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from snnl.checks import to_unit
from snnl.errors import DataError
from snnl.evaluate.config import EvaluateConfig
from snnl.evaluate.detection import (
    COMBINED,
    SetScores,
    ZScoreCombiner,
    build_reference,
    resolve_layers,
    score_images,
)
from snnl.evaluate.embeddings import gradient_embedding, layer_embeddings
from snnl.evaluate.metrics import accuracy, detection_metrics, expected_calibration_error

# independent random streams (seeded with [seed, stream]) for each subset
_REF, _HOLDOUT, _OUTLIER, _ATTACK, _TSNE, _GRAD, _PGD = range(1, 8)

SAMPLES_CSV = "samples.csv"
DETECTION_CSV = "detection.csv"
ATTACKS_CSV = "attacks.csv"
TSNE_LAYERS_CSV = "tsne_layers.csv"
TSNE_GRADIENTS_CSV = "tsne_gradients.csv"
TSNE_GRADIENTS_IMAGES = "tsne_gradients_images.npy"
SUMMARY_JSON = "summary.json"
FIGURES = ("confidence.png", "tsne_layers.png", "tsne_gradients.png")
_OUTPUTS = {SAMPLES_CSV, DETECTION_CSV, ATTACKS_CSV, TSNE_LAYERS_CSV, TSNE_GRADIENTS_CSV, TSNE_GRADIENTS_IMAGES,
            SUMMARY_JSON, *FIGURES}


def _rng(seed: int, stream: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(stream)]))


def stratified_subset(labels: torch.Tensor | np.ndarray, size: int | None, seed: int, stream: int) -> np.ndarray:
    """Sorted indices of a class-stratified sample of ``size`` (all when None or too large)."""
    from snnl.data.splits import stratified_take

    y = np.asarray(labels)
    if size is None or size >= y.shape[0]:
        return np.arange(y.shape[0])
    taken, _ = stratified_take(y, int(size), _rng(seed, stream))
    return taken


def _clean(obj: Any) -> Any:
    """JSON-safe: NaN/inf -> None, numpy scalars -> Python."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, (np.floating, float)):
        v = float(obj)
        return v if math.isfinite(v) else None
    if isinstance(obj, np.integer):
        return int(obj)
    if isinstance(obj, np.bool_):
        return bool(obj)
    return obj


def _csv(path: Path, df: pd.DataFrame) -> None:
    atomic_write_text(path, df.to_csv(index=False, float_format="%.8g"))


def score_columns(scores: SetScores, combine: dict[str, ZScoreCombiner]) -> dict[str, np.ndarray]:
    """msp and every detection score column of a set (combined columns need fitted combiners)."""
    cols: dict[str, np.ndarray] = {"msp": scores.msp}
    for family, per_layer in (("snnl", scores.snnl), ("knn", scores.knn)):
        for name, values in per_layer.items():
            cols[f"{family}_{name}"] = values
        cols[f"{family}_{COMBINED}"] = combine[family](per_layer)
    return cols


def detection_scores(cols: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Score columns oriented so that higher means "outlier / adversarial"."""
    out = {}
    for name, values in cols.items():
        out[name] = 1.0 - values if name == "msp" else values
    return out


def _split_score_name(name: str) -> tuple[str, str]:
    if name == "msp":
        return "msp", ""
    family, layer = name.split("_", 1)
    return family, layer


def _say(progress: bool, msg: str) -> None:
    if progress:
        from tqdm.auto import tqdm

        tqdm.write(f"snnl evaluate: {msg}")


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
    outputs into ``out`` and return the summary."""
    t_start = time.perf_counter()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    # a summary from an earlier run must not outlive a run that fails half-way
    (out / SUMMARY_JSON).unlink(missing_ok=True)
    timings: dict[str, float] = {}
    clock = [time.perf_counter()]

    def lap(stage: str) -> None:
        now = time.perf_counter()
        timings[stage] = round(now - clock[0], 3)
        clock[0] = now

    torch.manual_seed(cfg.seed)
    device = torch.device(device)
    model.to(device).eval()
    layers = resolve_layers(model, cfg.layers)
    shape = tuple(int(s) for s in data.shape)
    classes = list(data.classes)
    _check_compatible(model, data, outliers, checkpoint)
    splits = getattr(data, "splits", None)
    try:
        val = data.val
    except (DataError, AttributeError):
        val = None
    kw = dict(k=cfg.k, batch_size=cfg.batch_size, device=device, progress=progress)

    # -- reference set (E9) ----------------------------------------------------------
    train_x, train_y = data.train
    ref_size = min(cfg.reference_size, int(train_y.shape[0]))
    ref_idx = stratified_subset(train_y, ref_size, cfg.seed, _REF)
    _say(progress, f"reference set: {len(ref_idx)} training points, layers {', '.join(layers)}")
    reference = build_reference(model, train_x, train_y, layers, indices=ref_idx, batch_size=cfg.batch_size, device=device)
    lap("reference")

    # -- clean sets ---------------------------------------------------------------------
    test_x, test_y = data.test
    test_y = test_y.long()
    _say(progress, f"scoring the test split ({len(test_y)} images)")
    test = score_images(model, test_x, reference, desc="test", **kw)
    if val is not None:
        fit_on = "val"
        fit_x, fit_y = val
        fit_idx = np.arange(int(fit_y.shape[0]))
    else:
        fit_on = "train_holdout"
        rest = np.setdiff1d(np.arange(int(train_y.shape[0])), ref_idx)
        if rest.size < 2:
            raise DataError("no validation split and no training points outside the reference set to fit the z-scores; "
                            "lower evaluate.reference_size")
        sub = stratified_subset(train_y[rest], min(1000, rest.size), cfg.seed, _HOLDOUT)
        fit_idx = rest[sub]
        fit_x, fit_y = train_x[fit_idx], train_y[fit_idx]
    _say(progress, f"scoring the z-score fit set ({fit_on}, {len(fit_idx)} images)")
    fit = score_images(model, fit_x, reference, desc=fit_on, **kw)
    combine = {"snnl": ZScoreCombiner().fit(fit.snnl), "knn": ZScoreCombiner().fit(fit.knn)}
    lap("clean")

    frames: list[pd.DataFrame] = []

    def frame(set_name: str, kind: str, idx: np.ndarray, labels: np.ndarray, s: SetScores, **extra: Any) -> dict:
        cols = score_columns(s, combine)
        base = {
            "set": set_name,
            "kind": kind,
            "attack": extra.pop("attack", ""),
            "epsilon": extra.pop("epsilon", np.nan),
            "index": idx,
            "label": labels,
            "pred": s.pred,
            "correct": (s.pred == labels) if kind != "outlier" else np.full(len(s), None, dtype=object),
        }
        df = pd.DataFrame({**base, **extra, **cols})
        frames.append(df)
        return cols

    test_cols = frame("test", "test", np.arange(len(test)), test_y.numpy(), test)
    frame(fit_on, "val", fit_idx, np.asarray(fit_y), fit)
    test_det = detection_scores(test_cols)

    # -- calibration (E8) -----------------------------------------------------------------
    summary_test = {
        "n": len(test),
        "accuracy": accuracy(test.pred, test_y.numpy()),
        "ece": expected_calibration_error(test.probs, test_y.numpy(), cfg.ece_bins),
        "nll": float(-np.mean(np.log(np.clip(test.probs[np.arange(len(test)), test_y.numpy()], 1e-300, None)))),
        "mean_confidence": float(test.msp.mean()),
    }
    detection: dict[str, dict[str, dict]] = {}
    rows: list[dict] = []

    def compare(name: str, kind: str, neg: dict[str, np.ndarray], pos: dict[str, np.ndarray]) -> None:
        detection[name] = {}
        for score in neg:
            m = detection_metrics(neg[score], pos[score], what=f"detection score {score} for {name}")
            detection[name][score] = m
            family, layer = _split_score_name(score)
            rows.append({"comparison": name, "kind": kind, "score": family, "layer": layer, **m})

    # -- outliers -------------------------------------------------------------------------
    summary_outliers = {}
    for name, ods in outliers.items():
        ox, oy = ods.test
        idx = stratified_subset(oy, cfg.outlier_size, cfg.seed, _OUTLIER)
        _say(progress, f"scoring outlier set {name} ({len(idx)} images)")
        s = score_images(model, ox[idx], reference, desc=name, **kw)
        cols = frame(name, "outlier", idx, np.full(len(idx), -1), s)
        compare(f"ood:{name}", "ood", test_det, detection_scores(cols))
        summary_outliers[name] = {
            "n": len(s),
            "mean_confidence": float(s.msp.mean()),
            "msp_auroc": detection[f"ood:{name}"]["msp"]["auroc"],
        }
    lap("outliers")

    # -- adversarial examples -----------------------------------------------------------
    atk_idx = stratified_subset(test_y, cfg.attack_size, cfg.seed, _ATTACK)
    atk_x, atk_y = test_x[atk_idx], test_y[atk_idx]
    clean_pred = test.pred[atk_idx]
    clean_ok = clean_pred == atk_y.numpy()
    neg_adv = {k: v[atk_idx][clean_ok] for k, v in test_det.items()}
    attack_rows = []
    epsilons = cfg.epsilons_for(shape[0])
    for attack_name in cfg.attacks:
        for eps in epsilons:
            gen = torch.Generator(device="cpu").manual_seed(int(np.random.SeedSequence([cfg.seed, _PGD]).generate_state(1)[0]))
            attack = make_attack(attack_name, steps=cfg.pgd_steps, step_size=cfg.pgd_step_size,
                                 random_start=cfg.pgd_random_start, generator=gen)
            label = f"{attack_name} eps={eps:.4g}"
            _say(progress, f"attack {label} on {len(atk_idx)} test images")
            adv = attack_batches(attack, model, atk_x, atk_y, eps, batch_size=cfg.batch_size, device=device,
                                 progress=progress, desc=label)
            s = score_images(model, adv, reference, desc=f"score {label}", **kw)
            success = clean_ok & (s.pred != atk_y.numpy())
            cols = frame(f"{attack_name}@{eps:.4g}", "adversarial", atk_idx, atk_y.numpy(), s,
                         attack=attack_name, epsilon=eps, clean_pred=clean_pred, success=success)
            pos = {k: v[success] for k, v in detection_scores(cols).items()}
            compare(f"adv:{attack_name}:{eps:.4g}", "adv", neg_adv, pos)
            attack_rows.append({
                "attack": attack_name,
                "epsilon": eps,
                "n": len(s),
                "clean_accuracy": float(clean_ok.mean()) if len(s) else math.nan,
                "accuracy": accuracy(s.pred, atk_y.numpy()),
                "success_rate": float(success.sum() / max(int(clean_ok.sum()), 1)),
                "mean_confidence": float(s.msp.mean()) if len(s) else math.nan,
            })
    lap("attacks")

    # -- embeddings (E7, E10) -------------------------------------------------------------
    tsne_info: dict[str, Any] = {}
    tsne_df = None
    if cfg.tsne_size >= 4:
        idx = stratified_subset(test_y, cfg.tsne_size, cfg.seed, _TSNE)
        _say(progress, f"t-SNE of {len(layers)} hidden layers on {len(idx)} test images")
        pred, coords, skipped = layer_embeddings(model, test_x[idx], layers, seed=cfg.seed,
                                                 perplexity=cfg.tsne_perplexity, pca=cfg.tsne_pca,
                                                 batch_size=cfg.batch_size, device=device, progress=progress)
        tsne_df = pd.concat([
            pd.DataFrame({"layer": name, "index": idx, "label": test_y.numpy()[idx], "pred": pred,
                          "x": xy[:, 0], "y": xy[:, 1]})
            for name, xy in coords.items()
        ] or [pd.DataFrame(columns=["layer", "index", "label", "pred", "x", "y"])], ignore_index=True)
        for reason in skipped.values():
            _say(progress, f"t-SNE skipped: {reason}")
        tsne_info["layers"] = {"n": len(idx), "layers": layers, "skipped": skipped}
    lap("tsne_layers")
    grad_df, grad_images = None, None
    if cfg.gradient_tsne_size >= 4:
        idx = stratified_subset(test_y, cfg.gradient_tsne_size, cfg.seed, _GRAD)
        _say(progress, f"t-SNE of sign(grad_x CE) for {len(idx)} test images")
        xy, stats = gradient_embedding(model, test_x[idx], test_y[idx], seed=cfg.seed,
                                       perplexity=cfg.tsne_perplexity, device=device)
        if xy is not None:
            grad_df = pd.DataFrame({"index": idx, "label": test_y.numpy()[idx], "pred": test.pred[idx],
                                    "x": xy[:, 0], "y": xy[:, 1]})
            grad_images = np.rint(to_unit(test_x[idx]).numpy() * 255.0).astype(np.uint8)  # uint8 or [0, 1] floats
        else:
            _say(progress, f"t-SNE of sign gradients skipped: {stats['skipped']}")
        tsne_info["gradients"] = {"n": len(idx), "snnl_sign_gradients": stats["snnl"],
                                  "temperature": stats["temperature"], "skipped": stats["skipped"]}
    lap("tsne_gradients")

    # -- write ------------------------------------------------------------------------------
    samples = pd.concat(frames, ignore_index=True)
    for col in ("clean_pred", "success"):
        if col not in samples.columns:
            samples[col] = pd.NA
    front = ["set", "kind", "attack", "epsilon", "index", "label", "pred", "correct", "clean_pred", "success", "msp"]
    samples = samples[front + [c for c in samples.columns if c not in front]]
    _csv(out / SAMPLES_CSV, samples)
    _csv(out / DETECTION_CSV, pd.DataFrame(rows, columns=["comparison", "kind", "score", "layer", "n_neg", "n_pos",
                                                          "auroc", "aupr", "fpr95"]))
    _csv(out / ATTACKS_CSV, pd.DataFrame(attack_rows, columns=["attack", "epsilon", "n", "clean_accuracy", "accuracy",
                                                               "success_rate", "mean_confidence"]))
    figures = _write_figures(out, classes, samples, tsne_df, grad_df, grad_images,
                             regime=(checkpoint or {}).get("regime"), dataset=getattr(data, "name", None),
                             embeddings=tsne_info)
    lap("write")

    summary = {
        "checkpoint": _checkpoint_info(checkpoint),
        "dataset": {"name": getattr(data, "name", None), "shape": list(shape), "classes": classes,
                    "sizes": {k: int(v[1].shape[0]) for k, v in (splits or {}).items()}},
        "outlier_sets": {name: {"name": getattr(o, "name", name), "n_available": int(o.test[1].shape[0])}
                         for name, o in outliers.items()},
        "config": cfg.to_dict(),
        "epsilons": epsilons,
        "device": str(device),
        "layers": layers,
        "test": summary_test,
        "outliers": summary_outliers,
        "attacks": attack_rows,
        "reference": {
            "n": reference.size,
            "temperatures": {name: {"temperature": t.temperature, "snnl": t.loss, "at_boundary": t.at_boundary}
                             for name, t in reference.temperatures.items()},
        },
        "combine": {"fit_on": fit_on, "n": len(fit),
                    "stats": {f"{fam}_{name}": {"mean": m, "std": sd}
                              for fam, c in combine.items() for name, (m, sd) in c.stats.items()}},
        "detection": detection,
        "embeddings": tsne_info,
        "files": sorted([SAMPLES_CSV, DETECTION_CSV, ATTACKS_CSV, SUMMARY_JSON]
                        + ([TSNE_LAYERS_CSV] if tsne_df is not None else [])
                        + ([TSNE_GRADIENTS_CSV, TSNE_GRADIENTS_IMAGES] if grad_df is not None else [])
                        + figures),
        "timings_s": timings,
        "wall_time_s": round(time.perf_counter() - t_start, 3),
    }
    summary = _clean(summary)
    if tsne_df is not None:
        _csv(out / TSNE_LAYERS_CSV, tsne_df)
    if grad_df is not None:
        _csv(out / TSNE_GRADIENTS_CSV, grad_df)
        buf = io.BytesIO()
        np.save(buf, grad_images, allow_pickle=False)
        atomic_write_bytes(out / TSNE_GRADIENTS_IMAGES, buf.getvalue())
    for stale in _OUTPUTS - set(summary["files"]):  # left by an earlier run with other settings
        (out / stale).unlink(missing_ok=True)
    atomic_write_json(out / SUMMARY_JSON, summary)
    _say(progress, f"done in {summary['wall_time_s']:.1f} s: test accuracy {summary_test['accuracy']:.4f}, "
                   f"ECE {summary_test['ece']:.4f}; outputs in {out}")
    return summary


def _checkpoint_info(ckpt: dict[str, Any] | None) -> dict[str, Any]:
    if not ckpt:
        return {}
    info = {k: ckpt.get(k) for k in ("path", "regime", "seed", "step", "model_spec")}
    ds = ckpt.get("dataset")
    info["dataset"] = ds.get("name") if isinstance(ds, dict) else ds
    metrics = ckpt.get("metrics") or {}
    if isinstance(metrics, dict) and "test_accuracy" in metrics:
        info["train_reported_test_accuracy"] = metrics["test_accuracy"]
    return info


def _check_compatible(model: nn.Module, data: Any, outliers: dict[str, Any], ckpt: dict[str, Any] | None) -> None:
    shape = [int(s) for s in data.shape]
    spec = getattr(model, "spec", None) or (ckpt or {}).get("model_spec") or {}
    if spec:
        if list(spec.get("input_shape", shape)) != shape:
            raise DataError(f"the model takes inputs of shape {spec['input_shape']}, the data {getattr(data, 'name', '')} "
                            f"has {shape}; pass the dataset the checkpoint was trained on")
        if int(spec.get("num_classes", len(data.classes))) != len(data.classes):
            raise DataError(f"the model has {spec['num_classes']} classes, the data {len(data.classes)}; "
                            "pass the dataset the checkpoint was trained on")
    for name, o in outliers.items():
        if [int(s) for s in o.shape] != shape:
            raise DataError(f"outlier set `{name}` has images of shape {list(o.shape)}, the model takes {shape}; "
                            f"prepare it with `snnl prepare-data --dataset {getattr(o, 'name', name)} --like "
                            f"{getattr(data, 'name', 'DATASET')}`")


def _write_figures(out: Path, classes, samples: pd.DataFrame, tsne_df, grad_df, grad_images, *, regime, dataset,
                   embeddings: dict[str, Any]) -> list[str]:
    """confidence.png, and tsne_layers.png / tsne_gradients.png where those embeddings ran
    (an embedding that was skipped is drawn as a note saying why)."""
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


# ---------------------------------------------------------------------------------------
# baseline vs entangled


def compare_regimes(dirs: dict[str, str | Path], out: str | Path) -> list[Path]:
    """Figures and a merged detection table for evaluations of several regimes.

    ``dirs`` maps a regime name (``baseline``, ``entangled``) to an OUT folder of
    :func:`evaluate`. Writes ``tsne_layers_compare.png``, ``tsne_gradients_compare.png``,
    ``confidence_compare.png`` and ``detection_compare.csv`` into ``out``."""
    from snnl.evaluate import plots

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    regimes = list(dirs)
    summaries, det, conf, tl, tg, images, snnl = {}, [], [], [], [], {}, {}
    layer_skips, grad_notes = {}, {}
    for regime, d in dirs.items():
        d = Path(d)
        path = d / SUMMARY_JSON
        if not path.is_file():
            raise DataError(f"{path} does not exist: run `snnl evaluate ... --out {d}` first")
        summaries[regime] = json.loads(path.read_text())
        det.append(pd.read_csv(d / DETECTION_CSV).assign(regime=regime))
        s = pd.read_csv(d / SAMPLES_CSV, usecols=["set", "kind", "msp"])
        conf.append(s[s["kind"].isin(["test", "outlier"])].assign(regime=regime))
        embeddings = summaries[regime].get("embeddings") or {}
        if (d / TSNE_LAYERS_CSV).is_file():
            tl.append(pd.read_csv(d / TSNE_LAYERS_CSV).assign(regime=regime))
            layer_skips[regime] = (embeddings.get("layers") or {}).get("skipped") or {}
        grad = embeddings.get("gradients") or {}
        if (d / TSNE_GRADIENTS_CSV).is_file():
            tg.append(pd.read_csv(d / TSNE_GRADIENTS_CSV).assign(regime=regime))
            images[regime] = np.load(d / TSNE_GRADIENTS_IMAGES, allow_pickle=False)
            snnl[regime] = grad.get("snnl_sign_gradients")
        elif grad.get("skipped"):
            grad_notes[regime] = grad["skipped"]
    classes = summaries[regimes[0]]["dataset"]["classes"]
    written = []
    table = pd.concat(det, ignore_index=True)
    _csv(out / "detection_compare.csv", table[["regime"] + [c for c in table.columns if c != "regime"]])
    written.append(out / "detection_compare.csv")
    written.append(plots.plot_confidence(pd.concat(conf, ignore_index=True), out / "confidence_compare.png",
                                         regimes=regimes))
    if len(tl) == len(regimes):
        written.append(plots.plot_tsne_layers(pd.concat(tl, ignore_index=True), classes, out / "tsne_layers_compare.png",
                                              regimes=regimes, dataset=summaries[regimes[0]]["dataset"]["name"],
                                              skipped=layer_skips))
    if len(tg) + len(grad_notes) == len(regimes):  # every regime embedded its gradients or said why not
        frames = tg or [pd.DataFrame(columns=["regime", "index", "label", "x", "y"])]
        written.append(plots.plot_tsne_gradients(pd.concat(frames, ignore_index=True), images, classes,
                                                 out / "tsne_gradients_compare.png", regimes=regimes,
                                                 snnl={k: v for k, v in snnl.items() if v is not None},
                                                 notes=grad_notes))
    return written

