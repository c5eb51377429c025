"""What each SNNL bonus does to the network, measured on the probe batch at the probe steps
(docs/RESULTS.md, "What each bonus does"): per regularised layer,

- the *pinned fraction*: the fraction of anchors whose cleverhans-numerics term
  (:func:`snnl.legacy.legacy_snnl_terms`) at the layer's training temperature lies within
  :data:`PIN_TOLERANCE` nats of the cap ``-log(eps)`` = 11.513, where it no longer moves;
- the *gradient ratio*: ``||grad_theta (alpha * SNNL_layer)|| / ||grad_theta CE||`` at the network's
  parameters theta, with the regime's own numerics and temperature.

Both run in eval mode, in float32, outside the training step (they read the device: probe steps only).
"""

from __future__ import annotations

import math
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from snnl.checks import to_unit
from snnl.layers import register_output_hooks, resolve_modules
from snnl.legacy import STABILITY_EPS, legacy_snnl_terms
from snnl.regularizer import EntanglementRegularizer

PIN_TOLERANCE = 1e-3  # nats below the cap -log(eps)
BONUS_KEYS = ("train_temperature", "pinned_fraction", "grad_ratio")  # per probe record; None for the baseline
CAP = -math.log(STABILITY_EPS)


def pinned_fraction(features: torch.Tensor, labels: torch.Tensor, temperature: float, *,
                    cos_distance: bool = False) -> torch.Tensor:
    """The fraction (0-d float64 tensor in [0, 1]) of the ``b`` anchors of ``features`` (b, ...)
    whose cleverhans-numerics SNNL term at ``temperature`` is at least ``CAP - PIN_TOLERANCE``."""
    terms = legacy_snnl_terms(features.float(), labels, temperature, cos_distance=cos_distance)
    return (terms >= CAP - PIN_TOLERANCE).double().mean()


def _grad_norm(value: torch.Tensor, params: Sequence[torch.Tensor]) -> torch.Tensor:
    grads = torch.autograd.grad(value, params, retain_graph=True, allow_unused=True)
    return torch.sqrt(sum((g.double() ** 2).sum() for g in grads if g is not None) + torch.zeros((), dtype=torch.float64))


def measure_bonus(model: nn.Module, regularizer: EntanglementRegularizer, images: torch.Tensor,
                  labels: torch.Tensor, layers: Sequence[str]) -> dict[str, dict[str, float]]:
    """For each of ``layers`` (regularised by ``regularizer``): ``{"train_temperature",
    "pinned_fraction", "grad_ratio"}`` on ``images`` (uint8 or [0, 1], one batch) with ``labels``.
    The regularizer's hooks are paused and its temperatures are read, never stepped."""
    temperatures = regularizer.current_temperatures()
    params = [p for p in model.parameters() if p.requires_grad]
    outputs: dict[str, torch.Tensor] = {}
    handles = register_output_hooks(model, resolve_modules(model, layers),
                                     lambda name, out: outputs.__setitem__(name, out.clone()))
    was_training = model.training
    model.eval()
    try:
        with torch.enable_grad(), regularizer.paused():
            logits = model(to_unit(images))
            ce_norm = _grad_norm(F.cross_entropy(logits.float(), labels), params)
            result = {}
            for name in layers:
                h, temp = outputs[name].float(), temperatures[name]
                snnl = regularizer.layer_snnl(h, labels, temp)
                ratio = _grad_norm(regularizer.alpha * snnl, params) / ce_norm
                pinned = pinned_fraction(regularizer.prepare(h.detach()), labels, temp,
                                         cos_distance=regularizer.distance == "cosine")
                result[name] = {"train_temperature": float(temp), "pinned_fraction": float(pinned),
                                "grad_ratio": float(ratio)}
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    return result
