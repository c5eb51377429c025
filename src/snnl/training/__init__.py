"""Training baseline (cross-entropy) and entangled (cross-entropy minus alpha times the hidden
layers' SNNL, the paper's Eq. 3) models: the one home of the loop, its settings, tuning, resume,
the per-step log and the guards::

    from snnl.training import TrainConfig, TrainData, train
    result = train(TrainConfig(model="cnn", epochs=1), TrainData(train=(x, y), test=(xt, yt)),
                   regime="entangled", seed=0, out="model.pt", log="log.csv", metrics="metrics.json")
    result.metrics["test_accuracy"]

Modules, in the order a run uses them:
    config     the ``train:`` and ``tune:`` settings (typed, checked; config/README.md)
    data       the splits as tensors, their fingerprint; batches: minibatches and augmentation
    optim      optimizer and learning-rate schedule
    loop       :class:`Trainer`: setup, one step, the run
    steplog    the per-step CSV (:class:`StepRow`)
    guards     non-finite losses and weights: the step, term and layer that broke
    probe      the per-layer SNNL at the optimal temperature on a fixed batch (E4)
    resume     what a checkpoint holds, whether it fits, continuing from it bit-exactly
    metrics    the final metrics JSON
    tune       the Optuna search and the tuned parameters it writes
"""

from snnl.training.config import TrainConfig, TuneConfig, train_config, tune_config
from snnl.training.data import TrainData
from snnl.training.loop import Trainer, TrainResult, train
from snnl.training.metrics import RUN_SPECIFIC_METRICS
from snnl.training.probe import probe_steps
from snnl.training.resume import resume_path
from snnl.training.steplog import StepRow
from snnl.training.tune import read_params, tune

__all__ = [
    "RUN_SPECIFIC_METRICS",
    "StepRow",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "Trainer",
    "TuneConfig",
    "probe_steps",
    "read_params",
    "resume_path",
    "train",
    "train_config",
    "tune",
    "tune_config",
]
