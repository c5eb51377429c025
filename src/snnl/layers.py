"""Capturing the outputs of named layers of any nn.Module with forward hooks.

Both :func:`capture` and :class:`snnl.EntanglementRegularizer` keep their own copy of a
hooked module's output. The module's output tensor itself goes on into the rest of the
network, where an in-place operation (``nn.ReLU(inplace=True)``, ``out += identity`` in a
residual block, ``nn.Dropout(inplace=True)``) would otherwise overwrite the captured
values after the hook has run: the SNNL would silently be measured on, say, relu(h)
instead of h.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator, Sequence

import torch
from torch import nn

from snnl.errors import ConfigError


def resolve_modules(model: nn.Module, names: Sequence[str]) -> dict[str, nn.Module]:
    """``{name: module}`` for the named modules of ``model``.

    Raises:
        ConfigError: a name is not in ``model.named_modules()`` (the message lists the known names).
    """
    modules = dict(model.named_modules())
    missing = [n for n in names if n not in modules]
    if missing:
        known = ", ".join(n for n in modules if n) or "(none)"
        raise ConfigError(f"layer(s) {missing} not found in {type(model).__name__}; known names: {known}")
    return {n: modules[n] for n in names}


def module_output(output) -> torch.Tensor:
    """The tensor a hook measures: the output itself, or the first element of a tuple/list."""
    if isinstance(output, (tuple, list)):
        output = output[0]
    return output


def shares_memory(h: torch.Tensor, output: torch.Tensor) -> bool:
    """Whether ``h`` (the output, or something computed from it) shares ``output``'s memory,
    so that a later in-place operation on ``output`` would change it too."""
    return h.untyped_storage().data_ptr() == output.untyped_storage().data_ptr()


def register_output_hooks(
    model: nn.Module, modules: dict[str, nn.Module], receive: Callable[[str, torch.Tensor], None]
) -> list[torch.utils.hooks.RemovableHandle]:
    """Forward hooks that call ``receive(name, output)`` with each module's output tensor
    (see :func:`module_output`); the caller copies what it keeps (:func:`shares_memory`).

    Within one forward pass of ``model`` each hooked module must run once: a module that
    runs twice (a reused activation, such as torchvision's ``BasicBlock.relu``) raises
    ``ConfigError`` naming it, since one output per pass is what the SNNL of a layer means.
    Calls of a submodule outside a pass of ``model`` are passed on as they come."""
    seen: set[str] = set()
    in_pass = [False]

    def start(module, inputs):
        seen.clear()
        in_pass[0] = True

    def end(module, inputs, output):
        in_pass[0] = False

    def make(name: str):
        def hook(module, inputs, output):
            if in_pass[0]:
                if name in seen:
                    raise ConfigError(
                        f"layer `{name}` runs more than once in one forward pass of {type(model).__name__} "
                        "(a module reused, e.g. an activation shared by two places); its output is not one "
                        "representation per input: hook a module that runs once, such as the block around it"
                    )
                seen.add(name)
            receive(name, module_output(output))

        return hook

    handles = [module.register_forward_hook(make(name)) for name, module in modules.items()]
    handles.append(model.register_forward_pre_hook(start))
    handles.append(model.register_forward_hook(end, always_call=True))
    return handles


@contextlib.contextmanager
def capture(model: nn.Module, names: Sequence[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Collect detached copies of the outputs of the named modules of ``model`` while the
    block runs (one tensor per forward pass, in order). Copies: an in-place operation
    later in the network does not change what was captured.

    Raises:
        ConfigError: a name is not a module of ``model``.
    """
    modules = resolve_modules(model, names)
    store: dict[str, list[torch.Tensor]] = {n: [] for n in names}

    def receive(name: str, output: torch.Tensor) -> None:
        store[name].append(output.detach().clone())

    handles = register_output_hooks(model, modules, receive)
    try:
        yield store
    finally:
        for h in handles:
            h.remove()
