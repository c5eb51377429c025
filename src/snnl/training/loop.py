"""The training loop: baseline (CE) and entangled (CE - alpha * sum SNNL, our numerics or the
official code's: :mod:`snnl.regimes`) models, resumable.

Short enough to read in one sitting: data tensors live on the device; one CPU generator drives
the data order and augmentation; every ``log_every`` steps a row of the per-step log (CE, the
per-layer SNNL, the online temperatures: :mod:`~snnl.training.steplog`), the only steps that read
anything back from the device (:mod:`~snnl.training.guards` checks the other steps' losses on the
device); at log-spaced steps a fixed probe batch gives the per-layer SNNL at the optimal
temperature (:mod:`~snnl.training.probe`); a checkpoint every ``checkpoint_every`` steps
(atomic) holds everything needed to continue bit-exactly on CPU (:mod:`~snnl.training.resume`).

Files of one run (``out`` = the final checkpoint path):
    out                  final checkpoint (written once, at the end; ``finished: True``)
    out + ".resume"      the latest periodic checkpoint; removed after a successful end
    out + ".resume.csv"  the per-step CSV while training runs; copied to ``log`` at the end, then removed
    log                  per-step CSV
    metrics              final metrics JSON (:mod:`~snnl.training.metrics`)
    probe_log            optional CSV of the probe records (step, layer, snnl, T)
"""

from __future__ import annotations

import contextlib
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Sequence

import torch
import torch.nn.functional as F
from torch import nn
from tqdm import tqdm

from snnl.checkpoint import atomic_torch_save
from snnl.devices import resolve_device
from snnl.errors import ConfigError, DivergenceError, TrainingError
from snnl.layers import resolve_layers
from snnl.models import build_model, he_normal_fan_in_
from snnl.regimes import BASELINE, REGIMES
from snnl.regularizer import EntanglementRegularizer
from snnl.training import probe as probe_mod
from snnl.training.batches import augment, to_unit
from snnl.training.bonus import BONUS_KEYS, measure_bonus
from snnl.training.config import TrainConfig
from snnl.training.data import TrainData, channel_stats
from snnl.training.guards import NonFiniteWatch, diagnose, non_finite_weight, stop_error
from snnl.training.outcome import write_diverged, write_finished
from snnl.training.optim import make_optimizer, make_scheduler
from snnl.training.resume import checkpoint_state, load_resume, resume_log_path, resume_path
from snnl.training.steplog import StepLog, StepRow


@dataclass
class TrainResult:
    metrics: dict[str, Any]
    model: nn.Module
    regularizer: EntanglementRegularizer
    probe: list[dict] = field(default_factory=list)


class Trainer:
    """One training run. ``callbacks`` are called as ``cb(trainer)`` after every step
    (and after its checkpoint, if one was due): a hook for tests and tools. A run that diverges
    raises :class:`~snnl.errors.DivergenceError`, keeping its last resume checkpoint; with
    ``record_divergence`` it ends instead as a recorded diverged run (:mod:`snnl.training.outcome`)."""

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
        record_divergence: bool = False,
        progress: bool = True,
        callbacks: Sequence[Callable[["Trainer"], None]] = (),
        stream=None,
    ):
        if regime not in REGIMES:
            raise ConfigError(f"unknown regime {regime!r}; use {' or '.join(REGIMES)}")
        self.cfg, self.data, self.regime, self.seed = cfg, data, regime, int(seed)
        self.out = Path(out) if out is not None else None
        self.metrics_path = Path(metrics) if metrics is not None else None
        self.probe_log_path = Path(probe_log) if probe_log is not None else None
        self.resume, self.progress, self.callbacks = resume, progress, list(callbacks)
        self.record_divergence = record_divergence
        self.stream = stream if stream is not None else sys.stderr
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        self.device = resolve_device(cfg.device, "train.device")
        self.bf16 = bool(cfg.bf16 and self.device.type == "cuda")
        self._place_data(data)
        self._build_model(data)
        self._pick_probe_batch(data)

        # where the loop is (what a resume checkpoint restores)
        self.step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.perm: torch.Tensor | None = None
        self.probe_records: list[dict] = []
        self.wall_before = 0.0
        self.resumed_at: list[int] = []
        self.last_checkpoint: tuple[Path, int] | None = None
        log_path = Path(log) if log is not None else None
        self.steplog = StepLog(log_path, resume_log_path(self.out) if self.out is not None else log_path, self.layers)
        self.watch = NonFiniteWatch(self.layers)

    # -- setup ------------------------------------------------------------------------

    def _place_data(self, data: TrainData) -> None:
        """The training split on the device; the batch size, steps per epoch and in all."""
        x, y = data.train
        self.fingerprint = data.fingerprint()
        self.n_train = x.shape[0]
        self.batch_size = min(self.cfg.batch_size, self.n_train)
        self.num_classes = data.num_classes
        if self.batch_size <= self.num_classes:
            raise ConfigError(
                f"`train.batch_size` is {self.batch_size} (train split of {self.n_train}) for {self.num_classes} classes; "
                f"the SNNL needs a same-class pair in every batch, which only batch_size > {self.num_classes} guarantees"
            )
        self.x_train, self.y_train = x.to(self.device), y.to(self.device)
        self.steps_per_epoch = self.n_train // self.batch_size
        self.total_steps = self.cfg.epochs * self.steps_per_epoch
        if self.cfg.max_steps is not None:
            self.total_steps = min(self.total_steps, self.cfg.max_steps)

    def _build_model(self, data: TrainData) -> None:
        """The model (seeded), its regularizer, optimizer, schedule and the data generator."""
        cfg = self.cfg
        torch.manual_seed(self.seed)
        self.model = build_model(cfg.model, data.shape, self.num_classes, **cfg.model_args)
        if cfg.init == "he_normal":
            he_normal_fan_in_(self.model)
        # normalize off: the official demo's [0, 1] pixels (the layer stays, as the identity)
        mean, std = channel_stats(data.train[0]) if cfg.normalize else (0.0, 1.0)
        self.model.normalize.set_stats(mean, std)
        self.model.to(self.device)
        self.channels_last = bool(cfg.channels_last and len(data.shape) == 3)
        if self.channels_last:  # NHWC: oneDNN's and cuDNN's fast convolution layout
            self.model.to(memory_format=torch.channels_last)
        self.layers = resolve_layers(self.model, cfg.layers, key="train.layers")
        self.alpha = 0.0 if self.regime == BASELINE else cfg.alpha
        self.regularizer = EntanglementRegularizer(
            self.model,
            layers=self.layers,
            alpha=self.alpha,
            temperature=cfg.initial_temperature if cfg.temperature == "fixed" else cfg.temperature,
            numerics=cfg.numerics,
            initial_temperature=cfg.initial_temperature,
            temperature_lr=cfg.temperature_lr,
            distance=cfg.distance,
            pool=cfg.pool,
        ).to(self.device)
        self.optimizer = make_optimizer(cfg, self.model.parameters())
        self.scheduler = make_scheduler(cfg, self.optimizer, self.total_steps, self.steps_per_epoch)
        self.generator = torch.Generator().manual_seed(self.seed)

    def _pick_probe_batch(self, data: TrainData) -> None:
        """A fixed random subset of the probe split (its own generator), and the steps it is measured at."""
        cfg = self.cfg
        self.probe_split = cfg.probe_split if getattr(data, cfg.probe_split) is not None else "train"
        px, py = getattr(data, self.probe_split)
        k = min(cfg.probe_size, px.shape[0])
        pick = torch.randperm(px.shape[0], generator=torch.Generator().manual_seed(self.seed + 7919))[:k]
        self.probe_x, self.probe_y = px[pick].to(self.device), py[pick].to(self.device)
        self.probe_at = set(probe_mod.probe_steps(self.total_steps, cfg.probe_points)) if k >= 2 else set()
        self.probe_layers = probe_mod.probe_layers(self.model)

    # -- helpers ----------------------------------------------------------------------

    def _say(self, msg: str) -> None:
        if self.progress:
            tqdm.write(msg, file=self.stream)

    def _autocast(self):
        if self.bf16:
            return torch.autocast(device_type="cuda", dtype=torch.bfloat16)
        return contextlib.nullcontext()

    @contextlib.contextmanager
    def plain_forward(self):
        """The context of a forward pass outside the objective: autocast as in training, the
        regularizer's hooks paused."""
        with self._autocast(), self.regularizer.paused():
            yield

    def wall_time(self) -> float:
        """Seconds spent training, over every resumption."""
        return self.wall_before + (time.perf_counter() - self._t0)

    def _stop(self, at: int, what: str) -> DivergenceError:
        return stop_error(at, self.epoch, what, self.last_checkpoint, self.alpha)

    def check_weights(self) -> None:
        """Before a checkpoint, a probe or the final metrics: the last update left every weight finite."""
        name = non_finite_weight(self.model)
        if name is not None:
            raise self._stop(self.step, f"the update of step {self.step} made the weights `{name}` not finite")

    def _save_resume(self) -> None:
        assert self.out is not None
        self.steplog.flush()
        self.check_weights()
        path = resume_path(self.out)
        atomic_torch_save(path, checkpoint_state(self))
        self.last_checkpoint = (path, self.step)

    def _probe(self) -> None:
        self.check_weights()  # the last update may have broken them after its loss was measured
        with self.regularizer.paused():
            try:
                records = probe_mod.measure(
                    self.model, self.probe_x, self.probe_y, self.probe_layers, self.cfg.eval_batch_size, self._autocast()
                )
            except TrainingError as err:
                raise self._stop(self.step, f"after the update of step {self.step}, {err}") from None
        bonus = measure_bonus(self.model, self.regularizer, self.probe_x, self.probe_y, self.layers) \
            if self.regime != BASELINE else {}
        for r in records:
            extra = bonus.get(r["layer"], dict.fromkeys(BONUS_KEYS))
            self.probe_records.append({"step": self.step, "epoch": self.step / max(self.steps_per_epoch, 1), **r, **extra})
        if self.probe_log_path is not None:
            probe_mod.write_probe_log(self.probe_log_path, self.probe_records,
                                      {"dataset": self.data.name, "regime": self.regime, "seed": self.seed})
        summary = " ".join(f"{r['layer']}={r['snnl']:.3f}" for r in records)
        self._say(f"probe step {self.step}: SNNL at optimal T: {summary}")

    # -- one step ---------------------------------------------------------------------

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

    def _read_back(self, step: int, x: torch.Tensor, logged: tuple | None) -> list[float] | None:
        """The one host read of a logged (or checkpoint) step: the logged values (loss terms,
        batch accuracy, temperatures) and the first non-finite step since the start, if any.
        Raises the stopping :class:`~snnl.errors.DivergenceError` when there was one."""
        parts = self.watch.pending()
        if logged is not None:
            terms, acc, temps = logged
            parts += [torch.stack([t.detach().float().double() for t in terms]), acc.double().reshape(1)]
            parts += [torch.stack([t.double() for t in temps])] if temps else []
        read = torch.cat(parts).tolist()
        problem = self.watch.problem(read, step)
        if problem is not None:
            bad_step, what = problem
            raise self._stop(bad_step, f"{what}; {diagnose(self.model, x, self.plain_forward)}")
        return read[2 * self.watch.size + 1 :] if logged is not None else None

    def train_step(self) -> StepRow | None:
        """One optimisation step on the next minibatch. Returns its :class:`StepRow` on a log
        step (see :meth:`is_log_step`), else None; only log, checkpoint and probe steps read
        anything back from the device."""
        x, y = self.next_batch()
        step = self.step + 1
        log = self.is_log_step(step)
        self.model.train()
        logits, total, terms, temps = self._forward(x, y, measure=log or self.alpha != 0.0)
        self.watch.note(step, terms)
        logged = (terms, (logits.detach().argmax(1) == y).float().mean(), temps) if log else None
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
        # log, checkpoint and probe steps read the device anyway: a divergence is caught before them
        read = log or self._is_checkpoint_step(step) or step in self.probe_at
        values = self._read_back(step, x, logged) if read else None
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
        return StepRow(step, epoch, lr, values[0], values[n + 1], tuple(values[1 : n + 1]), tuple(values[n + 3 :]),
                       values[n + 2])

    # -- the run ----------------------------------------------------------------------

    def run(self) -> TrainResult:
        """Train to ``total_steps`` (from the resume checkpoint, if there is one and ``resume``),
        then write the final checkpoint, the log and the metrics, and remove the resume files."""
        self._t0 = time.perf_counter()
        resumed = self.out is not None and self.resume and resume_path(self.out).exists()
        if resumed:
            load_resume(self, resume_path(self.out))
            self._say(f"resumed from {resume_path(self.out)} at step {self.step}/{self.total_steps}")
        self.steplog.open(self.step if resumed else None, self.is_log_step, self._say)
        try:
            self._loop()
            metrics = write_finished(self)
        except DivergenceError as err:
            if not self.record_divergence:
                raise
            metrics = write_diverged(self, err)
            self._say(f"recorded as a diverged run: {err}")
        finally:
            self.steplog.close()
        return TrainResult(metrics, self.model, self.regularizer, list(self.probe_records))

    def _loop(self) -> None:
        if 0 in self.probe_at and not any(r["step"] == 0 for r in self.probe_records):
            self._probe()
        bar = tqdm(total=self.total_steps, initial=self.step, desc=f"train {self.data.name} {self.regime} seed{self.seed}",
                   unit="step", disable=not self.progress, file=self.stream, mininterval=1.0, dynamic_ncols=True)
        with bar:
            while self.step < self.total_steps:
                row = self.train_step()
                bar.update(1)
                if row is not None:
                    self.steplog.write(row)
                    post = {"ce": f"{row.ce:.3f}"}
                    if self.layers:
                        post[f"snnl/{self.layers[-1]}"] = f"{row.snnl[-1]:.3f}"
                    bar.set_postfix(post, refresh=False)
                if self.step in self.probe_at:
                    self._probe()
                if self._is_checkpoint_step(self.step):
                    self._save_resume()
                for cb in self.callbacks:
                    cb(self)


def train(cfg: TrainConfig, data: TrainData, *, regime: str, seed: int, **kwargs: Any) -> TrainResult:
    """Train one model; see :class:`Trainer` for the keyword arguments."""
    if not isinstance(data, TrainData):
        data = TrainData.from_prepared(data)
    return Trainer(cfg, data, regime=regime, seed=seed, **kwargs).run()
