"""`snnl info`: versions and the compute device, for bug reports and logs."""

from __future__ import annotations

import argparse
import platform


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser("info", help="print versions and the available device")
    p.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import torch

    import snnl

    print(f"snnl {snnl.__version__}")
    print(f"python {platform.python_version()}")
    print(f"torch {torch.__version__}")
    cuda = torch.cuda.is_available()
    print(f"cuda available: {cuda}")
    if cuda:
        print(f"device: {torch.cuda.get_device_name(0)}")
    return 0
