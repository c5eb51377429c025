"""The bonus measurements (docs/RESULTS.md, "What each bonus does"): the pinned fraction against a
hand-placed batch and a float64 loop, right at its tolerance on both sides; the gradient ratio
against torch.autograd on an independent forward; measure_bonus changes no state."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from snnl.regularizer import EntanglementRegularizer
from helpers.oracles import cleverhans_terms_loop
from snnl.training.bonus import measure_bonus, pinned_fraction

EPS = 1e-5
CAP = -math.log(EPS)


def exact_snnl_loop(x, y, temperature) -> torch.Tensor:
    """The exact SNNL, float64, an explicit loop over anchors (pairwise differences, no cap):
    mean over anchors with a partner of -log(sum_{j != i, same} e^{-d_ij/T} / sum_{k != i} e^{-d_ik/T})."""
    x = x.reshape(len(x), -1).double()
    terms = []
    for i in range(len(x)):
        logits = [-((x[i] - x[k]) ** 2).sum() / temperature for k in range(len(x)) if k != i]
        same = [bool(y[k] == y[i]) for k in range(len(x)) if k != i]
        if any(same):
            all_ = torch.logsumexp(torch.stack(logits), 0)
            pos = torch.logsumexp(torch.stack([a for a, s in zip(logits, same) if s]), 0)
            terms.append(all_ - pos)
    return torch.stack(terms).mean()


# ---------------------------------------------------------------------------------------
# pinned fraction


def test_pinned_fraction_of_a_hand_placed_batch():
    T = 2.0
    x = torch.tensor([[0.0, 0.0], [0.3, 0.0],  # class 0, close together: not pinned
                      [0.0, 0.3],  # class 1 among class 0 and its partners far away: pinned
                      [20.0, 0.0],  # class 0, everything > 190 T away: pinned
                      [0.0, 20.0], [0.0, 20.5]])  # class 1, a close pair: not pinned
    y = torch.tensor([0, 0, 1, 0, 1, 1])
    loop = cleverhans_terms_loop(x, y, T)
    by_loop = [bool(t >= CAP - 1e-3) for t in loop]
    assert by_loop == [False, False, True, True, False, False]  # the hand placement holds
    frac = pinned_fraction(x, y, T)
    assert frac.dtype == torch.float64 and frac.shape == ()
    assert float(frac) == pytest.approx(2 / 6, abs=1e-12)
    # a low temperature pins every anchor; a high one none
    assert float(pinned_fraction(x, y, 1e-3)) == 1.0
    assert float(pinned_fraction(x, y, 1e4)) == 0.0


@pytest.mark.parametrize("T", [1.0, 4.0])
@pytest.mark.parametrize("margin, pinned", [(-2e-5, 1.0), (2e-5, 0.0)])
def test_pinned_fraction_at_the_tolerance_boundary(T, margin, pinned):
    """Two same-class points at the distance where each term is cap - (1e-3 + margin) nats:
    within the tolerance (pinned) for margin < 0, just outside for margin > 0."""
    delta = 1e-3 + margin
    q = EPS * math.expm1(delta)  # eps + pick = eps * e^delta
    f = q * EPS / (1 - q)  # pick = f / (eps + f)
    d = -T * math.log(f)  # about 30 T
    assert 29 * T < d < 31 * T
    x = torch.tensor([[0.0, 0.0], [math.sqrt(d), 0.0]])
    y = torch.tensor([0, 0])
    loop = cleverhans_terms_loop(x, y, T)
    torch.testing.assert_close(loop, torch.full((2,), CAP - delta, dtype=torch.float64), rtol=0, atol=1e-7)
    assert float(pinned_fraction(x, y, T)) == pinned


# ---------------------------------------------------------------------------------------
# gradient ratio


def tiny_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(nn.Flatten(), nn.Linear(8, 12), nn.ReLU(), nn.Linear(12, 6), nn.ReLU(), nn.Linear(6, 3))


def tiny_batch():
    g = torch.Generator().manual_seed(2)
    images = torch.randint(0, 256, (12, 1, 2, 4), generator=g, dtype=torch.uint8)
    return images, torch.arange(12) % 3


def independent_forward(net: nn.Sequential, params: list[torch.Tensor], images: torch.Tensor):
    """The hidden ReLU outputs and logits of ``net`` at ``params`` (float64 copies), written out."""
    w1, b1, w2, b2, w3, b3 = params
    x = images.double().div(255).flatten(1)
    h1 = torch.relu(x @ w1.T + b1)
    h2 = torch.relu(h1 @ w2.T + b2)
    return {"2": h1, "4": h2}, h2 @ w3.T + b3


def norm(grads) -> float:
    return math.sqrt(sum(float((g**2).sum()) for g in grads))


@pytest.mark.parametrize("numerics, temperature, alpha", [("exact", "online", 0.3), ("cleverhans", 1.5, 10.0),
                                                         ("cleverhans", "inverse_t", 2.0)])
def test_grad_ratio_matches_autograd_on_an_independent_forward(numerics, temperature, alpha):
    net, (images, y) = tiny_net(), tiny_batch()
    layers = ["2", "4"]
    reg = EntanglementRegularizer(net, layers=layers, alpha=alpha, temperature=temperature, numerics=numerics,
                                  initial_temperature=0.7, temperature_lr=0.1)
    # one training step moves the learned temperatures away from their start
    out = reg(net(images.float() / 255), y)
    out.total.backward()
    net.zero_grad(set_to_none=True)
    temps = reg.current_temperatures()
    if temperature != 1.5:
        assert all(t != pytest.approx(0.7, rel=1e-6) for t in temps.values())

    result = measure_bonus(net, reg, images, y, layers)

    params = [p.detach().double().requires_grad_(True) for p in net.parameters()]
    hs, logits = independent_forward(net, params, images)
    ce_norm = norm(torch.autograd.grad(nn.functional.cross_entropy(logits, y), params, retain_graph=True))
    loss = exact_snnl_loop if numerics == "exact" else (lambda h, y, t: cleverhans_terms_loop(h, y, t).mean())
    for name in layers:
        snnl = loss(hs[name], y, temps[name])
        grads = torch.autograd.grad(alpha * snnl, params, allow_unused=True, retain_graph=True)
        expected = norm([g for g in grads if g is not None]) / ce_norm
        assert expected > 1e-6
        r = result[name]
        assert r["grad_ratio"] == pytest.approx(expected, rel=1e-4)
        assert r["train_temperature"] == pytest.approx(temps[name], rel=1e-12)
        expected_pinned = float((cleverhans_terms_loop(hs[name].detach(), y, temps[name]) >= CAP - 1e-3).double().mean())
        assert r["pinned_fraction"] == expected_pinned


@pytest.mark.parametrize("temperature", ["online", "inverse_t", 3.0])
@pytest.mark.parametrize("mode", ["train", "eval"])
def test_measure_bonus_leaves_temperatures_mode_and_grads_as_they_were(temperature, mode):
    net, (images, y) = tiny_net(), tiny_batch()
    reg = EntanglementRegularizer(net, layers=["2", "4"], alpha=0.5, temperature=temperature,
                                  numerics="cleverhans" if temperature == "inverse_t" else "exact",
                                  initial_temperature=2.0)
    out = reg(net(images.float() / 255), y)
    out.total.backward()
    net.zero_grad(set_to_none=True)
    net.train(mode == "train")
    before = {k: v.clone() for k, v in reg.state_dict().items()}
    temps = reg.current_temperatures()

    measure_bonus(net, reg, images, y, ["2", "4"])

    assert reg.current_temperatures() == temps
    after = reg.state_dict()
    assert before.keys() == after.keys() and all(torch.equal(before[k], after[k]) for k in before)
    assert all(m.training == (mode == "train") for m in net.modules())
    assert all(p.grad is None for p in net.parameters())
    assert reg.layer_outputs() == {}  # its hooks were paused: nothing captured
