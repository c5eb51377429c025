"""The one dialect of every config section (config/README.md, "Values"): its value types, the
base of every section's typed model, and :func:`check`, whose refusals are one line naming the key.
"""

from pathlib import Path
from typing import Annotated, Any, ClassVar, Literal, Union

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, ValidationError
from pydantic import WrapValidator, model_validator

from snnl.errors import ConfigError, validation_message
from snnl.yaml_io import read_yaml


def require(ok: Any, rule: str, after: bool = False) -> Any:
    """A validator (before the type's own, or ``after``) that refuses a value unless ``ok(value)``."""
    def validate(value: Any) -> Any:
        if not ok(value):
            raise ValueError(rule)
        return value
    return AfterValidator(validate) if after else BeforeValidator(validate)


def integer(**bounds: int) -> Any:
    """A YAML integer or a whole float (``3.0``), never a string or true/false."""
    whole = BeforeValidator(lambda v: int(v) if isinstance(v, float) and v.is_integer() else v)
    return Annotated[int, Field(**bounds), Strict(), whole]


def number(**bounds: float) -> Any:
    """A finite YAML number or a string that reads as one (YAML 1.1 reads ``1e-3`` as a string)."""
    text = Annotated[str, Field(pattern=r"^\s*[-+]?([0-9]+\.?[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?\s*$")]
    form = Union[Annotated[float, Field(**bounds)], text]  # what the JSON Schema says it accepts
    not_bool = require(lambda v: not isinstance(v, bool), "must be a number, not true or false").func
    return Annotated[float, Field(**bounds), BeforeValidator(not_bool, json_schema_input_type=form)]


def either(*types: Any, rule: str) -> Any:
    """A value of one of ``types``, refused with the one ``rule`` (not one message per type)."""
    def validate(value: Any, handler: Any) -> Any:
        try:
            return handler(value)
        except ValidationError:
            raise ValueError(rule) from None
    return Annotated[Union[types], WrapValidator(validate)]


def unique(item: Any, min_length: int = 0) -> Any:
    """A list of ``item`` without repeats, at least ``min_length`` long."""
    once = require(lambda v: len({repr(x) for x in v}) == len(v), "must not repeat an entry", after=True)
    return Annotated[list[item], Field(min_length=min_length or None, json_schema_extra={"uniqueItems": True}), once]


DEVICE = r"auto|cpu|cuda|cuda:[0-9]+"
Int, PosInt, NonNegInt = integer(), integer(ge=1), integer(ge=0)
Float, PosFloat, NonNegFloat = number(), number(gt=0), number(ge=0)
Bool = Annotated[bool, Strict()]
Device = either(Annotated[str, Strict(), Field(pattern=f"^({DEVICE})$")], rule="must be auto, cpu, cuda or cuda:N")
Layers = either(Literal["all"], Annotated[list[Annotated[str, Strict()]], Field(min_length=1)],
                rule="must be `all` or a non-empty list of layer names")
# keys of older configs, and where their values went (said with "unknown key")
MOVED = {
    "pipeline.experiments": "the switches now sit with each experiment's settings: `experiments.NAME.run`, "
                            "`experiments.gan.datasets`",
    "experiments.dynamics_figure": "now `experiments.dynamics`",
}


class Section(BaseModel):
    """A config section: unknown keys refused, null read as ``{}``. ``item`` names its keys in
    messages ("unknown dataset ...")."""

    model_config = ConfigDict(extra="forbid", allow_inf_nan=False, protected_namespaces=(),
                              json_schema_extra=lambda schema: schema.update(type=["object", "null"]))
    item: ClassVar[str] = "key"

    @model_validator(mode="before")
    @classmethod
    def _null_is_empty(cls, data: Any) -> Any:
        return {} if data is None else data

    def to_dict(self) -> dict[str, Any]:
        return self.model_dump()

    def replace(self, where: str = "overrides", prefix: tuple[str, ...] = (), **changes: Any) -> Any:
        """A copy with ``changes`` applied, each checked."""
        return check(type(self), {**self.model_dump(), **changes}, where, prefix)


def check(model: type[Section], values: Any, where: str, prefix: tuple[str, ...] = ()) -> Any:
    """``model`` validated from ``values``, or ConfigError "WHERE: `prefix.key` rule; got VALUE"."""
    try:
        return model.model_validate(values)
    except ValidationError as err:
        raise ConfigError(f"{where}: {validation_message(model, err, prefix, MOVED)}") from None


def section_of(model: type[Section], source: dict[str, Any] | str | Path | None, key: str, where: str = "") -> Any:
    """The ``key:`` section (defaults when absent) of a parsed config document or of the config
    file ``source`` (None: no file) as ``model``."""
    if not isinstance(source, dict):
        source, where = read_yaml(source), f"config file {source}" if source is not None else "defaults"
    return check(model, source.get(key), where or "config", (key,))
