"""Running the Snakemake workflow from tests: a copy of the workflow in a temporary folder and
the `snakemake` command line on it (tests/test_pipeline.py, tests/reliability/); the tiny
config's whole DAG run once per session (conftest's ``tiny_reference``) and copied by the tests
that start from finished outputs; a copy of the project that `make` and `dvc` can run in; the
README's DVC sharing steps."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers.configs import tiny_config, write_config

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
# the venv first on PATH; without an outer make's variables (under `make test`), which would reach the
# `make` the tests run themselves
ENV = {**{k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL")},
       "PATH": f"{BIN}:{os.environ.get('PATH', '')}", "PYTHONWARNINGS": "ignore"}


def workdir(tmp: Path) -> Path:
    """A copy of the workflow (not the data or results) in ``tmp``, with config/tiny.yaml (the
    default config shrunk: helpers.configs.tiny_config); over an existing copy, its files are replaced."""
    for name in ("Snakefile", "dvc.yaml", "environment.yml", "requirements.txt"):
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tmp / name)
    for name in ("workflow", "config"):
        shutil.copytree(ROOT / name, tmp / name, dirs_exist_ok=True)
    write_config(tiny_config(), tmp / "config" / "tiny.yaml")
    return tmp


PROJECT_FILES = ("Makefile", "pyproject.toml", ".gitignore", ".dvcignore")
INSTALL_INPUTS = ("requirements.txt", "pyproject.toml")  # what make's install stamp depends on


def project_copy(tmp: Path) -> Path:
    """``workdir(tmp)`` plus what `make reproduce` and `dvc` need: the Makefile, pyproject.toml,
    .gitignore, .dvcignore, src/snnl (a dependency of dvc.yaml's stage; the jobs still run the
    installed package) and a ``.venv`` link to this checkout's. The install inputs are dated
    back so that make counts the install stamp as up to date and never reinstalls into the
    shared venv (call ``keep_install(tmp)`` again after a `git clone` of the copy)."""
    workdir(tmp)
    for name in PROJECT_FILES:
        if (ROOT / name).exists():
            shutil.copy(ROOT / name, tmp / name)
    shutil.copytree(ROOT / "src" / "snnl", tmp / "src" / "snnl", ignore=shutil.ignore_patterns("__pycache__"),
                    dirs_exist_ok=True)
    return keep_install(tmp)


def keep_install(work: Path) -> Path:
    """A ``.venv`` link to this checkout's venv in ``work``, and its install inputs dated
    1 January 2000 (older than the install stamp)."""
    if not (work / ".venv").exists():
        (work / ".venv").symlink_to(BIN.parent)
    for name in INSTALL_INPUTS:
        if (work / name).exists():
            os.utime(work / name, (946684800, 946684800))
    return work


def copy_run(src: Path, dest: Path) -> Path:
    """A copy of the finished run in ``src`` (outputs, logs, Snakemake's metadata) at ``dest``,
    every file keeping its modification time, so Snakemake there has nothing to do."""
    shutil.copytree(src, dest, symlinks=True, dirs_exist_ok=True)
    return dest


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


def run(cmd: list[str], cwd: Path, ok: bool = True, timeout: int = 900,
        env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """Run ``cmd`` in ``cwd`` with ``env`` (default: ENV, the venv first on PATH); with ``ok``,
    fail the test on a non-zero exit."""
    out = subprocess.run(cmd, cwd=cwd, env=env or ENV, capture_output=True, text=True, timeout=timeout, check=False)
    if ok:
        assert out.returncode == 0, f"{' '.join(cmd)}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}"
    return out


def git_init(work: Path, env: dict[str, str] | None = None) -> None:
    """`git init` in ``work`` with a committer, and ``.venv`` excluded (.gitignore's ``.venv/``
    matches folders only, not ``project_copy``'s link)."""
    run(["git", "init", "-q"], work, env=env)
    run(["git", "config", "user.email", "t@example.com"], work, env=env)
    run(["git", "config", "user.name", "test"], work, env=env)
    with open(work / ".git" / "info" / "exclude", "a") as fh:
        fh.write(".venv\n")


def share_with_dvc(work: Path, remote: Path | str, name: str = "storage", verify: bool = True,
                   options: dict[str, str] | None = None, env: dict[str, str] | None = None) -> None:
    """The README's sharing steps in a fresh git repo at ``work``: git and DVC init, a default
    remote at ``remote`` (a folder, or a URL such as ``ssh://host/path``) with ``verify`` on, as
    `make pull` sets it, and ``options`` set with `dvc remote modify --local` (port, user,
    keyfile: untracked, per machine); `dvc commit --force`, `dvc push`. ``env``: as for ``run``."""
    dvc = str(BIN / "dvc")
    git_init(work, env)
    run([dvc, "init", "-q"], work, env=env)
    run([dvc, "config", "core.analytics", "false"], work, env=env)
    run([dvc, "remote", "add", "-d", name, str(remote)], work, env=env)
    if verify:
        run([dvc, "remote", "modify", name, "verify", "true"], work, env=env)
    set_remote_options(work, name, options or {}, env)
    run([dvc, "commit", "--force", "-q"], work, env=env)
    run([dvc, "push", "-q"], work, env=env)


def set_remote_options(work: Path, name: str, options: dict[str, str], env: dict[str, str] | None = None) -> None:
    """`dvc remote modify --local NAME KEY VALUE` for each option (in .dvc/config.local, untracked)."""
    for key, value in options.items():
        run([str(BIN / "dvc"), "remote", "modify", "--local", name, key, str(value)], work, env=env)
