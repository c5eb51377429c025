"""Resuming a run bit-exactly on CPU: what a checkpoint holds, whether it fits this run, loading it.

A checkpoint is the dict :func:`checkpoint_state` builds from a :class:`~snnl.training.loop.Trainer`:
weights, optimizer, schedule and temperatures, the loop's position (step, epoch, batch, the
epoch's permutation), the data generator's state, the run's identity (regime, seed, data
fingerprint, settings) and the probe records so far. ``OUT.resume`` holds the latest periodic one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch

from snnl.checkpoint import FORMAT, VERSION, capture_rng_state, load_checkpoint, load_state_strict, restore_rng_state
from snnl.errors import CheckpointError

# Settings that may change between a checkpoint and its resumption.
RESUMABLE_CHANGES = {"checkpoint_every", "eval_batch_size", "device", "threads"}
# What the data fingerprints of the checkpoint and of this run must agree on.
FINGERPRINT_KEYS = ("shape", "num_classes", "sizes", "train_sha1")
# What a resumable (periodic) checkpoint holds beyond the final one's weights.
RESUMABLE_KEYS = ("optimizer", "scheduler", "regularizer", "rng", "epoch", "batch_in_epoch", "perm", "config")


def resume_path(out: str | Path) -> Path:
    """The periodic checkpoint of the run whose final checkpoint is ``out``: ``OUT.resume``."""
    out = Path(out)
    return out.with_name(out.name + ".resume")


def resume_log_path(out: str | Path) -> Path:
    """The per-step CSV of a run in progress, next to its resume checkpoint: ``OUT.resume.csv``."""
    out = Path(out)
    return out.with_name(out.name + ".resume.csv")


def checkpoint_state(t, finished: bool = False, metrics: dict | None = None) -> dict[str, Any]:
    """The checkpoint of trainer ``t`` now (``finished``: the final one, with its ``metrics``)."""
    return {
        "format": FORMAT,
        "version": VERSION,
        "torch_version": str(torch.__version__),
        "finished": finished,
        "model_spec": t.model.spec,
        "model": t.model.state_dict(),
        "optimizer": t.optimizer.state_dict(),
        "scheduler": t.scheduler.state_dict(),
        "regularizer": t.regularizer.state_dict(),
        "step": t.step,
        "epoch": t.epoch,
        "batch_in_epoch": t.batch_in_epoch,
        "perm": t.perm,
        "total_steps": t.total_steps,
        "rng": capture_rng_state(t.generator),
        "regime": t.regime,
        "seed": t.seed,
        "dataset": t.fingerprint,
        "config": t.cfg.to_dict(),
        "probe": [dict(r) for r in t.probe_records],
        "wall_time_s": t.wall_time(),
        "resumed_at_steps": list(t.resumed_at),
        "metrics": metrics,
    }


def check_compatible(t, ckpt: dict[str, Any], path: Path) -> None:
    """Raise CheckpointError, listing every difference, unless ``ckpt`` was written by the same
    run as trainer ``t`` (regime, seed, settings but :data:`RESUMABLE_CHANGES`, data, model)."""
    problems = []
    if ckpt.get("regime") != t.regime:
        problems.append(f"regime {ckpt.get('regime')!r} (now {t.regime!r})")
    if ckpt.get("seed") != t.seed:
        problems.append(f"seed {ckpt.get('seed')!r} (now {t.seed})")
    old, new = ckpt.get("config") or {}, t.cfg.to_dict()
    for key in sorted(set(old) | set(new)):
        if key not in RESUMABLE_CHANGES and old.get(key) != new.get(key):
            problems.append(f"train.{key} {old.get(key)!r} (now {new.get(key)!r})")
    fp_old, fp_new = ckpt.get("dataset") or {}, t.fingerprint
    for key in FINGERPRINT_KEYS:
        if fp_old.get(key) != fp_new.get(key):
            problems.append(f"training data {key} {fp_old.get(key)!r} (now {fp_new.get(key)!r})")
    if ckpt.get("model_spec") != t.model.spec:
        problems.append(f"model {ckpt.get('model_spec')!r} (now {t.model.spec!r})")
    if problems:
        raise CheckpointError(
            f"cannot resume from {path}: it was written by a different run: " + "; ".join(problems)
            + f". Delete {path} (or pass --fresh) to start over, or restore the settings it was written with"
        )


def load_resume(t, path: Path) -> None:
    """Continue trainer ``t`` from the resume checkpoint ``path`` (checked with :func:`check_compatible`)."""
    ckpt = load_checkpoint(path, map_location="cpu")
    for key in RESUMABLE_KEYS:
        if key not in ckpt:
            raise CheckpointError(f"checkpoint {path} lacks `{key}`: it is not a resumable training checkpoint; delete it")
    check_compatible(t, ckpt, path)
    load_state_strict(t.model, ckpt["model"], "model weights", path)
    load_state_strict(t.regularizer, ckpt["regularizer"], "temperatures", path)
    try:
        t.optimizer.load_state_dict(ckpt["optimizer"])
        t.scheduler.load_state_dict(ckpt["scheduler"])
    except (ValueError, KeyError, RuntimeError) as err:
        raise CheckpointError(f"checkpoint {path}: its optimizer or schedule state does not fit ({err}); delete it") from err
    restore_rng_state(ckpt["rng"], t.generator)
    t.step, t.epoch, t.batch_in_epoch = int(ckpt["step"]), int(ckpt["epoch"]), int(ckpt["batch_in_epoch"])
    t.perm = ckpt["perm"]
    t.probe_records = [dict(r) for r in ckpt.get("probe", [])]
    t.wall_before = float(ckpt.get("wall_time_s", 0.0))
    t.resumed_at = list(ckpt.get("resumed_at_steps", [])) + [t.step]
    t.last_checkpoint = (path, t.step)
