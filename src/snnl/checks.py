"""Checks of the numbers users hand to snnl: probabilities, labels, scores and images.

One home for each rule; the metrics (:mod:`snnl.evaluate.metrics`), the attacks
(:mod:`snnl.attacks`), the evaluation and the tables all call these instead of
guessing. Every failure is a :class:`~snnl.errors.DataError` (a ``ValueError``) whose
message names the argument and the function (``what``), the first offending position
and value, and the fix:

* **values** (:func:`check_values`): real numbers; NaN never; +inf / -inf only where the
  caller allows them (the SNNL detection score is +inf by design when no reference
  point shares the predicted label); optionally inside [lo, hi].
* **labels** (:func:`check_labels`): a 1-D array of integers (integer-valued floats are
  accepted), optionally of a given length and inside 0..n_classes-1.
* **probabilities** (:func:`check_probabilities`): an (N, K) array, every value in
  [0, 1] *exactly* (a softmax never leaves it, so 1.0000001 means the input is not a
  probability), every row summing to 1 within :data:`PROB_SUM_ATOL`; with one label per
  row in 0..K-1.
* **images** (:func:`check_unit_images`, :func:`to_unit`): uint8 0..255, or float with
  finite values in [0, 1]: pixels *before* normalisation (every snnl model normalises
  inside).

numpy only at import; torch is imported by the image checks when they run.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from snnl.errors import DataError

#: how far a row of probabilities may sum from 1 (float32 softmax over 1000 classes is
#: within ~1e-5; a row off by more is not a probability vector)
PROB_SUM_ATOL = 1e-3


def as_numpy(a: Any) -> np.ndarray:
    """``a`` (a torch tensor, numpy array or nested sequence) as a numpy array, dtype kept."""
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # a torch tensor, without importing torch
        a = a.detach().cpu().numpy()
    return np.asarray(a)


def _where(flat_index: int, shape: tuple[int, ...]) -> str:
    if len(shape) <= 1:
        return f"index {flat_index}"
    return f"row {flat_index // int(np.prod(shape[1:]))}"


def _report(what: str, a: np.ndarray, bad: np.ndarray, problem: str, fix: str) -> DataError:
    first = int(np.flatnonzero(bad)[0])
    return DataError(f"{what}: {int(bad.sum())} of {a.size} values {problem} (first {a.ravel()[first].item()!r} at "
                     f"{_where(first, a.shape)}); {fix}")


def check_values(
    a: Any,
    what: str,
    *,
    lo: float | None = None,
    hi: float | None = None,
    posinf: bool = False,
    neginf: bool = False,
    fix: str = "pass finite numbers",
) -> np.ndarray:
    """``a`` as a float64 numpy array (shape kept), after checking that it holds real
    numbers, no NaN, +inf only if ``posinf``, -inf only if ``neginf``, and (when given)
    nothing below ``lo`` or above ``hi``. Raises :class:`DataError` naming ``what``."""
    raw = as_numpy(a)
    if raw.dtype.kind not in "biuf":
        raise DataError(f"{what}: expected real numbers, got dtype {raw.dtype}; {fix}")
    x = raw.astype(np.float64, copy=False)
    nan = np.isnan(x)
    if nan.any():
        raise _report(what, x, nan, "are NaN", fix)
    for sign, allowed, name in ((1, posinf, "+inf"), (-1, neginf, "-inf")):
        inf = x == sign * np.inf
        if not allowed and inf.any():
            raise _report(what, x, inf, f"are {name}", fix)
    if lo is not None and (below := x < lo).any():
        raise _report(what, x, below, f"are below {lo:g}", fix)
    if hi is not None and (above := x > hi).any():
        raise _report(what, x, above, f"are above {hi:g}", fix)
    return x


def check_labels(labels: Any, what: str, *, n: int | None = None, n_classes: int | None = None) -> np.ndarray:
    """``labels`` as a 1-D int64 numpy array, after checking that they are integers, that
    there are ``n`` of them (when given) and that each lies in 0..n_classes-1 (when given)."""
    y = as_numpy(labels)
    if y.ndim != 1:
        raise DataError(f"{what}: labels must be a 1-D array of class indices, got shape {y.shape}")
    if n is not None and y.shape[0] != n:
        raise DataError(f"{what}: {y.shape[0]} labels for {n} rows; pass exactly one label per row")
    if y.dtype.kind == "f":
        check_values(y, what, fix="labels must be class indices")
        if (frac := y != np.round(y)).any():
            raise _report(what, y, frac, "are not integers", "labels must be class indices")
    elif y.dtype.kind not in "biu":
        raise DataError(f"{what}: labels must be integer class indices, got dtype {y.dtype}")
    y = y.astype(np.int64)
    if n_classes is not None:
        bad = (y < 0) | (y >= n_classes)
        if bad.any():
            raise _report(what, y, bad, f"are outside 0..{n_classes - 1} ({n_classes} classes)",
                          "labels must index the columns of the probabilities")
    return y


def check_probabilities(probs: Any, labels: Any = None, *, what: str) -> tuple[np.ndarray, np.ndarray | None]:
    """(float64 (N, K) probabilities, int64 (N,) labels or None), after checking that
    ``probs`` is 2-D, finite, inside [0, 1] with rows summing to 1 (within
    :data:`PROB_SUM_ATOL`), and that ``labels`` (when given) holds one class index in
    0..K-1 per row. ``what`` names the caller in the messages."""
    raw = as_numpy(probs)
    if raw.ndim != 2:
        raise DataError(f"{what}: probs must be (N, classes), got shape {raw.shape}")
    fix = "pass softmax probabilities (N, classes) computed from finite logits, not the logits themselves"
    p = check_values(raw, f"{what}: probs", lo=0.0, hi=1.0, fix=fix)
    if p.size:
        off = np.abs(p.sum(axis=1) - 1.0) > PROB_SUM_ATOL
        if off.any():
            row = int(np.flatnonzero(off)[0])
            raise DataError(f"{what}: probs: {int(off.sum())} of {p.shape[0]} rows do not sum to 1 within "
                            f"{PROB_SUM_ATOL:g} (row {row} sums to {p[row].sum()!r}); {fix}")
    y = None if labels is None else check_labels(labels, f"{what}: labels", n=p.shape[0], n_classes=p.shape[1])
    return p, y


# ---------------------------------------------------------------------------------------
# images

UNIT_IMAGES = ("images must be pixels in [0, 1] (or uint8 0..255) before normalisation: snnl models normalise "
               "inside, so pass the raw images and put any mean/std normalisation into the model")


def check_unit_images(x: Any, what: str) -> Any:
    """``x`` unchanged, after checking that it is a float tensor of finite values in
    [0, 1] (one host sync). Raises :class:`DataError` (``TypeError`` for integer tensors)
    naming ``what``."""
    import torch

    if not x.is_floating_point():
        hint = "; divide uint8 images by 255 first" if x.dtype == torch.uint8 else ""
        raise TypeError(f"{what}: expected float images in [0, 1], got dtype {x.dtype}{hint}")
    if x.numel() == 0:
        return x
    lo, hi, bad = torch.stack([x.amin().double(), x.amax().double(), (~torch.isfinite(x)).sum().double()]).tolist()
    if bad:
        raise DataError(f"{what}: {int(bad)} of {x.numel()} pixels are NaN or inf; {UNIT_IMAGES}")
    if lo < 0.0 or hi > 1.0:
        raise DataError(f"{what}: pixels range over [{lo:.4g}, {hi:.4g}], outside [0, 1]; {UNIT_IMAGES}")
    return x


def to_unit(images: Any, what: str = "images") -> Any:
    """Images as float32 pixels in [0, 1]: uint8 (0..255) is divided by 255; float images
    are checked (:func:`check_unit_images`, one host sync) and passed through as float32.
    Any other dtype is a :class:`DataError`."""
    import torch

    images = torch.as_tensor(images)
    if images.dtype == torch.uint8:
        return images.float().div_(255.0)
    if not images.is_floating_point():
        raise DataError(f"{what}: expected uint8 or float images, got dtype {images.dtype}; {UNIT_IMAGES}")
    return check_unit_images(images, what).float()
