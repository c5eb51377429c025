"""Exceptions whose messages are meant for users (the CLI prints them without a traceback).

Every message says what was wrong, where, and what to do about it.
"""


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
