r"""`snnl evaluate`: accuracy, calibration on outliers, attacks, neighbour-based detection, t-SNE.

    snnl evaluate --checkpoint results/checkpoints/mnist5k/entangled/seed0.pt \
        --data data/prepared/mnist5k --outliers letters=data/prepared/letters-like-mnist5k \
        noise=data/prepared/noise-like-mnist5k [--config config/default.yaml] \
        --out results/evaluate/mnist5k/entangled/seed0

Evaluates one checkpoint (settings from the config's `evaluate:` section) and writes
samples.csv, detection.csv, attacks.csv, tsne_*.csv, figures and summary.json into OUT
(see snnl.evaluate.run). `snnl compare-regimes` draws baseline-vs-entangled figures from
two such folders.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "evaluate",
        help="evaluate a checkpoint: accuracy, calibration, attacks, neighbour-based detection, t-SNE",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--checkpoint", metavar="CKPT", help="checkpoint written by `snnl train`")
    p.add_argument("--data", metavar="DIR", help="the prepared dataset the checkpoint was trained on")
    p.add_argument("--outliers", nargs="+", action="extend", default=[], metavar="NAME=DIR",
                   help="outlier sets prepared with `snnl prepare-data --like` (repeatable)")
    p.add_argument("--config", metavar="FILE", help="YAML config; its `evaluate:` section is read")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--out", required=True, metavar="OUTDIR", help="output folder")
    p.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    p.set_defaults(func=run)


def parse_outliers(items: list[str]) -> dict[str, Path]:
    """NAME=DIR pairs (a bare DIR is named after its folder)."""
    from snnl.errors import ConfigError

    out: dict[str, Path] = {}
    for item in items:
        name, sep, path = item.partition("=")
        if not sep:
            name, path = Path(item).name, item
        if not name or not path:
            raise ConfigError(f"--outliers expects NAME=DIR, got {item!r}")
        if name in out or name in ("test", "val", "train_holdout"):
            raise ConfigError(f"--outliers: the name {name!r} is {'used twice' if name in out else 'reserved'}; "
                              "give each outlier set its own NAME")
        out[name] = Path(path)
    return out


def load_checkpoint_model(path: str | Path, device="cpu"):
    """:func:`snnl.checkpoint.load_trained` (``weights_only=True``: a file holding pickled Python
    objects is refused with a clear message, never unpickled); the model is None for a diverged run."""
    from snnl.checkpoint import load_trained

    return load_trained(path, device=device)


def write_diverged_evaluation(args: argparse.Namespace, ckpt: dict) -> None:
    """--checkpoint records a diverged run (``snnl train --on-divergence record``): write its
    evaluation folder (:func:`snnl.evaluate.outputs.write_diverged`) and say so."""
    from snnl.evaluate.outputs import write_diverged
    from snnl.evaluate.sets import checkpoint_info

    info = {**checkpoint_info({**ckpt, "path": str(args.checkpoint)}), "diverged": ckpt["diverged"]}
    write_diverged(Path(args.out), info)
    print(f"snnl evaluate: {args.checkpoint} records a run that diverged at step {ckpt['diverged']['step']}: "
          f"nothing to evaluate; {args.out}/summary.json says so", file=sys.stderr)


def run(args: argparse.Namespace) -> int:
    from snnl.errors import ConfigError

    if not args.checkpoint or not args.data:
        raise ConfigError("snnl evaluate needs --checkpoint CKPT and --data DIR (baseline-vs-entangled figures: "
                          "snnl compare-regimes)")

    from snnl.data import load_prepared
    from snnl.evaluate import evaluate, load_evaluate_config

    cfg = load_evaluate_config(args.config)
    outlier_dirs = parse_outliers(args.outliers)
    from snnl.devices import resolve_device

    device = resolve_device(args.device, "--device")
    model, ckpt = load_checkpoint_model(args.checkpoint, device=device)
    if model is None:
        write_diverged_evaluation(args, ckpt)
        return 0
    data = load_prepared(args.data)
    outliers = {name: load_prepared(path) for name, path in outlier_dirs.items()}
    info = {k: v for k, v in ckpt.items() if k in ("regime", "seed", "step", "model_spec", "dataset", "metrics")}
    info["path"] = str(args.checkpoint)
    summary = evaluate(model, data, outliers, cfg, args.out, checkpoint=info, device=device, progress=not args.quiet)
    if not args.quiet:
        t = summary["test"]
        print(f"{args.checkpoint}: test accuracy {t['accuracy']:.4f}, ECE {t['ece']:.4f}; "
              f"{summary['wall_time_s']:.1f} s; outputs in {args.out}")
    return 0
