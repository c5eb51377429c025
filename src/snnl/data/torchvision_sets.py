"""MNIST, Fashion-MNIST, KMNIST, SVHN and CIFAR-10 through torchvision's own dataset classes.

Two ways in, both through the same torchvision classes a real download uses:
``download: true`` lets torchvision fetch the files (network needed), and ``raw_dir``
(or, when unset, the default places) points at original files already on disk. Files
found outside torchvision's folder layout, or still compressed, are staged in a
temporary folder (symlinked, or decompressed with torchvision's own
``extract_archive``, exactly as after a download) and read from there.
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from snnl.data.defaults import DEBIAN_FASHION_MNIST_DIR, DEFAULT_RAW_ROOT
from snnl.data.loaded import LoadedData
from snnl.errors import DataError

IDX_FILES = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)
CIFAR_FOLDER = "cifar-10-batches-py"
CIFAR_FILES = tuple(f"data_batch_{i}" for i in range(1, 6)) + ("test_batch", "batches.meta")
CIFAR_TARBALL = "cifar-10-python.tar.gz"
SVHN_FILES = ("train_32x32.mat", "test_32x32.mat")


@dataclass(frozen=True)
class TorchvisionSet:
    name: str
    cls_name: str  # class in torchvision.datasets
    family: str  # "idx", "cifar" or "svhn"
    shape: tuple[int, int, int]
    classes: tuple[str, ...] | None  # None: read from the files (CIFAR-10's batches.meta)
    extra_dirs: tuple[str, ...] = ()  # searched after data/raw when raw_dir is unset
    extra_hint: str = ""


DIGITS = tuple(str(d) for d in range(10))
SETS: dict[str, TorchvisionSet] = {
    "mnist": TorchvisionSet("mnist", "MNIST", "idx", (1, 28, 28), DIGITS),
    "fashion_mnist": TorchvisionSet(
        "fashion_mnist", "FashionMNIST", "idx", (1, 28, 28),
        ("T-shirt/top", "Trouser", "Pullover", "Dress", "Coat", "Sandal", "Shirt", "Sneaker", "Bag", "Ankle boot"),
        extra_dirs=(DEBIAN_FASHION_MNIST_DIR,),
        extra_hint=" On Debian/Ubuntu, `apt-get install dataset-fashion-mnist` puts them in "
        f"{DEBIAN_FASHION_MNIST_DIR}, which is searched by default.",
    ),
    "kmnist": TorchvisionSet(
        "kmnist", "KMNIST", "idx", (1, 28, 28), ("o", "ki", "su", "tsu", "na", "ha", "ma", "ya", "re", "wo")
    ),
    "svhn": TorchvisionSet("svhn", "SVHN", "svhn", (3, 32, 32), DIGITS),
    "cifar10": TorchvisionSet("cifar10", "CIFAR10", "cifar", (3, 32, 32), None),
}


# ---------------------------------------------------------------- finding files


def _expected(spec: TorchvisionSet) -> tuple[str, ...]:
    return {"idx": IDX_FILES, "cifar": CIFAR_FILES, "svhn": SVHN_FILES}[spec.family]


def _candidate_folders(spec: TorchvisionSet, base: Path) -> list[Path]:
    if spec.family == "idx":
        return [base / spec.cls_name / "raw", base / "raw", base]
    if spec.family == "cifar":
        return [base / CIFAR_FOLDER, base]
    return [base / spec.cls_name, base / spec.name, base]


def _present(folder: Path, filename: str, family: str) -> Path | None:
    """The file, or (MNIST family) its .gz original, or None."""
    if (folder / filename).is_file():
        return folder / filename
    if family == "idx" and (folder / f"{filename}.gz").is_file():
        return folder / f"{filename}.gz"
    return None


def _search(spec: TorchvisionSet, bases: list[Path]) -> tuple[Path, dict[str, Path]] | tuple[None, list[str]]:
    """(folder, files) of the first complete set, or (None, notes on where we looked)."""
    notes = []
    for base in bases:
        for folder in _candidate_folders(spec, base):
            found = {f: _present(folder, f, spec.family) for f in _expected(spec)}
            if all(found.values()):
                return folder, found  # type: ignore[return-value]
            if spec.family == "cifar" and (folder / CIFAR_TARBALL).is_file():
                return folder, {CIFAR_TARBALL: folder / CIFAR_TARBALL}
            have = [f for f, p in found.items() if p]
            if have:
                missing = [f for f, p in found.items() if not p]
                notes.append(f"{folder} (incomplete: missing {', '.join(missing)})")
            else:
                notes.append(str(folder))
    return None, notes


def _stage(spec: TorchvisionSet, folder: Path, files: dict[str, Path], tmp: Path) -> Path:
    """A torchvision root holding ``files`` in the layout ``spec.cls_name`` expects."""
    from torchvision.datasets.utils import extract_archive

    if spec.family == "svhn":
        return folder  # SVHN reads ROOT/train_32x32.mat directly
    if spec.family == "cifar":
        if CIFAR_TARBALL in files:
            extract_archive(str(files[CIFAR_TARBALL]), str(tmp))  # as download_and_extract_archive does
            return tmp
        if folder.name == CIFAR_FOLDER:
            return folder.parent
        target = tmp / CIFAR_FOLDER
    else:
        in_layout = folder.name == "raw" and folder.parent.name == spec.cls_name
        if in_layout and all(p.suffix != ".gz" for p in files.values()):
            return folder.parent.parent
        target = tmp / spec.cls_name / "raw"
    target.mkdir(parents=True)
    for name, path in files.items():
        if path.suffix == ".gz":
            extract_archive(str(path), str(target))  # torchvision's own decompression step
        else:
            os.symlink(path.resolve(), target / name)
    return tmp


# ---------------------------------------------------------------- reading


def _read(spec: TorchvisionSet, root: Path, train: bool) -> tuple[np.ndarray, np.ndarray, list[str]]:
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.cls_name)
    if spec.family == "svhn":
        ds = cls(str(root), split="train" if train else "test", download=False)
        images, labels = np.asarray(ds.data), np.asarray(ds.labels)
    elif spec.family == "cifar":
        ds = cls(str(root), train=train, download=False)
        images, labels = np.asarray(ds.data).transpose(0, 3, 1, 2), np.asarray(ds.targets)
    else:
        ds = cls(str(root), train=train, download=False)
        images, labels = ds.data.numpy()[:, None], ds.targets.numpy()
    classes = list(spec.classes) if spec.classes is not None else [str(c) for c in ds.classes]
    return np.ascontiguousarray(images, dtype=np.uint8), labels.astype(np.int64), classes


def _download(spec: TorchvisionSet, root: Path) -> None:
    import torchvision.datasets as tvd

    cls = getattr(tvd, spec.cls_name)
    target = root / spec.cls_name if spec.family == "svhn" else root
    try:
        for train in (True, False):
            if spec.family == "svhn":
                cls(str(target), split="train" if train else "test", download=True)
            else:
                cls(str(target), train=train, download=True)
    except Exception as err:  # network errors come as URLError, OSError or RuntimeError
        reason = " ".join(str(err).split())
        raise DataError(
            f"downloading dataset `{spec.name}` into {target} failed ({reason}). Check the network connection, "
            f"or set `raw_dir` under `datasets.{spec.name}` to a folder holding the original files."
        ) from err


def _not_found(spec: TorchvisionSet, notes: list[str], download_root: Path) -> DataError:
    wanted = ", ".join(f + ("[.gz]" if spec.family == "idx" else "") for f in _expected(spec))
    if spec.family == "cifar":
        wanted += f" (or {CIFAR_TARBALL})"
    return DataError(
        f"dataset `{spec.name}` is not available offline and download is off. Looked for {wanted} in: "
        f"{'; '.join(notes)}. Get it one of two ways: (1) with a network, set `download: true` under "
        f"`datasets.{spec.name}` in the config (torchvision downloads into {download_root}); or (2) set "
        f"`raw_dir` under `datasets.{spec.name}` to a folder holding the original files.{spec.extra_hint}"
    )


def load_torchvision(name: str, options: dict[str, Any]) -> LoadedData:
    """Official train and test pools of ``name`` (one of SETS)."""
    spec = SETS[name]
    raw_dir = options.get("raw_dir")
    download_root = Path(raw_dir or DEFAULT_RAW_ROOT)
    bases = [Path(raw_dir)] if raw_dir else [Path(DEFAULT_RAW_ROOT), *map(Path, spec.extra_dirs)]
    folder, found = _search(spec, bases)
    downloaded = False
    if folder is None:
        if not options.get("download"):
            raise _not_found(spec, found, download_root)  # type: ignore[arg-type]
        _download(spec, download_root)
        downloaded = True
        folder, found = _search(spec, [download_root])
        if folder is None:  # pragma: no cover - torchvision put the files somewhere unexpected
            raise _not_found(spec, found, download_root)  # type: ignore[arg-type]
    with tempfile.TemporaryDirectory(prefix=f"snnl-{name}-") as tmp:
        try:
            root = _stage(spec, folder, found, Path(tmp))  # type: ignore[arg-type]
            train_x, train_y, classes = _read(spec, root, train=True)
            test_x, test_y, _ = _read(spec, root, train=False)
        except (DataError, ImportError):
            raise  # a missing package is not a corrupt file: let its own message through
        except Exception as err:
            reason = " ".join(str(err).split())
            raise DataError(
                f"could not read the original `{name}` files in {folder} with torchvision.datasets.{spec.cls_name}: "
                f"{type(err).__name__}: {reason}. The files are corrupt, truncated or not the originals: replace "
                f"them (delete them and set `download: true` under `datasets.{name}`, or point `raw_dir` at "
                "intact copies)."
            ) from err
    return LoadedData(
        classes=classes,
        pools={"train": (train_x, train_y), "test": (test_x, test_y)},
        source={
            "kind": "torchvision",
            "reader": f"torchvision.datasets.{spec.cls_name}",
            "folder": str(folder.resolve()),
            "files": sorted(p.name for p in found.values()),  # type: ignore[union-attr]
            "downloaded": downloaded,
        },
    )
