"""notMNIST from a folder of letter images: one sub-folder per letter A-J (notMNIST_small's layout).

notMNIST (Yaroslav Bulatov, 2011) is not downloadable through any package; fetch
notMNIST_small.tar.gz yourself, unpack it, and set ``raw_dir`` to the folder holding
A/ ... J/ (or to its parent holding notMNIST_small/). Unreadable images (notMNIST_small
has a couple) are skipped and listed in the manifest. Images are converted to 8-bit
grayscale and, when not 28 x 28, resized to 28 x 28 (bilinear).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

from snnl.data.defaults import DEFAULT_RAW_ROOT
from snnl.data.loaded import LoadedData
from snnl.errors import DataError

LETTERS = list("ABCDEFGHIJ")
SIZE = 28
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".tif", ".tiff"}


def _find_root(raw_dir: str | None) -> Path:
    bases = [Path(raw_dir)] if raw_dir else [Path(DEFAULT_RAW_ROOT)]
    looked = []
    for base in bases:
        for folder in (base, base / "notMNIST_small", base / "notmnist"):
            looked.append(str(folder))
            if all((folder / letter).is_dir() for letter in LETTERS):
                return folder
    missing_hint = ""
    base = bases[0]
    if base.is_dir():
        missing = [letter for letter in LETTERS if not (base / letter).is_dir()]
        missing_hint = f" ({base} lacks the sub-folders {', '.join(missing)})"
    raise DataError(
        f"dataset `notmnist` is not available offline and cannot be downloaded by snnl: no folder with "
        f"sub-folders A ... J found in {'; '.join(looked)}{missing_hint}. Get notMNIST_small.tar.gz "
        f"(see docs/DATA.md), unpack it, and set `raw_dir` under `datasets.notmnist` in the config to the "
        f"folder holding A/ ... J/."
    )


def _read_image(path: Path) -> np.ndarray:
    from PIL import Image

    with Image.open(path) as img:
        gray = img.convert("L")
        if gray.size != (SIZE, SIZE):
            gray = gray.resize((SIZE, SIZE), resample=Image.Resampling.BILINEAR)
        return np.asarray(gray, dtype=np.uint8)


def load_notmnist(options: dict[str, Any]) -> LoadedData:
    """All readable images under ``raw_dir``/A ... J, labels 0..9 for A..J (outlier set)."""
    root = _find_root(options.get("raw_dir"))
    paths = [
        (label, path)
        for label, letter in enumerate(LETTERS)
        for path in sorted((root / letter).iterdir())
        if path.suffix.lower() in IMAGE_SUFFIXES
    ]
    images, labels, skipped = [], [], []
    for label, path in tqdm(paths, desc="notmnist: reading", unit="img", mininterval=1.0):
        try:
            images.append(_read_image(path))
        except (OSError, ValueError, SyntaxError):  # PIL's errors for broken files
            skipped.append(str(path.relative_to(root)))
            continue
        labels.append(label)
    empty = [LETTERS[c] for c in range(len(LETTERS)) if c not in set(labels)]
    if empty:
        raise DataError(
            f"notMNIST folder {root}: no readable image in sub-folder(s) {', '.join(empty)}; "
            "check the unpacked archive (re-extract notMNIST_small.tar.gz)"
        )
    return LoadedData(
        classes=LETTERS,
        pools={"test": (np.stack(images)[:, None], np.asarray(labels, np.int64))},
        source={"kind": "folder", "folder": str(root.resolve()), "skipped_unreadable": skipped},
    )
