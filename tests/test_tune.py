"""`snnl tune`: a seeded Optuna search whose best parameters `snnl train --params` consumes."""

from __future__ import annotations

import json

import pytest
import yaml

from snnl.cli import main as cli_main
from snnl.yaml_io import read_yaml
from snnl.errors import ConfigError
from snnl.training import train_config, tune, tune_config
from helpers.training_data import CLASSES, digits_data

CONFIG = {
    "datasets": {"digits": {"val_size": 180}},  # another part's section: ignored here
    "train": {"model": "mlp", "batch_size": 64, "epochs": 1, "threads": 1, "probe_size": 40, "probe_points": 2},
    "tune": {"n_trials": 2, "max_steps": 6, "space": {"entangled": {"lr": [1e-3, 1e-2], "alpha": [0.01, 0.5]}}},
}


@pytest.fixture
def prepared(tmp_path):
    from snnl.data.prepared import write_prepared

    data = digits_data()
    splits = {s: (getattr(data, s)[0].numpy(), getattr(data, s)[1].numpy()) for s in ("train", "val", "test")}
    write_prepared(tmp_path / "digits", splits, {"name": "digits", "classes": CLASSES, "shape": [1, 8, 8], "splits": list(splits)})
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(CONFIG))
    return tmp_path


def test_tune_two_trials_writes_params_that_train_consumes(prepared):
    t = prepared
    rc = cli_main(["tune", "--data", str(t / "digits"), "--regime", "entangled", "--seed", "0", "--config", str(t / "c.yaml"),
                   "--out", str(t / "best.json"), "--quiet"])
    assert rc == 0
    best = json.loads((t / "best.json").read_text())
    assert best["regime"] == "entangled" and best["objective"] == "val_accuracy" and best["n_trials"] == 2
    assert set(best["params"]) == {"lr", "alpha"}
    assert 1e-3 <= best["params"]["lr"] <= 1e-2 and 0.01 <= best["params"]["alpha"] <= 0.5
    values = [tr["value"] for tr in best["trials"]]
    assert best["best_value"] == max(values) and len(values) == 2

    rc = cli_main(["train", "--data", str(t / "digits"), "--regime", "entangled", "--seed", "0", "--config", str(t / "c.yaml"),
                   "--params", str(t / "best.json"), "--out", str(t / "m.pt"), "--metrics", str(t / "m.json"),
                   "--log", str(t / "log.csv"), "--quiet"])
    assert rc == 0
    m = json.loads((t / "m.json").read_text())
    assert m["config"]["lr"] == best["params"]["lr"] and m["alpha"] == best["params"]["alpha"]
    # the regime is checked
    rc = cli_main(["train", "--data", str(t / "digits"), "--regime", "baseline", "--seed", "0", "--params", str(t / "best.json"),
                   "--out", str(t / "b.pt"), "--metrics", str(t / "b.json"), "--log", str(t / "b.csv"), "--quiet"])
    assert rc == 2


def test_tune_is_reproducible_with_a_seeded_sampler():
    data = digits_data()
    doc = CONFIG
    cfg = train_config(doc)
    tcfg = tune_config(doc)

    def run(tmp):
        return tune(cfg, tcfg, data, regime="baseline", seed=5, out=tmp, progress=False)

    import tempfile
    from pathlib import Path

    with tempfile.TemporaryDirectory() as d:
        a, b = run(Path(d) / "a.json"), run(Path(d) / "b.json")
    assert a["trials"] == b["trials"]
    assert set(a["params"]) == {"lr"}  # the baseline's default space
    assert a["trials"][0]["params"] != a["trials"][1]["params"]


def test_parallel_workers_share_one_journal(prepared):
    t = prepared
    journal = t / "study.journal"
    rc = cli_main(["tune", "--data", str(t / "digits"), "--regime", "baseline", "--seed", "0", "--config", str(t / "c.yaml"),
                   "--out", str(t / "best.json"), "--storage", str(journal), "--workers", "2", "--n-trials", "2", "--quiet"])
    assert rc == 0
    best = json.loads((t / "best.json").read_text())
    assert best["n_trials"] >= 2 and best["storage"] == str(journal)
    # another job joining the finished study runs nothing more; --summarize-only rewrites the result
    rc = cli_main(["tune", "--data", str(t / "digits"), "--regime", "baseline", "--seed", "0", "--config", str(t / "c.yaml"),
                   "--out", str(t / "again.json"), "--storage", str(journal), "--summarize-only", "--quiet"])
    assert rc == 0
    assert json.loads((t / "again.json").read_text())["trials"] == best["trials"]


def test_tune_config_errors_name_the_key(tmp_path):
    with pytest.raises(ConfigError, match=r"tune\.trials"):
        tune_config({"tune": {"trials": 3}})
    with pytest.raises(ConfigError, match=r"tune\.space\.entangled\.temperature"):
        tune_config({"tune": {"space": {"entangled": {"temperature": [1, 10]}}}})
    with pytest.raises(ConfigError, match=r"tune\.space\.mixed"):
        tune_config({"tune": {"space": {"mixed": {"lr": [1e-4, 1e-2]}}}})
    with pytest.raises(ConfigError, match="low < high"):
        tune_config({"tune": {"space": {"baseline": {"lr": {"low": 0.1, "high": 0.01}}}}})
    path = tmp_path / "c.yaml"
    path.write_text("tune: [1, 2]\n")
    with pytest.raises(ConfigError, match="`tune` must be a mapping"):
        tune_config(read_yaml(path), where=str(path))
