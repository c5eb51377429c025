"""Test configs built from the real one, config/default.yaml, with small overrides applied by snnl's
own ``--config`` mechanism (:func:`snnl.overrides.apply_command_line_config`: each entry
``SECTION=YAML`` merges key by key into the section), so that they follow the real config.
tests/conftest.py offers them as fixtures (``tiny_config``, ``config_with``)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from snnl.overrides import apply_command_line_config

ROOT = Path(__file__).resolve().parents[2]
DEFAULT = ROOT / "config" / "default.yaml"
# The whole DAG in seconds per job (tests/test_pipeline.py, tests/reliability/): the default shrunk.
TINY = (
    "pipeline={seeds: [0, 1]}",
    "datasets={mnist5k: {train_size: 400, val_size: 100, test_size: 200}, letters: {n: 100}, noise: {n: 60}}",
    "train={batch_size: 64, epochs: 1, checkpoint_every: 3, probe_size: 64, probe_points: 4}",
    "evaluate={attack_size: 30, pgd_steps: 2, reference_size: 100, k: 5, outlier_size: 40, tsne_size: 60,"
    " tsne_pca: 10, tsne_perplexity: 10, gradient_tsne_size: 40}",
    "experiments={synthetic: {steps: 12, points_per_class: 15, snapshot_steps: [0, 4, 12], triplets_per_step: 2000},"
    " temperature_curve: {samples: 80, points: 11}, gan: {steps: 40, log_every: 20, probe_size: 32, batch_size: 32}}",
)


def config_with(*entries: str) -> dict[str, Any]:
    """config/default.yaml (parsed afresh) with the ``--config`` entries ``SECTION=YAML`` applied in order."""
    cfg = yaml.safe_load(DEFAULT.read_text())
    apply_command_line_config(cfg, entries)
    return cfg


def tiny_config(*entries: str) -> dict[str, Any]:
    """The tiny config (:data:`TINY` over the default), then ``entries``."""
    return config_with(*TINY, *entries)


def write_config(cfg: dict[str, Any], path: Path) -> Path:
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path
