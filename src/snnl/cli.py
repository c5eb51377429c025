"""The `snnl` command line: one subcommand per pipeline step.

Each command lives in its own module, which exposes ``register(subparsers)``;
``register`` adds a parser whose ``func`` default is called with the parsed
arguments. To add a command, write such a module and list it in
``COMMAND_MODULES``.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from snnl.errors import SnnlError

COMMAND_MODULES: list[str] = [
    "snnl.commands.info",
    "snnl.commands.check_config",
    "snnl.commands.config_schema",
    "snnl.commands.check_report",
    "snnl.commands.report_claims",
    "snnl.commands.prepare_data",
    "snnl.commands.train",
    "snnl.commands.tune",
    "snnl.commands.evaluate",
    "snnl.commands.compare_regimes",
    "snnl.commands.analyze",
    "snnl.commands.synthetic",
    "snnl.commands.temperature_curve",
    "snnl.commands.dynamics_figure",
    "snnl.commands.bonus_figure",
    "snnl.commands.gan",
    "snnl.commands.tables",
    "snnl.commands.stale_lock",
]


class CLIError(SnnlError):
    """An error whose message is for the user: printed without a traceback."""


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="snnl",
        description="Soft Nearest Neighbor Loss: library and paper reproduction.",
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        result = args.func(args)
    except (SnnlError, FileNotFoundError) as err:
        print(f"snnl {args.command}: error: {err}", file=sys.stderr)
        return 2
    return int(result or 0)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
