"""The Snakefile's config check before any job starts (workflow/rules/common.smk, `snnl check-config`):
every section of a pipeline config against its typed model (:class:`snnl.config.ConfigFile`), then
the models and GANs the pipeline will build, built once on the CPU, so that bad model args, an image
too small for the model or a layer name that is not in it fails here, not in a job.
"""

from pathlib import Path
from typing import Any

from snnl.config import ConfigFile
from snnl.config_base import check
from snnl.errors import ConfigError
from snnl.yaml_io import read_yaml


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
    """Build (untrained, on the CPU) the model `snnl train` will build for dataset ``name``;
    ConfigError when it cannot be built or ``train.layers``/``evaluate.layers`` name no layer of it."""
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
