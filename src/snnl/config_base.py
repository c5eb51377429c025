"""The one dialect of every config section (typed pydantic models), its one-line errors, the file.

A value form gets the same verdict in every section: an integer is a YAML integer or a whole
float (``3.0``), never a string; a number is a YAML number or a string that reads as one (YAML
1.1 reads ``1e-3`` as a string), finite; true/false is never a number, and a switch is only
true or false; a null mapping is ``{}``; unknown keys are errors.
"""

import re
import types
from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union, get_args, get_origin

import yaml
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError
from pydantic import model_validator

from snnl.errors import ConfigError


def require(ok: Any, rule: str, after: bool = False) -> Any:
    """A validator (before the type's own, or ``after``) that refuses a value unless ``ok(value)``."""
    def validate(value: Any) -> Any:
        if not ok(value):
            raise ValueError(rule)
        return value
    return AfterValidator(validate) if after else BeforeValidator(validate)


def integer(**bounds: int) -> Any:
    whole = BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
    return Annotated[int, Field(**bounds), Strict(), whole]


def number(**bounds: float) -> Any:
    text = Annotated[str, Field(pattern=r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$")]
    form = Union[Annotated[float, Field(**bounds)], text]  # what the JSON Schema says it accepts
    not_bool = require(lambda v: not isinstance(v, bool), "must be a number, not true or false").func
    return Annotated[float, Field(**bounds), BeforeValidator(not_bool, json_schema_input_type=form)]


def unique(item: Any, min_length: int = 0) -> Any:
    """A list of ``item`` without repeats, at least ``min_length`` long."""
    once = require(lambda v: len({repr(x) for x in v}) == len(v), "must not repeat an entry", after=True)
    return Annotated[list[item], Field(min_length=min_length or None, json_schema_extra={"uniqueItems": True}), once]


DEVICE = r"auto|cpu|cuda|cuda:[0-9]+"
Int, PosInt, NonNegInt = integer(), integer(ge=1), integer(ge=0)
Float, PosFloat, NonNegFloat = number(), number(gt=0), number(ge=0)
Bool = Annotated[bool, Strict()]
Device = Annotated[str, Field(pattern=f"^({DEVICE})$"), require(
    lambda v: isinstance(v, str) and re.fullmatch(DEVICE, v), "must be auto, cpu, cuda or cuda:N")]
Layers = Annotated[Union[Literal["all"], Annotated[list[str], Field(min_length=1)]], require(
    lambda v: v == "all" or isinstance(v, list) and v and all(isinstance(n, str) for n in v),
    "must be `all` or a non-empty list of layer names")]


class Section(BaseModel):
    """A config section. ``item`` names its keys in messages ("unknown dataset ...")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=(),
                              json_schema_extra=lambda schema: schema.update(type=["object", "null"]))
    item: ClassVar[str] = "key"

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    @classmethod
    def from_dict(cls, values: Any, where: str = "config", prefix: tuple[str, ...] = ()) -> Any:
        return check(cls, values, where, prefix)

    def replace(self, where: str = "overrides", prefix: tuple[str, ...] = (), **changes: Any) -> Any:
        """A copy with ``changes`` applied, each checked."""
        return check(type(self), {**self.model_dump(), **changes}, where, prefix)


def check(model: type[Section], values: Any, where: str, prefix: tuple[str, ...] = ()) -> Any:
    """``model`` validated from ``values``, or ConfigError "WHERE: `prefix.key` rule; got VALUE"."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ConfigError(f"{where}: {describe(model, err, prefix)}") from None


# keys of older configs, and where their values went
MOVED = {
    "pipeline.experiments": "the switches now sit with each experiment's settings: `experiments.NAME.run`, "
                            "`experiments.gan.datasets`",
    "experiments.dynamics_figure": "now `experiments.dynamics`",
}
RULES = {  # pydantic's error type -> the rule, in the words of config/README.md ({...}: from the error)
    "int_type": "must be an integer", "int_from_float": "must be an integer", "float_type": "must be a number",
    "float_parsing": "must be a number", "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "string_type": "must be a string", "list_type": "must be a list", "dict_type": "must be a mapping",
    "literal_error": "must be {expected}", "too_short": "must have at least {min_length} entries",
    "string_too_short": "must not be empty", "greater_than": "must be > {gt}", "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}", "less_than_equal": "must be <= {le}",
}


def describe(model: type[BaseModel], err: ValidationError, prefix: tuple[str, ...] = ()) -> str:
    """The first error of ``err`` (validating ``model``) in one line, its key ``prefix.loc``."""
    e = err.errors(include_url=False)[0]
    loc = tuple(str(p) for p in e["loc"] if p != "[key]")
    path, kind, ctx = ".".join((*prefix, *loc)), e["type"], e.get("ctx") or {}
    if kind == "extra_forbidden":
        parent, above = _type_at(model, loc[:-1]), ".".join((*prefix, *loc[:-1]))
        item, known = getattr(parent, "item", "key"), ", ".join(getattr(parent, "model_fields", {}))
        moved, of = f" ({MOVED[path]})" if path in MOVED else "", f" of `{above}`" if above and item == "key" else ""
        return f"unknown {item} `{path}`{moved}; known {item}s{of}: {known}"
    if kind == "missing":
        return f"missing required key `{path}`"
    if kind == "value_error":  # a validator's rule: "`sub.key` ..." names a key below, "`.key`" a sibling
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
    """The type reached from the model ``tp`` by the keys ``loc`` (None when lost)."""
    for part in (*loc, None):
        while get_origin(tp) in (Annotated, Union, types.UnionType):
            tp = next((a for a in get_args(tp) if a is not type(None)), None)
        if part is None or not isinstance(tp, type) or not issubclass(tp, BaseModel):
            return tp if part is None else None
        tp = getattr(tp.model_fields.get(part), "annotation", None)


def read_yaml(path: str | Path | None) -> dict[str, Any]:
    """The whole YAML document of a config file as a dict ({} for no file), with clear errors."""
    if path is not None and not Path(path).is_file():
        raise ConfigError(f"config file {path} does not exist; pass an existing YAML file to --config")
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


def section_of(model: type[Section], source: dict[str, Any] | str | Path | None, key: str, where: str = "") -> Any:
    """The ``key:`` section (defaults when absent) of a parsed config document or of the config
    file ``source`` (None: no file) as ``model``."""
    if not isinstance(source, dict):
        source, where = read_yaml(source), f"config file {source}" if source is not None else "defaults"
    return check(model, source.get(key), where or "config", (key,))
