"""Every Python block of the README runs, in order, in one namespace (as a user pasting
them into one session would), on tiny data: scikit-learn's 8x8 digits, upsampled to
28x28 and flattened, stand in for the ``loader`` the README's training loop iterates."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F

README = Path(__file__).resolve().parents[1] / "README.md"
EPOCHS = 15


def python_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", README.read_text(), re.S)


def _digits():
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = F.interpolate(x, size=(28, 28), mode="bilinear", align_corners=False).reshape(len(x), -1)
    y = torch.tensor(d.target)
    p = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    return x[p][:1400], y[p][:1400], x[p][1400:], y[p][1400:]


def _loader(x, y, epochs: int, batch_size: int = 128):
    """``epochs`` shuffled passes over (x, y), as one iterable of batches."""
    gen = torch.Generator().manual_seed(1)
    for _ in range(epochs):
        perm = torch.randperm(len(y), generator=gen)
        for i in range(0, len(perm), batch_size):
            yield x[perm[i : i + batch_size]], y[perm[i : i + batch_size]]


def _run_readme(alpha_override: str | None = None) -> dict:
    """Run the README's blocks; returns the namespace and the test accuracy of ``model``."""
    xtr, ytr, xte, yte = _digits()
    ns: dict = {"loader": _loader(xtr, ytr, EPOCHS)}
    torch.manual_seed(0)
    for code in python_blocks():
        if alpha_override is not None:
            code = re.sub(r"alpha=[0-9.eE+-]+", f"alpha={alpha_override}", code)
        exec(compile(code, str(README), "exec"), ns)
    with torch.no_grad():
        ns["accuracy"] = float((ns["model"](xte).argmax(1) == yte).float().mean())
        hidden = [ns["model"][0](xte), ns["model"][1](ns["model"][0](xte))]
        from helpers.oracles import snnl_loop

        # each layer's SNNL at its best temperature on a log grid (what analyses report), on
        # 150 test points: the float64 loop is the oracle, not the library's search
        ns["hidden_snnl"] = [
            min(snnl_loop(h[:150].numpy(), yte[:150].numpy(), 10.0**e)[0] for e in range(-1, 5)) for h in hidden
        ]
    return ns


def test_readme_has_python_blocks():
    assert len(python_blocks()) >= 2


@pytest.fixture(scope="module")
def runs():
    return {"readme": _run_readme(), "alpha0": _run_readme("0.0")}


def test_readme_training_example_learns(runs):
    """The example's settings train: test accuracy close to plain cross-entropy's (the same
    code with alpha = 0), not chance (0.10, what alpha = 10 gave with the exact loss)."""
    assert runs["alpha0"]["accuracy"] > 0.85
    assert runs["readme"]["accuracy"] > runs["alpha0"]["accuracy"] - 0.05


def test_readme_training_example_entangles(runs):
    """And the bonus does what it says: each hidden layer's SNNL at its best temperature
    (float64 loop on test points) is higher than without it."""
    for got, plain in zip(runs["readme"]["hidden_snnl"], runs["alpha0"]["hidden_snnl"]):
        assert got > plain
