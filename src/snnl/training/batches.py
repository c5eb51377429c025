"""Minibatches from tensors kept on the device, with augmentation done on the device.

All randomness (the epoch permutation, crop offsets, flips) comes from one CPU
``torch.Generator`` seeded from the run's seed, so the data stream is the same on any
device and its state fits in a checkpoint.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from snnl.checks import to_unit  # noqa: F401  (re-exported: the loop and the probe import it from here)


def random_crop(x: torch.Tensor, padding: int, offsets: torch.Tensor) -> torch.Tensor:
    """Crop each image of ``x`` (B, C, H, W) from its zero-padded version at ``offsets`` (B, 2)
    (row, column offsets in [0, 2 * padding])."""
    if padding <= 0:
        return x
    b, c, h, w = x.shape
    xp = F.pad(x, (padding, padding, padding, padding))
    rows = offsets[:, 0:1] + torch.arange(h, device=x.device)  # (B, H)
    cols = offsets[:, 1:2] + torch.arange(w, device=x.device)  # (B, W)
    bidx = torch.arange(b, device=x.device).view(b, 1, 1)
    out = xp.permute(0, 2, 3, 1)[bidx, rows.unsqueeze(2), cols.unsqueeze(1)]  # (B, H, W, C)
    return out.permute(0, 3, 1, 2).contiguous()


def augment(x: torch.Tensor, mode: str, padding: int, generator: torch.Generator) -> torch.Tensor:
    """Apply ``mode`` (``none``, ``crop``, ``flip``, ``crop_flip``) to a float batch."""
    if mode == "none":
        return x
    b = x.shape[0]
    if mode in ("crop", "crop_flip") and padding > 0:
        offsets = torch.randint(0, 2 * padding + 1, (b, 2), generator=generator).to(x.device)
        x = random_crop(x, padding, offsets)
    if mode in ("flip", "crop_flip"):
        flip = (torch.rand(b, generator=generator) < 0.5).to(x.device)
        x = torch.where(flip.view(b, 1, 1, 1), x.flip(3), x)
    return x
