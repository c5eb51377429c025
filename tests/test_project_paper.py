"""benchmarks/project_paper.py counts the steps of the paper config's jobs as the trainer does."""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import project_paper  # noqa: E402


def test_steps_per_job_follow_the_config():
    rows = project_paper.rows_for(ROOT / "config" / "paper.yaml", "cpu")
    by = {(r["rule"], r["dataset"], r["regime"]): r for r in rows}
    # mnist: 6 epochs of (60,000 - 5,000 validation) // 128 steps; 5 seeds; 30 trials
    assert by[("train", "mnist", "baseline")]["steps"] == 6 * (55000 // 128)
    assert by[("train", "mnist", "entangled")]["jobs"] == 5 and by[("tune", "mnist", "baseline")]["jobs"] == 30
    # cifar10: the ResNet override, 60 epochs of 45,000 // 128
    assert by[("train", "cifar10", "baseline")]["steps"] == 60 * (45000 // 128)
    assert by[("train", "cifar10", "baseline")]["cfg"].model == "resnet"
    # svhn: 20 epochs, 3-channel 32x32 images
    assert by[("train", "svhn", "entangled")]["steps"] == 20 * ((73257 - 5000) // 128)
    assert by[("train", "svhn", "entangled")]["shape"] == (3, 32, 32)


def test_projection_multiplies_jobs_steps_and_step_time():
    rows = [{"rule": "train", "dataset": "d", "regime": "baseline", "jobs": 3, "steps": 1200, "key": "k"}]
    lines = project_paper.projection(rows, {"k": {"baseline": 0.5}})
    assert "| train | d | baseline | 3 | 1,200 | 500.00 ms | 0.50 |" in lines
