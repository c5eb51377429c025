"""Train baseline (cross-entropy) and entangled (cross-entropy minus alpha times the hidden
layers' SNNL, the paper's Eq. 3) models. The code lives in :mod:`snnl.training`; this module
is the public face::

    from snnl.train import TrainConfig, TrainData, train
    result = train(TrainConfig(model="cnn", epochs=1), TrainData(train=(x, y), test=(xt, yt)),
                   regime="entangled", seed=0, out="model.pt", log="log.csv", metrics="metrics.json")
    result.metrics["test_accuracy"]
"""

from snnl.checkpoint import load_checkpoint, load_model
from snnl.devices import resolve_device
from snnl.regimes import REGIMES
from snnl.training.config import TrainConfig, load_train_config, train_config
from snnl.training.data import TrainData, channel_stats
from snnl.training.loop import (
    RUN_SPECIFIC_METRICS,
    Trainer,
    TrainResult,
    resume_path,
    train,
)
from snnl.training.probe import measure as probe_measure
from snnl.training.probe import probe_steps
from snnl.tune import read_params

__all__ = [
    "REGIMES",
    "RUN_SPECIFIC_METRICS",
    "TrainConfig",
    "TrainData",
    "TrainResult",
    "Trainer",
    "channel_stats",
    "load_checkpoint",
    "load_model",
    "load_train_config",
    "probe_measure",
    "probe_steps",
    "read_params",
    "resolve_device",
    "resume_path",
    "train",
    "train_config",
]
