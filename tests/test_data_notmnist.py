"""notMNIST from a folder of letter images (notMNIST_small's layout), written here as PNGs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from snnl.data import dataset_options
from snnl.data.notmnist import load_notmnist
from snnl.data.prepare import build_splits
from snnl.errors import DataError


def write_folder(root, per_letter=3, size=28):
    written = {}
    rng = np.random.default_rng(0)
    for label, letter in enumerate("ABCDEFGHIJ"):
        (root / letter).mkdir(parents=True)
        for i in range(per_letter):
            pixels = rng.integers(0, 256, (size, size), dtype=np.uint8)
            name = f"{letter}{i}.png"
            Image.fromarray(pixels, mode="L").save(root / letter / name)
            written[(letter, name)] = (pixels, label)
    return written


def test_reads_every_letter_folder(tmp_path):
    written = write_folder(tmp_path / "notMNIST_small")
    (tmp_path / "notMNIST_small" / "A" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n not really")
    data = load_notmnist(dataset_options("notmnist", {"datasets": {"notmnist": {"raw_dir": str(tmp_path)}}}))
    images, labels = data.pools["test"]
    assert images.shape == (30, 1, 28, 28) and images.dtype == np.uint8
    assert np.bincount(labels).tolist() == [3] * 10
    expected = [written[k] for k in sorted(written, key=lambda k: ("ABCDEFGHIJ".index(k[0]), k[1]))]
    for (pixels, label), image, got in zip(expected, images, labels):
        np.testing.assert_array_equal(image[0], pixels)
        assert got == label
    assert data.source["skipped_unreadable"] == ["A/broken.png"]


def test_other_sizes_and_rgb_are_converted(tmp_path):
    for letter in "ABCDEFGHIJ":
        (tmp_path / letter).mkdir()
        Image.new("RGB", (56, 56), (255, 0, 0)).save(tmp_path / letter / "x.png")
    images, _ = load_notmnist({"raw_dir": str(tmp_path), "seed": 0, "n": None}).pools["test"]
    assert images.shape == (10, 1, 28, 28)
    assert (images == 76).all()  # Pillow's L = 0.299 * 255 for pure red


def test_n_subsamples_stratified(tmp_path):
    write_folder(tmp_path, per_letter=4)
    options = dataset_options("notmnist", {"datasets": {"notmnist": {"raw_dir": str(tmp_path), "n": 20}}})
    splits = build_splits("notmnist", options)[0]
    assert list(splits) == ["test"]
    assert np.bincount(splits["test"][1]).tolist() == [2] * 10


def test_missing_folder_explains_how_to_get_it(tmp_path):
    write_folder(tmp_path)
    for path in (tmp_path / "J").iterdir():
        path.unlink()
    (tmp_path / "J").rmdir()
    with pytest.raises(DataError) as info:
        load_notmnist({"raw_dir": str(tmp_path), "seed": 0, "n": None})
    assert "lacks the sub-folders J" in str(info.value)
    assert "raw_dir" in str(info.value) and "notMNIST_small" in str(info.value)


def test_letter_folder_without_readable_images(tmp_path):
    write_folder(tmp_path)
    for path in (tmp_path / "C").iterdir():
        path.write_bytes(b"junk")
    with pytest.raises(DataError, match=r"no readable image in sub-folder\(s\) C"):
        load_notmnist({"raw_dir": str(tmp_path), "seed": 0, "n": None})
