"""The blockwise (chunked) SNNL path against the plain path, the float64 loop and a memory bound.

The plain path (full b x b matrices, `GramSNNL`) is itself checked against independent oracles in
test_loss.py; here the chunked path must agree with it to 1e-5 relative (issue 8), with the float64
loop, and never hold a b x b matrix.
"""

from __future__ import annotations

import subprocess
import sys
import textwrap

import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from helpers.oracles import snnl_loop

import snnl.loss
from snnl import DataError, soft_nearest_neighbor_loss

REL = 1e-5


def _loss_and_grads(x, y, t, **kw):
    z = x.detach().clone().requires_grad_(True)
    temp = torch.tensor(t, dtype=x.dtype, requires_grad=True)
    loss = soft_nearest_neighbor_loss(z, y, temp, **kw)
    loss.backward()
    return loss.detach(), z.grad, temp.grad


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    b=st.integers(2, 160),
    d=st.integers(1, 40),
    classes=st.integers(1, 15),
    rows=st.integers(1, 250),
    log10_t=st.floats(-1.0, 2.5),
    distance=st.sampled_from(["sqeuclidean", "cosine"]),
    dtype=st.sampled_from([torch.float32, torch.float64]),
    seed=st.integers(0, 2**16),
)
def test_chunked_agrees_with_plain_path(b, d, classes, rows, log10_t, distance, dtype, seed):
    g = torch.Generator().manual_seed(seed)
    x = (torch.randn(b, d, generator=g) * 2 + 3).to(dtype)
    y = torch.randint(0, classes, (b,), generator=g)
    if not (torch.bincount(y) > 1).any():
        y[-1] = y[0]
    t = 10.0**log10_t
    plain = _loss_and_grads(x, y, t, distance=distance)
    blocks = _loss_and_grads(x, y, t, distance=distance, chunk_size=rows)
    assert abs(float(blocks[0] - plain[0])) <= REL * max(abs(float(plain[0])), 1e-6)
    if dtype == torch.float64:
        for got, want in zip(blocks[1:], plain[1:]):
            assert float((got - want).abs().max()) <= REL * float(want.abs().max()) + 1e-12
    else:
        # float32 gradients are sums with cancellation (p - q sums to 0 per anchor, and d_ij is
        # |z_i|^2 + |z_j|^2 - 2 z_i.z_j), so the two summation orders differ by rounding: the
        # blockwise one must be about as close to the float64 truth as the plain one is.
        truth = _loss_and_grads(x.double(), y, t, distance=distance)
        for got, want, exact in zip(blocks[1:], plain[1:], truth[1:]):
            scale = float(exact.abs().max())
            err_blocks = float((got.double() - exact).abs().max())
            err_plain = float((want.double() - exact).abs().max())
            assert err_blocks <= 4 * err_plain + 1e-4 * scale + 1e-9  # 1e-9: float32 noise on ~0 gradients


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
def test_chunked_matches_float64_loop(distance):
    g = torch.Generator().manual_seed(3)
    x = torch.randn(97, 6, generator=g, dtype=torch.float64)
    y = torch.randint(0, 5, (97,), generator=g)
    y[0] = 77  # an anchor without a positive: excluded and counted
    expected, excluded = snnl_loop(x.numpy(), y.numpy(), 3.0, distance)
    res = soft_nearest_neighbor_loss(x, y, 3.0, distance=distance, chunk_size=10, return_stats=True)
    assert float(res.loss) == pytest.approx(expected, rel=1e-10)
    assert res.n_excluded == excluded == 1
    assert torch.isinf(res.per_anchor[0]) and not res.valid[0]


@pytest.mark.parametrize("distance", ["sqeuclidean", "cosine"])
def test_chunked_gradcheck(distance):
    g = torch.Generator().manual_seed(4)
    x = torch.randn(23, 4, generator=g, dtype=torch.float64, requires_grad=True)
    y = torch.randint(0, 3, (23,), generator=g)
    t = torch.tensor(2.5, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradcheck(
        lambda a, b: soft_nearest_neighbor_loss(a, y, b, distance=distance, chunk_size=5), (x, t)
    )


def test_chunked_reductions_and_per_anchor_match_plain():
    g = torch.Generator().manual_seed(5)
    x = torch.randn(64, 8, generator=g, dtype=torch.float64)
    y = torch.randint(0, 4, (64,), generator=g)
    for reduction in ("mean", "sum", "none"):
        a = soft_nearest_neighbor_loss(x, y, 5.0, reduction=reduction)
        b = soft_nearest_neighbor_loss(x, y, 5.0, reduction=reduction, chunk_size=7)
        torch.testing.assert_close(b, a, rtol=1e-12, atol=0.0)


def test_large_batches_take_the_blockwise_path(monkeypatch):
    calls = []
    real = snnl.loss.ChunkedGramSNNL.apply

    def spy(*args):
        calls.append(args[-2:])  # (rows of a forward block, side of a backward tile)
        return real(*args)

    monkeypatch.setattr(snnl.loss.ChunkedGramSNNL, "apply", spy)
    monkeypatch.setattr(snnl.loss, "AUTO_CHUNK_BATCH", 50)
    monkeypatch.setattr(snnl.loss, "BLOCK_ELEMENTS", 60 * 20)
    y = torch.arange(60) % 3
    soft_nearest_neighbor_loss(torch.randn(50, 3), y[:50], 1.0)
    assert calls == []
    soft_nearest_neighbor_loss(torch.randn(60, 3), y, 1.0)
    assert calls == [(20, 34)]  # BLOCK_ELEMENTS // b rows per block; tiles of isqrt(BLOCK_ELEMENTS)


def test_bad_chunk_size_is_rejected():
    x, y = torch.randn(8, 2), torch.arange(8) % 2
    for bad in (0, -3, True):
        with pytest.raises(ValueError, match="chunk_size"):
            soft_nearest_neighbor_loss(x, y, 1.0, chunk_size=bad)
    with pytest.raises(ValueError, match="built-in distance"):
        soft_nearest_neighbor_loss(x, y, 1.0, distance=lambda z: torch.cdist(z, z), chunk_size=4)
    with pytest.raises(DataError, match="same-class partner"):
        soft_nearest_neighbor_loss(x, torch.arange(8), 1.0, chunk_size=4)


_MEMORY_CHILD = textwrap.dedent(
    """
    import sys
    from pathlib import Path
    import torch
    import snnl.loss
    from snnl import soft_nearest_neighbor_loss

    def status(field):
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024

    torch.set_num_threads(1)
    b, chunk = int(sys.argv[1]), sys.argv[2]
    snnl.loss.BLOCK_ELEMENTS = int(sys.argv[3])
    x = torch.randn(b, 4).requires_grad_(True)
    y = torch.arange(b) % 10
    x.grad = torch.zeros_like(x)
    x.grad = None
    Path("/proc/self/clear_refs").write_text("5")  # reset the peak RSS (VmHWM)
    before = status("VmRSS")
    snnl.loss.AUTO_CHUNK_BATCH = 1 << 62 if chunk == "plain" else 0  # "auto": blockwise at this b
    soft_nearest_neighbor_loss(x, y, 10.0, chunk_size=None if chunk in ("auto", "plain") else int(chunk)).backward()
    print(status("VmHWM") - before)
    """
)


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc/self/status")
def test_blockwise_path_never_holds_a_b_by_b_matrix():
    """b = 8192: one float32 b x b matrix is 256 MiB, and the plain path holds several. With
    blocks of 2^20 entries (4 MiB) the peak extra memory (process RSS, allocator caching
    included) of forward+backward must stay far below one such matrix."""
    b, block = 8192, 1 << 20

    def peak_mib(mode):
        out = subprocess.run(
            [sys.executable, "-c", _MEMORY_CHILD, str(b), mode, str(block)], capture_output=True, text=True, check=True
        )
        return int(out.stdout.strip().splitlines()[-1]) / 2**20

    blocks, plain = peak_mib("auto"), peak_mib("plain")
    one_matrix_mib = b * b * 4 / 2**20
    assert plain > 2 * one_matrix_mib  # the measurement sees b x b matrices when there are some
    assert blocks < one_matrix_mib / 2, f"blockwise peak extra {blocks:.0f} MiB"
