"""The slow reliability drills of the default pipeline (issue 9: drills 1, 5 and 6).

    make drills                       # or: .venv/bin/python tests/reliability/drills.py
    .venv/bin/python tests/reliability/drills.py --only kill --moments data figures

Every drill runs `make reproduce` in a fresh copy of one snapshot of this working tree (its
tracked and untracked-but-not-ignored files, taken at the start) under a scratch folder
(default: /tmp/snnl-drills-<time>), never in this checkout. Each copy uses this checkout's
.venv through a symlink (nothing is installed; make is told the install stamp is up to date)
and its own code through PYTHONPATH.

1. kill    one uninterrupted reference run; then, for each moment (during data preparation,
           early and late in training, during evaluation, during figure generation), a fresh
           copy whose `make reproduce` gets SIGKILL, with every process it started, at that
           moment; then `make reproduce` again. Checks: the rerun finishes; no job that had
           finished before the kill runs again and its outputs keep their mtimes; a training
           job killed after a periodic checkpoint resumes from it (`resumed_at_steps` of its
           metrics JSON, and its log); nothing half-written is left; the final outputs equal
           the reference's (see ``compare_runs``).
6. determinism
           a second uninterrupted run: tables byte-identical to the reference's, and every
           other output compared and listed; a run with another seed list (`--seeds`): every
           per-seed number differs from the reference's.
5. share   in the finished reference copy (made a git repository), the README's sharing
           path: a DVC remote, `dvc commit -f`, `dvc push`, commit of dvc.lock; then a
           `git clone` elsewhere, the same remote, `make pull`: every DVC-tracked file
           byte-identical, `snakemake -n` has nothing to do, `make reproduce` runs no job.
           The remote (`--remote`): `ssh` (default), DVC's ssh remote on an sshd this script
           starts on 127.0.0.1 (tests/helpers/services.py; as root, after `make
           debian-services`), or `folder`, a local folder.

Prints progress with timings, writes a JSON summary (path printed at the end) and exits 1
when any check fails. Results are recorded in docs/RELIABILITY.md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
import yaml

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))  # snnl for helpers.runs
sys.path.insert(0, str(ROOT / "tests"))
from helpers.services import ssh_server, ssh_unavailable  # the sharing drill's ssh remote
from helpers.runs import REQUIRED, compare_runs, dvc_tracked, files_under  # comparing two runs
from helpers.workflow import jobs as job_counts  # the 'Job stats' table of Snakemake's output

VENV = ROOT / ".venv"
STAMP = ".venv/.snnl-installed"
MOMENTS = ["data", "train-early", "train-late", "evaluate", "figures"]
DRILLS = ["kill", "determinism", "share"]
T0 = time.monotonic()
POLL_S = 0.2


def say(msg: str) -> None:
    print(f"[drills {time.monotonic() - T0:7.1f}s] {msg}", flush=True)


# ---------------------------------------------------------------------------------------
# checks and the summary


@dataclass
class Report:
    checks: list[dict[str, Any]] = field(default_factory=list)
    drills: dict[str, Any] = field(default_factory=dict)

    def check(self, drill: str, name: str, ok: bool, detail: Any = "") -> bool:
        self.checks.append({"drill": drill, "check": name, "ok": bool(ok), "detail": detail})
        say(f"  {'PASS' if ok else 'FAIL'} [{drill}] {name}{': ' + str(detail) if detail not in ('', None) else ''}")
        return bool(ok)

    @property
    def ok(self) -> bool:
        return all(c["ok"] for c in self.checks)


# ---------------------------------------------------------------------------------------
# scratch copies and make


EXTRA_FILES: dict[str, Path] = {}  # more files for the snapshot: {relative path: source}


def snapshot_tree(dest: Path) -> Path:
    """The working tree's tracked and untracked-but-not-ignored files, copied once to ``dest``
    (mtimes kept), with ``EXTRA_FILES``: every drill starts from this same snapshot, whatever
    is edited in the checkout meanwhile."""
    out = subprocess.run(
        ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
        cwd=ROOT, check=True, capture_output=True,
    ).stdout.decode()
    dest.mkdir(parents=True)
    for rel in sorted(set(filter(None, out.split("\0")))):
        src = ROOT / rel
        if not src.exists() or src.is_dir():
            continue  # deleted in the working tree, or a submodule
        target = dest / rel
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, target, follow_symlinks=False)
    for rel, src in EXTRA_FILES.items():
        shutil.copy2(src, dest / rel)
    return dest


SNAPSHOT: list[Path] = []  # set by main


def scratch_copy(dest: Path) -> Path:
    """A copy of the snapshot, with a .venv symlink to this checkout's."""
    shutil.copytree(SNAPSHOT[0], dest, symlinks=True)
    (dest / ".venv").symlink_to(VENV)
    return dest


def make_env(work: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("MAKEFLAGS", "MFLAGS", "MAKELEVEL", "VIRTUAL_ENV")}
    env["PYTHONPATH"] = str(work / "src")  # the copy's code, not the editable install's
    env["DVC_NO_ANALYTICS"] = "1"
    return env


def make_cmd(target: str, config: str) -> list[str]:
    # -o: the install stamp counts as up to date, whatever the mtimes (never reinstall)
    return ["make", "--no-print-directory", "-o", STAMP, target, f"CONFIG={config}"]


def start_make(work: Path, target: str, config: str, log: Path, env: dict[str, str] | None = None) -> subprocess.Popen:
    with open(log, "wb") as fh:  # the child keeps its own descriptor
        return subprocess.Popen(
            make_cmd(target, config), cwd=work, env=env or make_env(work), stdout=fh, stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL, start_new_session=True,
        )


def run_make(work: Path, target: str, config: str, log: Path, timeout: float = 3600,
             env: dict[str, str] | None = None) -> tuple[int, float]:
    t = time.monotonic()
    proc = start_make(work, target, config, log, env)
    try:
        rc = proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        kill_tree(proc.pid)
        proc.wait()
        rc = -9
    return rc, time.monotonic() - t


def run(cmd: list[str], cwd: Path, env: dict[str, str] | None = None, timeout: float = 1800) -> subprocess.CompletedProcess:
    out = subprocess.run(cmd, check=False, cwd=cwd, env=env or make_env(cwd), capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({out.returncode}) in {cwd}:\n{out.stdout[-3000:]}\n{out.stderr[-3000:]}")
    return out


def tail(path: Path, n: int = 3000) -> str:
    return path.read_text(errors="replace")[-n:] if path.exists() else ""


# ---------------------------------------------------------------------------------------
# killing like a machine dying: every process started, at once


def _children() -> dict[int, list[int]]:
    kids: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            stat = Path(f"/proc/{entry}/stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        kids.setdefault(ppid, []).append(int(entry))
    return kids


def _tree(pid: int) -> set[int]:
    kids, seen, todo = _children(), set(), [pid]
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(kids.get(p, []))
    return seen


def kill_tree(pid: int) -> int:
    """SIGSTOP the process tree of ``pid`` until no new process appears, then SIGKILL all of
    it (and its process group): nothing gets to react, clean up or start a successor."""
    frozen: set[int] = set()
    for _ in range(20):
        tree = _tree(pid) - frozen
        if not tree:
            break
        for p in tree:
            try:
                os.kill(p, signal.SIGSTOP)
            except ProcessLookupError:
                pass
        frozen |= tree
    for p in frozen:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    try:
        os.killpg(pid, signal.SIGKILL)
    except ProcessLookupError:
        pass
    return len(frozen)


# ---------------------------------------------------------------------------------------
# following a run through its output


JOB_RE = re.compile(r"^(?:local)?rule (\w+):\n((?:    .*\n)+)", re.MULTILINE)
FINISHED_RE = re.compile(r"^Finished jobid: (\d+) \(Rule: (\w+)\)", re.MULTILINE)
PROGRESS_RE = re.compile(r"(\d+)/(\d+) \[")


@dataclass
class Job:
    jobid: int
    rule: str
    outputs: list[str]
    log: str | None
    seen: float
    wildcards: str = ""


def parse_jobs(text: str) -> tuple[dict[int, Job], set[int]]:
    jobs: dict[int, Job] = {}
    for m in JOB_RE.finditer(text):
        fields = {}
        for line in m.group(2).splitlines():
            key, _, value = line.strip().partition(": ")
            fields[key] = value
        if "jobid" not in fields:
            continue
        outputs = [o.strip() for o in fields.get("output", "").split(",") if o.strip()]
        jobs[int(fields["jobid"])] = Job(int(fields["jobid"]), m.group(1), outputs, fields.get("log"), 0.0,
                                         fields.get("wildcards", ""))
    return jobs, {int(m.group(1)) for m in FINISHED_RE.finditer(text)}


class Watch:
    """The state of a running `make reproduce`, from its output and the train logs."""

    def __init__(self, work: Path, log: Path):
        self.work, self.log = work, log
        self.jobs: dict[int, Job] = {}
        self.finished: set[int] = set()
        self.counts: dict[str, int] = {}

    def update(self) -> None:
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        jobs, self.finished = parse_jobs(text)
        now = time.monotonic()
        for jid, job in jobs.items():
            if jid not in self.jobs:
                job.seen = now
                self.jobs[jid] = job
        if not self.counts:
            self.counts = job_counts(text)

    def running(self, rule: str | None = None) -> list[Job]:
        return [j for j in self.jobs.values() if j.jobid not in self.finished and (rule is None or j.rule == rule)]

    def n_finished(self, rule: str) -> int:
        return sum(1 for j in self.jobs.values() if j.jobid in self.finished and j.rule == rule)

    def progress(self, job: Job) -> tuple[int, int]:
        """(step, total) of a training job, from the tqdm bar in its log."""
        if not job.log:
            return 0, 0
        path = self.work / job.log
        found = PROGRESS_RE.findall(path.read_text(errors="replace")) if path.exists() else []
        return (int(found[-1][0]), int(found[-1][1])) if found else (0, 0)

    def finished_outputs(self) -> list[str]:
        return sorted(o for j in self.jobs.values() if j.jobid in self.finished for o in j.outputs)

    def describe_running(self) -> list[str]:
        out = []
        for j in sorted(self.running(), key=lambda j: j.jobid):
            extra = ""
            if j.rule == "train":
                step, total = self.progress(j)
                extra = f" at step {step}/{total}"
            out.append(f"{j.rule}({j.wildcards}){extra}, running {time.monotonic() - j.seen:.1f} s")
        return out


def moment_predicate(moment: str, checkpoint_every: int) -> Callable[[Watch], bool]:
    def data(w: Watch) -> bool:
        return any(time.monotonic() - j.seen >= 1.5 for j in w.running("prepare_data"))

    def train_early(w: Watch) -> bool:
        if w.n_finished("train"):
            return False
        for j in w.running("train"):
            step, total = w.progress(j)
            if total and checkpoint_every + 5 <= step <= total // 2:
                return True
        return False

    def train_late(w: Watch) -> bool:
        if w.n_finished("train") < max(w.counts.get("train", 0) - 2, 0):
            return False
        return any(total and step >= 0.75 * total for step, total in map(w.progress, w.running("train")))

    def evaluate(w: Watch) -> bool:
        if w.running("train") or w.n_finished("train") < w.counts.get("train", 1):
            return False
        return any(time.monotonic() - j.seen >= 4.0 for j in w.running("evaluate"))

    def figures(w: Watch) -> bool:
        return any(time.monotonic() - j.seen >= 1.5 for j in w.running("compare_regimes"))

    return {"data": data, "train-early": train_early, "train-late": train_late, "evaluate": evaluate,
            "figures": figures}[moment]


MOMENT_TEXT = {
    "data": "1.5 s into prepare_data (the mnist5k split)",
    "train-early": "first wave of training, past the first periodic checkpoint, before half the steps",
    "train-late": "last wave of training, a job past 75% of its steps",
    "evaluate": "all training done, an evaluate job 4 s in",
    "figures": "1.5 s into compare_regimes (the t-SNE and confidence figures)",
}


# ---------------------------------------------------------------------------------------
def check_same_outputs(report: Report, drill: str, ref: Path, other: Path) -> dict[str, Any]:
    cmp = compare_runs(ref, other)
    report.check(drill, "same set of output files as the reference",
                 not cmp["missing"] and not cmp["extra"],
                 "" if not (cmp["missing"] or cmp["extra"]) else {"missing": cmp["missing"], "extra": cmp["extra"]})
    for key, text in REQUIRED.items():
        bad = cmp["required_failures"][key]
        report.check(drill, f"{text} ({cmp['required_counts'][key]} files)", cmp["required_counts"][key] > 0 and not bad,
                     bad or "")
    say(f"  {drill}: {cmp['identical']}/{cmp['files']} files byte-identical; differing: {summarise(cmp['differ'])}")
    return cmp


def summarise(paths: list[str]) -> str:
    """Paths grouped by their folder, for a one-line report."""
    groups: dict[str, int] = {}
    for p in paths:
        parts = p.split("/")
        key = "/".join(parts[:2]) + "/" if len(parts) > 2 else p
        groups[key] = groups.get(key, 0) + 1
    return ", ".join(f"{k} ({n})" if n > 1 else k for k, n in sorted(groups.items())) or "none"


def stray_files(work: Path) -> list[str]:
    """Leftovers of interrupted writes: temporary files and folders, resume checkpoints."""
    found = []
    for top in ("results", "data"):
        base = work / top
        if base.exists():
            for f in base.rglob("*"):
                name = f.name
                if name.endswith((".tmp", ".resume")) or any(t in name for t in (".tmp-", ".old-", ".resume.")):
                    found.append(str(f.relative_to(work)))
    return sorted(found)


# ---------------------------------------------------------------------------------------
# the drills


def full_run(report: Report, drill: str, work: Path, config: str) -> dict[str, Any]:
    say(f"{drill}: make reproduce in {work}")
    rc, secs = run_make(work, "reproduce", config, work.parent / f"{work.name}.make.log")
    report.check(drill, "make reproduce succeeds", rc == 0,
                 f"{secs:.0f} s" if rc == 0 else f"rc {rc}: {tail(work.parent / f'{work.name}.make.log')}")
    return {"rc": rc, "seconds": round(secs, 1)}


def kill_drill(report: Report, moment: str, scratch: Path, ref: Path, config: str, checkpoint_every: int) -> dict[str, Any]:
    drill = f"kill:{moment}"
    work = scratch_copy(scratch / f"kill-{moment}")
    log1, log2 = scratch / f"kill-{moment}.make1.log", scratch / f"kill-{moment}.make2.log"
    say(f"{drill}: make reproduce, to be killed {MOMENT_TEXT[moment]}")
    t_start = time.monotonic()
    proc = start_make(work, "reproduce", config, log1)
    watch, when = Watch(work, log1), moment_predicate(moment, checkpoint_every)
    killed = False
    while proc.poll() is None:
        watch.update()
        if when(watch):
            running = watch.describe_running()
            n = kill_tree(proc.pid)
            proc.wait()
            killed = True
            break
        time.sleep(POLL_S)
    t_kill = time.monotonic() - t_start
    result: dict[str, Any] = {"moment": moment, "when": MOMENT_TEXT[moment]}
    if not report.check(drill, "the moment was reached and the run killed", killed,
                        f"make exited first (rc {proc.returncode}): {tail(log1, 1500)}" if not killed else ""):
        return result
    watch.update()
    finished = watch.finished_outputs()
    snapshot = {rel: f.stat().st_mtime_ns for o in finished for rel, f in files_under(work, o).items()}
    resumes = {}
    for r in (work / "results" / "checkpoints").rglob("*.pt.resume") if (work / "results" / "checkpoints").exists() else []:
        resumes[str(r.relative_to(work))] = int(torch.load(r, map_location="cpu", weights_only=True)["step"])
    strays_at_kill = stray_files(work)
    result.update({
        "killed_after_s": round(t_kill, 1), "processes_killed": n, "running_at_kill": running,
        "jobs_finished_before_kill": sorted(f"{j.rule}({j.wildcards})" for j in watch.jobs.values()
                                            if j.jobid in watch.finished),
        "resume_checkpoints_at_kill": resumes, "leftovers_at_kill": strays_at_kill,
    })
    say(f"  killed after {t_kill:.1f} s ({n} processes); running: {'; '.join(running) or 'nothing'}; "
        f"{len(result['jobs_finished_before_kill'])} jobs had finished; resume checkpoints: {resumes or 'none'}")

    say(f"{drill}: make reproduce again")
    rc, secs = run_make(work, "reproduce", config, log2)
    result["rerun_seconds"] = round(secs, 1)
    if not report.check(drill, "the rerun finishes", rc == 0, f"{secs:.0f} s" if rc == 0 else f"rc {rc}: {tail(log2)}"):
        return result
    text2 = log2.read_text(errors="replace")
    rerun_jobs, _ = parse_jobs(text2)
    result["rerun_jobs"] = job_counts(text2)
    rerun_outputs = {o for j in rerun_jobs.values() for o in j.outputs}
    again = sorted(rerun_outputs & set(finished))
    report.check(drill, f"no finished job ran again ({len(finished)} outputs of finished jobs)", not again, again or "")
    touched = sorted(rel for rel, mt in snapshot.items()
                     if not (work / rel).exists() or (work / rel).stat().st_mtime_ns != mt)
    report.check(drill, f"files of finished jobs kept their mtimes ({len(snapshot)} files)", not touched, touched or "")
    resumed = {}
    for rel, step in resumes.items():
        # results/checkpoints/D/R/seedS.pt.resume -> results/metrics/D/R/seedS.json
        metrics = work / rel.replace("results/checkpoints/", "results/metrics/").replace(".pt.resume", ".json")
        got = json.loads(metrics.read_text()).get("resumed_at_steps")
        train_log = work / rel.replace("results/checkpoints/", "logs/train/").replace(".pt.resume", ".log")
        said = f"resumed from {rel} at step {step}/" in train_log.read_text(errors="replace")
        resumed[rel] = {"checkpoint_step": step, "resumed_at_steps": got, "log_says_resumed": said}
        report.check(drill, f"{metrics.relative_to(work)}: training resumed at step {step}", got == [step] and said,
                     resumed[rel])
    result["resumed"] = resumed
    strays = stray_files(work)
    report.check(drill, "no leftover temporary or resume files", not strays, strays or "")
    cmp = check_same_outputs(report, drill, ref, work)
    result["compare"] = {k: cmp[k] for k in ("files", "identical", "differ")}
    return result


def determinism_drill(report: Report, scratch: Path, ref: Path, config: str, seeds: list[int]) -> dict[str, Any]:
    drill = "determinism"
    result: dict[str, Any] = {}
    work = scratch_copy(scratch / "run2")
    result["run2"] = full_run(report, drill, work, config)
    if result["run2"]["rc"] == 0:
        cmp = check_same_outputs(report, drill, ref, work)
        result["compare"] = {k: cmp[k] for k in ("files", "identical", "differ")}

    # another seed list, in a copy of the reference run (data, GAN and E1 are reused)
    drill = "determinism:seeds"
    other = scratch / "seeds"
    say(f"{drill}: copy of the reference run, pipeline.seeds = {seeds}")
    shutil.copytree(ref, other, symlinks=True)
    cfg = yaml.safe_load((other / config).read_text())
    ref_seeds = cfg["pipeline"]["seeds"]
    cfg["pipeline"]["seeds"] = seeds
    (other / "config" / "drill-seeds.yaml").write_text(yaml.safe_dump(cfg, sort_keys=False))
    rc, secs = run_make(other, "reproduce", "config/drill-seeds.yaml", scratch / "seeds.make.log")
    result["seeds"] = {"seeds": seeds, "reference_seeds": ref_seeds, "rc": rc, "seconds": round(secs, 1)}
    if not report.check(drill, "make reproduce succeeds", rc == 0, f"{secs:.0f} s" if rc == 0 else tail(scratch / "seeds.make.log")):
        return result
    keys = ("test_accuracy", "test_loss", "val_loss", "train_loss", "temperatures")
    per_seed: dict[str, dict[int, Any]] = {}
    for run_dir, seed_list in ((ref, ref_seeds), (other, seeds)):
        for m in sorted((run_dir / "results" / "metrics").rglob("*.json")):
            data = json.loads(m.read_text())
            if data["seed"] in seed_list:
                per_seed.setdefault(f"{data['dataset']}/{data['regime']}", {})[data["seed"]] = [data[k] for k in keys]
    clashes = []
    for group, by_seed in per_seed.items():
        for s in seeds:
            for r in ref_seeds:
                if s != r and s in by_seed and r in by_seed:
                    same = [k for k, va, vb in zip(keys, by_seed[s], by_seed[r]) if va == vb]
                    if same:
                        clashes.append(f"{group} seed {s} vs {r}: {same}")
    n_new = sum(1 for g in per_seed.values() for s in seeds if s in g)
    report.check(drill, f"every per-seed number ({', '.join(keys)}) differs from every reference seed's "
                 f"({n_new} new runs)", n_new > 0 and not clashes, clashes or "")
    differ = [t.name for t in sorted((ref / "results" / "tables").glob("*.md"))
              if (other / "results" / "tables" / t.name).read_bytes() != t.read_bytes()]
    report.check(drill, "the tables change with the seeds", "accuracy.md" in differ, f"differing: {differ}")
    result["seeds"]["examples"] = {g: {str(s): v[:2] for s, v in sorted(by.items())} for g, by in per_seed.items()}
    return result


def share_drill(report: Report, scratch: Path, ref: Path, config: str, remote_kind: str = "ssh") -> dict[str, Any]:
    drill = "share"
    result: dict[str, Any] = {"remote": remote_kind}
    if remote_kind == "ssh":
        reason = ssh_unavailable()
        if not report.check(drill, "an sshd for DVC's ssh remote (tests/helpers/services.py)", reason is None,
                            reason or ""):
            return result
        with ssh_server() as server:
            result.update(_share(report, scratch, ref, config, server.url(scratch / "dvc-remote"),
                                 {"port": str(server.port), "user": server.user, "keyfile": str(server.key)},
                                 {"HOME": str(server.home)}))
            logins = server.log().count(f"Accepted publickey for {server.user} from 127.0.0.1")
            result["ssh_logins"] = logins
            if "push" in result:
                report.check(drill, "push and pull went through sshd (key-based logins in its log)", logins >= 2,
                             f"{logins} logins")
        return result
    return {**result, **_share(report, scratch, ref, config, str(scratch / "dvc-remote"), {}, {})}


def _share(report: Report, scratch: Path, ref: Path, config: str, url: str, options: dict[str, str],
           extra_env: dict[str, str]) -> dict[str, Any]:
    """The sharing drill through the remote at ``url`` with ``options`` (dvc remote modify
    --local), every command run with ``extra_env`` (HOME for the ssh remote's known_hosts)."""
    drill = "share"
    result: dict[str, Any] = {"url": url}
    clone = scratch / "clone"
    env = {**make_env(ref), **extra_env}
    git = ["git", "-c", "user.name=drills", "-c", "user.email=drills@example.invalid"]
    dvc = str(VENV / "bin" / "dvc")

    def add_remote(work: Path, work_env: dict[str, str]) -> None:
        run([dvc, "remote", "add", "--local", "-d", "storage", url], work, work_env)
        for key, value in options.items():
            run([dvc, "remote", "modify", "--local", "storage", key, value], work, work_env)

    say(f"{drill}: git repository of the reference copy, DVC remote {url}, dvc commit -f, dvc push")
    t = time.monotonic()
    try:
        run(["git", "init", "-q"], ref, env)
        with open(ref / ".git" / "info" / "exclude", "a") as fh:
            fh.write(".venv\n")  # the symlink to this checkout's (.gitignore's `.venv/` is for folders)
        run(git + ["add", "-A"], ref, env)
        run(git + ["commit", "-q", "-m", "snapshot of the working tree"], ref, env)
        add_remote(ref, env)
        run([dvc, "commit", "-f", "-q"], ref, env)
        run([dvc, "push", "-q"], ref, env)
        run(git + ["add", "dvc.lock"], ref, env)
        run(git + ["commit", "-q", "-m", "results"], ref, env)
    except (RuntimeError, subprocess.TimeoutExpired) as err:
        report.check(drill, "dvc commit and push in the finished run", False, str(err)[-3000:])
        return result
    before = dvc_tracked(ref)
    size = sum((ref / r).stat().st_size for r in before)
    result["push"] = {"files": len(before), "bytes": size, "seconds": round(time.monotonic() - t, 1)}
    report.check(drill, "dvc commit -f and dvc push", True, f"{len(before)} files, {size / 1e6:.1f} MB")

    say(f"{drill}: git clone to {clone}, the same remote, make pull")
    run(["git", "clone", "-q", str(ref), str(clone)], scratch, env)
    (clone / ".venv").symlink_to(VENV)
    env = {**make_env(clone), **extra_env}
    add_remote(clone, env)
    rc, secs = run_make(clone, "pull", config, scratch / "clone.pull.log", env=env)
    result["pull_seconds"] = round(secs, 1)
    if not report.check(drill, "make pull succeeds", rc == 0, f"{secs:.0f} s" if rc == 0 else tail(scratch / "clone.pull.log")):
        return result
    after = dvc_tracked(clone)
    differ = sorted(r for r in before if after.get(r) != before[r])
    report.check(drill, f"every DVC-tracked file byte-identical after make pull ({len(before)} files)",
                 not differ and set(after) == set(before), differ[:20] or sorted(set(after) ^ set(before))[:20] or "")
    dry = subprocess.run([str(VENV / "bin" / "snakemake"), "--profile", "workflow/profiles/default", "--configfile", config,
                          "-n"], check=False, cwd=clone, env={**env, "PATH": f"{VENV / 'bin'}:{env['PATH']}"},
                         capture_output=True, text=True, timeout=600)
    text = dry.stdout + dry.stderr
    report.check(drill, "snakemake -n after make pull: nothing to be done", dry.returncode == 0 and "Nothing to be done" in text,
                 "" if "Nothing to be done" in text else job_counts(text) or text[-2000:])
    rc, secs = run_make(clone, "reproduce", config, scratch / "clone.reproduce.log", env=env)
    jobs = job_counts((scratch / "clone.reproduce.log").read_text(errors="replace"))
    result["reproduce_after_pull"] = {"rc": rc, "seconds": round(secs, 1), "jobs": jobs}
    report.check(drill, "make reproduce after make pull runs no job", rc == 0 and not jobs,
                 f"{secs:.0f} s" if rc == 0 and not jobs else (jobs or tail(scratch / "clone.reproduce.log")))
    return result


# ---------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--scratch", type=Path, default=None, help="scratch folder (default /tmp/snnl-drills-<time>)")
    ap.add_argument("--config", default="config/default.yaml", help="pipeline config (default: %(default)s)")
    ap.add_argument("--only", nargs="+", choices=DRILLS, default=DRILLS, help="drills to run (default: all)")
    ap.add_argument("--moments", nargs="+", choices=MOMENTS, default=MOMENTS, help="kill moments (default: all)")
    ap.add_argument("--seeds", nargs="+", type=int, default=[3, 4, 5], help="the other seed list (default: 3 4 5)")
    ap.add_argument("--keep", action="store_true", help="keep the scratch copies also when every check passes")
    ap.add_argument("--remote", choices=["ssh", "folder"], default="ssh",
                    help="the sharing drill's DVC remote: ssh (an sshd on 127.0.0.1, started here) or a local folder "
                         "(default: %(default)s)")
    args = ap.parse_args(argv)

    scratch = args.scratch or Path(f"/tmp/snnl-drills-{datetime.now().strftime('%Y%m%d-%H%M%S')}")
    scratch.mkdir(parents=True, exist_ok=False)
    config_path = (ROOT / args.config).resolve()
    if not config_path.is_relative_to(ROOT):  # a config from elsewhere goes into every copy
        args.config = f"config/{config_path.name}"
        EXTRA_FILES[args.config] = config_path
    cfg = yaml.safe_load(config_path.read_text())
    checkpoint_every = int((cfg.get("train") or {}).get("checkpoint_every", 50))
    report = Report()
    summary: dict[str, Any] = {
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]),
        "started": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": {"host": platform.node(), "cpus": os.cpu_count(), "platform": platform.platform(),
                    "cpu": _cpu_name(), "python": platform.python_version(), "torch": torch.__version__},
        "config": args.config, "scratch": str(scratch), "drills": report.drills, "checks": report.checks,
    }
    say(f"scratch folder {scratch}; config {args.config}; drills {args.only}")
    try:
        SNAPSHOT.append(snapshot_tree(scratch / "tree"))
        ref = scratch_copy(scratch / "ref")
        report.drills["reference"] = full_run(report, "reference", ref, args.config)
        if report.drills["reference"]["rc"] == 0:
            if "kill" in args.only:
                for moment in args.moments:
                    report.drills[f"kill:{moment}"] = kill_drill(report, moment, scratch, ref, args.config, checkpoint_every)
            if "determinism" in args.only:
                report.drills["determinism"] = determinism_drill(report, scratch, ref, args.config, args.seeds)
            if "share" in args.only:  # last: it commits the reference copy's outputs into DVC's cache
                report.drills["share"] = share_drill(report, scratch, ref, args.config, args.remote)
    except Exception as err:  # noqa: BLE001 -- a drill's own failure is a failed check, with its summary written
        report.check("drills", "the drills ran to the end", False, f"{type(err).__name__}: {err}")
    summary["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
    summary["seconds"] = round(time.monotonic() - T0, 1)
    summary["ok"] = report.ok
    path = scratch / "drills-summary.json"
    path.write_text(json.dumps(summary, indent=2, default=str) + "\n")
    failed = [c for c in report.checks if not c["ok"]]
    if report.ok and not args.keep:
        for sub in scratch.iterdir():
            if sub.is_dir():
                shutil.rmtree(sub, ignore_errors=True)
    say(f"{len(report.checks) - len(failed)}/{len(report.checks)} checks passed in {summary['seconds'] / 60:.1f} min; "
        f"summary: {path}")
    for c in failed:
        say(f"  FAILED [{c['drill']}] {c['check']}")
    return 0 if report.ok else 1


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor()


if __name__ == "__main__":
    sys.exit(main())
