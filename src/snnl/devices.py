"""Device names from configs and command lines, resolved in one place."""

from __future__ import annotations

import torch

from snnl.errors import ConfigError


def resolve_device(spec: str, where: str = "device") -> torch.device:
    """``auto`` (CUDA when present, else the CPU), ``cpu``, ``cuda`` or ``cuda:N``.

    Args:
        spec: the device name.
        where: the key or flag it came from, for the error (e.g. ``train.device``, ``--device``).

    Raises:
        ConfigError: not a device name, or CUDA asked for on a machine without it.
    """
    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        device = torch.device(spec)
    except RuntimeError as err:
        raise ConfigError(f"{where} {spec!r} is not a device: use auto, cpu, cuda or cuda:N") from err
    if device.type == "cuda" and not torch.cuda.is_available():
        raise ConfigError(f"{where} {spec!r}: CUDA is not available on this machine; use auto or cpu")
    return device
