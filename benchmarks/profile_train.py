"""Where the time of a training step goes: torch.profiler over real ``Trainer.train_step`` calls.

    .venv/bin/python benchmarks/profile_train.py [--threads 1] [--steps 20] [--top 15]

Profiles the ``cnn`` at batch 128 on mnist5k in three regimes (``ce-only``, ``baseline``,
``entangled``; see bench_train.py), then prints, per regime, the self CPU time of the
operators grouped into what they are for (convolution, the Gram / block matrix products of
the SNNL, elementwise and reductions, optimizer, ...) and the top operators. The difference
between regimes is what the SNNL costs, and where.
"""

from __future__ import annotations

import argparse
import sys
from collections import defaultdict

import torch
from torch.profiler import ProfilerActivity, profile

sys.path.insert(0, __file__.rsplit("/", 1)[0])
from bench_train import CEOnly, mnist5k  # noqa: E402

from snnl.training import TrainConfig, Trainer  # noqa: E402

GROUPS = [
    ("convolution", ("conv", "mkldnn_convolution", "convolution_backward")),
    ("matrix products (Gram, linear)", ("addmm", "mm", "bmm", "matmul", "linear")),
    ("exp / log-sum-exp", ("exp", "logsumexp", "log")),
    ("pooling / relu / dropout", ("max_pool", "relu", "threshold", "dropout", "bernoulli")),
    ("optimizer", ("_foreach", "sgd", "adam", "lerp", "addcmul", "addcdiv")),
    ("copies / casts / views", ("copy_", "to", "clone", "contiguous", "empty", "zeros", "fill_", "resize")),
]


def group_of(name: str) -> str:
    bare = name.removeprefix("aten::")
    for group, keys in GROUPS:
        if any(bare == k or bare.startswith(k + "_") or bare.startswith(k) for k in keys):
            return group
    return "other elementwise / reductions / autograd"


def profile_regime(runner, steps: int):
    for _ in range(3):
        runner.train_step()
    with profile(activities=[ProfilerActivity.CPU]) as prof:
        for _ in range(steps):
            runner.train_step()
    events = [e for e in prof.key_averages() if e.key.startswith("aten::")]
    # operators called from Python (top level): what a GPU would launch or dispatch one by one
    top_level = sum(1 for e in prof.events() if e.name.startswith("aten::") and e.cpu_parent is None)
    total = sum(e.self_cpu_time_total for e in events)
    groups: dict[str, float] = defaultdict(float)
    for e in events:
        groups[group_of(e.key)] += e.self_cpu_time_total
    top = sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)
    return total / steps, {k: v / steps for k, v in groups.items()}, top, top_level / steps


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--top", type=int, default=12)
    ap.add_argument("--alpha", type=float, default=TrainConfig().alpha)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    data = mnist5k()
    cfg = TrainConfig(model="cnn", batch_size=128, alpha=args.alpha, threads=args.threads,
                      probe_points=0, checkpoint_every=0)
    runners = {
        "ce-only": CEOnly(Trainer(cfg, data, regime="baseline", seed=0, progress=False)),
        "baseline": Trainer(cfg, data, regime="baseline", seed=0, progress=False),
        "entangled": Trainer(cfg, data, regime="entangled", seed=0, progress=False),
    }
    results = {name: profile_regime(r, args.steps) for name, r in runners.items()}
    names = list(results)
    all_groups = sorted({g for _, groups, _, _ in results.values() for g in groups},
                        key=lambda g: -results["entangled"][1].get(g, 0.0))
    print(f"self CPU ms per step (cnn, batch 128, {args.threads} thread(s), {args.steps} profiled steps)\n")
    print(f"| group | {' | '.join(names)} | entangled - ce-only |")
    print("|---|" + "---:|" * (len(names) + 1))
    for g in all_groups:
        vals = [results[n][1].get(g, 0.0) / 1e3 for n in names]
        print(f"| {g} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {vals[-1] - vals[0]:+.1f} |")
    totals = [results[n][0] / 1e3 for n in names]
    print("| **total (aten ops)** | " + " | ".join(f"**{v:.1f}**" for v in totals) + f" | {totals[-1] - totals[0]:+.1f} |")
    print(f"\nentangled / baseline (profiled self time): {totals[2] / totals[1]:.3f}; "
          f"entangled / ce-only: {totals[2] / totals[0]:.3f}")
    ops = [results[n][3] for n in names]
    print("top-level aten operators per step: " + ", ".join(f"{n} {v:.0f}" for n, v in zip(names, ops))
          + f"; entangled / ce-only: {ops[2] / ops[0]:.2f}\n")
    for name in ("entangled",):
        print(f"top operators, {name} (self CPU ms per step, calls per step):")
        for e in results[name][2][: args.top]:
            print(f"  {e.key:40s} {e.self_cpu_time_total / 1e3 / args.steps:8.2f}  {e.count / args.steps:6.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
