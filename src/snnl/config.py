"""One config file, every section checked: what the Snakefile runs before any job starts.

A pipeline config is one YAML file (config/*.yaml). Its `pipeline:` section (what to
run) is validated by the Snakefile against workflow/schemas/config.schema.yaml; the
other sections (`datasets`, `train`, `tune`, `evaluate`, `experiments`) belong to the
snnl commands, whose own readers hold their defaults and checks. :func:`validate_file`
runs all of those readers at once, so a bad key anywhere fails at parse time with a
message naming the key, never halfway through a run.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from snnl.errors import ConfigError

SECTIONS = ("pipeline", "datasets", "train", "tune", "evaluate", "experiments")


def read_yaml(path: str | Path | None) -> dict[str, Any]:
    """The whole YAML document as a dict ({} for no file), with clear errors."""
    if path is None:
        return {}
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file to --config")
    try:
        document = yaml.safe_load(path.read_text())
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {err}") from err
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"config file {path}: the top level must be a mapping (key: value), got {type(document).__name__}"
        )
    return document


def read_section(path: str | Path | None, key: str, must: str = "be a mapping of settings") -> dict[str, Any]:
    """The ``key:`` mapping of a YAML file ({} without a file or without the key).

    ``must`` completes the error message "`key` must ..." when the section is not a mapping.
    """
    section = read_yaml(path).get(key)
    if section is None:
        return {}
    if not isinstance(section, dict):
        raise ConfigError(f"config file {path}: `{key}` must {must}, got {type(section).__name__}")
    return section


def validate_file(path: str | Path, pipeline: dict[str, Any] | None = None) -> None:
    """Check every section of the config file ``path`` with its owner's reader.

    ``pipeline`` (the schema-validated `pipeline:` section, when the caller has it) adds
    the cross-section checks: every dataset named there exists and has valid options.
    """
    from snnl.data.config import dataset_options
    from snnl.evaluate.config import load_evaluate_config
    from snnl.experiments.config import from_dict as experiment_config
    from snnl.experiments.config import read_section as read_experiments
    from snnl.training.config import train_config, tune_config

    path = Path(path)
    document = read_yaml(path)
    where = f"config file {path}"
    unknown = sorted(set(document) - set(SECTIONS))
    if unknown:
        raise ConfigError(f"{where}: unknown top-level key(s) {unknown}; known sections: {', '.join(SECTIONS)}")
    train_config(document, None, None, where)
    tune_config(document, where)
    load_evaluate_config(path)
    for name, values in read_experiments(path).items():
        experiment_config(name, values, where)
    names: set[str] = set((document.get("datasets") or {}).keys())
    if pipeline:
        names |= set(pipeline.get("datasets", []))
        for ins, outs in (pipeline.get("outliers") or {}).items():
            if ins not in pipeline.get("datasets", []):
                raise ConfigError(
                    f"{where}: `pipeline.outliers.{ins}`: {ins} is not one of pipeline.datasets "
                    f"{pipeline.get('datasets')}; add it there or remove the entry"
                )
            names |= set(outs)
        for name in (pipeline.get("experiments") or {}).get("gan", []) or []:
            names.add(name)
    for name in sorted(names):
        dataset_options(name, path)
    if pipeline:
        for name in pipeline.get("datasets", []):
            train_config(document, name, None, where)
