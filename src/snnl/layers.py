"""Capturing the outputs of named layers of any nn.Module with forward hooks."""

from __future__ import annotations

import contextlib
from typing import Iterator, Sequence

import torch
from torch import nn

from snnl.errors import ConfigError


@contextlib.contextmanager
def capture(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Collect the detached outputs of the named modules of ``model`` while the block runs
    (one tensor per forward pass, in order)."""
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        known = ", ".join(n for n in modules if n) or "(none)"
        raise ConfigError(f"layer(s) {missing} not found in {type(model).__name__}; known names: {known}")
    store: dict[str, list[torch.Tensor]] = {n: [] for n in names}
    handles = []
    for name in names:

        def hook(module, inputs, output, name=name):
            if isinstance(output, (tuple, list)):
                output = output[0]
            store[name].append(output.detach())

        handles.append(modules[name].register_forward_hook(hook))
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
