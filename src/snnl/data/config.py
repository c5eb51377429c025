"""The ``datasets:`` section: one model per dataset, its options typed, defaults from the registry."""

from pathlib import Path
from typing import Annotated, Any, Literal, Optional

from pydantic import Field, create_model

from snnl.config_base import Bool, Float, NonNegInt, PosFloat, PosInt, Section, require, section_of, unique
from snnl.data.registry import DATASET_NAMES, DEFAULTS, TRAINABLE, get_entry

DatasetName, TrainableName = Literal[DATASET_NAMES], Literal[TRAINABLE]
NOISE_KINDS = ("uniform", "gaussian")
SHAPE = require(lambda v: isinstance(v, list) and len(v) == 3 and v[0] in (1, 3) and v[0] is not True,
                "must be [C, H, W] with C 1 or 3 and positive H, W")
TYPES: dict[str, Any] = {
    "seed": NonNegInt, "val_size": NonNegInt, "train_size": Optional[NonNegInt], "test_size": Optional[NonNegInt],
    "n": Optional[PosInt], "raw_dir": Optional[Annotated[str, Field(min_length=1)]], "download": Bool,
    "shape": Annotated[list[PosInt], SHAPE], "kinds": unique(Literal[NOISE_KINDS], 1), "gaussian_mean": Float,
    "gaussian_std": PosFloat,
}


class PerDataset(Section):
    """A mapping keyed by dataset name: its messages say "unknown dataset"."""

    item = "dataset"

    def options(self, name: str) -> dict[str, Any]:
        """The resolved options of dataset ``name`` (a fresh dict)."""
        return getattr(self, name).model_dump()


OPTIONS = {n: create_model(f"{n}_options", __base__=Section, **{k: (TYPES[k], v) for k, v in d.items()})
           for n, d in DEFAULTS.items()}
DatasetsConfig = create_model("DatasetsConfig", __base__=PerDataset,
                              **{n: (m, Field(default_factory=m)) for n, m in OPTIONS.items()})


def dataset_options(name: str, source: dict[str, Any] | str | Path | None = None, where: str = "") -> dict[str, Any]:
    """The options of dataset ``name``: its defaults overlaid with the ``datasets:`` section of
    ``source`` (a parsed config document, or a config file; None: defaults), checked."""
    get_entry(name)  # an unknown name: its ConfigError
    return section_of(DatasetsConfig, source, "datasets", where).options(name)
