"""`snnl temperature-curve`: E3, the SNNL against log T for raw inputs and each layer of trained models."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "temperature-curve",
        help="E3: SNNL as a function of log T for the raw inputs and each layer of trained models",
        description=(
            "Evaluate the SNNL on a log-spaced grid of temperatures for the raw inputs (pixel space) and, "
            "for every --checkpoint, each hidden layer and the logits, on a seeded subset of a split of the "
            "prepared dataset --data; mark each curve's minimiser and snnl.optimal_temperature's answer. "
            "Without --checkpoint only the raw-input curve is drawn. Settings: `experiments.temperature_curve` "
            "in --config."
        ),
    )
    p.add_argument("--data", required=True, metavar="DIR", help="prepared dataset (snnl prepare-data)")
    p.add_argument("--checkpoint", action="append", default=[], metavar="PATH", help="trained model (repeatable)")
    p.add_argument(
        "--label", action="append", default=None, metavar="NAME",
        help="panel name for each --checkpoint, in order (default: its regime and seed)",
    )
    p.add_argument("--config", default=None, metavar="FILE", help="YAML config with an `experiments:` section")
    p.add_argument("--seed", type=int, default=None, help="override experiments.temperature_curve.seed")
    p.add_argument("--csv", required=True, metavar="PATH", help="output CSV: model, layer, layer_index, log10_t, snnl")
    p.add_argument("--minima", default=None, metavar="PATH", help="output CSV of the minimisers (one row per layer)")
    p.add_argument("--figure", required=True, metavar="PATH", help="output PNG")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    p.set_defaults(func=run)


def _checkpoint_label(ckpt: dict, path: Path) -> str:
    regime, seed = ckpt.get("regime"), ckpt.get("seed")
    if regime is None:
        return path.stem
    return f"{regime} · seed {seed}" if seed is not None else str(regime)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    import torch

    from snnl.data import load_prepared
    from snnl.errors import CheckpointError, ConfigError
    from snnl.experiments import config
    from snnl.experiments import temperature_curve as tc
    from snnl.experiments.common import seeded_subset, write_csv
    from snnl.figures import save_figure

    cfg = config.load("temperature_curve", args.config, seed=args.seed)
    if args.label is not None and len(args.label) != len(args.checkpoint):
        raise ConfigError(f"{len(args.label)} --label value(s) for {len(args.checkpoint)} --checkpoint(s); give one per checkpoint")
    data = load_prepared(args.data)
    images, labels = getattr(data, cfg.split)
    pick = seeded_subset(images.shape[0], cfg.samples, cfg.seed)
    images, labels = images[pick], labels[pick]
    kwargs = {"decades": cfg.decades, "points": cfg.points, "batch_size": cfg.batch_size, "include_logits": cfg.include_logits}

    results, regimes = [], {}
    from snnl.checkpoint import load_trained

    diverged = []  # a diverged run has no model: named in the title, not drawn
    for i, path in enumerate(args.checkpoint):
        model, ckpt = load_trained(path, device="cuda" if torch.cuda.is_available() else "cpu")
        if model is None:
            print(f"temperature-curve: {path} records a run that diverged; left out")
            diverged.append(args.label[i] if args.label else path)
            continue
        label = args.label[i] if args.label else _checkpoint_label(ckpt, Path(path))
        regimes[label] = str(ckpt.get("regime", ""))
        try:
            results.append(
                tc.temperature_curve(model, images, labels, label=label, include_input=cfg.include_input, **kwargs)
            )
        except RuntimeError as err:
            raise CheckpointError(
                f"the model in {path} cannot run on {args.data} (images {tuple(images.shape[1:])}): "
                f"{str(err).splitlines()[0]}; pass the dataset the model was trained on"
            ) from err
    if len(diverged) == len(args.checkpoint):
        results.append(tc.temperature_curve(None, images, labels, label=f"raw inputs ({data.name})", **kwargs))
    result = tc.combine(results)
    write_csv(result.curves, args.csv)
    if args.minima:
        write_csv(result.minima, args.minima)
    title = (
        f"E3: SNNL against temperature, {data.name} ({cfg.split} split, {len(labels)} images); minimiser marked\n"
        "(y axis cut at 1.6 × the T → ∞ limit; at small T the SNNL grows like 1/T)"
    ) + (f"\nleft out, diverged: {', '.join(diverged)}" if diverged else "")
    save_figure(tc.plot(result, title=title, regimes=regimes), args.figure)
    for r in result.minima.itertuples():
        print(
            f"{r.model} {r.layer}: min SNNL {r.snnl_optimal:.4g} at log10 T = {r.log10_t_optimal:.3f}"
            f" (grid {r.log10_t_grid:.3f}){' [at the search boundary]' if r.at_boundary else ''}"
        )
    print(f"temperature-curve: wrote {args.csv}{', ' + args.minima if args.minima else ''} and {args.figure}")
    return 0
