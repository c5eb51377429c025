"""`snnl config-schema`: the JSON Schema (draft 2020-12) of a pipeline config, generated from its typed
models (snnl.config.ConfigFile): types, ranges, choices and defaults; checks across keys are the
models' alone. Committed as workflow/schemas/config.schema.yaml, kept fresh by a test."""

from __future__ import annotations

import argparse
from typing import Any

NOTE = "# Generated from the typed config models (snnl.config) by `snnl config-schema`: do not edit.\n"


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("config-schema", help="write the config's JSON Schema, generated from its typed models")
    p.add_argument("--out", metavar="PATH", help="YAML file to write (default: print it)")
    p.set_defaults(func=run)


def json_schema() -> dict[str, Any]:
    from snnl.config import ConfigFile

    return {"$schema": "https://json-schema.org/draft/2020-12/schema", **ConfigFile.model_json_schema()}


def run(args: argparse.Namespace) -> int:
    import yaml

    from snnl.atomic import atomic_write_text

    text = NOTE + yaml.safe_dump(json_schema(), sort_keys=False, width=100, default_flow_style=None)
    print(text, end="") if args.out is None else atomic_write_text(args.out, text)
    return 0
