"""The ``train:`` and ``tune:`` sections: every setting's type and default (meanings: config/README.md).
Precedence, lowest first: these defaults < ``train:`` < ``train.overrides.<dataset>`` < the regime's
settings (:data:`snnl.regimes.REGIME_SETTINGS`) < ``train.regimes.<regime>`` < tuned parameters.
"""

import copy
from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, ValidationError, ValidationInfo, create_model, field_validator

from snnl.config_base import Bool, Device, Float, Int, Layers, NonNegFloat, NonNegInt, PosFloat, PosInt, Section
from snnl.config_base import check, require, section_of
from snnl.data.config import TRAINABLE, PerDataset
from snnl.errors import validation_message
from snnl.regimes import REGIME_SETTINGS, REGIMES


class TrainConfig(Section):
    """The ``train:`` settings; defaults: the official demo's CNN recipe, but alpha 0.1 (docs/DEVIATIONS.md D12)."""

    model: Literal["mlp", "cnn", "resnet"] = "cnn"
    model_args: dict[str, Any] = {}
    optimizer: Literal["adam", "adamw", "sgd"] = "adam"
    lr: PosFloat = 1e-3
    momentum: NonNegFloat = 0.9
    nesterov: Bool = False
    weight_decay: NonNegFloat = 0.0
    schedule: Literal["constant", "step", "cosine"] = "constant"
    lr_milestones: list[Int] = Field(default_factory=list, validate_default=True)
    lr_gamma: PosFloat = 0.1
    batch_size: PosInt = 128
    epochs: PosInt = 6
    max_steps: Optional[PosInt] = None
    augmentation: Literal["none", "crop", "flip", "crop_flip"] = "none"
    crop_padding: NonNegInt = 4
    device: Device = "auto"
    bf16: Bool = False
    channels_last: Bool = True
    threads: Optional[PosInt] = None
    alpha: Float = 0.1
    numerics: Literal["exact", "cleverhans"] = "exact"
    temperature: Literal["online", "fixed", "inverse_t"] = "online"
    initial_temperature: PosFloat = 100.0
    temperature_lr: NonNegFloat = 0.1
    init: Literal["default", "he_normal"] = "default"
    normalize: Bool = True
    layers: Layers = "all"
    distance: Literal["sqeuclidean", "cosine"] = "sqeuclidean"
    pool: Literal["none", "avg"] = "none"
    checkpoint_every: NonNegInt = 500
    log_every: PosInt = 10
    probe_size: Annotated[NonNegInt, require(lambda v: v != 1, "must be 0 (no probe) or >= 2", after=True)] = 512
    probe_points: NonNegInt = 16
    probe_split: Literal["val", "train", "test"] = "val"
    eval_batch_size: PosInt = 1000

    @field_validator("lr_milestones")
    @classmethod
    def _milestones_for_step(cls, value: list[int], info: ValidationInfo) -> list[int]:
        if info.data.get("schedule") == "step" and not value:
            raise ValueError("must list the epochs at which lr is multiplied by lr_gamma (`.schedule` is step)")
        return value


def _unset(field: Any) -> Any:  # in an override, a key absent is not set
    field = copy.copy(field)
    field.default, field.default_factory, field.validate_default = None, None, False
    return field


TrainOverride = create_model("TrainOverride", __base__=Section,
                             **{k: (f.annotation, _unset(f)) for k, f in TrainConfig.model_fields.items()})
TrainOverrides = create_model("TrainOverrides", __base__=PerDataset,
                              **{n: (Optional[TrainOverride], None) for n in TRAINABLE})
RegimeOverrides = create_model("RegimeOverrides", __base__=Section,
                               **{n: (Optional[TrainOverride], None) for n in REGIMES})


class TrainSection(TrainConfig):
    """The ``train:`` section as written: the settings, ``overrides: {DATASET: {...}}`` and
    ``regimes: {REGIME: {...}}``."""

    overrides: TrainOverrides = Field(default_factory=TrainOverrides)
    regimes: RegimeOverrides = Field(default_factory=RegimeOverrides)

    def resolve(self, dataset: str | None, where: str, regime: str | None = None) -> TrainConfig:
        """The settings for ``dataset`` and ``regime``: this section, the dataset's override, the
        regime's settings, then ``regimes.<regime>`` (checked together)."""
        values = self.model_dump(exclude={"overrides", "regimes"}, exclude_unset=True)
        override = getattr(self.overrides, dataset) if dataset in TrainOverrides.model_fields else None
        values.update(override.model_dump(exclude_unset=True) if override else {})
        values.update(REGIME_SETTINGS.get(regime, {}))
        own = getattr(self.regimes, regime) if regime in RegimeOverrides.model_fields else None
        values.update(own.model_dump(exclude_unset=True) if own else {})
        keys = [f"train.overrides.{dataset}"] * bool(override) + [f"train.regimes.{regime}"] * bool(own)
        return check(TrainConfig, values, f"{where} ({', '.join(keys)})" if keys else where, ("train",))

    def check_overrides(self, where: str) -> "TrainSection":
        """Resolve every dataset's overrides, not only the one in use, so that typos surface early."""
        for name in self.overrides.model_fields_set:
            self.resolve(name, where)
        for regime in self.regimes.model_fields_set:
            self.resolve(None, where, regime)
        return self


def train_config(source: dict[str, Any] | str | Path | None = None, dataset: str | None = None,
                 params: dict[str, Any] | None = None, where: str = "", regime: str | None = None) -> TrainConfig:
    """The training settings: defaults < ``train:`` of ``source`` (a parsed config document or a
    config file) < ``train.overrides.<dataset>`` < the regime's settings < ``train.regimes.<regime>``
    < ``params`` (tuned parameters)."""
    section = section_of(TrainSection, source, "train", where)
    cfg = section.check_overrides(where or "config").resolve(dataset, where or "config", regime)
    return cfg.replace("tuned parameters", ("train",), **params) if params else cfg


_LR = {"lr": {"low": 1e-4, "high": 1e-2, "log": True}}
_BONUS = {**_LR, "alpha": {"low": 1e-3, "high": 10.0, "log": True},
          "initial_temperature": {"low": 1.0, "high": 1000.0, "log": True}}
DEFAULT_SPACE: dict[str, dict[str, dict[str, Any]]] = {"baseline": _LR, "entangled": _BONUS, "official": _BONUS}

TrainKey = Literal[tuple(TrainConfig.model_fields)]


class TuneConfig(Section):
    """The ``tune:`` settings; a regime absent from ``space`` searches its default space."""

    n_trials: PosInt = 20
    sampler: Literal["tpe", "random"] = "tpe"
    sampler_seed: Optional[NonNegInt] = None
    workers: PosInt = 1
    epochs: Optional[PosInt] = None
    max_steps: Optional[PosInt] = None
    pruner: Literal["median", "hyperband", "none"] = "median"
    pruner_startup: NonNegInt = 2
    space: dict[Literal[REGIMES], Annotated[dict[TrainKey, Any], Field(min_length=1)]] = Field(
        default_factory=lambda: copy.deepcopy(DEFAULT_SPACE))

    @field_validator("space")
    @classmethod
    def _space(cls, space: dict[str, dict[str, Any]]) -> dict[str, dict[str, Any]]:
        checked = {regime: {name: _range(regime, name, spec) for name, spec in params.items()}
                   for regime, params in space.items()}
        return {**copy.deepcopy(DEFAULT_SPACE), **checked}


def _range(regime: str, name: str, spec: Any) -> dict[str, Any]:
    key = f"`{regime}.{name}`"
    spec = {"low": spec[0], "high": spec[1], "log": True} if isinstance(spec, list) and len(spec) == 2 else spec
    if isinstance(spec, dict) and list(spec) == ["choices"] and isinstance(spec["choices"], list) and spec["choices"]:
        return {"choices": [_value(regime, name, c) for c in spec["choices"]]}
    if not isinstance(spec, dict) or not {"low", "high"} <= set(spec) <= {"low", "high", "log"}:
        raise ValueError(f"{key} must be [low, high], {{low, high, log}} or {{choices: [a non-empty list]}}")
    low, high, log = _value(regime, name, spec["low"]), _value(regime, name, spec["high"]), spec.get("log", False)
    if not isinstance(log, bool) or isinstance(low, bool) or not isinstance(low, (int, float)) or not low < high \
            or log and low <= 0:
        raise ValueError(f"{key} needs numbers low < high (low > 0 with log) and log true or false; got {spec}")
    return {"low": low, "high": high, "log": log, "int": isinstance(low, int)}


def _value(regime: str, name: str, value: Any) -> Any:
    try:  # the rules of ``train:``
        return getattr(TrainOverride.model_validate({name: value}), name)
    except ValidationError as err:
        raise ValueError(validation_message(TrainOverride, err, (regime,))) from None


def tune_config(source: dict[str, Any] | str | Path | None, where: str = "") -> TuneConfig:
    return section_of(TuneConfig, source, "tune", where)
