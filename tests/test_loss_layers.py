"""soft_nearest_neighbor_losses: several layers of one batch at once (issue 17, item 2).

Checked against the float64 loop of tests/helpers/oracles.py (values), a plain-autograd float64
reference (gradients for the features and the temperatures), and the one-layer function.
"""

from __future__ import annotations

import pytest
import torch

from helpers.oracles import snnl_loop, snnl_torch_reference
from snnl import DataError, soft_nearest_neighbor_loss, soft_nearest_neighbor_losses


def _layers(b=40, widths=(3, 17, 64), seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    feats = [torch.randn(b, w, generator=g, dtype=dtype) * (1 + i) for i, w in enumerate(widths)]
    labels = torch.randint(0, 4, (b,), generator=g)
    return feats, labels


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
def test_values_match_the_float64_loop(distance):
    feats, y = _layers()
    temps = [0.7, 5.0, 300.0]
    got = soft_nearest_neighbor_losses(feats, y, temps, distance=distance)
    for value, f, t in zip(got, feats, temps):
        want, _ = snnl_loop(f.numpy(), y.numpy(), t, distance)
        assert float(value) == pytest.approx(want, rel=1e-10)


def test_gradients_match_plain_autograd_reference():
    feats, y = _layers()
    temps = [0.7, 5.0, 300.0]
    xs = [f.clone().requires_grad_(True) for f in feats]
    ts = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in temps]
    weights = torch.tensor([1.0, -2.0, 0.5], dtype=torch.float64)
    (soft_nearest_neighbor_losses(xs, y, ts) * weights).sum().backward()
    rs = [f.clone().requires_grad_(True) for f in feats]
    rts = [torch.tensor(t, dtype=torch.float64, requires_grad=True) for t in temps]
    sum(w * snnl_torch_reference(r, y, t) for w, r, t in zip(weights, rs, rts)).backward()
    for x, r in zip(xs, rs):
        torch.testing.assert_close(x.grad, r.grad, rtol=1e-9, atol=1e-12)
    for t, r in zip(ts, rts):
        torch.testing.assert_close(t.grad, r.grad, rtol=1e-9, atol=1e-12)


def test_float32_agrees_with_one_layer_calls_and_excluded_anchors_count():
    feats, y = _layers(b=64, dtype=torch.float32)
    y[0] = 99  # an anchor with no positive
    temps = [2.0, 20.0, 200.0]
    got = soft_nearest_neighbor_losses(feats, y, temps)
    want = torch.stack([soft_nearest_neighbor_loss(f, y, t) for f, t in zip(feats, temps)])
    torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-6)


def test_conv_shaped_layers_and_one_layer():
    g = torch.Generator().manual_seed(1)
    feats = [torch.randn(16, 4, 3, 3, generator=g), torch.randn(16, 8, generator=g)]
    y = torch.arange(16) % 4
    got = soft_nearest_neighbor_losses(feats, y, [10.0, 10.0])
    assert float(got[0]) == pytest.approx(snnl_loop(feats[0].reshape(16, -1).numpy(), y.numpy(), 10.0)[0], rel=1e-5)
    one = soft_nearest_neighbor_losses(feats[1:], y, [10.0])
    assert one.shape == (1,) and float(one[0]) == pytest.approx(float(got[1]), rel=1e-6)


def test_bad_inputs_are_refused():
    feats, y = _layers()
    with pytest.raises(ValueError, match="one temperature per layer"):
        soft_nearest_neighbor_losses(feats, y, [1.0])
    with pytest.raises(DataError, match="same batch"):
        soft_nearest_neighbor_losses([feats[0], feats[1][:10]], y, [1.0, 1.0])
    with pytest.raises(DataError, match="same-class partner"):
        soft_nearest_neighbor_losses(feats, torch.arange(40), [1.0, 1.0, 1.0])
    with pytest.raises(ValueError, match="temperature"):
        soft_nearest_neighbor_losses(feats, y, [1.0, -1.0, 1.0])


def test_channels_last_maps_give_the_same_loss_without_a_copy():
    g = torch.Generator().manual_seed(2)
    x = torch.randn(24, 5, 3, 3, generator=g, dtype=torch.float64)
    y = torch.arange(24) % 3
    cl = x.contiguous(memory_format=torch.channels_last)
    from snnl.loss_inputs import flatten_per_sample

    assert flatten_per_sample(cl).data_ptr() == cl.data_ptr()  # a view, not a copy
    want, _ = snnl_loop(x.reshape(24, -1).numpy(), y.numpy(), 7.0)
    assert float(soft_nearest_neighbor_loss(cl, y, 7.0)) == pytest.approx(want, rel=1e-10)
    assert float(soft_nearest_neighbor_losses([cl, x], y, [7.0, 7.0])[0]) == pytest.approx(want, rel=1e-10)
