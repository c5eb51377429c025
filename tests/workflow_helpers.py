"""Running the Snakemake workflow from tests: a copy of the workflow in a temporary folder and
the `snakemake` command line on it (tests/test_pipeline.py, tests/reliability/)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
TINY = ROOT / "tests" / "pipeline" / "tiny.yaml"
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "PYTHONWARNINGS": "ignore"}


def workdir(tmp: Path) -> Path:
    """A copy of the workflow (not the data or results) in ``tmp``, with config/tiny.yaml."""
    for name in ("Snakefile", "dvc.yaml", "environment.yml", "requirements.txt"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tmp / name)
    for name in ("workflow", "config"):
        shutil.copytree(ROOT / name, tmp / name)
    shutil.copy(TINY, tmp / "config" / "tiny.yaml")
    return tmp


def snakemake(cwd: Path, *args: str, check: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """`snakemake --profile workflow/profiles/default ARGS` in ``cwd``; raises on failure with ``check``."""
    cmd = [str(BIN / "snakemake"), "--profile", "workflow/profiles/default", *args]
    out = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout, check=False)
    if check and out.returncode != 0:
        raise AssertionError(f"{' '.join(cmd)} failed ({out.returncode}):\n{out.stdout[-4000:]}\n{out.stderr[-4000:]}")
    return out


def jobs(dry_run_output: str) -> dict[str, int]:
    """Job counts from a dry run's 'Job stats' table."""
    counts, inside = {}, False
    for line in dry_run_output.splitlines():
        if line.startswith("Job stats"):
            inside = True
            continue
        if inside:
            parts = line.split()
            if len(parts) == 2 and parts[1].isdigit() and parts[0] != "total":
                counts[parts[0]] = int(parts[1])
            elif parts and parts[0] == "total":
                break
    return counts


def run(cmd: list[str], cwd: Path, ok: bool = True, timeout: int = 900) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd`` with the venv first on PATH; with ``ok``, fail the test on a non-zero exit."""
    out = subprocess.run(cmd, cwd=cwd, env=ENV, capture_output=True, text=True, timeout=timeout, check=False)
    if ok:
        assert out.returncode == 0, f"{' '.join(cmd)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def share_with_dvc(work: Path, remote: Path, name: str = "storage", verify: bool = True) -> None:
    """The README's sharing steps in a fresh git repo at ``work``: git and DVC init, a default
    remote (``verify`` on, as `make pull` sets it), `dvc commit --force`, `dvc push`."""
    dvc = str(BIN / "dvc")
    run(["git", "init", "-q"], work)
    run(["git", "config", "user.email", "t@example.com"], work)
    run(["git", "config", "user.name", "test"], work)
    run([dvc, "init", "-q"], work)
    run([dvc, "config", "core.analytics", "false"], work)
    run([dvc, "remote", "add", "-d", name, str(remote)], work)
    if verify:
        run([dvc, "remote", "modify", name, "verify", "true"], work)
    run([dvc, "commit", "--force", "-q"], work)
    run([dvc, "push", "-q"], work)
