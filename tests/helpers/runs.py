"""Two finished runs of the workflow compared file by file, and the files DVC tracks: what must
match exactly (``REQUIRED``) and everything else listed (the reliability drills,
tests/reliability/drills.py; the slurm and DVC-over-ssh tests)."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

import torch
import yaml

from snnl.training import RUN_SPECIFIC_METRICS


def digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def files_under(work: Path, *tops: str) -> dict[str, Path]:
    out = {}
    for top in tops:
        base = work / top
        if base.is_file():
            out[top] = base
        elif base.is_dir():
            for f in base.rglob("*"):
                if f.is_file():
                    out[str(f.relative_to(work))] = f
    return out


EVALUATION_TIMINGS = {"timings_s", "wall_time_s"}


def strip_keys(path: Path, keys: set[str]) -> dict[str, Any]:
    data = json.loads(path.read_text())
    return {k: v for k, v in data.items() if k not in keys}


def same_weights(a: Path, b: Path) -> bool:
    ca = torch.load(a, map_location="cpu", weights_only=True)
    cb = torch.load(b, map_location="cpu", weights_only=True)
    for key in ("model", "regularizer"):
        sa, sb = ca[key], cb[key]
        if sa.keys() != sb.keys() or not all(torch.equal(sa[k], sb[k]) for k in sa):
            return False
    return ca["step"] == cb["step"]


# what must match exactly; everything else is listed, identical or not
REQUIRED = {
    "tables": "results/tables/* byte-identical",
    "metrics": "results/metrics/*.json equal as JSON without the run-specific keys "
               + ", ".join(sorted(RUN_SPECIFIC_METRICS)),
    "evaluation": "results/evaluation/**: summary.json equal as JSON without "
                  + ", ".join(sorted(EVALUATION_TIMINGS)) + "; every other file byte-identical",
    "train_logs": "results/logs/*.csv (per-step training log) byte-identical",
    "dynamics": "results/dynamics/*.csv (probe log) byte-identical",
    "weights": "results/checkpoints/*.pt: model and temperature tensors and step equal",
}


def compare_runs(ref: Path, other: Path) -> dict[str, Any]:
    a = files_under(ref, "results", "data/prepared")
    b = files_under(other, "results", "data/prepared")
    missing, extra = sorted(set(a) - set(b)), sorted(set(b) - set(a))
    identical, differ = [], []
    required: dict[str, list[str]] = {k: [] for k in REQUIRED}
    for rel in sorted(set(a) & set(b)):
        same = digest(a[rel]) == digest(b[rel])
        (identical if same else differ).append(rel)
        key = _category(rel)
        if key is None or same:
            continue
        if key == "metrics":
            same = strip_keys(a[rel], RUN_SPECIFIC_METRICS) == strip_keys(b[rel], RUN_SPECIFIC_METRICS)
        elif key == "evaluation" and rel.endswith("/summary.json"):
            same = strip_keys(a[rel], EVALUATION_TIMINGS) == strip_keys(b[rel], EVALUATION_TIMINGS)
        elif key == "weights":
            same = same_weights(a[rel], b[rel])
        if not same:
            required[key].append(rel)
    counts = {k: sum(1 for r in set(a) & set(b) if _category(r) == k) for k in REQUIRED}
    return {
        "files": len(a), "identical": len(identical), "missing": missing, "extra": extra,
        "required_failures": required, "required_counts": counts,
        "differ": differ,
    }


def _category(rel: str) -> str | None:
    if rel.startswith("results/tables/"):
        return "tables"
    if rel.startswith("results/metrics/") and rel.endswith(".json"):
        return "metrics"
    if rel.startswith("results/evaluation/"):
        return "evaluation"
    if rel.startswith("results/logs/"):
        return "train_logs"
    if rel.startswith("results/dynamics/"):
        return "dynamics"
    if rel.startswith("results/checkpoints/") and rel.endswith(".pt"):
        return "weights"
    return None


def dvc_tracked(work: Path) -> dict[str, str]:
    stage = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]["reproduce"]
    digests = {}
    for key in ("outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            rel = next(iter(entry)) if isinstance(entry, dict) else entry
            for r, f in files_under(work, rel).items():
                digests[r] = digest(f)
    return digests
