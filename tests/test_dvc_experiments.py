"""DVC experiments on the pipeline: `dvc exp run -S 'config/default.yaml:KEY=VALUE'` runs
dvc.yaml's one stage (`make reproduce` on the config), and Snakemake reruns only the jobs that
read the changed value; `dvc exp show` lists the experiments with their params and metrics;
`dvc metrics diff` compares two of them.

The project is copied with a finished run of the tiny config (the session's, tests/conftest.py),
the tiny config placed as config/default.yaml (the stage's params file), and committed as the
baseline (`dvc repro`: nothing to rerun). Experiment ``ep2`` sets train.epochs=2: training and
what reads checkpoints rerun, not data preparation, the synthetic experiments or the GAN.
Experiment ``k6``, on top of it, sets evaluate.k=6: only evaluation, the comparison figures and
the tables rerun. Oracles: the job lists the DAG implies, the untouched outputs' bytes and
mtimes, and each experiment's results/tables/summary.json read from the workspace right after
it ran, against `dvc exp show` and `dvc metrics diff`.

    .venv/bin/pytest tests/test_dvc_experiments.py
"""

from __future__ import annotations

import hashlib
import json
import math
import shutil
from pathlib import Path

import pytest
from helpers.workflow import BIN, copy_run, git_init, project_copy, run
from helpers.workflow import jobs as job_counts

DVC = str(BIN / "dvc")
SUMMARY = "results/tables/summary.json"
# outputs of jobs that read nothing of train.* or evaluate.* (data preparation, E1, E5)
UNTOUCHED = ["data/prepared", "results/experiments/synthetic_minimise.csv", "results/experiments/synthetic_compare.csv",
             "results/experiments/gan/mnist5k/seed0.csv", "results/figures/gan/mnist5k_seed0.png",
             "results/figures/synthetic_compare.png"]


def flatten(data: dict, prefix: str = "") -> dict[str, object]:
    """{"a": {"b": 1}} -> {"a.b": 1}: the key names `dvc metrics` uses."""
    out: dict[str, object] = {}
    for key, value in data.items():
        name = f"{prefix}.{key}" if prefix else key
        if isinstance(value, dict):
            out.update(flatten(value, name))
        else:
            out[name] = value
    return out


def stamps(work: Path) -> dict[str, tuple[int, str]]:
    """(mtime in ns, bytes' hash) of every file of the UNTOUCHED outputs."""
    found = {}
    for rel in UNTOUCHED:
        path = work / rel
        for f in [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file()):
            found[str(f.relative_to(work))] = (f.stat().st_mtime_ns, hashlib.sha256(f.read_bytes()).hexdigest())
    return found


def experiment(work: Path, name: str, setting: str) -> tuple[dict[str, int], dict[str, object]]:
    """`dvc exp run -n NAME -S config/default.yaml:SETTING`: Snakemake's jobs, and the summary it left."""
    out = run([DVC, "exp", "run", "-n", name, "-S", f"config/default.yaml:{setting}"], work, timeout=1800)
    counts = job_counts(out.stdout + out.stderr)  # Snakemake reports on stderr
    assert counts, f"no Snakemake job list in the output of dvc exp run:\n{out.stdout[-3000:]}{out.stderr[-3000:]}"
    return counts, flatten(json.loads((work / SUMMARY).read_text()))


@pytest.fixture()
def baseline(tiny_reference, tmp_path):
    """The project with the finished tiny run, as a git + DVC repository whose HEAD holds the
    baseline's dvc.lock."""
    work = copy_run(tiny_reference, tmp_path / "work")
    project_copy(work)
    shutil.copy(work / "config" / "tiny.yaml", work / "config" / "default.yaml")
    (work / "data" / "raw").mkdir(parents=True, exist_ok=True)
    git_init(work)
    run([DVC, "init", "-q"], work)
    run([DVC, "config", "core.analytics", "false"], work)
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-q", "-m", "project"], work)
    out = run([DVC, "repro"], work, timeout=1800)
    assert "Nothing to be done" in out.stderr, f"the baseline reran jobs:\n{out.stderr[-3000:]}"
    run(["git", "add", "dvc.lock"], work)
    run(["git", "commit", "-q", "-m", "baseline results"], work)
    return work


@pytest.mark.slow
def test_experiments_rerun_only_what_their_change_touches_and_compare(baseline):
    work = baseline
    before = stamps(work)
    summary0 = flatten(json.loads((work / SUMMARY).read_text()))

    jobs_a, summary_a = experiment(work, "ep2", "train.epochs=2")
    assert set(jobs_a) == {"train", "evaluate", "temperature_curve", "dynamics_figure", "bonus_figure",
                           "compare_regimes", "tables", "report_claims", "all"}, jobs_a
    assert jobs_a["train"] == 4 and jobs_a["evaluate"] == 4, jobs_a
    assert stamps(work) == before, "an output of data preparation, E1 or E5 was rewritten"
    assert summary_a["accuracy.mnist5k.baseline.mean"] != summary0["accuracy.mnist5k.baseline.mean"]

    jobs_b, summary_b = experiment(work, "k6", "evaluate.k=6")
    assert set(jobs_b) == {"evaluate", "compare_regimes", "tables", "report_claims", "all"} \
        and jobs_b["evaluate"] == 4, jobs_b
    assert stamps(work) == before

    # dvc exp show: both experiments, with their params and the metrics each left in the workspace
    shown = json.loads(run([DVC, "exp", "show", "--json"], work).stdout)
    exps = {rev["name"]: rev["data"] for base in shown for exp in base.get("experiments") or []
            for rev in exp["revs"] if rev.get("name")}
    assert {"ep2", "k6"} <= set(exps), sorted(exps)
    for name, epochs, k, summary in [("ep2", 2, 5, summary_a), ("k6", 2, 6, summary_b)]:
        params = exps[name]["params"]["config/default.yaml"]["data"]
        assert (params["train"]["epochs"], params["evaluate"]["k"]) == (epochs, k), (name, params)
        scalars = {key: value for key, value in summary.items() if not isinstance(value, list)}  # DVC drops lists
        assert flatten(exps[name]["metrics"][SUMMARY]["data"]) == scalars, name

    # dvc metrics diff ep2 k6: exactly the values that differ between the two summaries
    diff = json.loads(run([DVC, "metrics", "diff", "ep2", "k6", "--json"], work).stdout)[SUMMARY]
    changed = {key for key in summary_a if summary_a[key] != summary_b.get(key) and not isinstance(summary_a[key], list)}
    assert set(diff) == changed, sorted(set(diff) ^ changed)[:10]
    assert any(key.startswith("detection_auroc.") for key in changed)
    assert not any(key.startswith("accuracy.") for key in changed)  # k does not change the models
    for key, entry in diff.items():
        assert (entry["old"], entry["new"]) == (summary_a[key], summary_b[key]), key
        if isinstance(entry["new"], float):
            assert math.isclose(entry["diff"], summary_b[key] - summary_a[key], rel_tol=1e-9, abs_tol=1e-12), key
