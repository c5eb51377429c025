"""CPU exp on the arguments the SNNL's softmaxes feed it: finite, -inf (masked), underflowing.

    .venv/bin/python benchmarks/bench_exp.py

A 512 x 512 float32 matrix, 1 thread, best of 200 calls each; then the same with arguments
floored at log(smallest normal) first (snnl.loss_logspace.floored_exp), which is what the loss
does. Prints microseconds per call.
"""

from __future__ import annotations

import time

import torch

from snnl.loss_logspace import floored_exp


def best_us(fn, n: int = 200) -> float:
    best = float("inf")
    for _ in range(n):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best * 1e6


def main() -> None:
    torch.set_num_threads(1)
    g = torch.Generator().manual_seed(0)
    x = -torch.rand(512, 512, generator=g) * 5
    masked = torch.rand(512, 512, generator=g) < 0.9
    cases = {"finite (-5..0)": x, "90% -inf": x.masked_fill(masked, float("-inf")),
             "90% underflowing (-150)": x.masked_fill(masked, -150.0)}
    print("| arguments | torch.exp us | floored_exp us |\n|---|---:|---:|")
    for name, a in cases.items():
        print(f"| {name} | {best_us(lambda: a.exp()):.0f} | {best_us(lambda: floored_exp(a)):.0f} |")


if __name__ == "__main__":
    main()
