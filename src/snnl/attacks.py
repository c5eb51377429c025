"""White-box, untargeted L-infinity attacks on models that take images in [0, 1].

    from snnl.attacks import fgsm, pgd, attack_batches
    x_adv = fgsm(model, x, y, eps=0.1)
    x_adv = pgd(model, x, y, eps=0.1, steps=20, step_size=None, random_start=True, generator=g)

Both maximise the cross-entropy of the true label ``y`` with respect to the input, in
pixel space *before* the model's own normalisation (every snnl model normalises
internally), and keep the result inside the valid range [0, 1]:

* FGSM (Goodfellow et al. 2015): ``clip(x + eps * sign(grad_x CE), 0, 1)``.
* PGD (Madry et al. 2018): from a uniform random start in the eps-ball (optional),
  ``steps`` iterations of ``x <- proj(x + step_size * sign(grad_x CE))``, where ``proj``
  clips to the eps-ball around the clean input and then to [0, 1]. The default
  ``step_size`` is ``2.5 * eps / steps`` (Madry et al.).

The contract is checked, not assumed: ``x`` must be float pixels in [0, 1] and finite
(mean/std-normalised images would otherwise be silently clipped into [0, 1], changing
them even at eps = 0), ``eps`` a finite number >= 0 and ``y`` class indices of the model's
outputs; each violation is a one-line error (:mod:`snnl.checks`). At eps = 0 both attacks
return the input unchanged.

The model is run in eval mode (restored afterwards); gradients are taken with
:func:`torch.autograd.grad` with respect to the input only, so the model's
parameter ``.grad`` fields are never touched.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch
import torch.nn.functional as F
from torch import nn

from snnl.checks import check_labels, check_unit_images, to_unit

ATTACKS = ("fgsm", "pgd")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check(x: torch.Tensor, eps: float, what: str) -> None:
    """The attacks' contract: float pixels in [0, 1] (before the model's normalisation),
    finite; epsilon a finite number >= 0."""
    check_unit_images(x, f"{what}: x")
    if isinstance(eps, bool) or not (eps >= 0 and eps < float("inf")):
        raise ValueError(f"{what}: epsilon must be a finite number >= 0 (an L-infinity radius in [0, 1] pixel "
                         f"units), got {eps!r}")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """grad_x of the summed cross-entropy of ``model(x)`` against ``y`` (the model as it is).

    ``y``: (N,) class indices in 0..K-1 for the model's K outputs; anything else is a
    ``DataError`` (checked here: on CUDA an out-of-range target would be a device assert)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        logits = model(x)
        check_labels(y, "attack labels y", n=x.shape[0], n_classes=logits.shape[1])
        loss = F.cross_entropy(logits, torch.as_tensor(y, device=logits.device).long(), reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method: ``clip(x + eps * sign(grad_x CE(model(x), y)), 0, 1)``.

    ``x`` float (N, ...) pixels in [0, 1], ``y`` (N,) labels, ``eps`` >= 0 in pixel units.
    At ``eps = 0`` the result is a copy of ``x`` (the model is not run). Raises
    ``DataError`` (a ``ValueError``) on NaN/inf pixels or pixels outside [0, 1] (e.g.
    mean/std-normalised images), ``ValueError`` on a negative or non-finite ``eps``."""
    _check(x, eps, "fgsm")
    if eps == 0:
        return x.detach().clone()
    with _eval_mode(model):
        grad = input_gradient(model, x, y)
    return (x.detach() + eps * grad.sign()).clamp_(0.0, 1.0)


def pgd(
    model: nn.Module,
    x: torch.Tensor,
    y: torch.Tensor,
    eps: float,
    steps: int = 20,
    step_size: float | None = None,
    random_start: bool = True,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Projected gradient descent (on -CE) in the L-infinity ball of radius ``eps``.

    ``x`` float (N, ...) pixels in [0, 1], ``y`` (N,) labels, ``eps`` >= 0 in pixel units.
    ``step_size`` defaults to ``2.5 * eps / steps``. ``generator`` seeds the random start
    (drawn on the generator's device, then moved to ``x``'s). At ``eps = 0`` the result is a
    copy of ``x`` (the model is not run). Raises as :func:`fgsm`, and ``ValueError`` on
    ``steps`` < 1 or a negative or non-finite ``step_size``.
    """
    _check(x, eps, "pgd")
    if isinstance(steps, bool) or int(steps) != steps or steps < 1:
        raise ValueError(f"pgd: steps must be an integer >= 1, got {steps!r}")
    alpha = 2.5 * eps / int(steps) if step_size is None else float(step_size)
    if not (alpha >= 0 and alpha < float("inf")):
        raise ValueError(f"pgd: step size must be a finite number >= 0, got {step_size!r}")
    if eps == 0:
        return x.detach().clone()
    x0 = x.detach()
    lo, hi = (x0 - eps).clamp_(min=0.0), (x0 + eps).clamp_(max=1.0)
    adv = x0.clone()
    if random_start and eps > 0:
        where = generator.device if generator is not None else x0.device
        noise = torch.rand(x0.shape, generator=generator, device=where, dtype=x0.dtype).to(x0.device)
        adv = (adv + (2.0 * noise - 1.0) * eps).clamp_(0.0, 1.0)
    with _eval_mode(model):
        for _ in range(int(steps)):
            grad = input_gradient(model, adv, y)
            adv = adv + alpha * grad.sign()
            adv = torch.max(torch.min(adv, hi), lo)
    return adv.detach()


def make_attack(name: str, *, steps: int = 20, step_size: float | None = None, random_start: bool = True,
                generator: torch.Generator | None = None) -> Callable[[nn.Module, torch.Tensor, torch.Tensor, float], torch.Tensor]:
    """``attack(model, x, y, eps)`` for ``name`` in :data:`ATTACKS` (PGD settings bound)."""
    if name == "fgsm":
        return fgsm
    if name == "pgd":
        return lambda model, x, y, eps: pgd(model, x, y, eps, steps, step_size, random_start, generator)
    raise ValueError(f"unknown attack {name!r}: choose one of {list(ATTACKS)}")


def attack_batches(
    attack: Callable[[nn.Module, torch.Tensor, torch.Tensor, float], torch.Tensor],
    model: nn.Module,
    images: torch.Tensor,
    labels: torch.Tensor,
    eps: float,
    *,
    batch_size: int = 500,
    device: torch.device | str = "cpu",
    progress: bool = False,
    desc: str = "attack",
) -> torch.Tensor:
    """Run ``attack`` over ``images`` (uint8 0..255 or float [0, 1], converted by
    :func:`snnl.checks.to_unit`, which rejects anything else) in batches; returns float32
    adversarial images in [0, 1] on the CPU."""
    from tqdm.auto import tqdm

    out = []
    starts = range(0, images.shape[0], batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False):
        xb = to_unit(images[start : start + batch_size].to(device), f"{desc}: images")
        yb = labels[start : start + batch_size].to(device)
        out.append(attack(model, xb, yb, eps).cpu())
    if not out:
        return torch.zeros((0, *images.shape[1:]), dtype=torch.float32)
    return torch.cat(out)
