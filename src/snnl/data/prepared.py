"""Prepared datasets on disk: DIR/arrays/*.npy plus DIR/manifest.json with a SHA-256 per array.

Writing is atomic: everything goes to a temporary sibling folder that is renamed into
place at the end, so an interrupted prepare never leaves a half-written DIR. Loading
verifies every hash, size, dtype and shape against the manifest.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnl.data.loaded import check_arrays
from snnl.errors import DataError

FORMAT = "snnl-prepared/1"
MANIFEST = "manifest.json"
ARRAYS = "arrays"
SPLIT_NAMES = ("train", "val", "test")


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _npy_bytes(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, np.ascontiguousarray(array), allow_pickle=False)
    return buffer.getvalue()


def write_prepared(
    out: str | Path, splits: dict[str, tuple[np.ndarray, np.ndarray]], manifest: dict[str, Any]
) -> Path:
    """Write ``splits`` and ``manifest`` (completed with file records) to ``out`` atomically."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    _remove_stale_siblings(out)
    tmp = _fresh_sibling(out, "tmp")
    try:
        tmp.mkdir()  # honours the umask, unlike tempfile.mkdtemp's 0700
        (tmp / ARRAYS).mkdir()
        files: dict[str, Any] = {}
        for split, (images, labels) in splits.items():
            for kind, array in (("images", images), ("labels", labels)):
                rel = f"{ARRAYS}/{split}_{kind}.npy"
                data = _npy_bytes(array)
                with open(tmp / rel, "wb") as fh:
                    fh.write(data)
                    fh.flush()
                    os.fsync(fh.fileno())
                files[rel] = {
                    "sha256": sha256_bytes(data),
                    "bytes": len(data),
                    "dtype": str(array.dtype),
                    "shape": list(array.shape),
                }
        manifest = {**manifest, "format": FORMAT, "files": files}
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=2, sort_keys=False) + "\n")
        _swap_into_place(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _fresh_sibling(out: Path, tag: str) -> Path:
    """An unused hidden path next to ``out`` (same filesystem, so rename is atomic)."""
    return out.parent / f".{out.name}.{tag}-{os.getpid()}-{uuid.uuid4().hex[:8]}"


def _remove_stale_siblings(out: Path) -> None:
    """Temporary folders left by a prepare that was killed outright (SIGKILL, power loss)."""
    for sibling in out.parent.glob(f".{out.name}.tmp-*"):
        try:
            pid = int(sibling.name.rsplit("-", 2)[-2])
            os.kill(pid, 0)  # raises when no such process is alive
        except ProcessLookupError:
            shutil.rmtree(sibling, ignore_errors=True)
        except (ValueError, IndexError, PermissionError):
            continue


def _swap_into_place(tmp: Path, out: Path) -> None:
    if not out.exists():
        os.rename(tmp, out)
        return
    old = _fresh_sibling(out, "old")
    os.rename(out, old)
    try:
        os.rename(tmp, out)
    except BaseException:
        os.rename(old, out)
        raise
    shutil.rmtree(old, ignore_errors=True)


@dataclass
class PreparedDataset:
    """A prepared dataset, loaded and verified. Images uint8 N x C x H x W, labels int64."""

    name: str
    classes: list[str]
    manifest: dict[str, Any]
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]]

    def _split(self, split: str) -> tuple[torch.Tensor, torch.Tensor]:
        if split not in self.splits:
            raise DataError(
                f"prepared dataset `{self.name}` has no `{split}` split (it has {', '.join(self.splits)}); "
                "outlier sets have only `test`"
            )
        return self.splits[split]

    @property
    def train(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split("train")

    @property
    def val(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split("val")

    @property
    def test(self) -> tuple[torch.Tensor, torch.Tensor]:
        return self._split("test")

    @property
    def shape(self) -> tuple[int, int, int]:
        return tuple(self.manifest["shape"])  # type: ignore[return-value]


def _rebuild_hint(manifest: dict[str, Any] | None, path: Path) -> str:
    command = (manifest or {}).get("rebuild") or f"snnl prepare-data --dataset NAME --out {path}"
    return f"Rebuild it by rerunning the prepare step: `{command}`"


def _read_manifest(path: Path) -> dict[str, Any]:
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise DataError(
            f"{manifest_path} does not exist: {path} is not a prepared dataset. {_rebuild_hint(None, path)}"
        )
    try:
        manifest = json.loads(manifest_path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise DataError(f"{manifest_path} is not valid JSON ({err}). {_rebuild_hint(None, path)}") from err
    required = ("format", "name", "classes", "shape", "splits", "files")
    if not isinstance(manifest, dict) or any(k not in manifest for k in required):
        raise DataError(f"{manifest_path} lacks required keys {', '.join(required)}. {_rebuild_hint(None, path)}")
    if manifest["format"] != FORMAT:
        raise DataError(
            f"{manifest_path} has format {manifest['format']!r}, this snnl reads {FORMAT!r}. "
            f"{_rebuild_hint(manifest, path)}"
        )
    return manifest


def _load_array(path: Path, rel: str, record: dict[str, Any], manifest: dict[str, Any]) -> np.ndarray:
    file = path / rel
    hint = _rebuild_hint(manifest, path)
    if not file.is_file():
        raise DataError(f"prepared file {file} is missing. {hint}")
    data = file.read_bytes()
    if len(data) != record["bytes"]:
        raise DataError(
            f"prepared file {file} is truncated or altered: {len(data)} bytes, "
            f"the manifest says {record['bytes']}. {hint}"
        )
    digest = sha256_bytes(data)
    if digest != record["sha256"]:
        raise DataError(
            f"prepared file {file} is corrupt: SHA-256 {digest} does not match {record['sha256']} in "
            f"{path / MANIFEST}. {hint}"
        )
    try:
        array = np.load(io.BytesIO(data), allow_pickle=False)
    except (ValueError, OSError, EOFError) as err:
        raise DataError(f"prepared file {file} is not a readable .npy array ({err}). {hint}") from err
    if list(array.shape) != record["shape"] or str(array.dtype) != record["dtype"]:
        raise DataError(
            f"prepared file {file} holds {array.dtype} {list(array.shape)}, the manifest says "
            f"{record['dtype']} {record['shape']}. {hint}"
        )
    return array.copy()  # writable, owns its memory


def load_prepared(path: str | Path) -> PreparedDataset:
    """Load DIR written by `snnl prepare-data`, verifying every array against the manifest."""
    path = Path(path)
    manifest = _read_manifest(path)
    shape = list(manifest["shape"])
    splits: dict[str, tuple[torch.Tensor, torch.Tensor]] = {}
    for split in manifest["splits"]:
        if split not in SPLIT_NAMES:
            raise DataError(f"{path / MANIFEST} lists an unknown split `{split}`. {_rebuild_hint(manifest, path)}")
        images_rel, labels_rel = f"{ARRAYS}/{split}_images.npy", f"{ARRAYS}/{split}_labels.npy"
        for rel in (images_rel, labels_rel):
            if rel not in manifest["files"]:
                raise DataError(
                    f"{path / MANIFEST} lists split `{split}` but no record for {rel}. {_rebuild_hint(manifest, path)}"
                )
        images = _load_array(path, images_rel, manifest["files"][images_rel], manifest)
        labels = _load_array(path, labels_rel, manifest["files"][labels_rel], manifest)
        where = f"prepared split `{split}` in {path}"
        try:
            check_arrays(images, labels, len(manifest["classes"]), where)
        except DataError as err:
            raise DataError(f"{err}. {_rebuild_hint(manifest, path)}") from None
        if list(images.shape[1:]) != shape:
            raise DataError(
                f"{path / images_rel} has images of shape {list(images.shape[1:])}, the manifest says {shape}. "
                f"{_rebuild_hint(manifest, path)}"
            )
        splits[split] = (torch.from_numpy(images), torch.from_numpy(labels))
    return PreparedDataset(name=manifest["name"], classes=list(manifest["classes"]), manifest=manifest, splits=splits)
