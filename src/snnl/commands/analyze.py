r"""`snnl analyze`: how entangled the classes are in each layer of a trained model.

    snnl analyze --checkpoint results/checkpoints/mnist5k/baseline/seed0.pt --data data/prepared/mnist5k \
        --out-csv analysis.csv --out-figure analysis.png

    snnl analyze --torchvision resnet18 --weights resnet18.pt --image-folder photos/ \
        --layers layer1 layer2 layer3 layer4 fc --out-csv analysis.csv --out-figure analysis.png

The model: an snnl checkpoint (--checkpoint; --layers all = its hidden layers and the logits),
or a torchvision classification model built without weights and loaded from a local state_dict
file (--torchvision NAME --weights FILE; nothing is downloaded; --layers from
model.named_modules()). The images: a split of a prepared dataset (--data, from `snnl
prepare-data`) or an ImageFolder (--image-folder ROOT with ROOT/CLASS/IMAGE files).

The model gets what it expects: an snnl model takes [0, 1] pixels of its input shape and
normalises inside (an ImageFolder is converted to gray or RGB and resized to that shape); a
torchvision model gets its weights' evaluation preprocessing from torchvision's metadata (RGB,
shorter side resized to --resize-size, centre crop --image-size, normalised with --mean/--std;
ImageNet's 256/224 and statistics unless the weights say otherwise).

The sample: min(--samples, N) images, class-stratified and seeded (--seed), shuffled and cut into
batches of --batch-size (a remainder that does not fill a batch is left out). Per layer, on the
flattened activations (squared Euclidean distances):

  snnl, snnl_ci_low, snnl_ci_high
      in every batch, the SNNL at that batch's optimal temperature (the T minimising it,
      snnl.optimal_temperature); snnl is their mean over batches and [snnl_ci_low, snnl_ci_high]
      a percentile bootstrap 95% interval of that mean over batches (--bootstrap resamples,
      seeded; empty with a single batch). baseline: the T -> infinity limit (no class structure).
  temperature, temperature_min, temperature_max
      the geometric mean of the batches' optimal temperatures and their range (units: squared
      distance in the layer); boundary_batches counts batches whose minimiser hit the end of
      the search range (classes separated at every scale: their SNNL is an upper bound).
  neighbours[CLASS], neighbours_mean
      same-class-neighbour counts: for each point, the number of its --k nearest other points
      of the whole sample that share its class (0..k), averaged over the points of CLASS
      (and over all points).

Outputs: --out-csv (one row per layer, in forward order) and --out-figure (PNG: the SNNL per
layer with its interval, and the neighbour counts per class and layer), written atomically.
"""

from __future__ import annotations

import argparse
from pathlib import Path


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "analyze",
        help="per-layer SNNL at the optimal temperature (bootstrap interval), optimal T and same-class "
             "neighbour counts of any model (snnl checkpoint or torchvision)",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    model = p.add_argument_group("model (one of)")
    model.add_argument("--checkpoint", metavar="CKPT", help="checkpoint written by `snnl train`")
    model.add_argument("--torchvision", metavar="NAME", help="torchvision classification model, e.g. resnet18")
    model.add_argument("--weights", metavar="FILE", help="its state_dict, saved with torch.save(model.state_dict(), FILE)")
    model.add_argument("--num-classes", type=int, metavar="N",
                       help="size of the torchvision model's head (default: read from the weights)")
    data = p.add_argument_group("images (one of)")
    data.add_argument("--data", metavar="DIR", help="prepared dataset (`snnl prepare-data`)")
    data.add_argument("--split", default="test", choices=["train", "val", "test"], help="its split (default test)")
    data.add_argument("--image-folder", metavar="ROOT", help="ImageFolder: ROOT/CLASS/IMAGE files")
    data.add_argument("--image-size", type=int, metavar="PX", help="torchvision: centre-crop size (default: the weights')")
    data.add_argument("--resize-size", type=int, metavar="PX", help="torchvision: shorter side before the crop")
    data.add_argument("--mean", type=float, nargs=3, metavar="M", help="torchvision: normalisation mean (R G B)")
    data.add_argument("--std", type=float, nargs=3, metavar="S", help="torchvision: normalisation std (R G B)")
    p.add_argument("--layers", nargs="+", default=["all"], metavar="NAME",
                   help="module names (space- or comma-separated) from model.named_modules(); default `all` "
                        "(snnl checkpoints: the hidden layers and the logits)")
    p.add_argument("--samples", type=int, default=2048, help="images analysed (default 2048)")
    p.add_argument("--batch-size", type=int, default=256, help="images per batch (default 256)")
    p.add_argument("--k", type=int, default=10, help="nearest neighbours for the counts (default 10)")
    p.add_argument("--bootstrap", type=int, default=10_000, metavar="N", help="bootstrap resamples (default 10000)")
    p.add_argument("--seed", type=int, default=0, help="seed of the sample and the bootstrap (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda or cuda:N")
    p.add_argument("--out-csv", required=True, metavar="PATH", help="output CSV, one row per layer")
    p.add_argument("--out-figure", metavar="PATH", help="output PNG")
    p.add_argument("--quiet", action="store_true", help="no progress bars or messages")
    p.set_defaults(func=run)


def parse_layers(items: list[str]) -> list[str]:
    """--layers values, each possibly comma-separated, in order, without empties or repeats."""
    names = [part.strip() for item in items for part in item.split(",") if part.strip()]
    return list(dict.fromkeys(names))


def _check_choice(args: argparse.Namespace) -> None:
    from snnl.errors import ConfigError

    if bool(args.checkpoint) == bool(args.torchvision):
        raise ConfigError("snnl analyze needs one model: --checkpoint CKPT, or --torchvision NAME --weights FILE")
    if args.torchvision and not args.weights:
        raise ConfigError(f"--torchvision {args.torchvision} needs --weights FILE (a local state_dict; nothing is downloaded)")
    if args.checkpoint and (args.weights or args.num_classes is not None):
        raise ConfigError("--weights and --num-classes go with --torchvision; a --checkpoint holds its own weights")
    torchvision_only = [f"--{n.replace('_', '-')}" for n in ("image_size", "resize_size", "mean", "std")
                        if getattr(args, n) is not None]
    if args.checkpoint and torchvision_only:
        raise ConfigError(f"{' '.join(torchvision_only)} set the preprocessing of --torchvision models; an snnl "
                          "checkpoint takes its own input shape and normalises inside")
    if bool(args.data) == bool(args.image_folder):
        raise ConfigError("snnl analyze needs one image source: --data DIR (prepared) or --image-folder ROOT")


def _load_model(args: argparse.Namespace, device):
    from snnl.analysis import checkpoint_model, default_layers, torchvision_model, torchvision_preprocessing
    from snnl.errors import ConfigError
    from snnl.layers import resolve_modules

    layers = parse_layers(args.layers)
    if args.checkpoint:
        model, prep, _ = checkpoint_model(args.checkpoint, device=device)
        identity = str(args.checkpoint)
    else:
        prep = torchvision_preprocessing(args.torchvision, args.image_size, args.resize_size, args.mean, args.std)
        model = torchvision_model(args.torchvision, args.weights, num_classes=args.num_classes, device=device)
        identity = f"torchvision:{args.torchvision}:{args.weights}"
        if layers == ["all"]:
            children = ", ".join(name for name, _ in model.named_children())
            raise ConfigError(f"--torchvision {args.torchvision}: name the layers to analyse with --layers (from "
                              f"model.named_modules(); its top-level modules are {children})")
    if layers == ["all"]:
        layers = default_layers(model)
    if not layers:
        raise ConfigError("--layers is empty; name at least one module")
    resolve_modules(model, layers)  # unknown names fail before any image is read
    return model, prep, layers, identity


def run(args: argparse.Namespace) -> int:
    from snnl.analysis import analyze, image_folder_inputs, plot_analysis, prepared_inputs
    from snnl.devices import resolve_device
    from snnl.experiments.common import write_csv
    from snnl.figures import save_figure

    _check_choice(args)
    device = resolve_device(args.device, "--device")
    model, prep, layers, identity = _load_model(args, device)
    if args.data:
        inputs = prepared_inputs(args.data, args.split, prep)
    else:
        inputs = image_folder_inputs(args.image_folder, prep, samples=args.samples, seed=args.seed)
    say = (lambda msg: None) if args.quiet else (lambda msg: print(f"snnl analyze: {msg}", flush=True))
    for note in inputs.notes:
        say(note)
    result = analyze(model, inputs.images, inputs.labels, layers, classes=inputs.classes, transform=prep.transform(device),
                     samples=args.samples, batch_size=args.batch_size, k=args.k, seed=args.seed, n_boot=args.bootstrap,
                     device=device, progress=not args.quiet)
    table = result.table
    table.insert(0, "model", identity)
    table.insert(1, "data", inputs.name)
    write_csv(table, args.out_csv)
    if args.out_figure:
        title = f"{Path(identity).name if args.checkpoint else args.torchvision} on {inputs.name}"
        save_figure(plot_analysis(table, result.classes, level=result.level, title=title), args.out_figure)
    for r in table.itertuples():
        say(f"{r.layer}: SNNL {r.snnl:.4g} [{r.snnl_ci_low:.4g}, {r.snnl_ci_high:.4g}] at T* {r.temperature:.4g}; "
            f"same-class neighbours {r.neighbours_mean:.2f} of {r.k}"
            + (f" ({r.boundary_batches} batch(es) at the search boundary)" if r.boundary_batches else ""))
    if int(table["batches"].iloc[0]) < 2:
        say("one batch only: no bootstrap interval (lower --batch-size or raise --samples)")
    say(f"wrote {args.out_csv}" + (f" and {args.out_figure}" if args.out_figure else ""))
    return 0
