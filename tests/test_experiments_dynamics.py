"""E4: the per-layer SNNL dynamics figure from the training runs' probe logs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from snnl.cli import main
from snnl.errors import DataError
from snnl.experiments import dynamics
from snnl.figures import REGIME_COLORS

LAYERS = ["conv1", "conv2", "logits"]


def _write_log(path, layers=LAYERS, steps=(0, 1, 3, 10, 30, 100), seed=0, columns=None, run=None):
    """A probe log in the format `snnl train --probe-log` writes; ``run``: (dataset, regime, seed)
    recorded in it (default: read off the test's own path .../DATASET/REGIME/seedN...)."""
    if run is None:
        parts = path.parts
        run = (parts[-3], parts[-2], int(parts[-1].removeprefix("seed").split(".")[0]))
    rng = np.random.default_rng(seed)
    rows = []
    for s in steps:
        for i, layer in enumerate(layers):
            rows.append({"dataset": run[0], "regime": run[1], "seed": run[2], "step": s, "epoch": s / 10,
                         "layer": layer, "snnl": 2.3 - 0.1 * i * np.log1p(s) + rng.normal(0, 0.01),
                         "temperature": 1.0, "at_boundary": 0, "train_temperature": "", "pinned_fraction": "",
                         "grad_ratio": ""})
    df = pd.DataFrame(rows)
    if columns is not None:
        df = df[columns]
    path.parent.mkdir(parents=True, exist_ok=True)
    df.to_csv(path, index=False)
    return path


def test_the_run_is_what_the_log_records_never_its_path(tmp_path):
    path = _write_log(tmp_path / "mnist5k" / "baseline" / "seed0.csv", run=("cifar10", "entangled", 12))
    df = dynamics.read_logs([path])
    assert set(zip(df["dataset"], df["regime"], df["seed"])) == {("cifar10", "entangled", 12)}
    assert df["seed"].dtype.kind == "i"


def test_a_log_without_its_identity_columns_is_refused_with_the_fix(tmp_path):
    old = _write_log(tmp_path / "d" / "baseline" / "seed0.csv",
                     columns=["step", "epoch", "layer", "snnl", "temperature", "at_boundary"])
    with pytest.raises(DataError, match=r"probe log .*seed0.csv.* lacks the identity columns dataset, regime, seed.*"
                                        r"rerun the training"):
        dynamics.read_logs([old])
    blank = tmp_path / "blank.csv"
    pd.read_csv(_write_log(tmp_path / "d" / "entangled" / "seed1.csv")).assign(seed="").to_csv(blank, index=False)
    with pytest.raises(DataError, match="identity columns"):
        dynamics.read_logs([blank])


def test_read_logs_tidy_and_checked(tmp_path):
    paths = [_write_log(tmp_path / "digits" / r / f"seed{s}.probe.csv", seed=s) for r in ("baseline", "entangled") for s in (0, 1)]
    df = dynamics.read_logs(paths)
    assert len(df) == 4 * 6 * 3
    assert df.groupby(["regime", "seed"]).ngroups == 4
    assert list(df.columns[:7]) == ["dataset", "regime", "seed", "step", "layer", "layer_index", "snnl"]
    assert df.loc[df["layer"] == "logits", "layer_index"].eq(2).all()
    assert df["pinned_fraction"].isna().all()  # empty cells: not measured
    with pytest.raises(DataError, match="from one file"):
        dynamics.read_logs([paths[0], paths[0]])


def test_missing_columns_are_explained(tmp_path):
    bad = _write_log(tmp_path / "d" / "baseline" / "seed0.csv", columns=["dataset", "regime", "seed", "step", "layer",
                                                                         "temperature"])
    with pytest.raises(DataError, match="lacks column.*snnl"):
        dynamics.read_logs([bad])


def test_figure_panels_and_last_layer_style(tmp_path):
    paths = [_write_log(tmp_path / ds / r / "seed0.csv", layers=layers)
             for ds, layers in (("mnist5k", LAYERS), ("cifar10", ["stem", "layer1.0", "pool", "logits"]))
             for r in ("entangled", "baseline")]
    fig = dynamics.plot(dynamics.read_logs(paths))
    axes = [ax for ax in fig.axes if ax.get_visible()]
    assert [ax.get_title() for ax in axes] == [
        "mnist5k · baseline  (1 seed)", "mnist5k · entangled  (1 seed)",
        "cifar10 · baseline  (1 seed)", "cifar10 · entangled  (1 seed)",
    ]
    assert axes[0].title.get_color() == REGIME_COLORS["baseline"] and axes[1].title.get_color() == REGIME_COLORS["entangled"]
    assert axes[0].get_xscale() == "symlog" and "step" in axes[0].get_xlabel()
    data_lines = [l for l in axes[0].get_lines() if len(l.get_xdata()) > 1]
    assert len(data_lines) == 3
    last = data_lines[-1]
    assert last.get_linestyle() == "--" and last.get_color() in ("black", "k", (0, 0, 0, 1))
    assert all(l.get_linestyle() == "-" for l in data_lines[:-1])
    legend = [t.get_text() for t in axes[1].get_legend().get_texts()]
    assert legend == ["conv1", "conv2", "logits (last layer)"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_cli_writes_png_and_csv(tmp_path):
    paths = [str(_write_log(tmp_path / "logs" / "digits" / r / f"seed{s}.probe.csv", seed=s))
             for r in ("baseline", "entangled") for s in (0, 1, 2)]
    cfg = tmp_path / "c.yaml"
    cfg.write_text("experiments:\n  dynamics: {band: ci}\n")
    out = tmp_path / "out"
    assert main(["dynamics-figure", "--logs", *paths, "--config", str(cfg), "--out", str(out / "e4.png"),
                 "--csv", str(out / "e4.csv")]) == 0
    assert (out / "e4.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert len(pd.read_csv(out / "e4.csv")) == 6 * 6 * 3


def test_cli_reports_a_missing_log(tmp_path, capsys):
    assert main(["dynamics-figure", "--logs", str(tmp_path / "none.csv"), "--out", str(tmp_path / "f.png")]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_cli_reads_the_probe_log_that_training_writes(tmp_path):
    """End to end with `snnl train --probe-log`: the columns of the two sides match."""
    from snnl.data import prepare

    data = prepare("digits", tmp_path / "prepared" / "digits")
    cfg = tmp_path / "c.yaml"
    cfg.write_text("train: {model: mlp, model_args: {hidden: [16, 8]}, epochs: 1, batch_size: 128, "
                   "probe_points: 5, probe_size: 60, threads: 1}\n")
    probe = tmp_path / "results" / "logs" / "digits" / "baseline" / "seed0.probe.csv"
    rc = main(["train", "--data", str(data), "--regime", "baseline", "--seed", "0", "--config", str(cfg),
               "--out", str(tmp_path / "m.pt"), "--metrics", str(tmp_path / "m.json"), "--log", str(tmp_path / "log.csv"),
               "--probe-log", str(probe), "--quiet"])
    assert rc == 0
    assert main(["dynamics-figure", "--logs", str(probe), "--out", str(tmp_path / "e4.png"), "--csv", str(tmp_path / "e4.csv")]) == 0
    df = pd.read_csv(tmp_path / "e4.csv")
    assert set(df["layer"]) == {"fc1", "fc2", "logits"} and df["step"].min() == 0
    assert (df["dataset"] == "digits").all() and (df["regime"] == "baseline").all()
