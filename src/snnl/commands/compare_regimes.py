r"""`snnl compare-regimes`: baseline-vs-entangled figures and a merged detection table.

    snnl compare-regimes --baseline results/evaluation/mnist5k/baseline/seed0 \
        --entangled results/evaluation/mnist5k/entangled/seed0 \
        --tsne-layers results/figures/mnist5k_tsne_layers.png \
        --tsne-gradients results/figures/mnist5k_tsne_gradients.png \
        --confidence results/figures/mnist5k_confidence.png \
        --detection results/evaluation/mnist5k/compare/detection_compare.csv

reads two `snnl evaluate` folders and writes each output named (or, with --out DIR, the
ones not named into DIR as detection_compare.csv, confidence_compare.png,
tsne_layers_compare.png and tsne_gradients_compare.png). A t-SNE figure needs that
embedding in both evaluations: one that was turned off (evaluate.tsne_size or
gradient_tsne_size below 4) is an error when its figure is named, and skipped under --out.
"""

from __future__ import annotations

import argparse

OUTPUT_FLAGS = {"detection": "CSV", "confidence": "PNG", "tsne_layers": "PNG", "tsne_gradients": "PNG"}


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "compare-regimes",
        help="baseline-vs-entangled figures (E7, E8, E10) and a merged detection table from two evaluations",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--baseline", required=True, metavar="DIR", help="`snnl evaluate` folder of the baseline model")
    p.add_argument("--entangled", required=True, metavar="DIR", help="`snnl evaluate` folder of the entangled model")
    for name, kind in OUTPUT_FLAGS.items():
        p.add_argument(f"--{name.replace('_', '-')}", metavar=kind, help=f"write the {name.replace('_', ' ')} {kind} here")
    p.add_argument("--out", metavar="DIR", help="folder for the outputs not named, under their default names")
    p.add_argument("--quiet", action="store_true", help="print nothing")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from snnl.errors import ConfigError, DataError
    from snnl.evaluate.compare import draw_comparison, missing_embeddings, output_paths, read_evaluations

    named = {name: getattr(args, name) for name in OUTPUT_FLAGS}
    if args.out is None and not any(named.values()):
        raise ConfigError("snnl compare-regimes writes nothing: name an output (--detection, --confidence, "
                          "--tsne-layers, --tsne-gradients) or --out DIR")
    ev = read_evaluations({"baseline": args.baseline, "entangled": args.entangled})
    why = missing_embeddings(ev, output_paths(None, **named))
    if why:
        raise DataError(f"cannot draw {'; '.join(why)} in {args.baseline} or {args.entangled}; raise those "
                        "settings and rerun snnl evaluate, or do not ask for that figure")
    written = draw_comparison(ev, output_paths(args.out, **named))
    if not args.quiet:
        print(f"wrote {', '.join(str(p) for p in written)}")
    return 0
