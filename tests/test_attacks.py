"""FGSM and PGD: analytic gradients, the eps-ball and the valid range, strength, torchattacks."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from helpers.digits import tiny_digits, tiny_model
from snnl.attacks import attack_batches, fgsm, make_attack, pgd
from snnl.models import build_model


def _accuracy(model, x, y) -> float:
    with torch.no_grad():
        return float((model(x).argmax(1) == y).float().mean())


class Softmax1(nn.Module):
    """logits = W flatten(x) + b: grad_x CE = W^T (softmax - onehot), known in closed form."""

    def __init__(self, d: int, k: int):
        super().__init__()
        self.lin = nn.Linear(d, k)

    def forward(self, x):
        return self.lin(x.flatten(1))


def test_fgsm_is_eps_times_sign_of_the_analytic_gradient_clipped():
    torch.manual_seed(1)
    model = Softmax1(12, 4).double()
    x = torch.rand(50, 1, 3, 4, dtype=torch.float64)
    x[:5] = 0.0  # some pixels at the edges of the valid range
    x[5:10] = 1.0
    y = torch.randint(0, 4, (50,))
    eps = 0.1
    with torch.no_grad():
        p = torch.softmax(model(x), dim=1)
        grad = (p - F.one_hot(y, 4).double()) @ model.lin.weight  # (50, 12)
    expected = (x.flatten(1) + eps * grad.sign()).clamp(0, 1).reshape(x.shape)
    adv = fgsm(model, x, y, eps)
    assert torch.equal(adv, expected)
    delta = adv - x
    interior = (x > eps) & (x < 1 - eps)
    assert torch.allclose(delta[interior].abs(), torch.full_like(delta[interior], eps))
    assert adv.min() >= 0 and adv.max() <= 1


def test_fgsm_matches_a_float64_copy_of_the_trained_model():
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x, y = xt[:200].float() / 255.0, yt[:200]
    ref = build_model("mlp", (1, 8, 8), 10, hidden=(64, 32)).double()
    ref.load_state_dict(model.state_dict())
    ref.eval()
    x64 = x.double().requires_grad_(True)
    (g64,) = torch.autograd.grad(F.cross_entropy(ref(x64), y), x64)
    adv = fgsm(model, x, y, 0.2)
    clear = g64.abs() > 1e-6  # signs float32 can agree on
    expected = (x.double() + 0.2 * g64.sign()).clamp(0, 1).float()
    assert clear.float().mean() > 0.5
    assert torch.allclose(adv[clear], expected[clear], atol=1e-6)


def test_attacks_leave_the_model_alone_and_reject_uint8():
    model = tiny_model()
    model.zero_grad(set_to_none=True)
    model.train()
    _, (xt, yt) = tiny_digits()
    x = xt[:16].float() / 255
    try:
        before = {k: v.clone() for k, v in model.state_dict().items()}
        pgd(model, x, yt[:16], 0.1, steps=3)
        fgsm(model, x, yt[:16], 0.1)
        assert model.training  # mode restored
        assert all(p.grad is None for p in model.parameters())
        assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    finally:
        model.eval()
    with pytest.raises(TypeError, match="divide uint8"):
        fgsm(model, xt[:4], yt[:4], 0.1)
    with pytest.raises(ValueError, match="epsilon"):
        fgsm(model, x, yt[:16], -0.1)


@pytest.mark.parametrize("random_start", [True, False])
def test_pgd_stays_in_the_ball_and_the_valid_range(random_start):
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x, y = xt.float() / 255.0, yt
    for eps in (0.03, 0.1, 0.3):
        adv = pgd(model, x, y, eps, steps=10, step_size=eps / 2, random_start=random_start,
                  generator=torch.Generator().manual_seed(0))
        assert (adv - x).abs().max() <= eps + 1e-6
        assert adv.min() >= 0.0 and adv.max() <= 1.0
        assert (adv - x).abs().max() > 0.5 * eps  # it did move


def test_pgd_beats_fgsm_on_a_trained_model():
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x, y = xt.float() / 255.0, yt
    clean = _accuracy(model, x, y)
    assert clean > 0.9
    eps = 0.1
    acc_fgsm = _accuracy(model, fgsm(model, x, y, eps), y)
    acc_pgd = _accuracy(model, pgd(model, x, y, eps, steps=20, generator=torch.Generator().manual_seed(0)), y)
    assert acc_fgsm < clean
    assert acc_pgd < acc_fgsm - 0.05, (clean, acc_fgsm, acc_pgd)
    # and the PGD loss is higher than the FGSM loss
    with torch.no_grad():
        ce = lambda a: float(F.cross_entropy(model(a), y))  # noqa: E731
        assert ce(pgd(model, x, y, eps, steps=20, generator=torch.Generator().manual_seed(0))) > ce(fgsm(model, x, y, eps))


def test_pgd_one_full_step_without_random_start_is_fgsm():
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x, y = xt[:100].float() / 255.0, yt[:100]
    assert torch.equal(pgd(model, x, y, 0.2, steps=1, step_size=0.2, random_start=False), fgsm(model, x, y, 0.2))


def test_pgd_random_start_is_seeded():
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x, y = xt[:50].float() / 255.0, yt[:50]
    a = pgd(model, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(3))
    b = pgd(model, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(3))
    c = pgd(model, x, y, 0.1, steps=2, generator=torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not torch.equal(a, c)


def test_attack_batches_equals_one_batch_and_takes_uint8():
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    attack = make_attack("fgsm")
    batched = attack_batches(attack, model, xt[:130], yt[:130], 0.1, batch_size=50)
    assert torch.equal(batched, fgsm(model, xt[:130].float() / 255.0, yt[:130], 0.1))
    with pytest.raises(ValueError, match="unknown attack"):
        make_attack("cw")


def test_against_torchattacks():
    torchattacks = pytest.importorskip("torchattacks")
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x, y = xt[:200].float() / 255.0, yt[:200]
    ours = fgsm(model, x, y, 0.15)
    theirs = torchattacks.FGSM(model, eps=0.15)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6)
    ours = pgd(model, x, y, 0.15, steps=7, step_size=0.03, random_start=False)
    theirs = torchattacks.PGD(model, eps=0.15, alpha=0.03, steps=7, random_start=False)(x, y)
    assert torch.allclose(ours, theirs, atol=1e-6)


def _normalised(x: torch.Tensor) -> torch.Tensor:
    """What a user's torchvision pipeline hands over: mean/std-normalised pixels (outside [0, 1])."""
    return (x - 0.1307) / 0.3081


@pytest.mark.parametrize("attack", ["fgsm", "pgd"])
def test_attacks_refuse_normalised_images_instead_of_clipping_them(attack):
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x = _normalised(xt[:32].float() / 255.0)
    assert x.min() < 0 and x.max() > 1
    run = make_attack(attack, steps=2, random_start=False)
    for eps in (0.0, 0.1):
        with pytest.raises(ValueError, match=r"outside \[0, 1\].*normalis"):
            run(model, x, yt[:32], eps)
    with pytest.raises(ValueError, match=r"outside \[0, 1\]"):
        attack_batches(run, model, x, yt[:32], 0.1, batch_size=16)


@pytest.mark.parametrize("random_start", [True, False])
def test_eps_zero_returns_the_input_exactly(random_start):
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x = xt[:64].float() / 255.0
    x[0] = 0.0
    x[1] = 1.0  # the edges of the valid range too
    g = torch.Generator().manual_seed(0)
    for adv in (fgsm(model, x, yt[:64], 0.0),
                pgd(model, x, yt[:64], 0.0, steps=3, random_start=random_start, generator=g),
                pgd(model, x, yt[:64], 0.0, steps=3, step_size=0.05, random_start=random_start)):
        assert torch.equal(adv, x) and adv.dtype == x.dtype
        assert adv.data_ptr() != x.data_ptr()  # a copy, not the caller's tensor


def test_attacks_reject_nan_inputs_bad_eps_step_size_and_labels():
    model = tiny_model()
    _, (xt, yt) = tiny_digits()
    x = xt[:8].float() / 255.0
    bad = x.clone()
    bad[3, 0, 2, 2] = float("nan")
    for attack in (fgsm, lambda m, x, y, e: pgd(m, x, y, e, steps=2)):
        with pytest.raises(ValueError, match="NaN or inf"):
            attack(model, bad, yt[:8], 0.1)
        for eps in (-0.1, float("nan"), float("inf")):
            with pytest.raises(ValueError, match="epsilon must be a finite number >= 0"):
                attack(model, x, yt[:8], eps)
        with pytest.raises(ValueError, match=r"outside 0\.\.9"):
            attack(model, x, torch.full((8,), 10), 0.1)
    with pytest.raises(ValueError, match="step size"):
        pgd(model, x, yt[:8], 0.1, steps=2, step_size=float("inf"))
    with pytest.raises(ValueError, match="steps"):
        pgd(model, x, yt[:8], 0.1, steps=0)
