"""Values given on Snakemake's command line, ``snakemake --config KEY=VALUE ...``: read as the
same text in the config file would be (:func:`apply_command_line_config`), and an error caused
by one blamed on its ``--config`` entry (:func:`config_source`). Used by workflow/rules/common.smk
before the config is checked (snnl.config); tested in tests/test_pipeline_config_override.py.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import yaml

from snnl.errors import ConfigError

def apply_command_line_config(config: dict[str, Any], entries: Sequence[str] | None) -> dict[str, str]:
    """Apply Snakemake's ``--config KEY=VALUE`` entries to ``config`` (in place), each VALUE read
    as YAML, exactly as the same text in a config file is read; return the origin of each key set.

    Snakemake 9 (``snakemake/cli.py``, ``parse_config``) reads a nested VALUE with YAML's
    BaseLoader, which leaves every scalar inside it a string: ``pipeline={"seeds": [0]}`` arrives
    as ``{"seeds": ["0"]}``, and ``{"k": 10}`` or ``{"tune": true}`` as ``"10"`` and ``"true"``,
    which the schema and the commands' checks rightly refuse. This re-reads the original text
    (``workflow.config_settings.config_args``) with ``yaml.safe_load``, the resolver of a config
    file, and merges it over ``config`` as Snakemake does (``snakemake.utils.update_config``):
    a mapping merges key by key, anything else (a list, a scalar) replaces the value. Applied
    to Snakemake's already merged config, it retypes the keys the command line set and
    changes nothing else. Entries apply in order; a later one wins.

    ``config``: the parsed config (the config files, with or without Snakemake's own merge of
    the entries). ``entries``: the raw ``KEY=VALUE`` strings (None or [] for none).
    Returns ``{dotted key: entry}`` for every key the entries set (a leaf: a scalar, a list or an
    empty mapping), e.g. ``{"pipeline.seeds": 'pipeline={"seeds":[0]}'}``, for
    :func:`config_source`. An entry without ``=`` raises ConfigError (Snakemake refuses it first).
    """
    origins: dict[str, str] = {}
    for entry in entries or ():
        key, value = _read_entry(entry)
        _update(config, {key: value})
        for dotted in _leaf_keys(value, key):
            origins[dotted] = entry
    return origins


def _read_entry(entry: str) -> tuple[str, Any]:
    key, sep, text = entry.partition("=")
    if not sep:
        raise ConfigError(f"--config {entry!r}: an entry must be KEY=VALUE, e.g. 'pipeline={{\"seeds\": [0]}}'")
    text = text.strip("'\"")  # as Snakemake does (snakemake.common.parse_key_value_arg)
    if text == "":
        return key, None
    try:
        return key, yaml.safe_load(text)
    except yaml.YAMLError:
        return key, text  # Snakemake keeps it as a string too; the checks then name the key


def _update(config: dict[str, Any], changes: Mapping[str, Any]) -> None:
    for key, value in changes.items():
        if isinstance(value, Mapping):
            if not isinstance(config.get(key), dict):
                config[key] = {}
            _update(config[key], value)
        else:
            config[key] = value


def _leaf_keys(value: Any, prefix: str) -> list[str]:
    if isinstance(value, Mapping) and value:
        return [k for sub, v in value.items() for k in _leaf_keys(v, f"{prefix}.{sub}")]
    return [prefix]


_NAMED_KEY = re.compile(r"`([A-Za-z_][\w\-]*(?:\.[\w\-]+)*)")


def config_source(message: str, origins: Mapping[str, str], files: str) -> str:
    """Where the value that a config error ``message`` is about came from, for its first words.

    ``origins``: :func:`apply_command_line_config`'s ``{dotted key: entry}``; ``files``: the
    config files, e.g. ``"config (config/default.yaml)"``. When a key the message names (in
    backticks, e.g. ```pipeline.seeds.0```) was set by a ``--config`` entry, or lies above or
    below one, the answer is that entry: ``command line (--config 'pipeline={...}')``; otherwise
    ``files``, followed by the command line's entries when there are any (a check across two keys
    may involve one of them).
    """
    for named in _NAMED_KEY.findall(message):
        for key, entry in origins.items():
            if named == key or named.startswith(f"{key}.") or key.startswith(f"{named}."):
                return f"command line (--config '{entry}')"
    if origins:
        entries = " ".join(f"'{e}'" for e in dict.fromkeys(origins.values()))
        return f"{files} with command line --config {entries}"
    return files
