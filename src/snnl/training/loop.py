"""The training loop: baseline (CE) and entangled (CE - alpha * sum SNNL) models, resumable.

Short enough to read in one sitting: data tensors live on the device; one CPU generator
drives the data order and augmentation; each step logs CE, the per-layer SNNL and the
online temperatures; at log-spaced steps a fixed probe batch gives the per-layer SNNL at
the optimal temperature; a checkpoint every ``checkpoint_every`` steps (atomic) holds
everything needed to continue bit-exactly on CPU.

Files of one run (``out`` = the final checkpoint path):
    out                  final checkpoint (written once, at the end; ``finished: True``)
    out + ".resume"      the latest periodic checkpoint; removed after a successful end
    out + ".resume.csv"  the per-step CSV while training runs (truncated to the checkpoint's
                         step on resume); copied to ``log`` at the end, then removed
    log                  per-step CSV (written at the end: Snakemake deletes a killed job's
                         outputs before rerunning it, so rows logged before the resume
                         checkpoint must live next to it)
    metrics              final metrics JSON
    probe_log            optional CSV of the probe records (step, layer, snnl, T)
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from snnl.atomic import atomic_write_bytes, atomic_write_json, atomic_write_text
from snnl.checkpoint import (
    FORMAT,
    VERSION,
    atomic_torch_save,
    capture_rng_state,
    load_checkpoint,
    load_state_strict,
    restore_rng_state,
)
from snnl.devices import resolve_device
from snnl.errors import CheckpointError, ConfigError, TrainingError
from snnl.models import build_model
from snnl.regimes import ENTANGLED, REGIMES
from snnl.regularizer import EntanglementRegularizer
from snnl.training import probe as probe_mod
from snnl.training.batches import augment, to_unit
from snnl.training.config import TrainConfig
from snnl.training.data import TrainData, channel_stats
from snnl.training.optim import make_optimizer, make_scheduler

# Config keys that may change between a checkpoint and its resumption.
RESUMABLE_CHANGES = {"checkpoint_every", "eval_batch_size", "device", "threads"}
# Metrics that differ between runs with identical numbers (timing, bookkeeping).
RUN_SPECIFIC_METRICS = {"wall_time_s", "steps_per_second", "resumed_at_steps", "threads", "device"}


# ---------------------------------------------------------------------------------------
# the trainer


@dataclass
class TrainResult:
    metrics: dict[str, Any]
    model: nn.Module
    regularizer: EntanglementRegularizer
    probe: list[dict] = field(default_factory=list)


def resume_path(out: str | Path) -> Path:
    out = Path(out)
    return out.with_name(out.name + ".resume")


def resume_log_path(out: str | Path) -> Path:
    """The per-step CSV of a run in progress, next to its resume checkpoint."""
    out = Path(out)
    return out.with_name(out.name + ".resume.csv")


class Trainer:
    """One training run. ``callbacks`` are called as ``cb(trainer)`` after every step
    (and after its checkpoint, if one was due): a hook for tests and tools."""

    def __init__(
        self,
        cfg: TrainConfig,
        data: TrainData,
        *,
        regime: str,
        seed: int,
        out: str | Path | None = None,
        log: str | Path | None = None,
        metrics: str | Path | None = None,
        probe_log: str | Path | None = None,
        resume: bool = True,
        progress: bool = True,
        callbacks: Sequence[Callable[["Trainer"], None]] = (),
        stream=None,
    ):
        if regime not in REGIMES:
            raise ConfigError(f"unknown regime {regime!r}; use {' or '.join(REGIMES)}")
        self.cfg, self.data, self.regime, self.seed = cfg, data, regime, int(seed)
        self.out = Path(out) if out is not None else None
        self.log_path = Path(log) if log is not None else None
        self.metrics_path = Path(metrics) if metrics is not None else None
        self.probe_log_path = Path(probe_log) if probe_log is not None else None
        self.resume, self.progress, self.callbacks = resume, progress, list(callbacks)
        self.stream = stream if stream is not None else sys.stderr
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device, "train.device")
        self.bf16 = bool(cfg.bf16 and self.device.type == "cuda")

        # data on the device
        x, y = data.train
        self.fingerprint = data.fingerprint()
        self.n_train = x.shape[0]
        self.batch_size = min(cfg.batch_size, self.n_train)
        self.num_classes = data.num_classes
        if self.batch_size <= self.num_classes:
            raise ConfigError(
                f"`train.batch_size` is {self.batch_size} (train split of {self.n_train}) for {self.num_classes} classes; "
                f"the SNNL needs a same-class pair in every batch, which only batch_size > {self.num_classes} guarantees"
            )
        self.x_train, self.y_train = x.to(self.device), y.to(self.device)
        self.steps_per_epoch = self.n_train // self.batch_size
        self.total_steps = cfg.epochs * self.steps_per_epoch
        if cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, cfg.max_steps)

        # model, regularizer, optimizer, schedule
        torch.manual_seed(self.seed)
        self.model = build_model(cfg.model, data.shape, self.num_classes, **cfg.model_args)
        mean, std = channel_stats(x)
        self.model.normalize.set_stats(mean, std)
        self.model.to(self.device)
        self.channels_last = bool(cfg.channels_last and len(data.shape) == 3)
        if self.channels_last:  # NHWC: oneDNN's and cuDNN's fast convolution layout
            self.model.to(memory_format=torch.channels_last)
        self.layers = list(getattr(self.model, "hidden_layers")) if cfg.layers == "all" else list(cfg.layers)
        self.alpha = cfg.alpha if regime == ENTANGLED else 0.0
        self.regularizer = EntanglementRegularizer(
            self.model,
            layers=self.layers,
            alpha=self.alpha,
            temperature="online",
            initial_temperature=cfg.initial_temperature,
            temperature_lr=cfg.temperature_lr,
            distance=cfg.distance,
            pool=cfg.pool,
        ).to(self.device)
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.scheduler = make_scheduler(cfg, self.optimizer, self.total_steps, self.steps_per_epoch)
        self.generator = torch.Generator().manual_seed(self.seed)

        # probe batch: a fixed random subset of the probe split (its own generator)
        self.probe_split = cfg.probe_split if getattr(data, cfg.probe_split) is not None else "train"
        px, py = getattr(data, self.probe_split)
        k = min(cfg.probe_size, px.shape[0])
        pick = torch.randperm(px.shape[0], generator=torch.Generator().manual_seed(self.seed + 7919))[:k]
        self.probe_x, self.probe_y = px[pick].to(self.device), py[pick].to(self.device)
        self.probe_at = set(probe_mod.probe_steps(self.total_steps, cfg.probe_points)) if k >= 2 else set()
        self.probe_layers = probe_mod.probe_layers(self.model)

        # loop state
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.perm: torch.Tensor | None = None
        self.probe_records: list[dict] = []
        self.wall_before = 0.0
        self.resumed_at: list[int] = []
        self.last_checkpoint: tuple[Path, int] | None = None
        self.log_columns = (
            ["step", "epoch", "lr", "ce", "total"]
            + [f"snnl/{n}" for n in self.layers]
            + [f"T/{n}" for n in self.layers]
            + ["batch_accuracy"]
        )
        self._log_fh = None
        self._writer = None
        self._first_bad: torch.Tensor | None = None  # the first non-finite step's flags (on the device)

    # -- helpers --------------------------------------------------------------------

    def _say(self, msg: str) -> None:
        if self.progress:
            tqdm.write(msg, file=self.stream)

    def _autocast(self):
        if self.bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    # -- checkpoints ----------------------------------------------------------------

    def state(self, finished: bool = False, metrics: dict | None = None) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "version": VERSION,
            "torch_version": str(torch.__version__),
            "finished": finished,
            "model_spec": self.model.spec,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "regularizer": self.regularizer.state_dict(),
            "step": self.step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "perm": self.perm,
            "total_steps": self.total_steps,
            "rng": capture_rng_state(self.generator),
            "regime": self.regime,
            "seed": self.seed,
            "dataset": self.fingerprint,
            "config": self.cfg.to_dict(),
            "probe": [dict(r) for r in self.probe_records],
            "wall_time_s": self.wall_before + (time.perf_counter() - self._t0),
            "resumed_at_steps": list(self.resumed_at),
            "metrics": metrics,
        }

    def _check_compatible(self, ckpt: dict[str, Any], path: Path) -> None:
        problems = []
        if ckpt.get("regime") != self.regime:
            problems.append(f"regime {ckpt.get('regime')!r} (now {self.regime!r})")
        if ckpt.get("seed") != self.seed:
            problems.append(f"seed {ckpt.get('seed')!r} (now {self.seed})")
        old = ckpt.get("config") or {}
        new = self.cfg.to_dict()
        for key in sorted(set(old) | set(new)):
            if key not in RESUMABLE_CHANGES and old.get(key) != new.get(key):
                problems.append(f"train.{key} {old.get(key)!r} (now {new.get(key)!r})")
        fp_old, fp_new = ckpt.get("dataset") or {}, self.fingerprint
        for key in ("shape", "num_classes", "sizes", "train_sha1"):
            if fp_old.get(key) != fp_new.get(key):
                problems.append(f"training data {key} {fp_old.get(key)!r} (now {fp_new.get(key)!r})")
        if ckpt.get("model_spec") != self.model.spec:
            problems.append(f"model {ckpt.get('model_spec')!r} (now {self.model.spec!r})")
        if problems:
            raise CheckpointError(
                f"cannot resume from {path}: it was written by a different run: " + "; ".join(problems)
                + f". Delete {path} (or pass --fresh) to start over, or restore the settings it was written with"
            )

    def _load(self, path: Path) -> None:
        ckpt = load_checkpoint(path, map_location="cpu")
        for key in ("optimizer", "scheduler", "regularizer", "rng", "epoch", "batch_in_epoch", "perm", "config"):
            if key not in ckpt:
                raise CheckpointError(f"checkpoint {path} lacks `{key}`: it is not a resumable training checkpoint; delete it")
        self._check_compatible(ckpt, path)
        load_state_strict(self.model, ckpt["model"], "model weights", path)
        load_state_strict(self.regularizer, ckpt["regularizer"], "temperatures", path)
        try:
            self.optimizer.load_state_dict(ckpt["optimizer"])
            self.scheduler.load_state_dict(ckpt["scheduler"])
        except (ValueError, KeyError, RuntimeError) as err:
            raise CheckpointError(f"checkpoint {path}: its optimizer or schedule state does not fit ({err}); delete it") from err
        restore_rng_state(ckpt["rng"], self.generator)
        self.step, self.epoch, self.batch_in_epoch = int(ckpt["step"]), int(ckpt["epoch"]), int(ckpt["batch_in_epoch"])
        self.perm = ckpt["perm"]
        self.probe_records = [dict(r) for r in ckpt.get("probe", [])]
        self.wall_before = float(ckpt.get("wall_time_s", 0.0))
        self.resumed_at = list(ckpt.get("resumed_at_steps", [])) + [self.step]
        self.last_checkpoint = (path, self.step)
        self._say(f"resumed from {path} at step {self.step}/{self.total_steps}")

    def _save_resume(self) -> None:
        assert self.out is not None
        self._flush_log()
        self._check_weights()
        path = resume_path(self.out)
        atomic_torch_save(path, self.state())
        self.last_checkpoint = (path, self.step)

    # -- the per-step CSV log -----------------------------------------------------

    def _log_work_path(self) -> Path | None:
        """Where rows go while training runs: next to the resume checkpoint when there is one."""
        if self.log_path is None:
            return None
        return resume_log_path(self.out) if self.out is not None else self.log_path

    def _open_log(self, keep_upto: int | None) -> None:
        work = self._log_work_path()
        if work is None:
            return
        header = ",".join(self.log_columns)
        rows: list[str] = []
        # the rows before the resume: next to the resume checkpoint, else (a run by an older
        # version) in the log itself
        source = next((p for p in (work, self.log_path) if p.exists()), None) if keep_upto else None
        if keep_upto:
            lines = source.read_text().splitlines() if source is not None else []
            if lines and lines[0] == header:
                for line in lines[1:]:
                    parts = line.split(",")
                    if len(parts) == len(self.log_columns) and parts[0].isdigit() and int(parts[0]) <= keep_upto:
                        rows.append(line)
            expected = sum(1 for step in range(1, keep_upto + 1) if self.is_log_step(step))
            if len(rows) != expected:
                self._say(f"warning: {source or work} holds {len(rows)} rows for the {expected} logged steps before the resume")
        atomic_write_text(work, "\n".join([header] + rows) + "\n")
        self._log_fh = open(work, "a", newline="")
        self._writer = csv.writer(self._log_fh, lineterminator="\n")

    def _write_row(self, row: list[float], bar) -> None:
        """One row of the per-step log, and the progress bar's postfix (ce, last layer's SNNL)."""
        if self._writer is not None:
            self._writer.writerow([row[0], row[1], repr(row[2])] + [repr(v) for v in row[3:]])
        post = {"ce": f"{row[3]:.3f}"}
        if self.layers:
            post[f"snnl/{self.layers[-1]}"] = f"{row[4 + len(self.layers)]:.3f}"
        bar.set_postfix(post, refresh=False)

    def _flush_log(self) -> None:
        if self._log_fh is not None:
            self._log_fh.flush()
            os.fsync(self._log_fh.fileno())

    def _close_log(self) -> None:
        if self._log_fh is not None:
            self._flush_log()
            self._log_fh.close()
            self._log_fh = self._writer = None

    # -- probe and evaluation -------------------------------------------------------

    def _probe(self) -> None:
        with self.regularizer.paused():
            records = probe_mod.measure(
                self.model, self.probe_x, self.probe_y, self.probe_layers, self.cfg.eval_batch_size, self._autocast()
            )
        for r in records:
            self.probe_records.append({"step": self.step, "epoch": self.step / max(self.steps_per_epoch, 1), **r})
        if self.probe_log_path is not None:
            buf = io.StringIO()
            w = csv.writer(buf, lineterminator="\n")
            w.writerow(["step", "epoch", "layer", "snnl", "temperature", "at_boundary"])
            for r in self.probe_records:
                w.writerow([r["step"], f"{r['epoch']:.6g}", r["layer"], repr(r["snnl"]), repr(r["temperature"]), int(r["at_boundary"])])
            atomic_write_text(self.probe_log_path, buf.getvalue())
        summary = " ".join(f"{r['layer']}={r['snnl']:.3f}" for r in records)
        self._say(f"probe step {self.step}: SNNL at optimal T: {summary}")

    @torch.no_grad()
    def evaluate(self, split: str) -> dict[str, float] | None:
        """Accuracy and mean CE of the model (eval mode) on a split, or None if absent."""
        pair = getattr(self.data, split)
        if pair is None or pair[0].shape[0] == 0:
            return None
        images, labels = pair
        was_training = self.model.training
        self.model.eval()
        correct, loss = 0, 0.0
        bs = self.cfg.eval_batch_size
        try:
            for start in range(0, images.shape[0], bs):
                x = to_unit(images[start : start + bs].to(self.device))
                y = labels[start : start + bs].to(self.device)
                with self._autocast(), self.regularizer.paused():
                    logits = self.model(x)
                correct += int((logits.argmax(1) == y).sum())
                loss += float(F.cross_entropy(logits.float(), y, reduction="sum"))
        finally:
            self.model.train(was_training)
        n = images.shape[0]
        return {"accuracy": correct / n, "loss": loss / n}

    # -- the loop ---------------------------------------------------------------------

    def _stop(self, at: int, what: str) -> TrainingError:
        """The error that stops training at step ``at`` because of ``what``, with the last
        good checkpoint and the fix."""
        if self.last_checkpoint is not None:
            path, step = self.last_checkpoint
            good = f"The last good checkpoint, {path} (step {step}), is intact; "
        else:
            good = "No checkpoint was written yet; "
        return TrainingError(
            f"training stopped at step {at} (epoch {self.epoch}): {what}. {good}"
            f"lower `train.lr`{' or `train.alpha`' if self.alpha else ''} and run again"
            + (" to resume" if self.last_checkpoint is not None else "")
        )

    @torch.no_grad()
    def _diagnose(self, x: torch.Tensor) -> str:
        """Which layer broke: the first (hidden layers, then the logits) whose weights, or
        output on the failing batch ``x``, hold a NaN or inf; else the largest output."""
        from snnl.layers import capture

        modules = dict(self.model.named_modules())
        names = [n for n in probe_mod.probe_layers(self.model) if n in modules]
        for name in names:
            if not all(bool(torch.isfinite(p).all()) for p in modules[name].parameters()):
                return f"the weights of layer `{name}` are not finite"
        with capture(self.model, names) as outputs, self._autocast(), self.regularizer.paused():
            self.model(x)
        largest = ("", 0.0)
        for name in names:
            h = outputs[name][-1].float()
            if not bool(torch.isfinite(h).all()):
                return f"layer `{name}` is the first whose output is not finite"
            size = float(h.abs().max()) if h.numel() else 0.0
            largest = max(largest, (name, size), key=lambda t: t[1])
        return f"every layer's output is finite, the largest is {largest[1]:.3g} (layer `{largest[0]}`)"

    def _check_weights(self) -> None:
        """Before a checkpoint is written: the update just made left every weight finite
        (one host read for all of them)."""
        named = list(self.model.named_parameters())
        finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist() if named else []
        for (name, _), ok in zip(named, finite):
            if not ok:
                raise self._stop(self.step, f"the update of step {self.step} made the weights `{name}` not finite")

    def next_batch(self) -> tuple[torch.Tensor, torch.Tensor]:
        """The epoch's next minibatch (augmented images, labels); draws the epoch's permutation
        first when there is none. The caller advances ``batch_in_epoch``."""
        cfg = self.cfg
        if self.perm is None:
            self.perm = torch.randperm(self.n_train, generator=self.generator)
            self.batch_in_epoch = 0
        b = self.batch_in_epoch
        idx = self.perm[b * self.batch_size : (b + 1) * self.batch_size].to(self.device)
        x = augment(to_unit(self.x_train[idx]), cfg.augmentation, cfg.crop_padding, self.generator)
        if self.channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        return x, self.y_train[idx]

    def is_log_step(self, step: int) -> bool:
        """Whether step ``step`` (1-based) writes a row of the per-step log."""
        return step % self.cfg.log_every == 0 or step == self.total_steps

    def _is_checkpoint_step(self, step: int) -> bool:
        every = self.cfg.checkpoint_every
        return self.out is not None and bool(every) and step % every == 0 and step < self.total_steps

    def _forward(self, x: torch.Tensor, y: torch.Tensor, measure: bool):
        """Logits, the objective, the loss terms and the temperatures of one batch.

        ``measure=False`` (baseline steps that log nothing): plain cross-entropy, with the
        regularizer's hooks paused, so the step costs what a CE-only step costs. The
        objective is the same number either way (the baseline's alpha is 0)."""
        with self._autocast():
            if measure:
                logits = self.model(x)
                out = self.regularizer(logits, y)
                terms = [out.cross_entropy, *(out.snnl[n] for n in self.layers), out.total]
                return logits, out.total, terms, [out.temperature[n] for n in self.layers]
            with self.regularizer.paused():
                logits = self.model(x)
            ce = F.cross_entropy(logits, y)
            return logits, ce, [ce], []

    def _note_non_finite(self, step: int, terms: list[torch.Tensor]) -> None:
        """Remember, on the device (no sync), the first step whose loss terms were not all
        finite, with its values: (ce, SNNL per layer, total). A step that measured only
        the cross-entropy (baseline, unlogged) fills the SNNL slots with NaN flags off."""
        n = len(self.layers) + 2
        values = torch.stack([t.detach().float() for t in terms])
        if self._first_bad is None:
            dev = values.device
            self._ce_slots = torch.zeros(n, dtype=torch.bool, device=dev)
            self._ce_slots[0] = self._ce_slots[-1] = True
            self._first_bad = torch.zeros(n, dtype=torch.bool, device=dev)
            self._first_bad_values = torch.zeros(n, dtype=torch.float32, device=dev)
            self._first_bad_step = torch.zeros((), dtype=torch.int64, device=dev)
        if values.shape[0] != n:  # cross-entropy only: it is also the total
            values = torch.where(self._ce_slots, values[0], torch.full_like(self._first_bad_values, float("nan")))
            flags = self._ce_slots & ~torch.isfinite(values)
        else:
            flags = ~torch.isfinite(values)
        new = flags.any() & ~self._first_bad.any()
        self._first_bad = torch.where(new, flags, self._first_bad)
        self._first_bad_values = torch.where(new, values, self._first_bad_values)
        self._first_bad_step = torch.where(new, torch.full_like(self._first_bad_step, step), self._first_bad_step)

    def _read_back(self, step: int, x: torch.Tensor, logged: tuple | None) -> list[float] | None:
        """The one host read of a logged (or checkpoint) step: the row's values and the
        first non-finite step since the start, if any. Raises the stopping
        :class:`TrainingError` when there was one."""
        n = len(self.layers) + 2
        parts = [self._first_bad.double(), self._first_bad_values.double(), self._first_bad_step.double().reshape(1)]
        if logged is not None:
            terms, acc, temps = logged
            parts += [torch.stack([t.detach().float().double() for t in terms]), acc.double().reshape(1)]
            parts += [torch.stack([t.double() for t in temps])] if temps else []
        values = torch.cat(parts).tolist()
        flags, bad_values, bad_step, values = values[:n], values[n : 2 * n], int(values[2 * n]), values[2 * n + 1 :]
        if any(flags):
            self._raise_non_finite(step, bad_step, flags, bad_values, x)
        return values if logged is not None else None

    def _raise_non_finite(self, step: int, bad_step: int, flags: list[float], values: list[float], x: torch.Tensor):
        names = [("cross-entropy", None)] + [("SNNL", n) for n in self.layers] + [("total loss", None)]
        index = next(i for i, bad in enumerate(flags) if bad)
        (term, layer), value = names[index], values[index]
        where = f" of layer `{layer}`" if layer else ""
        key = "snnl/" + layer if layer else ("ce" if term == "cross-entropy" else "total")
        read = "" if bad_step == step else f", read back at step {step}"
        raise self._stop(bad_step, f"the {term}{where} is {value} (term `{key}`{read}); {self._diagnose(x)}")

    def train_step(self) -> list[float] | None:
        """One optimisation step on the next minibatch. Returns the logged row's values on
        a log step (see :meth:`is_log_step`), else None; only log and checkpoint steps
        read anything back from the device."""
        x, y = self.next_batch()
        step = self.step + 1
        log = self.is_log_step(step)
        self.model.train()
        logits, total, terms, temps = self._forward(x, y, measure=log or self.alpha != 0.0)
        self._note_non_finite(step, terms)
        logged = None
        if log:
            logged = (terms, (logits.detach().argmax(1) == y).float().mean(), temps)
        lr = self.optimizer.param_groups[0]["lr"]
        self.optimizer.zero_grad(set_to_none=True)
        total.backward()
        try:
            self.optimizer.step()
        except RuntimeError as err:  # e.g. Adam's lr / bias correction beyond float range
            if "overflow" not in str(err):
                raise
            raise self._stop(step, f"the optimizer's update overflowed at lr {lr:g} ({err})") from None
        self.scheduler.step()
        values = None
        if log or self._is_checkpoint_step(step):
            values = self._read_back(step, x, logged)
        epoch = self.epoch
        self.step = step
        self.batch_in_epoch += 1
        if self.batch_in_epoch >= self.steps_per_epoch:
            self.epoch += 1
            self.perm = None
            self.batch_in_epoch = 0
        if values is None:
            return None
        n = len(self.layers)
        ce, snnl, total_v, acc, temp_v = values[0], values[1 : n + 1], values[n + 1], values[n + 2], values[n + 3 :]
        return [self.step, epoch, lr, ce, total_v, *snnl, *temp_v, acc]

    def run(self) -> TrainResult:
        self._t0 = time.perf_counter()
        resumed = False
        if self.out is not None and self.resume and resume_path(self.out).exists():
            self._load(resume_path(self.out))
            resumed = True
        self._open_log(self.step if resumed else None)
        try:
            if 0 in self.probe_at and not any(r["step"] == 0 for r in self.probe_records):
                self._probe()
            bar = tqdm(
                total=self.total_steps,
                initial=self.step,
                desc=f"train {self.data.name} {self.regime} seed{self.seed}",
                unit="step",
                disable=not self.progress,
                file=self.stream,
                mininterval=1.0,
                dynamic_ncols=True,
            )
            with bar:
                while self.step < self.total_steps:
                    row = self.train_step()
                    bar.update(1)
                    if row is not None:
                        self._write_row(row, bar)
                    if self.step in self.probe_at:
                        self._probe()
                    if (
                        self.out is not None
                        and self.cfg.checkpoint_every
                        and self.step % self.cfg.checkpoint_every == 0
                        and self.step < self.total_steps
                    ):
                        self._save_resume()
                    for cb in self.callbacks:
                        cb(self)
            self._check_weights()
            metrics = self._final_metrics()
            if self.out is not None:
                atomic_torch_save(self.out, self.state(finished=True, metrics=metrics))
            self._close_log()
            work = self._log_work_path()
            if work is not None and work != self.log_path:
                atomic_write_bytes(self.log_path, work.read_bytes())
            if self.metrics_path is not None:
                atomic_write_json(self.metrics_path, metrics)
            if self.out is not None:
                for path in (resume_path(self.out), resume_log_path(self.out)):  # the resume files last
                    try:
                        path.unlink()
                    except FileNotFoundError:
                        pass
        finally:
            self._close_log()
        return TrainResult(metrics, self.model, self.regularizer, list(self.probe_records))

    def _final_metrics(self) -> dict[str, Any]:
        wall = self.wall_before + (time.perf_counter() - self._t0)
        evals = {s: self.evaluate(s) for s in ("train", "val", "test")}
        final_probe = {r["layer"]: {"snnl": r["snnl"], "temperature": r["temperature"], "at_boundary": r["at_boundary"]}
                       for r in self.probe_records if r["step"] == self.step}
        sizes = self.fingerprint["sizes"]
        return {
            "dataset": self.data.name,
            "regime": self.regime,
            "seed": self.seed,
            "model": self.cfg.model,
            "model_spec": self.model.spec,
            "steps": self.step,
            "epochs": self.step / max(self.steps_per_epoch, 1),
            "batch_size": self.batch_size,
            "alpha": self.alpha,
            "layers": self.layers,
            **{f"{s}_accuracy": (e["accuracy"] if e else None) for s, e in evals.items()},
            **{f"{s}_loss": (e["loss"] if e else None) for s, e in evals.items()},
            "n_train": sizes["train"],
            "n_val": sizes["val"],
            "n_test": sizes["test"],
            "temperatures": {n: self.regularizer.temperatures[n.replace(".", "__")].value for n in self.layers},
            "probe_split": self.probe_split,
            "probe_size": int(self.probe_x.shape[0]),
            "snnl_optimal": final_probe,
            "probe": [dict(r) for r in self.probe_records],
            "device": str(self.device),
            "bf16": self.bf16,
            "threads": torch.get_num_threads(),
            "wall_time_s": wall,
            "steps_per_second": (self.step / wall) if wall > 0 else None,
            "resumed_at_steps": list(self.resumed_at),
            "torch_version": str(torch.__version__),
            "config": self.cfg.to_dict(),
        }


def train(cfg: TrainConfig, data: TrainData, *, regime: str, seed: int, **kwargs: Any) -> TrainResult:
    """Train one model; see :class:`Trainer` for the keyword arguments."""
    if not isinstance(data, TrainData):
        data = TrainData.from_prepared(data)
    return Trainer(cfg, data, regime=regime, seed=seed, **kwargs).run()
