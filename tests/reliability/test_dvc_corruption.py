"""A corrupted object in the DVC remote is reported by `dvc pull` and never placed in the workspace.

The project's dvc.yaml over tiny outputs (a real prepared dataset and a real checkpoint, small
placeholders for the rest), shared the README's way ("Sharing results with DVC": a default remote
with `verify true`, `dvc commit`, `dvc push`); then one byte of the checkpoint's object in the
remote is flipped and a fresh clone runs `dvc pull`. Without `verify true` DVC would place the
damaged file in the workspace and report success; the README's setting is what makes it refuse.

    .venv/bin/pytest tests/reliability/test_dvc_corruption.py
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import yaml
from helpers.workflow import BIN, ROOT, run, share_with_dvc

from snnl.data import load_prepared, prepare
from snnl.training import TrainConfig, TrainData, train

CHECKPOINT = "results/checkpoints/digits/baseline/seed0.pt"


def outputs(stage: dict) -> list[str]:
    paths = []
    for key in ("outs", "metrics", "plots"):
        for entry in stage.get(key, []):
            paths.append(next(iter(entry)) if isinstance(entry, dict) else entry)
    return paths


def digest(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


@pytest.fixture()
def shared(tmp_path):
    """A git + DVC repository with every output of dvc.yaml committed and pushed to a local remote."""
    work = tmp_path / "work"
    work.mkdir()
    for name in ("Snakefile", "dvc.yaml", ".dvcignore", ".gitignore"):
        shutil.copy(ROOT / name, work / name)
    for name in ("workflow", "config"):
        shutil.copytree(ROOT / name, work / name)
    shutil.copytree(ROOT / "src" / "snnl", work / "src" / "snnl", ignore=shutil.ignore_patterns("__pycache__"))
    stage = yaml.safe_load((work / "dvc.yaml").read_text())["stages"]["reproduce"]
    for rel in outputs(stage):  # placeholders: a file for file outputs, a folder with one file otherwise
        path = work / rel
        if path.suffix:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text("step,snnl\n0,1.0\n" if path.suffix == ".csv" else "{}\n")
        else:
            path.mkdir(parents=True, exist_ok=True)
            (path / "README").write_text(f"{rel}\n")
    data = prepare("digits", work / "data" / "prepared" / "digits")
    cfg = TrainConfig(model="mlp", model_args={"hidden": [16]}, batch_size=64, max_steps=3, threads=1, probe_points=0)
    train(cfg, TrainData.from_prepared(load_prepared(data)), regime="baseline", seed=0, out=work / CHECKPOINT,
          progress=False)

    remote = tmp_path / "remote"
    share_with_dvc(work, remote)  # the README's lines, verify included
    run(["git", "add", "-A"], work)
    run(["git", "commit", "-q", "-m", "results"], work)
    return work, remote


def remote_object(remote: Path, lock: dict, rel: str) -> Path:
    """The remote's object holding file ``rel`` of a directory output (via its .dir listing)."""
    for out in lock["stages"]["reproduce"]["outs"]:
        if rel.startswith(out["path"] + "/"):
            listing = remote / "files" / "md5" / out["md5"][:2] / out["md5"][2:]
            for entry in json.loads(listing.read_text()):
                if entry["relpath"] == rel[len(out["path"]) + 1 :]:
                    return remote / "files" / "md5" / entry["md5"][:2] / entry["md5"][2:]
    raise AssertionError(f"{rel} not found in dvc.lock")


def test_corrupted_remote_object_is_reported_and_not_placed(shared, tmp_path):
    work, remote = shared
    assert "dvc remote modify storage verify true" in (ROOT / "README.md").read_text()
    lock = yaml.safe_load((work / "dvc.lock").read_text())
    obj = remote_object(remote, lock, CHECKPOINT)
    assert digest(obj) == digest(work / CHECKPOINT)
    prepared_file = work / "data" / "prepared" / "digits" / "manifest.json"

    obj.chmod(0o644)
    raw = bytearray(obj.read_bytes())
    raw[len(raw) // 2] ^= 0x01  # one bit
    obj.write_bytes(raw)

    fresh = tmp_path / "fresh"
    run(["git", "clone", "-q", str(work), str(fresh)], tmp_path)
    pull = run([str(BIN / "dvc"), "pull"], fresh, ok=False)
    text = pull.stdout + pull.stderr
    assert pull.returncode != 0, text
    assert "failed to pull data from the cloud" in text and "results/checkpoints" in text, text
    assert "Traceback" not in text
    # the damaged file is not in the workspace, nor in the cache; intact outputs are restored
    assert not (fresh / CHECKPOINT).exists()
    cached = fresh / ".dvc" / "cache" / "files" / "md5" / obj.parent.name / obj.name
    assert not cached.exists()
    assert digest(fresh / prepared_file.relative_to(work)) == digest(prepared_file)
    # and `dvc status` in the clone does not call the workspace up to date
    status = run([str(BIN / "dvc"), "status"], fresh, ok=False)
    assert "results/checkpoints" in status.stdout + status.stderr
