"""E3: SNNL against log T for raw inputs and each layer; the minimiser agrees with optimal_temperature."""

from __future__ import annotations

import math

import pandas as pd
import pytest
import torch
from torch import nn

from snnl import optimal_temperature, soft_nearest_neighbor_loss
from snnl.cli import main
from snnl.experiments import temperature_curve as tc


class TinyNet(nn.Module):
    """Flatten -> fc1 (ReLU) -> fc2 (ReLU) -> logits, hidden layers named as the project's models do."""

    def __init__(self, d_in: int = 16, classes: int = 3):
        super().__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Sequential(nn.Linear(d_in, 12), nn.ReLU())
        self.fc2 = nn.Sequential(nn.Linear(12, 8), nn.ReLU())
        self.logits = nn.Linear(8, classes)
        self.hidden_layers = ["fc1", "fc2"]

    def forward(self, x):
        return self.logits(self.fc2(self.fc1(self.flatten(x))))


def _data(n_per_class: int = 40, classes: int = 3, seed: int = 0):
    """Overlapping class clusters of 1x4x4 'images' in [0, 1] (an interior SNNL minimum)."""
    g = torch.Generator().manual_seed(seed)
    centres = torch.rand(classes, 1, 4, 4, generator=g)
    labels = torch.arange(classes).repeat_interleave(n_per_class)
    images = (centres[labels] + 0.25 * torch.randn(len(labels), 1, 4, 4, generator=g)).clamp(0, 1)
    return images, labels


@pytest.fixture(scope="module")
def result():
    torch.manual_seed(0)
    images, labels = _data()
    model = TinyNet()
    return tc.temperature_curve(model, images, labels, label="tiny", decades=3.0, points=61), model, images, labels


def test_layers_in_network_order_and_grid_shape(result):
    res = result[0]
    assert list(res.minima["layer"]) == ["input", "fc1", "fc2", "logits"]
    assert (res.curves.groupby("layer").size() == 61).all()
    assert set(res.curves.columns) == set(tc.CURVE_COLUMNS)
    assert res.curves["snnl"].map(math.isfinite).all()


def test_curve_minimiser_matches_optimal_temperature_within_the_grid_step(result):
    res = result[0]
    for row in res.minima.itertuples():
        assert not row.at_boundary
        assert abs(row.log10_t_grid - row.log10_t_optimal) <= row.grid_step + 1e-9, row.layer
        # the refined search is at least as good as the grid, up to the curve's flatness
        assert row.snnl_optimal <= row.snnl_grid + 1e-9
        assert row.snnl_optimal < row.baseline


def test_curve_values_are_the_library_loss_on_the_layer_outputs(result):
    res, model, images, labels = result
    with torch.no_grad():  # the layer outputs, computed here by hand
        feats = {"input": images.flatten(1), "fc1": model.fc1(images.flatten(1))}
        feats["fc2"] = model.fc2(feats["fc1"])
        feats["logits"] = model.logits(feats["fc2"])
    for layer, x in feats.items():
        curve = res.curves[res.curves["layer"] == layer]
        for i in (5, 30, 55):
            t = 10.0 ** curve["log10_t"].iloc[i]
            expected = float(soft_nearest_neighbor_loss(x.double(), labels, t))
            assert curve["snnl"].iloc[i] == pytest.approx(expected, rel=1e-6, abs=1e-9), layer
        opt = optimal_temperature(x, labels, decades=3.0)
        row = res.minima[res.minima["layer"] == layer].iloc[0]
        assert row["snnl_optimal"] == pytest.approx(opt.loss, rel=1e-6)


def test_large_temperatures_reach_the_class_frequency_limit(result):
    res, labels = result[0], result[3]
    limit = tc.baseline_snnl(labels)
    assert limit == pytest.approx(math.log((120 - 1) / (40 - 1)))
    ends = res.curves.sort_values("log10_t").groupby("layer").last()
    assert (ends["snnl"] - limit).abs().max() < 0.02


def test_rescaling_the_inputs_shifts_the_curve_by_twice_the_log_scale():
    images, labels = _data()
    a = tc.temperature_curve(None, images, labels, label="x")
    b = tc.temperature_curve(None, images * 0.1, labels, label="x")  # squared distances scale by 0.01
    ra, rb = a.minima.iloc[0], b.minima.iloc[0]
    assert rb["snnl_optimal"] == pytest.approx(ra["snnl_optimal"], rel=1e-6)
    assert rb["log10_t_optimal"] == pytest.approx(ra["log10_t_optimal"] - 2.0, abs=1e-6)
    assert list(a.minima["layer"]) == ["input"]


def test_plot_marks_minimisers_and_the_last_layer(result):
    res = result[0]
    fig = tc.plot(res, regimes={"tiny": "baseline"})
    ax = fig.axes[0]
    logits_line = next(l for l in ax.get_lines() if l.get_label() == "logits (last layer)")
    assert logits_line.get_linestyle() == "--"
    assert ax.get_xlabel().startswith("log$_{10}$ temperature") and ax.get_ylabel() == "SNNL (nats)"
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---------------------------------------------------------------------------------------
# the command


@pytest.fixture(scope="module")
def digits_dir(tmp_path_factory):
    from snnl.data import prepare

    return prepare("digits", tmp_path_factory.mktemp("prepared") / "digits")


def _small_config(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("experiments:\n  temperature_curve: {samples: 150, points: 25}\n")
    return path


def test_cli_raw_inputs_only(tmp_path, digits_dir):
    out = tmp_path / "out"
    rc = main(["temperature-curve", "--data", str(digits_dir), "--config", str(_small_config(tmp_path)),
               "--csv", str(out / "c.csv"), "--minima", str(out / "m.csv"), "--figure", str(out / "f.png")])
    assert rc == 0
    curves, minima = pd.read_csv(out / "c.csv"), pd.read_csv(out / "m.csv")
    assert len(curves) == 25 and list(minima["layer"]) == ["input"]
    assert (out / "f.png").read_bytes()[:4] == b"\x89PNG"


def test_cli_with_checkpoints(tmp_path, digits_dir, monkeypatch):
    import snnl.checkpoint

    def fake_load_model(path, device="cpu"):
        torch.manual_seed(1)
        regime = "entangled" if "ent" in str(path) else "baseline"
        return TinyNet(d_in=64, classes=10).eval(), {"regime": regime, "seed": 0}

    monkeypatch.setattr(snnl.checkpoint, "load_model", fake_load_model)
    out = tmp_path / "out"
    rc = main(["temperature-curve", "--data", str(digits_dir), "--config", str(_small_config(tmp_path)),
               "--checkpoint", "base.pt", "--checkpoint", "ent.pt",
               "--csv", str(out / "c.csv"), "--figure", str(out / "f.png")])
    assert rc == 0
    curves = pd.read_csv(out / "c.csv")
    assert list(curves["model"].unique()) == ["baseline · seed 0", "entangled · seed 0"]
    assert list(curves["layer"].unique()) == ["input", "fc1", "fc2", "logits"]
    assert len(curves) == 2 * 4 * 25


def test_cli_label_count_must_match(tmp_path, digits_dir, capsys):
    rc = main(["temperature-curve", "--data", str(digits_dir), "--checkpoint", "a.pt", "--label", "x", "--label", "y",
               "--csv", str(tmp_path / "c.csv"), "--figure", str(tmp_path / "f.png")])
    assert rc == 2 and "--label" in capsys.readouterr().err


def test_cli_on_a_trained_checkpoint(tmp_path, digits_dir):
    """End to end with the project's own training command and checkpoint format."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "train: {model: mlp, model_args: {hidden: [16, 8]}, epochs: 1, batch_size: 128, probe_points: 0, threads: 1}\n"
        "experiments:\n  temperature_curve: {samples: 120, points: 21}\n"
    )
    ckpt = tmp_path / "ckpt" / "digits" / "baseline" / "seed0.pt"
    rc = main(["train", "--data", str(digits_dir), "--regime", "baseline", "--seed", "0", "--config", str(cfg),
               "--out", str(ckpt), "--metrics", str(tmp_path / "m.json"), "--log", str(tmp_path / "log.csv"), "--quiet"])
    assert rc == 0
    out = tmp_path / "out"
    rc = main(["temperature-curve", "--data", str(digits_dir), "--config", str(cfg), "--checkpoint", str(ckpt),
               "--csv", str(out / "c.csv"), "--minima", str(out / "m.csv"), "--figure", str(out / "f.png")])
    assert rc == 0
    minima = pd.read_csv(out / "m.csv")
    assert list(minima["layer"]) == ["input", "fc1", "fc2", "logits"]
    assert (minima["log10_t_grid"] - minima["log10_t_optimal"]).abs().le(minima["grid_step"] + 1e-9).all()
