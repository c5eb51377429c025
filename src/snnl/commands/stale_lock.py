"""`snnl stale-lock`: exit 0 when Snakemake's lock in a directory is stale (safe to unlock).

Used by the Makefile before each run: a run killed outright leaves its lock behind; when no
pipeline process works in the directory any more, `snakemake --unlock` removes it.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "stale-lock",
        help="exit 0 when Snakemake's lock in DIR is left over from a killed run",
        description=(
            "Exit 0 when DIR/.snakemake/locks holds a lock and no Snakemake run, job (snnl) or "
            "`make reproduce`/`make pull` works in DIR: the lock is left over from a run that was "
            "killed outright, and `snakemake --unlock` may remove it. Exit 1 when there is no lock, "
            "when a run is working there, or when processes cannot be inspected (no /proc)."
        ),
    )
    p.add_argument("dir", nargs="?", default=".", metavar="DIR", help="Snakemake's working directory (default: .)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import sys

    from snnl.pipeline.lock import lock_state

    state = lock_state(args.dir)
    if not state.locks:
        return 1
    if state.stale:
        print(f"snnl stale-lock: {args.dir}: a lock is left over from a killed run and no run is working here; "
              "unlocking", file=sys.stderr)
        return 0
    if not state.can_tell:
        print(f"snnl stale-lock: {args.dir} is locked and running processes cannot be inspected here; if no "
              "Snakemake run is working there, run `snakemake --unlock`", file=sys.stderr)
    else:
        pids = ", ".join(f"{pid} ({cmd[:80]})" for pid, cmd in state.busy)
        print(f"snnl stale-lock: {args.dir} is locked by a run in progress: {pids}", file=sys.stderr)
    return 1
