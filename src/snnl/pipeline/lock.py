"""Is Snakemake's lock in a working directory stale?

Snakemake locks its working directory for a run (``.snakemake/locks``) and unlocks it at the
end. A run killed outright (SIGKILL, the OOM killer, a power cut) never unlocks, and every
later run stops with "Directory cannot be locked" until someone runs ``snakemake --unlock``.
That is safe only when no other run is working there: :func:`stale_lock` says so by looking
for processes whose working directory is this one and that are a Snakemake run, one of its
jobs (an ``snnl`` command) or a ``make reproduce``/``make pull`` (Linux: ``/proc``). The
Makefile asks ``snnl stale-lock`` before each run and then unlocks with Snakemake's own
``--unlock`` (docs/RELIABILITY.md, drill 1).
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

LOCK_DIR = Path(".snakemake") / "locks"
# what a process that works on the pipeline runs: a Snakemake run (its script, or python -m),
# one of its jobs, or the make targets that start one
PIPELINE_PROGRAMS = {"snakemake", "snnl"}
MAKE_TARGETS = {"reproduce", "pull"}


@dataclass(frozen=True)
class LockState:
    locks: list[Path]  # lock files present
    busy: list[tuple[int, str]]  # (pid, command line) of pipeline processes working here
    can_tell: bool  # False where processes cannot be inspected (no /proc)

    @property
    def stale(self) -> bool:
        return bool(self.locks) and self.can_tell and not self.busy


def _ancestors(pid: int) -> set[int]:
    """``pid`` and every process above it (this command and the make or shell that runs it)."""
    seen = set()
    while pid > 1 and pid not in seen:
        seen.add(pid)
        try:
            stat = Path(f"/proc/{pid}/stat").read_text()
        except OSError:
            break
        pid = int(stat.rsplit(")", 1)[1].split()[1])
    return seen


def is_pipeline_command(argv: list[str]) -> bool:
    """A Snakemake run or job, or ``make reproduce``/``make pull``, from its argv."""
    if not argv:
        return False
    names = [os.path.basename(a) for a in argv[:3]]
    if names[0] in PIPELINE_PROGRAMS:
        return True
    if names[0].startswith("python") and len(argv) > 1:
        if names[1] in PIPELINE_PROGRAMS:  # a console script run by its interpreter
            return True
        if argv[1] == "-m" and len(argv) > 2 and argv[2].split(".")[0] in PIPELINE_PROGRAMS:
            return True
    if names[0] in ("make", "gmake"):
        return any(a in MAKE_TARGETS for a in argv[1:])
    return False


def pipeline_processes(workdir: str | Path) -> list[tuple[int, str]] | None:
    """(pid, command line) of the processes other than this one and its parents that work
    on the pipeline in ``workdir``; None where processes cannot be inspected."""
    proc = Path("/proc")
    if not (proc / "self" / "cwd").exists():
        return None
    here = os.path.realpath(workdir)
    mine = _ancestors(os.getpid())
    found = []
    for entry in proc.iterdir():
        if not entry.name.isdigit() or int(entry.name) in mine:
            continue
        try:
            if os.readlink(entry / "cwd") != here:
                continue
            argv = (entry / "cmdline").read_bytes().decode(errors="replace").split("\0")
        except OSError:  # gone, or another user's: not ours to judge
            continue
        argv = [a for a in argv if a]
        if is_pipeline_command(argv):
            found.append((int(entry.name), " ".join(argv)))
    return sorted(found)


def lock_state(workdir: str | Path = ".") -> LockState:
    lock_dir = Path(workdir) / LOCK_DIR
    locks = sorted(p for p in lock_dir.iterdir() if p.is_file()) if lock_dir.is_dir() else []
    if not locks:
        return LockState([], [], True)
    busy = pipeline_processes(workdir)
    return LockState(locks, busy or [], busy is not None)
