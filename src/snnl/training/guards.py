"""Guards against a diverging run, without a host read on every step.

Each step's loss terms are checked on the device (:class:`NonFiniteWatch`, no sync); the flags
come back with the one host read of the next logged or checkpoint step, and the error names the
first bad step, the term and its layer, and which layer broke (:func:`diagnose`). Before a
checkpoint is written the weights are checked too (:func:`non_finite_weight`), so a checkpoint
never holds a NaN. :func:`stop_error` is the message: what broke, the last good checkpoint, the fix.
"""

from __future__ import annotations

import contextlib
from pathlib import Path
from typing import Sequence

import torch
from torch import nn

from snnl.errors import DivergenceError
from snnl.layers import capture
from snnl.training.probe import probe_layers


class NonFiniteWatch:
    """The first step whose loss terms (cross-entropy, SNNL per layer of ``layers``, total) were
    not all finite, with their values, remembered on the device."""

    def __init__(self, layers: Sequence[str]):
        self.layers = list(layers)
        self.size = len(self.layers) + 2
        self.flags: torch.Tensor | None = None

    def note(self, step: int, terms: Sequence[torch.Tensor]) -> None:
        """Remember step ``step``'s terms if they are the first non-finite ones (no sync). A step
        that measured only the cross-entropy (baseline, unlogged) passes ``[ce]``: it is also the
        total, and the SNNL slots stay unflagged."""
        n = self.size
        values = torch.stack([t.detach().float() for t in terms])
        if self.flags is None:
            dev = values.device
            self._ce_slots = torch.zeros(n, dtype=torch.bool, device=dev)
            self._ce_slots[0] = self._ce_slots[-1] = True
            self.flags = torch.zeros(n, dtype=torch.bool, device=dev)
            self.values = torch.zeros(n, dtype=torch.float32, device=dev)
            self.step = torch.zeros((), dtype=torch.int64, device=dev)
        if values.shape[0] != n:  # cross-entropy only: it is also the total
            values = torch.where(self._ce_slots, values[0], torch.full_like(self.values, float("nan")))
            flags = self._ce_slots & ~torch.isfinite(values)
        else:
            flags = ~torch.isfinite(values)
        new = flags.any() & ~self.flags.any()
        self.flags = torch.where(new, flags, self.flags)
        self.values = torch.where(new, values, self.values)
        self.step = torch.where(new, torch.full_like(self.step, step), self.step)

    def pending(self) -> list[torch.Tensor]:
        """What the next host read carries (float64, ``2 * size + 1`` values): flags, values, step."""
        return [self.flags.double(), self.values.double(), self.step.double().reshape(1)]

    def problem(self, read: list[float], step: int) -> tuple[int, str] | None:
        """From the values :meth:`pending` read back at step ``step``: None when every term was
        finite, else the first bad step and what was wrong there."""
        n = self.size
        flags, values, bad_step = read[:n], read[n : 2 * n], int(read[2 * n])
        if not any(flags):
            return None
        names = [("cross-entropy", None)] + [("SNNL", name) for name in self.layers] + [("total loss", None)]
        index = next(i for i, bad in enumerate(flags) if bad)
        (term, layer), value = names[index], values[index]
        where = f" of layer `{layer}`" if layer else ""
        key = "snnl/" + layer if layer else ("ce" if term == "cross-entropy" else "total")
        read_at = "" if bad_step == step else f", read back at step {step}"
        return bad_step, f"the {term}{where} is {value} (term `{key}`{read_at})"


@torch.no_grad()
def diagnose(model: nn.Module, x: torch.Tensor, context=contextlib.nullcontext) -> str:
    """Which layer broke: the first (hidden layers, then the logits) whose weights, or output on
    the failing batch ``x``, hold a NaN or inf; else the largest output. ``context()``: the
    context of the forward pass (autocast, the regularizer paused)."""
    modules = dict(model.named_modules())
    names = [n for n in probe_layers(model) if n in modules]
    for name in names:
        if not all(bool(torch.isfinite(p).all()) for p in modules[name].parameters()):
            return f"the weights of layer `{name}` are not finite"
    with capture(model, names) as outputs, context():
        model(x)
    largest = ("", 0.0)
    for name in names:
        h = outputs[name][-1].float()
        if not bool(torch.isfinite(h).all()):
            return f"layer `{name}` is the first whose output is not finite"
        size = float(h.abs().max()) if h.numel() else 0.0
        largest = max(largest, (name, size), key=lambda t: t[1])
    return f"every layer's output is finite, the largest is {largest[1]:.3g} (layer `{largest[0]}`)"


def non_finite_weight(model: nn.Module) -> str | None:
    """The name of the first parameter of ``model`` that is not finite, or None (one host read)."""
    named = list(model.named_parameters())
    finite = torch.stack([torch.isfinite(p).all() for _, p in named]).tolist() if named else []
    return next((name for (name, _), ok in zip(named, finite) if not ok), None)


def stop_error(at: int, epoch: int, what: str, last_checkpoint: tuple[Path, int] | None, alpha: float) -> DivergenceError:
    """The error that stops training at step ``at`` (in ``epoch``) because of ``what``, with the
    last good checkpoint (path, step) and the fix."""
    lower = f"lower `train.lr`{' or `train.alpha`' if alpha else ''}"
    if last_checkpoint is not None:
        path, step = last_checkpoint
        fix = (f"The last good checkpoint, {path} (step {step}), is intact (a resume from it keeps its settings); "
               f"{lower} and run again with --fresh")
    else:
        fix = f"No checkpoint was written yet; {lower} and run again"
    return DivergenceError(f"training stopped at step {at} (epoch {epoch}): {what}. {fix}", step=at, epoch=epoch,
                           reason=what)
