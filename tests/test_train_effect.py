"""The effect the entangled regime exists for, measured independently of the training code's probe:
after a short training on mnist5k, the entangled CNN's hidden layers are clearly more entangled
(higher SNNL at the optimal temperature, on held-out images) than the baseline's, while its test
accuracy stays within a few points."""

from __future__ import annotations

import numpy as np
import torch

from snnl.temperature import optimal_temperature
from snnl.training import TrainConfig, TrainData, train
from helpers.training_data import shuffled_mnist5k

ALPHA = 0.15
EPOCHS = 2


def mnist5k() -> TrainData:
    x, y = shuffled_mnist5k(0)
    return TrainData((x[:4000], y[:4000]), None, (x[4000:], y[4000:]), [str(i) for i in range(10)], "mnist5k")


@torch.no_grad()
def held_out_snnl(model, images, labels) -> dict[str, float]:
    """SNNL at the optimal temperature of every hidden layer, on images the model never saw."""
    modules = dict(model.named_modules())
    outputs = {}
    hooks = [modules[n].register_forward_hook(lambda m, i, o, n=n: outputs.__setitem__(n, o)) for n in model.hidden_layers]
    model.eval()
    try:
        model(images.float() / 255)
    finally:
        for h in hooks:
            h.remove()
    return {n: optimal_temperature(outputs[n].flatten(1), labels).loss for n in model.hidden_layers}


def test_entangled_hidden_layers_are_more_entangled_at_similar_accuracy():
    data = mnist5k()
    cfg = TrainConfig(model="cnn", epochs=EPOCHS, batch_size=128, alpha=ALPHA, threads=1, probe_points=0, checkpoint_every=0)
    base = train(cfg, data, regime="baseline", seed=0, progress=False)
    ent = train(cfg, data, regime="entangled", seed=0, progress=False)

    x_test, y_test = data.test
    held_x, held_y = x_test[:500], y_test[:500]
    s_base = held_out_snnl(base.model, held_x, held_y)
    s_ent = held_out_snnl(ent.model, held_x, held_y)
    report = {n: (round(s_base[n], 3), round(s_ent[n], 3)) for n in s_base}

    # every hidden layer more entangled, and clearly so on average
    for n in s_base:
        assert s_ent[n] > s_base[n] + 0.04, f"{n}: baseline vs entangled SNNL {report}"
    gain = np.mean([s_ent[n] - s_base[n] for n in s_base])
    assert gain > 0.1, f"mean SNNL gain {gain:.3f}: {report}"
    # both models learned; accuracies within a few points
    acc_b, acc_e = base.metrics["test_accuracy"], ent.metrics["test_accuracy"]
    assert acc_b > 0.88 and acc_e > 0.85, (acc_b, acc_e)
    assert abs(acc_b - acc_e) < 0.05, (acc_b, acc_e)
