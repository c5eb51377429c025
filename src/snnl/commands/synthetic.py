"""`snnl synthetic`: E1 (minimise the SNNL of 2-D points) and E2 (triplet loss vs SNNL)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "synthetic",
        help="E1/E2: 2-D Gaussian points moved by gradient descent on the SNNL (and the triplet loss)",
        description=(
            "--mode minimise (E1): points from one 2-D Gaussian per class are moved by Adam to minimise the "
            "SNNL; writes the points at the snapshot steps (CSV) and one panel per step (PNG). "
            "--mode compare (E2): from one initial condition, minimise and maximise the triplet loss and "
            "the SNNL; writes the end points (CSV) and a 2 x 3 figure. Settings: `experiments.synthetic` "
            "in --config (defaults otherwise)."
        ),
    )
    p.add_argument("--mode", required=True, choices=("minimise", "compare"))
    p.add_argument("--config", default=None, metavar="FILE", help="YAML config with an `experiments:` section")
    p.add_argument("--seed", type=int, default=None, help="override experiments.synthetic.seed")
    p.add_argument("--steps", type=int, default=None, help="override experiments.synthetic.steps")
    p.add_argument("--csv", required=True, metavar="PATH", help="output CSV (points and measures)")
    p.add_argument("--figure", required=True, metavar="PATH", help="output PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bars")
    p.add_argument("--threads", type=int, default=1, metavar="N", help="torch CPU threads (default 1: the tensors are tiny)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from snnl.experiments import config, synthetic
    from snnl.experiments.common import write_csv
    from snnl.figures import save_figure

    cfg = config.load("synthetic", args.config, seed=args.seed, steps=args.steps)
    progress = not args.quiet
    if args.mode == "minimise":
        df = synthetic.run_minimise(cfg, progress=progress)
        fig = synthetic.plot_minimise(df)
        first, last = df[df["step"] == df["step"].min()].iloc[0], df[df["step"] == df["step"].max()].iloc[0]
        summary = f"SNNL {first['snnl']:.4g} at step 0 -> {last['snnl']:.4g} at step {int(last['step'])}"
    else:
        df = synthetic.run_compare(cfg, progress=progress)
        fig = synthetic.plot_compare(df)
        parts = [
            f"{r.objective}/{r.direction}: SNNL {r.snnl:.3g}, k-means purity {r.kmeans_purity:.2f}"
            for r in df.drop_duplicates(["objective", "direction"]).itertuples()
        ]
        summary = "; ".join(parts)
    write_csv(df, args.csv)
    save_figure(fig, args.figure)
    print(f"synthetic {args.mode}: {summary}; wrote {args.csv} and {args.figure}")
    return 0
