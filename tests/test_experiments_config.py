"""The `experiments:` section: defaults, overrides, and errors that name the key and the file."""

from __future__ import annotations

import pytest

from snnl.errors import ConfigError
from snnl.experiments import config


def _write(tmp_path, text: str):
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_defaults_without_a_file():
    cfg = config.load("synthetic")
    assert (cfg.classes, cfg.points_per_class, cfg.temperature) == (4, 100, "initial")
    assert config.load("gan").arch == "mlp"
    assert config.load("temperature_curve").split == "test"
    assert config.load("dynamics").band == "sd"


def test_file_values_other_sections_ignored_and_overrides_win(tmp_path):
    path = _write(
        tmp_path,
        """
train: {epochs: 3, whatever: 1}     # another part of the pipeline: ignored here
datasets: {digits: {}}
experiments:
  synthetic: {classes: 3, lr: 1e-2, temperature: 0.5, snapshot_steps: [0, 5]}
  gan: {hidden: [64, 32], steps: 10}
""",
    )
    cfg = config.load("synthetic", path, seed=7, steps=None)
    assert (cfg.classes, cfg.lr, cfg.temperature, cfg.snapshot_steps, cfg.seed) == (3, 0.01, 0.5, [0, 5], 7)
    assert cfg.points_per_class == 100  # default kept
    assert config.load("gan", path, steps=4).steps == 4
    assert config.load("gan", path).hidden == [64, 32]


@pytest.mark.parametrize(
    "name, text, needle",
    [
        ("synthetic", "experiments: {synthetic: {clases: 3}}", "experiments.synthetic.clases"),
        ("gan", "experiments: {gann: {steps: 3}}", "experiments.gann"),
        ("gan", "experiments: {gan: {steps: -1}}", "experiments.gan.steps"),
        ("gan", "experiments: {gan: {arch: resnet}}", "experiments.gan.arch"),
        ("synthetic", "experiments: {synthetic: {temperature: hot}}", "experiments.synthetic.temperature"),
        ("synthetic", "experiments: {synthetic: {fix_scale: 1}}", "experiments.synthetic.fix_scale"),
        ("temperature_curve", "experiments: {temperature_curve: {points: 2.5}}", "experiments.temperature_curve.points"),
        ("gan", "experiments: [1, 2]", "`experiments` must map"),
        ("gan", "experiments: {gan: 3}", "experiments.gan"),
    ],
)
def test_bad_values_raise_config_error_naming_key_and_file(tmp_path, name, text, needle):
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        config.load(name, path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_missing_file_and_bad_yaml(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        config.load("gan", tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        config.load("gan", _write(tmp_path, "experiments: {gan: [}"))
