"""A run that diverges is an outcome, not a crash (issue 16): with `--on-divergence record` (the
pipeline's setting) training writes its four outputs marked `diverged`, evaluation writes a
diverged summary, the tables count the run and use none of its numbers, and the figures leave it
out by name; the DAG finishes.

    .venv/bin/pytest tests/test_diverged_runs.py
"""

from __future__ import annotations

import csv
import json
import re
import subprocess

import pandas as pd
import pytest
import yaml
from helpers.tables import make_metrics, make_summary, t_interval, write_run
from helpers.training_data import digits_data, poison_update_after
from helpers.workflow import BIN, ENV, copy_run, snakemake

from snnl.checkpoint import load_checkpoint, load_model
from snnl.data import prepare
from snnl.errors import CheckpointError, DivergenceError, is_diverged
from snnl.evaluate.compare import compare_regimes
from snnl.tables import load_inputs, write_tables
from snnl.training import TrainConfig, train

# plain SGD at lr 1e4 on a small MLP: the activations overflow within a few steps (as in
# tests/reliability/test_divergence.py)
DIVERGING = {"model": "mlp", "model_args": {"hidden": [32, 32]}, "optimizer": "sgd", "lr": 1.0e4, "batch_size": 64,
             "max_steps": 40, "checkpoint_every": 5, "probe_points": 4, "probe_size": 50, "threads": 1, "alpha": 1.0,
             "log_every": 1}


def _no_nan(token):
    raise AssertionError(f"non-strict JSON constant {token}")


def _outputs(tmp_path):
    return {"out": tmp_path / "m.pt", "metrics": tmp_path / "m.json", "log": tmp_path / "log.csv",
            "probe_log": tmp_path / "probe.csv"}


@pytest.mark.parametrize("reads", [{"log_every": 1}, {"log_every": 1000, "checkpoint_every": 0}])
def test_a_recorded_divergence_is_the_step_the_stopping_run_names(tmp_path, reads):
    """The same run twice: stopping (the default) raises at step S; recording writes every output,
    says S, and keeps nothing measured at or after S, no weights and no accuracy. With no log or
    checkpoint step before the end, the probe steps catch it (the probe never measures NaN)."""
    cfg, data = TrainConfig(**{**DIVERGING, **reads}), digits_data()
    with pytest.raises(DivergenceError) as err:
        train(cfg, data, regime="entangled", seed=0, progress=False, **_outputs(tmp_path / "stop"))
    bad = err.value.step
    assert 1 < bad < DIVERGING["max_steps"]

    paths = _outputs(tmp_path / "record")
    result = train(cfg, data, regime="entangled", seed=0, progress=False, record_divergence=True, **paths)
    m = json.loads(paths["metrics"].read_text(), parse_constant=_no_nan)  # strict JSON: no NaN, no Infinity
    assert m["diverged"] == result.metrics["diverged"]
    assert is_diverged(m) and m["diverged"]["step"] == bad and m["diverged"]["reason"] == err.value.reason
    assert m["steps"] == bad - 1
    assert all(m[f"{s}_accuracy"] is None and m[f"{s}_loss"] is None for s in ("train", "val", "test"))
    assert (m["dataset"], m["regime"], m["seed"]) == ("digits", "entangled", 0)

    # the step log and the probe log stop before the bad step; the probe log is the metrics' probe
    steps = [int(r["step"]) for r in csv.DictReader(paths["log"].open())]
    assert max(steps, default=0) < bad and (steps or reads["log_every"] > bad)
    probe = list(csv.DictReader(paths["probe_log"].open()))
    assert probe and all(int(r["step"]) < bad for r in probe)
    assert len(probe) == len(m["probe"]) and {r["diverged_at_step"] for r in probe} == {str(bad)}

    # the checkpoint says so, holds no weights, and no resume file is left
    ckpt = load_checkpoint(paths["out"])
    assert ckpt["diverged"] == m["diverged"] and ckpt["model"] == {} and not ckpt["finished"]
    with pytest.raises(CheckpointError, match=rf"diverged at step {bad} .*holds no trained model"):
        load_model(paths["out"])
    assert sorted(p.name for p in paths["out"].parent.iterdir()) == ["log.csv", "m.json", "m.pt", "probe.csv"]


def test_an_update_that_breaks_the_weights_before_a_probe_is_recorded_not_probed(tmp_path):
    """The update of step 4 (a probe step; no log or checkpoint step before the end) leaves an inf
    weight after its loss was measured finite: the probe must not measure the broken model; the
    run is recorded as diverged at step 4, naming the weight."""
    cfg = TrainConfig(model="mlp", model_args={"hidden": [16]}, batch_size=64, max_steps=20, threads=1,
                      checkpoint_every=0, log_every=1000, probe_points=4, probe_size=50)

    result = train(cfg, digits_data(), regime="entangled", seed=0, progress=False, record_divergence=True,
                   callbacks=[poison_update_after(3)])
    d = result.metrics["diverged"]
    assert d["step"] == 4 and "the update of step 4 made the weights `fc1.0.weight` not finite" in d["reason"]
    assert sorted({r["step"] for r in result.metrics["probe"]}) == [0, 1]


def test_a_finished_run_records_no_divergence(tmp_path):
    cfg = TrainConfig(model="mlp", model_args={"hidden": [16]}, batch_size=64, max_steps=6, threads=1, probe_points=0)
    result = train(cfg, digits_data(), regime="baseline", seed=0, progress=False, record_divergence=True)
    assert result.metrics["diverged"] is None and result.metrics["test_accuracy"] is not None


def _cli(*args):
    return subprocess.run([str(BIN / "snnl"), *args], capture_output=True, text=True, env=ENV, timeout=300, check=False)


def test_train_and_evaluate_commands_record_a_diverged_run(tmp_path):
    """`snnl train --on-divergence record` exits 0 with a one-line warning; `snnl evaluate` on its
    checkpoint exits 0 and writes a summary that says diverged, and CSVs with columns, no rows."""
    data = prepare("digits", tmp_path / "digits")
    config = tmp_path / "diverge.yaml"
    config.write_text(yaml.safe_dump({"train": DIVERGING}))
    run = tmp_path / "run"
    train_args = ["train", "--data", str(data), "--regime", "baseline", "--seed", "0", "--config", str(config),
                  "--out", str(run / "m.pt"), "--metrics", str(run / "m.json"), "--log", str(run / "log.csv"), "--quiet"]
    rec = _cli(*train_args, "--on-divergence", "record")
    assert rec.returncode == 0, rec.stderr
    warning = rec.stderr.strip().splitlines()
    assert len(warning) == 1 and re.match(r"snnl train: warning: digits baseline seed 0 diverged at step \d+ ", warning[0])
    step = json.loads((run / "m.json").read_text())["diverged"]["step"]
    assert f"diverged at step {step} " in warning[0]

    out = tmp_path / "eval"
    ev = _cli("evaluate", "--checkpoint", str(run / "m.pt"), "--data", str(data), "--out", str(out), "--quiet")
    assert ev.returncode == 0, ev.stderr
    summary = json.loads((out / "summary.json").read_text())
    assert summary["diverged"]["step"] == step
    assert (summary["checkpoint"]["regime"], summary["checkpoint"]["seed"]) == ("baseline", 0)
    assert pd.read_csv(out / "samples.csv").empty and pd.read_csv(out / "detection.csv").empty
    assert sorted(p.name for p in out.iterdir()) == ["detection.csv", "samples.csv", "summary.json"]

    # the default still stops: exit 2, the error, and no final outputs
    stop = _cli(*[a if a != str(run / "m.pt") else str(tmp_path / "stop" / "m.pt") for a in train_args])
    assert stop.returncode == 2 and "training stopped at step" in stop.stderr


def _diverged(dataset, regime, seed, step=17):
    record = {"step": step, "epoch": 0, "reason": "the SNNL of layer `conv2` is nan"}
    metrics = {**make_metrics(dataset, regime, seed, 0.1), "diverged": record,
               **{f"{s}_accuracy": None for s in ("train", "val", "test")}}
    summary = {"checkpoint": {"regime": regime, "seed": seed, "dataset": dataset}, "diverged": record}
    return metrics, summary


def test_tables_count_a_diverged_run_and_pair_the_seeds_that_finished(tmp_path):
    """Five seeds per regime, entangled seed 1 diverged: the tables equal those of the finished
    runs alone, the paired difference is the textbook interval over seeds 0, 2, 3, 4, and the
    diverged run is named in summary.json, accuracy.md and claims.md."""
    base = [0.90, 0.91, 0.89, 0.905, 0.895]
    ent = [0.902, None, 0.893, 0.911, 0.894]
    for root, keep_diverged in ((tmp_path / "with", True), (tmp_path / "without", False)):
        for seed in range(5):
            write_run(root, "d", "baseline", seed, make_metrics("d", "baseline", seed, base[seed]),
                      make_summary("d", "baseline", seed, acc=base[seed]))
            if ent[seed] is not None:
                write_run(root, "d", "entangled", seed, make_metrics("d", "entangled", seed, ent[seed]),
                          make_summary("d", "entangled", seed, acc=ent[seed]))
            elif keep_diverged:
                write_run(root, "d", "entangled", seed, *_diverged("d", "entangled", seed))
    tables = {}
    for name in ("with", "without"):
        root = tmp_path / name
        inputs = load_inputs(metrics=sorted(root.glob("metrics/*/*/*.json")),
                             evaluations=sorted(root.glob("evaluation/*/*/seed*")))
        tables[name] = (write_tables(inputs, tmp_path / f"tables_{name}"), tmp_path / f"tables_{name}")

    summary, out = tables["with"]
    assert summary["runs"]["diverged"] == [{"dataset": "d", "regime": "entangled", "seed": 1, "step": 17, "epoch": 0,
                                            "reason": "the SNNL of layer `conv2` is nan"}]
    assert summary["runs"]["metrics"] == 9 and tables["without"][0]["runs"]["diverged"] == []
    for name in ("accuracy.csv", "ood.csv", "detection.csv", "claims.csv", "bonus.csv"):
        assert (out / name).read_text() == (tables["without"][1] / name).read_text(), name
    for name in ("accuracy.md", "claims.md"):
        text = (out / name).read_text()
        assert "Diverged runs (1;" in text and "d entangled seed 1 at step 17" in text
        assert "Diverged runs" not in (tables["without"][1] / name).read_text()

    diff = summary["accuracy"]["d"]["difference"]
    m, lo, hi = t_interval([ent[s] - base[s] for s in (0, 2, 3, 4)])
    assert diff["n"] == 4 and diff["mean"] == pytest.approx(m) and (diff["ci_lo"], diff["ci_hi"]) == \
        (pytest.approx(lo), pytest.approx(hi))
    assert summary["accuracy"]["d"]["entangled"]["n"] == 4


def test_probe_logs_of_diverged_runs_are_left_out_of_e4_and_tables_by_name(tmp_path):
    """`snnl tables --dynamics` and `snnl dynamics-figure` read probe logs alone: a log marked
    diverged_at_step is left out (C1's n counts the finished runs) and named."""
    from snnl.training.probe import write_probe_log

    logs = []
    for seed, diverged_at in ((0, None), (1, 5), (2, None)):
        records = [{"step": step, "epoch": step / 10, "layer": layer, "snnl": value + seed / 100, "temperature": 1.0,
                    "at_boundary": False} for step, value in ((0, 2.0), (3, 1.0), (9, 1.5)) if step < (diverged_at or 99)
                   for layer in ("fc1", "logits")]
        path = tmp_path / f"seed{seed}.csv"
        write_probe_log(path, records, {"dataset": "d", "regime": "baseline", "seed": seed}, diverged_at=diverged_at)
        logs.append(path)
    inputs = load_inputs(dynamics=logs)
    assert sorted(inputs.dynamics["seed"].unique()) == [0, 2] and "diverged_at_step" not in inputs.dynamics
    assert list(inputs.diverged) == [("d", "baseline", 1)] and inputs.diverged["d", "baseline", 1]["step"] == 5

    run = _cli("dynamics-figure", "--logs", *map(str, logs), "--figure", str(tmp_path / "e4.png"),
               "--csv", str(tmp_path / "e4.csv"))
    assert run.returncode == 0, run.stderr
    assert "left out, diverged: d baseline seed 1 (step 5)" in run.stdout
    assert sorted(pd.read_csv(tmp_path / "e4.csv")["seed"].unique()) == [0, 2]


def test_a_comparison_whose_runs_all_diverged_says_so(tmp_path):
    """Every entangled run diverged: C3 is "not run", and its note says they diverged (they ran)."""
    for seed in range(3):
        write_run(tmp_path, "d", "baseline", seed, make_metrics("d", "baseline", seed, 0.9 + seed / 100),
                  make_summary("d", "baseline", seed))
        write_run(tmp_path, "d", "entangled", seed, *_diverged("d", "entangled", seed))
    inputs = load_inputs(metrics=sorted(tmp_path.glob("metrics/*/*/*.json")),
                         evaluations=sorted(tmp_path.glob("evaluation/*/*/seed*")))
    write_tables(inputs, tmp_path / "tables")
    claims = pd.read_csv(tmp_path / "tables" / "claims.csv")
    c3 = claims[(claims["claim"] == "C3") & (claims["level"] == "claim")].iloc[0]
    assert c3["verdict"] == "not run" and "diverged, left out: 3 entangled run(s)" in c3["note"]


def test_compare_regimes_with_a_diverged_side_draws_notices(tmp_path):
    """compare-regimes: the baseline's detection rows only, and each figure a notice, not a
    one-sided comparison."""
    from snnl.evaluate.outputs import write_diverged
    from snnl.evaluate.samples import DETECTION_COLUMNS

    base = tmp_path / "baseline"
    base.mkdir()
    (base / "summary.json").write_text(json.dumps(make_summary("d", "baseline", 0)))
    rows = [["ood:noise", "ood", "msp", "", 100, 50, 0.8, 0.7, 0.3]]
    pd.DataFrame(rows, columns=DETECTION_COLUMNS).to_csv(base / "detection.csv", index=False)
    pd.DataFrame([["test", "test", 0.9]], columns=["set", "kind", "msp"]).to_csv(base / "samples.csv", index=False)
    write_diverged(tmp_path / "entangled", _diverged("d", "entangled", 0)[1]["checkpoint"] | {"diverged": {
        "step": 5, "epoch": 0, "reason": "the cross-entropy is nan"}})

    written = compare_regimes({"baseline": base, "entangled": tmp_path / "entangled"}, tmp_path / "cmp")
    assert sorted(p.name for p in written) == sorted(["detection_compare.csv", "confidence_compare.png",
                                                      "tsne_layers_compare.png", "tsne_gradients_compare.png"])
    det = pd.read_csv(tmp_path / "cmp" / "detection_compare.csv")
    assert list(det["regime"]) == ["baseline"] and det["auroc"].tolist() == [0.8]
    for p in written:
        assert p.stat().st_size > 0


def test_bonus_figure_leaves_out_diverged_runs(tmp_path):
    metrics, _ = _diverged("d", "entangled", 1)
    path = tmp_path / "m.json"
    path.write_text(json.dumps(metrics))
    run = _cli("bonus-figure", "--metrics", str(path), "--figure", str(tmp_path / "bonus.png"),
               "--csv", str(tmp_path / "bonus.csv"))
    assert run.returncode == 0, run.stderr
    assert "d entangled seed 1 diverged; left out" in run.stdout and (tmp_path / "bonus.png").stat().st_size > 0
    assert (tmp_path / "bonus.csv").is_file()


@pytest.fixture(scope="module")
def diverging_entangled_run(tiny_reference, tmp_path_factory):
    """The tiny DAG, then again with every entangled run made to diverge (SGD at lr 1e4)."""
    work = copy_run(tiny_reference, tmp_path_factory.mktemp("diverged-dag"))
    cfg = yaml.safe_load((work / "config" / "tiny.yaml").read_text())
    cfg["train"].setdefault("regimes", {})["entangled"] = {"optimizer": "sgd", "lr": 1.0e4}
    (work / "config" / "diverge.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    snakemake(work, "--configfile", "config/diverge.yaml", "--cores", "2")
    return work


def test_the_dag_finishes_when_runs_diverge_and_the_tables_count_them(diverging_entangled_run):
    work = diverging_entangled_run
    summary = json.loads((work / "results" / "tables" / "summary.json").read_text())
    diverged = {(d["regime"], d["seed"]) for d in summary["runs"]["diverged"]}
    metrics = {p: json.loads(p.read_text()) for p in (work / "results" / "metrics").glob("*/*/*.json")}
    expected = {(m["regime"], m["seed"]) for m in metrics.values() if m["diverged"]}
    assert expected and diverged == expected
    assert all(m["regime"] == "entangled" for m in metrics.values() if m["diverged"])
    n = len(metrics) - len(expected)
    assert summary["runs"]["metrics"] == n
    assert "Diverged runs" in (work / "results" / "tables" / "claims.md").read_text()
    assert (work / "results" / "report.html").is_file() or (work / "results" / "tables" / "claims.rst").is_file()
