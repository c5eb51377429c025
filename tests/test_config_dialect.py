"""One config layer, one dialect (config/README.md, "Values"): the same value form gets the same
verdict in every section, and the JSON Schema of workflow/schemas/ is generated from the models
and agrees with them.

The oracle is the dialect as documented, a table of forms and verdicts written here: an integer
is a YAML integer or a whole float, never a string or true/false; a number is a YAML number or a
string that reads as one, finite, never true/false; a switch is true or false only. Every integer,
number and switch setting of every section (found in the models, so that a new setting is
covered too) is fed every form.

    .venv/bin/python -m pytest tests/test_config_dialect.py -q
"""

from __future__ import annotations

import copy
import math
from typing import Annotated, Any, Union, get_args, get_origin

import jsonschema
import pytest
import yaml
from helpers.workflow import ROOT, jobs, snakemake, workdir

from snnl.errors import ConfigError

MINIMAL = {"pipeline": {"datasets": ["mnist5k"], "seeds": [0]}}
SCHEMA_FILE = ROOT / "workflow" / "schemas" / "config.schema.yaml"


def _unwrap(field: Any) -> tuple[Any, list[Any]]:
    """A setting's base type and constraints, through ``Optional[...]`` and ``Annotated[...]``."""
    tp, metadata = field.annotation, list(field.metadata)
    while get_origin(tp) in (Union, Annotated):
        args = [a for a in get_args(tp) if a is not type(None)]
        tp, metadata = args[0], metadata + (args[1:] if get_origin(tp) is Annotated else [])
    return tp, metadata


def _kind(field: Any) -> str | None:
    """``int``, ``float`` or ``bool`` for a setting of that type (optional or not), else None."""
    return {int: "int", float: "float", bool: "bool"}.get(_unwrap(field)[0])


def _bounds(field: Any) -> dict[str, float]:
    return {name: getattr(m, name) for m in _unwrap(field)[1] for name in ("ge", "gt", "le", "lt")
            if getattr(m, name, None) is not None}


def _valid(field: Any, kind: str) -> Any:
    """A value the setting accepts: its default, else one inside its bounds."""
    if field.default is not None and not isinstance(field.default, bool) and kind != "bool":
        return field.default
    b = _bounds(field)
    low = b.get("ge", b.get("gt", 0) + 1)
    return int(low) if kind == "int" else float(low) + 0.5 if "le" not in b and "lt" not in b else float(low)


def settings() -> list[tuple[tuple[str, ...], str, Any]]:
    """(key path, kind, a valid value) of every integer, number and switch setting of every section."""
    from pydantic import BaseModel

    from snnl.config import ConfigFile

    out = []

    def walk(model: type[BaseModel], path: tuple[str, ...]) -> None:
        for name, field in model.model_fields.items():
            tp = _unwrap(field)[0]
            if isinstance(tp, type) and issubclass(tp, BaseModel):
                walk(tp, (*path, name))
            elif _kind(field):
                out.append(((*path, name), _kind(field), _valid(field, _kind(field))))

    walk(ConfigFile, ())
    return out


def forms(kind: str, value: Any) -> list[tuple[str, Any, bool]]:
    """(form, value written in that form, accepted?) per the documented dialect."""
    if kind == "bool":
        return [("true", True, True), ("false", False, True), ("1", 1, False), ("'true'", "true", False)]
    if kind == "int":
        return [("integer", value, True), ("whole float", float(value), True), ("string", str(value), False),
                ("true", True, False), ("fraction", value + 0.5, False)]
    return [("number", value, True), ("numeric string", str(value), True), ("exponent string", f"{value:e}", True),
            ("true", True, False), ("word", "fast", False), ("nan", math.nan, False), ("inf", math.inf, False)]


def document(path: tuple[str, ...], value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(MINIMAL)
    node = doc
    for key in path[:-1]:
        node = node.setdefault(key, {})
    node[path[-1]] = value
    return doc


# train.overrides: the same model for every dataset, so one dataset's stands for all
CASES = [(".".join(path), form, value, ok) for path, kind, base in settings() for form, value, ok in forms(kind, base)
         if path[:2] != ("train", "overrides") or path[2] == "cifar10"]


def test_every_section_is_covered():
    sections = {case[0].split(".")[0] for case in CASES}
    assert sections == {"pipeline", "datasets", "train", "tune", "evaluate", "experiments"}
    assert len({case[0] for case in CASES}) > 100  # every dataset's settings and an override's too


@pytest.mark.parametrize("key, form, value, ok", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_same_value_form_same_verdict_in_every_section(key, form, value, ok):
    from snnl.config_base import check
    from snnl.config import ConfigFile

    doc = document(tuple(key.split(".")), value)
    if ok:
        check(ConfigFile, doc, "test")
    else:
        with pytest.raises(ConfigError, match=rf"^test: `{key}` "):  # one line naming the key
            check(ConfigFile, doc, "test")


@pytest.mark.parametrize("key, form, value, ok", [c for c in CASES if c[1] not in ("nan", "inf")],
                         ids=[f"{c[0]}-{c[1]}" for c in CASES if c[1] not in ("nan", "inf")])
def test_generated_schema_gives_the_same_verdict(schema_validator, key, form, value, ok):
    """JSON (and so the schema) has no NaN or infinity; every other form: the models' verdict."""
    assert schema_validator.is_valid(document(tuple(key.split(".")), value)) == ok


@pytest.fixture(scope="module")
def schema_validator():
    return jsonschema.Draft202012Validator(yaml.safe_load(SCHEMA_FILE.read_text()))


def test_committed_schema_is_generated_from_the_models(capsys):
    from snnl.cli import main

    assert main(["config-schema"]) == 0
    assert capsys.readouterr().out == SCHEMA_FILE.read_text(), "run: snnl config-schema --out " + str(SCHEMA_FILE)


@pytest.mark.parametrize("config", ["config/default.yaml", "config/local.yaml", "config/paper.yaml"])
def test_every_shipped_config_is_valid_for_the_schema_and_the_models(schema_validator, config):
    from snnl.pipeline.preflight import validate_file

    schema_validator.validate(yaml.safe_load((ROOT / config).read_text()))
    validate_file(ROOT / config)


def test_the_tiny_test_config_is_valid_and_shrinks_the_default(schema_validator, tiny_config):
    from snnl.pipeline.preflight import check_document

    schema_validator.validate(tiny_config)
    tiny = check_document(tiny_config, "tiny config")
    default = yaml.safe_load((ROOT / "config" / "default.yaml").read_text())
    assert tiny.pipeline.seeds == [0, 1] and default["pipeline"]["seeds"] == [0, 1, 2]
    assert (tiny.train.epochs, tiny.train.checkpoint_every, tiny.experiments.gan.steps) == (1, 3, 40)
    # merged key by key: what the overrides leave alone keeps the default file's value
    assert tiny.train.lr == default["train"]["lr"] and tiny.experiments.gan.datasets == ["mnist5k"]
    assert tiny.pipeline.outliers.mnist5k == default["pipeline"]["outliers"]["mnist5k"]


def test_the_issue_examples_get_one_verdict(tmp_path):
    """Issue 15's disagreements, through each section's own reader: `1e-3` for a number and `3.0`
    for an integer are accepted everywhere, `cuda:x` refused everywhere."""
    from snnl.data import dataset_options
    from snnl.evaluate.config import load_evaluate_config
    from snnl.experiments import config as experiments
    from snnl.training.config import train_config, tune_config

    path = tmp_path / "c.yaml"
    path.write_text("train: {lr: 1e-3, epochs: 3.0}\nevaluate: {tsne_perplexity: 1e-3, pgd_steps: 3.0}\n"
                    "tune: {n_trials: 3.0}\ndatasets: {mnist5k: {val_size: 3.0}}\n"
                    "experiments: {gan: {lr: 1e-3, steps: 3.0}}\n")
    document = yaml.safe_load(path.read_text())
    assert (train_config(document).lr, train_config(document).epochs) == (1e-3, 3)
    assert (load_evaluate_config(path).tsne_perplexity, load_evaluate_config(path).pgd_steps) == (1e-3, 3)
    assert tune_config(document).n_trials == 3
    assert dataset_options("mnist5k", path)["val_size"] == 3
    assert (experiments.load("gan", path).lr, experiments.load("gan", path).steps) == (1e-3, 3)
    path.write_text("train: {device: 'cuda:x'}\nexperiments: {gan: {device: 'cuda:x'}}\n")
    with pytest.raises(ConfigError, match="`train.device`"):
        train_config(yaml.safe_load(path.read_text()))
    with pytest.raises(ConfigError, match="`experiments.gan.device`"):
        experiments.load("gan", path)


def test_a_pipeline_without_regimes_trains_the_documented_default():
    """config/README.md: `pipeline.regimes` defaults to `[baseline, entangled]` (not every regime)."""
    from snnl.config import ConfigFile
    from snnl.config_base import check

    assert check(ConfigFile, MINIMAL, "test").pipeline.regimes == ["baseline", "entangled"]


def test_old_layout_says_where_the_switches_went():
    from snnl.config_base import check
    from snnl.config import ConfigFile

    old = {"pipeline": {**MINIMAL["pipeline"], "experiments": {"gan": []}}}
    with pytest.raises(ConfigError, match=r"unknown key `pipeline.experiments` \(the switches now sit with"):
        check(ConfigFile, old, "test")
    with pytest.raises(ConfigError, match=r"`experiments.dynamics_figure` \(now `experiments.dynamics`\)"):
        check(ConfigFile, {**MINIMAL, "experiments": {"dynamics_figure": {"band": "ci"}}}, "test")


def test_switches_next_to_their_settings_drive_the_dag(tmp_path, config_with):
    """`experiments.NAME.run: false` and `experiments.gan.datasets: []` drop those jobs, and only those."""
    work = workdir(tmp_path)
    cfg = config_with("experiments={synthetic: {run: false}, gan: {datasets: []}}")
    (work / "config" / "off.yaml").write_text(yaml.safe_dump(cfg))
    counts = jobs(snakemake(work, "-n", "--configfile", "config/off.yaml").stdout)
    assert "synthetic" not in counts and "gan" not in counts
    assert counts["temperature_curve"] == 1 and counts["dynamics_figure"] == 1 and counts["train"] == 6
