"""Drill 3: broken inputs are detected with a message that says what to do, and nothing runs on them.

A truncated or bit-flipped prepared dataset, a truncated checkpoint, a checkpoint holding a
pickled object that would run code, a missing or damaged raw file: each through the command a
user (or a Snakemake rule) runs, `snnl train`, `snnl evaluate`, `snnl prepare-data` (in-process:
an uncaught exception would fail the test; one real process checks the console script), and
the corrupted prepared dataset once through the Snakemake DAG at tiny scale.

    .venv/bin/pytest tests/reliability/test_broken_inputs.py
"""

from __future__ import annotations

import gzip
import shutil
import struct
import subprocess
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from helpers.workflow import BIN, ENV, snakemake, workdir

from snnl.checkpoint import FORMAT, VERSION, load_checkpoint
from snnl.cli import main
from snnl.data import load_prepared, prepare
from snnl.errors import CheckpointError, DataError
from snnl.training import TrainConfig, TrainData, train

REBUILD = "Rebuild it by rerunning the prepare step: `snnl prepare-data --dataset digits"
TRAIN = {"model": "mlp", "model_args": {"hidden": [16]}, "batch_size": 64, "max_steps": 4, "threads": 1,
         "checkpoint_every": 2, "probe_points": 0}


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    """An intact prepared dataset (scikit-learn's digits), a config whose `train:` is TRAIN, and
    a checkpoint trained with it."""
    root = tmp_path_factory.mktemp("good")
    data = prepare("digits", root / "digits")
    (root / "config.yaml").write_text(yaml.safe_dump({"train": TRAIN}))
    train(TrainConfig(**TRAIN), TrainData.from_prepared(load_prepared(data)), regime="baseline", seed=0,
          out=root / "m.pt", progress=False)
    return data, root / "m.pt"


def damage(path: Path, how: str) -> None:
    raw = bytearray(path.read_bytes())
    if how == "truncate":
        path.write_bytes(raw[: len(raw) // 2])
    else:  # one bit flipped in the middle of the file
        raw[len(raw) // 2] ^= 0x01
        path.write_bytes(raw)


def run_cli(argv: list[str], capsys) -> tuple[int, str]:
    rc = main(argv)
    return rc, capsys.readouterr().err


def train_argv(data: Path, out: Path) -> list[str]:
    """`snnl train` on ``data`` (a copy of the fixture's, or the fixture's) with TRAIN, into ``out``."""
    config = data.parent / "config.yaml"
    if not config.exists():
        config.write_text(yaml.safe_dump({"train": TRAIN}))
    return ["train", "--data", str(data), "--regime", "baseline", "--seed", "0", "--config", str(config),
            "--out", str(out / "m.pt"), "--metrics", str(out / "m.json"), "--log", str(out / "log.csv"), "--quiet"]


# --- prepared datasets ---------------------------------------------------------------------


@pytest.mark.parametrize("how", ["truncate", "bitflip"])
def test_damaged_prepared_dataset_is_refused_by_train_and_evaluate(tmp_path, good, how, capsys):
    data, ckpt = good
    broken = tmp_path / "digits"
    shutil.copytree(data, broken)
    damage(broken / "arrays" / "train_images.npy", how)
    expected = "is truncated or altered" if how == "truncate" else "is corrupt: SHA-256"

    out = tmp_path / "run"
    rc, err = run_cli(train_argv(broken, out), capsys)
    assert rc == 2 and err.startswith("snnl train: error: prepared file ")
    assert f"{broken}/arrays/train_images.npy {expected}" in err and REBUILD in err, err
    assert not out.exists()

    rc, err = run_cli(["evaluate", "--checkpoint", str(ckpt), "--data", str(broken), "--out", str(out), "--quiet"],
                      capsys)
    assert rc == 2 and expected in err and REBUILD in err, err
    assert not out.exists()
    # the control: the same files undamaged load
    assert load_prepared(data).train[0].shape[0] > 0


def test_corrupt_prepared_dataset_stops_the_dag_before_training(tmp_path):
    """Snakemake at tiny scale: the training job fails on the damaged data with the rebuild
    command in its log, and no checkpoint, evaluation or table is made from it."""
    work = workdir(tmp_path)
    cfg = {
        "pipeline": {"datasets": ["digits"], "seeds": [0], "regimes": ["baseline"], "outliers": {}},
        "train": {"model": "mlp", "model_args": {"hidden": [16]}, "batch_size": 64, "max_steps": 3, "probe_points": 0},
        "experiments": {"synthetic": {"run": False}, "temperature_curve": {"run": False}, "dynamics": {"run": False},
                        "gan": {"datasets": []}},
    }
    (work / "config" / "small.yaml").write_text(yaml.safe_dump(cfg))
    snakemake(work, "--configfile", "config/small.yaml", "--cores", "1", "data/prepared/digits")
    damage(work / "data" / "prepared" / "digits" / "arrays" / "train_images.npy", "bitflip")

    out = snakemake(work, "--configfile", "config/small.yaml", "--cores", "1", check=False)
    text = out.stdout + out.stderr
    assert out.returncode != 0
    assert "Error in rule train" in text, text[-3000:]
    assert "arrays/train_images.npy is corrupt: SHA-256" in text and REBUILD in text, text[-3000:]
    assert "Traceback" not in (work / "logs" / "train" / "digits" / "baseline" / "seed0.log").read_text()
    assert not (work / "results" / "checkpoints").exists() or not any((work / "results" / "checkpoints").rglob("*.pt*"))
    for downstream in ("results/evaluation", "results/tables", "logs/evaluate", "logs/tables"):
        assert not (work / downstream).exists(), downstream


# --- checkpoints ---------------------------------------------------------------------------


def test_truncated_checkpoint_is_refused_by_evaluate_and_resume(tmp_path, good, capsys):
    data, ckpt = good
    broken = tmp_path / "m.pt"
    shutil.copy(ckpt, broken)
    damage(broken, "truncate")
    with pytest.raises(CheckpointError, match="is corrupt or truncated and cannot be read .*delete it and train again"):
        load_checkpoint(broken)

    out = tmp_path / "eval"
    rc, err = run_cli(["evaluate", "--checkpoint", str(broken), "--data", str(data), "--out", str(out), "--quiet"],
                      capsys)
    assert rc == 2 and f"checkpoint {broken} is corrupt or truncated" in err and "delete it and train again" in err
    assert not out.exists()

    # a truncated resume checkpoint (OUT.resume) stops `snnl train` before it writes anything
    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(broken, run / "m.pt.resume")
    rc, err = run_cli(train_argv(data, run), capsys)
    assert rc == 2 and f"checkpoint {run / 'm.pt.resume'} is corrupt or truncated" in err, err
    assert sorted(p.name for p in run.iterdir()) == ["m.pt.resume"]
    assert load_checkpoint(ckpt)["finished"] is True  # the control: the intact file loads


def test_bit_flip_in_the_weights_is_detected_by_the_digest(tmp_path, good, capsys):
    """torch.load does not check the zip's CRCs: one flipped bit inside a weight tensor loads
    silently as a different model unless the checkpoint carries a digest of its content."""
    data, ckpt = good
    state = torch.load(ckpt, weights_only=True)
    weight = next(v for v in state["model"].values() if v.numel() >= 16)
    raw = bytearray(ckpt.read_bytes())
    at = raw.find(weight.contiguous().numpy().tobytes())
    assert at > 0  # the tensor's bytes are stored as they are (uncompressed zip entry)
    raw[at + 5] ^= 0x10
    broken = tmp_path / "m.pt"
    broken.write_bytes(bytes(raw))
    flipped = torch.load(broken, weights_only=True)  # the control: torch alone notices nothing
    assert not torch.equal(next(v for v in flipped["model"].values() if v.numel() >= 16), weight)
    with pytest.raises(CheckpointError, match="is corrupt: its content does not match the SHA-256 digest"):
        load_checkpoint(broken)
    out = tmp_path / "eval"
    rc, err = run_cli(["evaluate", "--checkpoint", str(broken), "--data", str(data), "--out", str(out), "--quiet"],
                      capsys)
    assert rc == 2 and "does not match the SHA-256 digest" in err and "Traceback" not in err
    assert not out.exists()


class RunsCode:
    """Unpickling this calls ``open(marker, "w")``: code that runs when the file is loaded."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


def evil_checkpoint(path: Path, marker: Path, good_ckpt: Path) -> Path:
    """A real checkpoint with one pickled object in it (where `config` belongs)."""
    ckpt = torch.load(good_ckpt, weights_only=True)
    ckpt["config"] = RunsCode(marker)
    torch.save(ckpt, path)
    return path


def test_checkpoint_with_a_pickled_object_is_refused_and_its_code_never_runs(tmp_path, good, capsys):
    data, ckpt = good
    # the control: loading the file without weights_only runs the payload
    control = tmp_path / "control-ran"
    torch.load(evil_checkpoint(tmp_path / "control.pt", control, ckpt), weights_only=False)
    assert control.exists()

    marker = tmp_path / "payload-ran"
    evil = evil_checkpoint(tmp_path / "evil.pt", marker, ckpt)
    with pytest.raises(CheckpointError, match="contains pickled Python objects, which snnl refuses to load"):
        load_checkpoint(evil)

    out = tmp_path / "eval"
    rc, err = run_cli(["evaluate", "--checkpoint", str(evil), "--data", str(data), "--out", str(out), "--quiet"],
                      capsys)
    assert rc == 2 and f"checkpoint {evil} contains pickled Python objects" in err
    assert "Write checkpoints with `snnl train`" in err
    assert not out.exists()

    run = tmp_path / "run"
    run.mkdir()
    shutil.copy(evil, run / "m.pt.resume")
    rc, err = run_cli(train_argv(data, run), capsys)
    assert rc == 2 and "m.pt.resume contains pickled Python objects" in err
    assert sorted(p.name for p in run.iterdir()) == ["m.pt.resume"]

    # and as a separate process, through the installed console script
    proc = subprocess.run([str(BIN / "snnl"), "evaluate", "--checkpoint", str(evil), "--data", str(data),
                           "--out", str(out), "--quiet"], capture_output=True, text=True, env=ENV, timeout=300,
                          check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith(f"snnl evaluate: error: checkpoint {evil} contains pickled Python objects")
    assert not marker.exists() and not out.exists()


def test_a_non_checkpoint_is_named(tmp_path, capsys):
    path = tmp_path / "weights.pt"
    torch.save({"weight": torch.zeros(3)}, path)
    with pytest.raises(CheckpointError, match=f"not an snnl training checkpoint \\(no format '{FORMAT}'\\)"):
        load_checkpoint(path)
    torch.save({"format": FORMAT, "version": VERSION + 1}, path)
    with pytest.raises(CheckpointError, match="retrain it with this version of snnl"):
        load_checkpoint(path)


# --- raw files -----------------------------------------------------------------------------


def idx_files(folder: Path, n_train: int = 100, n_test: int = 30) -> list[Path]:
    """Gzipped IDX files in MNIST's layout (random pixels, balanced labels)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    paths = []
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, size=(n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        for kind, header, body in (("images-idx3-ubyte", struct.pack(">IIII", 0x803, n, 28, 28), images),
                                   ("labels-idx1-ubyte", struct.pack(">II", 0x801, n), labels)):
            path = folder / f"{prefix}-{kind}.gz"
            path.write_bytes(gzip.compress(header + body.tobytes()))
            paths.append(path)
    return paths


def test_missing_raw_file_is_named_with_how_to_get_it(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)  # data/raw of the working folder is searched too: keep it empty
    raw = tmp_path / "raw"
    files = idx_files(raw)
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"mnist": {"raw_dir": str(raw), "val_size": 20}}}))
    argv = ["prepare-data", "--dataset", "mnist", "--config", str(config), "--out", str(tmp_path / "out")]
    # the control: with every file present, the set prepares
    assert main(argv) == 0
    shutil.rmtree(tmp_path / "out")
    capsys.readouterr()

    files[-1].unlink()  # t10k-labels-idx1-ubyte.gz
    rc, err = run_cli(argv, capsys)
    assert rc == 2
    assert err.startswith("snnl prepare-data: error: dataset `mnist` is not available offline")
    assert f"{raw} (incomplete: missing t10k-labels-idx1-ubyte)" in err, err
    assert "set `download: true` under `datasets.mnist`" in err and "set `raw_dir` under `datasets.mnist`" in err
    assert not (tmp_path / "out").exists()

    # present but damaged (truncated archive): named, with the fix
    idx_files(raw)
    damage(raw / "t10k-images-idx3-ubyte.gz", "truncate")
    rc, err = run_cli(argv, capsys)
    assert rc == 2 and f"could not read the original `mnist` files in {raw}" in err, err
    assert "corrupt, truncated or not the originals: replace them" in err
    assert not (tmp_path / "out").exists()


def test_missing_notmnist_folder_says_where_to_get_it(tmp_path, capsys):
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"datasets": {"notmnist": {"raw_dir": str(tmp_path / "nowhere")}}}))
    rc, err = run_cli(["prepare-data", "--dataset", "notmnist", "--like", "mnist5k", "--config", str(config),
                       "--out", str(tmp_path / "out")], capsys)
    assert rc == 2 and "dataset `notmnist` is not available offline" in err
    assert "Get notMNIST_small.tar.gz" in err and "set `raw_dir` under `datasets.notmnist`" in err
    assert not (tmp_path / "out").exists()


def test_damaged_inputs_raise_the_library_errors(tmp_path, good):
    """The same checks for library users (no CLI): DataError and CheckpointError."""
    data, _ = good
    broken = tmp_path / "digits"
    shutil.copytree(data, broken)
    (broken / "arrays" / "val_labels.npy").unlink()
    with pytest.raises(DataError, match="val_labels.npy is missing. Rebuild it"):
        load_prepared(broken)
    with pytest.raises(CheckpointError, match="does not exist; train one with `snnl train"):
        load_checkpoint(tmp_path / "none.pt")
