"""Atomic writes: a temporary file left by a writer killed outright is removed by the next write
of the same target; a live writer's, and other targets', are left alone."""

from __future__ import annotations

import os
import subprocess
import sys

from snnl.atomic import remove_stale_temporaries
from snnl.atomic import atomic_write_text
from snnl.atomic import atomic_write_text as figure_write_text


def _dead_pid() -> int:
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_the_next_write_removes_a_killed_writers_temporary(tmp_path):
    target = tmp_path / "m.pt"
    dead = _dead_pid()
    left = tmp_path / f".m.pt.{dead}.abc123.tmp"  # what a SIGKILL mid-write leaves
    live = tmp_path / f".m.pt.{os.getppid()}.def456.tmp"  # a writer still running
    other = tmp_path / f".m.pt.resume.{dead}.ghi789.tmp"  # another target's
    for f in (left, live, other):
        f.write_bytes(b"half")
    atomic_write_text(target, "whole")
    assert target.read_text() == "whole"
    assert not left.exists() and live.exists() and other.exists()
    figure_write_text(tmp_path / "m.pt.resume", "x")
    assert not other.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["m.pt", "m.pt.resume", live.name])


def test_names_without_a_process_id_are_not_touched(tmp_path):
    old = tmp_path / ".t.csv.xyz.tmp"
    old.write_text("?")
    assert remove_stale_temporaries(tmp_path / "t.csv") == []
    assert old.exists()
