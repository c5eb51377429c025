"""`snnl bonus-figure`: what each bonus does (docs/RESULTS.md; reported, not judged).

    snnl bonus-figure --metrics results/metrics/mnist5k/*/seed*.json --figure results/figures/bonus.png

From the ``probe`` records of the metrics JSONs (each run is what its file records), the
non-baseline runs' pinned fraction and gradient ratio per regularised layer against the
training step (log axis), one line per regime (mean over seeds). Baseline runs may be passed
and are left out.
"""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bonus-figure",
        help="what each bonus does: pinned fraction and gradient ratio per layer during training",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--metrics", required=True, nargs="+", metavar="JSON",
                   help="metrics JSONs of `snnl train` (their probe records carry the bonus measurements)")
    p.add_argument("--figure", required=True, metavar="PNG", help="output PNG")
    p.add_argument("--csv", default=None, metavar="PATH", help="also write the tidy data (one row per run, step, "
                                                                 "layer and quantity)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import pandas as pd

    from snnl.experiments.common import write_csv
    from snnl.experiments.dynamics import bonus_long, plot_bonus
    from snnl.figures import save_figure
    from snnl.errors import is_diverged
    from snnl.tables.inputs import load_metrics, probe_frame

    metrics = load_metrics(args.metrics)
    diverged = sorted(key for key, m in metrics.items() if is_diverged(m))
    for d, r, s in diverged:
        print(f"bonus-figure: {d} {r} seed {s} diverged; left out (the tables count it)")
    frames = [probe_frame(m, key) for key, m in metrics.items() if key not in diverged]
    frames = [f for f in frames if f is not None]
    long = bonus_long(pd.concat(frames, ignore_index=True)) if frames else pd.DataFrame()
    if args.csv and (not long.empty or diverged):
        write_csv(long, args.csv)
    if long.empty and diverged:
        from snnl.figures import notice_figure

        runs = ", ".join(f"{d} {r} seed {s}" for d, r, s in diverged)
        notice_figure("What each bonus does: no run to show", f"every non-baseline run diverged ({runs}).", args.figure)
        print(f"bonus-figure: every non-baseline run diverged; wrote a notice to {args.figure}")
        return 0
    if long.empty:
        from snnl.errors import DataError

        raise DataError("bonus-figure: no non-baseline run's probe records hold pinned_fraction or grad_ratio; pass "
                        "the metrics JSONs of entangled/official runs trained with the current code")
    save_figure(plot_bonus(long), args.figure)
    runs = long.drop_duplicates(["dataset", "regime", "seed"]).shape[0]
    print(f"bonus-figure: {runs} run(s), {long['layer'].nunique()} layer(s); wrote {args.figure}")
    return 0
