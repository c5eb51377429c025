"""snnl: an exact, fast, tested Soft Nearest Neighbor Loss (Frosst, Papernot & Hinton, ICML 2019).

    from snnl import soft_nearest_neighbor_loss, optimal_temperature, EntanglementRegularizer
"""

from snnl.errors import CheckpointError, ConfigError, DataError, SnnlError, TrainingError
from snnl.legacy import legacy_snnl
from snnl.loss import (
    SNNLResult,
    pairwise_distances,
    snnl_from_distances,
    soft_nearest_neighbor_loss,
    soft_nearest_neighbor_losses,
)
from snnl.layers import hidden_layer_names
from snnl.regularizer import EntanglementRegularizer, RegularizedLoss
from snnl.temperature import OnlineTemperature, OptimalTemperature, optimal_temperature

__version__ = "0.1.0"

__all__ = [
    "soft_nearest_neighbor_loss",
    "soft_nearest_neighbor_losses",
    "snnl_from_distances",
    "pairwise_distances",
    "SNNLResult",
    "optimal_temperature",
    "OptimalTemperature",
    "OnlineTemperature",
    "EntanglementRegularizer",
    "RegularizedLoss",
    "hidden_layer_names",
    "legacy_snnl",
    "SnnlError",
    "ConfigError",
    "DataError",
    "CheckpointError",
    "TrainingError",
]
