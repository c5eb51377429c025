"""Why the official numerics fail at our activation scale (docs/RESULTS.md, the extended protocol).

For an untrained demo CNN at the demo's scale (He-normal std 1/sqrt(fan_in), [0, 1] pixels) and at
ours (PyTorch's default init, normalised inputs), on one batch of 128 training images: per layer the
median off-diagonal distance in units of T = 100, the range of the norm expansion's diagonal
(0 in exact arithmetic), the number of NaN anchor terms of `snnl.legacy_snnl_terms`, and the loss.

    python benchmarks/official_scale.py --data data/prepared/fashion_mnist
"""

import argparse

import torch

from snnl import legacy
from snnl.data import load_prepared
from snnl.layers import layer_outputs
from snnl.models import build_model, he_normal_fan_in_
from snnl.training.data import TrainData, channel_stats


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data", required=True, help="a prepared dataset (snnl prepare-data)")
    p.add_argument("--batch", type=int, default=128)
    p.add_argument("--temperature", type=float, default=100.0)
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    data = TrainData.from_prepared(load_prepared(args.data))
    x, y = data.train[0][: args.batch], data.train[1][: args.batch]
    print("| scale | layer | median d/T | diagonal d (min, max) | NaN terms | loss |")
    print("|:---|:---|---:|:---|---:|---:|")
    for scale in ("demo", "ours"):
        torch.manual_seed(args.seed)
        model = build_model("cnn", data.shape, 10)
        if scale == "demo":
            he_normal_fan_in_(model)
            model.normalize.set_stats(0.0, 1.0)
        else:
            model.normalize.set_stats(*channel_stats(data.train[0]))
        for name, h in layer_outputs(model, x, model.hidden_layers).items():
            h = h.reshape(h.shape[0], -1).float()
            dist = legacy._pairwise_euclid_distance(h, h)
            off = dist[~torch.eye(h.shape[0], dtype=torch.bool)]
            terms = legacy.legacy_snnl_terms(h, y, args.temperature)
            print(f"| {scale} | {name} | {float(off.median()) / args.temperature:.3g} | "
                  f"({float(dist.diagonal().min()):.2g}, {float(dist.diagonal().max()):.2g}) | "
                  f"{int(terms.isnan().sum())} | {float(terms.mean()):.4g} |")


if __name__ == "__main__":
    main()
