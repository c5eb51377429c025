"""Read the ``datasets:`` section of a YAML config and resolve one dataset's options.

Other top-level keys of the file belong to other parts of the pipeline and are ignored.
Unknown dataset names, unknown option names and badly typed values raise ConfigError
naming the key and the file.
"""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any


from snnl.data.defaults import DEFAULTS, NOISE_KINDS, OPTION_TYPES
from snnl.config import read_section
from snnl.errors import ConfigError


def read_datasets_section(config_path: str | Path | None) -> dict[str, dict[str, Any]]:
    """The ``datasets:`` mapping of a YAML file ({} when no file is given or the key is absent)."""
    path = config_path
    section = read_section(config_path, "datasets", must="map dataset names to their options")
    for name, options in section.items():
        if name not in DEFAULTS:
            raise ConfigError(
                f"config file {path}: unknown dataset `datasets.{name}`; known datasets: {', '.join(sorted(DEFAULTS))}"
            )
        if options is not None and not isinstance(options, dict):
            raise ConfigError(f"config file {path}: `datasets.{name}` must be a mapping of options")
    return section


def resolve_options(
    name: str, section: dict[str, dict[str, Any]] | None = None, where: str = "config"
) -> dict[str, Any]:
    """Defaults for ``name`` overlaid with ``section[name]``, validated."""
    if name not in DEFAULTS:
        raise ConfigError(f"unknown dataset `{name}`; known datasets: {', '.join(sorted(DEFAULTS))}")
    options = copy.deepcopy(DEFAULTS[name])
    given = (section or {}).get(name) or {}
    for key, value in given.items():
        if key not in options:
            raise ConfigError(
                f"{where}: unknown option `datasets.{name}.{key}`; "
                f"`{name}` accepts: {', '.join(sorted(options))} (see docs/DATA.md)"
            )
        options[key] = _check_type(name, key, value, where)
    _check_sizes(name, options, where)
    return options


def dataset_options(name: str, config_path: str | Path | None = None) -> dict[str, Any]:
    """Resolved options for ``name`` from an optional config file."""
    where = f"config file {config_path}" if config_path is not None else "defaults"
    return resolve_options(name, read_datasets_section(config_path), where)


def _check_type(name: str, key: str, value: Any, where: str) -> Any:
    kind = OPTION_TYPES[key]
    label = f"{where}: `datasets.{name}.{key}`"
    nullable = kind.endswith("|null")
    base = kind.removesuffix("|null")
    if value is None:
        if nullable:
            return None
        raise ConfigError(f"{label} must not be empty (null); remove the key to use the default")
    if base == "int":
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ConfigError(f"{label} must be a non-negative integer, got {value!r}")
        return value
    if base == "bool":
        if not isinstance(value, bool):
            raise ConfigError(f"{label} must be true or false, got {value!r}")
        return value
    if base == "number":
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{label} must be a number, got {value!r}")
        return float(value)
    if base == "path":
        if not isinstance(value, str) or not value:
            raise ConfigError(f"{label} must be a folder path (a string), got {value!r}")
        return value
    if base == "shape":
        ok = (
            isinstance(value, list)
            and len(value) == 3
            and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in value)
            and value[0] in (1, 3)
        )
        if not ok:
            raise ConfigError(f"{label} must be [C, H, W] with C 1 or 3 and positive H, W, got {value!r}")
        return value
    if base == "kinds":
        valid = isinstance(value, list) and value and all(v in NOISE_KINDS for v in value)
        if not valid or len(set(value)) != len(value):
            raise ConfigError(f"{label} must be a non-empty list drawn from {list(NOISE_KINDS)}, got {value!r}")
        return value
    raise AssertionError(f"no type check for {kind}")  # pragma: no cover


def _check_sizes(name: str, options: dict[str, Any], where: str) -> None:
    if options.get("n") == 0:
        raise ConfigError(f"{where}: `datasets.{name}.n` must be at least 1")
    std = options.get("gaussian_std")
    if std is not None and std <= 0:
        raise ConfigError(f"{where}: `datasets.{name}.gaussian_std` must be positive, got {std}")
