"""Static checks of the packaging: environment.yml and requirements.txt pin the same packages."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[1]


def _requirements() -> dict[str, str]:
    pins = {}
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        m = re.fullmatch(r"([A-Za-z0-9_.\-]+)==([^\s;]+)", line)
        assert m, f"requirements.txt: not an exact pin: {line!r}"
        pins[m.group(1).lower()] = m.group(2)
    return pins


def test_environment_yml_equals_requirements():
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    deps = env["dependencies"]
    assert "python=3.11" in deps and "pip" in deps
    pip = next(d["pip"] for d in deps if isinstance(d, dict) and "pip" in d)
    pins = {}
    for item in pip:
        if item.startswith("-e"):
            continue
        name, version = item.split("==")
        pins[name.lower()] = version
    assert pins == _requirements()


def test_required_pins():
    pins = _requirements()
    assert pins["torch"] == "2.14.1" and pins["torchvision"] == "0.29.1"
    assert pins["snakemake"].startswith("9.") and pins["dvc"].startswith("3.")
    for name in ["pandas", "seaborn", "scikit-learn", "mlxtend", "tqdm", "optuna", "pytest",
                 "pytorch-metric-learning"]:
        assert name in pins, name
    assert "torchattacks" not in pins  # its pinned requests breaks DVC


def test_help_shows_the_docstring():
    out = subprocess.run(
        [sys.executable, "-c", "import snnl; help(snnl.soft_nearest_neighbor_loss)"],
        capture_output=True, text=True, check=True, env={"PAGER": "cat", "PATH": "/usr/bin:/bin"},
    ).stdout
    assert "LSE_{k != i}" in out and "No-positive policy" in out and "Temperature modes" in out


def test_cli_entry_point_runs():
    out = subprocess.run([sys.executable, "-m", "snnl.cli", "info"], capture_output=True, text=True, check=True)
    assert "snnl 0.1.0" in out.stdout
