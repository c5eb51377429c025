"""A whole pipeline config (config/*.yaml) as one typed model, :class:`ConfigFile`: the sections
together; the Snakefile's check of it, models built included: :mod:`snnl.pipeline.preflight`.
"""

from typing import Literal, Optional

from pydantic import ConfigDict, Field, create_model, model_validator

from snnl.config_base import Bool, NonNegInt, PosInt, Section, unique
from snnl.data.config import TRAINABLE, DatasetName, DatasetsConfig, PerDataset, TrainableName
from snnl.evaluate.config import EvaluateConfig
from snnl.experiments.config import ExperimentsConfig
from snnl.regimes import DEFAULT_REGIMES, REGIMES
from snnl.training.config import TrainSection, TuneConfig

Outliers = create_model("Outliers", __base__=PerDataset,
                        **{name: (Optional[unique(DatasetName)], None) for name in TRAINABLE})


class PipelineConfig(Section):
    """What to run (the ``pipeline:`` section); the experiments' switches sit in ``experiments:``."""

    datasets: unique(TrainableName, 1)
    outliers: Outliers = Field(default_factory=Outliers)
    regimes: unique(Literal[REGIMES], 1) = list(DEFAULT_REGIMES)
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
