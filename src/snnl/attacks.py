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

ATTACKS = ("fgsm", "pgd")


@contextlib.contextmanager
def _eval_mode(model: nn.Module) -> Iterator[None]:
    was_training = model.training
    model.eval()
    try:
        yield
    finally:
        model.train(was_training)


def _check(x: torch.Tensor, eps: float) -> None:
    if not x.is_floating_point():
        raise TypeError(f"attacks take float images in [0, 1], got dtype {x.dtype}; divide uint8 images by 255 first")
    if not (eps >= 0 and eps < float("inf")):
        raise ValueError(f"epsilon must be a finite number >= 0, got {eps!r}")


def input_gradient(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """grad_x of the summed cross-entropy of ``model(x)`` against ``y`` (the model as it is)."""
    x = x.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        loss = F.cross_entropy(model(x), y, reduction="sum")
        (grad,) = torch.autograd.grad(loss, x)
    return grad


def fgsm(model: nn.Module, x: torch.Tensor, y: torch.Tensor, eps: float) -> torch.Tensor:
    """Fast gradient sign method: ``clip(x + eps * sign(grad_x CE(model(x), y)), 0, 1)``."""
    _check(x, eps)
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

    ``step_size`` defaults to ``2.5 * eps / steps``. ``generator`` seeds the random start
    (drawn on the generator's device, then moved to ``x``'s).
    """
    _check(x, eps)
    if int(steps) < 1:
        raise ValueError(f"PGD needs at least 1 step, got {steps!r}")
    alpha = 2.5 * eps / int(steps) if step_size is None else float(step_size)
    if not alpha >= 0:
        raise ValueError(f"PGD step size must be >= 0, got {step_size!r}")
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
    """Run ``attack`` over ``images`` (uint8 0..255 or float [0, 1]) in batches; returns float
    adversarial images in [0, 1] on the CPU."""
    from tqdm.auto import tqdm

    out = []
    starts = range(0, images.shape[0], batch_size)
    for start in tqdm(starts, desc=desc, unit="batch", disable=not progress, leave=False):
        xb = images[start : start + batch_size].to(device)
        xb = xb.float().div_(255.0) if xb.dtype == torch.uint8 else xb.float()
        yb = labels[start : start + batch_size].to(device)
        out.append(attack(model, xb, yb, eps).cpu())
    if not out:
        return torch.zeros((0, *images.shape[1:]), dtype=torch.float32)
    return torch.cat(out)
