"""Analysing anyone's model with the SNNL (`snnl analyze`): per layer, the SNNL at its optimal
temperature with a bootstrap interval over batches, the optimal temperature, and per-class
same-class-neighbour counts.

    from snnl.analysis import analyze, plot_analysis
    result = analyze(model, images, labels, ["conv1", "conv2", "logits"], k=10)
    result.table                      # one row per layer (snnl, snnl_ci_low/high, temperature, neighbours[...])

:mod:`snnl.analysis.inputs` loads snnl checkpoints, torchvision models with local weights,
prepared datasets and ImageFolders (and states what each model is given);
:mod:`snnl.analysis.measures` holds the per-layer measures; :mod:`snnl.analysis.plot` the figure.
"""

from snnl.analysis.features import default_layers, layer_features
from snnl.analysis.inputs import (
    Inputs,
    Preprocessing,
    checkpoint_model,
    choose_sample,
    image_folder_inputs,
    prepared_inputs,
    torchvision_model,
    torchvision_preprocessing,
)
from snnl.analysis.measures import BatchSNNL, bootstrap_interval, per_class_mean, same_class_neighbours, snnl_per_batch
from snnl.analysis.plot import plot_analysis
from snnl.analysis.run import COLUMNS, Analysis, analyze, neighbour_column

__all__ = [
    "COLUMNS",
    "Analysis",
    "BatchSNNL",
    "Inputs",
    "Preprocessing",
    "analyze",
    "bootstrap_interval",
    "checkpoint_model",
    "choose_sample",
    "default_layers",
    "image_folder_inputs",
    "layer_features",
    "neighbour_column",
    "per_class_mean",
    "plot_analysis",
    "prepared_inputs",
    "same_class_neighbours",
    "snnl_per_batch",
    "torchvision_model",
    "torchvision_preprocessing",
]
