"""Resume (injected interruption and a killed process) is bit-exact on CPU; the NaN guard stops
training with a clear message and leaves the last checkpoint intact."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

import snnl.regularizer
from snnl.checkpoint import load_checkpoint
from snnl.errors import TrainingError
from snnl.training import RUN_SPECIFIC_METRICS, TrainConfig, TrainData, train
from helpers.training_data import CLASSES, digits_data, shuffled_mnist5k

def mnist_small() -> TrainData:
    x, y = shuffled_mnist5k(1)
    return TrainData((x[:600], y[:600]), (x[600:800], y[600:800]), (x[800:1000], y[800:1000]), CLASSES, "mnist5k")


class Interrupt(Exception):
    pass


def interrupt_at(step):
    def cb(trainer):
        if trainer.step == step:
            raise Interrupt(f"interrupted at step {step}")

    return cb


def assert_same_state(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for k in a:
        assert torch.equal(a[k], b[k]), f"{k} differs"


def comparable(m: dict) -> dict:
    return {k: v for k, v in m.items() if k not in RUN_SPECIFIC_METRICS}


def test_resume_after_interruptions_is_bit_exact(tmp_path):
    data = mnist_small()
    cfg = TrainConfig(
        model="cnn", model_args={"width": 16}, batch_size=64, epochs=2, threads=1, augmentation="crop_flip",
        crop_padding=2, schedule="cosine", checkpoint_every=5, probe_size=64, probe_points=5, alpha=0.1,
    )
    ref_dir, run_dir = tmp_path / "ref", tmp_path / "run"
    files = lambda d: dict(out=d / "m.pt", log=d / "log.csv", metrics=d / "m.json", probe_log=d / "probe.csv")  # noqa: E731
    ref = train(cfg, data, regime="entangled", seed=0, progress=False, **files(ref_dir))
    assert ref.metrics["steps"] == 18  # 600 // 64 = 9 steps per epoch

    # interrupted twice: at step 7 (checkpoint at 5, mid-epoch) and at 13 (checkpoint at 10, next epoch)
    with pytest.raises(Interrupt):
        train(cfg, data, regime="entangled", seed=0, progress=False, callbacks=[interrupt_at(7)], **files(run_dir))
    assert load_checkpoint(run_dir / "m.pt.resume")["step"] == 5
    with pytest.raises(Interrupt):
        train(cfg, data, regime="entangled", seed=0, progress=False, callbacks=[interrupt_at(13)], **files(run_dir))
    assert load_checkpoint(run_dir / "m.pt.resume")["step"] == 10
    for declared in ("log.csv", "m.json", "probe.csv"):  # Snakemake deletes a killed job's outputs
        (run_dir / declared).unlink(missing_ok=True)
    res = train(cfg, data, regime="entangled", seed=0, progress=False, **files(run_dir))

    assert res.metrics["resumed_at_steps"] == [5, 10]
    assert_same_state(res.model.state_dict(), ref.model.state_dict())
    assert_same_state(res.regularizer.state_dict(), ref.regularizer.state_dict())  # temperatures
    a, b = torch.load(run_dir / "m.pt", weights_only=True), torch.load(ref_dir / "m.pt", weights_only=True)
    for st_a, st_b in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values()):
        assert_same_state(st_a, st_b)
    assert comparable(res.metrics) == comparable(ref.metrics)
    assert comparable(json.loads((run_dir / "m.json").read_text())) == comparable(json.loads((ref_dir / "m.json").read_text()))
    # the per-step log: every step once, the same numbers as the uninterrupted run
    assert (run_dir / "log.csv").read_text() == (ref_dir / "log.csv").read_text()
    assert (run_dir / "probe.csv").read_text() == (ref_dir / "probe.csv").read_text()
    assert not (run_dir / "m.pt.resume").exists() and not (run_dir / "m.pt.resume.csv").exists()


def _write_digits(path, data):
    from snnl.data.prepared import write_prepared

    splits = {s: (getattr(data, s)[0].numpy(), getattr(data, s)[1].numpy()) for s in ("train", "val", "test")}
    write_prepared(path, splits, {"name": "digits", "classes": CLASSES, "shape": [1, 8, 8], "splits": list(splits)})


def test_killed_process_resumes_to_the_same_weights(tmp_path):
    data = digits_data()
    _write_digits(tmp_path / "digits", data)
    (tmp_path / "c.yaml").write_text(
        "train:\n  model: mlp\n  batch_size: 64\n  epochs: 12\n  threads: 1\n  checkpoint_every: 5\n"
        "  probe_size: 100\n  probe_points: 5\n  augmentation: crop\n  crop_padding: 1\n"
    )
    out = tmp_path / "run/m.pt"
    cmd = [sys.executable, "-m", "snnl.cli", "train", "--data", str(tmp_path / "digits"), "--regime", "entangled",
           "--seed", "2", "--config", str(tmp_path / "c.yaml"), "--out", str(out), "--metrics", str(tmp_path / "run/m.json"),
           "--log", str(tmp_path / "run/log.csv"), "--quiet"]
    env = dict(os.environ, OMP_NUM_THREADS="1")
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    resume = tmp_path / "run/m.pt.resume"
    deadline = time.monotonic() + 120
    while not resume.exists() and proc.poll() is None and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.03)  # a moment later: mid-step, mid-log-write, maybe mid-checkpoint
    if proc.poll() is not None:
        pytest.fail(f"the run ended (rc {proc.returncode}) before it could be killed: {proc.stderr.read().decode()[-2000:]}")
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert not out.exists() and not (tmp_path / "run/m.json").exists()
    killed_at = load_checkpoint(resume)["step"]
    assert 0 < killed_at < 216 and killed_at % 5 == 0
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr[-2000:]
    metrics = json.loads((tmp_path / "run/m.json").read_text())
    assert metrics["resumed_at_steps"] == [killed_at]

    # reference: the same run, uninterrupted, in this process
    from snnl.training import train_config

    ref = train(train_config(tmp_path / "c.yaml", "digits"), data, regime="entangled", seed=2, progress=False,
                log=tmp_path / "ref.csv")
    final = torch.load(out, weights_only=True)
    assert final["step"] == ref.metrics["steps"] == 216
    assert_same_state(final["model"], ref.model.state_dict())
    assert comparable(metrics) == comparable(json.loads(json.dumps(ref.metrics)))
    assert (tmp_path / "run/log.csv").read_text() == (tmp_path / "ref.csv").read_text()


@pytest.mark.parametrize("log_every, where", [(1, "(term `snnl/fc2`); "), (10, "(term `snnl/fc2`, read back at step 10); ")])
def test_nan_in_an_snnl_term_stops_with_step_term_and_layer(tmp_path, monkeypatch, log_every, where):
    """Non-finite terms are read back at log (and checkpoint) steps only; the message names
    the first non-finite step (8) and term either way, and the step that read it back."""
    data = digits_data()
    cfg = TrainConfig(model="mlp", batch_size=64, max_steps=12, threads=1, checkpoint_every=5, probe_size=50,
                      probe_points=3, log_every=log_every)
    real = snnl.regularizer.soft_nearest_neighbor_losses
    calls = {"n": 0}
    bad_step = 8

    def poisoned(features, labels, temperatures, **kw):
        values = real(features, labels, temperatures, **kw)
        calls["n"] += 1
        if calls["n"] == bad_step:  # step 8, second layer (fc2)
            return values * torch.tensor([1.0, float("nan")])
        return values

    monkeypatch.setattr(snnl.regularizer, "soft_nearest_neighbor_losses", poisoned)
    out = tmp_path / "m.pt"
    with pytest.raises(TrainingError) as err:
        train(cfg, data, regime="entangled", seed=0, out=out, log=tmp_path / "l.csv", progress=False)
    msg = str(err.value)
    assert msg.startswith("training stopped at step 8 ") and where in msg and "SNNL of layer `fc2`" in msg
    assert "m.pt.resume (step 5)" in msg and "intact" in msg
    assert not out.exists()
    assert load_checkpoint(tmp_path / "m.pt.resume")["step"] == 5
    monkeypatch.undo()

    # the kept checkpoint is good: resuming from it gives the uninterrupted result
    resumed = train(cfg, data, regime="entangled", seed=0, out=out, progress=False)
    ref = train(cfg, data, regime="entangled", seed=0, progress=False)
    assert resumed.metrics["resumed_at_steps"] == [5]
    assert_same_state(resumed.model.state_dict(), ref.model.state_dict())


def test_nan_in_the_cross_entropy_is_named(tmp_path):
    data = digits_data()
    cfg = TrainConfig(model="mlp", batch_size=64, max_steps=6, threads=1, probe_points=0)

    def poison_after_3(trainer):
        if trainer.step == 3:
            trainer.model.logits.register_forward_hook(lambda m, i, o: o * float("inf"))

    with pytest.raises(TrainingError, match=r"step 4 .*cross-entropy is nan.*No checkpoint was written yet"):
        train(cfg, data, regime="baseline", seed=0, progress=False, callbacks=[poison_after_3])
