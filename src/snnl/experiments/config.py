"""The ``experiments:`` section of a YAML config: the settings of the analysis experiments E1-E5.

Layout (every key optional; defaults below)::

    experiments:
      synthetic:          {classes, points_per_class, radius, std, steps, lr, seed,
                           temperature, fix_scale, triplet_margin, triplets_per_step,
                           snapshot_steps}
      temperature_curve:  {samples, split, seed, decades, points, include_input,
                           include_logits, batch_size}
      dynamics_figure:    {band}
      gan:                {arch, steps, batch_size, z_dim, hidden, lr, beta1, seed,
                           split, log_every, probe_size, sample_snapshots, samples_per_row,
                           device}

Other top-level keys of the file belong to other parts of the pipeline and are
ignored. An unknown experiment or key, or a badly typed value, raises
:class:`snnl.errors.ConfigError` naming the key and the file.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


from snnl.config import read_section as read_yaml_section
from snnl.errors import ConfigError

SECTION = "experiments"


# ---------------------------------------------------------------------------------------
# value checks: each takes (value, key, where) and returns the checked value


def _num(value: Any, key: str, where: str) -> float:
    if isinstance(value, str):  # PyYAML reads `1e-3` (no dot) as a string
        try:
            value = float(value)
        except ValueError:
            pass
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: `{key}` must be a finite number, got {value!r}")
    return float(value)


def pos_float(value: Any, key: str, where: str) -> float:
    v = _num(value, key, where)
    if not v > 0:
        raise ConfigError(f"{where}: `{key}` must be > 0, got {value!r}")
    return v


def nonneg_float(value: Any, key: str, where: str) -> float:
    v = _num(value, key, where)
    if v < 0:
        raise ConfigError(f"{where}: `{key}` must be >= 0, got {value!r}")
    return v


def unit_float(value: Any, key: str, where: str) -> float:
    v = _num(value, key, where)
    if not 0 <= v < 1:
        raise ConfigError(f"{where}: `{key}` must lie in [0, 1), got {value!r}")
    return v


def _int(value: Any, key: str, where: str) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        raise ConfigError(f"{where}: `{key}` must be an integer, got {value!r}")
    return int(value)


def int_at_least(low: int) -> Callable[[Any, str, str], int]:
    def check(value: Any, key: str, where: str) -> int:
        v = _int(value, key, where)
        if v < low:
            raise ConfigError(f"{where}: `{key}` must be >= {low}, got {value!r}")
        return v

    return check


def boolean(value: Any, key: str, where: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{where}: `{key}` must be true or false, got {value!r}")
    return value


def choice(*options: str) -> Callable[[Any, str, str], str]:
    def check(value: Any, key: str, where: str) -> str:
        if value not in options:
            raise ConfigError(f"{where}: `{key}` must be one of {', '.join(options)}; got {value!r}")
        return value

    return check


def int_list(low: int, min_len: int = 1) -> Callable[[Any, str, str], list]:
    def check(value: Any, key: str, where: str) -> list:
        if not isinstance(value, (list, tuple)) or len(value) < min_len:
            raise ConfigError(f"{where}: `{key}` must be a list of at least {min_len} integer(s), got {value!r}")
        return [int_at_least(low)(v, key, where) for v in value]

    return check


def temperature(value: Any, key: str, where: str) -> Any:
    """``initial`` (the optimal T of the initial points, then fixed), ``optimal`` (recomputed
    every step) or a positive number (fixed)."""
    if value in ("initial", "optimal"):
        return value
    try:
        return pos_float(value, key, where)
    except ConfigError:
        raise ConfigError(
            f"{where}: `{key}` must be 'initial', 'optimal' or a positive number, got {value!r}"
        ) from None


def device(value: Any, key: str, where: str) -> str:
    if not isinstance(value, str) or not (value in ("auto", "cpu", "cuda") or value.startswith("cuda:")):
        raise ConfigError(f"{where}: `{key}` must be auto, cpu, cuda or cuda:N; got {value!r}")
    return value


# ---------------------------------------------------------------------------------------
# the sections


@dataclass
class SyntheticConfig:
    """E1/E2: 2-D Gaussian points moved by gradient descent on their coordinates.

    classes, points_per_class: the data (one isotropic Gaussian per class, means evenly
        spaced on a circle of ``radius``, standard deviation ``std``).
    steps, lr: Adam on the coordinates.
    temperature: ``initial`` (the optimal T of the initial points, kept fixed),
        ``optimal`` (recomputed every step; slower) or a positive number.
    fix_scale: after every step, recentre the points and rescale them to their initial
        RMS radius. Off by default: under maximisation both losses are unbounded and the
        cloud grows, but Adam moves each coordinate by about ``lr`` per step, so the
        growth stays bounded over a run, and the clusters that form are what E2 shows
        (with the scale pinned, maximisation collapses most points onto a few spots).
    triplet_margin, triplets_per_step: the triplet loss (Euclidean distance, margin),
        estimated each step on this many random (anchor, positive, negative) triplets.
    snapshot_steps: steps shown as panels in E1 (``steps`` is always added).
    """

    classes: int = 4
    points_per_class: int = 100
    radius: float = 2.0
    std: float = 1.0
    steps: int = 300
    lr: float = 0.05
    seed: int = 0
    temperature: Any = "initial"
    fix_scale: bool = False
    triplet_margin: float = 1.0
    triplets_per_step: int = 20000
    snapshot_steps: list = field(default_factory=lambda: [0, 10, 30, 100, 300])


@dataclass
class TemperatureCurveConfig:
    """E3: SNNL against log10 T for the raw inputs and each layer of trained models.

    samples, split, seed: the evaluation points (a seeded random subset of ``split``).
    decades, points: the grid of T, ``decades`` either side of each representation's
        median pairwise distance (the range :func:`snnl.optimal_temperature` searches),
        ``points`` log-spaced values.
    include_input, include_logits: also measure pixel space / the model's output.
    batch_size: forward-pass batch size.
    """

    samples: int = 1000
    split: str = "test"
    seed: int = 0
    decades: float = 4.0
    points: int = 81
    include_input: bool = True
    include_logits: bool = True
    batch_size: int = 500


@dataclass
class DynamicsFigureConfig:
    """E4: how several seeds of one (dataset, regime) are summarised: ``ci`` (mean and 95%
    bootstrap interval), ``sd`` (mean +- one standard deviation) or ``none`` (mean only)."""

    band: str = "sd"


@dataclass
class GanConfig:
    """E5: a small GAN, SNNL(real vs fake) logged during training.

    arch: ``mlp`` (fully connected; any image size) or ``dcgan`` (convolutional; 28x28
        and 32x32 images).
    steps, batch_size, lr, beta1: training (Adam, the non-saturating GAN loss). The
        default lr (2e-3) suits the small fully connected GAN on digits, where 2e-4
        (DCGAN's) collapses to one mode within the run; use 2e-4 with ``dcgan``.
    z_dim: latent size. hidden: widths of the MLP's hidden layers (discriminator in this
        order, generator in reverse); for ``dcgan``, the first entry is the base width.
    seed, split: reproducibility and the real data used.
    log_every: steps between SNNL measurements (step 0 and the last step are included).
    probe_size: real and fake samples per measurement (fixed real images and fixed
        latent codes, so the curve follows the model, not the sampling).
    sample_snapshots, samples_per_row: the sample grid (rows at log-spaced steps).
    device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    """

    arch: str = "mlp"
    steps: int = 3000
    batch_size: int = 64
    z_dim: int = 32
    hidden: list = field(default_factory=lambda: [256, 128])
    lr: float = 2e-3
    beta1: float = 0.5
    seed: int = 0
    split: str = "train"
    log_every: int = 100
    probe_size: int = 256
    sample_snapshots: int = 5
    samples_per_row: int = 10
    device: str = "auto"

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ConfigError when ``arch`` cannot generate images of ``shape`` (C, H, W)."""
        _, h, w = (int(v) for v in shape)
        if self.arch == "dcgan" and (h != w or h not in (28, 32)):
            raise ConfigError(
                f"experiments.gan.arch: dcgan needs 28x28 or 32x32 images, the data are {h}x{w}; use arch: mlp"
            )


CHECKS: dict[str, dict[str, Callable[[Any, str, str], Any]]] = {
    "synthetic": {
        "classes": int_at_least(2),
        "points_per_class": int_at_least(2),
        "radius": nonneg_float,
        "std": pos_float,
        "steps": int_at_least(0),
        "lr": pos_float,
        "seed": int_at_least(0),
        "temperature": temperature,
        "fix_scale": boolean,
        "triplet_margin": nonneg_float,
        "triplets_per_step": int_at_least(1),
        "snapshot_steps": int_list(0),
    },
    "temperature_curve": {
        "samples": int_at_least(4),
        "split": choice("test", "val", "train"),
        "seed": int_at_least(0),
        "decades": pos_float,
        "points": int_at_least(3),
        "include_input": boolean,
        "include_logits": boolean,
        "batch_size": int_at_least(1),
    },
    "dynamics_figure": {"band": choice("ci", "sd", "none")},
    "gan": {
        "arch": choice("mlp", "dcgan"),
        "steps": int_at_least(1),
        "batch_size": int_at_least(2),
        "z_dim": int_at_least(1),
        "hidden": int_list(1),
        "lr": pos_float,
        "beta1": unit_float,
        "seed": int_at_least(0),
        "split": choice("train", "val", "test"),
        "log_every": int_at_least(1),
        "probe_size": int_at_least(4),
        "sample_snapshots": int_at_least(1),
        "samples_per_row": int_at_least(1),
        "device": device,
    },
}

CLASSES: dict[str, type] = {
    "synthetic": SyntheticConfig,
    "temperature_curve": TemperatureCurveConfig,
    "dynamics_figure": DynamicsFigureConfig,
    "gan": GanConfig,
}

assert all(set(CHECKS[n]) == {f.name for f in fields(c)} for n, c in CLASSES.items())


def read_section(config_path: str | Path | None) -> dict[str, dict[str, Any]]:
    """The ``experiments:`` mapping of a YAML file ({} when no file is given or the key is
    absent), with its experiment names checked."""
    path = config_path
    section = read_yaml_section(config_path, SECTION, must="map experiment names to their settings")
    for name, settings in section.items():
        if name not in CLASSES:
            raise ConfigError(
                f"config file {path}: unknown experiment `{SECTION}.{name}`; known: {', '.join(CLASSES)}"
            )
        if settings is not None and not isinstance(settings, dict):
            raise ConfigError(f"config file {path}: `{SECTION}.{name}` must be a mapping of settings")
    return section


def from_dict(name: str, values: dict[str, Any] | None, where: str = "config"):
    """The config dataclass of experiment ``name`` from ``values`` over the defaults."""
    cls, checks = CLASSES[name], CHECKS[name]
    out = {}
    for key, value in (values or {}).items():
        if key not in checks:
            raise ConfigError(
                f"{where}: unknown key `{SECTION}.{name}.{key}`; known keys: {', '.join(sorted(checks))}"
            )
        out[key] = checks[key](value, f"{SECTION}.{name}.{key}", where)
    return cls(**out)


def load(name: str, config_path: str | Path | None = None, **overrides: Any):
    """Settings of experiment ``name``: defaults < the file's ``experiments.<name>`` < ``overrides``
    (keyword arguments whose value is not None, e.g. command-line flags)."""
    if name not in CLASSES:
        raise ConfigError(f"unknown experiment `{name}`; known: {', '.join(CLASSES)}")
    where = f"config file {config_path}" if config_path is not None else "defaults"
    values = dict(read_section(config_path).get(name) or {})
    values.update({k: v for k, v in overrides.items() if v is not None})
    return from_dict(name, values, where)


def to_dict(cfg) -> dict[str, Any]:
    return copy.deepcopy(asdict(cfg))
