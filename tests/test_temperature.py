"""optimal_temperature against a dense grid of an independent reference; OnlineTemperature's tracking."""

from __future__ import annotations

import math

import pytest
import torch
from helpers.oracles import snnl_torch_reference

from snnl import OnlineTemperature, optimal_temperature, soft_nearest_neighbor_loss


def _clusters(b=128, d=16, classes=4, spread=0.8, seed=0):
    g = torch.Generator().manual_seed(seed)
    centres = torch.randn(classes, d, generator=g, dtype=torch.float64) * spread
    y = torch.arange(classes).repeat_interleave(b // classes)
    return torch.randn(b, d, generator=g, dtype=torch.float64) + centres[y], y


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_optimal_temperature_matches_dense_grid(seed):
    x, y = _clusters(seed=seed)
    ts = torch.logspace(-2, 4, 601, dtype=torch.float64)  # 0.01 decade resolution
    values = torch.stack([snnl_torch_reference(x, y, float(t)) for t in ts])
    i = int(values.argmin())
    opt = optimal_temperature(x, y)
    assert opt.evaluations <= 40
    assert not opt.at_boundary
    assert abs(math.log10(opt.temperature) - math.log10(float(ts[i]))) <= 0.01 + 1e-9
    assert opt.loss <= float(values[i]) + 1e-9  # at least as good as the best grid point
    assert math.isclose(opt.loss, float(snnl_torch_reference(x, y, opt.temperature)), rel_tol=1e-9)


def test_optimal_temperature_flags_separated_classes_at_boundary():
    y = torch.arange(4).repeat_interleave(10)
    x = torch.randn(40, 2, dtype=torch.float64) * 0.01 + 100.0 * torch.nn.functional.one_hot(y, 4)[:, :2].double()
    x = x + torch.tensor([[0.0, 0.0]]) + 50.0 * y.unsqueeze(1).double()
    opt = optimal_temperature(x, y)
    assert opt.at_boundary and opt.loss < 1e-6  # SNNL -> 0 as T -> 0 for isolated classes


def test_optimal_temperature_does_not_track_gradients():
    x, y = _clusters()
    x.requires_grad_(True)
    opt = optimal_temperature(x, y)
    assert isinstance(opt.temperature, float) and x.grad is None


@pytest.mark.parametrize("factor", [100.0, 0.01])
def test_online_temperature_tracks_optimal(factor):
    x, y = _clusters()
    target = optimal_temperature(x, y)
    online = OnlineTemperature(initial=target.temperature * factor, lr=0.1)
    for _ in range(400):
        t = online.temperature()
        loss = soft_nearest_neighbor_loss(x, y, t)
        online.update(loss)
    assert abs(math.log(online.value / target.temperature)) < 0.05
    assert math.isclose(float(soft_nearest_neighbor_loss(x, y, online.value)), target.loss, rel_tol=1e-4)


def test_online_temperature_minimises_even_when_network_maximises():
    """A network maximising SNNL (alpha > 0) and the temperature minimising it: T stays positive
    and finite, and keeps tracking the optimum of the moving representation."""
    torch.manual_seed(0)
    x, y = _clusters(d=8)
    x = x.float()
    net = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU())
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)
    online = OnlineTemperature(initial=100.0, lr=0.1)
    first = None
    for step in range(300):
        h = net(x)
        t = online.temperature()
        loss = soft_nearest_neighbor_loss(h, y, t)
        online.update(loss)
        opt.zero_grad()
        (-10.0 * loss).backward()  # maximise
        opt.step()
        first = float(loss.detach()) if first is None else first
        assert online.value > 0 and math.isfinite(online.value)
    assert float(loss.detach()) > first  # the network did push the loss up
    h = net(x).detach()
    target = optimal_temperature(h, y)
    # the online T measures (almost) the minimum SNNL of the representation it tracks
    assert float(soft_nearest_neighbor_loss(h, y, online.value)) <= target.loss + 0.02


def test_online_temperature_is_a_buffer_saved_in_state_dict():
    online = OnlineTemperature(initial=5.0)
    assert list(dict(online.named_parameters())) == []
    assert "log_t" in online.state_dict()
    assert math.isclose(online.value, 5.0)


@pytest.mark.parametrize("bad", [0.0, -2.0, float("nan"), float("inf")])
def test_online_temperature_rejects_bad_initial(bad):
    with pytest.raises(ValueError, match="initial temperature"):
        OnlineTemperature(initial=bad)
