"""Daemons the integration tests start for themselves, from Debian packages that `make
debian-services` installs with apt-get (without starting any of them):

- ``slurm_cluster()``: a one-node SLURM cluster, munged, slurmctld and slurmd as root, holding
  this machine's real CPUs and memory (as ``slurmd -C`` reports them), with the partitions of
  workflow/profiles/slurm (``cpu``, the default, and ``gpu``) and the controller's job completion
  log as the scheduler's own record of every job (tests/test_slurm.py);
- ``ssh_server()``: OpenSSH's sshd on 127.0.0.1 and a free port, key-based login only, with host
  and client keys made for the run (tests/test_dvc_ssh_remote.py, the sharing drill).

Each is a context manager: configuration, keys, state and logs live in a fresh folder under
/tmp; on exit it stops the processes it started (by their ids) and removes what it wrote.
``slurm_unavailable()`` and ``ssh_unavailable()`` give the reason a test must skip (not root,
a program missing, an existing SLURM configuration), or None.
"""

from __future__ import annotations

import getpass
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

SBIN = ("/usr/sbin", "/sbin")
SLURM_PROGRAMS = ("munged", "slurmctld", "slurmd", "sbatch", "srun", "squeue", "sinfo", "scontrol", "scancel")
SSH_PROGRAMS = ("sshd", "ssh-keygen")
INSTALL_HINT = "`make debian-services` installs slurm-wlm, munge and openssh-server with apt-get (as root)"

# srun inside a job reads the default configuration path: the executor plugin's job step drops
# SLURM_CONF (and every other SLURM_* variable) from the environment of the srun it starts.
SLURM_ETC = Path("/etc/slurm")
SLURM_FILES = ("slurm.conf", "gres.conf")


def which(program: str) -> str | None:
    """``program`` on PATH or in /usr/sbin, /sbin (daemons live there; PATH may omit them)."""
    found = shutil.which(program)
    if found:
        return found
    for folder in SBIN:
        if os.access(Path(folder, program), os.X_OK):
            return str(Path(folder, program))
    return None


def _unavailable(programs: tuple[str, ...]) -> str | None:
    if sys.platform != "linux":
        return "needs Linux"
    if os.geteuid() != 0:
        return "needs root (the daemons run as root): run the tests as root"
    missing = [p for p in programs if which(p) is None]
    if missing:
        return f"{', '.join(missing)} not installed: {INSTALL_HINT}"
    return None


def skip_or_fail(reason: str) -> None:
    """Skip a test whose service cannot run here; in CI (CI=true, a fresh machine that
    `make test` has set up as root) fail instead, so that a missing install step shows."""
    import os

    import pytest

    if os.environ.get("CI") == "true":
        pytest.fail(f"{reason} (in CI, `make test` installs and starts what the test needs: check its log)")
    pytest.skip(reason)


def slurm_unavailable() -> str | None:
    """Why ``slurm_cluster()`` cannot run here, or None."""
    reason = _unavailable(SLURM_PROGRAMS)
    if reason is None:
        taken = [str(SLURM_ETC / f) for f in SLURM_FILES if os.path.lexists(SLURM_ETC / f)]
        if taken:
            reason = (f"{', '.join(taken)} exists: SLURM is configured on this machine (or another test session's "
                      "cluster runs); the test cluster would replace it, so it does not start")
    return reason


def ssh_unavailable() -> str | None:
    """Why ``ssh_server()`` cannot run here, or None."""
    return _unavailable(SSH_PROGRAMS)


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def tail(path: Path, n: int = 2000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else f"({path} not written)"


class _Processes:
    """Daemons started in the foreground, each with its own log; stopped in reverse order."""

    def __init__(self) -> None:
        self.started: list[tuple[str, subprocess.Popen, Path]] = []

    def start(self, name: str, cmd: list[str], log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
        with open(log, "ab") as fh:
            proc = subprocess.Popen(cmd, stdout=fh, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                    start_new_session=True, env=env)
        self.started.append((name, proc, log))
        return proc

    def check_alive(self, what: str) -> None:
        for name, proc, log in self.started:
            if proc.poll() is not None:
                raise RuntimeError(f"{what}: {name} exited with status {proc.returncode}; its log:\n{tail(log)}")

    def wait_for(self, ready: Callable[[], bool], what: str, timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            self.check_alive(what)
            if ready():
                return
            time.sleep(0.2)
        logs = "\n".join(f"--- {name}:\n{tail(log)}" for name, _, log in self.started)
        raise TimeoutError(f"{what} not ready after {timeout:.0f} s; logs:\n{logs}")

    def stop(self) -> None:
        for _, proc, _ in reversed(self.started):
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                try:
                    proc.wait(timeout=15)
                except subprocess.TimeoutExpired:
                    proc.kill()
                    proc.wait()
        self.started.clear()


def _private_folder(prefix: str, mode: int) -> Path:
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    folder.chmod(mode)
    return folder


def _quiet(cmd: list[str], timeout: float = 10.0) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False)


# ---------------------------------------------------------------------------------------
# SLURM


@dataclass(frozen=True)
class SlurmCluster:
    """A running one-node cluster. ``cpus`` and ``memory_mb``: the node's (the machine's real
    ones); ``gpus``: the stand-in GPUs it declares (see ``slurm_cluster``)."""

    folder: Path
    node: str
    cpus: int
    memory_mb: int
    gpus: int
    partitions: tuple[str, ...]
    jobcomp: Path

    def finished_jobs(self) -> dict[str, dict[str, str]]:
        """The controller's own record of every finished job (JobCompType=jobcomp/filetxt), by
        job id: JobId, Name, JobState, Partition, NodeList, ExitCode, StartTime, EndTime, ..."""
        records: dict[str, dict[str, str]] = {}
        if self.jobcomp.exists():
            for line in self.jobcomp.read_text().splitlines():
                fields = dict(item.split("=", 1) for item in line.split() if "=" in item)
                if "JobId" in fields:
                    records[fields["JobId"]] = fields
        return records

    def logs(self) -> str:
        """The daemons' log tails, for failure messages."""
        return "\n".join(f"--- {name}:\n{tail(self.folder / name)}" for name in ("slurmctld.log", "slurmd.log"))


def node_hardware() -> dict[str, int]:
    """This machine as slurmd sees it (``slurmd -C``): CPUs, Boards, SocketsPerBoard,
    CoresPerSocket, ThreadsPerCore, RealMemory (MB)."""
    out = _quiet([which("slurmd") or "slurmd", "-C"])
    first = out.stdout.splitlines()[0] if out.stdout else ""
    keys = ("CPUs", "Boards", "SocketsPerBoard", "CoresPerSocket", "ThreadsPerCore", "RealMemory")
    fields = dict(item.split("=", 1) for item in first.split() if "=" in item)
    if out.returncode != 0 or not all(k in fields for k in keys):
        raise RuntimeError(f"slurmd -C did not describe this machine (exit {out.returncode}): {out.stdout}{out.stderr}")
    return {k: int(fields[k]) for k in keys}


SLURM_CONF = """\
# A one-node test cluster written by tests/helpers/services.py; removed when the test ends.
ClusterName=snnltest
SlurmctldHost={host}(127.0.0.1)
SlurmctldPort={ctld_port}
SlurmdPort={d_port}
CommunicationParameters=NoInAddrAny
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
AuthInfo=socket={folder}/munge.socket
CredType=cred/munge
StateSaveLocation={folder}/state
SlurmdSpoolDir={folder}/spool
SlurmctldPidFile={folder}/slurmctld.pid
SlurmdPidFile={folder}/slurmd.pid
SlurmctldLogFile={folder}/slurmctld.log
SlurmdLogFile={folder}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
JobCompType=jobcomp/filetxt
JobCompLoc={folder}/jobcomp.log
MinJobAge=3600
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_Core_Memory
DefMemPerCPU=1000
GresTypes=gpu
MpiDefault=none
SwitchType=switch/none
MailProg=/bin/true
ReturnToService=2
NodeName={node} NodeAddr=127.0.0.1 CPUs={CPUs} Boards={Boards} SocketsPerBoard={SocketsPerBoard} \
CoresPerSocket={CoresPerSocket} ThreadsPerCore={ThreadsPerCore} RealMemory={RealMemory} Gres=gpu:{gpus} State=UNKNOWN
PartitionName=cpu Nodes={node} Default=YES MaxTime=INFINITE State=UP
PartitionName=gpu Nodes={node} MaxTime=INFINITE State=UP
"""


@contextmanager
def slurm_cluster(gpus: int = 1) -> Iterator[SlurmCluster]:
    """Start munged, slurmctld and slurmd (as root, in the foreground, on free loopback ports) for
    a one-node cluster; yield it once the node is idle; then cancel what is left, stop the three
    daemons and remove the configuration.

    Accounting is off (no slurmdbd): ``squeue`` is the job-status command, and ``MinJobAge=3600``
    keeps finished jobs in the controller's memory for it. ``jobcomp/filetxt`` records every
    finished job. ``gpus`` stand-in GPUs (gres.conf ``File=/dev/null``: Slurm schedules, counts
    and assigns them like GPUs, nothing is attached) let jobs that ask for ``--gpus`` run on the
    ``gpu`` partition. The configuration sits at /etc/slurm/ (symbolic links), where srun inside a
    job looks for it. Raises RuntimeError naming the reason when ``slurm_unavailable()`` has one.
    """
    reason = slurm_unavailable()
    if reason:
        raise RuntimeError(f"cannot start the test SLURM cluster: {reason}")
    folder = _private_folder("snnl-slurm-", 0o755)  # munged: its socket's folders must be searchable by all
    procs = _Processes()
    linked: list[Path] = []
    try:
        (folder / "state").mkdir()
        (folder / "spool").mkdir()
        key = folder / "munge.key"
        key.write_bytes(os.urandom(1024))
        key.chmod(0o400)
        procs.start("munged", [which("munged"), "--foreground", f"--key-file={key}", f"--socket={folder}/munge.socket",
                               f"--pid-file={folder}/munged.pid", f"--log-file={folder}/munged.log",
                               f"--seed-file={folder}/munged.seed"], folder / "munged.out")
        procs.wait_for(lambda: (folder / "munge.socket").exists(), "munged", timeout=20)

        host = socket.gethostname().split(".")[0]
        hardware = node_hardware()
        conf = SLURM_CONF.format(host=host, node=host, folder=folder, ctld_port=free_port(), d_port=free_port(),
                                 gpus=gpus, **hardware)
        (folder / "slurm.conf").write_text(conf)
        (folder / "gres.conf").write_text(f"NodeName={host} Name=gpu File=/dev/null Count={gpus}\n" if gpus else "")
        SLURM_ETC.mkdir(parents=True, exist_ok=True)
        for name in SLURM_FILES:
            (SLURM_ETC / name).symlink_to(folder / name)
            linked.append(SLURM_ETC / name)

        procs.start("slurmctld", [which("slurmctld"), "-D"], folder / "slurmctld.out")
        procs.wait_for(lambda: _quiet(["scontrol", "ping"]).stdout.count("UP") > 0, "slurmctld")
        procs.start("slurmd", [which("slurmd"), "-D", "-N", host], folder / "slurmd.out")
        procs.wait_for(lambda: _quiet(["sinfo", "-h", "-n", host, "-o", "%T"]).stdout.split()[:1] == ["idle"],
                       "slurmd (node idle)")
        yield SlurmCluster(folder=folder, node=host, cpus=hardware["CPUs"], memory_mb=hardware["RealMemory"],
                           gpus=gpus, partitions=("cpu", "gpu"), jobcomp=folder / "jobcomp.log")
    finally:
        if procs.started:
            _quiet(["scancel", "--user", getpass.getuser(), "--full"])
        procs.stop()
        for link in linked:  # only the links made here, still pointing into this folder
            if link.is_symlink() and Path(os.readlink(link)).parent == folder:
                link.unlink()
        shutil.rmtree(folder, ignore_errors=True)


# ---------------------------------------------------------------------------------------
# OpenSSH


@dataclass(frozen=True)
class SshServer:
    """A running sshd on ``host``:``port`` that lets ``user`` in with the private key ``key``.

    ``home``: a folder to use as HOME for the clients; its .ssh/known_hosts trusts this server's
    host key. DVC's ssh remote (asyncssh) reads ~/.ssh/known_hosts and has no option for another
    file; with HOME set there, nothing reads or writes the real ~/.ssh."""

    host: str
    port: int
    user: str
    key: Path
    home: Path
    folder: Path

    def url(self, path: str | Path) -> str:
        """``ssh://host/path``: the remote's address; port, user and key are DVC remote options."""
        return f"ssh://{self.host}{Path(path).resolve()}"

    def env(self, base: dict[str, str]) -> dict[str, str]:
        """``base`` with HOME pointing at ``home``."""
        return {**base, "HOME": str(self.home)}

    def log(self) -> str:
        """sshd's whole log (LogLevel VERBOSE: every login, with the key's user)."""
        path = self.folder / "sshd.log"
        return path.read_text(errors="replace") if path.exists() else ""


SSHD_CONFIG = """\
# A private sshd for one test run, written by tests/helpers/services.py.
ListenAddress 127.0.0.1
Port {port}
HostKey {folder}/host_ed25519
PidFile {folder}/sshd.pid
AuthorizedKeysFile {folder}/authorized_keys
AllowUsers {user}
PubkeyAuthentication yes
PasswordAuthentication no
KbdInteractiveAuthentication no
PermitRootLogin prohibit-password
UsePAM no
StrictModes no
Subsystem sftp internal-sftp
LogLevel VERBOSE
"""


def _keygen(path: Path) -> None:
    out = _quiet([which("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-C", "snnl-test", "-f", str(path)])
    if out.returncode != 0:
        raise RuntimeError(f"ssh-keygen failed for {path}: {out.stderr}")


def _listening(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1) as sock:
            return sock.recv(4).startswith(b"SSH-")
    except OSError:
        return False


@contextmanager
def ssh_server() -> Iterator[SshServer]:
    """Start sshd (as root, in the foreground) on 127.0.0.1 and a free port with a host key made
    here, key-based login for the current user with a client key made here; yield it; then stop
    it and remove keys, configuration and logs. sshd's privilege-separation folder /run/sshd is
    created when missing and removed again. Raises RuntimeError naming the reason when
    ``ssh_unavailable()`` has one."""
    reason = ssh_unavailable()
    if reason:
        raise RuntimeError(f"cannot start the test ssh server: {reason}")
    folder = _private_folder("snnl-sshd-", 0o700)
    procs = _Processes()
    privsep = Path("/run/sshd")
    made_privsep = not privsep.exists()
    try:
        if made_privsep:
            privsep.mkdir(mode=0o755, parents=True)
        _keygen(folder / "host_ed25519")
        _keygen(folder / "client_ed25519")
        shutil.copy(folder / "client_ed25519.pub", folder / "authorized_keys")
        port, user = free_port(), getpass.getuser()
        (folder / "sshd_config").write_text(SSHD_CONFIG.format(port=port, folder=folder, user=user))
        home = folder / "home"
        (home / ".ssh").mkdir(parents=True, mode=0o700)
        host_key = (folder / "host_ed25519.pub").read_text().split()
        (home / ".ssh" / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
        procs.start("sshd", [which("sshd"), "-D", "-e", "-f", str(folder / "sshd_config")], folder / "sshd.log")
        procs.wait_for(lambda: _listening(port), "sshd")
        yield SshServer(host="127.0.0.1", port=port, user=user, key=folder / "client_ed25519", home=home, folder=folder)
    finally:
        procs.stop()
        if made_privsep:
            shutil.rmtree(privsep, ignore_errors=True)
        shutil.rmtree(folder, ignore_errors=True)
