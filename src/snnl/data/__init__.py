"""Datasets: a registry of loaders, deterministic stratified splits and prepared, hash-checked arrays.

    from snnl.data import load_prepared
    ds = load_prepared("data/prepared/mnist5k")   # verifies every SHA-256
    images, labels = ds.train                      # uint8 N x C x H x W, int64

Write prepared data with `snnl prepare-data` (or ``snnl.data.prepare``). The datasets,
their options and defaults are listed in snnl.data.registry and docs/DATA.md.
"""

from snnl.data.config import dataset_options
from snnl.data.loaded import LoadedData
from snnl.data.prepare import build_splits, prepare
from snnl.data.prepared import PreparedDataset, load_prepared
from snnl.data.registry import DATASET_NAMES, DEFAULTS, REGISTRY, get_entry
from snnl.data.splits import make_splits, stratified_take

__all__ = [
    "DATASET_NAMES",
    "DEFAULTS",
    "REGISTRY",
    "LoadedData",
    "PreparedDataset",
    "build_splits",
    "dataset_options",
    "get_entry",
    "load_prepared",
    "make_splits",
    "prepare",
    "stratified_take",
]
