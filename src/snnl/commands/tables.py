r"""`snnl tables`: result tables and the verdicts on claims C1-C7.

    snnl tables --metrics results/metrics/mnist5k/*/seed*.json \
        --evaluations results/evaluation/mnist5k/*/seed*/summary.json \
        [--dynamics results/dynamics/mnist5k/*/seed*.csv] \
        [--dynamics-long results/dynamics_long/mnist5k/baseline/seed*.csv] \
        [--gan results/experiments/gan/mnist5k/seed*.csv] \
        [--synthetic results/experiments/synthetic_compare.csv] \
        [--config config/default.yaml] --out results/tables

Every input is an explicit file, so a Snakemake rule can list them. A run's dataset,
regime and seed are what its file records, never its path: the metrics JSON's keys,
summary.json's checkpoint, a probe log's dataset/regime/seed columns, a GAN curve's
dataset/seed columns (one GAN run per (dataset, seed)). Without --dynamics the probe curves
are the metrics' own records. An evaluation is given as its folder or its summary.json.
Writes accuracy, ood, detection, bonus and claims (.csv and .md), confidence.csv (max-softmax
histograms for `dvc plots`) and summary.json into OUT, each atomically. C3-C7 are decided
once per comparison R - baseline (rows C3, C3 · official, ...); --dynamics-long adds the
row C1 (long). The verdicts follow docs/RESULTS.md, "Decision rules", whose parameters are
fixed: --config is only recorded (path and SHA-256) in summary.json, to tie the tables to
the run's settings. A claim whose inputs are not given is "not run".
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tables",
        help="accuracy, outlier and detection tables and the verdicts on claims C1-C7",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--metrics", nargs="+", action="extend", default=[], metavar="JSON",
                   help="metrics JSONs of `snnl train` (each records its dataset, regime and seed)")
    p.add_argument("--evaluations", nargs="+", action="extend", default=[], metavar="DIR",
                   help="`snnl evaluate` folders (or their summary.json)")
    p.add_argument("--dynamics", nargs="+", action="extend", default=[], metavar="CSV",
                   help="probe logs of `snnl train --probe-log` (each records its dataset, regime and seed; C1, C4, "
                        "bonus); default: the metrics' probe records")
    p.add_argument("--dynamics-long", nargs="+", action="extend", default=[], metavar="CSV",
                   help="probe logs of the long baseline runs (experiments.dynamics.long_epochs): the row C1 (long)")
    p.add_argument("--gan", nargs="+", action="extend", default=[], metavar="CSV",
                   help="GAN curves of `snnl gan`, one per (dataset, seed), each recording both (C2)")
    p.add_argument("--synthetic", nargs="+", action="extend", default=[], metavar="CSV",
                   help="CSVs of `snnl synthetic` (E2 purities, reported beside C4)")
    p.add_argument("--config", default=None, metavar="FILE",
                   help="the pipeline's config file: recorded with its hash in summary.json (no settings are read)")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (e.g. results/tables)")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.errors import ConfigError
    from snnl.tables import load_inputs, write_tables

    if not (args.metrics or args.evaluations or args.dynamics or args.dynamics_long or args.gan):
        raise ConfigError("snnl tables needs inputs: --metrics, --evaluations, --dynamics, --dynamics-long and/or --gan")
    inputs = load_inputs(args.metrics, args.evaluations, args.dynamics, args.gan, args.synthetic,
                         dynamics_long=args.dynamics_long)
    summary = write_tables(inputs, args.out, config=args.config)
    if not args.quiet:
        claims = summary["claims"]
        print("claims: " + "; ".join(f"{c} {v['verdict']}" for c, v in claims.items()))
        print(f"wrote {args.out}/{{accuracy,ood,detection,bonus,claims}}.{{csv,md}}, confidence.csv and summary.json")
    return 0
