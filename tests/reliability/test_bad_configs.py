"""Drill 2: malformed configs fail before any job starts, with one clear message naming the key
(or the YAML line), no Python traceback, and nothing written under results/, data/ or logs/.

Each case is the tiny test config (the default shrunk, tests/helpers/configs.py) with one fault, run through what a
user runs: `snakemake --profile workflow/profiles/default --configfile BAD.yaml -n` in a copy of
the workflow, and `snnl check-config BAD.yaml`; the train-section faults also through
`snnl train --config BAD.yaml`.

    .venv/bin/pytest tests/reliability/test_bad_configs.py
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers.configs import tiny_config, write_config
from helpers.workflow import BIN, ENV, snakemake, workdir

from snnl.cli import main


@dataclass(frozen=True)
class Case:
    """A fault: ``edit`` changes the tiny config in place (or ``text`` replaces the file);
    ``needle`` must appear in Snakemake's message, ``cli_needle`` (default: ``needle``) in
    `snnl check-config`'s."""

    category: str
    needle: str
    edit: Callable[[dict], None] | None = None
    text: str | None = None
    cli_needle: str | None = None


def put(dotted: str, value) -> Callable[[dict], None]:
    """An edit that sets the key ``a.b.c`` (creating the mappings on the way)."""

    def edit(cfg: dict) -> None:
        *parents, last = dotted.split(".")
        node = cfg
        for key in parents:
            node = node.setdefault(key, {})
        node[last] = value

    return edit


def drop(dotted: str) -> Callable[[dict], None]:
    def edit(cfg: dict) -> None:
        *parents, last = dotted.split(".")
        node = cfg
        for key in parents:
            node = node[key]
        del node[last]

    return edit


def both(*edits: Callable[[dict], None]) -> Callable[[dict], None]:
    def edit(cfg: dict) -> None:
        for e in edits:
            e(cfg)

    return edit


HEAD = "pipeline:\n  datasets: [mnist5k]\n  seeds: [0]\n"

CASES: dict[str, Case] = {
    # unknown keys
    "unknown top-level section": Case("unknown key", "`trian`", put("trian", {"epochs": 1})),
    "unknown pipeline key": Case("unknown key", "`pipeline.seed`", put("pipeline.seed", [0])),
    "unknown train key": Case("unknown key", "`train.epoch`", put("train.epoch", 3)),
    "unknown evaluate key": Case("unknown key", "`evaluate.atack_size`", put("evaluate.atack_size", 3)),
    "unknown experiment setting": Case("unknown key", "`experiments.gan.stepz`", put("experiments.gan.stepz", 40)),
    "unknown tune key": Case("unknown key", "`tune.n_trial`", put("tune.n_trial", 3)),
    "unknown dataset option": Case("unknown key", "`datasets.mnist5k.vals`", put("datasets.mnist5k.vals", 3)),
    # wrong types
    "seeds not a list": Case("wrong type", "`pipeline.seeds`", put("pipeline.seeds", "zero")),
    "lr is a word": Case("wrong type", "`train.lr`", put("train.lr", "fast")),
    "batch size not an integer": Case("wrong type", "`train.batch_size`", put("train.batch_size", 12.5)),
    "dataset option not a number": Case("wrong type", "`datasets.mnist5k.val_size`", put("datasets.mnist5k.val_size", "many")),
    "outliers not a list": Case("wrong type", "`pipeline.outliers.mnist5k`", put("pipeline.outliers", {"mnist5k": "noise"})),
    "model_args not an integer": Case("wrong type", "`train.model_args", put("train.model_args", {"width": "wide"})),
    # out of range
    "negative epochs": Case("out of range", "`train.epochs`", put("train.epochs", -1)),
    "zero threads": Case("out of range", "`pipeline.threads`", put("pipeline.threads", 0)),
    "k above reference_size": Case("out of range", "`evaluate.k`", put("evaluate.k", 500)),
    "epsilon above 1": Case("out of range", "`evaluate.epsilons.gray.0` must be <= 1", put("evaluate.epsilons", {"gray": [8]})),
    # unknown datasets or layer names
    "unknown dataset": Case("unknown name", "'imagenet'", put("pipeline.datasets", ["imagenet"])),
    "unknown outlier set": Case("unknown name", "`pipeline.outliers.mnist5k.1`", put("pipeline.outliers.mnist5k", ["letters", "svhn2"])),
    "outliers of a dataset not trained": Case("unknown name", "`pipeline.outliers.digits`",
                                              put("pipeline.outliers.digits", ["noise"])),
    "unknown layer to entangle": Case("unknown name", "`train.layers` names ['conv9']", put("train.layers", ["conv1", "conv9"])),
    "unknown layer to evaluate": Case("unknown name", "`evaluate.layers` names ['fc1']", put("evaluate.layers", ["fc1"])),
    # shapes that cannot be adapted or built
    "outlier set is the dataset itself": Case("shape", "`pipeline.outliers.mnist5k` lists mnist5k itself",
                                              put("pipeline.outliers.mnist5k", ["letters", "mnist5k"])),
    "noise with 2 channels": Case("shape", "`datasets.noise.shape`", put("datasets.noise.shape", [2, 28, 28])),
    "images too small for the model": Case("shape", "dataset `digits` (images 1x8x8)", both(
        put("pipeline.datasets", ["digits"]), put("pipeline.outliers", {}), put("experiments.gan.datasets", []))),
    # empty lists and missing keys
    "empty seed list": Case("empty", "`pipeline.seeds` must not be empty", put("pipeline.seeds", [])),
    "missing seeds": Case("empty", "missing required key `pipeline.seeds`", drop("pipeline.seeds")),
    "empty regimes": Case("empty", "`pipeline.regimes` must not be empty", put("pipeline.regimes", [])),
    # YAML syntax. Snakemake reads --configfile itself, before the workflow's code runs, and its
    # message names neither file nor line (snakemake 9, common/configfile.py); `snnl check-config`
    # gives the line.
    "unclosed bracket": Case("YAML", "not valid JSON or YAML", text=HEAD.replace("[mnist5k]", "[mnist5k") + "train:\n  lr: 0.1\n",
                             cli_needle="line 3, column 8"),
    "tab indentation": Case("YAML", "not valid JSON or YAML", text=HEAD + "train:\n\tlr: 0.1\n", cli_needle="line 5, column 1"),
    "top level is a list": Case("YAML", "keys at top level", text="- pipeline\n- train\n", cli_needle="top level must be a mapping"),
}


def write_case(case: Case, path: Path) -> None:
    if case.text is not None:
        path.write_text(case.text)
        return
    cfg = tiny_config()
    case.edit(cfg)
    write_config(cfg, path)


def listing(root: Path) -> set[str]:
    """Every path under ``root`` but Snakemake's own bookkeeping (.snakemake/)."""
    return {str(p.relative_to(root)) for p in root.rglob("*") if ".snakemake" not in p.relative_to(root).parts}


def test_every_category_is_covered():
    categories = {c.category for c in CASES.values()}
    assert categories == {"unknown key", "wrong type", "out of range", "unknown name", "shape", "empty", "YAML"}
    assert len(CASES) >= 20


@pytest.mark.parametrize("name", list(CASES))
def test_bad_config_fails_before_any_job(tmp_path, name, capsys):
    case = CASES[name]
    work = workdir(tmp_path)
    bad = work / "config" / "bad.yaml"
    write_case(case, bad)
    before = listing(work)

    out = snakemake(work, "-n", "--configfile", "config/bad.yaml", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0, text[-2000:]
    assert case.needle in text, text[-2000:]
    assert "Traceback" not in text, text[-3000:]
    assert "Job stats" not in text  # no DAG was built, so no job could start
    assert listing(work) == before
    assert not any((work / d).exists() for d in ("results", "data", "logs"))

    # `snnl check-config` (in-process: an uncaught exception would fail the test) says the same
    assert main(["check-config", str(bad)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnl check-config: error: ")
    assert (case.cli_needle or case.needle) in err, err
    assert len(err.strip().splitlines()) == 1, err  # one message, one line
    assert listing(work) == before


TRAIN_CASES = ["unknown train key", "lr is a word", "batch size not an integer", "negative epochs", "tab indentation",
               "unknown layer to entangle", "model_args not an integer"]


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    from snnl.data import prepare

    tiny = write_config(tiny_config(), tmp_path_factory.mktemp("config") / "tiny.yaml")
    return prepare("mnist5k", tmp_path_factory.mktemp("data") / "mnist5k", config_path=tiny)


@pytest.mark.parametrize("name", TRAIN_CASES)
def test_snnl_train_refuses_a_bad_config_before_writing(tmp_path, name, prepared, capsys):
    case = CASES[name]
    bad = tmp_path / "bad.yaml"
    write_case(case, bad)
    out = tmp_path / "run"
    argv = ["train", "--data", str(prepared), "--regime", "entangled", "--seed", "0", "--config", str(bad),
            "--out", str(out / "m.pt"), "--metrics", str(out / "m.json"), "--log", str(out / "log.csv"), "--quiet"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnl train: error: ")
    needle = {"unknown layer to entangle": "`train.layers` names ['conv9'], which are not modules", "model_args not an integer": "model_args"}.get(
        name, case.cli_needle or case.needle)
    assert needle in err, err
    assert not out.exists()


def test_console_script_prints_one_line_without_traceback(tmp_path):
    """The installed `snnl` entry point, as a separate process (what a user's shell runs)."""
    bad = tmp_path / "bad.yaml"
    write_case(CASES["unknown layer to entangle"], bad)
    run = subprocess.run([str(BIN / "snnl"), "check-config", str(bad)], capture_output=True, text=True, env=ENV,
                         timeout=300, check=False)
    assert run.returncode == 2
    assert run.stdout == ""
    assert run.stderr.count("\n") == 1 and "Traceback" not in run.stderr
    assert "`train.layers` names ['conv9'], which are not layers of the `cnn` model" in run.stderr
    assert "its hidden layers are conv1, conv2, conv3" in run.stderr
