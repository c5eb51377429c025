"""Reading the inputs of `snnl tables`: which run each file belongs to, and its numbers.

    metrics JSON        results/metrics/{dataset}/{regime}/seed{seed}.json     (snnl train --metrics)
    evaluation folder   results/evaluation/{dataset}/{regime}/seed{seed}/      (snnl evaluate: summary.json,
                        tsne_gradients.csv)
    probe log           results/dynamics/{dataset}/{regime}/seed{seed}.csv     (snnl train --probe-log)
    long probe log      results/dynamics_long/{dataset}/baseline/seed{seed}.csv (the same, long runs; C1 (long))
    GAN curve           results/experiments/gan/{dataset}/seed{seed}.csv       (snnl gan --csv)
    E2 points           results/experiments/synthetic_compare.csv              (snnl synthetic --mode compare)

A run's dataset, regime and seed are what its file records (the metrics JSON's ``dataset``,
``regime``, ``seed``; summary.json's ``checkpoint``; a probe log's columns ``dataset``,
``regime``, ``seed``; a GAN curve's columns ``dataset``, ``seed``), never guessed from where the
file lies: a file that does not record them is an error naming it. Without ``--dynamics`` the
probe curves are the metrics JSONs' own ``probe`` records.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from snnl.errors import DataError, is_diverged
from snnl.experiments.common import read_csv
from snnl.experiments.dynamics import BONUS_COLUMNS, read_logs
from snnl.experiments.dynamics import set_aside_diverged as set_aside_diverged_logs

RunKey = tuple[str, str, int]  # (dataset, regime, seed)

SUMMARY_JSON = "summary.json"
TSNE_GRADIENTS_CSV = "tsne_gradients.csv"
GAN_PIXELS = "pixels"


@dataclass
class Evaluation:
    """One `snnl evaluate` folder: its summary and (optionally) the gradient t-SNE points."""

    path: Path
    summary: dict[str, Any]
    tsne_gradients: pd.DataFrame | None = None


@dataclass
class Inputs:
    metrics: dict[RunKey, dict[str, Any]] = field(default_factory=dict)
    evaluations: dict[RunKey, Evaluation] = field(default_factory=dict)
    dynamics: pd.DataFrame | None = None  # dataset, regime, seed, step, layer, layer_index, snnl[, bonus columns]
    dynamics_long: pd.DataFrame | None = None  # the same, of the long baseline runs (C1 (long))
    gan: pd.DataFrame | None = None  # dataset, run, seed, source, step, layer, layer_index, snnl
    synthetic: pd.DataFrame | None = None  # objective, direction, snnl, kmeans_purity, fine_kmeans_purity (one row each)
    sources: dict[str, list[str]] = field(default_factory=dict)
    diverged: dict[RunKey, dict[str, Any]] = field(default_factory=dict)  # {step, epoch, reason}: counted, not used

    # -- views -----------------------------------------------------------------------

    def probe(self) -> pd.DataFrame | None:
        """The probe curves: the probe logs where given, else the metrics' probe records (in
        the order the metrics files were given)."""
        if self.dynamics is not None:
            return self.dynamics
        frames = [probe_frame(m, key) for key, m in self.metrics.items()]
        frames = [f for f in frames if f is not None]
        return pd.concat(frames, ignore_index=True) if frames else None


def _as_int(value: Any) -> int | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return int(f) if math.isfinite(f) and f == int(f) else None


def identify(path: Path, recorded: dict[str, Any], what: str) -> RunKey:
    """(dataset, regime, seed) of the file ``path``: what it records (``recorded``), whatever its path.

    Raises:
        DataError: the file does not record a dataset, a regime and an integer seed.
    """
    dataset, regime, seed = recorded.get("dataset"), recorded.get("regime"), _as_int(recorded.get("seed"))
    missing = [k for k, v in (("dataset", dataset), ("regime", regime), ("seed", seed)) if v in (None, "")]
    if missing:
        raise DataError(f"cannot tell which run {what} {path} belongs to: it does not record its "
                        f"{', '.join(missing)}; rerun the step that writes it (snnl train / snnl evaluate)")
    return str(dataset), str(regime), seed


def _read_json(path: Path, what: str) -> dict[str, Any]:
    if not path.is_file():
        raise DataError(f"{what} {path} does not exist")
    try:
        obj = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{what} {path} is not valid JSON ({err}); rerun the step that writes it") from err
    if not isinstance(obj, dict):
        raise DataError(f"{what} {path} does not hold a JSON object")
    return obj


def _put(store: dict, key: RunKey, value: Any, path: Path, what: str, paths: dict) -> None:
    if key in store:
        raise DataError(f"two {what}s for run {key[0]}/{key[1]}/seed{key[2]}: {paths[key]} and {path}; "
                        "pass one file per (dataset, regime, seed)")
    store[key] = value
    paths[key] = path


def load_metrics(paths: Sequence[str | Path]) -> dict[RunKey, dict[str, Any]]:
    out: dict[RunKey, dict[str, Any]] = {}
    seen: dict[RunKey, Path] = {}
    for p in paths:
        p = Path(p)
        m = _read_json(p, "metrics file")
        _put(out, identify(p, m, "metrics file"), m, p, "metrics file", seen)
    return out


def evaluation_dir(path: str | Path) -> Path:
    """An evaluation folder from the folder itself or its summary.json."""
    p = Path(path)
    return p.parent if p.name == SUMMARY_JSON else p


def load_evaluations(paths: Sequence[str | Path]) -> dict[RunKey, Evaluation]:
    out: dict[RunKey, Evaluation] = {}
    seen: dict[RunKey, Path] = {}
    for p in paths:
        d = evaluation_dir(p)
        summary_path = d / SUMMARY_JSON
        if not summary_path.is_file():
            raise DataError(f"{summary_path} does not exist: the evaluation in {d} has not finished; "
                            f"run `snnl evaluate ... --out {d}` first")
        summary = _read_json(summary_path, "evaluation summary")
        ck = summary.get("checkpoint") or {}
        recorded = {"dataset": ck.get("dataset") or (summary.get("dataset") or {}).get("name"),
                    "regime": ck.get("regime"), "seed": ck.get("seed")}
        key = identify(d, recorded, "evaluation folder")
        tsne = None
        if (d / TSNE_GRADIENTS_CSV).is_file():
            tsne = pd.read_csv(d / TSNE_GRADIENTS_CSV)
        _put(out, key, Evaluation(d, summary, tsne), d, "evaluation folder", seen)
    return out


def set_aside_diverged(metrics: dict[RunKey, dict[str, Any]],
                       evaluations: dict[RunKey, Evaluation]) -> dict[RunKey, dict[str, Any]]:
    """Remove the runs that diverged (``snnl train --on-divergence record``; their metrics or
    evaluation summary say ``diverged``) from ``metrics`` and ``evaluations``, in place, and
    return them as {run: {step, epoch, reason}}: a diverged run is counted, none of its numbers
    used, and a paired comparison pairs the seeds where both runs finished (docs/RESULTS.md)."""
    diverged = {k: m["diverged"] for k, m in metrics.items() if is_diverged(m)}
    diverged.update({k: e.summary["diverged"] for k, e in evaluations.items() if is_diverged(e.summary)})
    for key in diverged:
        metrics.pop(key, None)
        evaluations.pop(key, None)
    return dict(sorted(diverged.items()))


def diverged_note(diverged: dict[RunKey, dict[str, Any]]) -> str:
    """A markdown paragraph naming the diverged runs (empty when there are none)."""
    if not diverged:
        return ""
    runs = "; ".join(f"{d} {r} seed {s} at step {v.get('step')} ({v.get('reason')})" for (d, r, s), v in diverged.items())
    return (f"\nDiverged runs ({len(diverged)}; counted, none of their numbers used, and the comparisons pair "
            f"the seeds where both runs finished): {runs}.\n")


def load_dynamics(paths: Sequence[str | Path]) -> pd.DataFrame:
    """Probe logs (each run from the file's own identity columns) in one frame."""
    df = read_logs([str(p) for p in paths])
    df["seed"] = df["seed"].astype(int)
    return df


def probe_frame(metrics: dict[str, Any], key: RunKey) -> pd.DataFrame | None:
    """The ``probe`` records of a metrics JSON as a probe-log frame (None when it has none); the
    run is ``key`` (what the JSON records at its top level); the bonus measurements
    (:data:`BONUS_COLUMNS`, None where not measured) are carried along when recorded."""
    records = metrics.get("probe") or []
    if not records:
        return None
    df = pd.DataFrame.from_records(records)
    if not {"step", "layer", "snnl"} <= set(df.columns):
        return None
    df["layer"] = df["layer"].astype(str)
    df["snnl"] = pd.to_numeric(df["snnl"], errors="coerce")
    order = {name: i for i, name in enumerate(dict.fromkeys(df["layer"]))}
    df["layer_index"] = df["layer"].map(order)
    df["dataset"], df["regime"], df["seed"] = key
    for col in BONUS_COLUMNS:
        df[col] = pd.to_numeric(df[col], errors="coerce") if col in df.columns else np.nan
    return df[["dataset", "regime", "seed", "step", "layer", "layer_index", "snnl", *BONUS_COLUMNS]]


GAN_IDENTITY = ("dataset", "seed")


def _read_gan_csv(path: Path) -> pd.DataFrame:
    df = read_csv(path, "GAN curve", f"run `snnl gan ... --csv {path}` first", "rerun `snnl gan`")
    missing = [c for c in ("step", "layer", "snnl") if c not in df.columns]
    if missing:
        raise DataError(f"GAN curve {path} lacks column(s) {', '.join(missing)}; it should be the CSV of `snnl gan`")
    ident = [c for c in GAN_IDENTITY if c not in df.columns]
    seeds = pd.to_numeric(df["seed"], errors="coerce") if "seed" in df.columns else None
    if ident or df["dataset"].isna().any() or seeds.isna().any() or (seeds != seeds.round()).any():
        raise DataError(f"cannot tell which GAN run {path} belongs to: it does not record its dataset and integer "
                        "seed (columns dataset, seed, written by `snnl gan` since 2026-12-01); rerun `snnl gan`")
    return df


def load_gan(paths: Sequence[str | Path]) -> pd.DataFrame:
    """GAN curves (`snnl gan --csv`), one row per (run, step, layer): dataset, run, seed, source,
    step, layer, layer_index, snnl. A run is a (dataset, seed) pair read from the file's own
    ``dataset`` and ``seed`` columns, never from its path; ``run`` is ``DATASET/seedN``.

    Raises:
        DataError: a file is missing, lacks the columns, or two files hold the same run.
    """
    frames = []
    seen: dict[tuple[str, int], Path] = {}
    for path in map(Path, paths):
        df = _read_gan_csv(path).copy()
        df["dataset"] = df["dataset"].astype(str)
        df["seed"] = pd.to_numeric(df["seed"]).astype(int)
        for run in df[["dataset", "seed"]].drop_duplicates().itertuples(index=False):
            if (run.dataset, run.seed) in seen:
                raise DataError(f"two GAN curves for run {run.dataset}/seed{run.seed}: {seen[run.dataset, run.seed]} "
                                f"and {path}; pass one file per (dataset, seed)")
            seen[run.dataset, run.seed] = path
        df["snnl"] = pd.to_numeric(df["snnl"], errors="coerce")
        df["layer"] = df["layer"].astype(str)
        if "layer_index" not in df.columns:
            order = {n: i for i, n in enumerate(dict.fromkeys(df["layer"]))}
            df["layer_index"] = df["layer"].map(order)
        df["run"] = df["dataset"] + "/seed" + df["seed"].astype(str)
        df["source"] = str(path)
        frames.append(df[["dataset", "run", "seed", "source", "step", "layer", "layer_index", "snnl"]])
    return pd.concat(frames, ignore_index=True)


def load_synthetic(paths: Sequence[str | Path]) -> pd.DataFrame | None:
    """The E2 end points' measures (one row per objective and direction), from `snnl synthetic
    --mode compare` CSVs; files of the minimise mode (no ``objective`` column) are skipped."""
    rows = []
    for p in paths:
        p = Path(p)
        if not p.is_file():
            raise DataError(f"synthetic CSV {p} does not exist; run `snnl synthetic ... --csv {p}` first")
        df = pd.read_csv(p)
        if not {"objective", "direction"} <= set(df.columns):
            continue
        keep = [c for c in ("objective", "direction", "snnl", "kmeans_purity", "fine_kmeans_purity") if c in df.columns]
        rows.append(df[keep].drop_duplicates(["objective", "direction"]).assign(source=str(p)))
    return pd.concat(rows, ignore_index=True) if rows else None


def load_inputs(
    metrics: Sequence[str | Path] = (),
    evaluations: Sequence[str | Path] = (),
    dynamics: Sequence[str | Path] = (),
    gan: Sequence[str | Path] = (),
    synthetic: Sequence[str | Path] = (),
    dynamics_long: Sequence[str | Path] = (),
) -> Inputs:
    inputs = Inputs(
        metrics=load_metrics(metrics),
        evaluations=load_evaluations(evaluations),
        dynamics=load_dynamics(dynamics) if dynamics else None,
        dynamics_long=load_dynamics(dynamics_long) if dynamics_long else None,
        gan=load_gan(gan) if gan else None,
        synthetic=load_synthetic(synthetic) if synthetic else None,
    )
    inputs.diverged = set_aside_diverged(inputs.metrics, inputs.evaluations)
    for name in ("dynamics", "dynamics_long"):
        frame = getattr(inputs, name)
        if frame is not None:
            frame, logged = set_aside_diverged_logs(frame)
            for key, step in logged.items():
                inputs.diverged.setdefault(key, {"step": step, "epoch": None, "reason": "its probe log says so"})
            keys = list(zip(frame["dataset"], frame["regime"], frame["seed"]))
            setattr(inputs, name, frame[[k not in inputs.diverged for k in keys]].reset_index(drop=True))
    inputs.diverged = dict(sorted(inputs.diverged.items()))
    inputs.sources = {"metrics": [str(p) for p in metrics], "evaluations": [str(p) for p in evaluations],
                      "dynamics": [str(p) for p in dynamics], "dynamics_long": [str(p) for p in dynamics_long],
                      "gan": [str(p) for p in gan], "synthetic": [str(p) for p in synthetic]}
    return inputs


def knn_agreement(xy: np.ndarray, labels: np.ndarray, k: int = 5) -> float:
    """Mean over points of the share of their k nearest other points (Euclidean) with the same label."""
    xy = np.asarray(xy, dtype=np.float64)
    labels = np.asarray(labels)
    n = xy.shape[0]
    if n < 2:
        return math.nan
    k = min(k, n - 1)
    d = ((xy[:, None, :] - xy[None, :, :]) ** 2).sum(-1)
    np.fill_diagonal(d, np.inf)
    nn = np.argsort(d, axis=1, kind="stable")[:, :k]
    return float((labels[nn] == labels[:, None]).mean())
