"""`snakemake --config KEY=VALUE` overrides (config/README.md): a value given on the command line
gets the same verdict as the same text written in the config file, and an error about it names the
`--config` entry, not the config file.

Snakemake 9 reads a nested VALUE with YAML's BaseLoader, which makes every scalar in it a string
(`pipeline={"seeds":[0]}` arrived as seeds ['0'] and was refused); the workflow re-reads the text
(snnl.overrides.apply_command_line_config). The oracle throughout is Snakemake's own reading of a
config *file* holding the same text (snakemake.common.configfile.load_configfile).

    .venv/bin/python -m pytest tests/test_pipeline_config_override.py -q
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml
from snakemake.cli import parse_config
from snakemake.common.configfile import load_configfile
from snakemake.utils import update_config
from helpers.workflow import ROOT, jobs, snakemake, workdir

DEFAULT = ROOT / "config" / "default.yaml"


def file_verdict_config(tmp: Path, entries: list[str]) -> dict:
    """The oracle: config/default.yaml merged with config files that hold each entry's text as YAML
    (`KEY: VALUE`), read by Snakemake's config-file loader."""
    config = load_configfile(DEFAULT)
    for i, entry in enumerate(entries):
        key, value = entry.split("=", 1)
        path = tmp / f"override{i}.yaml"
        path.write_text(f"{key}: {value}\n")
        update_config(config, load_configfile(path))
    return config


# --- the reading of the entries, against Snakemake's reading of the same text in a file ---------

ENTRIES = {
    "list of ints": ['pipeline={"seeds":[0]}'],
    "int": ['evaluate={"k":10}'],
    "bool": ['pipeline={"tune":true}'],
    "false and null": ['train={"nesterov": false, "max_steps": null}'],
    "float and float-looking string": ['train={"lr": 0.5, "alpha": 1e-3}'],  # YAML 1.1: 1e-3 is a string, in a file too
    "nested mapping of lists of floats": ['evaluate={"epsilons": {"gray": [0.1, 0.25]}}'],
    "nested int": ['datasets={"mnist5k": {"val_size": 100}}', 'experiments={"gan": {"steps": 40}}'],
    "quoted number stays a string": ['datasets={"mnist5k": {"raw_dir": "2024"}}'],
    "empty list": ['experiments={"gan": {"datasets": []}}'],
    "YAML flow style": ["train={epochs: 2, layers: [conv1, conv2]}"],
    "two entries, one section": ['train={"epochs": 2}', 'train={"lr": 0.01}'],
    "later entry wins": ['evaluate={"k": 5}', 'evaluate={"k": 7}'],
}


@pytest.mark.parametrize("name", list(ENTRIES))
def test_entries_read_as_the_same_text_in_a_config_file(tmp_path, name):
    from snnl.overrides import apply_command_line_config

    entries = ENTRIES[name]
    # what Snakemake hands the Snakefile: the file's config with its own (string-typed) merge
    config = load_configfile(DEFAULT)
    update_config(config, parse_config(entries))
    apply_command_line_config(config, entries)
    assert config == file_verdict_config(tmp_path, entries)


def test_snakemake_itself_leaves_nested_values_strings():
    """The fault this guards against, so that the test above keeps meaning something if Snakemake
    ever changes: its parse of a nested VALUE types nothing."""
    assert parse_config(['pipeline={"seeds":[0], "tune": true}']) == {"pipeline": {"seeds": ["0"], "tune": "true"}}


def test_origins_name_each_key_the_command_line_set():
    from snnl.overrides import apply_command_line_config

    config = {"train": {"epochs": 6, "lr": 0.001}}
    origins = apply_command_line_config(config, ['train={"epochs": 2, "model_args": {"width": 8}}', "evaluate={}"])
    assert config == {"train": {"epochs": 2, "lr": 0.001, "model_args": {"width": 8}}, "evaluate": {}}
    assert origins == {
        "train.epochs": 'train={"epochs": 2, "model_args": {"width": 8}}',
        "train.model_args.width": 'train={"epochs": 2, "model_args": {"width": 8}}',
        "evaluate": "evaluate={}",
    }
    assert apply_command_line_config(config, None) == {}


def test_config_source_blames_the_entry_only_for_the_keys_it_set():
    from snnl.overrides import config_source

    origins = {"pipeline.seeds": 'pipeline={"seeds":["x"]}', "train.model_args.width": "train=..."}
    files = "config (config/default.yaml)"
    blame = "command line (--config 'pipeline={\"seeds\":[\"x\"]}')"
    assert config_source("`pipeline.seeds.0`: 'x' is not of type 'integer'", origins, files) == blame
    assert config_source("`pipeline.seeds`: [] should be non-empty", origins, files) == blame
    assert config_source("`train.model_args` must be a mapping", origins, files) == "command line (--config 'train=...')"
    assert config_source("`pipeline.seedsx`: bad", origins, files).startswith(files + " with command line --config")
    assert config_source("`train.lr` must be a number", {}, files) == files


# --- the documented command lines, end to end (dry runs) ----------------------------------------

GOOD = {
    "seeds (README example)": ('pipeline={"seeds":[0]}', {"train": 2, "evaluate": 2}),
    "evaluate k": ('evaluate={"k":10}', {"train": 6, "evaluate": 6}),
    "tune": ('pipeline={"tune":true}', {"tune": 2, "train": 6}),
    "train section": ('train={"epochs": 2}', {"train": 6}),
}


@pytest.mark.parametrize("name", list(GOOD))
def test_documented_override_form_works(tmp_path, name):
    entry, expected_jobs = GOOD[name]
    work = workdir(tmp_path)
    out = snakemake(work, "-n", "--config", entry, check=False)
    assert out.returncode == 0, (out.stdout + out.stderr)[-3000:]
    counts = jobs(out.stdout)
    assert {rule: counts.get(rule, 0) for rule in expected_jobs} == expected_jobs
    # the jobs read the merged config: the value, typed as in a YAML file
    effective = yaml.safe_load((work / ".snakemake" / "snnl" / "config.yaml").read_text())
    key, value = entry.split("=", 1)
    for sub, typed in yaml.safe_load(value).items():
        assert effective[key][sub] == typed and type(effective[key][sub]) is type(typed)


BAD = {
    "seed not an integer": ('pipeline={"seeds":["x"]}', "`pipeline.seeds.0` must be an integer; got 'x'"),
    "train epochs not an integer": ('train={"epochs": 2.5}', "`train.epochs` must be an integer"),
    "evaluate k above reference_size": ('evaluate={"reference_size": 20}', "`evaluate.k` must be <= `evaluate.reference_size` (20)"),
}


@pytest.mark.parametrize("name", list(BAD))
def test_bad_override_is_blamed_on_the_command_line(tmp_path, name):
    entry, needle = BAD[name]
    work = workdir(tmp_path)
    out = snakemake(work, "-n", "--config", entry, check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and "Job stats" not in text, text[-3000:]
    assert "Traceback" not in text, text[-3000:]
    lines = [line for line in text.splitlines() if line.startswith("invalid configuration:")]
    assert len(lines) == 1, text[-3000:]
    assert lines[0].startswith(f"invalid configuration: command line (--config '{entry}'): "), lines[0]
    assert needle in lines[0]
    assert "default.yaml" not in lines[0]  # the file is not at fault

    # the same text in a config file: refused too, and blamed on that file
    key, value = entry.split("=", 1)
    cfg = copy.deepcopy(yaml.safe_load(DEFAULT.read_text()))
    update_config(cfg, yaml.safe_load(f"{key}: {value}"))
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(work, "-n", "--configfile", "config/bad.yaml", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0 and needle in text and "bad.yaml" in text and "--config" not in text, text[-3000:]


def test_fault_in_the_file_is_still_blamed_on_the_file_with_an_override(tmp_path):
    work = workdir(tmp_path)
    cfg = yaml.safe_load(DEFAULT.read_text())
    cfg["train"]["lr"] = "fast"
    (work / "config" / "bad.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(work, "-n", "--configfile", "config/bad.yaml", "--config", 'evaluate={"k":10}', check=False)
    lines = [line for line in (out.stdout + out.stderr).splitlines() if line.startswith("invalid configuration:")]
    assert out.returncode != 0 and len(lines) == 1, out.stdout + out.stderr
    assert "bad.yaml" in lines[0] and "`train.lr` must be a number" in lines[0]
    assert "command line (--config" not in lines[0]
