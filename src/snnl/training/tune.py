"""Hyperparameter search with Optuna (our stand-in for the paper's Google Vizier).

Objective: validation accuracy of a model trained with the trial's parameters (the
test split is never looked at). Each regime has its own search space (``tune.space``):
by default the learning rate for ``baseline``; learning rate, alpha and the initial
temperature for ``entangled``. The sampler (TPE or random) is seeded, so a sequential
search is reproducible.

Equal budgets: every regime's study runs ``tune.n_trials`` trials (a pruned trial counts), each
trained for at most ``tune.epochs`` epochs and scored on the validation split after every epoch;
the pruner (``tune.pruner``: median by default, or Hyperband) stops a trial that falls behind
the earlier ones at the same epoch (docs/RESULTS.md, "Tuning with equal budgets").

Parallel search: ``workers > 1`` starts that many processes on this machine, sharing
one Optuna journal file; on a cluster, start several ``snnl tune --storage J.journal
--worker-id K`` jobs on a shared filesystem (each with its own K, so their samplers
differ), and they fill the same study until it has ``n_trials`` finished trials; then
``snnl tune --storage J.journal --summarize-only --out best.json`` writes the result.
The best parameters are written as JSON that ``snnl train --params`` accepts (:func:`read_params`).
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from pathlib import Path
from typing import Any

from snnl.atomic import atomic_write_json
from snnl.config_base import check
from snnl.errors import ConfigError, DataError, TrainingError
from snnl.regimes import REGIMES, TUNED_AS
from snnl.training.config import TrainConfig, TrainOverride, TuneConfig
from snnl.training.data import TrainData
from snnl.training.loop import train

OBJECTIVE = "val_accuracy"


def _optuna():
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna


def journal_storage(path: str | Path):
    """Optuna storage in a journal file (safe for several processes, also over NFS)."""
    _optuna()  # a clear error when optuna is missing
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return JournalStorage(JournalFileBackend(str(path)))


def suggest(trial, space: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """Draw the trial's parameters from ``space`` ({name: {low, high, log, int} | {choices}})."""
    params = {}
    for name, spec in space.items():
        if "choices" in spec:
            params[name] = trial.suggest_categorical(name, spec["choices"])
        elif spec.get("int"):
            params[name] = trial.suggest_int(name, int(spec["low"]), int(spec["high"]), log=bool(spec.get("log")))
        else:
            params[name] = trial.suggest_float(name, float(spec["low"]), float(spec["high"]), log=bool(spec.get("log")))
    return params


def _sampler(tune_cfg: TuneConfig, seed: int, worker_id: int):
    optuna = _optuna()
    base = tune_cfg.sampler_seed if tune_cfg.sampler_seed is not None else seed
    s = int(base) + int(worker_id)
    if tune_cfg.sampler == "random":
        return optuna.samplers.RandomSampler(seed=s)
    return optuna.samplers.TPESampler(seed=s)


def _pruner(tune_cfg: TuneConfig, train_cfg: TrainConfig):
    """The study's pruner on the per-epoch validation accuracy: median (after
    ``tune.pruner_startup`` complete trials, from the second epoch on), Hyperband, or none."""
    optuna = _optuna()
    if tune_cfg.pruner == "median":
        # epochs are reported as steps 1, 2, ...; Optuna judges every step >= n_warmup_steps
        return optuna.pruners.MedianPruner(n_startup_trials=tune_cfg.pruner_startup, n_warmup_steps=2)
    if tune_cfg.pruner == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=tune_cfg.epochs or train_cfg.epochs)
    return optuna.pruners.NopPruner()


class EpochReport:
    """A training callback that reports the validation accuracy after every epoch to the trial
    (``trial.report(accuracy, epoch)``) and stops the trial when the pruner says so."""

    def __init__(self, trial):
        self.trial, self.epoch = trial, 0

    def __call__(self, trainer) -> None:
        if trainer.epoch <= self.epoch:
            return
        from snnl.training.metrics import evaluate

        self.epoch = trainer.epoch
        trainer.check_weights()  # a broken model's accuracy is no number: the trial fails instead
        accuracy = evaluate(trainer, "val")["accuracy"]
        self.trial.report(accuracy, self.epoch)
        if self.trial.should_prune():
            raise _optuna().TrialPruned(f"validation accuracy {accuracy:.4f} after epoch {self.epoch}")


def _finished_states():
    optuna = _optuna()
    TS = optuna.trial.TrialState
    return (TS.COMPLETE, TS.FAIL, TS.PRUNED)


class Objective:
    """Train with the trial's parameters; return the validation accuracy."""

    def __init__(self, train_cfg: TrainConfig, tune_cfg: TuneConfig, data: TrainData, regime: str, seed: int):
        self.train_cfg, self.tune_cfg, self.data, self.regime, self.seed = train_cfg, tune_cfg, data, regime, seed
        self.space = tune_cfg.space[regime]

    def config_for(self, params: dict[str, Any]) -> TrainConfig:
        extra: dict[str, Any] = {}
        if self.tune_cfg.epochs is not None:
            extra["epochs"] = self.tune_cfg.epochs
        if self.tune_cfg.max_steps is not None:
            extra["max_steps"] = self.tune_cfg.max_steps
        return self.train_cfg.replace(where="tune trial", **extra, **params)

    def __call__(self, trial) -> float:
        params = suggest(trial, self.space)
        cfg = self.config_for(params)
        result = train(cfg, self.data, regime=self.regime, seed=self.seed, progress=False, callbacks=[EpochReport(trial)])
        m = result.metrics
        trial.set_user_attr("train_accuracy", m["train_accuracy"])
        trial.set_user_attr("steps", m["steps"])
        trial.set_user_attr("wall_time_s", m["wall_time_s"])
        value = m[OBJECTIVE]
        print(
            f"trial {trial.number}: {OBJECTIVE} {value:.4f} with "
            + ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()),
            file=sys.stderr,
            flush=True,
        )
        return value


def _optimize(
    train_cfg: TrainConfig,
    tune_cfg: TuneConfig,
    data: TrainData,
    regime: str,
    seed: int,
    storage: Any,
    study_name: str,
    n_trials: int,
    worker_id: int,
    threads: int | None,
    progress: bool,
) -> None:
    optuna = _optuna()
    if threads:
        import torch

        torch.set_num_threads(threads)
    study = optuna.create_study(
        study_name=study_name,
        storage=journal_storage(storage) if isinstance(storage, (str, Path)) else storage,
        direction="maximize",
        sampler=_sampler(tune_cfg, seed, worker_id),
        pruner=_pruner(tune_cfg, train_cfg),
        load_if_exists=True,
    )
    done = sum(1 for t in study.get_trials(deepcopy=False) if t.state in _finished_states())
    remaining = n_trials - done
    if remaining <= 0:
        return
    study.optimize(
        Objective(train_cfg, tune_cfg, data, regime, seed),
        n_trials=remaining,
        catch=(TrainingError,),
        callbacks=[optuna.study.MaxTrialsCallback(n_trials, states=_finished_states())],
        show_progress_bar=progress,
        gc_after_trial=True,
    )


def _worker(kwargs: dict[str, Any]) -> None:  # process entry point (must be importable)
    _optimize(**kwargs)


def _run_workers(common: dict[str, Any], workers: int, worker_id: int, threads: int) -> None:
    """:func:`_optimize` in ``workers`` spawned processes sharing the study's journal (worker ids
    ``worker_id``, ``worker_id + 1``, ...; ``threads`` each); TrainingError if any fails."""
    import torch.multiprocessing as mp

    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_worker, args=(dict(common, worker_id=worker_id + k, threads=threads, progress=False),))
             for k in range(workers)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    bad = [p.exitcode for p in procs if p.exitcode != 0]
    if bad:
        raise TrainingError(f"{len(bad)} of {workers} tuning workers failed (exit codes {bad}); see the messages above")


def summarize(study, regime: str, seed: int, dataset: str, tune_cfg: TuneConfig, storage: str | None) -> dict[str, Any]:
    """The JSON `snnl tune` writes: the best parameters (under ``params``) and every trial."""
    optuna = _optuna()
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == optuna.trial.TrialState.COMPLETE]
    if not complete:
        states = {}
        for t in trials:
            states[t.state.name] = states.get(t.state.name, 0) + 1
        raise TrainingError(
            f"study {study.study_name!r} has no completed trial ({states or 'no trials'}); "
            "see the messages above (e.g. non-finite losses: narrow `tune.space`)"
        )
    best = max(complete, key=lambda t: (t.value, -t.number))
    return {
        "dataset": dataset,
        "regime": regime,
        "seed": seed,
        "study": study.study_name,
        "storage": storage,
        "objective": OBJECTIVE,
        "direction": "maximize",
        "best_value": best.value,
        "best_trial": best.number,
        "params": {k: _plain(v) for k, v in best.params.items()},
        "n_trials": len(complete),
        "n_pruned": sum(1 for t in trials if t.state == optuna.trial.TrialState.PRUNED),
        "n_failed": sum(1 for t in trials if t.state == optuna.trial.TrialState.FAIL),
        "budget": tune_cfg.n_trials,
        "search_space": tune_cfg.space[regime],
        "tune": tune_cfg.to_dict(),
        "trials": [
            {"number": t.number, "state": t.state.name, "value": t.value, "epochs": len(t.intermediate_values),
             "params": {k: _plain(v) for k, v in t.params.items()}}
            for t in trials
        ],
    }


def read_params(path: str | Path, regime: str | None = None) -> dict[str, Any]:
    """Tuned parameters from the JSON :func:`tune` writes (``{"params": {...}}``) or a flat JSON
    mapping, each checked as a train setting; for ``snnl train --params``."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"parameters file {path} does not exist; write it with `snnl tune --out {path}`")
    try:
        obj = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ConfigError(f"parameters file {path} is not valid JSON: {err}") from err
    params = obj.get("params", obj) if isinstance(obj, dict) else None
    if not isinstance(params, dict):
        raise ConfigError(f"parameters file {path} must hold a JSON object (its parameters under `params`)")
    tuned = obj.get("regime") if "params" in obj else None
    wanted = TUNED_AS.get(regime, regime)  # e.g. official_our_scale trains with official's parameters
    if regime is not None and tuned is not None and tuned != wanted:
        raise ConfigError(f"parameters file {path} was tuned for regime `{tuned}`, but this run trains `{regime}`; "
                          f"pass the file tuned for `{wanted}`")
    check(TrainOverride, params, f"parameters file {path}")
    return dict(params)


def _plain(v: Any) -> Any:
    """numpy scalars -> Python scalars (JSON)."""
    return v.item() if hasattr(v, "item") else v


def tune(
    train_cfg: TrainConfig,
    tune_cfg: TuneConfig,
    data: TrainData,
    *,
    regime: str,
    seed: int,
    out: str | Path,
    storage: str | Path | None = None,
    study_name: str | None = None,
    n_trials: int | None = None,
    workers: int | None = None,
    worker_id: int = 0,
    summarize_only: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run (or join) the study for ``regime`` and write the best parameters to ``out`` (JSON)."""
    optuna = _optuna()
    if regime not in REGIMES:
        raise ConfigError(f"unknown regime {regime!r}; use {' or '.join(REGIMES)}")
    if regime in TUNED_AS:
        raise ConfigError(f"regime `{regime}` is not tuned: it trains with the parameters tuned for "
                          f"`{TUNED_AS[regime]}`; tune that regime instead")
    if data.val is None or data.val[0].shape[0] == 0:
        raise DataError(f"{data.name} has no validation split; tuning maximises validation accuracy and needs one")
    n_trials = n_trials if n_trials is not None else tune_cfg.n_trials
    workers = workers if workers is not None else tune_cfg.workers
    study_name = study_name or f"{data.name}-{regime}-seed{seed}"
    if summarize_only and storage is None:
        raise ConfigError("--summarize-only reads an existing study: pass its journal file with --storage")
    tmpdir = None
    if storage is None and workers > 1:
        tmpdir = tempfile.TemporaryDirectory(prefix="snnl-tune-")
        storage = Path(tmpdir.name) / "study.journal"
    try:
        if storage is None:
            store = optuna.storages.InMemoryStorage()
            study_storage: Any = store
        else:
            study_storage = str(storage)
        common = dict(
            train_cfg=train_cfg, tune_cfg=tune_cfg, data=data, regime=regime, seed=seed,
            storage=study_storage, study_name=study_name, n_trials=n_trials,
        )
        if not summarize_only and workers <= 1:
            _optimize(**common, worker_id=worker_id, threads=train_cfg.threads, progress=progress)
        elif not summarize_only:
            _run_workers(common, workers, worker_id, train_cfg.threads or max(1, (os.cpu_count() or 1) // workers))
        try:
            study = optuna.load_study(
                study_name=study_name,
                storage=journal_storage(study_storage) if isinstance(study_storage, str) else study_storage,
            )
        except KeyError:
            raise ConfigError(f"no study named {study_name!r} in {storage}; check --study and --storage") from None
        summary = summarize(study, regime, seed, data.name, tune_cfg, None if tmpdir or storage is None else str(storage))
        atomic_write_json(out, summary)
        return summary
    finally:
        if tmpdir is not None:
            tmpdir.cleanup()
