"""The ``experiments:`` section: the analysis experiments E1-E5, each switch (``run``; the GAN's
``datasets``, read by the pipeline) next to its settings (read by the commands); see config/README.md.
"""

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Optional

from pydantic import Field

from snnl.config_base import Bool, Device, NonNegFloat, NonNegInt, PosFloat, PosInt, Section, either, integer
from snnl.config_base import number, section_of, unique
from snnl.data.config import TrainableName
from snnl.errors import ConfigError


class Experiment(Section):
    """An analysis experiment; ``switch`` names the key the pipeline reads."""

    switch: ClassVar[str] = "run"


class SyntheticConfig(Experiment):
    """E1/E2: 2-D Gaussian points, one per class, moved by Adam on their coordinates."""

    run: Bool = True
    classes: integer(ge=2) = 4
    points_per_class: integer(ge=2) = 100
    radius: NonNegFloat = 2.0
    std: PosFloat = 1.0
    steps: NonNegInt = 300
    lr: PosFloat = 0.05
    seed: NonNegInt = 0
    temperature: either(Literal["initial", "optimal"], PosFloat, rule="must be initial, optimal or a positive number") = "initial"
    fix_scale: Bool = False
    triplet_margin: NonNegFloat = 1.0
    triplets_per_step: PosInt = 20000
    snapshot_steps: Annotated[list[NonNegInt], Field(min_length=1)] = [0, 10, 30, 100, 300]


class TemperatureCurveConfig(Experiment):
    """E3: SNNL against log10 T for the raw inputs and each layer of trained models."""

    run: Bool = True
    samples: integer(ge=4) = 1000
    split: Literal["test", "val", "train"] = "test"
    seed: NonNegInt = 0
    decades: PosFloat = 4.0
    points: integer(ge=3) = 81
    include_input: Bool = True
    include_logits: Bool = True
    batch_size: PosInt = 500


class DynamicsConfig(Experiment):
    """E4: how the seeds of one (dataset, regime) are summarised (``band``: ``ci``, ``sd`` or ``none``),
    and C1's long horizon: a baseline run of ``long_epochs`` epochs per seed of ``long_seeds`` (null: none)."""

    run: Bool = True
    band: Literal["ci", "sd", "none"] = "sd"
    long_epochs: Optional[PosInt] = None
    long_seeds: unique(NonNegInt, 1) = [0]


class GanConfig(Experiment):
    """E5: a small GAN (``mlp``, or ``dcgan`` for 28x28 and 32x32 images), SNNL(real vs fake) logged."""

    switch: ClassVar[str] = "datasets"
    datasets: unique(TrainableName) = ["mnist5k"]
    arch: Literal["mlp", "dcgan"] = "mlp"
    steps: PosInt = 3000
    batch_size: integer(ge=2) = 64
    z_dim: PosInt = 32
    hidden: Annotated[list[PosInt], Field(min_length=1)] = [256, 128]
    lr: PosFloat = 2e-3
    beta1: number(ge=0, lt=1) = 0.5
    seed: NonNegInt = 0
    seeds: unique(NonNegInt, 1) = [0]  # the pipeline's runs per dataset (C2's n); `seed` is one run's
    split: Literal["train", "val", "test"] = "train"
    log_every: PosInt = 100
    probe_size: integer(ge=4) = 256
    sample_snapshots: PosInt = 5
    samples_per_row: PosInt = 10
    device: Device = "auto"

    def check_shape(self, shape: tuple[int, ...]) -> None:
        """Raise ConfigError when ``arch`` cannot generate images of ``shape`` (C, H, W)."""
        _, h, w = (int(v) for v in shape)
        if self.arch == "dcgan" and (h != w or h not in (28, 32)):
            raise ConfigError(f"experiments.gan.arch: dcgan needs 28x28 or 32x32 images, the data are {h}x{w}; "
                              "use arch: mlp")


class ExperimentsConfig(Section):
    """The ``experiments:`` section."""

    item = "experiment"
    synthetic: SyntheticConfig = Field(default_factory=SyntheticConfig)
    temperature_curve: TemperatureCurveConfig = Field(default_factory=TemperatureCurveConfig)
    dynamics: DynamicsConfig = Field(default_factory=DynamicsConfig)
    gan: GanConfig = Field(default_factory=GanConfig)


def load(name: str, source: dict[str, Any] | str | Path | None = None, where: str = "", **overrides: Any) -> Any:
    """Settings of experiment ``name``: defaults < ``experiments.<name>`` of ``source`` (a parsed
    config document or a config file) < ``overrides`` (those not None, e.g. command-line flags)."""
    if name not in ExperimentsConfig.model_fields:
        raise ConfigError(f"unknown experiment `{name}`; known: {', '.join(ExperimentsConfig.model_fields)}")
    cfg = getattr(section_of(ExperimentsConfig, source, "experiments", where), name)
    changes = {k: v for k, v in overrides.items() if v is not None}
    return cfg.replace("command line", ("experiments", name), **changes) if changes else cfg
