"""The Snakemake DAG through the `snakemake` command line: lint and format, dry runs of every
config, the whole DAG on a tiny config, targeted reruns, and a DVC round trip through a local
remote. Bad configs rejected before any job: tests/reliability/test_bad_configs.py."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.workflow import BIN, ENV, ROOT, copy_run, run, share_with_dvc, snakemake
from helpers.workflow import jobs as _jobs
from helpers.workflow import workdir as _workdir

# --- static checks -------------------------------------------------------------------------


def test_lint_is_clean(tmp_path):
    out = snakemake(_workdir(tmp_path), "--lint")
    assert "Congratulations" in out.stdout + out.stderr
    assert "Lints for" not in out.stdout + out.stderr


def test_snakefmt_check_passes():
    files = [str(ROOT / "Snakefile"), str(ROOT / "workflow")]
    out = subprocess.run([str(BIN / "snakefmt"), "--check", *files], capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


@pytest.mark.parametrize("config", ["default", "local", "paper"])
def test_dry_run_of_every_config_without_data(tmp_path, config):
    out = snakemake(_workdir(tmp_path), "-n", "--configfile", f"config/{config}.yaml")
    jobs = _jobs(out.stdout)
    cfg = yaml.safe_load((ROOT / "config" / f"{config}.yaml").read_text())["pipeline"]
    n_runs = len(cfg["datasets"]) * len(cfg.get("regimes", ["baseline", "entangled"])) * len(cfg["seeds"])
    assert jobs["train"] == n_runs and jobs["evaluate"] == n_runs
    assert jobs["tables"] == 1
    assert not (tmp_path / "results").exists() and not (tmp_path / "data").exists()


# --- the whole DAG on the tiny config -------------------------------------------------------


@pytest.fixture(scope="module")
def tiny_run(tiny_reference, tmp_path_factory):
    """A copy of the session's tiny run (conftest), which the tests below may change."""
    return copy_run(tiny_reference, tmp_path_factory.mktemp("pipeline"))


def _digest(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def test_whole_dag_produces_every_output(tiny_run):
    work = tiny_run
    for regime in ("baseline", "entangled"):
        for seed in (0, 1):
            assert (work / f"results/checkpoints/mnist5k/{regime}/seed{seed}.pt").is_file()
            assert (work / f"results/evaluation/mnist5k/{regime}/seed{seed}/summary.json").is_file()
            assert (work / f"results/benchmarks/train/mnist5k/{regime}/seed{seed}.tsv").is_file()
            assert (work / f"logs/train/mnist5k/{regime}/seed{seed}.log").is_file()
    for fig in ["synthetic_minimise", "synthetic_compare", "temperature_curve_mnist5k", "dynamics", "gan/mnist5k_seed0",
                "gan/mnist5k_seed0_samples", "mnist5k_tsne_layers", "mnist5k_tsne_gradients", "mnist5k_confidence", "bonus"]:
        png = work / "results" / "figures" / f"{fig}.png"
        assert png.is_file() and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n", fig
    tables = work / "results" / "tables"
    accuracy = (tables / "accuracy.md").read_text()
    assert "mnist5k" in accuracy
    claims = (tables / "claims.md").read_text()
    for claim in ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]:
        assert claim in claims, claim
    # a second run has nothing to do
    out = snakemake(work, "-n", "--configfile", "config/tiny.yaml")
    assert "Nothing to be done" in out.stdout + out.stderr


def test_changing_one_parameter_reruns_only_that_step_and_its_dependents(tiny_run):
    work = tiny_run
    cfg = yaml.safe_load((work / "config" / "tiny.yaml").read_text())
    cfg["experiments"]["gan"]["steps"] = 41
    (work / "config" / "changed.yaml").write_text(yaml.safe_dump(cfg))
    out = snakemake(work, "-n", "--configfile", "config/changed.yaml")
    jobs = _jobs(out.stdout)
    # the GAN reruns, and the tables that read its curve (and the report's claims page); nothing else
    assert set(jobs) == {"gan", "tables", "report_claims", "all"}, jobs

    cfg = yaml.safe_load((work / "config" / "tiny.yaml").read_text())
    cfg["evaluate"]["k"] = 6
    (work / "config" / "changed.yaml").write_text(yaml.safe_dump(cfg))
    jobs = _jobs(snakemake(work, "-n", "--configfile", "config/changed.yaml").stdout)
    assert set(jobs) == {"evaluate", "compare_regimes", "tables", "report_claims", "all"} and jobs["evaluate"] == 4, jobs


def test_slurm_profile_dry_run(tmp_path):
    work = _workdir(tmp_path)
    cmd = [str(BIN / "snakemake"), "-n", "--profile", "workflow/profiles/slurm", "--configfile", "config/paper.yaml"]
    out = subprocess.run(cmd, cwd=work, env=ENV, capture_output=True, text=True, timeout=600)
    assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-3000:]
    assert _jobs(out.stdout)["train"] == 4 * 3 * 5  # datasets x regimes (baseline, entangled, official) x seeds


def _tracked_files(work: Path) -> dict[str, str]:
    stage = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]["reproduce"]
    paths = []
    for key in ("outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    digests = {}
    for p in paths:
        target = work / p
        files = [target] if target.is_file() else sorted(f for f in target.rglob("*") if f.is_file())
        for f in files:
            digests[str(f.relative_to(work))] = _digest(f)
    return digests


def test_dvc_round_trip_restores_everything_and_nothing_reruns(tiny_run, tmp_path):
    """dvc push to a local remote, delete outputs and cache, `make pull` (dvc pull + snakemake
    --touch): every file comes back byte-identical and Snakemake has nothing to do."""
    work = tiny_run
    shutil.copytree(ROOT / "src", work / "src", dirs_exist_ok=True)  # a dependency of the stage
    (work / "data" / "raw").mkdir(parents=True, exist_ok=True)
    (work / "data" / "raw" / "README").write_text("original files (none for the embedded config)\n")
    snakemake(work, "--configfile", "config/tiny.yaml")  # dynamics CSV path etc. up to date
    snakemake(work, "--configfile", "config/tiny.yaml", "--report", "results/report.html")
    # the stage's params file is config/default.yaml; point it at the tiny config for the test
    shutil.copy(work / "config" / "tiny.yaml", work / "config" / "default.yaml")
    dvc = str(BIN / "dvc")
    remote = tmp_path / "remote"
    share_with_dvc(work, remote, name="local")
    before = _tracked_files(work)
    assert len(before) > 50 and any(p.endswith(".pt") for p in before)

    shutil.rmtree(work / "data")
    shutil.rmtree(work / "results")
    shutil.rmtree(work / ".dvc" / "cache")
    shutil.rmtree(work / ".snakemake")
    # make pull's two steps
    run([dvc, "pull", "-q"], work)
    snakemake(work, "--configfile", "config/tiny.yaml", "--touch", "--cores", "1")
    after = _tracked_files(work)
    assert after == before
    out = snakemake(work, "-n", "--configfile", "config/tiny.yaml")
    assert "Nothing to be done" in out.stdout + out.stderr, out.stdout[-3000:]


def test_report_holds_every_figure_and_renders(tiny_run):
    from snnl.pipeline.report import check_rendered, check_report, find_chromium

    work = tiny_run
    snakemake(work, "--configfile", "config/tiny.yaml", "--report", "results/report.html")
    figures = sorted((work / "results" / "figures").rglob("*.png"))
    assert len(figures) == 10
    old = os.getcwd()
    os.chdir(work)
    try:
        assert check_report("results/report.html", [str(f.relative_to(work)) for f in figures]) == []
        if find_chromium() is None:
            pytest.skip("Chromium not installed (make test installs it with apt-get where it can)")
        assert check_rendered("results/report.html", work / "report.png") == []
        assert (work / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    finally:
        os.chdir(old)
