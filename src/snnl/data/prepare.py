"""Prepare one dataset: load, split, adapt (``like``) and write it with its manifest."""

from __future__ import annotations

import shlex
from pathlib import Path
from typing import Any

import numpy as np

from snnl.data.adapt import adapt_images, adaptation_record
from snnl.data.config import dataset_options
from snnl.data.prepared import write_prepared
from snnl.data.registry import get_entry
from snnl.data.splits import make_splits
from snnl.errors import ConfigError


def _rebuild_command(name: str, out: Path, config_path: str | Path | None, like: str | None) -> str:
    parts = ["snnl", "prepare-data", "--dataset", name]
    if config_path is not None:
        parts += ["--config", str(config_path)]
    if like is not None:
        parts += ["--like", like]
    parts += ["--out", str(out)]
    return shlex.join(parts)


def effective_options(
    name: str, options: dict[str, Any], like: str | None, like_options: dict[str, Any] | None
) -> tuple[dict[str, Any], tuple[int, int, int] | None]:
    """(options as used, target shape or None). Noise is generated directly in ``like``'s shape."""
    if like is None:
        return options, None
    target = tuple(get_entry(like).native_shape(like_options or {}))
    if name == "noise":
        options = {**options, "shape": list(target)}
    return options, target  # type: ignore[return-value]


def build_splits(
    name: str, options: dict[str, Any], target: tuple[int, int, int] | None = None, like: str | None = None
) -> tuple[dict[str, tuple[np.ndarray, np.ndarray]], list[str], dict[str, Any], dict[str, Any] | None]:
    """(splits, classes, source, adaptation) for ``name``.

    With a ``target`` shape (from ``--like``), only the test split is kept, adapted to it.
    """
    data = get_entry(name).load(options)
    splits = make_splits(name, data, options)
    adaptation = None
    if target is not None:
        images, labels = splits["test"]
        from_shape = tuple(images.shape[1:])
        adapted, steps = adapt_images(images, target)
        splits = {"test": (adapted, labels)}
        adaptation = adaptation_record(like or "?", from_shape, target, steps)
    return splits, data.classes, data.source, adaptation


def prepare(
    name: str, out: str | Path, config_path: str | Path | None = None, like: str | None = None
) -> Path:
    """Write the prepared dataset ``name`` to ``out`` (see `snnl prepare-data --help`)."""
    get_entry(name)
    if like is not None:
        get_entry(like)
        if like == name:
            raise ConfigError(f"--like {like} names the dataset itself; omit --like or name another dataset")
    out = Path(out)
    options = dataset_options(name, config_path)
    like_options = dataset_options(like, config_path) if like is not None else None
    options, target = effective_options(name, options, like, like_options)
    splits, classes, source, adaptation = build_splits(name, options, target, like)
    first = next(iter(splits.values()))[0]
    import snnl

    manifest = {
        "name": name,
        "role": "outlier" if (like is not None or get_entry(name).outlier_only) else "in-distribution",
        "classes": list(classes),
        "shape": list(first.shape[1:]),
        "source": source,
        "options": options,
        "config_file": str(config_path) if config_path is not None else None,
        "adaptation": adaptation,
        "splits": {
            split: {"n": int(len(labels)), "label_counts": np.bincount(labels, minlength=len(classes)).tolist()}
            for split, (_, labels) in splits.items()
        },
        "rebuild": _rebuild_command(name, out, config_path, like),
        "snnl_version": snnl.__version__,
    }
    return write_prepared(out, splits, manifest)
