"""Forward+backward time and peak extra memory of one SNNL evaluation.

Implementations, measured side by side in one run:
  snnl    - snnl.soft_nearest_neighbor_loss (exact, log space; full b x b matrices up to
            snnl.loss.AUTO_CHUNK_BATCH samples, blockwise above)
  blocks  - the same function forced onto its blockwise path (chunk_size = default rows)
  plain   - the same function forced onto its full-matrix path (--large table only)
  legacy  - snnl.legacy_snnl (the official cleverhans numerics)
  pml     - pytorch-metric-learning NCALoss with squared L2 (the same loss up to T)
  gram    - the floor: the bare Gram product x @ x.T, forward and backward

Time: repetitions are interleaved round-robin across implementations (so load on the
machine hits all of them alike) and the best (minimum) is reported, as timeit advises:
interference from other processes only ever adds time, with ratios to `gram` and
to `legacy`. Memory: each (implementation, size) runs once in a fresh subprocess; on CPU
the peak extra memory is the process's peak RSS (VmHWM, reset just before) minus its RSS
before forward+backward (inputs already allocated); on CUDA it is torch.cuda.max_memory_allocated minus the
memory in use before.

    python benchmarks/bench_loss.py                       # full grid, prints a table
    python benchmarks/bench_loss.py --write docs/BENCHMARKS.md
    python benchmarks/bench_loss.py --batch 512 --dim 1024
    python benchmarks/bench_loss.py --large --write docs/BENCHMARKS.md   # b = 16384, d = 1024
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

import torch

IMPLS = ["snnl", "blocks", "legacy", "pml", "gram"]
try:  # pytorch-metric-learning is in requirements.txt, but not on every GPU machine
    import pytorch_metric_learning  # noqa: F401
except ImportError:  # its columns then read n/a
    IMPLS.remove("pml")
LARGE_IMPLS = ["snnl", "plain", "gram"]
MARK_BEGIN = "<!-- bench_loss:begin -->"
MARK_END = "<!-- bench_loss:end -->"
LARGE_BEGIN = "<!-- bench_loss_large:begin -->"
LARGE_END = "<!-- bench_loss_large:end -->"


def make_fn(impl: str, b: int, d: int, device: str):
    """Return (inputs, fn) where fn(x) computes the scalar to backpropagate."""
    g = torch.Generator(device="cpu").manual_seed(0)
    x = torch.randn(b, d, generator=g).to(device)
    y = (torch.arange(b) % 10).to(device)
    temperature = 2.0 * d  # about the typical squared distance of N(0, I) points
    if impl == "snnl":
        from snnl import soft_nearest_neighbor_loss

        def fn(z):
            return soft_nearest_neighbor_loss(z, y, temperature)
    elif impl == "blocks":
        from snnl import soft_nearest_neighbor_loss
        from snnl.loss import _block_rows

        def fn(z):
            return soft_nearest_neighbor_loss(z, y, temperature, chunk_size=_block_rows(b, None))
    elif impl == "plain":
        import snnl.loss
        from snnl import soft_nearest_neighbor_loss

        def fn(z):
            saved, snnl.loss.AUTO_CHUNK_BATCH = snnl.loss.AUTO_CHUNK_BATCH, 1 << 62  # never blockwise
            try:
                return soft_nearest_neighbor_loss(z, y, temperature)
            finally:
                snnl.loss.AUTO_CHUNK_BATCH = saved
    elif impl == "legacy":
        from snnl import legacy_snnl

        def fn(z):
            return legacy_snnl(z, y, temperature)
    elif impl == "pml":
        from pytorch_metric_learning.distances import LpDistance
        from pytorch_metric_learning.losses import NCALoss

        nca = NCALoss(softmax_scale=1.0 / temperature, distance=LpDistance(normalize_embeddings=False, p=2, power=2))

        def fn(z):
            return nca(z, y)
    elif impl == "gram":

        def fn(z):
            return (z @ z.T).sum()
    else:
        raise ValueError(impl)
    return x, fn


def fwd_bwd(x, fn):
    z = x.detach().requires_grad_(True)
    fn(z).backward()
    return z.grad


def _sync(device):
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_all(b: int, d: int, device: str, min_reps: int, budget_s: float, impls=IMPLS) -> dict[str, float]:
    """Best seconds of forward+backward per implementation, interleaved round-robin."""
    names = list(impls)
    fns = {impl: make_fn(impl, b, d, device) for impl in names}
    times: dict[str, list[float]] = {impl: [] for impl in names}
    # warm-up (skipped for very slow sizes: one rep > budget/4 is its own warm-up)
    first = {}
    for impl, (x, fn) in fns.items():
        _sync(device)
        t0 = time.perf_counter()
        fwd_bwd(x, fn)
        _sync(device)
        first[impl] = time.perf_counter() - t0
    if max(first.values()) * len(names) > budget_s / 4:
        for impl in names:
            times[impl].append(first[impl])
    start = time.perf_counter()
    rep = 0
    while rep < min_reps or time.perf_counter() - start < budget_s:
        order = names[rep % len(names):] + names[: rep % len(names)]
        for impl in order:
            x, fn = fns[impl]
            _sync(device)
            t0 = time.perf_counter()
            fwd_bwd(x, fn)
            _sync(device)
            times[impl].append(time.perf_counter() - t0)
        rep += 1
        elapsed = time.perf_counter() - start
        if rep >= min_reps and elapsed > budget_s:
            break
        if rep >= 2 and elapsed > 4 * budget_s:  # slow sizes (seconds per call): best of 2-3
            break
        if rep >= 50:
            break
    # best of the interleaved repetitions: other processes on the machine only ever add time
    return {impl: min(v) for impl, v in times.items()}


def _proc_status_bytes(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) * 1024  # kB
    raise RuntimeError(f"{field} not in /proc/self/status")


def _reset_peak_rss() -> None:
    # Linux >= 4.0: writing 5 to clear_refs resets the peak RSS (VmHWM) to the current RSS.
    # (getrusage's ru_maxrss is no use here: it survives fork and exec, so a child would
    # inherit the parent's peak.)
    Path("/proc/self/clear_refs").write_text("5")


def memory_child(impl: str, b: int, d: int, device: str) -> int:
    """Run in a fresh process: peak extra bytes of one forward+backward."""
    torch.set_num_threads(int(os.environ.get("BENCH_THREADS", "2")))
    x, fn = make_fn(impl, b, d, device)
    if device.startswith("cuda"):
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        before = torch.cuda.memory_allocated()
        fwd_bwd(x, fn)
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - before
    # touch everything that is not part of the measured work: imports, the input's grad buffer
    z = x.detach().requires_grad_(True)
    z.grad = torch.zeros_like(z)
    z.grad = None
    _reset_peak_rss()
    before = _proc_status_bytes("VmRSS")
    fwd_bwd(x, fn)
    return _proc_status_bytes("VmHWM") - before


def measure_memory(impl: str, b: int, d: int, device: str) -> int:
    out = subprocess.run(
        [sys.executable, __file__, "--memory-child", impl, str(b), str(d), device],
        capture_output=True, text=True, check=True,
    )
    return int(out.stdout.strip().splitlines()[-1])


def fmt_mib(n: int) -> str:
    return f"{n / 2**20:,.1f}"


def _header(meta: dict) -> list[str]:
    return [
        f"Command: `{meta['command']}`  ",
        f"Machine: {meta['machine']}; torch {meta['torch']}; device {meta['device']}; threads {meta['threads']}; "
        f"{meta['date']}",
        "",
    ]


def render(rows: list[dict], meta: dict) -> str:
    lines = [
        MARK_BEGIN,
        *_header(meta),
        "Forward+backward of one SNNL evaluation (best of interleaved repetitions). "
        "Ratios are to the floor (`gram`: `x @ x.T`, forward and backward) and to the other "
        "implementations, measured in the same run. `snnl` is the library's default (full b x b "
        f"matrices up to {meta['auto_chunk_batch']} samples, blockwise above); `blocks` forces the "
        "blockwise path. Memory: peak extra MiB during forward+backward.",
        "",
        "| b | d | snnl ms | blocks ms | legacy ms | pml ms | gram ms | **snnl/gram** | snnl/legacy | snnl/pml "
        "| blocks/snnl | snnl MiB | blocks MiB | legacy MiB | pml MiB | gram MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    every = ["snnl", "blocks", "legacy", "pml", "gram"]
    for r in rows:
        t, m = r["time"], r["mem"]
        nan = float("nan")
        ms = " | ".join(f"{t[k] * 1e3:,.1f}" if k in t else "n/a" for k in every)
        mib = " | ".join(fmt_mib(m[k]) if k in m else "n/a" for k in every)
        lines.append(
            f"| {r['b']} | {r['d']} | {ms} | **{t['snnl'] / t['gram']:.2f}** | {t['snnl'] / t['legacy']:.2f} "
            f"| {t['snnl'] / t.get('pml', nan):.2f} | {t['blocks'] / t['snnl']:.2f} | {mib} |"
        )
    lines.append(MARK_END)
    return "\n".join(lines)


def render_large(rows: list[dict], meta: dict) -> str:
    lines = [
        LARGE_BEGIN,
        *_header(meta),
        "Large batches: `snnl` (the default, blockwise here) against `plain` (the same function "
        "forced onto full b x b matrices) and the floor `gram`. Time: best of the repetitions; "
        "memory: peak extra MiB of one forward+backward in a fresh process.",
        "",
        "| b | d | snnl ms | plain ms | gram ms | snnl/gram | **snnl MiB** | plain MiB | gram MiB |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        t, m = r["time"], r["mem"]
        lines.append(
            f"| {r['b']} | {r['d']} | {t['snnl'] * 1e3:,.0f} | {t['plain'] * 1e3:,.0f} | {t['gram'] * 1e3:,.0f} "
            f"| {t['snnl'] / t['gram']:.2f} | **{fmt_mib(m['snnl'])}** | {fmt_mib(m['plain'])} "
            f"| {fmt_mib(m['gram'])} |"
        )
    lines.append(LARGE_END)
    return "\n".join(lines)


def write_section(path: Path, table: str, begin: str = MARK_BEGIN, end: str = MARK_END, title: str = "") -> None:
    text = path.read_text() if path.exists() else "# Benchmarks\n"
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        text = head + table + tail
    else:
        text = text.rstrip() + f"\n\n## {title or 'Loss: forward+backward'}\n\n" + table + "\n"
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--batch", type=int, nargs="+", default=None, help="default 128 512 2048 8192 (--large: 16384)")
    ap.add_argument("--dim", type=int, nargs="+", default=None, help="default 64 1024 12544 (--large: 1024)")
    ap.add_argument("--large", action="store_true", help="the large-batch table: snnl vs plain vs gram")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--min-reps", type=int, default=5)
    ap.add_argument("--budget", type=float, default=3.0, help="seconds of timing per size (after min reps)")
    ap.add_argument("--write", type=Path, help="update this markdown file's loss section")
    ap.add_argument("--json", type=Path, help="also write the raw numbers as JSON")
    ap.add_argument("--memory-child", nargs=4, metavar=("IMPL", "B", "D", "DEVICE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)

    if args.memory_child:
        impl, b, d, device = args.memory_child
        print(memory_child(impl, int(b), int(d), device))
        return 0

    import snnl.loss

    torch.set_num_threads(args.threads)
    os.environ["BENCH_THREADS"] = str(args.threads)
    impls = LARGE_IMPLS if args.large else IMPLS
    batches = args.batch or ([16384] if args.large else [128, 512, 2048, 8192])
    dims = args.dim or ([1024] if args.large else [64, 1024, 12544])
    min_reps = 2 if args.large else args.min_reps
    rows = []
    try:
        from tqdm import tqdm
    except ImportError:  # pragma: no cover
        tqdm = None
    sizes = [(b, d) for b in batches for d in dims]
    it = tqdm(sizes, desc="bench_loss", file=sys.stderr) if tqdm else sizes
    for b, d in it:
        t = time_all(b, d, args.device, min_reps, args.budget, impls)
        m = {impl: measure_memory(impl, b, d, args.device) for impl in impls}
        rows.append({"b": b, "d": d, "time": t, "mem": m})
        print(
            f"b={b:5d} d={d:5d}  " + "  ".join(f"{k}={v * 1e3:9.1f}ms" for k, v in t.items())
            + f"  snnl/gram={t['snnl'] / t['gram']:.2f}  mem MiB "
            + " ".join(f"{k}={fmt_mib(v)}" for k, v in m.items()),
            flush=True,
        )
    meta = {
        "command": "python benchmarks/bench_loss.py " + " ".join(argv if argv is not None else sys.argv[1:]),
        "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "torch": torch.__version__,
        "device": args.device,
        "threads": args.threads,
        "date": time.strftime("%Y-%m-%d"),
        "auto_chunk_batch": snnl.loss.AUTO_CHUNK_BATCH,
    }
    if args.large:
        table = render_large(rows, meta)
        print(table)
        if args.write:
            write_section(args.write, table, LARGE_BEGIN, LARGE_END, "Loss: large batches (blockwise path)")
    else:
        table = render(rows, meta)
        print(table)
        if args.write:
            write_section(args.write, table)
    if args.json:
        args.json.write_text(json.dumps({"meta": meta, "rows": rows}, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
