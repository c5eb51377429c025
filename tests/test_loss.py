"""The loss against independent oracles: a float64 loop, gradcheck, PML's NCALoss, invariances,
extreme scales (where the legacy numerics must visibly fail), and edge cases."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers.oracles import snnl_loop, snnl_torch_reference

import snnl
from snnl import DataError, legacy_snnl, optimal_temperature, soft_nearest_neighbor_loss


def _batch(b, d, classes, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(b, d, generator=g, dtype=dtype)
    y = torch.randint(0, classes, (b,), generator=g)
    return x, y


# --- the float64 loop ---------------------------------------------------------------------


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.one_of(st.integers(2, 40), st.sampled_from([64, 128, 256])),
    d=st.integers(1, 33),
    classes=st.integers(1, 12),
    log10_t=st.floats(-1.5, 2.5),
    distance=st.sampled_from(["sqeuclidean", "cosine"]),
    seed=st.integers(0, 2**16),
)
def test_matches_float64_loop(b, d, classes, log10_t, distance, seed):
    x, y = _batch(b, d, classes, seed)
    t = 10.0**log10_t
    if distance == "cosine":
        t = t / 100.0  # cosine distances live in [0, 2]
    expected_excluded = sum(1 for i in range(b) if not any(y[j] == y[i] for j in range(b) if j != i))
    if expected_excluded == b:
        with pytest.raises(DataError, match="same-class partner"):
            soft_nearest_neighbor_loss(x, y, t, distance=distance)
        return
    want, excluded = snnl_loop(x.numpy(), y.numpy(), t, distance)
    got = soft_nearest_neighbor_loss(x, y, t, distance=distance, return_stats=True)
    assert got.n_excluded == excluded == expected_excluded
    assert math.isclose(float(got.loss), want, rel_tol=1e-9, abs_tol=1e-9)
    # per-anchor values: +inf exactly where there is no positive
    assert torch.isinf(got.per_anchor).sum() == excluded
    assert bool(torch.isfinite(got.per_anchor[got.valid]).all())


def test_reductions_agree_with_per_anchor():
    x, y = _batch(30, 5, 3)
    r = soft_nearest_neighbor_loss(x, y, 2.0, reduction="none")
    valid = torch.isfinite(r)
    assert torch.allclose(soft_nearest_neighbor_loss(x, y, 2.0, reduction="sum"), r[valid].sum())
    assert torch.allclose(soft_nearest_neighbor_loss(x, y, 2.0), r[valid].mean())


def test_any_feature_shape_is_flattened():
    x, y = _batch(20, 2 * 3 * 4, 3)
    a = soft_nearest_neighbor_loss(x.reshape(20, 2, 3, 4), y, 5.0)
    want, _ = snnl_loop(x.numpy(), y.numpy(), 5.0)
    assert math.isclose(float(a), want, rel_tol=1e-10)


def test_custom_distance_callable():
    x, y = _batch(25, 4, 3)

    def manhattan(z):
        return (z.unsqueeze(1) - z.unsqueeze(0)).abs().sum(-1)

    got = soft_nearest_neighbor_loss(x, y, 1.5, distance=manhattan)
    # float64 loop with L1 distances
    xs, ys = x.numpy(), y.numpy()
    tot = n = 0
    for i in range(25):
        logits = [-np.abs(xs[i] - xs[j]).sum() / 1.5 for j in range(25) if j != i]
        same = [ys[j] == ys[i] for j in range(25) if j != i]
        if any(same):
            m = max(logits)
            tot += math.log(sum(math.exp(a - m) for a in logits)) - math.log(
                sum(math.exp(a - m) for a, s in zip(logits, same) if s)
            )
            n += 1
    assert math.isclose(float(got), tot / n, rel_tol=1e-10)


# --- gradients ---------------------------------------------------------------------------


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
def test_gradcheck_features_and_temperature(distance):
    x, y = _batch(12, 4, 3, seed=3)
    x.requires_grad_(True)
    t = torch.tensor(0.7 if distance == "cosine" else 3.0, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(lambda a, tt: soft_nearest_neighbor_loss(a, y, tt, distance=distance), (x, t))


def test_gradcheck_with_excluded_anchors():
    x, y = _batch(10, 3, 3, seed=1)
    y[0] = 99  # an anchor with no positive
    x.requires_grad_(True)
    assert torch.autograd.gradcheck(lambda a: soft_nearest_neighbor_loss(a, y, 2.0), (x,))


def test_gradient_matches_plain_autograd_reference():
    x, y = _batch(40, 6, 4, seed=5)
    a = x.clone().requires_grad_(True)
    b_ = x.clone().requires_grad_(True)
    soft_nearest_neighbor_loss(a, y, 4.0).backward()
    snnl_torch_reference(b_, y, 4.0).backward()
    assert torch.allclose(a.grad, b_.grad, rtol=1e-9, atol=1e-12)


# --- pytorch-metric-learning -----------------------------------------------------------------


def test_matches_pml_nca_loss_sqeuclidean():
    from pytorch_metric_learning.distances import LpDistance
    from pytorch_metric_learning.losses import NCALoss

    x, y = _batch(64, 8, 5, seed=7)
    t = 6.0
    nca = NCALoss(softmax_scale=1.0 / t, distance=LpDistance(normalize_embeddings=False, p=2, power=2))
    assert math.isclose(float(soft_nearest_neighbor_loss(x, y, t)), float(nca(x, y)), rel_tol=1e-9)


def test_matches_pml_nca_loss_cosine():
    from pytorch_metric_learning.losses import NCALoss

    x, y = _batch(64, 8, 5, seed=8)
    scale = 3.0
    # PML default: squared L2 between unit vectors = 2 (1 - cos)  =>  T = 1 / (2 scale)
    want = float(NCALoss(softmax_scale=scale)(x, y))
    got = float(soft_nearest_neighbor_loss(x, y, 1.0 / (2.0 * scale), distance="cosine"))
    assert math.isclose(got, want, rel_tol=1e-9)


# --- invariances -----------------------------------------------------------------------------


def test_permutation_and_label_renaming_invariance():
    x, y = _batch(50, 6, 4, seed=2)
    base = soft_nearest_neighbor_loss(x, y, 3.0)
    perm = torch.randperm(50)
    assert torch.allclose(soft_nearest_neighbor_loss(x[perm], y[perm], 3.0), base, rtol=1e-12)
    renamed = torch.tensor([7, 3, 11, 0])[y]
    assert torch.allclose(soft_nearest_neighbor_loss(x, renamed, 3.0), base, rtol=1e-12)


def test_translation_invariance_euclidean():
    x, y = _batch(50, 6, 4, seed=2)
    shift = torch.randn(6, dtype=torch.float64) * 50
    a = soft_nearest_neighbor_loss(x, y, 3.0)
    b_ = soft_nearest_neighbor_loss(x + shift, y, 3.0)
    assert torch.allclose(a, b_, rtol=1e-10)


def test_scaling_invariance_cosine_and_optimal_temperature():
    x, y = _batch(50, 6, 4, seed=4)
    assert torch.allclose(
        soft_nearest_neighbor_loss(x, y, 0.3, distance="cosine"),
        soft_nearest_neighbor_loss(17.0 * x, y, 0.3, distance="cosine"),
        rtol=1e-12,
    )
    # euclidean: not invariant at a fixed T ...
    assert not math.isclose(
        float(soft_nearest_neighbor_loss(x, y, 3.0)), float(soft_nearest_neighbor_loss(5 * x, y, 3.0)), rel_tol=1e-3
    )
    # ... but invariant at the optimal T, which scales with the squared scale
    a, b_ = optimal_temperature(x, y), optimal_temperature(5 * x, y)
    assert math.isclose(a.loss, b_.loss, rel_tol=1e-9)
    assert math.isclose(b_.temperature, 25 * a.temperature, rel_tol=1e-6)


# --- extreme scales: exact vs legacy ---------------------------------------------------------

RATIOS = [0.01, 0.1, 1.0, 10.0, 30.0, 100.0, 1000.0]


def _nn_distance(x):
    d = ((x.unsqueeze(1) - x.unsqueeze(0)) ** 2).sum(-1)
    d.fill_diagonal_(float("inf"))
    return float(d.min(1).values.median())


def _grad_cos(a, b_):
    a, b_ = a.flatten().double(), b_.flatten().double()
    return float(a @ b_ / (a.norm() * b_.norm()))


@pytest.mark.parametrize("ratio", RATIOS)
@pytest.mark.parametrize("offset", [0.0, 1000.0])
def test_extreme_scales_float32_matches_float64(ratio, offset):
    """Nearest-neighbour d/T from 0.01 to 1000, with and without a shared offset of 1000."""
    g = torch.Generator().manual_seed(11)
    x32 = (torch.randn(64, 16, generator=g) + offset).float()
    y = torch.arange(64) % 4
    t = _nn_distance(x32.double()) / ratio
    xr = x32.double().requires_grad_(True)
    ref = snnl_torch_reference(xr, y, t)
    ref.backward()
    x = x32.clone().requires_grad_(True)
    got = soft_nearest_neighbor_loss(x, y, t)
    got.backward()
    assert got.dtype == torch.float32
    assert abs(float(got.detach()) - float(ref.detach())) <= 1e-4 * abs(float(ref.detach())) + 1e-6, (float(got.detach()), float(ref.detach()))
    assert bool(torch.isfinite(x.grad).all())
    assert _grad_cos(x.grad, xr.grad) > 0.999


def test_legacy_fails_where_exact_succeeds():
    """The official numerics are right at moderate d/T and visibly wrong at large d/T or with an
    offset; the exact loss is right in all of them (asserted above)."""
    g = torch.Generator().manual_seed(11)
    x32 = torch.randn(64, 16, generator=g)
    y = torch.arange(64) % 4
    nn = _nn_distance(x32.double())
    errors = {}
    for ratio in (1.0, 30.0, 100.0):
        t = nn / ratio
        ref = float(snnl_torch_reference(x32.double(), y, t))
        errors[ratio] = abs(float(legacy_snnl(x32, y, t)) - ref) / abs(ref)
    assert errors[1.0] < 1e-3  # fine in its comfort zone
    # wrong far from it (a NaN counts as wrong: "not <=" is True for NaN)
    assert not errors[30.0] <= 0.05 and not errors[100.0] <= 0.05, errors
    # pinned at -log(eps) with no gradient at large d/T
    xl = x32.clone().requires_grad_(True)
    val = legacy_snnl(xl, y, nn / 1000.0)
    val.backward()
    assert math.isclose(float(val), -math.log(1e-5), rel_tol=1e-3) or float(xl.grad.abs().max()) < 1e-6
    # a shared offset of 1000 breaks the uncentred norm expansion at a moderate d/T
    xo = (x32 + 1000.0).float()
    t = _nn_distance(xo.double()) / 10.0
    ref = float(snnl_torch_reference(xo.double(), y, t))
    assert not abs(float(legacy_snnl(xo, y, t)) - ref) / ref <= 0.05
    assert abs(float(soft_nearest_neighbor_loss(xo, y, t)) - ref) / ref < 1e-4


# --- edge cases ------------------------------------------------------------------------------


def test_no_valid_anchor_raises_clear_error():
    x = torch.randn(5, 3)
    with pytest.raises(DataError, match="same-class partner"):
        soft_nearest_neighbor_loss(x, torch.arange(5), 1.0)


def test_no_positive_anchors_are_excluded_and_counted():
    x, _ = _batch(6, 3, 1)
    y = torch.tensor([0, 0, 1, 1, 2, 3])
    r = soft_nearest_neighbor_loss(x, y, 1.0, return_stats=True)
    assert r.n_excluded == 2
    assert r.valid.tolist() == [True, True, True, True, False, False]
    want, excl = snnl_loop(x.numpy(), y.numpy(), 1.0)
    assert excl == 2 and math.isclose(float(r.loss), want, rel_tol=1e-10)


def test_batch_of_two():
    x = torch.tensor([[0.0, 1.0], [2.0, 0.5]], dtype=torch.float64, requires_grad=True)
    same = soft_nearest_neighbor_loss(x, torch.tensor([1, 1]), 1.0)
    assert float(same) == 0.0  # the only other point is a positive
    same.backward()
    assert bool(torch.isfinite(x.grad).all())
    with pytest.raises(DataError):
        soft_nearest_neighbor_loss(x, torch.tensor([0, 1]), 1.0)


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
def test_duplicate_points_have_finite_gradients(distance):
    x = torch.randn(8, 4).repeat(2, 1).requires_grad_(True)  # every point twice
    y = torch.arange(16) % 3
    loss = soft_nearest_neighbor_loss(x, y, 0.5, distance=distance)
    loss.backward()
    assert torch.isfinite(loss) and bool(torch.isfinite(x.grad).all())


@pytest.mark.parametrize("bad", [0.0, -1.0, float("inf"), float("nan")])
def test_bad_temperature_is_rejected(bad):
    x, y = _batch(10, 3, 2)
    with pytest.raises(ValueError, match="temperature"):
        soft_nearest_neighbor_loss(x, y, bad)


def test_bad_labels_are_rejected():
    x, y = _batch(10, 3, 2)
    with pytest.raises(DataError, match="one label per sample"):
        soft_nearest_neighbor_loss(x, y[:5], 1.0)
    with pytest.raises(DataError, match="integers"):
        soft_nearest_neighbor_loss(x, y.float(), 1.0)


# --- dtypes and autocast ---------------------------------------------------------------------


def test_float32_and_float64_agree():
    x, y = _batch(100, 20, 5)
    a = soft_nearest_neighbor_loss(x, y, 10.0)
    b_ = soft_nearest_neighbor_loss(x.float(), y, 10.0)
    assert a.dtype == torch.float64 and b_.dtype == torch.float32
    assert math.isclose(float(a), float(b_), rel_tol=1e-5)


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
def test_half_inputs_are_computed_in_float32(dtype):
    x, y = _batch(64, 16, 4)
    xh = x.to(dtype)
    got = soft_nearest_neighbor_loss(xh, y, 10.0)
    assert got.dtype == torch.float32
    # exactly the float32 computation on the same (rounded) values
    assert float(got) == float(soft_nearest_neighbor_loss(xh.float(), y, 10.0))


def test_under_cpu_autocast_bf16():
    lin = torch.nn.Linear(16, 8)
    x, y = _batch(64, 16, 4, dtype=torch.float32)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        h = lin(x)
        assert h.dtype == torch.bfloat16
        loss = soft_nearest_neighbor_loss(h, y, 5.0)
    assert loss.dtype == torch.float32
    want, _ = snnl_loop(h.detach().float().numpy(), y.numpy(), 5.0)
    assert math.isclose(float(loss), want, rel_tol=1e-5)
    loss.backward()
    assert lin.weight.grad is not None and bool(torch.isfinite(lin.weight.grad).all())


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_cuda_matches_float64_loop(dtype):
    x, y = _batch(128, 32, 6)
    got = soft_nearest_neighbor_loss(x.to("cuda", dtype), y.cuda(), 20.0)
    want, _ = snnl_loop(x.numpy(), y.numpy(), 20.0)
    assert math.isclose(float(got), want, rel_tol=1e-5)


def test_docstring_states_formula_policy_and_modes():
    doc = snnl.soft_nearest_neighbor_loss.__doc__
    for phrase in ["LSE_{k != i}", "No-positive policy", "excluded from the mean", "optimal_temperature",
                   "OnlineTemperature", "fixed"]:
        assert phrase in doc, phrase
