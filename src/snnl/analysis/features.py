"""Per-layer activations of any ``nn.Module`` for a set of images, in batches, in forward order
(:func:`snnl.layers.layer_outputs`, with the analysis' own errors and progress bar)."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from snnl.errors import DataError
from snnl.layers import hidden_layer_names, layer_outputs


def default_layers(model: nn.Module) -> list[str]:
    """What ``--layers all`` means: the hidden layers (:func:`snnl.hidden_layer_names`: the
    model's ``hidden_layers``, else every direct child but the last) and then the logits (a
    module named ``logits``, else the last direct child)."""
    hidden = hidden_layer_names(model)
    modules = dict(model.named_modules())
    logits = "logits" if "logits" in modules else [name for name, _ in model.named_children()][-1]
    return [*hidden, *([logits] if logits not in hidden else [])]


def layer_features(
    model: nn.Module,
    images: torch.Tensor,
    layers: Sequence[str],
    *,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    batch_size: int = 256,
    device: torch.device | str = "cpu",
    progress: bool = False,
) -> dict[str, torch.Tensor]:
    """``{layer: (N, d) float32 CPU tensor}``: each named module's output for every image,
    flattened per sample, keyed in the order the outputs are produced in the forward pass.

    Args:
        model: any ``nn.Module`` (already on ``device``); run in eval mode, its mode restored after.
        images: (N, C, H, W) uint8 (0..255) or float pixels in [0, 1] (:func:`snnl.checks.to_unit`).
        layers: module names as in ``model.named_modules()`` (``logits``: the model's output).
        transform: applied on ``device`` to each [0, 1] batch before ``model`` (e.g. the
            mean/std normalisation a torchvision model expects); None for snnl's models,
            which normalise inside.
        batch_size: images per forward pass.
        progress: show a tqdm progress bar.

    Raises:
        ConfigError: a name is not a module of ``model``, or a module runs zero or several
            times per forward pass.
        DataError: no images, or the images do not fit the model (the first line of the model's error).
    """
    try:
        return layer_outputs(model, images, list(layers), batch_size=batch_size, device=device, transform=transform,
                             cpu=True, progress=progress, desc="analyze: forward", what="analyze: images")
    except RuntimeError as err:
        raise DataError(f"the model cannot run on images of shape {tuple(images.shape[1:])}: "
                        f"{str(err).splitlines()[0]}; pass images of the size and channels it was "
                        "trained on") from err
