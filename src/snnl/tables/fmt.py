"""Number formatting and pipe tables for the Markdown outputs."""

from __future__ import annotations

import math
from collections.abc import Sequence

from snnl.tables.stats import Estimate

NA = "n/a"


def num(x: float | None, sig: int = 4, sign: bool = False) -> str:
    """``sig`` significant digits, trailing zeros kept (0.9650), fixed notation where it reads
    well; ``sign`` adds + to positive numbers; None/NaN -> n/a."""
    if x is None or not math.isfinite(float(x)):
        return NA
    x = float(x)
    plus = "+" if sign else ""
    if x == 0:
        return "0"
    if 1e-4 <= abs(x) < 1e6:
        exponent = math.floor(math.log10(abs(x)))
        digits = max(sig - 1 - exponent, 0)
        # rounding can carry into a new digit (0.99996 -> 1.000): recompute on the rounded value
        rounded = round(x, digits)
        if rounded != 0 and math.floor(math.log10(abs(rounded))) != exponent:
            digits = max(sig - 1 - math.floor(math.log10(abs(rounded))), 0)
        return f"{x:{plus}.{digits}f}"
    return f"{x:{plus}.{sig - 1}e}"


def interval(est: Estimate, sig: int = 4, sign: bool = False) -> str:
    """"[lo, hi]", or "" when there is no interval."""
    if not est.has_interval:
        return ""
    return f"[{num(est.lo, sig, sign)}, {num(est.hi, sig, sign)}]"


def mde(est: Estimate, sig: int = 3) -> str:
    """The minimum detectable effect of a paired difference ("0.0152"), or n/a where it has none."""
    return num(est.mde, sig)


def cell(est: Estimate, sig: int = 4, sign: bool = False, show_n: bool = False, show_mde: bool = False) -> str:
    """"0.9712 [0.9650, 0.9774]" (mean and interval); "0.9712 (n=1)" without an interval;
    ``show_mde``: "+0.0100 [-0.0050, +0.0250] (n=3, MDE 0.0290)" where the MDE is defined."""
    if est.n == 0:
        return NA
    text = num(est.mean, sig, sign)
    ci = interval(est, sig, sign)
    if ci:
        text += f" {ci}"
    extra = [f"n={est.n}"] if show_n or not ci else []
    if show_mde and math.isfinite(est.mde):
        extra.append(f"MDE {mde(est, sig)}")
    return text + (f" ({', '.join(extra)})" if extra else "")


def _escape(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def pipe_table(header: Sequence[str], rows: Sequence[Sequence[str]], align: Sequence[str] | None = None) -> str:
    """A GitHub-flavoured Markdown table; ``align`` per column: "l" or "r"."""
    align = list(align) if align else ["l"] * len(header)
    lines = ["| " + " | ".join(_escape(h) for h in header) + " |",
             "|" + "|".join(("---:" if a == "r" else ":---") for a in align) + "|"]
    for row in rows:
        lines.append("| " + " | ".join(_escape(c) for c in row) + " |")
    return "\n".join(lines) + "\n"
