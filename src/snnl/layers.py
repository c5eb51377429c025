"""Capturing the outputs of named layers of any nn.Module with forward hooks.

One home for each layer helper: which layers "all hidden layers" means
(:func:`hidden_layer_names`, :func:`resolve_layers`), the hooks themselves
(:func:`register_output_hooks`, :func:`capture`) and every layer's output for a whole set
of images, in batches (:func:`layer_outputs`, used by the training probe, the evaluation,
the experiments and `snnl analyze`).

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

from snnl.checks import to_unit
from snnl.errors import ConfigError, DataError

#: pseudo-layers of :func:`layer_outputs`: the [0, 1] pixels, and the model's output
INPUT = "input"
LOGITS = "logits"


def hidden_layer_names(model: nn.Module) -> list[str]:
    """The layers "all hidden layers" means for ``model``.

    If the model defines ``hidden_layers`` (a list of module names), that list;
    otherwise every direct child except the last one (the logits).

    Raises:
        ConfigError: no ``hidden_layers`` and fewer than 2 direct children (ambiguous).
    """
    names = getattr(model, "hidden_layers", None)
    if names is not None:
        return list(names)
    children = [name for name, _ in model.named_children()]
    if len(children) < 2:
        raise ConfigError(
            f"{type(model).__name__} has {len(children)} direct child module(s), so 'all hidden layers' "
            "is ambiguous; pass layers=[...] with module names (see model.named_modules())"
        )
    return children[:-1]


def resolve_layers(
    model: nn.Module, layers: str | Sequence[str] = "all", *, logits: bool = False, key: str = "layers"
) -> list[str]:
    """The layer names a measurement of ``model`` runs on.

    ``"all"``: the hidden layers (:func:`hidden_layer_names`); a list: its names, each a
    module of ``model`` (or :data:`LOGITS`). With ``logits``, :data:`LOGITS` (the model's
    output, see :func:`layer_outputs`) comes last unless already listed.

    Raises:
        ConfigError: a listed name is not a module of ``model``, or ``"all"`` finds nothing
            to measure; the message names ``key`` (the setting that holds the names).
    """
    if layers == "all":
        names = hidden_layer_names(model)
    else:
        modules = dict(model.named_modules())
        names = list(layers)
        missing = [n for n in names if (n not in modules or n == "") and n != LOGITS]
        if missing:
            hidden = list(getattr(model, "hidden_layers", []) or [])
            raise ConfigError(
                f"`{key}` names {missing}, which are not modules of this {type(model).__name__}; "
                f"its hidden layers are {hidden}"
            )
    if logits and LOGITS not in names:
        names.append(LOGITS)
    if not names and layers == "all":
        raise ConfigError(
            f"{type(model).__name__} names no hidden layers (`model.hidden_layers`); list the module names in `{key}`"
        )
    return names


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


def _model_device(model: nn.Module) -> torch.device:
    try:
        return next(model.parameters()).device
    except StopIteration:
        return torch.device("cpu")


def _flat(h: torch.Tensor, source: torch.Tensor, cpu: bool) -> torch.Tensor:
    """``h`` flattened per sample (in logical order), float32, detached, and a copy whenever
    it would share memory with ``source`` (a later in-place op must not change it)."""
    h = h.detach().reshape(h.shape[0], -1).float()
    if cpu:
        h = h.cpu()
    return h.clone() if shares_memory(h, source) else h


@torch.no_grad()
def layer_outputs(
    model: nn.Module,
    images: torch.Tensor,
    layers: Sequence[str],
    *,
    batch_size: int = 500,
    device: torch.device | str | None = None,
    transform: Callable[[torch.Tensor], torch.Tensor] | None = None,
    autocast: contextlib.AbstractContextManager | None = None,
    cpu: bool = False,
    progress: bool = False,
    desc: str = "forward",
    what: str = "images",
) -> dict[str, torch.Tensor]:
    """``{layer: (N, d) float32}``: each layer's output for every image, flattened per sample.

    Args:
        model: any ``nn.Module``; run in eval mode, its train/eval mode restored afterwards.
        images: (N, ...) uint8 (0..255) or float pixels in [0, 1] (:func:`snnl.checks.to_unit`).
        layers: module names as in ``model.named_modules()``, and the pseudo-layers
            :data:`INPUT` (the [0, 1] pixels) and :data:`LOGITS` (the model's output).
        batch_size: images per forward pass.
        device: where the model runs (default: the device of its parameters, else the CPU).
        transform: applied to each [0, 1] batch on ``device`` before the model (e.g. the
            normalisation a torchvision model expects); None for snnl's models.
        autocast: a context (e.g. ``torch.autocast``) around each forward pass.
        cpu: move every batch's outputs to the CPU (else they stay on ``device``).
        progress: a tqdm bar titled ``desc``. ``what`` names the images in errors.

    Returns:
        Keyed in forward order: :data:`INPUT`, the modules in the order they run,
        :data:`LOGITS`.

    Raises:
        ConfigError: a name is not a module of ``model``, or a module runs zero times or
            more than once in a forward pass.
        DataError: no images, or pixels outside [0, 1] (``TypeError`` for other dtypes).
    """
    from tqdm.auto import tqdm

    if int(images.shape[0]) == 0:
        raise DataError(f"{what}: no images to run through the model")
    hooked = [n for n in layers if n not in (INPUT, LOGITS)]
    modules = resolve_modules(model, hooked)
    device = _model_device(model) if device is None else device
    parts: dict[str, list[torch.Tensor]] = {n: [] for n in layers}
    order: list[str] = []

    def receive(name: str, output: torch.Tensor) -> None:
        parts[name].append(_flat(output, output, cpu))
        order.append(name)

    was_training = model.training
    model.eval()
    handles = register_output_hooks(model, modules, receive)
    try:
        for start in tqdm(range(0, int(images.shape[0]), batch_size), desc=desc, unit="batch", disable=not progress,
                          leave=False):
            x = to_unit(images[start : start + batch_size].to(device), what)
            order.clear()
            with autocast if autocast is not None else contextlib.nullcontext():
                out = module_output(model(x if transform is None else transform(x)))
            _check_ran(hooked, order)
            for name, value in ((INPUT, x), (LOGITS, out)):
                if name in parts:
                    parts[name].append(_flat(value, value, cpu))
            forward = list(order)
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    keys = [INPUT] * (INPUT in parts) + forward + [LOGITS] * (LOGITS in parts)
    return {name: torch.cat(parts[name]) for name in keys}


def _check_ran(hooked: Sequence[str], ran: Sequence[str]) -> None:
    """Every hooked module ran in the forward pass (running twice is refused by the hooks)."""
    for name in hooked:
        if name not in ran:
            raise ConfigError(f"layer {name!r} does not run in the model's forward pass; "
                              "choose another module from model.named_modules()")
