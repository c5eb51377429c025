"""`snnl evaluate` end to end on a tiny model: a checkpoint written by the training code, the
outputs it writes, the baseline-vs-entangled comparison, and refusing pickled objects."""

from __future__ import annotations

import json
import pathlib

import pandas as pd
import pytest
import torch

from snnl.checkpoint import load_model
from snnl.cli import main
from snnl.errors import CheckpointError

CONFIG = """
train: {this: belongs to somebody else}
evaluate:
  attack_size: 80
  pgd_steps: 3
  epsilons: {gray: [0.1, 0.3]}
  reference_size: 200
  k: 10
  outlier_size: 120
  tsne_size: 60
  tsne_pca: 10
  tsne_perplexity: 10
  gradient_tsne_size: 32
  batch_size: 64
"""


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    from snnl.data import load_prepared, prepare
    from snnl.training import TrainConfig, TrainData, train

    root = tmp_path_factory.mktemp("evaluate")
    prepare("digits", root / "digits")
    prepare("noise", root / "noise", like="digits")
    data = TrainData.from_prepared(load_prepared(root / "digits"))
    cfg = TrainConfig(model="mlp", model_args={"hidden": [32, 32]}, epochs=4, batch_size=64, lr=3e-3, device="cpu",
                      probe_points=0, checkpoint_every=0)
    for regime in ("baseline", "entangled"):
        train(cfg, data, regime=regime, seed=0, out=root / f"{regime}.pt", log=root / f"{regime}.csv",
              metrics=root / f"{regime}.json", progress=False)
    (root / "config.yaml").write_text(CONFIG)
    for regime in ("baseline", "entangled"):
        rc = main(["evaluate", "--checkpoint", str(root / f"{regime}.pt"), "--data", str(root / "digits"),
                   "--outliers", f"noise={root / 'noise'}", "--config", str(root / "config.yaml"),
                   "--device", "cpu", "--out", str(root / f"eval_{regime}"), "--quiet"])
        assert rc == 0
    return root


def test_the_training_checkpoint_loads_weights_only(workspace):
    ckpt = torch.load(workspace / "baseline.pt", weights_only=True)
    assert ckpt["regime"] == "baseline"
    model, _ = load_model(workspace / "baseline.pt")
    assert model.hidden_layers == ["fc1", "fc2"]


def test_outputs_are_complete(workspace):
    out = workspace / "eval_baseline"
    summary = json.loads((out / "summary.json").read_text())
    for name in summary["files"]:
        assert (out / name).is_file(), name
    for name in ("samples.csv", "detection.csv", "attacks.csv", "tsne_layers.csv", "tsne_gradients.csv",
                 "tsne_layers.png", "tsne_gradients.png", "confidence.png", "tsne_gradients_images.npy"):
        assert name in summary["files"]
    assert not [p for p in out.iterdir() if p.name.startswith(".")]  # no temporary files left
    assert summary["checkpoint"]["regime"] == "baseline"
    assert summary["layers"] == ["fc1", "fc2"]
    t = summary["test"]
    assert t["n"] == 360 and 0.5 < t["accuracy"] <= 1 and 0 <= t["ece"] <= 1
    assert set(summary["outliers"]) == {"noise"} and summary["outliers"]["noise"]["n"] == 120
    assert summary["combine"]["fit_on"] == "val" and summary["combine"]["n"] == 180
    assert summary["epsilons"] == [0.1, 0.3]
    assert set(summary["reference"]["temperatures"]) == {"fc1", "fc2"}
    assert summary["embeddings"]["gradients"]["n"] == 32
    det = summary["detection"]
    assert set(det) == {"ood:noise", "adv:fgsm:0.1", "adv:fgsm:0.3", "adv:pgd:0.1", "adv:pgd:0.3"}
    assert set(det["ood:noise"]) == {"msp", "snnl_fc1", "snnl_fc2", "snnl_combined", "knn_fc1", "knn_fc2", "knn_combined"}
    assert det["ood:noise"]["snnl_combined"]["auroc"] > 0.7


def test_samples_and_tables_agree_with_the_summary(workspace):
    from snnl.evaluate.metrics import detection_metrics

    out = workspace / "eval_baseline"
    summary = json.loads((out / "summary.json").read_text())
    s = pd.read_csv(out / "samples.csv")
    assert set(s["kind"]) == {"test", "val", "outlier", "adversarial"}
    test = s[s["set"] == "test"]
    assert len(test) == 360 and test["correct"].mean() == pytest.approx(summary["test"]["accuracy"])
    noise = s[s["set"] == "noise"]
    assert (noise["label"] == -1).all() and len(noise) == 120
    # the detection table recomputes from the per-sample scores
    m = detection_metrics(test["snnl_fc2"], noise["snnl_fc2"])
    assert m["auroc"] == pytest.approx(summary["detection"]["ood:noise"]["snnl_fc2"]["auroc"])
    m = detection_metrics(1 - test["msp"], 1 - noise["msp"])
    assert m["auroc"] == pytest.approx(summary["outliers"]["noise"]["msp_auroc"])
    # adversarial rows: success = clean prediction right and attacked prediction wrong
    adv = s[s["set"] == "pgd@0.3"]
    assert len(adv) == 80
    ok = (adv["clean_pred"] == adv["label"]) & (adv["pred"] != adv["label"])
    assert (adv["success"].astype(bool) == ok).all()
    attacks = pd.read_csv(out / "attacks.csv")
    row = attacks[(attacks["attack"] == "pgd") & (attacks["epsilon"] == 0.3)].iloc[0]
    assert row["accuracy"] == pytest.approx((adv["pred"] == adv["label"]).mean())
    assert row["accuracy"] <= attacks[(attacks["attack"] == "fgsm") & (attacks["epsilon"] == 0.3)].iloc[0]["accuracy"]
    d = pd.read_csv(out / "detection.csv")
    assert d[(d["comparison"] == "adv:pgd:0.3") & (d["score"] == "msp")].iloc[0]["n_pos"] == ok.sum()
    tl = pd.read_csv(out / "tsne_layers.csv")
    assert set(tl["layer"]) == {"fc1", "fc2"} and len(tl) == 120


def test_same_seed_same_numbers(workspace, tmp_path):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace("tsne_size: 60", "tsne_size: 0").replace("gradient_tsne_size: 32", "gradient_tsne_size: 0"))
    args = ["evaluate", "--checkpoint", str(workspace / "baseline.pt"), "--data", str(workspace / "digits"),
            "--outliers", f"noise={workspace / 'noise'}", "--config", str(cfg), "--device", "cpu", "--quiet"]
    assert main(args + ["--out", str(tmp_path / "a")]) == 0
    a = pd.read_csv(tmp_path / "a" / "samples.csv")
    b = pd.read_csv(workspace / "eval_baseline" / "samples.csv")
    pd.testing.assert_frame_equal(a, b)
    assert not (tmp_path / "a" / "tsne_layers.csv").exists()


def test_compare_regimes(workspace):
    out = workspace / "compare"
    pair = ["--baseline", str(workspace / "eval_baseline"), "--entangled", str(workspace / "eval_entangled")]
    rc = main(["compare-regimes", *pair, "--out", str(out), "--quiet"])
    assert rc == 0
    for name in ("tsne_layers_compare.png", "tsne_gradients_compare.png", "confidence_compare.png",
                 "detection_compare.csv"):
        assert (out / name).is_file()
    table = pd.read_csv(out / "detection_compare.csv")
    assert set(table["regime"]) == {"baseline", "entangled"}
    # each output straight to its own path (the pipeline's rule): the same bytes as under --out
    own = workspace / "own"
    rc = main(["compare-regimes", *pair, "--tsne-layers", str(own / "a.png"), "--confidence", str(own / "b.png"),
               "--detection", str(own / "c.csv"), "--quiet"])
    assert rc == 0 and sorted(p.name for p in own.iterdir()) == ["a.png", "b.png", "c.csv"]
    assert (own / "a.png").read_bytes() == (out / "tsne_layers_compare.png").read_bytes()
    assert (own / "c.csv").read_bytes() == (out / "detection_compare.csv").read_bytes()


def test_compare_regimes_refuses_a_figure_it_cannot_draw(workspace, tmp_path, capsys):
    cfg = tmp_path / "c.yaml"
    cfg.write_text(CONFIG.replace("tsne_size: 60", "tsne_size: 0"))
    assert main(["evaluate", "--checkpoint", str(workspace / "entangled.pt"), "--data", str(workspace / "digits"),
                 "--config", str(cfg), "--device", "cpu", "--out", str(tmp_path / "ent"), "--quiet"]) == 0
    pair = ["--baseline", str(workspace / "eval_baseline"), "--entangled", str(tmp_path / "ent")]
    assert main(["compare-regimes", *pair, "--tsne-layers", str(tmp_path / "t.png"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "tsne_layers" in err and "evaluate.tsne_size < 4" in err and not (tmp_path / "t.png").exists()
    assert main(["compare-regimes", *pair, "--quiet"]) == 2
    assert "writes nothing" in capsys.readouterr().err
    with pytest.raises(SystemExit):  # the old `snnl evaluate --compare` form is gone (an unknown flag)
        main(["evaluate", "--compare", str(workspace / "eval_baseline"), "--out", str(tmp_path / "x")])


class _Payload:
    """Unpickling this would create a file: a checkpoint that runs code when loaded."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def test_refuses_a_checkpoint_with_pickled_objects(workspace, tmp_path, capsys):
    ckpt = torch.load(workspace / "baseline.pt", weights_only=True)
    marker = tmp_path / "pwned"
    ckpt["config"] = _Payload(str(marker))
    evil = tmp_path / "evil.pt"
    torch.save(ckpt, evil)
    from snnl.commands.evaluate import load_checkpoint_model

    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint_model(evil)
    rc = main(["evaluate", "--checkpoint", str(evil), "--data", str(workspace / "digits"), "--device", "cpu",
               "--out", str(tmp_path / "out"), "--quiet"])
    assert rc == 2
    assert "pickled Python objects" in capsys.readouterr().err
    assert not marker.exists()
    assert not (tmp_path / "out" / "summary.json").exists()


def test_user_errors(workspace, tmp_path, capsys):
    base = ["evaluate", "--device", "cpu", "--out", str(tmp_path / "o"), "--quiet"]
    assert main(base + ["--checkpoint", str(tmp_path / "missing.pt"), "--data", str(workspace / "digits")]) == 2
    assert "does not exist" in capsys.readouterr().err
    assert main(base + ["--data", str(workspace / "digits")]) == 2
    assert "--checkpoint" in capsys.readouterr().err
    # an outlier set of another shape: say how to prepare it
    other = tmp_path / "noise28"
    from snnl.data import prepare

    prepare("noise", other)
    assert main(base + ["--checkpoint", str(workspace / "baseline.pt"), "--data", str(workspace / "digits"),
                        "--outliers", f"n28={other}"]) == 2
    assert "--like" in capsys.readouterr().err
    bad = tmp_path / "bad.yaml"
    bad.write_text("evaluate: {nonsense: 1}\n")
    assert main(base + ["--checkpoint", str(workspace / "baseline.pt"), "--data", str(workspace / "digits"),
                        "--config", str(bad)]) == 2
    assert "evaluate.nonsense" in capsys.readouterr().err


def test_without_a_validation_split_the_zscores_fit_on_training_points_outside_the_reference(tmp_path):
    from types import SimpleNamespace

    from helpers.digits import tiny_digits, tiny_model

    from snnl.evaluate import EvaluateConfig, evaluate

    (xtr, ytr), (xt, yt) = tiny_digits()
    data = SimpleNamespace(name="digits-noval", classes=[str(i) for i in range(10)], shape=(1, 8, 8),
                           train=(xtr, ytr), test=(xt[:100], yt[:100]))
    cfg = EvaluateConfig(attack_size=20, pgd_steps=2, reference_size=300, k=5, tsne_size=0, gradient_tsne_size=0,
                         attacks=["fgsm"], epsilons={"gray": [0.2], "rgb": [0.01]})
    (tmp_path / "tsne_layers.csv").write_text("stale\n")
    summary = evaluate(tiny_model(), data, {}, cfg, tmp_path, progress=False)
    assert summary["combine"]["fit_on"] == "train_holdout" and summary["combine"]["n"] == 1000
    samples = pd.read_csv(tmp_path / "samples.csv")
    holdout = samples.loc[samples["set"] == "train_holdout", "index"].to_numpy()
    from snnl.evaluate import stratified_subset

    assert not set(holdout) & set(stratified_subset(ytr, 300, 0, 1))  # disjoint from the reference set
    assert not (tmp_path / "tsne_layers.csv").exists()  # stale output of another run removed
    assert list(summary["detection"]) == ["adv:fgsm:0.2"]
