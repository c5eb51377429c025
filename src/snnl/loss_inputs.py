"""What every path of the SNNL checks and builds from its inputs: flattened features in the
compute dtype, labels, the pair masks and valid anchors, and the temperature as a tensor.
None of it synchronises with the device (the CPU-only checks read through NumPy)."""

from __future__ import annotations

import math

import torch

from snnl.errors import DataError

LOW_PRECISION = (torch.float16, torch.bfloat16)


def flatten_per_sample(features: torch.Tensor) -> torch.Tensor:
    """(b, ...) -> (b, d), in the order the features lie in memory when that avoids a copy:
    a channels_last (b, c, h, w) map is flattened as (b, h, w, c). Distances and the SNNL do
    not depend on the order of the features."""
    if features.dim() == 4 and not features.is_contiguous() and features.is_contiguous(memory_format=torch.channels_last):
        features = features.permute(0, 2, 3, 1)
    return features.reshape(features.shape[0], -1)


def as_compute_dtype(features: torch.Tensor) -> torch.Tensor:
    """Flatten per sample; half precision (autocast or not) is computed in float32."""
    x = flatten_per_sample(features)
    if x.dtype in LOW_PRECISION or not x.is_floating_point():
        x = x.float()
    return x


def check_labels(labels: torch.Tensor, b: int, device: torch.device) -> torch.Tensor:
    labels = torch.as_tensor(labels, device=device)
    if labels.dim() != 1 or labels.shape[0] != b:
        raise DataError(
            f"labels must be a 1-D tensor with one label per sample: got shape {tuple(labels.shape)} "
            f"for {b} samples"
        )
    if labels.is_floating_point():
        raise DataError("labels must be integers (class indices), got a floating-point tensor")
    return labels


def check_some_partner(valid: torch.Tensor) -> None:
    """Raise when no anchor has a partner, for a ``valid`` mask on the CPU.

    Read through NumPy (a view, no copy), so it records no tensor op and makes no device
    synchronisation; a mask on an accelerator is not read here (the loss is then NaN,
    0 / 0, and ``n_excluded`` equals the batch size)."""
    if valid.device.type == "cpu" and not valid.numpy().any():
        raise DataError(
            f"no anchor in this batch of {valid.shape[0]} has a same-class partner (every label occurs once), "
            "so the SNNL is undefined; use larger batches or class-balanced sampling"
        )


def distance_masks(labels: torch.Tensor, dist: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """For a (b, b) distance matrix: the same-class off-diagonal mask, and the anchors with a
    same-class partner at a finite distance (a partner at +inf is masked out).

    Raises:
        DataError: no anchor has one (one host read: distance matrices are validated anyway).
    """
    same = labels.unsqueeze(0) == labels.unsqueeze(1)
    same.fill_diagonal_(False)
    valid = (same & (dist < float("inf"))).any(dim=1)
    check_some_partner(valid)
    if not bool(valid.any()):
        raise DataError(
            f"no anchor in this batch of {labels.shape[0]} has a same-class partner at a finite distance, "
            "so the SNNL is undefined; use larger batches or class-balanced sampling"
        )
    return same, valid


# The blockwise path: used automatically above AUTO_CHUNK_BATCH samples, or on request.
def temperature_tensor(temperature, like: torch.Tensor) -> torch.Tensor:
    if isinstance(temperature, torch.Tensor):
        if temperature.numel() != 1:
            raise ValueError(f"temperature must be a scalar, got shape {tuple(temperature.shape)}")
        t = temperature.reshape(())
        if t.dtype != like.dtype:
            t = t.to(like.dtype)
        if not t.requires_grad and t.device.type == "cpu":
            value = float(t.detach().numpy())  # through NumPy: no tensor op, no sync
            if not (value > 0 and math.isfinite(value)):
                raise ValueError(f"temperature must be a positive finite number, got {value}; "
                                 "use optimal_temperature() to pick one, or OnlineTemperature to learn one")
        return t.to(like.device)
    t = float(temperature)
    if not (t > 0 and t < float("inf")):
        raise ValueError(
            f"temperature must be a positive finite number, got {temperature!r}; "
            "use optimal_temperature() to pick one, or OnlineTemperature to learn one"
        )
    return torch.full((), t, dtype=like.dtype, device=like.device)  # a fill: no host-to-device copy


def gram_masks(labels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """(b, b) mask of the pairs outside the positives' sum (other classes, and the anchor
    itself), and the (b,) mask of valid anchors (with at least one positive)."""
    not_positive = labels.unsqueeze(0) != labels.unsqueeze(1)
    not_positive.diagonal().fill_(True)
    return not_positive, not_positive.all(dim=1).logical_not_()


def valid_anchors(labels: torch.Tensor) -> torch.Tensor:
    """Anchors whose label occurs at least twice, without forming a b x b mask: after a
    sort, a label occurs twice when it equals its predecessor or its successor. Unlike
    ``torch.unique`` this has no data-dependent output size (no device synchronisation)."""
    ordered, order = torch.sort(labels)
    repeat = ordered[1:] == ordered[:-1]
    has = torch.zeros_like(ordered, dtype=torch.bool)
    has[1:] |= repeat
    has[:-1] |= repeat
    return torch.empty_like(has).scatter_(0, order, has)
