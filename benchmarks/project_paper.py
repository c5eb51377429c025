"""How long the paper config's training and tuning take on this device: a projection per rule.

    .venv/bin/python benchmarks/project_paper.py [--config config/paper.yaml] [--device auto]

Step times are measured here, in one run, for every (model, input shape, augmentation, batch
size, regime) the config trains: a few real ``Trainer`` steps on random images of the
dataset's shape (``bench_train.bench``, interleaved repetitions, medians). The projection
multiplies them by the steps each job takes, from the config: epochs x (training images -
validation) / batch, per seed and regime for ``train``; per trial (``tune.epochs`` or
``tune.max_steps`` if set, else the training epochs, with no pruning: an upper bound) for
``tune``. Evaluation, the experiments and data preparation are not projected. The training
set sizes are the datasets' published ones (torchvision's downloads).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

# Published training-set sizes of the datasets torchvision downloads (before the validation split).
TRAIN_IMAGES = {"mnist": 60000, "fashion_mnist": 60000, "kmnist": 60000, "svhn": 73257, "cifar10": 50000}


def job_steps(cfg, n_train: int, epochs: int | None = None, max_steps: int | None = None) -> int:
    """Optimisation steps of one training run (as ``Trainer`` counts them)."""
    batch = min(cfg.batch_size, n_train)
    steps = (epochs or cfg.epochs) * (n_train // batch)
    cap = max_steps if max_steps is not None else cfg.max_steps
    return min(steps, cap) if cap is not None else steps


def rows_for(config_path: Path, device: str) -> list[dict]:
    """One row per (rule, dataset, regime): jobs, steps per job, and the settings to time."""
    from snnl.pipeline.preflight import validate_file
    from snnl.data.registry import get_entry

    cfg = validate_file(config_path)
    rows = []
    for dataset in cfg.pipeline.datasets:
        train = cfg.train.resolve(dataset, str(config_path))
        options = cfg.datasets.options(dataset)
        n_train = options.get("train_size") or TRAIN_IMAGES[dataset] - options.get("val_size", 0)
        shape = get_entry(dataset).native_shape(options)
        for regime in cfg.pipeline.regimes:
            key = (train.model, shape, train.augmentation, train.batch_size, train.pool)
            rows.append({"rule": "train", "dataset": dataset, "regime": regime, "jobs": len(cfg.pipeline.seeds),
                         "steps": job_steps(train, n_train), "key": key, "cfg": train, "shape": shape})
            if cfg.pipeline.tune:
                rows.append({"rule": "tune", "dataset": dataset, "regime": regime, "jobs": cfg.tune.n_trials,
                             "steps": job_steps(train, n_train, cfg.tune.epochs, cfg.tune.max_steps), "key": key,
                             "cfg": train, "shape": shape})
    return rows


def step_times(rows: list[dict], device: str, reps: int) -> dict:
    """Seconds per step for each distinct training setting, both regimes (one bench each)."""
    import bench_train

    from snnl.training import TrainConfig, TrainData

    times = {}
    for row in rows:
        if row["key"] in times:
            continue
        c, h, w = row["shape"]
        g = torch.Generator().manual_seed(0)
        n = 4 * row["cfg"].batch_size
        x = torch.randint(0, 256, (n, c, h, w), generator=g, dtype=torch.uint8)
        data = TrainData((x, torch.arange(n) % 10), None, None, [str(i) for i in range(10)], "random")
        cfg = TrainConfig(**{**row["cfg"].to_dict(), "device": device, "probe_points": 0, "checkpoint_every": 0,
                             "epochs": 1, "max_steps": None})
        result = bench_train.bench(f"{row['cfg'].model} {c}x{h}x{w}", cfg, data, reps, 2, 2)
        times[row["key"]] = {k: v / 1000 for k, v in result["ms"].items()}
        print(f"  measured {result['name']}: " + ", ".join(f"{k} {v:.1f} ms" for k, v in result["ms"].items()),
              flush=True)
    return times


def projection(rows: list[dict], times: dict) -> list[str]:
    lines = ["| rule | dataset | regime | jobs | steps per job | s per step | hours |", "|---|---|---|---:|---:|---:|---:|"]
    total = {}
    for r in rows:
        per_step = times[r["key"]][r["regime"]]
        hours = r["jobs"] * r["steps"] * per_step / 3600
        total[r["rule"]] = total.get(r["rule"], 0.0) + hours
        lines.append(f"| {r['rule']} | {r['dataset']} | {r['regime']} | {r['jobs']} | {r['steps']:,} "
                     f"| {per_step * 1000:.2f} ms | {hours:.2f} |")
    lines.append("")
    lines += [f"- **{rule}**: {hours:.2f} h of device time" for rule, hours in total.items()]
    lines.append(f"- **training and tuning together**: {sum(total.values()):.2f} h on one device, jobs one at a time")
    return lines


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--config", type=Path, default=Path("config/paper.yaml"))
    ap.add_argument("--device", default="auto")
    ap.add_argument("--reps", type=int, default=5)
    args = ap.parse_args(argv)
    from snnl.devices import resolve_device

    device = str(resolve_device(args.device, "--device"))
    rows = rows_for(args.config, device)
    print(f"Projection of {args.config} on {device} (torch {torch.__version__}); step times measured now:", flush=True)
    times = step_times(rows, device, args.reps)
    print("\n".join(projection(rows, times)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
