"""`snnl check-config`: validate every section of a pipeline config file, running nothing.

The same checks as the Snakefile before any job starts: the `pipeline:` section against
workflow/schemas/config.schema.yaml (with its defaults), then every command's own reader.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("check-config", help="validate a pipeline config file (every section)")
    p.add_argument("config", metavar="FILE", help="YAML config, e.g. config/default.yaml")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from snnl.config import find_schema, read_yaml, validate_file, validate_schema

    document = read_yaml(args.config)
    schema = find_schema()
    if schema is None:
        print(
            f"snnl check-config: note: {args.config}: `pipeline:` not checked against the workflow's schema "
            "(workflow/schemas/config.schema.yaml not found; run from the project's folder)",
            file=sys.stderr,
        )
    else:
        validate_schema(document, schema, f"config file {args.config}")
    validate_file(args.config, document.get("pipeline") or {})
    print(f"{args.config}: valid")
    return 0
