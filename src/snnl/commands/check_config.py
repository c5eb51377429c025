"""`snnl check-config`: validate every section of a pipeline config file, running nothing."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-config", help="validate a pipeline config file (every section)")
    p.add_argument("config", metavar="FILE", help="YAML config, e.g. config/default.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.config import validate_file
    from snnl.training.config import read_yaml

    document = read_yaml(args.config)
    validate_file(args.config, document.get("pipeline") or {})
    print(f"{args.config}: valid")
    return 0
