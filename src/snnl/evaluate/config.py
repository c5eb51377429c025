"""The ``evaluate:`` section: every setting of `snnl evaluate`, its type and default (meanings:
config/README.md). ``epsilons``: L-infinity radii in [0, 1] pixel units, ``gray`` for 1-channel
inputs, ``rgb`` (2/255 ... 8/255) for the others; ``k`` <= ``reference_size``."""

from pathlib import Path
from typing import Any, Literal, Optional

from pydantic import Field, ValidationInfo, field_validator

from snnl.attacks import ATTACKS
from snnl.config_base import Bool, Layers, NonNegFloat, NonNegInt, PosFloat, PosInt, Section, number, section_of, unique


class Epsilons(Section):
    gray: list[number(ge=0, le=1)] = [0.1, 0.2, 0.3]
    rgb: list[number(ge=0, le=1)] = [2 / 255, 4 / 255, 6 / 255, 8 / 255]


class EvaluateConfig(Section):
    """Settings of `snnl evaluate` (the ``evaluate:`` section)."""

    seed: NonNegInt = 0
    batch_size: PosInt = 500
    epsilons: Epsilons = Field(default_factory=Epsilons)
    attacks: unique(Literal[ATTACKS]) = list(ATTACKS)
    attack_size: Optional[PosInt] = 500
    pgd_steps: PosInt = 20
    pgd_step_size: Optional[NonNegFloat] = None
    pgd_random_start: Bool = True
    reference_size: PosInt = 1000
    k: PosInt = 50
    outlier_size: Optional[PosInt] = 1000
    layers: Layers = "all"
    tsne_size: NonNegInt = 500
    tsne_perplexity: PosFloat = 30.0
    tsne_pca: NonNegInt = 50
    gradient_tsne_size: NonNegInt = 128
    ece_bins: PosInt = 15

    @field_validator("k")
    @classmethod
    def _k_within_reference(cls, k: int, info: ValidationInfo) -> int:
        if k > info.data.get("reference_size", k):
            raise ValueError(f"must be <= `.reference_size` ({info.data['reference_size']}): the deep k-NN looks "
                             "for k neighbours in the reference set")
        return k

    def epsilons_for(self, channels: int) -> list[float]:
        """The epsilon grid of an input with ``channels`` channels (1: gray, otherwise rgb)."""
        return list(self.epsilons.gray if int(channels) == 1 else self.epsilons.rgb)


def load_evaluate_config(source: dict[str, Any] | str | Path | None = None, where: str = "") -> EvaluateConfig:
    """The ``evaluate:`` section of a parsed config document or of a config file (None: defaults)."""
    return section_of(EvaluateConfig, source, "evaluate", where)
