"""`snnl gan`: E5, SNNL between real and generated data during GAN training."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "gan",
        help="E5: train a small GAN and log SNNL(real vs fake) in pixel space and the discriminator's layers",
        description=(
            "Train a small GAN (experiments.gan.arch: mlp, or dcgan for 28x28/32x32 images) on a split of the "
            "prepared dataset --data; every log_every steps measure the SNNL between fixed real images and "
            "the generator's images for fixed latent codes at the optimal temperature, in pixel space and in "
            "each hidden layer of the discriminator. Writes the curves (CSV), their figure and a grid of "
            "samples at a few steps (PNG). Settings: `experiments.gan` in --config."
        ),
    )
    p.add_argument("--data", required=True, metavar="DIR", help="prepared dataset (snnl prepare-data)")
    p.add_argument("--config", default=None, metavar="FILE", help="YAML config with an `experiments:` section")
    p.add_argument("--seed", type=int, default=None, help="override experiments.gan.seed")
    p.add_argument("--steps", type=int, default=None, help="override experiments.gan.steps")
    p.add_argument(
        "--csv", required=True, metavar="PATH",
        help="output CSV: step, layer, layer_index, snnl, temperature, at_boundary, d_real, d_fake, d_loss, g_loss",
    )
    p.add_argument("--figure", required=True, metavar="PATH", help="output PNG of the SNNL curves")
    p.add_argument("--samples", required=True, metavar="PATH", help="output PNG of generated samples")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from snnl.data import load_prepared
    from snnl.experiments import config, gan
    from snnl.experiments.common import write_csv
    from snnl.figures import save_figure

    cfg = config.load("gan", args.config, seed=args.seed, steps=args.steps)
    data = load_prepared(args.data)
    images, _ = getattr(data, cfg.split)
    result = gan.train_gan(images, cfg, dataset=data.name, progress=not args.quiet)
    # the run's identity inside the file (the tables read it from there, not from the path)
    curves = result.curves.copy()
    curves.insert(0, "seed", cfg.seed)
    curves.insert(0, "dataset", data.name)
    write_csv(curves, args.csv)
    save_figure(gan.plot_curves(result), args.figure)
    save_figure(gan.plot_samples(result), args.samples)
    c = result.curves
    first, last = c[c["step"] == c["step"].min()], c[c["step"] == c["step"].max()]
    changes = ", ".join(
        f"{a.layer} {a.snnl:.3f} -> {b.snnl:.3f}" for a, b in zip(first.itertuples(), last.itertuples())
    )
    print(f"gan on {data.name}: SNNL(real vs fake) step 0 -> {int(last['step'].iloc[0])}: {changes}")
    print(f"gan: wrote {args.csv}, {args.figure} and {args.samples}")
    return 0
