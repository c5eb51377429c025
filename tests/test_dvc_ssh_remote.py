"""Sharing through a real remote: DVC's ssh remote (dvc-ssh) on OpenSSH's sshd, which the test
starts on 127.0.0.1 with key-based login only (tests/helpers/services.py).

The README's sharing steps with an ``ssh://`` remote: in one clone (the project with a finished
run of the tiny config, made a git repository) a default remote ``ssh://127.0.0.1/<folder>``
with port, user and key file set per machine (`dvc remote modify --local`), `dvc commit -f`,
`dvc push`, `git commit`; then a fresh `git clone`, the same three options, `make pull`
(`dvc pull` with `verify`, then `snakemake --touch`). Checks: every file DVC tracks is
byte-identical (SHA-256) to the original; Snakemake has nothing to do (nothing is retrained); both
transfers logged in as the key's user through sshd.

DVC's ssh remote reads ~/.ssh/known_hosts and has no option for another file: the DVC commands
run with HOME set to a folder whose .ssh/known_hosts trusts the test server (``SshServer.env``),
so the real ~/.ssh is never read or written.

    .venv/bin/pytest tests/test_dvc_ssh_remote.py      # as root, after `make debian-services`
"""

from __future__ import annotations

import shutil

import pytest
from helpers.services import skip_or_fail, ssh_server, ssh_unavailable
from helpers.runs import dvc_tracked
from helpers.workflow import (ENV, copy_run, keep_install, project_copy, run, set_remote_options, share_with_dvc,
                              snakemake)


@pytest.fixture(scope="module")
def server():
    reason = ssh_unavailable()
    if reason:
        skip_or_fail(f"no test ssh server: {reason}")
    with ssh_server() as running:
        yield running


@pytest.mark.slow
def test_push_from_one_clone_and_pull_in_a_fresh_clone_through_ssh(server, tiny_reference, tmp_path):
    work = copy_run(tiny_reference, tmp_path / "work")
    project_copy(work)
    shutil.copy(work / "config" / "tiny.yaml", work / "config" / "default.yaml")  # the stage's params file
    (work / "data" / "raw").mkdir(parents=True, exist_ok=True)
    snakemake(work, "--configfile", "config/default.yaml", "--report", "results/report.html")
    env = server.env(ENV)
    remote = tmp_path / "served"  # on this machine, reached only through sshd
    remote.mkdir()
    options = {"port": str(server.port), "user": server.user, "keyfile": str(server.key)}
    share_with_dvc(work, server.url(remote), options=options, env=env)
    run(["git", "add", "-A"], work, env=env)
    run(["git", "commit", "-q", "-m", "results"], work, env=env)
    before = dvc_tracked(work)
    assert len(before) > 50 and any(p.endswith(".pt") for p in before)
    assert sum(1 for p in remote.rglob("*") if p.is_file()) >= len(before)

    clone = tmp_path / "clone"
    run(["git", "clone", "-q", str(work), str(clone)], tmp_path, env=env)
    assert not (clone / "results").exists()
    keep_install(clone)
    set_remote_options(clone, "storage", options, env)
    run(["make", "--no-print-directory", "pull", "CONFIG=config/default.yaml"], clone, env=env, timeout=1800)
    assert "storage" in run([str(clone / ".venv" / "bin" / "dvc"), "remote", "default"], clone, env=env).stdout

    after = dvc_tracked(clone)
    differ = sorted(p for p in before if after.get(p) != before[p])
    assert not differ and set(after) == set(before), differ[:10] or sorted(set(after) ^ set(before))[:10]
    dry = snakemake(clone, "-n", "--configfile", "config/default.yaml")
    assert "Nothing to be done" in dry.stdout + dry.stderr, dry.stdout[-3000:] + dry.stderr[-3000:]
    logins = server.log().count(f"Accepted publickey for {server.user} from 127.0.0.1")
    assert logins >= 2, server.log()
