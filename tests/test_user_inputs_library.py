"""Inputs that real users hit, in the library (issue 14, cases 1 and 6).

Case 1: a model that modifies a hooked layer's output in place later on
(``nn.ReLU(inplace=True)``, a residual ``out += x``). Case 6: +inf (masked) distances with a
learned temperature. Each value is checked against an independent computation: the
float64 loop of tests/helpers/oracles.py on the module's own output, or a finite difference.
"""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from helpers.oracles import snnl_loop
from snnl import EntanglementRegularizer, OnlineTemperature, optimal_temperature, snnl_from_distances
from snnl.errors import DataError
from snnl.layers import capture


class Residual(nn.Module):
    """A residual block that adds its input to its branch in place, as torchvision's do."""

    def __init__(self, width: int):
        super().__init__()
        self.branch = nn.Linear(width, width)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x):
        out = self.branch(x)
        out += x
        return self.relu(out)


def _inplace_models():
    torch.manual_seed(0)
    yield "relu", nn.Sequential(nn.Linear(10, 8), nn.ReLU(inplace=True), nn.Linear(8, 3)), "0"
    torch.manual_seed(0)
    yield "residual", nn.Sequential(nn.Linear(10, 8), Residual(8), nn.Linear(8, 3)), "1.branch"
    torch.manual_seed(0)
    yield "dropout", nn.Sequential(nn.Linear(10, 8), nn.Dropout(0.5, inplace=True), nn.Linear(8, 3)), "0"


def _own_output(model, name, x):
    """The hooked module's output, recomputed by calling the module on its own input."""
    seen = {}
    module = dict(model.named_modules())[name]
    handle = module.register_forward_pre_hook(lambda m, inp: seen.setdefault("in", inp[0].detach().clone()))
    model(x)
    handle.remove()
    return module(seen["in"]).detach()


@pytest.mark.parametrize("case", list(_inplace_models()), ids=lambda c: c[0])
def test_regularizer_measures_the_hooked_module_output_not_the_in_place_result(case):
    _, model, name = case
    model.train()
    torch.manual_seed(1)
    x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
    reg = EntanglementRegularizer(model, layers=[name], alpha=1.0, temperature=5.0)
    torch.manual_seed(2)  # the same dropout mask in both passes
    out = reg(model(x), y)
    torch.manual_seed(2)
    want, _ = snnl_loop(_own_output(model, name, x).numpy(), y.numpy(), 5.0)
    assert float(out.snnl[name].detach()) == pytest.approx(want, rel=1e-5)


def test_regularizer_gradient_reaches_the_pre_activation_values():
    """d(-alpha SNNL)/dW of the Linear under an in-place ReLU equals the gradient of the
    float64 reference on the Linear's own output (plain autograd, no hooks)."""
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), nn.ReLU(inplace=True), nn.Linear(8, 3)).double()
    x, y = torch.randn(24, 10, dtype=torch.float64), torch.randint(0, 3, (24,))
    reg = EntanglementRegularizer(model, layers=["0"], alpha=1.0, temperature=5.0)
    out = reg(model(x), y)
    (out.total - out.cross_entropy).backward()
    got = model[0].weight.grad.clone()
    ref_w = model[0].weight.detach().clone().requires_grad_(True)
    h = x @ ref_w.T + model[0].bias.detach()
    d = ((h.unsqueeze(1) - h.unsqueeze(0)) ** 2).sum(-1)
    logits = -d / 5.0
    eye = torch.eye(24, dtype=torch.bool)
    same = (y.unsqueeze(0) == y.unsqueeze(1)) & ~eye
    ref = (torch.logsumexp(logits.masked_fill(eye, -math.inf), 1) - torch.logsumexp(logits.masked_fill(~same, -math.inf), 1))[same.any(1)].mean()
    (-ref).backward()
    torch.testing.assert_close(got, ref_w.grad, rtol=1e-7, atol=1e-10)


@pytest.mark.parametrize("case", list(_inplace_models())[:2], ids=lambda c: c[0])
def test_capture_records_the_module_output_before_later_in_place_ops(case):
    _, model, name = case
    torch.manual_seed(1)
    x = torch.randn(32, 10)
    with capture(model, [name]) as store:
        model(x)
    torch.testing.assert_close(store[name][0], _own_output(model, name, x))
    assert float(store[name][0].min()) < 0  # the pre-ReLU values, not relu(h)


# ---- case 6: +inf distances (masked pairs) with a learned temperature ----


def _masked_distances():
    torch.manual_seed(3)
    z = torch.randn(12, 3, dtype=torch.float64)
    dist = ((z.unsqueeze(1) - z.unsqueeze(0)) ** 2).sum(-1)
    labels = torch.tensor([0, 0, 0, 1, 1, 1, 2, 2, 2, 0, 1, 2])
    for i, j in [(0, 5), (3, 4), (6, 11), (2, 9)]:
        dist[i, j] = dist[j, i] = float("inf")
    return dist, labels


def _loop_on_masked(dist, labels, t):
    """Float64 loop over anchors, dropping masked pairs (their weight exp(-inf) is 0)."""
    total, n = 0.0, 0
    for i in range(len(labels)):
        num = sum(math.exp(-float(dist[i, j]) / t) for j in range(len(labels)) if j != i and labels[j] == labels[i])
        den = sum(math.exp(-float(dist[i, k]) / t) for k in range(len(labels)) if k != i)
        if num > 0:
            total += -math.log(num / den)
            n += 1
    return total / n


@pytest.mark.parametrize("t0", [0.7, 1.5, 6.0])
def test_masked_distances_give_finite_difference_gradient_in_temperature(t0):
    dist, labels = _masked_distances()
    t = torch.tensor(t0, dtype=torch.float64, requires_grad=True)
    loss = snnl_from_distances(dist, labels, t)
    loss.backward()
    assert float(loss) == pytest.approx(_loop_on_masked(dist, labels, t0), rel=1e-10)
    h = 1e-5 * t0
    fd = (_loop_on_masked(dist, labels, t0 + h) - _loop_on_masked(dist, labels, t0 - h)) / (2 * h)
    assert math.isfinite(float(t.grad))
    assert float(t.grad) == pytest.approx(fd, rel=1e-6, abs=1e-9)


def test_masked_distances_give_finite_gradients_for_the_distances():
    dist, labels = _masked_distances()
    d = dist.clone().requires_grad_(True)
    t = torch.tensor(1.5, dtype=torch.float64, requires_grad=True)
    snnl_from_distances(d, labels, t).backward()
    assert torch.isfinite(d.grad).all() and torch.isfinite(t.grad).all()
    assert (d.grad[torch.isinf(dist)] == 0).all()
    # finite differences on two finite entries (each moved symmetrically)
    for i, j in [(0, 1), (3, 7)]:
        e = torch.zeros_like(dist)
        e[i, j] = e[j, i] = 1e-6
        fd = (_loop_on_masked(dist + e, labels, 1.5) - _loop_on_masked(dist - e, labels, 1.5)) / 2e-6
        assert float(d.grad[i, j] + d.grad[j, i]) == pytest.approx(fd, rel=1e-5)


def test_an_anchor_whose_positives_are_all_masked_is_excluded_and_counted():
    dist, labels = _masked_distances()
    # anchor 4 (class 1: partners 3, 5, 10) loses all its partners
    for j in (3, 5, 10):
        dist[4, j] = dist[j, 4] = float("inf")
    res = snnl_from_distances(dist, labels, 1.5, return_stats=True)
    assert res.n_excluded == 1 and not bool(res.valid[4]) and math.isinf(float(res.per_anchor[4]))
    assert float(res.loss) == pytest.approx(_loop_on_masked(dist, labels, 1.5), rel=1e-10)


def test_online_temperature_moves_on_masked_distances():
    dist, labels = _masked_distances()
    online = OnlineTemperature(initial=1.5, lr=0.1)
    before = _loop_on_masked(dist, labels, 1.5)
    for _ in range(5):
        online.update(snnl_from_distances(dist, labels, online.temperature()))
    assert online.value != pytest.approx(1.5, rel=1e-6)
    assert _loop_on_masked(dist, labels, online.value) < before  # it minimises the SNNL


def test_optimal_temperature_scale_ignores_masked_pairs():
    """The search range is centred on the median finite distance: +inf pairs must not move
    it (compare the search on the matrix with a quarter of its pairs masked to the search
    on the distances with those pairs dropped: both from the same finite distances)."""
    from snnl.temperature import distance_scale

    dist, _ = _masked_distances()
    off = dist[~torch.eye(12, dtype=torch.bool)]
    assert distance_scale(dist) == pytest.approx(float(off[torch.isfinite(off)].median()))


@pytest.mark.parametrize("bad", [float("nan"), -1.0, float("-inf")])
def test_invalid_distances_are_refused(bad):
    dist, labels = _masked_distances()
    dist[1, 2] = bad
    with pytest.raises(DataError, match="NaN or negative"):
        snnl_from_distances(dist, labels, 1.0)


def test_optimal_temperature_refuses_non_finite_features():
    x = torch.randn(20, 4)
    x[3, 1] = float("nan")
    with pytest.raises(DataError, match="not finite"):
        optimal_temperature(x, torch.arange(20) % 2)


@pytest.mark.parametrize("case", list(_inplace_models()), ids=lambda c: c[0])
def test_in_place_models_stay_right_on_later_steps(case):
    """The copy is kept for layers that a later in-place op modifies (and dropped for the
    others): the measured SNNL stays the module's own output's on every step."""
    _, model, name = case
    reg = EntanglementRegularizer(model, layers=[name], alpha=1.0, temperature=5.0)
    for step in range(3):
        torch.manual_seed(10 + step)
        x, y = torch.randn(32, 10), torch.randint(0, 3, (32,))
        torch.manual_seed(2)
        out = reg(model(x), y)
        torch.manual_seed(2)
        want, _ = snnl_loop(_own_output(model, name, x).numpy(), y.numpy(), 5.0)
        assert float(out.snnl[name].detach()) == pytest.approx(want, rel=1e-5)


class SometimesInPlace(nn.Module):
    """Adds 1 in place to its input on the calls listed in ``when`` (data-dependent code)."""

    def __init__(self, when):
        super().__init__()
        self.when, self.calls = set(when), 0

    def forward(self, x):
        self.calls += 1
        if self.calls in self.when:
            x += 1.0
        return x


def test_an_in_place_op_that_appears_later_is_refused_not_measured_silently():
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(10, 8), SometimesInPlace(when={3}), nn.Linear(8, 3))
    reg = EntanglementRegularizer(model, layers=["0"], alpha=1.0, temperature=5.0)
    x, y = torch.randn(32, 10), torch.arange(32) % 3
    reg(model(x), y)
    reg(model(x), y)  # no in-place op so far: the copy is dropped
    with pytest.raises(RuntimeError, match=r"layer `0` was modified in place.*run the step again"):
        reg(model(x), y)
    out = reg(model(x), y)  # copied again from now on
    want, _ = snnl_loop(model[0](x).detach().numpy(), y.numpy(), 5.0)
    assert float(out.snnl["0"].detach()) == pytest.approx(want, rel=1e-5)


class SharedActivation(nn.Module):
    """One ReLU module used twice in a forward pass (as torchvision's BasicBlock does)."""

    def __init__(self):
        super().__init__()
        self.fc1, self.fc2, self.relu, self.out = nn.Linear(10, 8), nn.Linear(8, 8), nn.ReLU(), nn.Linear(8, 3)

    def forward(self, x):
        return self.out(self.relu(self.fc2(self.relu(self.fc1(x)))))


def test_a_module_that_runs_twice_per_pass_is_refused_by_name():
    """Its output is not one representation per input: the regularizer and capture would
    measure its last call only (or collect two tensors per pass)."""
    model = SharedActivation()
    x, y = torch.randn(16, 10), torch.arange(16) % 3
    reg = EntanglementRegularizer(model, layers=["relu"], alpha=1.0, temperature=5.0)
    with pytest.raises(Exception, match=r"layer `relu` runs more than once in one forward pass"):
        reg(model(x), y)
    reg.remove()
    with pytest.raises(Exception, match=r"layer `relu` runs more than once"):
        with capture(model, ["relu"]):
            model(x)
    with capture(model, ["fc1"]) as store:  # a direct call of a submodule, outside a pass: fine
        model(x)
        model.fc1(x)
    assert len(store["fc1"]) == 2
