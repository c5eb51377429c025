"""Loaders that need no files: digits (scikit-learn), letters (rendered here) and noise."""

from __future__ import annotations

import hashlib
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from snnl.data import dataset_options
from snnl.data.embedded import load_digits
from snnl.data.letters import dejavu_fonts, load_letters
from snnl.data.noise import load_noise


def test_digits_scaled_from_sklearn():
    from sklearn.datasets import load_digits as sk

    bunch = sk()
    data = load_digits({})
    images, labels = data.pools["all"]
    assert images.shape == (1797, 1, 8, 8) and images.dtype == np.uint8
    assert images.max() == 255 and images.min() == 0
    # 16 -> 255, 8 -> 128 (127.5 rounded half to even), 1 -> 16
    for value, expected in ((16, 255), (8, 128), (1, 16), (0, 0)):
        assert np.all(images[:, 0][bunch.images == value] == expected)
    np.testing.assert_array_equal(labels, bunch.target)


# ------------------------------------------------------------------ letters


def sha(array: np.ndarray) -> str:
    return hashlib.sha256(array.tobytes()).hexdigest()


@pytest.fixture(scope="module")
def letters_seed0():
    return load_letters(dataset_options("letters", {"datasets": {"letters": {"n": 300, "seed": 0}}}))


def test_letters_byte_identical_for_a_seed_different_for_another(letters_seed0):
    again = load_letters(dataset_options("letters", {"datasets": {"letters": {"n": 300, "seed": 0}}}))
    other = load_letters(dataset_options("letters", {"datasets": {"letters": {"n": 300, "seed": 1}}}))
    a, b, c = letters_seed0.pools["test"][0], again.pools["test"][0], other.pools["test"][0]
    assert sha(a) == sha(b)
    np.testing.assert_array_equal(letters_seed0.pools["test"][1], again.pools["test"][1])
    assert sha(a) != sha(c)
    # not just a permutation of the same images
    assert len({sha(img) for img in a} & {sha(img) for img in c}) < 5


def test_letters_shape_balance_and_content(letters_seed0):
    images, labels = letters_seed0.pools["test"]
    assert images.shape == (300, 1, 28, 28) and images.dtype == np.uint8
    assert letters_seed0.classes == list("ABCDEFGHIJ")
    assert np.bincount(labels, minlength=10).tolist() == [30] * 10
    ink = (images > 127).reshape(300, -1).sum(1)
    assert ink.min() >= 10, "every image shows a glyph"
    assert (images.reshape(300, -1).max(1) >= 200).all()
    border = np.concatenate([images[:, 0, 0], images[:, 0, -1], images[:, 0, :, 0], images[:, 0, :, -1]], axis=1)
    assert (border > 127).mean() < 0.02, "glyphs stay (almost entirely) inside the frame"
    assert len({sha(img) for img in images}) == 300, "random size/offset/rotation/stroke give distinct images"


def test_letters_use_every_dejavu_font_with_latin_glyphs():
    folder = Path(matplotlib.get_data_path()) / "fonts" / "ttf"
    dejavu = sorted(p.name for p in folder.glob("DejaVu*.ttf"))
    fonts = [p.name for p in dejavu_fonts()]
    # The two "Display" faces hold no Latin capitals; every other DejaVu face is used.
    assert fonts == [name for name in dejavu if "Display" not in name]
    assert len(fonts) >= 12
    assert {"DejaVuSans.ttf", "DejaVuSerif-BoldItalic.ttf", "DejaVuSansMono-Oblique.ttf"} <= set(fonts)


def test_letters_look_like_their_letter():
    """Class means differ: a nearest-class-mean classifier on fresh samples beats chance by far."""
    train = load_letters({"n": 400, "seed": 3}).pools["test"]
    test = load_letters({"n": 200, "seed": 4}).pools["test"]
    x_tr = train[0].reshape(400, -1).astype(float)
    x_te = test[0].reshape(200, -1).astype(float)
    means = np.stack([x_tr[train[1] == k].mean(0) for k in range(10)])
    predicted = ((x_te[:, None] - means[None]) ** 2).sum(-1).argmin(1)
    assert (predicted == test[1]).mean() > 0.3  # chance is 0.1


# ------------------------------------------------------------------ noise


def test_noise_uniform_and_gaussian():
    options = dataset_options("noise", {"datasets": {"noise": {"n": 2001, "shape": [3, 16, 16], "seed": 5}}})
    data = load_noise(options)
    images, labels = data.pools["test"]
    assert images.shape == (2001, 3, 16, 16) and images.dtype == np.uint8
    assert data.classes == ["uniform", "gaussian"]
    assert np.bincount(labels).tolist() == [1001, 1000]
    uniform = images[labels == 0].astype(float) / 255
    gaussian = images[labels == 1].astype(float) / 255
    assert abs(uniform.mean() - 0.5) < 0.01 and abs(uniform.std() - (1 / 12) ** 0.5) < 0.01
    assert uniform.min() == 0 and uniform.max() == 1
    assert abs(gaussian.mean() - 0.5) < 0.01
    # N(0.5, 0.25) clipped to [0, 1], i.e. at +-2 sigma: E[Z^2] = (P(|Z|<2) - 4 phi(2)) + 4 P(|Z|>2)
    from scipy.stats import norm

    inside = norm.cdf(2) - norm.cdf(-2)
    clipped_std = 0.25 * np.sqrt(inside - 4 * norm.pdf(2) + 4 * (1 - inside))
    assert abs(clipped_std - 0.2399) < 1e-3
    assert abs(gaussian.std() - clipped_std) < 0.003
    again = load_noise(options).pools["test"][0]
    assert sha(again) == sha(images)


def test_noise_single_kind():
    options = {"datasets": {"noise": {"kinds": ["gaussian"], "n": 10, "gaussian_std": 0.01}}}
    data = load_noise(dataset_options("noise", options))
    images, labels = data.pools["test"]
    assert data.classes == ["gaussian"] and (labels == 0).all()
    assert np.abs(images.astype(int) - 128).max() <= 12
