"""Default places of original files. Every dataset's option defaults live with its entry in
the registry (``snnl.data.registry.DEFAULTS``), their types in ``snnl.data.config``."""

from __future__ import annotations

# Default root for files downloaded by torchvision, and the first place searched
# for already-present original files (relative to the working directory).
DEFAULT_RAW_ROOT = "data/raw"

# Where Debian's package `dataset-fashion-mnist` puts the original gzipped IDX files.
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
