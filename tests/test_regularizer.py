"""EntanglementRegularizer: per-layer values equal the loss called directly on the same layer
outputs (computed by running the layers by hand), the objective is CE - alpha * sum SNNL, and the
sign of alpha moves the entanglement the right way."""

from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from snnl import ConfigError, EntanglementRegularizer, soft_nearest_neighbor_loss


def small_cnn():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.ReLU()),
        nn.Sequential(nn.Conv2d(4, 6, 3, stride=2), nn.ReLU()),
        nn.Sequential(nn.Flatten(), nn.Linear(6 * 3 * 3, 12), nn.ReLU()),
        nn.Linear(12, 3),
    )


def _data(b=24):
    g = torch.Generator().manual_seed(1)
    return torch.rand(b, 1, 8, 8, generator=g), torch.arange(b) % 3


def _by_hand(model, x):
    outs, h = [], x
    for child in model:
        h = child(h)
        outs.append(h)
    return outs[:-1], outs[-1]


@pytest.mark.parametrize("pool", ["none", "avg"])
def test_per_layer_values_equal_direct_loss(pool):
    model = small_cnn()
    x, y = _data()
    reg = EntanglementRegularizer(model, layers="all", alpha=2.5, temperature=7.0, pool=pool)
    assert reg.layer_names == ["0", "1", "2"]
    out = reg(model(x), y)
    hidden, logits = _by_hand(model, x)
    want = {}
    for name, h in zip(["0", "1", "2"], hidden):
        if pool == "avg" and h.dim() == 4:
            h = h.mean(dim=(2, 3))
        want[name] = soft_nearest_neighbor_loss(h, y, 7.0)
    for name in want:
        assert torch.allclose(out.snnl[name], want[name], rtol=1e-6), name
        assert out.temperature[name] == 7.0
    ce = F.cross_entropy(logits, y)
    assert torch.allclose(out.cross_entropy, ce)
    assert torch.allclose(out.total, ce - 2.5 * sum(want.values()), rtol=1e-6)


def test_gradient_of_total_equals_gradient_of_explicit_objective():
    model = small_cnn()
    x, y = _data()
    reg = EntanglementRegularizer(model, alpha=3.0, temperature=5.0)
    reg(model(x), y).total.backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    hidden, logits = _by_hand(model, x)
    objective = F.cross_entropy(logits, y) - 3.0 * sum(soft_nearest_neighbor_loss(h, y, 5.0) for h in hidden)
    objective.backward()
    for a, b in zip(got, [p.grad for p in model.parameters()]):
        assert torch.allclose(a, b, rtol=1e-5, atol=1e-7)


def test_online_mode_reports_the_temperature_it_used_and_no_second_forward():
    model = small_cnn()
    x, y = _data()
    calls = {"n": 0}
    model[0].register_forward_hook(lambda *a: calls.__setitem__("n", calls["n"] + 1))
    reg = EntanglementRegularizer(model, alpha=1.0, temperature="online", initial_temperature=50.0)
    out = reg(model(x), y)
    assert calls["n"] == 1
    hidden, _ = _by_hand(model, x)
    for name, h in zip(reg.layer_names, hidden):
        assert math.isclose(out.temperature[name], 50.0, rel_tol=1e-9)
        assert torch.allclose(out.snnl[name], soft_nearest_neighbor_loss(h, y, 50.0), rtol=1e-6)
    # with alpha != 0 the temperatures move during the network's backward (no extra backward)
    assert all(math.isclose(t.value, 50.0) for t in reg.temperatures.values())
    out.total.backward()
    assert all(not math.isclose(t.value, 50.0) for t in reg.temperatures.values())
    assert any(k.endswith("log_t") for k in reg.state_dict())
    # the temperature is not a parameter of anything an optimizer would see
    assert not any("log_t" in n for n, _ in model.named_parameters())


def test_named_layers_and_bad_names():
    model = small_cnn()
    reg = EntanglementRegularizer(model, layers=["1.1", "2"], alpha=1.0, temperature=1.0)
    assert reg.layer_names == ["1.1", "2"]
    with pytest.raises(ConfigError, match="not found"):
        EntanglementRegularizer(model, layers=["nope"], temperature=1.0)
    with pytest.raises(ConfigError, match="temperature"):
        EntanglementRegularizer(model, temperature="hot")


def test_model_hidden_layers_attribute_is_used():
    model = small_cnn()
    model.hidden_layers = ["2"]
    assert EntanglementRegularizer(model, temperature=1.0).layer_names == ["2"]


def test_forward_without_model_pass_is_a_clear_error():
    model = small_cnn()
    reg = EntanglementRegularizer(model, temperature=1.0)
    with pytest.raises(RuntimeError, match="forward pass"):
        reg(torch.zeros(4, 3), torch.zeros(4, dtype=torch.long))


def test_remove_detaches_hooks():
    model = small_cnn()
    x, _ = _data()
    reg = EntanglementRegularizer(model, temperature=1.0)
    reg.remove()
    model(x)
    assert reg._outputs == {}


def _train_mlp(alpha, steps=150):
    from sklearn.datasets import load_digits

    digits = load_digits()
    x = torch.tensor(digits.data[:512], dtype=torch.float32) / 16.0
    y = torch.tensor(digits.target[:512])
    torch.manual_seed(0)
    model = nn.Sequential(nn.Sequential(nn.Linear(64, 64), nn.ReLU()), nn.Sequential(nn.Linear(64, 32), nn.ReLU()),
                          nn.Linear(32, 10))
    reg = EntanglementRegularizer(model, alpha=alpha, temperature="online", initial_temperature=10.0)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)
    for _ in range(steps):
        out = reg(model(x), y)
        opt.zero_grad()
        out.total.backward()
        opt.step()
    return out


def test_sign_of_alpha_moves_entanglement():
    """alpha > 0 (the paper) entangles the hidden layers more than alpha < 0 (which separates)."""
    up, down = _train_mlp(alpha=1.0), _train_mlp(alpha=-1.0)
    for name in up.snnl:
        assert float(up.snnl[name].detach()) > float(down.snnl[name].detach()) + 0.1, name
    assert all(t > 0 for t in up.temperature.values())


def test_alpha_zero_measures_without_touching_the_network_gradient():
    model = small_cnn()
    x, y = _data()
    reg = EntanglementRegularizer(model, alpha=0.0, temperature="online", initial_temperature=20.0)
    out = reg(model(x), y)
    for value in out.snnl.values():  # no path from the measured SNNL back to the weights
        grads = torch.autograd.grad(value, list(model.parameters()), allow_unused=True, retain_graph=True)
        assert all(g is None for g in grads)
    out.total.backward()
    got = [p.grad.clone() for p in model.parameters()]
    model.zero_grad()
    F.cross_entropy(model(x), y).backward()
    for a, b in zip(got, [p.grad for p in model.parameters()]):
        assert torch.equal(a, b)
    hidden, _ = _by_hand(model, x)
    for name, h in zip(reg.layer_names, hidden):
        assert torch.allclose(out.snnl[name], soft_nearest_neighbor_loss(h, y, 20.0), rtol=1e-6)


@pytest.mark.parametrize("alpha", [0.5, -2.0])
def test_online_step_in_the_backward_equals_a_separate_update(alpha):
    """The step taken when total.backward() reaches T (update_on_backward) is the step of a
    separate autograd.grad of the SNNL alone (update), for either sign of alpha: both lower SNNL."""
    x, y = _data()
    moved = []
    for deferred in (False, True):
        torch.manual_seed(0)
        model = small_cnn()
        reg = EntanglementRegularizer(model, alpha=alpha, temperature="online", initial_temperature=3.0)
        logits = model(x)
        if deferred:
            out = reg(logits, y)
            out.total.backward()
        else:
            reg.alpha = 0.0  # the separate update() path (on detached activations: same dSNNL/dT)
            out = reg(logits, y)
        moved.append({k: float(t.log_t) for k, t in reg.temperatures.items()})
    for k in moved[0]:
        assert moved[1][k] == pytest.approx(moved[0][k], rel=1e-6, abs=1e-9)
        assert moved[1][k] != pytest.approx(math.log(3.0), abs=1e-6)
