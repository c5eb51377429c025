"""The GPU check of issue 8, as one script that fits a short device lease (about 8 minutes).

Run it on a CUDA machine from the repository root, with the four original Fashion-MNIST IDX
files in FOLDER (the Debian package's /usr/share/datasets/fashion-mnist, copied):

    PYTHONPATH=src python3 benchmarks/bench_gpu.py --fashion FOLDER --out OUT

Through this project's `device` tool (see docs/BENCHMARKS.md, "GPU"), from this machine:

    mkdir -p .gpu_data && cp /usr/share/datasets/fashion-mnist/*.gz .gpu_data/
    echo /.gpu_data/ >> .git/info/exclude
    run(command="bash benchmarks/bench_gpu.sh", carry=[".gpu_data"], timeout_s=560)

Phases (each writes its results to OUT/gpu_results.json and OUT/gpu_results.md as soon as it
ends, so a lease that runs out keeps what finished):
  1. loss: forward+backward of the SNNL on CUDA, b up to 65536 at d = 1024 (the blockwise path
     above snnl.loss.AUTO_CHUNK_BATCH), against the Gram floor, with peak memory;
  2. cnn: the demo CNN trained on the full Fashion-MNIST for the paper's epochs (6), baseline
     and entangled, in fp32 and in bf16 autocast: epoch times, images/s, peak memory, GPU
     utilisation, test accuracy;
  3. resnet: ResNet-18 training throughput on random 32x32x3 inputs, fp32 and bf16;
  4. step: per training step of the demo CNN at batch 128 (ce-only, baseline, entangled;
     fp32 and bf16): milliseconds, CUDA kernels launched and host synchronisations
     (cudaStreamSynchronize / cudaDeviceSynchronize / blocking device-to-host copies, from
     torch.profiler's CUDA runtime events), on a logged and on an unlogged step.
GPU utilisation is sampled every 0.2 s (NVML, else nvidia-smi) and averaged per phase.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import torch

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))


DEVICE = "cuda"


def sync() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.synchronize()


def reset_peak() -> None:
    if DEVICE.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()


def peak_mib() -> float:
    return torch.cuda.max_memory_allocated() / 2**20 if DEVICE.startswith("cuda") else float("nan")


class UtilSampler:
    """Mean GPU utilisation (%) over a phase, sampled in a background thread."""

    def __init__(self, period: float = 0.2):
        self.period, self.samples, self._stop = period, [], threading.Event()
        self._read = self._nvml() or self._smi

    def _nvml(self):
        if not DEVICE.startswith("cuda"):
            return lambda: float("nan")
        try:
            import pynvml

            pynvml.nvmlInit()
            handle = pynvml.nvmlDeviceGetHandleByIndex(torch.cuda.current_device())
            return lambda: float(pynvml.nvmlDeviceGetUtilizationRates(handle).gpu)
        except Exception:  # noqa: BLE001 - NVML is optional; nvidia-smi is the fallback
            return None

    @staticmethod
    def _smi():
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=utilization.gpu", "--format=csv,noheader,nounits", "-i", "0"],
            capture_output=True, text=True, timeout=5,
        )
        return float(out.stdout.split()[0])

    def __enter__(self):
        self.samples, self._stop = [], threading.Event()

        def loop():
            while not self._stop.wait(self.period):
                try:
                    self.samples.append(self._read())
                except Exception:  # noqa: BLE001 - a missed sample is not an error
                    pass

        self._thread = threading.Thread(target=loop, daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()

    @property
    def mean(self) -> float:
        return sum(self.samples) / len(self.samples) if self.samples else float("nan")


class Report:
    def __init__(self, out: Path):
        self.out, self.data, self.md = out, {"machine": machine()}, ["# GPU check (issue 8)", "", machine_line()]
        out.mkdir(parents=True, exist_ok=True)

    def add(self, key: str, value, lines: list[str]) -> None:
        self.data[key] = value
        self.md += ["", *lines]
        (self.out / "gpu_results.json").write_text(json.dumps(self.data, indent=2))
        (self.out / "gpu_results.md").write_text("\n".join(self.md) + "\n")
        print("\n".join(lines), flush=True)


def machine() -> dict:
    if not DEVICE.startswith("cuda"):
        return {"gpu": "none (cpu smoke run)", "memory_gib": 0.0, "torch": torch.__version__, "cuda": None,
                "date": time.strftime("%Y-%m-%d %H:%M")}
    p = torch.cuda.get_device_properties(0)
    return {"gpu": p.name, "memory_gib": p.total_memory / 2**30, "torch": torch.__version__,
            "cuda": torch.version.cuda, "date": time.strftime("%Y-%m-%d %H:%M")}


def machine_line() -> str:
    m = machine()
    return f"Machine: {m['gpu']} ({m['memory_gib']:.0f} GiB), torch {m['torch']}, CUDA {m['cuda']}, {m['date']}."


def phase_loss(report: Report, budget: float, smoke: bool) -> None:
    import bench_loss

    sizes = [(64, 8, ["snnl", "legacy", "gram"]), (300, 4, ["snnl", "plain", "gram"])] if smoke else [(2048, 1024, ["snnl", "legacy", "gram"]), (8192, 1024, ["snnl", "plain", "legacy", "gram"]),
             (16384, 1024, ["snnl", "plain", "gram"]), (32768, 1024, ["snnl", "gram"]),
             (65536, 1024, ["snnl", "gram"]), (8192, 12544, ["snnl", "gram"])]
    rows, start = [], time.perf_counter()
    with UtilSampler() as util:
        for b, d, impls in sizes:
            if time.perf_counter() - start > budget:
                print(f"loss: budget spent, skipping b={b} d={d}", flush=True)
                continue
            t = bench_loss.time_all(b, d, DEVICE, 2 if smoke else 3, 0.05 if smoke else 1.0, impls)
            m = {impl: bench_loss.measure_memory(impl, b, d, DEVICE) for impl in impls}
            rows.append({"b": b, "d": d, "ms": {k: v * 1e3 for k, v in t.items()}, "mib": {k: v / 2**20 for k, v in m.items()}})
            print(f"loss b={b} d={d}: " + ", ".join(f"{k} {v * 1e3:.2f} ms / {m[k] / 2**20:.0f} MiB" for k, v in t.items()), flush=True)
    lines = ["## Loss: forward+backward on CUDA (best of interleaved repetitions; peak extra memory)", "",
             f"Mean GPU utilisation during the phase: {util.mean:.0f}%.", "",
             "| b | d | snnl ms | plain ms | legacy ms | gram ms | snnl/gram | snnl MiB | plain MiB | legacy MiB | gram MiB |",
             "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ms, mib = r["ms"], r["mib"]
        f_ms = [f"{ms[k]:,.2f}" if k in ms else "-" for k in ("snnl", "plain", "legacy", "gram")]
        f_mib = [f"{mib[k]:,.0f}" if k in mib else "-" for k in ("snnl", "plain", "legacy", "gram")]
        lines.append(f"| {r['b']} | {r['d']} | " + " | ".join(f_ms) + f" | {ms['snnl'] / ms['gram']:.2f} | " + " | ".join(f_mib) + " |")
    report.add("loss", {"rows": rows, "util": util.mean}, lines)


def prepare_fashion(folder: Path, work: Path, val_size: int):
    from snnl.data import load_prepared, prepare
    from snnl.training import TrainData

    cfg = work / "fashion.yaml"
    cfg.write_text(f"datasets:\n  fashion_mnist: {{raw_dir: {folder.resolve()}, val_size: {val_size}}}\n")
    out = prepare("fashion_mnist", work / "fashion_mnist", config_path=cfg)
    return TrainData.from_prepared(load_prepared(out))


def phase_cnn(report: Report, fashion: Path, work: Path, epochs: int, budget: float, smoke: bool) -> None:
    from snnl.training import TrainConfig, Trainer

    data = prepare_fashion(fashion, work, 50 if smoke else 5000)
    batch = 32 if smoke else 128
    n_train = len(data.train[1])
    rows, start = [], time.perf_counter()
    for bf16 in (False, True):
        for regime in ("baseline", "entangled"):
            if time.perf_counter() - start > budget:
                print(f"cnn: budget spent, skipping {regime} bf16={bf16}", flush=True)
                continue
            cfg = TrainConfig(model="cnn", batch_size=batch, epochs=epochs, device=DEVICE, bf16=bf16,
                              checkpoint_every=0, probe_points=0, max_steps=3 if smoke else None)
            marks: list[float] = []
            trainer = Trainer(cfg, data, regime=regime, seed=0, progress=False,
                              callbacks=[lambda t: marks.append(time.perf_counter()) if t.batch_in_epoch == 0 else None])
            sync()
            reset_peak()
            with UtilSampler() as util:
                t0 = time.perf_counter()
                result = trainer.run()
                sync()
                wall = time.perf_counter() - t0
            epoch_times = [b - a for a, b in zip([t0, *marks[:-1]], marks)]
            row = {"precision": "bf16" if bf16 else "fp32", "regime": regime, "wall_s": wall,
                   "epoch_s": epoch_times, "images_per_s": n_train * epochs / sum(epoch_times) if epoch_times else float("nan"),
                   "peak_mib": peak_mib(), "util": util.mean,
                   "test_accuracy": result.metrics.get("test_accuracy")}
            rows.append(row)
            print(f"cnn {row['precision']} {regime}: {wall:.1f} s, epochs {[round(e, 2) for e in epoch_times]}", flush=True)
    lines = [f"## cnn on the full Fashion-MNIST ({n_train} training images, {epochs} epochs, batch {batch})", "",
             "Epoch time: the mean over epochs (the first includes CUDA warm-up). Wall: the whole run with "
             "evaluation. Images/s over the training epochs.", "",
             "| precision | regime | mean epoch s | first epoch s | images/s | wall s | peak MiB | GPU util % | test accuracy |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        e = r["epoch_s"] or [float("nan")]
        lines.append(f"| {r['precision']} | {r['regime']} | {sum(e) / len(e):.2f} | {e[0]:.2f} | {r['images_per_s']:,.0f} "
                     f"| {r['wall_s']:.1f} | {r['peak_mib']:,.0f} | {r['util']:.0f} | {r['test_accuracy']:.4f} |")
    report.add("cnn", rows, lines)


def phase_resnet(report: Report, reps: int, smoke: bool) -> None:
    import bench_train

    from snnl.training import TrainConfig

    rows = []
    for bf16 in (False, True):
        cfg = TrainConfig(model="resnet", batch_size=16 if smoke else 128, augmentation="crop_flip", device=DEVICE,
                          bf16=bf16, probe_points=0, checkpoint_every=0)
        reset_peak()
        with UtilSampler() as util:
            r = bench_train.bench(f"resnet18 {'bf16' if bf16 else 'fp32'}", cfg, bench_train.rgb32(64 if smoke else 1024),
                                  1 if smoke else reps, 1 if smoke else 5, 1 if smoke else 3)
        r.update(precision="bf16" if bf16 else "fp32", util=util.mean, peak_mib=peak_mib())
        rows.append(r)
    lines = ["## resnet (ResNet-18) training throughput, random 32x32x3, batch 128", "",
             "| precision | ce-only img/s | baseline img/s | entangled img/s | entangled / baseline | peak MiB | GPU util % |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        ips = {k: r["batch"] * 1000 / v for k, v in r["ms"].items()}
        lines.append(f"| {r['precision']} | {ips['ce-only']:,.0f} | {ips['baseline']:,.0f} | {ips['entangled']:,.0f} "
                     f"| {r['ratio_entangled_baseline']:.2f} | {r['peak_mib']:,.0f} | {r['util']:.0f} |")
    report.add("resnet", rows, lines)


SYNC_CALLS = ("cudaStreamSynchronize", "cudaDeviceSynchronize", "cudaEventSynchronize", "cudaMemcpy")


def count_step(step, steps: int) -> dict:
    """Kernels, host synchronisations and aten operators per call of ``step`` (profiled)."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if DEVICE.startswith("cuda") else [])
    sync()
    with profile(activities=acts) as prof:
        for _ in range(steps):
            step()
        sync()
    events = prof.events()
    kernels = sum(1 for e in events if e.device_type == torch.autograd.DeviceType.CUDA)
    syncs = sum(1 for e in events if e.name in SYNC_CALLS or e.name.startswith("cudaMemcpy") and "Async" not in e.name)
    ops = sum(1 for e in events if e.name.startswith("aten::") and e.cpu_parent is None)
    return {"kernels": kernels / steps, "syncs": max(syncs - 1, 0) / steps, "ops": ops / steps}  # - the final sync()


def phase_step(report: Report, reps: int, smoke: bool) -> None:
    import bench_train

    from snnl.training import TrainConfig, Trainer

    data = bench_train.mnist5k()
    rows = []
    for bf16 in (False, True):
        if bf16 and not DEVICE.startswith("cuda"):
            continue
        cfg = TrainConfig(model="cnn", batch_size=128, device=DEVICE, bf16=bf16, probe_points=0, checkpoint_every=0,
                          log_every=10)
        timing = bench_train.bench(f"cnn {'bf16' if bf16 else 'fp32'}", cfg, data, 1 if smoke else reps,
                                   1 if smoke else 10, 1 if smoke else 5)
        for regime in ("ce-only", "baseline", "entangled"):
            trainer = Trainer(cfg, data, regime="baseline" if regime == "ce-only" else regime, seed=0, progress=False)
            runner = bench_train.CEOnly(trainer) if regime == "ce-only" else trainer
            for _ in range(3):
                runner.train_step()
            logged = count_step(runner.train_step, 1) if regime == "ce-only" else None
            if regime != "ce-only":  # steps 1..9 of 10 log nothing, step 10 logs
                while (trainer.step + 1) % cfg.log_every != 0:
                    runner.train_step()
                logged = count_step(runner.train_step, 1)
                unlogged = count_step(runner.train_step, 1)
            else:
                unlogged = count_step(runner.train_step, 1)
            rows.append({"precision": "bf16" if bf16 else "fp32", "regime": regime, "ms": timing["ms"][regime],
                         "logged": logged, "unlogged": unlogged})
    lines = ["## Training step of the demo CNN, batch 128: time, kernels and host synchronisations", "",
             "Time: median of interleaved repetitions (`bench_train.bench`), including one step in ten that logs. "
             "Counts from torch.profiler on one step that logs nothing and one that logs (`train.log_every` 10); "
             "ce-only reads its loss back every step, as a plain loop that prints it would.", "",
             "| precision | regime | ms per step | ratio to ce-only | kernels (unlogged / logged) "
             "| syncs (unlogged / logged) | top-level aten ops (unlogged) |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        base = next(x["ms"] for x in rows if x["precision"] == r["precision"] and x["regime"] == "ce-only")
        u, g = r["unlogged"], r["logged"]
        lines.append(f"| {r['precision']} | {r['regime']} | {r['ms']:.2f} | {r['ms'] / base:.2f} | "
                     f"{u['kernels']:.0f} / {g['kernels']:.0f} | {u['syncs']:.0f} / {g['syncs']:.0f} | {u['ops']:.0f} |")
    report.add("step", rows, lines)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--fashion", type=Path, required=True, help="folder with the four Fashion-MNIST .gz IDX files")
    ap.add_argument("--out", type=Path, default=Path(os.environ.get("OUT", "results/gpu")))
    ap.add_argument("--work", type=Path, default=Path("/tmp/snnl-gpu"))
    ap.add_argument("--epochs", type=int, default=6, help="the paper's (official demo's) epochs")
    ap.add_argument("--phases", nargs="+", default=["step", "loss", "cnn", "resnet"],
                    choices=["step", "loss", "cnn", "resnet"])
    ap.add_argument("--loss-budget", type=float, default=120.0)
    ap.add_argument("--cnn-budget", type=float, default=240.0)
    ap.add_argument("--resnet-reps", type=int, default=10)
    ap.add_argument("--smoke", action="store_true", help="tiny sizes on the CPU: checks the script runs end to end")
    args = ap.parse_args(argv)
    global DEVICE
    DEVICE = "cpu" if args.smoke else "cuda"
    if not args.smoke and not torch.cuda.is_available():
        print("bench_gpu: no CUDA device; run this on the GPU machine (see the docstring)", file=sys.stderr)
        return 2
    missing = [f for f in ("train-images-idx3-ubyte.gz", "train-labels-idx1-ubyte.gz", "t10k-images-idx3-ubyte.gz",
                           "t10k-labels-idx1-ubyte.gz") if not (args.fashion / f).is_file()]
    if "cnn" in args.phases and missing:
        print(f"bench_gpu: {args.fashion} lacks {missing}; copy /usr/share/datasets/fashion-mnist/*.gz there",
              file=sys.stderr)
        return 2
    args.work.mkdir(parents=True, exist_ok=True)
    report = Report(args.out)
    failures = 0
    for name in args.phases:
        t0 = time.perf_counter()
        try:
            if name == "loss":
                phase_loss(report, args.loss_budget, args.smoke)
            elif name == "step":
                phase_step(report, args.resnet_reps, args.smoke)
            elif name == "cnn":
                phase_cnn(report, args.fashion, args.work, args.epochs, args.cnn_budget, args.smoke)
            else:
                phase_resnet(report, args.resnet_reps, args.smoke)
        except Exception as err:  # noqa: BLE001 - keep the other phases' results
            failures += 1
            report.add(f"{name}_error", repr(err), [f"## {name}: FAILED", "", f"`{err!r}`"])
        print(f"phase {name}: {time.perf_counter() - t0:.0f} s", flush=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
