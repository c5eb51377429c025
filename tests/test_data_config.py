"""The `datasets:` section of a config: defaults, unknown keys, types, other sections ignored."""

from __future__ import annotations

from pathlib import Path

import pytest

from snnl.data import DATASET_NAMES, DEFAULTS, dataset_options
from snnl.errors import ConfigError

DOCS = Path(__file__).resolve().parents[1] / "docs" / "DATA.md"


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(text)
    return path


def test_no_config_gives_the_documented_defaults():
    assert dataset_options("mnist5k") == {"seed": 0, "val_size": 500, "train_size": None, "test_size": 1000}
    assert dataset_options("fashion_mnist")["download"] is False
    assert dataset_options("fashion_mnist")["raw_dir"] is None


def test_registry_and_defaults_cover_the_same_datasets():
    assert set(DATASET_NAMES) == set(DEFAULTS) == {
        "mnist5k", "digits", "letters", "noise", "mnist", "fashion_mnist", "kmnist", "svhn", "cifar10", "notmnist"
    }


def test_config_overrides_and_other_sections_are_ignored(tmp_path):
    path = write(tmp_path, """
train:
  epochs: 3          # belongs to another part of the pipeline
datasets:
  mnist5k:
    val_size: 100
    seed: 7
  letters:
    n: 40
""")
    assert dataset_options("mnist5k", path) == {"seed": 7, "val_size": 100, "train_size": None, "test_size": 1000}
    assert dataset_options("letters", path) == {"seed": 0, "n": 40}
    assert dataset_options("digits", path) == DEFAULTS["digits"]


def test_unknown_option_names_the_key_and_the_file(tmp_path):
    path = write(tmp_path, "datasets:\n  mnist5k:\n    valsize: 100\n")
    with pytest.raises(ConfigError) as info:
        dataset_options("mnist5k", path)
    assert "datasets.mnist5k.valsize" in str(info.value)
    assert str(path) in str(info.value)
    assert "val_size" in str(info.value)  # lists what is accepted


def test_option_of_another_dataset_is_unknown(tmp_path):
    path = write(tmp_path, "datasets:\n  letters:\n    download: true\n")
    with pytest.raises(ConfigError, match=r"datasets\.letters\.download"):
        dataset_options("letters", path)


def test_unknown_dataset_name_is_an_error(tmp_path):
    path = write(tmp_path, "datasets:\n  mnist_5k: {}\n")
    with pytest.raises(ConfigError, match=r"unknown dataset `datasets\.mnist_5k`"):
        dataset_options("mnist5k", path)


@pytest.mark.parametrize(
    "name, key, value",
    [
        ("mnist5k", "val_size", "'500'"),
        ("mnist5k", "val_size", "-1"),
        ("mnist5k", "seed", "true"),
        ("mnist", "download", "'yes'"),
        ("noise", "shape", "[2, 28, 28]"),
        ("noise", "kinds", "[uniform, pink]"),
        ("noise", "gaussian_std", "0"),
        ("letters", "n", "0"),
    ],
)
def test_badly_typed_values_name_the_key(tmp_path, name, key, value):
    path = write(tmp_path, f"datasets:\n  {name}:\n    {key}: {value}\n")
    with pytest.raises(ConfigError, match=rf"datasets\.{name}\.{key}"):
        dataset_options(name, path)


def test_missing_and_malformed_files(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        dataset_options("mnist5k", tmp_path / "nope.yaml")
    with pytest.raises(ConfigError, match="not valid YAML"):
        dataset_options("mnist5k", write(tmp_path, "datasets: [unclosed\n"))
    with pytest.raises(ConfigError, match="must map dataset names"):
        dataset_options("mnist5k", write(tmp_path, "datasets: 3\n"))


def test_empty_file_and_empty_section_give_defaults(tmp_path):
    assert dataset_options("digits", write(tmp_path, "")) == DEFAULTS["digits"]
    assert dataset_options("digits", write(tmp_path, "datasets:\n  digits:\n")) == DEFAULTS["digits"]


def test_resolve_does_not_mutate_defaults():
    options = dataset_options("noise", {"datasets": {"noise": {"shape": [3, 32, 32]}}})
    options["kinds"].append("x")
    assert DEFAULTS["noise"]["shape"] == [1, 28, 28]
    assert DEFAULTS["noise"]["kinds"] == ["uniform", "gaussian"]


def test_docs_list_every_dataset_and_option():
    text = DOCS.read_text()
    for name, options in DEFAULTS.items():
        assert f"`{name}`" in text, f"docs/DATA.md does not document dataset {name}"
        for key in options:
            assert f"`{key}`" in text, f"docs/DATA.md does not document option {key}"
