r"""`snnl train`: train one model (baseline or entangled) on a prepared dataset.

    snnl train --data data/prepared/mnist5k --regime entangled --seed 0 \
        [--config config/default.yaml] [--params best.json] \
        --out results/checkpoints/mnist5k/entangled/seed0.pt \
        --metrics results/metrics/mnist5k/entangled/seed0.json \
        --log results/logs/mnist5k/entangled/seed0.csv [--probe-log PROBE.csv] \
        [--on-divergence record]

Settings come from the config's `train:` section (with `train.overrides.<dataset>`),
then from --params (the JSON written by `snnl tune`). If a resume checkpoint
(OUT.resume) from an interrupted run exists, training continues from it.

A run that diverges (a loss term, a weight or an update not finite) stops with an error naming
the step, the term and the layer, and keeps its last good resume checkpoint (--on-divergence
stop, the default). With --on-divergence record (the pipeline's choice) the divergence is the
run's outcome instead: the four outputs are written, the checkpoint and metrics say
`diverged: {step, epoch, reason}` and hold no weights or accuracies, and the command exits 0;
`snnl evaluate`, `snnl tables` and the figures count such a run and use none of its numbers.
"""

from __future__ import annotations

import argparse
import sys

from snnl.regimes import REGIMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "train",
        help="train a baseline or entangled model (resumes an interrupted run)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="prepared dataset folder (from `snnl prepare-data`)")
    p.add_argument("--regime", required=True, choices=REGIMES)
    p.add_argument("--seed", required=True, type=int)
    p.add_argument("--config", help="YAML config; its `train:` section is read")
    p.add_argument("--params", help="tuned parameters (JSON from `snnl tune`)")
    p.add_argument("--epochs", type=int, help="train this many epochs instead of train.epochs (C1's long horizon)")
    p.add_argument("--dataset", help="dataset name for `train.overrides` (default: the prepared dataset's name)")
    p.add_argument("--out", required=True, help="final checkpoint (.pt); OUT.resume holds the periodic one")
    p.add_argument("--metrics", required=True, help="final metrics JSON")
    p.add_argument("--log", required=True, help="per-step CSV log")
    p.add_argument("--probe-log", help="CSV of the per-layer SNNL at the optimal temperature (also in the metrics)")
    p.add_argument("--on-divergence", choices=("stop", "record"), default="stop",
                   help="stop with an error (default), or record the run as diverged and exit 0 (the pipeline)")
    p.add_argument("--fresh", action="store_true", help="ignore (and overwrite) an existing resume checkpoint")
    p.add_argument("--quiet", action="store_true", help="no progress bar or messages")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.data import load_prepared
    from snnl.training import TrainData, read_params, train, train_config

    dataset = load_prepared(args.data)
    data = TrainData.from_prepared(dataset)
    name = args.dataset or data.name
    params = read_params(args.params, args.regime) if args.params else None
    if args.epochs is not None:
        params = {**(params or {}), "epochs": args.epochs}
    cfg = train_config(args.config, name, params, regime=args.regime)
    result = train(
        cfg,
        data,
        regime=args.regime,
        seed=args.seed,
        out=args.out,
        log=args.log,
        metrics=args.metrics,
        probe_log=args.probe_log,
        resume=not args.fresh,
        record_divergence=args.on_divergence == "record",
        progress=not args.quiet,
    )
    m = result.metrics
    if m["diverged"]:
        d = m["diverged"]
        print(f"snnl train: warning: {name} {args.regime} seed {args.seed} diverged at step {d['step']} (epoch {d['epoch']}): "
              f"{d['reason']}; recorded as a diverged run in {args.metrics} (no weights, no accuracy)", file=sys.stderr)
        return 0
    if not args.quiet:
        accs = ", ".join(f"{s} {m[f'{s}_accuracy']:.4f}" for s in ("train", "val", "test") if m[f"{s}_accuracy"] is not None)
        print(f"{name} {args.regime} seed {args.seed}: {m['steps']} steps in {m['wall_time_s']:.1f} s on {m['device']}; accuracy {accs}")
    return 0
