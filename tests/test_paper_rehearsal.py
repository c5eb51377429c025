"""A rehearsal of the paper's command, `make reproduce CONFIG=config/paper.yaml`, on CPU in minutes.

config/paper.yaml with tests/pipeline/paper_rehearsal.yaml merged on top (as Snakemake merges
several --configfile: nested mappings key by key) keeps the paper's DAG - MNIST, Fashion-MNIST,
SVHN (3-channel CNN) and CIFAR-10 (ResNet-18), every outlier set (KMNIST for MNIST), both
regimes, tuning, every experiment, the DCGAN on MNIST and CIFAR-10 - and shrinks every size
(2 seeds instead of 5). The torchvision sets are tiny stand-ins in torchvision's own on-disk
layout in data/raw (tests/helpers/torchvision_files.py), found there by the real loaders with
`download: true` still set. Every Python process of the run loads
tests/pipeline/rehearsal_site/sitecustomize.py: any network attempt is refused and logged, and
torchvision is told the stand-ins' MD5s (its tables hold the real files'; nothing else changes).
`make reproduce` runs as a user runs it: check-config, Snakemake with 2 cores, the report, its check.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from snakemake.utils import update_config

from helpers.torchvision_files import write_raw_root
from helpers.workflow import BIN, ENV, ROOT, project_copy, run

pytestmark = pytest.mark.slow

PAPER = ROOT / "config" / "paper.yaml"
OVERRIDE = ROOT / "tests" / "pipeline" / "paper_rehearsal.yaml"
SITE = ROOT / "tests" / "pipeline" / "rehearsal_site"
CONFIG = "config/paper_rehearsal.yaml"  # in the copy: paper.yaml with the override merged in
TORCHVISION_SETS = {"mnist", "fashion_mnist", "kmnist", "svhn", "cifar10"}


def read(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def rehearsal_config() -> dict:
    """paper.yaml updated by the override with Snakemake's own merge of several --configfile."""
    config = read(PAPER)
    update_config(config, read(OVERRIDE))
    return config


def guarded_env(work: Path) -> dict[str, str]:
    """ENV plus the rehearsal's sitecustomize: network attempts logged to work/network.log and
    refused; CIFAR-10's and SVHN's MD5 tables read from work/md5.json."""
    path = os.pathsep.join(p for p in (str(SITE), ENV.get("PYTHONPATH", "")) if p)
    return {**ENV, "PYTHONPATH": path, "SNNL_REHEARSAL_NETLOG": str(work / "network.log"),
            "SNNL_REHEARSAL_MD5": str(work / "md5.json")}


@pytest.fixture(scope="module")
def rehearsal(tmp_path_factory):
    """The rehearsal, run once: (the copy, the merged config, make's result)."""
    work = project_copy(tmp_path_factory.mktemp("paper-rehearsal"))
    (work / "md5.json").write_text(json.dumps(write_raw_root(work / "data" / "raw")))
    config = rehearsal_config()
    (work / CONFIG).write_text(yaml.safe_dump(config, sort_keys=False))
    # debian-data/debian-tools are make test's prerequisites already; never apt-get from here
    cmd = ["make", "-o", "debian-data", "-o", "debian-tools", "reproduce", f"CONFIG={CONFIG}", "CORES=2"]
    out = run(cmd, work, ok=False, timeout=3600, env=guarded_env(work))
    return work, config, out


def test_override_keeps_the_paper_dag():
    """The override shrinks sizes only: what the paper config runs, the rehearsal runs."""
    paper, merged = read(PAPER), rehearsal_config()
    for key in ("datasets", "outliers", "regimes", "tune"):
        assert merged["pipeline"][key] == paper["pipeline"][key], key
    assert set(merged["pipeline"]["seeds"]) < set(paper["pipeline"]["seeds"]) and len(merged["pipeline"]["seeds"]) >= 2
    for name in TORCHVISION_SETS:
        assert merged["datasets"][name]["download"] is True, name
    for dataset, override in paper["train"]["overrides"].items():
        for key, value in override.items():
            if key != "epochs":
                assert merged["train"]["overrides"][dataset][key] == value, (dataset, key)
    for key in ("model", "optimizer", "alpha", "initial_temperature"):
        assert merged["train"][key] == paper["train"][key], key
    for name, settings in paper["experiments"].items():
        for key in ("run", "datasets", "arch"):
            if key in settings:
                assert merged["experiments"][name][key] == settings[key], (name, key)
    assert merged["train"]["device"] == "cpu"


def test_guard_refuses_and_logs_the_network(tmp_path):
    """The rehearsal's processes cannot reach the network, and an attempt leaves a line."""
    (tmp_path / "md5.json").write_text(json.dumps({"cifar10": {}, "svhn": {}}))
    code = "import urllib.request\ntry:\n    urllib.request.urlopen('http://example.org', timeout=5)\nexcept OSError as e:\n    print(e)"
    out = subprocess.run([sys.executable, "-c", code], env=guarded_env(tmp_path), capture_output=True, text=True,
                         timeout=60, check=True)
    assert "network access is disabled" in out.stdout
    assert "getaddrinfo 'example.org'" in (tmp_path / "network.log").read_text()


def test_the_paper_command_runs_every_job(rehearsal):
    work, config, out = rehearsal
    assert out.returncode == 0, f"make reproduce failed:\n{out.stdout[-6000:]}\n{out.stderr[-6000:]}"
    dry = run([str(BIN / "snakemake"), "--profile", "workflow/profiles/default", "--configfile", CONFIG, "-n"],
              work, env=guarded_env(work))
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:]
    p = config["pipeline"]
    results = work / "results"
    expected = [results / "report.html", results / "tables" / "claims.md", results / "figures" / "dynamics.png"]
    for d in p["datasets"]:
        expected += [results / "figures" / f"temperature_curve_{d}.png", results / "figures" / f"{d}_tsne_layers.png"]
        for r in p["regimes"]:
            expected.append(results / "tuning" / d / f"{r}.json")
            for s in p["seeds"]:
                expected += [results / "checkpoints" / d / r / f"seed{s}.pt", results / "metrics" / d / r / f"seed{s}.json",
                             results / "evaluation" / d / r / f"seed{s}" / "summary.json"]
    for d in config["experiments"]["gan"]["datasets"]:
        for s in config["experiments"]["gan"]["seeds"]:
            expected += [results / "experiments" / "gan" / d / f"seed{s}.csv", results / "figures" / "gan" / f"{d}_seed{s}.png"]
    for d in p["datasets"]:  # C1's long horizon, and the bonus figure of the non-baseline regimes
        expected += [results / "dynamics_long" / d / "baseline" / "seed0.csv"]
    expected += [results / "figures" / "bonus.png", results / "tables" / "bonus.md"]
    missing = [str(f.relative_to(work)) for f in expected if not f.is_file() or f.stat().st_size == 0]
    assert not missing, f"missing outputs: {missing}"


def test_runs_used_the_paper_models_tuning_and_outliers(rehearsal):
    work, config, out = rehearsal
    assert out.returncode == 0
    p, results = config["pipeline"], work / "results"
    for d in p["datasets"]:
        for r in p["regimes"]:
            tuned = json.loads((results / "tuning" / d / f"{r}.json").read_text())
            assert tuned["n_trials"] == config["tune"]["n_trials"]
            for s in p["seeds"]:
                metrics = json.loads((results / "metrics" / d / r / f"seed{s}.json").read_text())
                assert metrics["model"] == ("resnet" if d == "cifar10" else "cnn"), (d, r, s)
                assert metrics["model_spec"]["input_shape"] == ([3, 32, 32] if d in ("svhn", "cifar10") else [1, 28, 28])
                for key, value in tuned["params"].items():  # the tuned values were trained with
                    assert metrics["config"][key] == pytest.approx(value), (d, r, s, key)
                summary = json.loads((results / "evaluation" / d / r / f"seed{s}" / "summary.json").read_text())
                assert set(summary["outliers"]) == set(p["outliers"][d]), (d, r, s)
    for d in config["experiments"]["gan"]["datasets"]:  # the DCGAN's discriminator layers
        curve = results / "experiments" / "gan" / d / "seed0.csv"
        layers = {line.split(",")[3] for line in curve.read_text().splitlines()[1:]}  # dataset,seed,step,layer,...
        assert {"conv1", "conv2"} <= layers, (d, layers)


def test_nothing_was_downloaded(rehearsal):
    """No process tried the network; every torchvision set was read from the stand-ins in data/raw."""
    work, config, out = rehearsal
    assert out.returncode == 0
    log = work / "network.log"
    assert not log.exists(), f"network attempts: {log.read_text()}"
    raw = (work / "data" / "raw").resolve()
    read_sets = set()
    for manifest in (work / "data" / "prepared").rglob("manifest.json"):
        source = json.loads(manifest.read_text())["source"]
        if source["kind"] == "torchvision":
            assert source["downloaded"] is False, manifest
            assert Path(source["folder"]).resolve().is_relative_to(raw), (manifest, source["folder"])
            read_sets.add(source["reader"].rsplit(".", 1)[1])
    assert read_sets == {"MNIST", "FashionMNIST", "KMNIST", "SVHN", "CIFAR10"}
