"""One config file, every section checked: what the Snakefile runs before any job starts.

A pipeline config is one YAML file (config/*.yaml). Its `pipeline:` section (what to
run) is validated against workflow/schemas/config.schema.yaml (:func:`validate_schema`,
by the Snakefile and by `snnl check-config`); the other sections (`datasets`, `train`,
`tune`, `evaluate`, `experiments`) belong to the snnl commands, whose own readers hold
their defaults and checks. :func:`validate_file`
runs all of those readers at once, so a bad key anywhere fails at parse time with a
message naming the key, never halfway through a run. Values given on Snakemake's command
line (``--config KEY=VALUE``) are read as the same text in the file would be
(:func:`apply_command_line_config`), and an error caused by one names the ``--config`` entry
(:func:`config_source`).
"""

from __future__ import annotations

import copy
import re
from collections.abc import Mapping, Sequence
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
        raise ConfigError(f"config file {path} is not valid YAML: {yaml_problem(err)}") from None
    if document is None:
        return {}
    if not isinstance(document, dict):
        raise ConfigError(
            f"config file {path}: the top level must be a mapping (key: value), got {type(document).__name__}"
        )
    return document


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML syntax error in one line: where (1-based line and column) and what, and the fix."""
    mark = getattr(err, "problem_mark", None)
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    context, context_mark = getattr(err, "context", None), getattr(err, "context_mark", None)
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
        problem += f" ({context} that starts at line {context_mark.line + 1})"
    return f"{where}{problem}; fix the syntax there (indent with spaces, not tabs; close every bracket and quote)"


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
    the cross-section checks: every dataset named there exists and has valid options, and
    the models, layers and GANs the pipeline will build fit each dataset's images.
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
    evaluate = load_evaluate_config(path)
    experiments = {name: experiment_config(name, values, where) for name, values in read_experiments(path).items()}
    names: set[str] = set((document.get("datasets") or {}).keys())
    if pipeline:
        names |= set(pipeline.get("datasets", []))
        for ins, outs in (pipeline.get("outliers") or {}).items():
            if ins not in pipeline.get("datasets", []):
                raise ConfigError(
                    f"{where}: `pipeline.outliers.{ins}`: {ins} is not one of pipeline.datasets "
                    f"{pipeline.get('datasets')}; add it there or remove the entry"
                )
            if ins in outs:
                raise ConfigError(
                    f"{where}: `pipeline.outliers.{ins}` lists {ins} itself; an outlier set is another dataset, "
                    f"adapted to {ins}'s image shape: remove {ins} from the list"
                )
            names |= set(outs)
        for name in (pipeline.get("experiments") or {}).get("gan", []) or []:
            names.add(name)
    for name in sorted(names):
        dataset_options(name, path)
    if pipeline:
        for name in pipeline.get("datasets", []):
            _check_model(train_config(document, name, None, where), evaluate.layers, name, path, where)
        gans = (pipeline.get("experiments") or {}).get("gan", []) or []
        if gans:
            _check_gans(experiments.get("gan") or experiment_config("gan", None, where), gans, path, where)


def _image_shape(name: str, path: Path) -> tuple[int, int, int]:
    from snnl.data.config import dataset_options
    from snnl.data.registry import get_entry

    return tuple(int(v) for v in get_entry(name).native_shape(dataset_options(name, path)))  # type: ignore[return-value]


def _check_model(cfg: Any, evaluate_layers: Any, name: str, path: Path, where: str) -> None:
    """Build (untrained, on the CPU) the model `snnl train` will build for dataset ``name``,
    so that a bad ``train.model_args``, an image too small for the model or a layer name
    that is not in it fails here, before any job, not in the middle of a run."""
    from snnl.models import build_model

    shape = _image_shape(name, path)
    try:
        # 10 classes: the class count changes no layer name and no constructor argument
        model = build_model(cfg.model, shape, 10, **cfg.model_args)
    except ConfigError as err:
        raise ConfigError(
            f"{where}: `train.model: {cfg.model}` with `train.model_args: {cfg.model_args}` cannot be built for "
            f"dataset `{name}` (images {'x'.join(map(str, shape))}): {err}. Change `train.model` or "
            f"`train.model_args` (for this dataset only: under `train.overrides.{name}`)"
        ) from None
    hidden = list(getattr(model, "hidden_layers", []))
    modules = {n for n, _ in model.named_modules() if n}
    for key, layers in (("train.layers", cfg.layers), ("evaluate.layers", evaluate_layers)):
        if layers == "all":
            continue
        missing = [n for n in layers if n not in modules]
        if missing:
            raise ConfigError(
                f"{where}: `{key}` names {missing}, which are not layers of the `{cfg.model}` model built for "
                f"dataset `{name}`; its hidden layers are {', '.join(hidden)}: list some of those, or use `all`"
            )


def _check_gans(cfg: Any, datasets: list[str], path: Path, where: str) -> None:
    """The GAN of `experiments.gan` can generate the images of each dataset of `pipeline.experiments.gan`."""
    for name in datasets:
        try:
            cfg.check_shape(_image_shape(name, path))
        except ConfigError as err:
            raise ConfigError(f"{where}: the GAN for dataset `{name}` (`pipeline.experiments.gan`): {err}") from None


# ---------------------------------------------------------------------------------------
# the `pipeline:` section, against the JSON schema of the workflow

SCHEMA = Path("workflow") / "schemas" / "config.schema.yaml"


def find_schema() -> Path | None:
    """The workflow's config schema: in the working directory (a checkout of the project),
    else next to this source tree; None when neither has it (an installed wheel)."""
    for base in (Path.cwd(), Path(__file__).resolve().parents[2]):
        if (base / SCHEMA).is_file():
            return base / SCHEMA
    return None


def validate_schema(config: dict[str, Any], schema_path: str | Path, where: str) -> dict[str, Any]:
    """Check ``config`` (a whole config document) against the JSON schema ``schema_path`` and
    fill in the schema's defaults in place, as ``snakemake.utils.validate(set_default=True)``
    does, but report the first violation in one line that names the key (ConfigError)."""
    import jsonschema

    schema = yaml.safe_load(Path(schema_path).read_text())
    base = jsonschema.validators.validator_for(schema)
    check_properties = base.VALIDATORS["properties"]

    def set_defaults(validator, properties, instance, schema):
        if isinstance(instance, dict):
            for key, sub in properties.items():
                if "default" in sub:
                    instance.setdefault(key, copy.deepcopy(sub["default"]))
        yield from check_properties(validator, properties, instance, schema)

    validator = jsonschema.validators.extend(base, {"properties": set_defaults})(schema)
    errors = list(validator.iter_errors(config))
    if errors:
        raise ConfigError(f"{where}: {_schema_problem(jsonschema.exceptions.best_match(errors))} (see config/README.md)")
    return config


def _schema_problem(err: Any) -> str:
    path = ".".join(str(p) for p in err.absolute_path)
    prefix = f"{path}." if path else ""
    if err.validator == "additionalProperties" and isinstance(err.instance, dict):
        known = sorted(err.schema.get("properties") or {})
        extra = sorted(set(err.instance) - set(known))
        names = ", ".join(f"`{prefix}{k}`" for k in extra)
        return f"unknown key(s) {names}; known keys{f' of `{path}`' if path else ''}: {', '.join(known)}"
    if err.validator == "required" and isinstance(err.instance, dict):
        missing = [k for k in err.validator_value if k not in err.instance]
        return f"missing required key(s) {', '.join(f'`{prefix}{k}`' for k in missing)}"
    if err.validator == "enum":
        return f"`{path}`: {err.instance!r} is not one of {', '.join(map(str, err.validator_value))}"
    return f"`{path or '(top level)'}`: {err.message}"


# ---------------------------------------------------------------------------------------
# values from the command line: `snakemake --config KEY=VALUE ...`


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
