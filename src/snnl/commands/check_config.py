"""`snnl check-config`: validate every section of a pipeline config file, running nothing.

The same check as the Snakefile's before any job starts (snnl.pipeline.preflight.validate_file).
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-config", help="validate a pipeline config file (every section)")
    p.add_argument("config", metavar="FILE", help="YAML config, e.g. config/default.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.pipeline.preflight import validate_file

    validate_file(args.config)
    print(f"{args.config}: valid")
    return 0
