"""Tuning with equal budgets (docs/RESULTS.md, "Tuning with equal budgets"): every regime's study runs
`tune.n_trials` trials, a pruned one counting against the budget, none longer than `tune.epochs`;
the median pruner prunes from the second epoch on; official_our_scale is not tuned but takes official's
parameters."""

from __future__ import annotations

import json

import optuna
import pytest

from snnl.errors import ConfigError, DivergenceError
from snnl.training import TrainData, read_params, train_config, tune, tune_config
from snnl.training.tune import EpochReport, _pruner
from helpers.training_data import CLASSES, digits_data

TRAIN = {"model": "mlp", "model_args": {"hidden": [16, 16]}, "batch_size": 64, "epochs": 5, "threads": 1,
         "probe_points": 0, "checkpoint_every": 0, "log_every": 50}


def small_digits() -> TrainData:
    """256 training images (4 steps an epoch at batch 64), so that whole epochs take milliseconds."""
    d = digits_data()
    return TrainData((d.train[0][:256], d.train[1][:256]), d.val, None, CLASSES, "digits")


def run_tune(tmp_path, regime: str, pruner: str) -> dict:
    doc = {"train": TRAIN, "tune": {"n_trials": 3, "epochs": 2, "pruner": pruner, "pruner_startup": 1}}
    out = tmp_path / f"{regime}-{pruner}.json"
    summary = tune(train_config(doc, regime=regime), tune_config(doc), small_digits(), regime=regime, seed=0,
                   out=out, progress=False)
    assert json.loads(out.read_text()) == json.loads(json.dumps(summary))
    return summary


@pytest.mark.parametrize("pruner", ["median", "none"])
def test_every_regime_gets_the_same_budget_and_no_trial_trains_longer_than_tune_epochs(tmp_path, pruner):
    summaries = {r: run_tune(tmp_path, r, pruner) for r in ("baseline", "entangled", "official")}
    for regime, s in summaries.items():
        assert s["regime"] == regime and s["budget"] == 3
        assert s["n_trials"] + s["n_pruned"] + s["n_failed"] == 3 == len(s["trials"])
        states = [t["state"] for t in s["trials"]]
        assert states.count("COMPLETE") == s["n_trials"] and states.count("PRUNED") == s["n_pruned"]
        assert all(1 <= t["epochs"] <= 2 for t in s["trials"])  # reported after every epoch, never past tune.epochs
        assert all(t["epochs"] == 2 for t in s["trials"] if t["state"] == "COMPLETE")
        if pruner == "none":
            assert s["n_pruned"] == 0
    assert len({s["budget"] for s in summaries.values()}) == 1
    assert set(summaries["official"]["params"]) == {"lr", "alpha", "initial_temperature"}
    assert set(summaries["baseline"]["params"]) == {"lr"}


def _study(pruner) -> optuna.Study:
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    return optuna.create_study(direction="maximize", pruner=pruner, sampler=optuna.samplers.RandomSampler(seed=0))


def _complete(study: optuna.Study, curve: list[float]) -> None:
    study.add_trial(optuna.trial.create_trial(
        value=curve[-1], intermediate_values={e: v for e, v in enumerate(curve, start=1)},
        state=optuna.trial.TrialState.COMPLETE))


def test_the_median_pruner_prunes_from_the_second_epoch_on():
    doc = {"train": TRAIN, "tune": {"n_trials": 3, "epochs": 3, "pruner": "median", "pruner_startup": 1}}
    pruner = _pruner(tune_config(doc), train_config(doc))
    study = _study(pruner)
    _complete(study, [0.9, 0.9, 0.9])
    trial = study.ask()
    trial.report(0.1, 1)
    assert not trial.should_prune()  # the first epoch is never judged
    trial.report(0.1, 2)
    assert trial.should_prune()
    trial = study.ask()
    trial.report(0.95, 1)
    trial.report(0.95, 2)
    assert not trial.should_prune()  # above the median


def test_a_pruned_trial_counts_against_the_budget(tmp_path, monkeypatch):
    """Trial 1 is told to stop at its first report: it is PRUNED after one epoch, and the study
    still runs exactly tune.n_trials trials in all."""
    monkeypatch.setattr(optuna.trial.Trial, "should_prune", lambda self: self.number == 1)
    s = run_tune(tmp_path, "baseline", "median")
    assert [t["state"] for t in s["trials"]] == ["COMPLETE", "PRUNED", "COMPLETE"]
    assert (s["n_trials"], s["n_pruned"], s["n_failed"], s["budget"]) == (2, 1, 0, 3)
    assert s["trials"][1]["epochs"] == 1  # stopped after its first epoch
    assert s["best_trial"] != 1


def test_epoch_report_reports_each_epoch_once_and_raises_trial_pruned(monkeypatch):
    class Trial:
        def __init__(self):
            self.reports = []

        def report(self, value, step):
            self.reports.append(step)

        def should_prune(self):
            return len(self.reports) == 2

    class Trainer:
        epoch = 0
        broken = False

        def check_weights(self):
            if self.broken:
                raise DivergenceError("weights not finite", step=5, epoch=2, reason="weights not finite")

    import snnl.training.metrics as metrics

    monkeypatch.setattr(metrics, "evaluate", lambda t, split: {"accuracy": 0.5})
    trial, trainer = Trial(), Trainer()
    cb = EpochReport(trial)
    cb(trainer)  # epoch 0: nothing to report
    trainer.epoch = 1
    cb(trainer)
    cb(trainer)  # the same epoch: not reported twice
    trainer.epoch = 2
    with pytest.raises(optuna.TrialPruned):
        cb(trainer)
    assert trial.reports == [1, 2]

    # weights broken at an epoch's end: no accuracy of them is reported; the trial fails
    trainer.epoch, trainer.broken = 3, True
    with pytest.raises(DivergenceError):
        cb(trainer)
    assert trial.reports == [1, 2]


def test_official_our_scale_is_not_tuned_and_takes_officials_parameters(tmp_path):
    doc = {"train": TRAIN, "tune": {"n_trials": 1, "epochs": 1}}
    with pytest.raises(ConfigError, match="`official`"):
        tune(train_config(doc, regime="official_our_scale"), tune_config(doc), small_digits(),
             regime="official_our_scale", seed=0, out=tmp_path / "x.json", progress=False)
    assert not (tmp_path / "x.json").exists()

    path = tmp_path / "official.json"
    s = tune(train_config(doc, regime="official"), tune_config(doc), small_digits(), regime="official", seed=0,
             out=path, progress=False)
    params = read_params(path, "official_our_scale")
    assert params == s["params"] and set(params) == {"lr", "alpha", "initial_temperature"}
    assert read_params(path, "official") == params
    with pytest.raises(ConfigError, match="tuned for regime `official`"):
        read_params(path, "entangled")
    # the tuned parameters win over official_our_scale's own settings; its scale stays its own
    cfg = train_config({"train": TRAIN}, regime="official_our_scale", params=params)
    assert (cfg.alpha, cfg.initial_temperature, cfg.lr) == (params["alpha"], params["initial_temperature"], params["lr"])
    assert (cfg.numerics, cfg.normalize, cfg.init) == ("cleverhans", True, "default")
