"""The pipeline on a real SLURM cluster: the tiny config's whole DAG through
`--profile workflow/profiles/slurm` (snakemake-executor-plugin-slurm), on a one-node cluster the
test starts itself from Debian's slurm-wlm and munge (tests/helpers/services.py: munged,
slurmctld and slurmd as root, the machine's real CPUs and memory, partitions `cpu` and `gpu`).

Job status through `squeue`, not `sacct`: sacct needs accounting, i.e. slurmdbd and a MariaDB
server, two more daemons and a database to create on every CI machine, for nothing the pipeline
uses. squeue asks slurmctld itself; it sees finished jobs for MinJobAge seconds (3600 here; the
plugin uses squeue only when MinJobAge is at least 3 times its first status interval). The
scheduler's own record of every job is slurmctld's job completion log (jobcomp/filetxt).

The profile runs as shipped except for sizes: its cpus, memory and threads are a cluster node's,
so the test passes the profile's own resources back on the command line with cpus_per_task=1,
threads 1 (the tiny config's: the numbers must equal the local run's) and memory capped to half
the node's; partitions, runtimes, retries and the GPU requests (`--gpus=1`, granted from the
node's stand-in GPU) stay the profile's.

    .venv/bin/pytest tests/test_slurm.py      # as root, after `make debian-services`
"""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
import yaml
from helpers.services import SlurmCluster, skip_or_fail, slurm_cluster, slurm_unavailable
from helpers.runs import REQUIRED, compare_runs
from helpers.workflow import BIN, ENV, ROOT, workdir
from helpers.workflow import jobs as job_counts

PROFILE = ROOT / "workflow" / "profiles" / "slurm" / "config.yaml"
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+) \(log: [^)]*/rule_([^/]+)/")


@pytest.fixture(scope="module")
def cluster():
    reason = slurm_unavailable()
    if reason:
        skip_or_fail(f"no test SLURM cluster: {reason}")
    with slurm_cluster() as running:
        yield running


def fitted_resources(profile: dict, cluster: SlurmCluster) -> list[str]:
    """The profile's default-resources, set-resources and set-threads as command-line options,
    with one CPU and one thread per job and memory capped to half the node's."""
    mem_cap = cluster.memory_mb // 2

    def fit(key: str, value):
        if key == "mem_mb":
            return min(int(value), mem_cap)
        if key == "cpus_per_task":
            return 1
        return value

    # default-resources values are Python expressions (strings quoted); set-resources values are read as text
    default = [f"{k}={fit(k, v)!r}" for k, v in profile["default-resources"].items()]
    per_rule = [f"{rule}:{k}={fit(k, v)}" for rule, res in profile["set-resources"].items() for k, v in res.items()]
    threads = [f"{rule}=1" for rule in profile.get("set-threads", {})]
    return ["--default-resources", *default, "--set-resources", *per_rule, "--set-threads", *threads]


def expected_partition(profile: dict, rule: str) -> str:
    default = profile["default-resources"]["slurm_partition"]
    return profile["set-resources"].get(rule, {}).get("slurm_partition", default)


def test_cluster_runs_srun_and_sbatch(cluster):
    """The cluster itself: srun on the node, sbatch on the gpu partition with one GPU."""
    out = subprocess.run(["srun", "-n1", "hostname"], capture_output=True, text=True, timeout=60, check=False)
    assert out.returncode == 0 and out.stdout.strip() == cluster.node, out.stderr + cluster.logs()
    sbatch = ["sbatch", "--parsable", "--wait", "-p", "gpu", "--gpus=1", "-J", "snnl-check", "-o", "/dev/null",
              "--wrap", "true"]
    out = subprocess.run(sbatch, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stderr + cluster.logs()
    record = cluster.finished_jobs()[out.stdout.strip()]
    assert (record["Name"], record["JobState"], record["Partition"]) == ("snnl-check", "COMPLETED", "gpu"), record


@pytest.mark.slow
def test_tiny_pipeline_through_the_slurm_profile(cluster, tiny_reference, tmp_path):
    """Every job of the tiny DAG is a SLURM job (Snakemake's log names its id, slurmctld records it
    COMPLETED, under this run's name, on the profile's partition) and the outputs equal the
    local run's (tests/reliability/drills.py's comparison: tables, per-step logs, probe logs
    byte-identical; metrics and evaluation equal without timings; weights equal)."""
    profile = yaml.safe_load(PROFILE.read_text())
    work = workdir(tmp_path)
    cmd = [str(BIN / "snakemake"), "--profile", "workflow/profiles/slurm", "--configfile", "config/tiny.yaml",
           "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
           *fitted_resources(profile, cluster)]
    out = subprocess.run(cmd, cwd=work, env=ENV, capture_output=True, text=True, timeout=1800, check=False)
    text = out.stdout + out.stderr
    assert out.returncode == 0, f"{text[-6000:]}\n{cluster.logs()}"

    # Snakemake's log: every job but the local target rule went to SLURM, each with its job id
    logs = sorted((work / ".snakemake" / "log").glob("*.snakemake.log"))
    assert len(logs) == 1, logs
    log = logs[0].read_text()
    run_name = re.search(r"SLURM run ID: (\S+)", log).group(1)
    submitted = {slurm_id: rule for _, slurm_id, rule in SUBMITTED.findall(log)}
    local = set(re.findall(r"^localrule (\w+):", log, re.MULTILINE))
    counts = job_counts(text)
    assert local == {"all"} and counts["train"] == 4, (local, counts)
    expected = {rule: n for rule, n in counts.items() if rule not in local}
    by_rule = {rule: sum(1 for r in submitted.values() if r == rule) for rule in expected}
    assert by_rule == expected, f"jobs submitted to SLURM per rule {by_rule}, DAG {expected}"

    # the scheduler's record: each of those jobs, and no other of this run, completed on the node
    records = cluster.finished_jobs()
    ours = {job_id for job_id, rec in records.items() if rec.get("Name") == run_name}
    assert ours == set(submitted), f"slurmctld's jobs of this run {sorted(ours)}, Snakemake's {sorted(submitted)}"
    for slurm_id, rule in submitted.items():
        rec = records[slurm_id]
        assert (rec["JobState"], rec["ExitCode"], rec["NodeList"]) == ("COMPLETED", "0:0", cluster.node), rec
        assert rec["Partition"] == expected_partition(profile, rule), (rule, rec)
    assert {records[i]["Partition"] for i in submitted} == {"cpu", "gpu"}

    # the outputs equal the local run's
    cmp = compare_runs(tiny_reference, work)
    assert not cmp["missing"] and not cmp["extra"], {"missing": cmp["missing"], "extra": cmp["extra"]}
    failures = {REQUIRED[k]: v for k, v in cmp["required_failures"].items() if v}
    assert not failures, failures
    assert all(cmp["required_counts"][k] > 0 for k in REQUIRED), cmp["required_counts"]
    assert Path(work / "results" / "tables" / "claims.md").read_bytes() == (
        tiny_reference / "results" / "tables" / "claims.md").read_bytes()
