"""Subcommands of the `snnl` CLI (see snnl.cli)."""
