"""benchmarks/bench_gpu.py (the GPU check of issue 8) runs end to end: every phase at toy sizes
on the CPU (--smoke), on tiny Fashion-MNIST IDX files written here, so the script is known to
work before a GPU lease is spent on it."""

from __future__ import annotations

import gzip
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from helpers.torchvision_files import idx_bytes

ROOT = Path(__file__).resolve().parents[1]


def _write_fashion(folder: Path, n_train: int = 300, n_test: int = 60) -> None:
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True)
    for prefix, n in (("train", n_train), ("t10k", n_test)):
        images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
        labels = (np.arange(n) % 10).astype(np.uint8)
        (folder / f"{prefix}-images-idx3-ubyte.gz").write_bytes(gzip.compress(idx_bytes(images)))
        (folder / f"{prefix}-labels-idx1-ubyte.gz").write_bytes(gzip.compress(idx_bytes(labels)))


def test_bench_gpu_smoke_run_writes_every_phase(tmp_path):
    _write_fashion(tmp_path / "fashion")
    out = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--smoke", "--fashion", str(tmp_path / "fashion"),
         "--out", str(out), "--work", str(tmp_path / "work"), "--epochs", "1"],
        capture_output=True, text=True, cwd=ROOT, timeout=600,
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    results = json.loads((out / "gpu_results.json").read_text())
    assert not [k for k in results if k.endswith("_error")], results
    assert {row["b"] for row in results["loss"]["rows"]} == {64, 300}
    assert {(r["precision"], r["regime"]) for r in results["cnn"]} == {
        (p, g) for p in ("fp32", "bf16") for g in ("baseline", "entangled")
    }
    assert all(0.0 <= r["test_accuracy"] <= 1.0 for r in results["cnn"])
    assert [r["precision"] for r in results["resnet"]] == ["fp32", "bf16"]
    md = (out / "gpu_results.md").read_text()
    for heading in ("## Loss", "## cnn", "## resnet"):
        assert heading in md


def test_bench_gpu_refuses_to_run_without_cuda_or_data(tmp_path):
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "bench_gpu.py"), "--fashion", str(tmp_path / "missing"),
         "--out", str(tmp_path / "out")],
        capture_output=True, text=True, cwd=ROOT, timeout=120,
    )
    assert proc.returncode == 2
    assert "no CUDA device" in proc.stderr or "lacks" in proc.stderr
    assert "Traceback" not in proc.stderr
