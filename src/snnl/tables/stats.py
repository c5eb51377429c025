"""Means with Student-t intervals, paired differences, and the verdict primitives of docs/RESULTS.md.

    Estimate  n, mean and the two-sided t interval of the mean (NaN ends when n < 2); for a
              paired difference also its minimum detectable effect (MDE) at 80% power
    sign_rule       "X > 0" (or "X < 0") decided by where the interval lies relative to 0
    margin_rule     "X >= delta": met / failed / undecided (a single value is its own interval)
    aggregate       cells -> one verdict: all reproduced / any not reproduced / else inconclusive
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, replace

import numpy as np
from scipy import stats as _st

REPRODUCED = "reproduced"
NOT_REPRODUCED = "not reproduced"
INCONCLUSIVE = "inconclusive"
NOT_RUN = "not run"
VERDICTS = (REPRODUCED, NOT_REPRODUCED, INCONCLUSIVE, NOT_RUN)

MET, FAILED, UNDECIDED = "met", "failed", "undecided"


@dataclass(frozen=True)
class Estimate:
    """The mean of ``n`` finite values and its two-sided t interval at ``level``; ``mde``: the
    minimum detectable effect (:func:`mde`) of a paired difference, NaN for a plain mean or n < 2."""

    n: int
    mean: float
    lo: float
    hi: float
    level: float = 0.95
    mde: float = math.nan

    @property
    def has_interval(self) -> bool:
        return self.n >= 2 and math.isfinite(self.lo) and math.isfinite(self.hi)

    def to_dict(self, prefix: str = "") -> dict[str, float | int]:
        return {f"{prefix}n": self.n, f"{prefix}mean": self.mean, f"{prefix}ci_lo": self.lo, f"{prefix}ci_hi": self.hi,
                f"{prefix}mde": self.mde}


NAN_ESTIMATE = Estimate(0, math.nan, math.nan, math.nan)


def _finite(values: Iterable[float | None]) -> np.ndarray:
    arr = np.asarray([np.nan if v is None else float(v) for v in values], dtype=np.float64)
    return arr[np.isfinite(arr)]


def mean_ci(values: Iterable[float | None], level: float = 0.95) -> Estimate:
    """Mean and ``level`` Student-t interval of the finite ``values`` (None and NaN dropped).

    n < 2: the interval is (NaN, NaN). Equal values: the interval is the point."""
    x = _finite(values)
    n = int(x.size)
    if n == 0:
        return Estimate(0, math.nan, math.nan, math.nan, level)
    mean = float(x.mean())
    if n < 2:
        return Estimate(n, mean, math.nan, math.nan, level)
    sd = float(x.std(ddof=1))
    half = float(_st.t.ppf(0.5 + level / 2.0, n - 1)) * sd / math.sqrt(n)
    return Estimate(n, mean, mean - half, mean + half, level)


POWER = 0.80  # docs/RESULTS.md, "Power": the MDE is the effect detected with this probability


def mde(values: Iterable[float | None], level: float = 0.95, power: float = POWER) -> float:
    """Minimum detectable effect of the two-sided ``level`` one-sample t test on the finite
    ``values`` (paired differences) at ``power`` (docs/RESULTS.md, "Power"):
    (t(1/2 + level/2, n - 1) + t(power, n - 1)) * s_d / sqrt(n), s_d the sample standard
    deviation (n - 1 in the denominator). Same units as the values; NaN when n < 2."""
    x = _finite(values)
    n = int(x.size)
    if n < 2:
        return math.nan
    quantiles = float(_st.t.ppf(0.5 + level / 2.0, n - 1)) + float(_st.t.ppf(power, n - 1))
    return quantiles * float(x.std(ddof=1)) / math.sqrt(n)


def differences(values: Iterable[float | None], level: float = 0.95) -> Estimate:
    """:func:`mean_ci` of differences, with their :func:`mde`."""
    values = list(values)
    return replace(mean_ci(values, level), mde=mde(values, level))


def paired(
    entangled: Mapping[int, float | None], baseline: Mapping[int, float | None], level: float = 0.95
) -> tuple[Estimate, list[int]]:
    """Estimate (with its MDE) of entangled - baseline (any regime minus its reference) over the
    seeds where both are finite; also those seeds."""
    seeds = sorted(
        s for s in set(entangled) & set(baseline)
        if _is_finite(entangled[s]) and _is_finite(baseline[s])
    )
    diffs = [float(entangled[s]) - float(baseline[s]) for s in seeds]
    return differences(diffs, level), seeds


def _is_finite(v: float | None) -> bool:
    return v is not None and math.isfinite(float(v))


def sign_rule(est: Estimate, direction: str = ">") -> str:
    """docs/RESULTS.md "sign rule" for the claim "X > 0" (``>``) or "X < 0" (``<``)."""
    if direction not in (">", "<"):
        raise ValueError(f"direction must be '>' or '<', got {direction!r}")
    if est.n < 2 or not est.has_interval:
        return INCONCLUSIVE
    above, below = est.lo > 0, est.hi < 0
    if direction == ">":
        return REPRODUCED if above else NOT_REPRODUCED if below else INCONCLUSIVE
    return REPRODUCED if below else NOT_REPRODUCED if above else INCONCLUSIVE


def margin_interval(est: Estimate) -> tuple[float, float]:
    """The interval the margin rule uses: the t interval (n >= 2), the point (n == 1)."""
    if est.n == 1:
        return est.mean, est.mean
    return est.lo, est.hi


def margin_rule(est: Estimate, margin: float) -> str:
    """docs/RESULTS.md "margin rule" for the condition "X >= margin": met, failed or undecided."""
    if est.n == 0:
        return UNDECIDED
    lo, hi = margin_interval(est)
    if not (math.isfinite(lo) and math.isfinite(hi)):
        return UNDECIDED
    if lo >= margin:
        return MET
    if hi < margin:
        return FAILED
    return UNDECIDED


def aggregate(verdicts: Iterable[str]) -> str:
    """Combine cell verdicts: not-run cells are left out; reproduced if all the rest are,
    not reproduced if any is, inconclusive otherwise; not run if nothing is left."""
    ran = [v for v in verdicts if v != NOT_RUN]
    for v in ran:
        if v not in VERDICTS:
            raise ValueError(f"unknown verdict {v!r}")
    if not ran:
        return NOT_RUN
    if NOT_REPRODUCED in ran:
        return NOT_REPRODUCED
    if all(v == REPRODUCED for v in ran):
        return REPRODUCED
    return INCONCLUSIVE


def tally(verdicts: Iterable[str]) -> str:
    """"2 reproduced, 1 inconclusive" (in the order of VERDICTS)."""
    c = Counter(verdicts)
    return ", ".join(f"{c[v]} {v}" for v in VERDICTS if c[v])
