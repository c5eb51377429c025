"""`snnl stale-lock`: a lock left by a killed Snakemake run is stale, one held by a live run is
not (the Makefile unlocks only the former; docs/RELIABILITY.md, drill 1)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from snnl.cli import main
from snnl.pipeline.lock import is_pipeline_command, lock_state

BIN = Path(sys.executable).parent
ENV = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
pytestmark = pytest.mark.skipif(not Path("/proc/self/cwd").exists(), reason="needs /proc (Linux)")


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["/x/.venv/bin/python", "/x/.venv/bin/snakemake", "--profile", "p"], True),
        (["python3", "-m", "snakemake", "-n"], True),
        (["/x/.venv/bin/python", "/x/.venv/bin/snnl", "train"], True),
        (["snakemake", "--cores", "2"], True),
        (["make", "-o", "stamp", "reproduce", "CONFIG=c.yaml"], True),
        (["make", "pull"], True),
        (["make", "test"], False),
        (["/bin/bash"], False),
        (["vim", "Snakefile"], False),
        ([], False),
    ],
)
def test_which_commands_count_as_pipeline_work(argv, expected):
    assert is_pipeline_command(argv) is expected


def _lock(work: Path) -> None:
    locks = work / ".snakemake" / "locks"
    locks.mkdir(parents=True)
    (locks / "0.input.lock").write_text("x\n")


def test_no_lock_is_not_stale(tmp_path):
    assert not lock_state(tmp_path).stale
    assert main(["stale-lock", str(tmp_path)]) == 1


def test_lock_without_a_run_is_stale_and_a_live_run_keeps_it(tmp_path):
    _lock(tmp_path)
    assert lock_state(tmp_path).stale
    assert main(["stale-lock", str(tmp_path)]) == 0
    # a process named like Snakemake, working in the directory
    fake = tmp_path / "bin" / "snakemake"
    fake.parent.mkdir()
    fake.write_text("import time\ntime.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, str(fake)], cwd=tmp_path)
    try:
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and not lock_state(tmp_path).busy:
            time.sleep(0.05)
        state = lock_state(tmp_path)
        assert not state.stale and [pid for pid, _ in state.busy] == [proc.pid]
        assert main(["stale-lock", str(tmp_path)]) == 1
    finally:
        proc.kill()
        proc.wait()
    assert lock_state(tmp_path).stale


SNAKEFILE = """
rule all:
    output: "done.txt"
    shell: "sleep $SLEEP; touch {output}"
"""


def test_a_snakemake_run_killed_outright_leaves_a_stale_lock_that_unlock_clears(tmp_path):
    (tmp_path / "Snakefile").write_text(SNAKEFILE)
    cmd = [str(BIN / "snakemake"), "--cores", "1", "--rerun-incomplete"]
    proc = subprocess.Popen(cmd, cwd=tmp_path, env={**ENV, "SLEEP": "60"}, start_new_session=True,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    locks = tmp_path / ".snakemake" / "locks"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and not (locks.is_dir() and any(locks.iterdir())):
        time.sleep(0.1)
    try:
        assert locks.is_dir() and any(locks.iterdir()), "snakemake did not lock its directory"
        assert not lock_state(tmp_path).stale  # the run is alive
    finally:
        os.killpg(proc.pid, signal.SIGKILL)  # like a machine dying: no clean-up
        proc.wait()
    assert lock_state(tmp_path).stale
    env = {**ENV, "SLEEP": "0"}
    out = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode != 0 and "cannot be locked" in out.stdout + out.stderr
    subprocess.run([str(BIN / "snakemake"), "--unlock"], cwd=tmp_path, env=env, capture_output=True, check=True)
    assert not lock_state(tmp_path).locks
    out = subprocess.run(cmd, check=False, cwd=tmp_path, env=env, capture_output=True, text=True)
    assert out.returncode == 0 and (tmp_path / "done.txt").exists(), out.stdout + out.stderr
