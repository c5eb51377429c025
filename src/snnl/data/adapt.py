"""Shape adaptation: make an outlier set look like the in-distribution set it is paired with."""

from __future__ import annotations

from typing import Any

import numpy as np
from tqdm import tqdm

# ITU-R 601-2 luma, the weights Pillow uses for RGB -> L.
LUMA = np.array([0.299, 0.587, 0.114])
CHUNK = 4096


def _to_channels(images: np.ndarray, channels: int) -> tuple[np.ndarray, str | None]:
    have = images.shape[1]
    if have == channels:
        return images, None
    if have == 1 and channels == 3:
        return np.repeat(images, 3, axis=1), "gray->RGB: the gray channel copied to R, G and B"
    if have == 3 and channels == 1:
        gray = np.einsum("nchw,c->nhw", images.astype(np.float64), LUMA)
        return np.rint(gray).clip(0, 255).astype(np.uint8)[:, None], (
            "RGB->gray: ITU-R 601-2 luma 0.299 R + 0.587 G + 0.114 B, rounded"
        )
    raise ValueError(f"cannot convert {have} channels to {channels}")


def _resize(images: np.ndarray, size: tuple[int, int]) -> tuple[np.ndarray, str | None]:
    if images.shape[2:] == size:
        return images, None
    import torch
    import torch.nn.functional as F

    out = np.empty((len(images), images.shape[1], *size), np.uint8)
    chunks = range(0, len(images), CHUNK)
    for start in tqdm(chunks, desc="adapt: resizing", unit="chunk", disable=len(chunks) < 4):
        block = torch.from_numpy(images[start : start + CHUNK]).to(torch.float32)
        resized = F.interpolate(block, size=size, mode="bilinear", antialias=True, align_corners=False)
        out[start : start + CHUNK] = resized.round().clamp(0, 255).to(torch.uint8).numpy()
    h, w = images.shape[2:]
    return out, (
        f"resize {h}x{w} -> {size[0]}x{size[1]}: torch.nn.functional.interpolate, bilinear with antialias, rounded"
    )


def adapt_images(images: np.ndarray, shape: tuple[int, int, int]) -> tuple[np.ndarray, list[str]]:
    """``images`` (uint8 N x C x H x W) converted to ``shape`` (C, H, W), and the steps taken."""
    steps = []
    images, step = _to_channels(images, shape[0])
    steps += [step] if step else []
    images, step = _resize(images, (shape[1], shape[2]))
    steps += [step] if step else []
    return images, steps


def adaptation_record(
    like: str, from_shape: tuple[int, ...], to_shape: tuple[int, ...], steps: list[str]
) -> dict[str, Any]:
    return {"like": like, "from_shape": list(from_shape), "to_shape": list(to_shape), "steps": steps}
