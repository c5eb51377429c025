"""Per-layer activations of any ``nn.Module`` for a set of images, in batches, in forward order."""

from __future__ import annotations

from typing import Callable, Sequence

import torch
from torch import nn

from snnl.checks import to_unit
from snnl.errors import ConfigError, DataError
from snnl.layers import capture, register_output_hooks, resolve_modules
from snnl.loss import flatten_per_sample
from snnl.regularizer import hidden_layer_names


def default_layers(model: nn.Module) -> list[str]:
    """What ``--layers all`` means: the hidden layers (:func:`snnl.hidden_layer_names`: the
    model's ``hidden_layers``, else every direct child but the last) and then the logits (a
    module named ``logits``, else the last direct child)."""
    hidden = hidden_layer_names(model)
    modules = dict(model.named_modules())
    logits = "logits" if "logits" in modules else [name for name, _ in model.named_children()][-1]
    return [*hidden, *([logits] if logits not in hidden else [])]


def _check_one_output(store: dict[str, list[torch.Tensor]]) -> None:
    # a module that runs twice per pass is refused by snnl.layers' hooks already
    for name, outputs in store.items():
        if not outputs:
            raise ConfigError(f"layer {name!r} does not run in the model's forward pass; "
                              "choose another module from model.named_modules()")


@torch.no_grad()
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
        layers: module names as in ``model.named_modules()``.
        transform: applied on ``device`` to each [0, 1] batch before ``model`` (e.g. the
            mean/std normalisation a torchvision model expects); None for snnl's models,
            which normalise inside.
        batch_size: images per forward pass.
        progress: show a tqdm progress bar.

    Raises:
        ConfigError: a name is not a module of ``model``, or a module runs zero or several
            times per forward pass.
        DataError: the images do not fit the model (the first line of the model's error).
    """
    from tqdm.auto import tqdm

    modules = resolve_modules(model, list(layers))
    order: list[str] = []
    parts: dict[str, list[torch.Tensor]] = {name: [] for name in modules}
    was_training = model.training
    model.eval()
    handles = []
    try:
        with capture(model, list(modules)) as store:
            handles = register_output_hooks(model, modules, lambda name, _output: order.append(name))
            starts = range(0, int(images.shape[0]), batch_size)
            for start in tqdm(starts, desc="analyze: forward", unit="batch", disable=not progress, leave=False):
                x = to_unit(images[start : start + batch_size], "analyze: images").to(device)
                if transform is not None:
                    x = transform(x)
                order.clear()
                try:
                    model(x)
                except RuntimeError as err:
                    raise DataError(f"the model cannot run on images of shape {tuple(images.shape[1:])}: "
                                    f"{str(err).splitlines()[0]}; pass images of the size and channels it was "
                                    "trained on") from err
                _check_one_output(store)
                for name in modules:
                    parts[name].append(flatten_per_sample(store[name].pop()).float().cpu())
                forward_order = list(order)
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if not all(parts.values()):
        raise DataError("layer_features: no images to run through the model")
    return {name: torch.cat(parts[name]) for name in forward_order}
