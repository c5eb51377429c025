"""The `evaluate:` config section: defaults, checks, errors that name the key."""

from __future__ import annotations

import pytest

from snnl.errors import ConfigError
from snnl.evaluate.config import EvaluateConfig, load_evaluate_config


def _write(tmp_path, text):
    p = tmp_path / "config.yaml"
    p.write_text(text)
    return p


def test_defaults_without_a_file():
    cfg = load_evaluate_config(None)
    assert cfg == EvaluateConfig()
    assert cfg.epsilons_for(1) == [0.1, 0.2, 0.3]
    assert cfg.epsilons_for(3) == pytest.approx([2 / 255, 4 / 255, 6 / 255, 8 / 255])
    assert cfg.attacks == ["fgsm", "pgd"]


def test_other_sections_are_ignored_and_values_override(tmp_path):
    p = _write(tmp_path, """
train: {epochs: 1, whatever: 3}
datasets: {mnist5k: {seed: 1}}
evaluate:
  pgd_steps: 7
  epsilons: {gray: [0.05]}
  layers: [fc1]
""")
    cfg = load_evaluate_config(p)
    assert cfg.pgd_steps == 7
    assert cfg.epsilons_for(1) == [0.05]
    assert cfg.epsilons_for(3) == pytest.approx([2 / 255, 4 / 255, 6 / 255, 8 / 255])  # rgb keeps its default
    assert cfg.layers == ["fc1"]


def test_file_without_evaluate_section_gives_defaults(tmp_path):
    assert load_evaluate_config(_write(tmp_path, "train: {epochs: 2}\n")) == EvaluateConfig()


@pytest.mark.parametrize(
    "text, needle",
    [
        ("evaluate: {pgd_stepz: 3}", "evaluate.pgd_stepz"),
        ("evaluate: {epsilons: {grey: [0.1]}}", "evaluate.epsilons.grey"),
        ("evaluate: {pgd_steps: 0}", "evaluate.pgd_steps"),
        ("evaluate: {pgd_steps: true}", "evaluate.pgd_steps"),
        ("evaluate: {epsilons: {gray: [0.1, 2.0]}}", "evaluate.epsilons.gray"),
        ("evaluate: {attacks: [fgsm, cw]}", "evaluate.attacks"),
        ("evaluate: {layers: conv1}", "evaluate.layers"),
        ("evaluate: {k: 20, reference_size: 10}", "evaluate.k"),
        ("evaluate: {tsne_perplexity: -1}", "evaluate.tsne_perplexity"),
        ("evaluate: {reference_size: null}", "evaluate.reference_size"),
        ("evaluate: [1, 2]", "`evaluate` must be a mapping"),
    ],
)
def test_bad_values_name_the_key_and_the_file(tmp_path, text, needle):
    p = _write(tmp_path, text + "\n")
    with pytest.raises(ConfigError) as err:
        load_evaluate_config(p)
    assert needle in str(err.value)
    assert str(p) in str(err.value)


def test_nullable_sizes_and_missing_file(tmp_path):
    cfg = load_evaluate_config(_write(tmp_path, "evaluate: {attack_size: null, outlier_size: null, pgd_step_size: 0.01}\n"))
    assert cfg.attack_size is None and cfg.outlier_size is None and cfg.pgd_step_size == 0.01
    with pytest.raises(ConfigError, match="does not exist"):
        load_evaluate_config(tmp_path / "nope.yaml")
