"""`snnl dynamics-figure`: E4, per-layer SNNL at the optimal temperature against the training step."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "dynamics-figure",
        help="E4: per-layer SNNL during training, from the training runs' probe logs",
        description=(
            "Read probe logs (`snnl train --probe-log`: CSV with columns dataset, regime, seed, step, layer, snnl; "
            "each file's run is what its dataset, regime and seed columns record) and draw one panel per dataset "
            "and regime with one line per layer (mean over seeds; the last layer black and dashed), the step on a log axis. "
            "Settings: `experiments.dynamics` in --config."
        ),
    )
    p.add_argument("--logs", required=True, nargs="+", metavar="FILE", help="probe logs")
    p.add_argument("--config", default=None, metavar="FILE", help="YAML config with an `experiments:` section")
    p.add_argument("--figure", "--out", dest="figure", required=True, metavar="PNG", help="output PNG")
    p.add_argument("--csv", default=None, metavar="PATH", help="also write the combined tidy data")
    p.add_argument("--threads", type=int, default=None, metavar="N", help="torch CPU threads (default: torch's)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    if args.threads:
        import torch

        torch.set_num_threads(args.threads)
    from snnl.experiments import config, dynamics
    from snnl.experiments.common import write_csv
    from snnl.figures import save_figure

    cfg = config.load("dynamics", args.config)
    df, diverged = dynamics.set_aside_diverged(dynamics.read_logs(args.logs))
    left_out = ", ".join(f"{d} {r} seed {s} (step {step})" for (d, r, s), step in sorted(diverged.items()))
    if left_out:
        print(f"dynamics-figure: left out, diverged: {left_out}")
    if args.csv:
        write_csv(df, args.csv)
    if df.empty:
        from snnl.figures import notice_figure

        notice_figure("E4: no run to show", f"every run diverged: {left_out}.", args.figure)
        return 0
    fig = dynamics.plot(df, band=cfg.band)
    if left_out:
        fig.text(0.01, 0.0, f"left out, diverged: {left_out}", fontsize="small", va="top")
    save_figure(fig, args.figure)
    runs = df.drop_duplicates(["dataset", "regime", "seed"]).shape[0]
    print(f"dynamics-figure: {runs} run(s), {df['layer'].nunique()} layer name(s); wrote {args.figure}")
    return 0
