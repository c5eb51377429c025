"""Temporary files for atomic writes, and the clean-up of those a killed writer left behind.

An atomic write goes to a temporary file next to its target, then ``os.replace``. A process
killed outright (SIGKILL, power cut) mid-write leaves that temporary file behind, in a folder
that DVC versions. Its name carries the writer's process id, so the next write of the same
target removes temporaries whose writer is gone (as ``snnl.data.prepared`` does for folders).
"""

from __future__ import annotations

import glob
import json
import math
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any


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


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(fh)`` on a temporary file next to ``path``, fsync it and ``os.replace`` it
    onto ``path``: a job killed at any moment leaves the old file or the new one, never half."""
    path = Path(path)
    fd, tmp = temporary_sibling(path)
    try:
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp makes 0600; give the usual permissions
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise
    return path


def atomic_write_bytes(path: str | Path, data: bytes) -> Path:
    """Write ``data`` to ``path`` atomically (temporary file, fsync, ``os.replace``)."""
    return atomic_write(path, lambda fh: fh.write(data))


def atomic_write_text(path: str | Path, text: str) -> Path:
    return atomic_write_bytes(path, text.encode("utf-8"))


def json_safe(obj: Any) -> Any:
    """``obj`` as strict JSON holds it: NaN and inf -> None (JSON has neither), numpy scalars ->
    Python, tuples -> lists, keys -> str."""
    if isinstance(obj, dict):
        return {str(k): json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):  # numpy or torch scalar
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def atomic_write_json(path: str | Path, obj: Any) -> Path:
    """``obj`` (made :func:`json_safe`) as strict, indented JSON, atomically."""
    return atomic_write_text(path, json.dumps(json_safe(obj), indent=2, sort_keys=False, allow_nan=False) + "\n")
