"""Reading a YAML document from a file, with one-line errors (the file, the line and column, the fix)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from snnl.errors import ConfigError


def read_yaml(path: str | Path | None) -> dict[str, Any]:
    """The whole YAML document of the config file ``path`` as a dict ({} for no file).

    Raises:
        ConfigError: the file does not exist, is not valid YAML (:func:`yaml_problem`), or its
            top level is not a mapping.
    """
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist; check the path (e.g. config/default.yaml)")
    try:
        document = yaml.safe_load(Path(path).read_text()) if path is not None else {}
    except yaml.YAMLError as err:
        raise ConfigError(f"config file {path} is not valid YAML: {yaml_problem(err)}") from None
    if document is not None and not isinstance(document, dict):
        raise ConfigError(f"config file {path}: the top level must be a mapping (key: value), "
                          f"got {type(document).__name__}")
    return document or {}


def yaml_problem(err: yaml.YAMLError) -> str:
    """A YAML syntax error in one line: where (1-based line and column) and what, and the fix."""
    mark, context, context_mark = (getattr(err, k, None) for k in ("problem_mark", "context", "context_mark"))
    problem = getattr(err, "problem", None) or str(err).splitlines()[0]
    where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark is not None else ""
    if context and context_mark is not None and (mark is None or context_mark.line != mark.line):
        problem += f" ({context} that starts at line {context_mark.line + 1})"
    return f"{where}{problem}; fix the syntax there (indent with spaces, not tabs; close every bracket and quote)"
