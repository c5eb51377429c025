"""Entanglement regularizer: maximise (or minimise) SNNL on chosen layers of any nn.Module."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Sequence, Union

import torch
import torch.nn.functional as F
from torch import nn

from snnl.errors import ConfigError
from snnl.layers import hidden_layer_names, register_output_hooks, resolve_modules, shares_memory
from snnl.legacy import legacy_snnl
from snnl.loss import DistanceSpec, soft_nearest_neighbor_loss, soft_nearest_neighbor_losses
from snnl.temperature import InverseTemperature, OnlineTemperature, optimal_temperature

LayerSpec = Union[str, Sequence[str]]


@dataclass
class RegularizedLoss:
    """The objective and what to log. ``total`` is what to call ``backward()`` on.

    Every value is a 0-d tensor on the model's device (the temperatures detached), so
    computing them makes no host synchronisation; :meth:`log_dict` reads them all at once.
    """

    total: torch.Tensor
    cross_entropy: torch.Tensor
    snnl: dict[str, torch.Tensor] = field(default_factory=dict)
    temperature: dict[str, torch.Tensor] = field(default_factory=dict)

    def log_dict(self) -> dict[str, float]:
        """Python floats for logging: ce, total, snnl/<layer>, T/<layer> (one host read)."""
        keys = ["ce", "total"] + [f"snnl/{k}" for k in self.snnl] + [f"T/{k}" for k in self.temperature]
        tensors = [self.cross_entropy, self.total, *self.snnl.values(), *self.temperature.values()]
        values = torch.stack([t.detach().to(torch.float64).reshape(()) for t in tensors]).tolist()
        return dict(zip(keys, values))


class EntanglementRegularizer(nn.Module):
    """``loss = CE(logits, y) - alpha * sum_l SNNL(h_l, y, T_l)`` (the paper's Eq. 3).

    Forward hooks on the chosen layers capture their outputs during the model's own
    forward pass (no second pass). ``alpha > 0`` maximises entanglement (the paper's
    "entangled" models); ``alpha < 0`` minimises it; ``alpha = 0`` gives plain CE while
    still measuring SNNL (on detached activations, and still updating online temperatures).
    With a fixed or online temperature, the forward, the backward and the temperature step
    make no host synchronisation (a CUDA training step stays asynchronous and capturable).

    Args:
        model: any ``nn.Module``.
        layers: ``"all"`` (every hidden layer, see :func:`hidden_layer_names`) or a list
            of module names as in ``model.named_modules()``.
        alpha: weight of the SNNL term. Default 0.1: the official code's 10 was tuned for
            its eps-capped loss, and with this exact loss it drives a network to chance
            accuracy (docs/DEVIATIONS.md D12; tests/test_readme.py).
        temperature: a positive float (fixed), ``"optimal"`` (recomputed each step by
            :func:`snnl.optimal_temperature`, no gradient; its search runs on the host and
            synchronises), ``"online"`` (one :class:`OnlineTemperature` per layer,
            learned to minimise SNNL), or ``"inverse_t"`` (one :class:`InverseTemperature` per
            layer: the official code's T0 / t with a plain step on t).
        initial_temperature, temperature_lr: for ``"online"`` and ``"inverse_t"``.
        numerics: ``"exact"`` (the log-space loss) or ``"cleverhans"`` (:func:`snnl.legacy_snnl`,
            the official code's eps-capped numerics, for the ``official`` regime of the
            replication; not with ``"optimal"`` or a callable distance).
        distance: passed to the loss (``"sqeuclidean"`` or ``"cosine"`` with cleverhans numerics).
        pool: ``"none"`` or ``"avg"`` (global-average-pool 4-D conv maps before the loss).

    Usage::

        reg = EntanglementRegularizer(model, layers="all", alpha=0.1, temperature="online")
        logits = model(x)
        out = reg(logits, y)
        out.total.backward()
    """

    def __init__(
        self,
        model: nn.Module,
        layers: LayerSpec = "all",
        alpha: float = 0.1,
        temperature: Union[float, str] = "online",
        *,
        initial_temperature: float = 100.0,
        temperature_lr: float = 0.1,
        distance: DistanceSpec = "sqeuclidean",
        pool: str = "none",
        numerics: str = "exact",
    ):
        super().__init__()
        self.layer_names = hidden_layer_names(model) if layers == "all" else list(layers)
        if not self.layer_names:
            raise ConfigError("EntanglementRegularizer needs at least one layer")
        modules = resolve_modules(model, self.layer_names)
        if pool not in ("none", "avg"):
            raise ConfigError(f"pool must be 'none' or 'avg', got {pool!r}")
        if isinstance(temperature, str) and temperature not in ("online", "optimal", "inverse_t"):
            raise ConfigError(
                f"temperature must be a positive number, 'online', 'optimal' or 'inverse_t', got {temperature!r}")
        if numerics not in ("exact", "cleverhans"):
            raise ConfigError(f"numerics must be 'exact' or 'cleverhans', got {numerics!r}")
        if numerics == "cleverhans" and (temperature == "optimal" or distance not in ("sqeuclidean", "cosine")):
            raise ConfigError("numerics='cleverhans' takes a fixed, 'online' or 'inverse_t' temperature and the "
                              f"distance 'sqeuclidean' or 'cosine', got {temperature!r} and {distance!r}")
        if not isinstance(temperature, str) and not float(temperature) > 0:
            raise ConfigError(f"temperature must be > 0, got {temperature!r}")
        self.alpha = float(alpha)
        self.numerics = numerics
        self.mode = temperature if isinstance(temperature, str) else "fixed"
        self.fixed_temperature = None if isinstance(temperature, str) else float(temperature)
        self.distance = distance
        self.pool = pool
        self.temperatures = nn.ModuleDict()
        if self.mode in ("online", "inverse_t"):
            kind = OnlineTemperature if self.mode == "online" else InverseTemperature
            for name in self.layer_names:
                self.temperatures[_key(name)] = kind(initial_temperature, temperature_lr)
        self._outputs: dict[str, torch.Tensor] = {}
        # copy each layer's output until a step shows that nothing modifies it in place
        self._copy = {name: True for name in self.layer_names}
        self._watch: dict[str, tuple[torch.Tensor, int]] = {}
        self._paused = False
        self._handles = register_output_hooks(model, modules, self._receive)

    @contextlib.contextmanager
    def paused(self):
        """Forward passes inside this block are not captured (no copy, no SNNL): for
        steps that do not measure, e.g. the baseline's unlogged steps."""
        self._paused = True
        try:
            yield
        finally:
            self._paused = False

    def _receive(self, name: str, output: torch.Tensor) -> None:
        """Keep the layer's (pooled) output for the loss. A later in-place operation
        (``ReLU(inplace=True)``, a residual ``out += x``) would change a tensor that shares
        the output's memory: such a tensor is copied on the first step, and on later steps
        only for layers whose output that step showed to be modified (the output's version
        counter, read again in :meth:`forward`, tells; reading it costs no synchronisation)."""
        if self._paused:
            return
        h = self.prepare(output)
        if not shares_memory(h, output):  # pooled: a new tensor already
            self._outputs[name] = h
            return
        self._watch[name] = (output, output._version)
        self._outputs[name] = h.clone() if self._copy[name] else h

    def _check_in_place(self) -> None:
        """After the forward pass: learn which layers need their copy, and refuse values
        that an in-place operation changed in a layer that was not copied."""
        for name, (output, version) in self._watch.items():
            modified = output._version != version
            if self._copy[name]:
                self._copy[name] = modified
            elif modified:
                self._copy[name] = True
                raise RuntimeError(
                    f"EntanglementRegularizer: the output of layer `{name}` was modified in place after it was "
                    "captured (an in-place operation later in the forward pass, e.g. ReLU(inplace=True) or "
                    "`out += x`), on this step but not on the first; its SNNL would be measured on the modified "
                    "values. Its output is copied from now on: run the step again"
                )
        self._watch = {}

    def remove(self) -> None:
        """Detach the hooks from the model."""
        for h in self._handles:
            h.remove()
        self._handles = []
        self._outputs = {}

    def current_temperatures(self) -> dict[str, float | None]:
        """Each layer's current training temperature as a float (None with ``"optimal"``: it is
        recomputed per batch). Reads the device: for logging and metrics, not the hot path."""
        if self.mode == "fixed" or self.mode == "optimal":
            return {n: self.fixed_temperature for n in self.layer_names}
        return {n: self.temperatures[_key(n)].value for n in self.layer_names}

    def layer_outputs(self) -> dict[str, torch.Tensor]:
        """The captured (and pooled, if configured) outputs of the latest forward pass."""
        return {n: self._outputs[n] for n in self.layer_names if n in self._outputs}

    def prepare(self, h: torch.Tensor) -> torch.Tensor:
        """A layer output as the loss sees it: global-average-pooled if configured (4-D maps)."""
        if self.pool == "avg" and h.dim() == 4:
            h = h.mean(dim=(2, 3))
        return h

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> RegularizedLoss:
        ce = F.cross_entropy(logits, labels)
        missing = [n for n in self.layer_names if n not in self._outputs]
        if missing:
            raise RuntimeError(f"no output captured for layer(s) {missing}: run the model's forward pass first")
        self._check_in_place()
        hs = [self._outputs[n] for n in self.layer_names]
        self._outputs = {}
        if self.alpha == 0.0:  # measured only: no gradient reaches the network, so keep no graph through it
            hs = [h.detach() for h in hs]
        if self.mode == "optimal":
            values, temps = self._at_optimal_temperatures(hs, labels)
        else:
            values, temps = self._at_fixed_or_online_temperatures(hs, labels)
        snnl = dict(zip(self.layer_names, values))
        total = ce
        if self.alpha != 0.0:
            total = ce - self.alpha * torch.stack(values).sum()
        return RegularizedLoss(total, ce, snnl, dict(zip(self.layer_names, temps)))

    def _at_fixed_or_online_temperatures(self, hs: list[torch.Tensor], labels: torch.Tensor):
        """Every layer's SNNL (exact numerics: in one fused call) and the learned temperatures'
        step: online, during the objective's backward, or (alpha = 0) right away; inverse_t,
        before the loss, as the official code did. No host synchronisation."""
        learned = [self.temperatures[_key(n)] for n in self.layer_names] if self.temperatures else []
        if self.mode == "inverse_t":
            ts = [m.step(lambda T, h=h: self._loss(h.detach(), labels, T)) for m, h in zip(learned, hs)]
        elif self.mode == "online":
            ts = [online.temperature() for online in learned]
        else:
            ts = [self.fixed_temperature] * len(hs)
        if callable(self.distance) or self.numerics == "cleverhans":
            values = [self._loss(h, labels, t) for h, t in zip(hs, ts)]
        else:
            values = list(soft_nearest_neighbor_losses(hs, labels, ts, distance=self.distance).unbind())
        if self.mode == "online":
            if self.alpha == 0.0:
                OnlineTemperature.update_all(learned, values)  # one small backward for every layer's T
            else:  # the step is taken when total.backward() reaches T: d total/dT = -alpha dSNNL/dT
                for online in learned:
                    online.update_on_backward(-1.0 / self.alpha)
        if self.mode == "fixed":
            device = hs[0].device
            return values, [torch.full((), self.fixed_temperature, dtype=torch.float64, device=device)] * len(hs)
        return values, [torch.as_tensor(t).detach() for t in ts]

    def layer_snnl(self, output: torch.Tensor, labels: torch.Tensor, temperature) -> torch.Tensor:
        """The SNNL this regularizer computes for one layer's raw ``output`` (pooled as configured)
        at ``temperature``, with its numerics; a 0-d tensor with the graph to ``output``."""
        return self._loss(self.prepare(output), labels, temperature)

    def _loss(self, h: torch.Tensor, labels: torch.Tensor, temperature) -> torch.Tensor:
        """One layer's SNNL in this regularizer's numerics."""
        if self.numerics == "cleverhans":
            return legacy_snnl(h, labels, temperature, cos_distance=self.distance == "cosine")
        return soft_nearest_neighbor_loss(h, labels, temperature, distance=self.distance)

    def _at_optimal_temperatures(self, hs: list[torch.Tensor], labels: torch.Tensor):
        """Each layer's SNNL at its optimal temperature (a host-side search: it synchronises)."""
        values, temps = [], []
        for h in hs:
            opt = optimal_temperature(h, labels, distance=self.distance)
            values.append(soft_nearest_neighbor_loss(h, labels, opt.temperature, distance=self.distance))
            temps.append(torch.full((), opt.temperature, dtype=torch.float64, device=h.device))
        return values, temps


def _key(name: str) -> str:
    """ModuleDict keys cannot contain dots."""
    return name.replace(".", "__")
