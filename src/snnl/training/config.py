"""The ``train:`` (and ``tune:``) sections of a YAML config: every setting, its default and its check.

Precedence, lowest first: the defaults below < ``train:`` < ``train.overrides.<dataset>``
< tuned parameters (``snnl train --params best.json``). Other top-level keys of the file
belong to other parts of the pipeline and are ignored. An unknown key, or a value of the
wrong type, raises :class:`snnl.errors.ConfigError` naming the key and the file.
"""

from __future__ import annotations

import copy
import json
import math
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any


from snnl.config import read_yaml  # noqa: F401 (re-exported: snnl.training.config.read_yaml)
from snnl.errors import ConfigError

REGIMES = ("baseline", "entangled")
OPTIMIZERS = ("adam", "adamw", "sgd")
SCHEDULES = ("constant", "step", "cosine")
AUGMENTATIONS = ("none", "crop", "flip", "crop_flip")
DISTANCES = ("sqeuclidean", "cosine")
POOLS = ("none", "avg")
PROBE_SPLITS = ("val", "train", "test")


@dataclass
class TrainConfig:
    """Training settings (the ``train:`` section). Defaults: the official demo's CNN recipe.

    model, model_args: architecture (``mlp``/``cnn``/``resnet``) and its constructor args.
    optimizer: ``adam``, ``adamw`` or ``sgd`` (with ``momentum``, ``nesterov``).
    lr, weight_decay: learning rate and weight decay.
    schedule: ``constant``, ``step`` (multiply by ``lr_gamma`` at each epoch in
        ``lr_milestones``) or ``cosine`` (to 0 over the run), applied per step.
    batch_size, epochs, max_steps: minibatch size, epochs, optional cap on steps.
    augmentation: ``none``, ``crop`` (random crop after zero padding of ``crop_padding``),
        ``flip`` (horizontal) or ``crop_flip``.
    device: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``.
    bf16: bfloat16 autocast on CUDA (ignored on CPU).
    threads: torch CPU threads (null: leave torch's default).
    alpha: weight of the SNNL bonus in the entangled regime (Eq. 3); the baseline uses 0.
        Default 0.1, not the official code's 10: with the exact loss and online
        temperatures, alpha >= 0.3 on the demo CNN (3 hidden layers, mnist5k, 2 epochs)
        entangles the last hidden layer completely and costs ~40 points of accuracy;
        0.1-0.15 raises the hidden layers' SNNL clearly at a cost of ~2-3 points.
    initial_temperature, temperature_lr: the per-layer online temperatures (log T,
        learned to minimise SNNL), used for the per-step SNNL of both regimes.
    layers: ``all`` (the model's ``hidden_layers``) or a list of module names.
    distance, pool: passed to the regularizer.
    checkpoint_every: steps between resume checkpoints (0: only at the end).
    log_every: steps between rows of the per-step log (and the last step). Only these
        steps read anything back from the device (one read: the row and the non-finite
        check of every step since the last row); the baseline measures its per-layer
        SNNL (and steps its online temperatures) only at these steps, so that its other
        steps cost what cross-entropy costs.
    probe_size, probe_points, probe_split: the fixed probe batch on which the per-layer
        SNNL at the optimal temperature is logged at ``probe_points`` log-spaced steps.
    eval_batch_size: batch size of the accuracy passes.
    """

    model: str = "cnn"
    model_args: dict = field(default_factory=dict)
    optimizer: str = "adam"
    lr: float = 1e-3
    momentum: float = 0.9
    nesterov: bool = False
    weight_decay: float = 0.0
    schedule: str = "constant"
    lr_milestones: list = field(default_factory=list)
    lr_gamma: float = 0.1
    batch_size: int = 128
    epochs: int = 6
    max_steps: int | None = None
    augmentation: str = "none"
    crop_padding: int = 4
    device: str = "auto"
    bf16: bool = False
    threads: int | None = None
    alpha: float = 0.1
    initial_temperature: float = 100.0
    temperature_lr: float = 0.1
    layers: Any = "all"
    distance: str = "sqeuclidean"
    pool: str = "none"
    checkpoint_every: int = 500
    log_every: int = 10
    probe_size: int = 512
    probe_points: int = 16
    probe_split: str = "val"
    eval_batch_size: int = 1000

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))

    def replace(self, where: str = "overrides", **changes: Any) -> "TrainConfig":
        """A copy with ``changes`` applied (each checked)."""
        return TrainConfig.from_dict({**self.to_dict(), **changes}, where=where)

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "config") -> "TrainConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(
                    f"{where}: unknown key `train.{key}`; known keys: {', '.join(sorted(known))}"
                )
        checked = {k: _check(k, v, where) for k, v in values.items()}
        cfg = cls(**checked)
        _check_consistency(cfg, where)
        return cfg


# key -> kind used by _check
_KINDS: dict[str, Any] = {
    "model": ("choice", ("mlp", "cnn", "resnet")),
    "model_args": "dict",
    "optimizer": ("choice", OPTIMIZERS),
    "lr": "pos_float",
    "momentum": "nonneg_float",
    "nesterov": "bool",
    "weight_decay": "nonneg_float",
    "schedule": ("choice", SCHEDULES),
    "lr_milestones": "int_list",
    "lr_gamma": "pos_float",
    "batch_size": "pos_int",
    "epochs": "pos_int",
    "max_steps": "pos_int|null",
    "augmentation": ("choice", AUGMENTATIONS),
    "crop_padding": "nonneg_int",
    "device": "device",
    "bf16": "bool",
    "threads": "pos_int|null",
    "alpha": "float",
    "initial_temperature": "pos_float",
    "temperature_lr": "nonneg_float",
    "layers": "layers",
    "distance": ("choice", DISTANCES),
    "pool": ("choice", POOLS),
    "checkpoint_every": "nonneg_int",
    "log_every": "pos_int",
    "probe_size": "nonneg_int",
    "probe_points": "nonneg_int",
    "probe_split": ("choice", PROBE_SPLITS),
    "eval_batch_size": "pos_int",
}


def _number(key: str, value: Any, where: str) -> float:
    # PyYAML reads `1e-3` (no dot) as a string; accept numeric strings.
    if isinstance(value, bool):
        raise ConfigError(f"{where}: `train.{key}` must be a number, got {value!r}")
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise ConfigError(f"{where}: `train.{key}` must be a number, got {value!r}") from None
    if not isinstance(value, (int, float)) or not math.isfinite(value):
        raise ConfigError(f"{where}: `train.{key}` must be a finite number, got {value!r}")
    return float(value)


def _integer(key: str, value: Any, where: str) -> int:
    if isinstance(value, bool) or not (isinstance(value, int) or (isinstance(value, float) and value.is_integer())):
        raise ConfigError(f"{where}: `train.{key}` must be an integer, got {value!r}")
    return int(value)


def _check(key: str, value: Any, where: str) -> Any:
    kind = _KINDS[key]
    if isinstance(kind, tuple):
        if value not in kind[1]:
            raise ConfigError(f"{where}: `train.{key}` must be one of {', '.join(kind[1])}; got {value!r}")
        return value
    nullable = kind.endswith("|null")
    base = kind.removesuffix("|null")
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{where}: `train.{key}` must not be empty (null)")
    if base == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{where}: `train.{key}` must be true or false, got {value!r}")
        return value
    if base == "float":
        return _number(key, value, where)
    if base in ("pos_float", "nonneg_float"):
        v = _number(key, value, where)
        if base == "pos_float" and not v > 0:
            raise ConfigError(f"{where}: `train.{key}` must be > 0, got {value!r}")
        if base == "nonneg_float" and v < 0:
            raise ConfigError(f"{where}: `train.{key}` must be >= 0, got {value!r}")
        return v
    if base in ("pos_int", "nonneg_int"):
        v = _integer(key, value, where)
        if base == "pos_int" and v < 1:
            raise ConfigError(f"{where}: `train.{key}` must be >= 1, got {value!r}")
        if v < 0:
            raise ConfigError(f"{where}: `train.{key}` must be >= 0, got {value!r}")
        return v
    if base == "int_list":
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where}: `train.{key}` must be a list of integers, got {value!r}")
        return [_integer(key, v, where) for v in value]
    if base == "dict":
        if not isinstance(value, dict):
            raise ConfigError(f"{where}: `train.{key}` must be a mapping, got {value!r}")
        return copy.deepcopy(value)
    if base == "device":
        if not isinstance(value, str) or not (
            value in ("auto", "cpu", "cuda") or (value.startswith("cuda:") and value[5:].isdigit())
        ):
            raise ConfigError(f"{where}: `train.{key}` must be auto, cpu, cuda or cuda:N; got {value!r}")
        return value
    if base == "layers":
        if value == "all":
            return value
        if isinstance(value, (list, tuple)) and value and all(isinstance(v, str) for v in value):
            return list(value)
        raise ConfigError(f"{where}: `train.{key}` must be `all` or a non-empty list of layer names, got {value!r}")
    raise AssertionError(kind)  # pragma: no cover


def _check_consistency(cfg: TrainConfig, where: str) -> None:
    if cfg.schedule == "step" and not cfg.lr_milestones:
        raise ConfigError(f"{where}: `train.schedule: step` needs `train.lr_milestones` (epochs at which lr is multiplied by lr_gamma)")
    if cfg.probe_points and cfg.probe_size and cfg.probe_size < 2:
        raise ConfigError(f"{where}: `train.probe_size` must be 0 (no probe) or >= 2, got {cfg.probe_size}")


# ---------------------------------------------------------------------------------------
# Reading the YAML file


def _section(document: dict[str, Any], key: str, where: str) -> dict[str, Any]:
    section = document.get(key)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"{where}: `{key}` must be a mapping of settings, got {type(section).__name__}")
    return dict(section)


def _known_datasets() -> set[str]:
    try:
        from snnl.data.defaults import DEFAULTS
    except ImportError:  # pragma: no cover - the data part is absent
        return set()
    return set(DEFAULTS)


def train_config(
    document: dict[str, Any] | None = None,
    dataset: str | None = None,
    params: dict[str, Any] | None = None,
    where: str = "config",
) -> TrainConfig:
    """Resolve the training settings: defaults < ``train:`` < ``train.overrides.<dataset>`` < params."""
    section = _section(document or {}, "train", where)
    overrides = section.pop("overrides", None) or {}
    if not isinstance(overrides, dict) or not all(isinstance(v, dict) or v is None for v in overrides.values()):
        raise ConfigError(f"{where}: `train.overrides` must map dataset names to mappings of train settings")
    # check every dataset's overrides, not only the one in use, so typos surface early
    known = _known_datasets()
    for name, values in overrides.items():
        if known and name not in known:
            raise ConfigError(
                f"{where}: unknown dataset `train.overrides.{name}`; known datasets: {', '.join(sorted(known))}"
            )
        TrainConfig.from_dict({**section, **(values or {})}, where=f"{where} (train.overrides.{name})")
    values = {**section, **((overrides.get(dataset) or {}) if dataset else {})}
    cfg = TrainConfig.from_dict(values, where=where)
    if params:
        cfg = cfg.replace(where="tuned parameters", **params)
    return cfg


def load_train_config(
    path: str | Path | None, dataset: str | None = None, params: dict[str, Any] | None = None
) -> TrainConfig:
    where = f"config file {path}" if path is not None else "defaults"
    return train_config(read_yaml(path), dataset, params, where)


def read_params(path: str | Path, regime: str | None = None) -> dict[str, Any]:
    """Tuned parameters from ``snnl tune``'s JSON (``{"params": {...}}``) or a flat JSON mapping."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameters file {path} does not exist; write it with `snnl tune --out {path}`")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"parameters file {path} is not valid JSON: {err}") from err
    if not isinstance(obj, dict):
        raise ConfigError(f"parameters file {path} must hold a JSON object")
    params = obj["params"] if "params" in obj else obj
    if not isinstance(params, dict):
        raise ConfigError(f"parameters file {path}: `params` must be a JSON object")
    tuned_regime = obj.get("regime") if "params" in obj else None
    if regime is not None and tuned_regime is not None and tuned_regime != regime:
        raise ConfigError(
            f"parameters file {path} was tuned for regime `{tuned_regime}`, but this run trains `{regime}`; "
            f"pass the file tuned for `{regime}`"
        )
    known = {f.name for f in fields(TrainConfig)}
    for key in params:
        if key not in known:
            raise ConfigError(f"parameters file {path}: unknown parameter `{key}`; known: {', '.join(sorted(known))}")
    return dict(params)


# ---------------------------------------------------------------------------------------
# The ``tune:`` section

DEFAULT_SPACE: dict[str, dict[str, dict[str, Any]]] = {
    "baseline": {"lr": {"low": 1e-4, "high": 1e-2, "log": True}},
    "entangled": {
        "lr": {"low": 1e-4, "high": 1e-2, "log": True},
        "alpha": {"low": 0.01, "high": 1.0, "log": True},
        "initial_temperature": {"low": 1.0, "high": 1000.0, "log": True},
    },
}


@dataclass
class TuneConfig:
    """Search settings (the ``tune:`` section).

    n_trials: trials in the study (across all workers). sampler: ``tpe`` or ``random``.
    sampler_seed: seed of the sampler (null: the run's --seed). workers: parallel
    processes on one machine. epochs, max_steps: optional shorter training for trials.
    space: per regime, ``{param: {low, high, log}}`` or ``{param: {choices: [...]}}``;
    a regime absent from ``space`` gets the default space.
    """

    n_trials: int = 20
    sampler: str = "tpe"
    sampler_seed: int | None = None
    workers: int = 1
    epochs: int | None = None
    max_steps: int | None = None
    space: dict = field(default_factory=lambda: copy.deepcopy(DEFAULT_SPACE))

    @classmethod
    def from_dict(cls, values: dict[str, Any] | None, where: str = "config") -> "TuneConfig":
        values = dict(values or {})
        known = {f.name for f in fields(cls)}
        for key in values:
            if key not in known:
                raise ConfigError(f"{where}: unknown key `tune.{key}`; known keys: {', '.join(sorted(known))}")
        out = cls()
        for key in ("n_trials", "workers"):
            if key in values:
                v = values[key]
                if isinstance(v, bool) or not isinstance(v, int) or v < 1:
                    raise ConfigError(f"{where}: `tune.{key}` must be an integer >= 1, got {v!r}")
                setattr(out, key, v)
        for key in ("sampler_seed", "epochs", "max_steps"):
            if key in values:
                v = values[key]
                if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < (0 if key == "sampler_seed" else 1)):
                    raise ConfigError(f"{where}: `tune.{key}` must be a non-negative integer or null, got {v!r}")
                setattr(out, key, v)
        if "sampler" in values:
            if values["sampler"] not in ("tpe", "random"):
                raise ConfigError(f"{where}: `tune.sampler` must be tpe or random, got {values['sampler']!r}")
            out.sampler = values["sampler"]
        if "space" in values:
            space = values["space"]
            if not isinstance(space, dict):
                raise ConfigError(f"{where}: `tune.space` must map regimes to parameter ranges")
            merged = copy.deepcopy(DEFAULT_SPACE)
            for regime, params in space.items():
                if regime not in REGIMES:
                    raise ConfigError(f"{where}: unknown regime `tune.space.{regime}`; use {' or '.join(REGIMES)}")
                merged[regime] = _check_space(regime, params, where)
            out.space = merged
        return out

    def to_dict(self) -> dict[str, Any]:
        return copy.deepcopy(asdict(self))


def _check_space(regime: str, params: Any, where: str) -> dict[str, dict[str, Any]]:
    if not isinstance(params, dict) or not params:
        raise ConfigError(f"{where}: `tune.space.{regime}` must map parameter names to ranges")
    known = {f.name: f for f in fields(TrainConfig)}
    out = {}
    for name, spec in params.items():
        label = f"`tune.space.{regime}.{name}`"
        if name not in known:
            raise ConfigError(f"{where}: {label}: `{name}` is not a train setting; known: {', '.join(sorted(known))}")
        if isinstance(spec, (list, tuple)) and len(spec) == 2:
            spec = {"low": spec[0], "high": spec[1], "log": True}
        if not isinstance(spec, dict):
            raise ConfigError(f"{where}: {label} must be {{low, high, log}} or {{choices: [...]}}")
        if "choices" in spec:
            if set(spec) != {"choices"} or not isinstance(spec["choices"], list) or not spec["choices"]:
                raise ConfigError(f"{where}: {label}: `choices` must be a non-empty list and stand alone")
            for choice in spec["choices"]:
                TrainConfig.from_dict({name: choice}, where=f"{where} ({label})")
            out[name] = {"choices": list(spec["choices"])}
            continue
        extra = set(spec) - {"low", "high", "log"}
        if extra or "low" not in spec or "high" not in spec:
            raise ConfigError(f"{where}: {label} needs `low` and `high` (and optionally `log`), got keys {sorted(spec)}")
        low, high = _number(name, spec["low"], where), _number(name, spec["high"], where)
        log = spec.get("log", False)
        if not isinstance(log, bool):
            raise ConfigError(f"{where}: {label}.log must be true or false")
        if not low < high or (log and low <= 0):
            raise ConfigError(f"{where}: {label} needs low < high (and low > 0 with log), got [{low}, {high}]")
        is_int = _KINDS.get(name, "").startswith(("pos_int", "nonneg_int"))
        TrainConfig.from_dict({name: int(low) if is_int else low}, where=f"{where} ({label})")
        out[name] = {"low": int(low) if is_int else low, "high": int(high) if is_int else high, "log": log, "int": is_int}
    return out


def tune_config(document: dict[str, Any] | None, where: str = "config") -> TuneConfig:
    return TuneConfig.from_dict(_section(document or {}, "tune", where), where=where)


# ---------------------------------------------------------------------------------------
# JSON Schema (for workflow/schemas/, so the pipeline validates with the same rules)

_SCHEMA_TYPES: dict[str, dict[str, Any]] = {
    "dict": {"type": "object"},
    "bool": {"type": "boolean"},
    "float": {"type": ["number", "string"]},
    "pos_float": {"type": ["number", "string"]},
    "nonneg_float": {"type": ["number", "string"]},
    "pos_int": {"type": "integer", "minimum": 1},
    "nonneg_int": {"type": "integer", "minimum": 0},
    "int_list": {"type": "array", "items": {"type": "integer"}},
    "device": {"type": "string", "pattern": "^(auto|cpu|cuda|cuda:[0-9]+)$"},
    "layers": {"anyOf": [{"const": "all"}, {"type": "array", "items": {"type": "string"}, "minItems": 1}]},
}


def train_json_schema() -> dict[str, Any]:
    """JSON Schema of the ``train:`` section (with defaults); the code's checks remain the reference."""
    defaults = TrainConfig().to_dict()
    props: dict[str, Any] = {}
    for key, kind in _KINDS.items():
        if isinstance(kind, tuple):
            spec: dict[str, Any] = {"enum": list(kind[1])}
        else:
            base = kind.removesuffix("|null")
            spec = copy.deepcopy(_SCHEMA_TYPES[base])
            if kind.endswith("|null"):
                spec = {"anyOf": [spec, {"type": "null"}]}
        spec["default"] = defaults[key]
        props[key] = spec
    section = {"type": "object", "additionalProperties": False, "properties": props}
    overrides = {"type": "object", "additionalProperties": {"type": ["object", "null"], "additionalProperties": False, "properties": props}}
    return {**section, "properties": {**props, "overrides": overrides}}
