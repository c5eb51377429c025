"""`snnl tables`: statistics against scipy by hand, reading the inputs, the tables and their
Markdown, the command line, and one end-to-end run on the files `snnl train` and
`snnl evaluate` really write."""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers.tables import make_metrics, make_summary, t_interval, write_run
from scipy import stats as st

from snnl.cli import main
from snnl.errors import DataError
from snnl.tables import OUTPUTS, fmt, load_inputs, write_tables
from snnl.tables.inputs import Evaluation, Inputs, identify, knn_agreement, load_gan
from snnl.tables.stats import mean_ci, paired
from snnl.tables.markdown import accuracy_markdown
from snnl.tables.tables import (
    accuracy_table,
    detection_table,
    ood_table,
)

# ---------------------------------------------------------------------------------------
# statistics


def test_mean_ci_is_the_student_t_interval():
    vals = [0.91, 0.935, 0.92, 0.94]
    est = mean_ci(vals)
    m, lo, hi = t_interval(vals)
    assert est.n == 4 and est.mean == pytest.approx(m) and est.lo == pytest.approx(lo) and est.hi == pytest.approx(hi)
    # scipy's own interval agrees as well
    lo2, hi2 = st.t.interval(0.95, 3, loc=np.mean(vals), scale=st.sem(vals))
    assert (est.lo, est.hi) == pytest.approx((lo2, hi2))
    est90 = mean_ci(vals, level=0.9)
    assert est90.hi - est90.lo < est.hi - est.lo


def test_mean_ci_edge_cases():
    one = mean_ci([0.5])
    assert one.n == 1 and one.mean == 0.5 and math.isnan(one.lo) and not one.has_interval
    assert mean_ci([]).n == 0 and math.isnan(mean_ci([]).mean)
    same = mean_ci([0.2, 0.2, 0.2])
    assert (same.lo, same.hi) == pytest.approx((0.2, 0.2))
    assert mean_ci([0.1, None, float("nan"), 0.3]).n == 2


def test_paired_difference_pairs_by_seed():
    ent = {0: 0.93, 1: 0.95, 2: 0.91, 3: 0.99}
    base = {0: 0.92, 1: 0.93, 2: 0.915, 5: 0.5}
    est, seeds = paired(ent, base)
    assert seeds == [0, 1, 2]
    m, lo, hi = t_interval([0.01, 0.02, -0.005])
    assert (est.mean, est.lo, est.hi) == pytest.approx((m, lo, hi))
    # an unpaired analysis would give another interval: the pairing matters
    assert mean_ci([0.93, 0.95, 0.91]).mean - mean_ci([0.92, 0.93, 0.915]).mean == pytest.approx(m)
    est, seeds = paired({0: 1.0, 1: None}, {0: 0.5, 1: 0.4})
    assert seeds == [0] and est.n == 1


def test_number_formatting():
    assert fmt.num(0.97123) == "0.9712"
    assert fmt.num(0.965) == "0.9650"
    assert fmt.num(0.99996) == "1.000"
    assert fmt.num(0.0042, 3, sign=True) == "+0.00420"
    assert fmt.num(-0.0031, 3, sign=True) == "-0.00310"
    assert fmt.num(12.345, 3) == "12.3"
    assert fmt.num(None) == fmt.NA and fmt.num(float("nan")) == fmt.NA
    assert fmt.cell(mean_ci([0.9, 0.92, 0.94])).startswith("0.9200 [")
    assert fmt.cell(mean_ci([0.9])) == "0.9000 (n=1)"


def test_knn_agreement():
    xy = np.array([[0, 0], [0, 1], [10, 10], [10, 11]], dtype=float)
    assert knn_agreement(xy, np.array([0, 0, 1, 1]), k=1) == 1.0
    assert knn_agreement(xy, np.array([0, 1, 0, 1]), k=1) == 0.0


# ---------------------------------------------------------------------------------------
# inputs


def test_identify_reads_the_run_from_the_file_never_from_its_path(tmp_path):
    p = tmp_path / "results" / "metrics" / "mnist5k" / "entangled" / "seed3.json"
    assert identify(p, {"dataset": "cifar10", "regime": "baseline", "seed": 1}, "metrics file") == ("cifar10", "baseline", 1)
    assert identify(tmp_path / "m.json", {"dataset": "d", "regime": "baseline", "seed": 2.0}, "x") == ("d", "baseline", 2)
    with pytest.raises(DataError, match="cannot tell which run metrics file .* does not record its dataset, seed"):
        identify(p, {"regime": "entangled", "seed": "three"}, "metrics file")


def test_runs_are_what_the_files_record_wherever_they_lie(tmp_path):
    """A metrics JSON and an evaluation folder filed under another run's path: the tables use
    what the files record (the path used to win, with a clash an error)."""
    for d in ("a", "b"):
        (tmp_path / d).mkdir()
        (tmp_path / d / "m.json").write_text(json.dumps(make_metrics("mnist5k", "entangled", 4, 0.8)))
    (tmp_path / "a" / "m.json").write_text(json.dumps(make_metrics("mnist5k", "baseline", 4, 0.9)))
    ev = tmp_path / "evaluation" / "mnist5k" / "baseline" / "seed0"
    ev.mkdir(parents=True)
    (ev / "summary.json").write_text(json.dumps(make_summary("mnist5k", "entangled", 7)))
    inp = load_inputs(metrics=[tmp_path / "a" / "m.json", tmp_path / "b" / "m.json"], evaluations=[ev])
    assert list(inp.metrics) == [("mnist5k", "baseline", 4), ("mnist5k", "entangled", 4)]
    assert list(inp.evaluations) == [("mnist5k", "entangled", 7)]
    bare = tmp_path / "metrics" / "mnist5k" / "baseline" / "seed0.json"
    bare.parent.mkdir(parents=True)
    bare.write_text(json.dumps({"test_accuracy": 0.9}))
    with pytest.raises(DataError, match="does not record its dataset, regime, seed"):
        load_inputs(metrics=[bare])


def test_loading_rejects_duplicates_and_unfinished_evaluations(tmp_path):
    write_run(tmp_path, "d", "baseline", 0, make_metrics("d", "baseline", 0, 0.9), make_summary("d", "baseline", 0))
    m = tmp_path / "metrics" / "d" / "baseline" / "seed0.json"
    copy = tmp_path / "other" / "d" / "baseline" / "seed0.json"
    copy.parent.mkdir(parents=True)
    copy.write_text(m.read_text())
    with pytest.raises(DataError, match="two metrics files for run d/baseline/seed0"):
        load_inputs(metrics=[m, copy])
    empty = tmp_path / "evaluation" / "d" / "entangled" / "seed0"
    empty.mkdir(parents=True)
    with pytest.raises(DataError, match="has not finished"):
        load_inputs(evaluations=[empty])
    # a folder and its summary.json are the same input
    inp = load_inputs(evaluations=[tmp_path / "evaluation" / "d" / "baseline" / "seed0" / "summary.json"])
    assert list(inp.evaluations) == [("d", "baseline", 0)]


def test_gan_runs_are_what_the_curves_record_never_their_path(tmp_path):
    def curve(dataset, seed):
        return pd.DataFrame({"dataset": dataset, "seed": seed, "step": [0, 0, 100, 100], "layer": ["pixels", "fc1"] * 2,
                             "layer_index": [0, 1] * 2, "snnl": [0.1, 0.05, 0.5, 0.06]})
    a = tmp_path / "gan" / "mnist5k" / "seed0.csv"  # filed under another run's path
    a.parent.mkdir(parents=True)
    curve("cifar10", 3).to_csv(a, index=False)
    b = tmp_path / "b.csv"
    curve("cifar10", 4).to_csv(b, index=False)
    g = load_gan([a, b])
    assert list(dict.fromkeys(g["run"])) == ["cifar10/seed3", "cifar10/seed4"] and set(g["dataset"]) == {"cifar10"}
    with pytest.raises(DataError, match="two GAN curves for run cifar10/seed3"):
        load_gan([a, a])
    old = tmp_path / "gan_mnist5k.csv"  # the format before 2026-12-01: no dataset, seed columns
    curve("x", 0).drop(columns=["dataset", "seed"]).to_csv(old, index=False)
    with pytest.raises(DataError, match=r"cannot tell which GAN run .*gan_mnist5k.csv.*\(columns dataset, seed"):
        load_gan([old])
    with pytest.raises(DataError, match="lacks column"):
        bad = tmp_path / "bad.csv"
        pd.DataFrame({"step": [0]}).to_csv(bad, index=False)
        load_gan([bad])


def test_synthetic_compare_purities_are_reported_beside_c4(tmp_path):
    from snnl.tables.claims import claim_c4

    rows = []
    for objective, direction, fine in [("initial", "initial", 0.95), ("triplet", "maximise", 0.9),
                                       ("snnl", "maximise", 0.3), ("snnl", "minimise", 1.0)]:
        rows += [{"objective": objective, "direction": direction, "snnl": 1.0, "kmeans_purity": 0.5,
                  "fine_kmeans_purity": fine, "point": i, "label": i % 2, "x": 0.0, "y": 0.0} for i in range(4)]
    compare = tmp_path / "synthetic_compare.csv"
    pd.DataFrame(rows).to_csv(compare, index=False)
    minimise = tmp_path / "synthetic_minimise.csv"  # the other mode: skipped
    pd.DataFrame({"step": [0], "snnl": [1.0], "point": [0], "label": [0], "x": [0.0], "y": [0.0]}).to_csv(minimise)
    inp = load_inputs(synthetic=[compare, minimise])
    assert len(inp.synthetic) == 4
    inp.metrics = small_inputs().metrics
    extra = claim_c4(inp).supplementary
    assert extra == [("E2, 2-D points (not judged): fine k-means purity (4 clusters per class; 1 = small clusters of "
                      "one class) initial 0.950, after maximising the SNNL 0.300, after maximising the triplet loss "
                      "0.900")]


# ---------------------------------------------------------------------------------------
# tables

ACC = {"baseline": [0.90, 0.92, 0.91], "entangled": [0.915, 0.925, 0.93]}


def small_inputs() -> Inputs:
    inp = Inputs()
    for regime, accs in ACC.items():
        for seed, acc in enumerate(accs):
            key = ("mnist5k", regime, seed)
            inp.metrics[key] = make_metrics(*key, acc=acc)
            conf = {"baseline": 0.7, "entangled": 0.6}[regime] + 0.01 * seed
            auroc = {"ood:noise": {"snnl_conv1": 0.7, "snnl_combined": 0.9 + 0.01 * seed, "msp": 0.8},
                     "adv:pgd:0.3": {"snnl_combined": 0.6 if seed else None, "msp": 0.55 if seed else None}}
            inp.evaluations[key] = Evaluation(Path("."), make_summary(*key, acc=acc, ece=0.03 + 0.01 * seed,
                                                                      outliers={"noise": conf}, auroc=auroc))
    return inp


def test_accuracy_table_rows_and_numbers():
    df = accuracy_table(small_inputs())
    assert list(df["regime"]) == ["baseline", "entangled", "entangled - baseline"]
    for regime, accs in ACC.items():
        row = df[df["regime"] == regime].iloc[0]
        m, lo, hi = t_interval(accs)
        assert (row["n"], row["mean"], row["ci_lo"], row["ci_hi"]) == pytest.approx((3, m, lo, hi))
        assert row["seeds"] == "0 1 2"
    diff = df[df["regime"] == "entangled - baseline"].iloc[0]
    m, lo, hi = t_interval(np.subtract(ACC["entangled"], ACC["baseline"]))
    assert (diff["mean"], diff["ci_lo"], diff["ci_hi"]) == pytest.approx((m, lo, hi))
    md = accuracy_markdown(df)
    table = [line for line in md.splitlines() if line.startswith("| mnist5k")]
    assert len(table) == 2  # the per-regime row and the one comparison's row
    cells = [c.strip() for c in table[0].strip("|").split("|")]
    assert cells[1] == fmt.cell(mean_ci(ACC["baseline"])) and cells[3] == "3 / 3"
    cells = [c.strip() for c in table[1].strip("|").split("|")]
    assert cells[1] == "entangled - baseline" and cells[4] == "3"
    assert cells[2] == f"{fmt.num(m, 3, True)} [{fmt.num(lo, 3, True)}, {fmt.num(hi, 3, True)}]"
    assert cells[2] == "+0.0133 [-0.00564, +0.0323]"


def test_ood_and_detection_tables():
    inp = small_inputs()
    ood = ood_table(inp)
    assert set(zip(ood["set"], ood["metric"])) == {("test", "mean_confidence"), ("test", "ece"),
                                                   ("noise", "mean_confidence"), ("noise", "msp_auroc")}
    r = ood[(ood["set"] == "noise") & (ood["metric"] == "mean_confidence") & (ood["regime"] == "entangled - baseline")]
    assert r.iloc[0]["mean"] == pytest.approx(-0.1) and r.iloc[0]["n"] == 3
    ece = ood[(ood["set"] == "test") & (ood["metric"] == "ece") & (ood["regime"] == "baseline")].iloc[0]
    assert (ece["mean"], ece["ci_lo"]) == pytest.approx(t_interval([0.03, 0.04, 0.05])[:2])
    det = detection_table(inp)
    assert list(dict.fromkeys(det["target"])) == ["ood:noise", "adv:pgd:0.3"]
    assert list(dict.fromkeys(det[det["target"] == "ood:noise"]["score"])) == ["snnl_conv1", "snnl_combined", "msp"]
    assert set(det["metric"]) == {"auroc", "aupr", "fpr95"}
    adv = det[(det["target"] == "adv:pgd:0.3") & (det["score"] == "snnl_combined") & (det["metric"] == "auroc")]
    # seed 0 has no successful adversarial example: two seeds remain
    assert set(adv["n"]) == {2} and set(adv["seeds"]) == {"1 2"}
    fpr = det[(det["target"] == "ood:noise") & (det["score"] == "snnl_combined") & (det["metric"] == "fpr95")
              & (det["regime"] == "baseline")].iloc[0]
    assert fpr["mean"] == pytest.approx(1 - 0.91)


def test_cli_writes_every_output(tmp_path):
    root = tmp_path / "results"
    inp = small_inputs()
    for key, m in inp.metrics.items():
        write_run(root, *key, m, inp.evaluations[key].summary)
    gan = tmp_path / "results" / "experiments" / "gan" / "mnist5k" / "seed0.csv"
    gan.parent.mkdir(parents=True)
    pd.DataFrame({"dataset": "mnist5k", "seed": 0, "step": np.repeat(np.arange(8) * 100, 2), "layer": ["pixels", "fc1"] * 8,
                  "layer_index": [0, 1] * 8, "snnl": np.ravel([[0.1 + 0.07 * i, 0.02] for i in range(8)])}).to_csv(
        gan, index=False)
    out = tmp_path / "tables"
    metrics = sorted(str(p) for p in (root / "metrics").rglob("*.json"))
    evals = sorted(str(p) for p in (root / "evaluation").rglob("summary.json"))
    config = tmp_path / "config.yaml"
    config.write_text("pipeline: {seeds: [0, 1, 2]}\n")
    rc = main(["tables", "--metrics", *metrics, "--evaluations", *evals, "--gan", str(gan), "--config", str(config),
               "--out", str(out), "--quiet"])
    assert rc == 0
    assert sorted(p.name for p in out.iterdir()) == sorted(OUTPUTS)
    summary = json.loads((out / "summary.json").read_text())
    assert summary["source"]["config_sha256"] == hashlib.sha256(config.read_bytes()).hexdigest()
    assert pd.read_csv(out / "confidence.csv").empty  # these evaluation folders have no samples.csv
    acc = summary["accuracy"]["mnist5k"]
    assert acc["difference"]["n"] == 3 and acc["baseline"]["mean"] == pytest.approx(np.mean(ACC["baseline"]))
    assert summary["claims"]["C2"]["verdict"] == "reproduced"  # pixel SNNL rises by 0.42
    assert summary["claims"]["C5"]["verdict"] == "reproduced"  # entangled 0.1 less confident on every seed
    assert summary["claims"]["C1"]["verdict"] == "not run"  # no probe records in these metrics
    claims_md = (out / "claims.md").read_text()
    for c in ("C1", "C2", "C3", "C4", "C5", "C6", "C7"):
        assert f"| {c} |" in claims_md and f"## {c}:" in claims_md
    claims = pd.read_csv(out / "claims.csv")
    assert list(claims[claims["level"] == "claim"]["claim"]) == ["C1", "C2", "C3", "C4", "C5", "C6", "C7"]
    det_md = (out / "detection.md").read_text()
    assert "### outliers: noise (`ood:noise`)" in det_md and "### PGD eps=0.3 (`adv:pgd:0.3`)" in det_md
    assert "| SNNL combined |" in det_md and "| max-softmax |" in det_md
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    # no inputs at all is a usage error
    assert main(["tables", "--out", str(out)]) == 2


def test_every_markdown_table_is_well_formed(tmp_path):
    inp = small_inputs()
    write_tables(inp, tmp_path)
    for name in ("accuracy.md", "ood.md", "detection.md", "claims.md"):
        lines = (tmp_path / name).read_text().splitlines()
        blocks, current = [], []
        for line in lines + [""]:
            if line.startswith("|"):
                current.append(line)
            elif current:
                blocks.append(current)
                current = []
        assert blocks, name
        for block in blocks:
            widths = {len(line.replace("\\|", "").split("|")) for line in block}
            assert len(widths) == 1, (name, block)
            assert set(block[1].replace("|", "").replace(":", "").replace("-", "")) == set()


# ---------------------------------------------------------------------------------------
# end to end on the files the real commands write

EVAL_CONFIG = """
evaluate:
  attack_size: 60
  attacks: [fgsm]
  pgd_steps: 2
  epsilons: {gray: [0.3]}
  reference_size: 150
  k: 10
  outlier_size: 80
  tsne_size: 0
  tsne_perplexity: 5
  gradient_tsne_size: 24
  batch_size: 128
"""


@pytest.mark.slow
def test_end_to_end_on_real_train_and_evaluate_outputs(tmp_path):
    from snnl.data import load_prepared, prepare
    from snnl.training import TrainConfig, TrainData, train

    prepare("digits", tmp_path / "digits")
    prepare("noise", tmp_path / "noise", like="digits")
    data = TrainData.from_prepared(load_prepared(tmp_path / "digits"))
    cfg = TrainConfig(model="mlp", model_args={"hidden": [24, 16]}, epochs=2, batch_size=64, lr=3e-3, device="cpu",
                      probe_points=4, probe_size=120, checkpoint_every=0)
    (tmp_path / "config.yaml").write_text(EVAL_CONFIG)
    res = tmp_path / "results"
    metrics, evals, probes = [], [], []
    for regime in ("baseline", "entangled"):
        for seed in (0, 1):
            tag = f"digits/{regime}/seed{seed}"
            metrics.append(res / "metrics" / f"{tag}.json")
            probes.append(res / "dynamics" / f"{tag}.csv")
            train(cfg, data, regime=regime, seed=seed, out=res / "checkpoints" / f"{tag}.pt",
                  log=res / "logs" / f"{tag}.csv", metrics=metrics[-1], probe_log=probes[-1], progress=False)
            evals.append(res / "evaluation" / tag)
            assert main(["evaluate", "--checkpoint", str(res / "checkpoints" / f"{tag}.pt"),
                         "--data", str(tmp_path / "digits"), "--outliers", f"noise={tmp_path / 'noise'}",
                         "--config", str(tmp_path / "config.yaml"), "--device", "cpu", "--out", str(evals[-1]),
                         "--quiet"]) == 0
    out = res / "tables"
    assert main(["tables", "--metrics", *map(str, metrics), "--evaluations", *map(str, evals),
                 "--dynamics", *map(str, probes), "--out", str(out), "--quiet"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    verdicts = {c: v["verdict"] for c, v in summary["claims"].items()}
    assert verdicts["C2"] == "not run"
    assert all(verdicts[c] != "not run" for c in ("C1", "C3", "C4", "C5", "C6", "C7")), verdicts
    # the numbers are the runs' own
    accs = {r: [json.loads(p.read_text())["test_accuracy"] for p in metrics if f"/{r}/" in str(p)]
            for r in ("baseline", "entangled")}
    acc = pd.read_csv(out / "accuracy.csv")
    m, lo, hi = t_interval(np.subtract(accs["entangled"], accs["baseline"]))
    d = acc[acc["regime"] == "entangled - baseline"].iloc[0]
    assert (d["mean"], d["ci_lo"], d["ci_hi"]) == pytest.approx((m, lo, hi))
    det = pd.read_csv(out / "detection.csv")
    assert set(det["target"]) == {"ood:noise", "adv:fgsm:0.3"}
    assert {"snnl_fc1", "snnl_fc2", "snnl_combined", "knn_combined", "msp"} <= set(det["score"])
    s0 = json.loads((evals[0] / "summary.json").read_text())
    conf = pd.read_csv(out / "confidence.csv")
    assert set(conf["set"]) == {"test", "noise"} and set(conf["n"]) == {2}
    sums = conf.groupby(["regime", "set"])["fraction"].sum()
    assert np.allclose(sums, 1.0) and len(sums) == 4
    samples = pd.read_csv(evals[0] / "samples.csv")
    noise = samples[samples["set"] == "noise"]["msp"]
    hist0 = np.histogram(noise, bins=np.linspace(0, 1, 21))[0] / len(noise)
    samples1 = pd.read_csv(evals[1] / "samples.csv")
    noise1 = samples1[samples1["set"] == "noise"]["msp"]
    hist1 = np.histogram(noise1, bins=np.linspace(0, 1, 21))[0] / len(noise1)
    got = conf[(conf["regime"] == "baseline") & (conf["set"] == "noise")]["fraction"].to_numpy()
    assert np.allclose(got, (hist0 + hist1) / 2)
    ood = pd.read_csv(out / "ood.csv")
    ent_conf = [json.loads((e / "summary.json").read_text())["outliers"]["noise"]["mean_confidence"] for e in evals[2:]]
    row = ood[(ood["set"] == "noise") & (ood["metric"] == "mean_confidence") & (ood["regime"] == "entangled")].iloc[0]
    assert row["mean"] == pytest.approx(np.mean(ent_conf))
    assert s0["embeddings"]["gradients"]["snnl_sign_gradients"] is not None
    claims = pd.read_csv(out / "claims.csv")
    c1_layers = set(claims[(claims["claim"] == "C1") & (claims["level"] == "cell")]["scope"])
    assert c1_layers == {"fc1", "fc2", "logits"}
    c4_layers = set(claims[(claims["claim"] == "C4") & (claims["level"] == "cell")]["scope"])
    assert c4_layers == {"fc1", "fc2"}
