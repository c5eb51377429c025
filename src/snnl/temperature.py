"""Temperatures for the SNNL: the optimal (loss-minimising) T, and an online T for training."""

from __future__ import annotations

import math
from typing import NamedTuple

import torch
from torch import nn

from snnl.errors import DataError
from snnl.loss import DistanceSpec, pairwise_distances, snnl_at_temperatures

_GOLDEN = (math.sqrt(5.0) - 1.0) / 2.0


class OptimalTemperature(NamedTuple):
    """Result of :func:`optimal_temperature`.

    temperature: the T minimising SNNL over the search range.
    loss: SNNL at that T.
    at_boundary: True when the minimiser is at an end of the search range
        (the loss keeps falling beyond it: e.g. perfectly separated classes,
        where SNNL -> 0 as T -> 0).
    evaluations: number of SNNL evaluations the search used.
    """

    temperature: float
    loss: float
    at_boundary: bool
    evaluations: int


def distance_scale(dist: torch.Tensor) -> float:
    """Median of the strictly positive, finite off-diagonal entries of a (b, b) distance
    matrix (1.0 when there are none): the centre of :func:`optimal_temperature`'s search
    range and of the E3 curves. +inf entries are masked pairs and do not count."""
    b = dist.shape[0]
    off = dist[~torch.eye(b, dtype=torch.bool, device=dist.device)]
    pos = off[(off > 0) & torch.isfinite(off)]
    if pos.numel() == 0:
        return 1.0
    return float(pos.median())


def optimal_temperature(
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    distance: DistanceSpec = "sqeuclidean",
    decades: float = 4.0,
    grid_points: int = 17,
    refine_steps: int = 20,
) -> OptimalTemperature:
    """The temperature that minimises the SNNL of ``features`` (detached), and the loss there.

    A 1-D search on log T: a log-spaced grid of ``grid_points`` temperatures spanning
    ``decades`` decades either side of the median pairwise distance, then a
    golden-section refinement of ``refine_steps`` evaluations between the best grid
    point's neighbours. The pairwise distances are computed once (in float64), so each
    evaluation costs one log-sum-exp over the b x b matrix; 37 evaluations by default.
    The search range scales with the data, so the result is exactly equivariant to
    rescaling the representation (T* scales with the squared scale for "sqeuclidean").

    Raises:
        DataError: ``features`` hold NaN or inf, or no anchor has a same-class partner.
    """
    with torch.no_grad():
        x = features.detach()
        if not bool(torch.isfinite(x).all()):
            raise DataError(
                f"optimal_temperature: the features hold {int((~torch.isfinite(x)).sum())} values that are "
                "not finite (NaN or inf); check the model's outputs (a diverged layer?) before measuring"
            )
        dist = pairwise_distances(x.double() if x.is_floating_point() else x.double(), distance)
        labels = torch.as_tensor(labels, device=dist.device)
        snnl_at = snnl_at_temperatures(dist, labels)  # checks the matrix once, masks built once
        scale = distance_scale(dist)
        lo, hi = math.log(scale) - decades * math.log(10.0), math.log(scale) + decades * math.log(10.0)
        evals = 0

        def f(log_t: float) -> float:
            nonlocal evals
            evals += 1
            return float(snnl_at(math.exp(log_t)))

        grid = torch.linspace(lo, hi, grid_points, dtype=torch.float64).tolist()
        values = [f(g) for g in grid]
        best = min(range(grid_points), key=lambda i: values[i])
        a = grid[max(best - 1, 0)]
        c = grid[min(best + 1, grid_points - 1)]
        best_x, best_v = grid[best], values[best]
        # golden-section search on [a, c]
        x1 = c - _GOLDEN * (c - a)
        x2 = a + _GOLDEN * (c - a)
        f1, f2 = f(x1), f(x2)
        for _ in range(max(refine_steps - 2, 0)):
            if f1 <= f2:
                c, x2, f2 = x2, x1, f1
                x1 = c - _GOLDEN * (c - a)
                f1 = f(x1)
            else:
                a, x1, f1 = x1, x2, f2
                x2 = a + _GOLDEN * (c - a)
                f2 = f(x2)
        for xv, fv in ((x1, f1), (x2, f2)):
            if fv < best_v:
                best_x, best_v = xv, fv
        at_boundary = best in (0, grid_points - 1) and abs(best_x - grid[best]) < 1e-12
        return OptimalTemperature(math.exp(best_x), best_v, at_boundary, evals)


class OnlineTemperature(nn.Module):
    """A temperature learned during training, parametrised as log T (so T > 0 always).

    Each step, call :meth:`temperature` to get T for the forward pass (a fresh leaf, so
    the network's own backward never touches the stored value), then :meth:`update`
    with the SNNL computed from it: one gradient step on log T that *minimises* the
    SNNL, whatever sign the regularizer gives the SNNL in the network's objective.
    This is the official code's min-max game (the network maximises entanglement, the
    temperature measures it at its most favourable scale) made safe: the official code
    updates t in T = T0/t by plain gradient steps and nothing keeps t > 0.

    The step is normalised by a running (bias-corrected) RMS of the gradient, as in
    RMSprop: ``log T -= lr * g / sqrt(mean g^2)``, so that its speed does not depend
    on the scale of the loss (a well-separated representation has tiny gradients in T)
    and it moves at most about ``lr`` in log T per step.

    ``log_t`` and the RMS state are buffers: saved in ``state_dict`` (checkpoints, exact
    resume) and moved by ``.to(device)``, but no optimizer of the model ever sees them.
    """

    def __init__(self, initial: float = 100.0, lr: float = 0.1, beta: float = 0.99):
        super().__init__()
        if not (initial > 0 and math.isfinite(initial)):
            raise ValueError(f"initial temperature must be a positive finite number, got {initial!r}")
        if not lr >= 0:
            raise ValueError(f"temperature learning rate must be >= 0, got {lr!r}")
        if not 0 <= beta < 1:
            raise ValueError(f"beta must be in [0, 1), got {beta!r}")
        self.lr = float(lr)
        self.beta = float(beta)
        self.register_buffer("log_t", torch.tensor(math.log(initial), dtype=torch.float64))
        self.register_buffer("sq_avg", torch.zeros((), dtype=torch.float64))
        self.register_buffer("steps", torch.zeros((), dtype=torch.int64))
        self._leaf: torch.Tensor | None = None

    @property
    def value(self) -> float:
        """The current temperature as a float."""
        return math.exp(float(self.log_t))

    def temperature(self) -> torch.Tensor:
        """T = exp(log T) as a tensor that records its use for :meth:`update`."""
        self._leaf = self.log_t.detach().clone().requires_grad_(True)
        return torch.exp(self._leaf)

    def update(self, loss: torch.Tensor) -> torch.Tensor:
        """One step on log T that lowers ``loss`` (the SNNL computed with the T returned by
        the latest :meth:`temperature` call). Keeps the graph for the network's backward.
        Returns dSNNL/dlog T as a 0-d float64 tensor (no host synchronisation)."""
        leaf = self._take_leaf()
        (grad,) = torch.autograd.grad(loss, leaf, retain_graph=True, allow_unused=True)
        if grad is None:
            return torch.zeros((), dtype=self.log_t.dtype, device=self.log_t.device)
        g = grad.detach().to(self.log_t.dtype)
        self._step(g)
        return g

    @staticmethod
    def update_all(onlines: "list[OnlineTemperature]", losses: "list[torch.Tensor]") -> None:
        """:meth:`update` for several temperatures, each with the loss computed from its
        latest :meth:`temperature`, in one backward pass (a loss may depend on its own
        temperature only, as the layers of :func:`snnl.soft_nearest_neighbor_losses` do)."""
        leaves = [online._take_leaf() for online in onlines]
        grads = torch.autograd.grad(torch.stack(list(losses)).sum(), leaves, retain_graph=True, allow_unused=True)
        for online, grad in zip(onlines, grads):
            if grad is not None:
                online._step(grad.detach().to(online.log_t.dtype))

    def update_on_backward(self, scale: float) -> None:
        """Take :meth:`update`'s step during the backward pass of an objective that
        contains this SNNL, instead of a separate backward now. ``scale`` turns the
        gradient that reaches T in that backward into dSNNL/dlog T: for
        ``total = ce - alpha * SNNL`` it is ``-1 / alpha``. A constant positive factor on
        the objective (loss scaling, gradient accumulation) does not change the step,
        which is RMS-normalised.

        This saves :meth:`update`'s separate backward through the SNNL, which repeats the
        layer's whole (b x b) @ (b x d) product only to read one scalar, and it never
        synchronises with the device."""
        leaf = self._take_leaf()
        factor = float(scale)

        def hook(grad: torch.Tensor) -> None:
            self._step(grad.detach().to(self.log_t.dtype) * factor)

        leaf.register_hook(hook)

    def _take_leaf(self) -> torch.Tensor:
        if self._leaf is None:
            raise RuntimeError("call temperature() and compute the SNNL with it before update()")
        leaf, self._leaf = self._leaf, None
        return leaf

    @torch.no_grad()
    def _step(self, g: torch.Tensor) -> None:
        """log T -= lr * g / RMS(g), skipped for a non-finite g; tensor ops only (no sync)."""
        ok = torch.isfinite(g)
        g = torch.where(ok, g, torch.zeros_like(g))
        self.steps.add_(ok.to(self.steps.dtype))
        self.sq_avg.copy_(torch.where(ok, self.sq_avg * self.beta + (1.0 - self.beta) * g * g, self.sq_avg))
        correction = 1.0 - self.beta ** self.steps.double()
        rms = torch.sqrt(self.sq_avg / torch.where(correction > 0, correction, torch.ones_like(correction)))
        move = ok & (rms > 0)
        self.log_t.sub_(torch.where(move, self.lr * g / torch.where(move, rms, torch.ones_like(rms)), torch.zeros_like(g)))

    def extra_repr(self) -> str:
        return f"T={self.value:.4g}, lr={self.lr}"


class InverseTemperature(nn.Module):
    """The official code's learned temperature: ``T = T0 / t``, with ``t`` starting at 1 and taking
    one plain gradient step per batch, ``t -= lr * dSNNL/dt``, before the batch's loss is computed
    at the new T (cleverhans v3.1, ``SNNLCrossEntropy.optimized_temp_SNNL``, lr 0.1).

    Kept for the ``official`` regime's variant (``train.temperature: inverse_t``); it is the paper's
    "optimal temperature" as the official code trained it. Nothing keeps ``t > 0``, as in the
    official code: a ``t`` that crosses 0 makes T negative and the loss non-finite, which the
    training guards stop with an error. :class:`OnlineTemperature` is our positive alternative.

    Args:
        initial: T0 > 0 (the official demo's 100).
        lr: the step on ``t`` (the official 0.1).
    """

    def __init__(self, initial: float = 100.0, lr: float = 0.1):
        super().__init__()
        if not initial > 0:
            raise ValueError(f"InverseTemperature: initial must be > 0, got {initial!r}")
        self.initial, self.lr = float(initial), float(lr)
        self.register_buffer("t", torch.ones((), dtype=torch.float64))

    @property
    def value(self) -> float:
        """The current T as a Python float (a host read: for logging and metrics only)."""
        return float(self.temperature())

    def temperature(self) -> torch.Tensor:
        """The current T = T0 / t (0-d float64 tensor, no gradient)."""
        return self.initial / self.t

    def step(self, loss_at) -> torch.Tensor:
        """One official step: ``t -= lr * d loss_at(T0 / t) / dt``; returns the new T (0-d float64).

        ``loss_at`` maps a 0-d temperature tensor to the layer's SNNL on detached activations.
        No host synchronisation."""
        t = self.t.detach().clone().requires_grad_(True)
        with torch.enable_grad():
            (grad,) = torch.autograd.grad(loss_at(self.initial / t), t)
        with torch.no_grad():
            self.t.sub_(self.lr * grad.to(self.t.dtype))
        return self.temperature()
