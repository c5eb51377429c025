"""The ``evaluate:`` section of a YAML config: every setting of `snnl evaluate`, its default, its check.

Other top-level keys of the file belong to other parts of the pipeline and are ignored.
An unknown key or a badly typed value raises :class:`snnl.errors.ConfigError` naming the
key and the file.

    evaluate:
      seed: 0
      batch_size: 500
      epsilons:                 # L-infinity radii in [0, 1] pixel units, per input type
        gray: [0.1, 0.2, 0.3]   # 1-channel inputs (MNIST-like)
        rgb: [0.00784, 0.01569, 0.02353, 0.03137]   # 2/255, 4/255, 6/255, 8/255
      attacks: [fgsm, pgd]
      attack_size: 500          # test images attacked (stratified subset; null = all)
      pgd_steps: 20
      pgd_step_size: null       # null: 2.5 * eps / pgd_steps (Madry et al.)
      pgd_random_start: true
      reference_size: 1000      # stratified training points per layer for E9 (and deep k-NN)
      k: 50                     # neighbours of the deep k-NN baseline
      outlier_size: 1000        # images per outlier set (stratified subset; null = all)
      layers: all               # or a list of the model's hidden-layer names
      tsne_size: 500            # test images in the per-layer t-SNE (E7); 0 turns it off
      tsne_perplexity: 30
      tsne_pca: 50              # PCA components before t-SNE (0: none)
      gradient_tsne_size: 128   # test images in the sign-gradient t-SNE (E10); 0 turns it off
      ece_bins: 15
"""

from __future__ import annotations

import copy
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


from snnl.attacks import ATTACKS
from snnl.config import read_section
from snnl.errors import ConfigError

INPUT_TYPES = ("gray", "rgb")


def _default_epsilons() -> dict[str, list[float]]:
    return {"gray": [0.1, 0.2, 0.3], "rgb": [2 / 255, 4 / 255, 6 / 255, 8 / 255]}


@dataclass
class EvaluateConfig:
    """Settings of `snnl evaluate` (the ``evaluate:`` section); see the module docstring."""

    seed: int = 0
    batch_size: int = 500
    epsilons: dict = field(default_factory=_default_epsilons)
    attacks: list = field(default_factory=lambda: list(ATTACKS))
    attack_size: int | None = 500
    pgd_steps: int = 20
    pgd_step_size: float | None = None
    pgd_random_start: bool = True
    reference_size: int = 1000
    k: int = 50
    outlier_size: int | None = 1000
    layers: Any = "all"
    tsne_size: int = 500
    tsne_perplexity: float = 30.0
    tsne_pca: int = 50
    gradient_tsne_size: int = 128
    ece_bins: int = 15

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    def epsilons_for(self, channels: int) -> list[float]:
        """The epsilon grid of an input with ``channels`` channels (1: gray, otherwise rgb)."""
        return list(self.epsilons["gray" if int(channels) == 1 else "rgb"])

    def replace(self, **changes: Any) -> "EvaluateConfig":
        return EvaluateConfig.from_dict({**self.to_dict(), **changes}, where="overrides")

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "config") -> "EvaluateConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"{where}: unknown key `evaluate.{key}`; known keys: {', '.join(sorted(known))}")
        checked = {k: _check(k, v, where) for k, v in values.items()}
        if "epsilons" in checked:
            checked["epsilons"] = {**_default_epsilons(), **checked["epsilons"]}
        cfg = cls(**checked)
        if cfg.k > cfg.reference_size:
            raise ConfigError(
                f"{where}: `evaluate.k` ({cfg.k}) exceeds `evaluate.reference_size` ({cfg.reference_size}); "
                "the deep k-NN looks for k neighbours in the reference set"
            )
        return cfg


_KINDS: dict[str, str] = {
    "seed": "nonneg_int",
    "batch_size": "pos_int",
    "epsilons": "epsilons",
    "attacks": "attacks",
    "attack_size": "pos_int|null",
    "pgd_steps": "pos_int",
    "pgd_step_size": "nonneg_float|null",
    "pgd_random_start": "bool",
    "reference_size": "pos_int",
    "k": "pos_int",
    "outlier_size": "pos_int|null",
    "layers": "layers",
    "tsne_size": "nonneg_int",
    "tsne_perplexity": "pos_float",
    "tsne_pca": "nonneg_int",
    "gradient_tsne_size": "nonneg_int",
    "ece_bins": "pos_int",
}


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v: Any) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _check(key: str, value: Any, where: str) -> Any:
    kind = _KINDS[key]
    label = f"{where}: `evaluate.{key}`"
    if kind.endswith("|null"):
        if value is None:
            return None
        kind = kind.removesuffix("|null")
    elif value is None:
        raise ConfigError(f"{label} must not be empty (null); remove the key to use the default")
    if kind == "nonneg_int":
        if not _is_int(value) or value < 0:
            raise ConfigError(f"{label} must be an integer >= 0, got {value!r}")
        return value
    if kind == "pos_int":
        if not _is_int(value) or value < 1:
            raise ConfigError(f"{label} must be an integer >= 1, got {value!r}")
        return value
    if kind == "pos_float":
        if not _is_number(value) or not value > 0:
            raise ConfigError(f"{label} must be a number > 0, got {value!r}")
        return float(value)
    if kind == "nonneg_float":
        if not _is_number(value) or not value >= 0:
            raise ConfigError(f"{label} must be a number >= 0, got {value!r}")
        return float(value)
    if kind == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {value!r}")
        return value
    if kind == "epsilons":
        if not isinstance(value, dict):
            raise ConfigError(f"{label} must map input types ({', '.join(INPUT_TYPES)}) to lists of radii, got {value!r}")
        out = {}
        for itype, grid in value.items():
            if itype not in INPUT_TYPES:
                raise ConfigError(f"{where}: unknown key `evaluate.epsilons.{itype}`; known keys: {', '.join(INPUT_TYPES)}")
            ok = isinstance(grid, list) and all(_is_number(e) and 0 <= e <= 1 for e in grid)
            if not ok:
                raise ConfigError(
                    f"{where}: `evaluate.epsilons.{itype}` must be a list of radii in [0, 1] (pixel units), got {grid!r}"
                )
            out[itype] = [float(e) for e in grid]
        return out
    if kind == "attacks":
        ok = isinstance(value, list) and all(v in ATTACKS for v in value) and len(set(value)) == len(value)
        if not ok:
            raise ConfigError(f"{label} must be a list drawn from {list(ATTACKS)} without repeats, got {value!r}")
        return list(value)
    if kind == "layers":
        ok = value == "all" or (isinstance(value, list) and value and all(isinstance(v, str) for v in value))
        if not ok:
            raise ConfigError(f"{label} must be `all` or a non-empty list of hidden-layer names, got {value!r}")
        return value if value == "all" else list(value)
    raise AssertionError(f"no check for kind {kind}")  # pragma: no cover


def read_evaluate_section(config_path: str | Path | None) -> dict[str, Any]:
    """The ``evaluate:`` mapping of a YAML file ({} without a file or without the key)."""
    return read_section(config_path, "evaluate")


def load_evaluate_config(config_path: str | Path | None = None) -> EvaluateConfig:
    """Defaults overlaid with the ``evaluate:`` section of ``config_path`` (if given), checked."""
    where = f"config file {config_path}" if config_path is not None else "defaults"
    return EvaluateConfig.from_dict(read_evaluate_section(config_path), where=where)
