"""`snnl prepare-data`: load a dataset, split it, and write arrays + a hash manifest atomically."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    from snnl.data.registry import DATASET_NAMES

    p = sub.add_parser(
        "prepare-data",
        help="write a dataset's train/val/test arrays and a SHA-256 manifest",
        description=(
            "Load NAME (options from the `datasets:` section of --config, defaults otherwise), "
            "split it (stratified, seeded) and write DIR/arrays/*.npy and DIR/manifest.json atomically. "
            "With --like, treat it as an outlier set: keep only its test split and adapt it to the "
            "image shape of OTHER (resize, gray<->RGB). See docs/DATA.md."
        ),
    )
    p.add_argument("--dataset", required=True, choices=DATASET_NAMES, metavar="NAME", help=", ".join(DATASET_NAMES))
    p.add_argument("--config", default=None, metavar="FILE", help="YAML config with a `datasets:` section")
    p.add_argument("--like", default=None, choices=DATASET_NAMES, metavar="OTHER", help="adapt to OTHER's image shape")
    p.add_argument("--out", required=True, metavar="DIR", help="output folder (replaced atomically)")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.data import load_prepared, prepare

    out = prepare(args.dataset, args.out, config_path=args.config, like=args.like)
    manifest = load_prepared(out).manifest  # read back: proves the hashes verify
    sizes = ", ".join(f"{split} {info['n']}" for split, info in manifest["splits"].items())
    shape = "x".join(map(str, manifest["shape"]))
    note = f"; adapted like {args.like}" if manifest["adaptation"] else ""
    print(f"prepared {args.dataset} -> {out}: {sizes} images of {shape}{note}")
    return 0
