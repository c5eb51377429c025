"""Drill 4: a learning rate large enough to diverge stops training with the step, the term and the
layer named, exits non-zero without a traceback, and the checkpoint written before stays loadable
with finite weights.

    .venv/bin/pytest tests/reliability/test_divergence.py
"""

from __future__ import annotations

import re
import subprocess

import pytest
import torch
import yaml
from helpers.training_data import digits_data, poison_update_after
from helpers.workflow import BIN, ENV

from snnl.checkpoint import load_checkpoint, load_model
from snnl.data import prepare
from snnl.errors import TrainingError
from snnl.training import TrainConfig, train

# plain SGD at lr 1e4 on a small MLP: the activations overflow within a few steps
DIVERGING = {"model": "mlp", "model_args": {"hidden": [32, 32]}, "optimizer": "sgd", "lr": 1.0e4, "batch_size": 64,
             "max_steps": 40, "checkpoint_every": 1, "probe_points": 0, "threads": 1, "alpha": 1.0}
STOP = re.compile(
    r"training stopped at step (?P<step>\d+) \(epoch \d+\): the (?P<term>cross-entropy|SNNL of layer `fc\d`) is "
    r"(?P<value>nan|inf|-inf) \(term `(?P<key>ce|snnl/fc\d)`\); (?P<layer>layer `(fc\d|logits)` is the first whose "
    r"output is not finite|the weights of layer `(fc\d|logits)` are not finite|"
    r"every layer's output is finite, the largest is \S+ \(layer `(fc\d|logits)`\))\. "
    r"The last good checkpoint, (?P<ckpt>\S+) \(step (?P<at>\d+)\), is intact \(a resume from it keeps its "
    r"settings\); lower `train.lr`( or `train.alpha`)? and run again with --fresh$"
)


def finite(state: dict) -> bool:
    return all(bool(torch.isfinite(v).all()) for v in state.values() if v.is_floating_point())


@pytest.mark.parametrize("regime", ["baseline", "entangled"])
def test_diverging_run_stops_naming_step_term_and_layer_and_keeps_the_last_checkpoint(tmp_path, regime):
    data = prepare("digits", tmp_path / "digits")
    config = tmp_path / "diverge.yaml"
    config.write_text(yaml.safe_dump({"train": DIVERGING}))
    out = tmp_path / "run"
    cmd = [str(BIN / "snnl"), "train", "--data", str(data), "--regime", regime, "--seed", "0", "--config", str(config),
           "--out", str(out / "m.pt"), "--metrics", str(out / "m.json"), "--log", str(out / "log.csv"), "--quiet"]
    run = subprocess.run(cmd, capture_output=True, text=True, env=ENV, timeout=300, check=False)

    assert run.returncode == 2, run.stdout + run.stderr
    assert "Traceback" not in run.stderr and run.stdout == ""
    message = run.stderr.strip()
    assert message.startswith("snnl train: error: training stopped at step ")
    assert len(message.splitlines()) == 1
    m = STOP.search(message)
    assert m, message
    step, at = int(m["step"]), int(m["at"])
    assert 1 < step < DIVERGING["max_steps"] and at == step - 1  # a checkpoint every step: the one before
    # the term and its layer agree: an SNNL term names its own layer
    if m["key"].startswith("snnl/"):
        assert f"SNNL of layer `{m['key'][5:]}`" in m["term"]

    # no final checkpoint or metrics; the resume checkpoint before the divergence loads, finite
    assert not (out / "m.pt").exists() and not (out / "m.json").exists()
    assert m["ckpt"] == str(out / "m.pt.resume")
    ckpt = load_checkpoint(m["ckpt"])
    assert ckpt["step"] == at and not ckpt["finished"]
    assert finite(ckpt["model"]) and finite(ckpt["regularizer"])
    model, _ = load_model(m["ckpt"])  # rebuilds and loads (its weights are finite, if already huge)
    assert all(bool(torch.isfinite(p).all()) for p in model.parameters())


def test_an_update_that_makes_weights_non_finite_is_never_checkpointed(tmp_path):
    """If an optimizer step leaves a NaN or inf in the weights on a step that writes a
    checkpoint, training stops there and the previous checkpoint is kept."""
    data = digits_data()
    cfg = TrainConfig(model="mlp", model_args={"hidden": [16]}, batch_size=64, max_steps=10, threads=1,
                      checkpoint_every=2, probe_points=0)

    out = tmp_path / "m.pt"
    with pytest.raises(TrainingError) as err:
        train(cfg, data, regime="baseline", seed=0, out=out, progress=False, callbacks=[poison_update_after(3)])
    msg = str(err.value)
    assert "training stopped at step 4" in msg and "the update of step 4 made the weights `fc1.0.weight` not finite" in msg
    assert f"The last good checkpoint, {out}.resume (step 2), is intact" in msg
    ckpt = load_checkpoint(f"{out}.resume")
    assert ckpt["step"] == 2 and finite(ckpt["model"])
    assert not out.exists()


def test_an_overflowing_optimizer_update_is_a_training_error(tmp_path):
    """Adam at lr 3e38: its first update overflows float32 inside torch; a TrainingError naming
    the step and the learning rate, not a RuntimeError from the optimizer."""
    cfg = TrainConfig(model="mlp", model_args={"hidden": [16]}, optimizer="adam", lr=3e38, batch_size=64, max_steps=5,
                      threads=1, probe_points=0)
    with pytest.raises(TrainingError, match=r"step 1 .*the optimizer's update overflowed at lr 3e\+38.*lower `train.lr`"):
        train(cfg, digits_data(), regime="baseline", seed=0, progress=False)
