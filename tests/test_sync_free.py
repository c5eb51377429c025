"""The library's hot path makes no host synchronisation (issue 17, item 1).

On the CPU, torch's profiler records every aten op: a host read shows up as
``aten::item`` / ``aten::_local_scalar_dense``, and boolean indexing as ``aten::nonzero``.
None may appear in the loss, the regularizer's forward and backward, or the temperature
step. On CUDA the same paths run under ``torch.cuda.set_sync_debug_mode("error")``.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn
from torch.profiler import ProfilerActivity, profile

from snnl import EntanglementRegularizer, OnlineTemperature, soft_nearest_neighbor_loss

SYNC_OPS = {"aten::item", "aten::_local_scalar_dense", "aten::nonzero", "aten::is_nonzero"}


def _sync_ops(fn) -> list[str]:
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        fn()
    return sorted({e.name for e in prof.events() if e.name in SYNC_OPS})


def _mlp():
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Sequential(nn.Linear(20, 16), nn.ReLU()),
        nn.Sequential(nn.Linear(16, 12), nn.ReLU(inplace=True)),
        nn.Linear(12, 4),
    )


def _batch(b=64, device="cpu"):
    g = torch.Generator().manual_seed(1)
    return torch.randn(b, 20, generator=g).to(device), (torch.arange(b) % 4).to(device)


def test_the_probe_sees_a_sync():
    """The check can fail: a plain .item() is recorded."""
    assert _sync_ops(lambda: torch.ones(3).sum().item()) == ["aten::_local_scalar_dense", "aten::item"]
    assert "aten::nonzero" in _sync_ops(lambda: torch.ones(3)[torch.ones(3) > 0])


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
@pytest.mark.parametrize("chunk_size", [None, 16])
@pytest.mark.parametrize("learned_t", [False, True])
def test_loss_forward_backward_stats_make_no_sync(distance, chunk_size, learned_t):
    x, y = _batch()
    x.requires_grad_(True)
    t = torch.tensor(3.0, requires_grad=True) if learned_t else 3.0

    def run():
        res = soft_nearest_neighbor_loss(x, y, t, distance=distance, chunk_size=chunk_size, return_stats=True)
        res.loss.backward()
        return res.n_excluded

    assert _sync_ops(run) == []


@pytest.mark.parametrize("temperature", ["online", 5.0])
@pytest.mark.parametrize("alpha", [0.1, -0.5, 0.0])
def test_regularizer_step_makes_no_sync(temperature, alpha):
    """Forward, backward and the online temperature step (taken during the backward).
    The optimizer is left out: CPU Adam reads its step count with .item() by design."""
    model = _mlp()
    reg = EntanglementRegularizer(model, layers="all", alpha=alpha, temperature=temperature)
    x, y = _batch()

    def step():
        out = reg(model(x), y)
        out.total.backward()

    before = {n: t.log_t.clone() for n, t in reg.temperatures.items()}
    assert _sync_ops(step) == []
    if temperature == "online":  # the temperature step did happen, without a sync
        assert all(not torch.equal(before[n], t.log_t) for n, t in reg.temperatures.items())


def test_online_temperature_update_makes_no_sync():
    x, y = _batch()
    online = OnlineTemperature(initial=10.0)
    assert _sync_ops(lambda: online.update(soft_nearest_neighbor_loss(x, y, online.temperature()))) == []


needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


@needs_cuda
@pytest.mark.parametrize("temperature", ["online", 5.0])
def test_cuda_training_step_under_sync_debug_mode_error(temperature):
    model = _mlp().cuda()
    reg = EntanglementRegularizer(model, layers="all", alpha=0.1, temperature=temperature).cuda()
    opt = torch.optim.Adam(model.parameters(), lr=1e-3, capturable=True)
    x, y = _batch(device="cuda")
    for _ in range(2):
        torch.cuda.set_sync_debug_mode("error")
        try:
            out = reg(model(x), y)
            res = soft_nearest_neighbor_loss(model[0](x), y, 2.0, return_stats=True)
            opt.zero_grad()
            (out.total + 0 * res.loss).backward()
            opt.step()
        finally:
            torch.cuda.set_sync_debug_mode("default")
    assert torch.isfinite(torch.tensor(list(out.log_dict().values()))).all()
