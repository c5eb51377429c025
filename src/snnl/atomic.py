"""Temporary files for atomic writes, and the clean-up of those a killed writer left behind.

An atomic write goes to a temporary file next to its target, then ``os.replace``. A process
killed outright (SIGKILL, power cut) mid-write leaves that temporary file behind, in a folder
that DVC versions. Its name carries the writer's process id, so the next write of the same
target removes temporaries whose writer is gone (as ``snnl.data.prepared`` does for folders).
"""

from __future__ import annotations

import glob
import os
import tempfile
from pathlib import Path


def _writer_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def remove_stale_temporaries(path: Path) -> list[Path]:
    """Remove the temporary files of earlier writes of ``path`` whose process is gone."""
    removed = []
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.*.tmp"):
        pid = tmp.name[len(path.name) + 2 :].split(".", 1)[0]
        if not pid.isdigit() or int(pid) == os.getpid() or _writer_alive(int(pid)):
            continue  # another target's temporary (e.g. PATH.resume's), ours, or a live writer's
        try:
            tmp.unlink()
            removed.append(tmp)
        except FileNotFoundError:
            pass
    return removed


def temporary_sibling(path: Path) -> tuple[int, str]:
    """``(fd, name)`` of a new temporary file next to ``path`` (``.NAME.PID.XXXX.tmp``), after
    removing the ones killed writers left there."""
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(path)
    return tempfile.mkstemp(prefix=f".{path.name}.{os.getpid()}.", suffix=".tmp", dir=path.parent)
