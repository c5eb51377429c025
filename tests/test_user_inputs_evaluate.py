"""Inputs that real users hit, through the whole evaluation (issue 14): images outside [0, 1]
at every entry point that takes images, malformed max-softmax values in the tables, and a
model whose input gradient vanishes (and a dead layer) through `snnl evaluate`, the
baseline-vs-entangled figures and `snnl tables`."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers.digits import tiny_digits, tiny_model

# -- images: one to_unit, and it refuses normalised pixels everywhere ----------------------------------


def _normalised_digits() -> tuple[torch.Tensor, torch.Tensor]:
    _, (xt, yt) = tiny_digits()
    return (xt[:40].float() / 255.0 - 0.1307) / 0.3081, yt[:40]


def test_every_image_entry_point_refuses_normalised_pixels():
    from snnl.analysis.features import layer_features
    from snnl.evaluate.detection import build_reference, score_images
    from snnl.evaluate.embeddings import layer_embeddings, sign_gradients
    from snnl.experiments.temperature_curve import representations
    from snnl.layers import layer_outputs
    from snnl.training.probe import measure as probe_measure

    model = tiny_model()
    x, y = _normalised_digits()
    calls = {
        "layers.layer_outputs": lambda: layer_outputs(model, x, ["fc1"]),
        "build_reference": lambda: build_reference(model, x, y, ["fc1"]),
        "layer_embeddings": lambda: layer_embeddings(model, x, ["fc1"]),
        "sign_gradients": lambda: sign_gradients(model, x, y),
        "temperature_curve.representations": lambda: representations(model, x, ["fc1"]),
        "analysis.layer_features": lambda: layer_features(model, x, ["fc1"]),
        "training.probe.measure": lambda: probe_measure(model, x, y, ["fc1"]),
    }
    for name, call in calls.items():
        with pytest.raises(ValueError, match=r"outside \[0, 1\].*normalis"):
            call()
    _, (xt, _) = tiny_digits()
    ref = build_reference(model, xt[:200], tiny_digits()[1][1][:200], ["fc1"])
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        score_images(model, x, ref)
    nan = xt[:8].float() / 255.0
    nan[2, 0, 3, 3] = float("nan")
    with pytest.raises(ValueError, match="NaN or inf"):
        layer_outputs(model, nan, ["fc1"])


def test_uint8_and_unit_floats_give_the_same_pixels_everywhere():
    from snnl.checks import to_unit
    from snnl.evaluate import detection
    from snnl import layers
    from snnl.training import batches

    assert detection.to_unit is to_unit and layers.to_unit is to_unit and batches.to_unit is to_unit  # one home
    _, (xt, _) = tiny_digits()
    expected = xt[:20].numpy().astype(np.float64) / 255.0  # float64 oracle
    assert np.allclose(to_unit(xt[:20]).numpy(), expected, atol=1e-7)
    assert torch.equal(to_unit(torch.from_numpy(expected)), torch.from_numpy(expected).float())
    with pytest.raises(ValueError, match="dtype torch.int64"):
        to_unit(xt[:20].long())


# -- max-softmax values in `snnl tables` ---------------------------------------------------------------


def _confidence(tmp_path: Path, msp: list[float]) -> pd.DataFrame:
    from snnl.tables.inputs import Evaluation, Inputs
    from snnl.tables.tables import confidence_table

    d = tmp_path / "digits" / "baseline" / "seed0"
    d.mkdir(parents=True, exist_ok=True)
    pd.DataFrame({"set": "test", "kind": "test", "msp": msp}).to_csv(d / "samples.csv", index=False)
    return confidence_table(Inputs(evaluations={("digits", "baseline", 0): Evaluation(d, {})}), bins=4)


def test_confidence_table_bins_against_an_explicit_loop(tmp_path):
    msp = [0.1, 0.25, 0.3, 0.5, 0.74, 0.75, 1.0, 1.0]
    got = _confidence(tmp_path, msp)["fraction"].to_numpy()
    edges = np.linspace(0, 1, 5)
    expected = [np.mean([(lo <= v < hi) or (i == 3 and v == 1.0) for v in msp])
                for i, (lo, hi) in enumerate(zip(edges[:-1], edges[1:]))]
    assert np.allclose(got, expected)


@pytest.mark.parametrize("bad, match", [(1.0000001, "above 1"), (-0.2, "below 0"), (float("nan"), "NaN")])
def test_confidence_table_refuses_values_that_are_not_probabilities(tmp_path, bad, match):
    with pytest.raises(ValueError, match=f"samples.csv: msp of set test: 1 of 3 values are {match}"):
        _confidence(tmp_path, [0.5, bad, 0.9])


# -- a model whose input gradient vanishes, through evaluate, compare and tables ----------------------

_EVALUATE_CHILD = """
import json, sys, pathlib, torch
from torch import nn
from snnl.data import load_prepared, prepare
from snnl.evaluate.config import load_evaluate_config
from snnl.evaluate.run import evaluate
from snnl.models import build_model

root = pathlib.Path(sys.argv[1])
prepare("digits", root / "digits")
prepare("noise", root / "noise", like="digits")
data, noise = load_prepared(root / "digits"), load_prepared(root / "noise")


class Quantised(nn.Module):
    # rounds its input to 5 grey levels first: the input gradient is exactly zero everywhere
    def __init__(self, dead_fc2):
        super().__init__()
        torch.manual_seed(0)
        self.net = build_model("mlp", tuple(data.shape), len(data.classes), hidden=(32, 32))
        self.spec, self.hidden_layers = self.net.spec, ["net.fc1", "net.fc2"]
        if dead_fc2:
            with torch.no_grad():
                self.net.fc2[0].weight.zero_()
                self.net.fc2[0].bias.zero_()  # ReLU(0): the same output for every image

    def forward(self, x):
        return self.net(torch.round(x * 4) / 4)


cfg = load_evaluate_config({"evaluate": dict(attack_size=40, pgd_steps=2, epsilons={"gray": [0.1]}, reference_size=100,
                                             k=5, outlier_size=40, tsne_size=40, tsne_pca=10, tsne_perplexity=10,
                                             gradient_tsne_size=24, batch_size=64)})
for regime, dead in (("baseline", True), ("entangled", False)):
    evaluate(Quantised(dead), data, {"noise": noise}, cfg, root / "eval" / "digits" / regime / "seed0",
             checkpoint={"regime": regime, "seed": 0, "dataset": "digits"}, progress=False)
print("done")
"""


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory) -> tuple[Path, subprocess.CompletedProcess]:
    """Both evaluations, run in a child process (a crash there fails the tests, not the test run)."""
    root = tmp_path_factory.mktemp("vanishing")
    child = subprocess.run([sys.executable, "-c", textwrap.dedent(_EVALUATE_CHILD), str(root)], capture_output=True,
                           text=True, env={**os.environ, "OMP_NUM_THREADS": "1"}, timeout=600)
    return root / "eval" / "digits", child


def _finished(evaluated) -> Path:
    root, child = evaluated
    assert child.returncode == 0, f"snnl evaluate died (return code {child.returncode}): {child.stderr[-800:]}"
    return root


def test_evaluate_skips_the_embeddings_and_says_why(evaluated):
    vanishing = _finished(evaluated)
    for regime in ("baseline", "entangled"):
        out = vanishing / regime / "seed0"
        summary = json.loads((out / "summary.json").read_text())
        grad = summary["embeddings"]["gradients"]
        assert grad["n"] == 24 and grad["snnl_sign_gradients"] is None
        assert "all 24 sign-gradient vectors are zero" in grad["skipped"]
        assert "tsne_gradients.png" in summary["files"] and (out / "tsne_gradients.png").is_file()
        assert not (out / "tsne_gradients.csv").exists() and "tsne_gradients.csv" not in summary["files"]
        for name in summary["files"]:
            assert (out / name).is_file(), name
    layers = json.loads((vanishing / "baseline" / "seed0" / "summary.json").read_text())["embeddings"]["layers"]
    assert list(layers["skipped"]) == ["net.fc2"] and "identical" in layers["skipped"]["net.fc2"]
    tl = pd.read_csv(vanishing / "baseline" / "seed0" / "tsne_layers.csv")
    assert set(tl["layer"]) == {"net.fc1"} and len(tl) == 40


def test_compare_and_tables_still_work_and_report_the_skip(evaluated, tmp_path):
    from snnl.cli import main
    from snnl.evaluate import compare_regimes

    vanishing = _finished(evaluated)
    written = {p.name for p in compare_regimes({r: vanishing / r / "seed0" for r in ("baseline", "entangled")},
                                               tmp_path / "compare")}
    assert {"tsne_gradients_compare.png", "tsne_layers_compare.png", "confidence_compare.png"} <= written
    rc = main(["tables", "--evaluations", str(vanishing / "baseline" / "seed0"), str(vanishing / "entangled" / "seed0"),
               "--out", str(tmp_path / "tables"), "--quiet"])
    assert rc == 0
    claims = (tmp_path / "tables" / "claims.md").read_text()
    assert "sign-gradient t-SNE skipped" in claims and "vectors are zero" in claims
