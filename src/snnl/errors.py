"""Exceptions whose messages are meant for users (the CLI prints them without a traceback), and
the one-line message of a config value that its typed model refused (:func:`validation_message`).

Every message says what was wrong, where, and what to do about it.
"""

from __future__ import annotations

import types
from collections.abc import Mapping
from typing import Annotated, Any, Union, get_args, get_origin


class SnnlError(Exception):
    """Base class of the errors snnl raises on bad input."""


class ConfigError(SnnlError, ValueError):
    """A configuration file or value is invalid."""


class DataError(SnnlError, ValueError):
    """A data file, array or label set is invalid."""


class CheckpointError(SnnlError, ValueError):
    """A checkpoint is missing, corrupt or incompatible."""


class TrainingError(SnnlError, RuntimeError):
    """Training cannot continue (e.g. a loss term became NaN or inf)."""


class DivergenceError(TrainingError):
    """Training diverged: a loss term, a weight or an optimizer update stopped being finite.

    Attributes: ``step`` (1-based, the first bad step), ``epoch`` (0-based) and ``reason`` (what
    broke, in words), so that a pipeline can record the run as diverged instead of stopping
    (``snnl train --on-divergence record``)."""

    def __init__(self, message: str, step: int, epoch: int, reason: str):
        super().__init__(message)
        self.step, self.epoch, self.reason = step, epoch, reason

    def record(self) -> dict:
        """What a diverged run's metrics record under ``diverged``: step, epoch, reason."""
        return {"step": self.step, "epoch": self.epoch, "reason": self.reason}


def is_diverged(record: Mapping[str, Any]) -> bool:
    """Whether a metrics JSON, a checkpoint or an evaluation summary (``record``) is that of a run
    which diverged: its ``diverged`` entry holds :meth:`DivergenceError.record`, not None."""
    return bool(record.get("diverged"))


# pydantic's error type -> the rule, in the words of config/README.md ({...}: from the error)
RULES = {
    "int_type": "must be an integer", "int_from_float": "must be an integer", "float_type": "must be a number",
    "float_parsing": "must be a number", "finite_number": "must be a finite number", "bool_type": "must be true or false",
    "string_type": "must be a string", "list_type": "must be a list", "dict_type": "must be a mapping",
    "literal_error": "must be {expected}", "too_short": "must have at least {min_length} entries",
    "string_too_short": "must not be empty", "greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}", "less_than_equal": "must be <= {le}",
}


def validation_message(model: Any, err: Any, prefix: tuple[str, ...] = (), moved: Mapping[str, str] = {}) -> str:
    """The first error of the pydantic ValidationError ``err`` (validating the model class
    ``model``) in one line: "`prefix.key` RULE; got VALUE", "unknown key `...`; known keys: ...",
    "missing required key `...`". ``moved``: for keys of older layouts, where their values went.
    A validator's rule that starts with "`.key`" names a sibling of the key, "`sub`" a key below."""
    e = err.errors(include_url=False)[0]
    loc = tuple(str(p) for p in e["loc"] if p != "[key]")
    path, kind, ctx = ".".join((*prefix, *loc)), e["type"], e.get("ctx") or {}
    if kind == "extra_forbidden":
        parent, above = _type_at(model, loc[:-1]), ".".join((*prefix, *loc[:-1]))
        item, known = getattr(parent, "item", "key"), ", ".join(getattr(parent, "model_fields", {}))
        hint, of = f" ({moved[path]})" if path in moved else "", f" of `{above}`" if above and item == "key" else ""
        return f"unknown {item} `{path}`{hint}; known {item}s{of}: {known}"
    if kind == "missing":
        return f"missing required key `{path}`"
    if kind == "value_error":
        rule = str(ctx["error"]).replace("`.", f"`{'.'.join((*prefix, *loc[:-1]))}." if loc[:-1] or prefix else "`")
        if rule.startswith("`"):
            return f"`{path}.{rule[1:]}"
    elif kind == "model_type":
        item = getattr(_type_at(model, loc), "item", "key")
        rule = "must be a mapping of settings" if item == "key" else f"must map {item} names to their settings"
    else:
        rule = "must not be empty" if ctx.get("min_length") == 1 else RULES.get(kind, e["msg"]).format(**ctx)
    return f"`{path or '(top level)'}` {rule}; got {e['input']!r}"


def _type_at(tp: Any, loc: tuple[str, ...]) -> Any:
    """The type reached from the model class ``tp`` by the keys ``loc`` (None when lost)."""
    for part in (*loc, None):
        while get_origin(tp) in (Annotated, Union, types.UnionType):
            tp = next((a for a in get_args(tp) if a is not type(None)), None)
        if part is None or not isinstance(tp, type) or not hasattr(tp, "model_fields"):
            return tp if part is None else None
        tp = getattr(tp.model_fields.get(part), "annotation", None)
