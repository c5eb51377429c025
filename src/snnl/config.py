"""A whole pipeline config (config/*.yaml) checked in one pass, before any job starts (the Snakefile,
`snnl check-config`): :class:`ConfigFile`, the typed sections together, then the models the pipeline
will train, built once on the CPU, so that bad model args or layer names fail here, not in a job.
"""

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import ConfigDict, Field, create_model, model_validator

from snnl.config_base import Bool, NonNegInt, PosInt, Section, check, unique
from snnl.data.config import TRAINABLE, DatasetName, DatasetsConfig, PerDataset, TrainableName
from snnl.errors import ConfigError
from snnl.evaluate.config import EvaluateConfig
from snnl.experiments.config import ExperimentsConfig
from snnl.regimes import REGIMES
from snnl.training.config import TrainSection, TuneConfig
from snnl.yaml_io import read_yaml

Outliers = create_model("Outliers", __base__=PerDataset,
                        **{name: (Optional[unique(DatasetName)], None) for name in TRAINABLE})


class PipelineConfig(Section):
    """What to run (the ``pipeline:`` section); the experiments' switches sit in ``experiments:``."""

    datasets: unique(TrainableName, 1)
    outliers: Outliers = Field(default_factory=Outliers)
    regimes: unique(Literal[REGIMES], 1) = list(REGIMES)
    seeds: unique(NonNegInt, 1)
    tune: Bool = False
    tune_seed: NonNegInt = 0
    threads: PosInt = 1
    gpu_jobs: Bool = True

    @model_validator(mode="after")
    def _outliers_of_trained_datasets(self) -> "PipelineConfig":
        for name in self.outliers.model_fields_set:
            if name not in self.datasets:
                raise ValueError(f"`outliers.{name}`: {name} is not one of pipeline.datasets {self.datasets}; "
                                 "add it there or remove the entry")
            if name in self.outlier_sets(name):
                raise ValueError(f"`outliers.{name}` lists {name} itself; an outlier set is another dataset, "
                                 f"adapted to {name}'s image shape: remove {name} from the list")
        return self

    def outlier_sets(self, dataset: str) -> list[str]:
        return list(getattr(self.outliers, dataset) or [])


class ConfigFile(Section):
    """A whole pipeline config file (absent sections take their defaults)."""

    model_config = ConfigDict(json_schema_extra=None)  # the file itself is never null
    pipeline: PipelineConfig
    datasets: DatasetsConfig = Field(default_factory=DatasetsConfig)
    train: TrainSection = Field(default_factory=TrainSection)
    tune: TuneConfig = Field(default_factory=TuneConfig)
    evaluate: EvaluateConfig = Field(default_factory=EvaluateConfig)
    experiments: ExperimentsConfig = Field(default_factory=ExperimentsConfig)


def check_document(document: dict[str, Any], where: str) -> ConfigFile:
    """Every section of ``document`` (a parsed config) checked, then the models and GANs the
    pipeline will build; otherwise ConfigError "WHERE: ..." (one line naming the key)."""
    cfg = check(ConfigFile, document, where)
    cfg.train.check_overrides(where)
    for name in cfg.pipeline.datasets:
        _check_model(cfg, name, where)
    for name in cfg.experiments.gan.datasets:
        try:
            cfg.experiments.gan.check_shape(_image_shape(cfg, name))
        except ConfigError as err:
            raise ConfigError(f"{where}: the GAN for dataset `{name}` (`experiments.gan.datasets`): {err}") from None
    return cfg


def validate_file(path: str | Path) -> ConfigFile:
    """:func:`check_document` of the config file ``path`` (parsed once)."""
    return check_document(read_yaml(path), f"config file {path}")


def _image_shape(cfg: ConfigFile, name: str) -> tuple[int, int, int]:
    from snnl.data.registry import get_entry

    return tuple(int(v) for v in get_entry(name).native_shape(cfg.datasets.options(name)))


def _check_model(cfg: ConfigFile, name: str, where: str) -> None:
    """Build (untrained, on the CPU) the model `snnl train` will build for dataset ``name``,
    so that a bad ``train.model_args``, an image too small for the model or a layer name
    that is not in it fails here, before any job, not in the middle of a run."""
    from snnl.models import build_model

    train, shape = cfg.train.resolve(name, where), _image_shape(cfg, name)
    try:  # 10 classes: the class count changes no layer name and no constructor argument
        model = build_model(train.model, shape, 10, **train.model_args)
    except ConfigError as err:
        raise ConfigError(
            f"{where}: `train.model: {train.model}` with `train.model_args: {train.model_args}` cannot be built for "
            f"dataset `{name}` (images {'x'.join(map(str, shape))}): {err}. Change `train.model` or "
            f"`train.model_args` (for this dataset only: under `train.overrides.{name}`)"
        ) from None
    hidden = list(getattr(model, "hidden_layers", []))
    modules = {n for n, _ in model.named_modules() if n}
    for key, layers in (("train.layers", train.layers), ("evaluate.layers", cfg.evaluate.layers)):
        missing = [n for n in layers if n not in modules] if layers != "all" else []
        if missing:
            raise ConfigError(
                f"{where}: `{key}` names {missing}, which are not layers of the `{train.model}` model built for "
                f"dataset `{name}`; its hidden layers are {', '.join(hidden)}: list some of those, or use `all`"
            )
