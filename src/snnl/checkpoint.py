"""Training checkpoints (written with snnl.atomic), their RNG states and their loading.

A training checkpoint is a plain dict of tensors and Python scalars/containers, so it
loads with ``torch.load(..., weights_only=True)`` (no pickled code). It is written
atomically: to a temporary file in the same folder, flushed and fsynced, then moved into
place with ``os.replace``; a job killed at any moment leaves either the old file or the
new one, never half of one.

Keys of a checkpoint (``FORMAT``, version ``VERSION``)::

    format, version, torch_version, finished, digest
    model_spec, model, optimizer, scheduler, regularizer
    step, epoch, batch_in_epoch, perm, total_steps
    rng: {torch, cuda, numpy, python, data}
    regime, seed, dataset, config, probe, wall_time_s, metrics (final checkpoint only)
    diverged (a diverged run's checkpoint: {step, epoch, reason}, and empty model, optimizer,
              scheduler and regularizer states; see snnl.training.outcome)

Use :func:`load_model` to get a ready model from a checkpoint (other parts of the
project: evaluation, attacks, figures).
"""

from __future__ import annotations

import hashlib
import pickle
import random
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch

from snnl.atomic import atomic_write
from snnl.errors import CheckpointError, is_diverged

FORMAT = "snnl-train-checkpoint"
VERSION = 2  # 2: every checkpoint carries a SHA-256 `digest` of its content


# ---------------------------------------------------------------------------------------
# atomic files


def atomic_torch_save(path: str | Path, obj: Any) -> None:
    """``torch.save`` atomically; a training checkpoint (``format`` FORMAT) gets its ``digest``."""
    if isinstance(obj, dict) and obj.get("format") == FORMAT:
        obj = {**obj, "digest": content_digest(obj)}
    atomic_write(path, lambda fh: torch.save(obj, fh))


def _feed(h, obj: Any) -> None:
    if isinstance(obj, torch.Tensor):
        t = obj.detach().cpu().contiguous().reshape(-1)
        h.update(f"T{t.dtype}{tuple(obj.shape)}:".encode())
        h.update(t.contiguous().view(torch.uint8).numpy().tobytes() if t.numel() else b"")
    elif isinstance(obj, dict):
        h.update(f"D{len(obj)}:".encode())
        for key in sorted(obj, key=repr):
            h.update(repr(key).encode())
            _feed(h, obj[key])
    elif isinstance(obj, (list, tuple)):
        h.update(f"L{len(obj)}:".encode())
        for item in obj:
            _feed(h, item)
    else:
        h.update(f"S{obj!r}:".encode())


def content_digest(ckpt: dict[str, Any]) -> str:
    """SHA-256 of everything in a checkpoint but its ``digest``: tensors by dtype, shape and
    bytes, containers in key order, scalars by repr. torch.load does not check the zip's CRCs,
    so without it a flipped bit in the weights would load silently."""
    h = hashlib.sha256()
    _feed(h, {k: v for k, v in ckpt.items() if k != "digest"})
    return h.hexdigest()


# ---------------------------------------------------------------------------------------
# RNG states as plain types (weights_only-loadable)


def capture_rng_state(data_generator: torch.Generator | None = None) -> dict[str, Any]:
    """Every RNG state the training loop may touch, as tensors and plain Python types."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state: dict[str, Any] = {
        "torch": torch.get_rng_state(),
        "cuda": [s for s in torch.cuda.get_rng_state_all()] if torch.cuda.is_available() else [],
        "numpy": {
            "name": str(np_state[0]),
            "keys": torch.from_numpy(np.asarray(np_state[1], dtype=np.int64)),
            "pos": int(np_state[2]),
            "has_gauss": int(np_state[3]),
            "cached_gaussian": float(np_state[4]),
        },
        "python": [int(py_state[0]), [int(v) for v in py_state[1]], py_state[2]],
    }
    if data_generator is not None:
        state["data"] = data_generator.get_state()
    return state


def restore_rng_state(state: dict[str, Any], data_generator: torch.Generator | None = None) -> None:
    torch.set_rng_state(state["torch"])
    if state.get("cuda") and torch.cuda.is_available():
        cuda = list(state["cuda"])
        if len(cuda) == torch.cuda.device_count():
            torch.cuda.set_rng_state_all(cuda)
    np_state = state["numpy"]
    np.random.set_state(
        (
            np_state["name"],
            np_state["keys"].numpy().astype(np.uint32),
            np_state["pos"],
            np_state["has_gauss"],
            np_state["cached_gaussian"],
        )
    )
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    if data_generator is not None and "data" in state:
        data_generator.set_state(state["data"])


# ---------------------------------------------------------------------------------------
# reading checkpoints


def load_weights_only(
    path: str | Path,
    map_location: str | torch.device = "cpu",
    *,
    what: str = "checkpoint",
    fix: str = "delete it and train again",
    pickled_fix: str = "Write checkpoints with `snnl train`, or re-save a trusted file as a plain dict",
) -> Any:
    """``torch.load(path, weights_only=True)``: tensors and plain containers only, never
    pickled code. A file holding pickled Python objects, or a corrupt or truncated one (garbage
    bytes included, which torch reports as a weights-only failure), raises
    :class:`CheckpointError` naming ``what`` and ``path`` and ending with ``pickled_fix`` or
    ``fix``. The caller checks that ``path`` exists."""
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as err:
        # torch reports garbage (not a pickle stream) as a weights-only failure too, with an
        # "Unsupported operand" opcode; only a refused class or function is a pickled object
        if "weights only" in str(err).lower() and "unsupported operand" not in str(err).lower():
            raise CheckpointError(
                f"{what} {path} contains pickled Python objects, which snnl refuses to load "
                f"(torch.load(weights_only=True)); only tensors and plain containers are read. {pickled_fix}"
            ) from err
        raise CheckpointError(
            f"{what} {path} is corrupt or truncated and cannot be read ({type(err).__name__}); {fix}"
        ) from err
    except (RuntimeError, EOFError, OSError, ValueError, zipfile.BadZipFile, KeyError) as err:
        raise CheckpointError(
            f"{what} {path} is corrupt or truncated and cannot be read ({type(err).__name__}: "
            f"{str(err).splitlines()[0] if str(err) else ''}); {fix}"
        ) from err


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a training checkpoint (``weights_only=True``), raising :class:`CheckpointError`
    with the file and the fix when it is missing, unreadable or not an snnl checkpoint."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint {path} does not exist; train one with `snnl train --out {path}`")
    ckpt = load_weights_only(path, map_location)
    if not isinstance(ckpt, dict) or ckpt.get("format") != FORMAT:
        raise CheckpointError(
            f"{path} is not an snnl training checkpoint (no format {FORMAT!r}); "
            "pass a file written by `snnl train`"
        )
    if ckpt.get("version") != VERSION:
        raise CheckpointError(
            f"checkpoint {path} has version {ckpt.get('version')!r}, this snnl reads version {VERSION}; "
            "retrain it with this version of snnl"
        )
    for key in ("model_spec", "model", "step", "digest"):
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} lacks `{key}`; it is incomplete, delete it and train again")
    if content_digest(ckpt) != ckpt["digest"]:
        raise CheckpointError(
            f"checkpoint {path} is corrupt: its content does not match the SHA-256 digest stored when it "
            "was written (a flipped bit, or an edited file); delete it and train again, or restore it "
            "(`dvc pull`, `dvc checkout`)"
        )
    return ckpt


def load_state_strict(module: torch.nn.Module, state: dict[str, Any], what: str, path: str | Path) -> None:
    """``module.load_state_dict(state)``, turning a mismatch into :class:`CheckpointError`."""
    try:
        module.load_state_dict(state, strict=True)
    except (RuntimeError, KeyError, ValueError) as err:
        first = str(err).strip().splitlines()
        raise CheckpointError(
            f"checkpoint {path}: its {what} does not fit this {type(module).__name__} "
            f"({first[0] if first else err}{' ...' if len(first) > 1 else ''}); "
            "it was written for another architecture or configuration"
        ) from err


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module, dict[str, Any]]:
    """The model stored in a checkpoint, rebuilt, loaded, moved to ``device`` and in eval mode,
    with the checkpoint dict (for ``metrics``, ``config``, ``regime``...).

    Raises:
        CheckpointError: the file is missing, corrupt or incompatible, or records a run that
            diverged (``snnl train --on-divergence record``), which holds no weights.
    """
    from snnl.models import model_from_spec

    ckpt = load_checkpoint(path, map_location="cpu")
    if is_diverged(ckpt):
        d = ckpt["diverged"]
        raise CheckpointError(f"checkpoint {path} records a run that diverged at step {d['step']} ({d['reason']}): "
                              "it holds no trained model; leave it out, or train the run again with a lower "
                              "`train.lr` or `train.alpha` (snnl train --fresh)")
    try:
        model = model_from_spec(ckpt["model_spec"])
    except Exception as err:  # noqa: BLE001 - any failure here means an incompatible spec
        raise CheckpointError(f"checkpoint {path}: cannot rebuild its model from {ckpt['model_spec']!r}: {err}") from err
    load_state_strict(model, ckpt["model"], "model weights", path)
    model.to(device).eval()
    return model, ckpt


def load_trained(path: str | Path, device: str | torch.device = "cpu") -> tuple[torch.nn.Module | None, dict[str, Any]]:
    """:func:`load_model`, except that the checkpoint of a run that diverged gives ``(None,
    checkpoint)`` (its ``diverged``: {step, epoch, reason}), for readers that count such a run
    and leave it out (evaluation, figures).

    Raises:
        CheckpointError: as :func:`load_model`, for any other problem.
    """
    try:
        return load_model(path, device)
    except CheckpointError:
        ckpt = load_checkpoint(path, map_location="cpu")
        if is_diverged(ckpt):
            return None, ckpt
        raise
