r"""`snnl tune`: hyperparameter search (Optuna) for one regime; writes the best parameters as JSON.

    snnl tune --data data/prepared/mnist5k --regime entangled --seed 0 \
        [--config config/default.yaml] --out results/tuning/mnist5k/entangled.json \
        [--storage results/tuning/mnist5k/entangled.journal] [--n-trials 20] [--workers 4]

The objective is validation accuracy; the search space, number of trials, sampler and
shorter per-trial training come from the config's `tune:` section; training settings
from `train:` (with `train.overrides.<dataset>`). Cluster jobs: run several commands with
the same --storage (a journal file on a shared filesystem) and distinct --worker-id;
then `--summarize-only` writes the best parameters. `snnl train --params OUT` uses them.
"""

from __future__ import annotations

import argparse

from snnl.regimes import REGIMES


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "tune",
        help="search hyperparameters (Optuna) and write the best as JSON for `snnl train --params`",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", required=True, help="prepared dataset folder (needs a validation split)")
    p.add_argument("--regime", required=True, choices=REGIMES)
    p.add_argument("--seed", required=True, type=int, help="training seed of every trial (and the sampler's seed by default)")
    p.add_argument("--config", help="YAML config; its `train:` and `tune:` sections are read")
    p.add_argument("--dataset", help="dataset name for `train.overrides` (default: the prepared dataset's name)")
    p.add_argument("--out", required=True, help="best parameters (JSON)")
    p.add_argument("--storage", help="Optuna journal file shared by parallel processes or cluster jobs")
    p.add_argument("--study", help="study name (default DATASET-REGIME-seedSEED)")
    p.add_argument("--n-trials", type=int, help="finished trials the study should reach (default: tune.n_trials)")
    p.add_argument("--workers", type=int, help="parallel processes on this machine (default: tune.workers)")
    p.add_argument("--worker-id", type=int, default=0, help="offset of this job's sampler seed (cluster jobs)")
    p.add_argument("--summarize-only", action="store_true", help="run no trial; write the best of --storage's study")
    p.add_argument("--quiet", action="store_true")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.yaml_io import read_yaml
    from snnl.data import load_prepared
    from snnl.errors import ConfigError
    from snnl.training import TrainData, train_config, tune, tune_config

    for flag in ("n_trials", "workers"):
        v = getattr(args, flag)
        if v is not None and v < 1:
            raise ConfigError(f"--{flag.replace('_', '-')} must be >= 1, got {v}")
    data = TrainData.from_prepared(load_prepared(args.data))
    name = args.dataset or data.name
    document = read_yaml(args.config)  # parsed once, for both sections
    where = f"config file {args.config}" if args.config else "defaults"
    summary = tune(
        train_config(document, name, where=where, regime=args.regime),
        tune_config(document, where=where),
        data,
        regime=args.regime,
        seed=args.seed,
        out=args.out,
        storage=args.storage,
        study_name=args.study,
        n_trials=args.n_trials,
        workers=args.workers,
        worker_id=args.worker_id,
        summarize_only=args.summarize_only,
        progress=not args.quiet,
    )
    if not args.quiet:
        print(
            f"{summary['study']}: best {summary['objective']} {summary['best_value']:.4f} "
            f"(trial {summary['best_trial']} of {summary['n_trials']}): {summary['params']} -> {args.out}"
        )
    return 0
