"""Whole numbers from outside: money (分), points, quantities, counts and ids are
JSON integers and nothing else.

pydantic's default ("lax") integer takes `"10000"`, `1250.0` and `true` as
10000, 1250 and 1. For money that hides a till sending floats or text, exactly
what the docs promise to refuse, so every such field in a request body, a
simulation file or a rule file is annotated with `Whole`: an integer by type
(a JSON integer, a YAML integer, a Python `int` that is not a `bool`), within
its bounds, refused otherwise with a message that names the unit.

The check runs inside pydantic-core (a strict `int` wrapped in a custom error,
chained to the bounds), not in a Python validator: the till's fast path
validates the same models, and strictness costs it nothing. The same models
validate the FastAPI routes, so both paths refuse the same inputs.

Bounds go in `Whole` (`fen(ge=0, le=...)`), not in a `Field(ge=...)` beside it:
pydantic cannot push a `Field` bound into a chained schema and would add a
Python validator and a non-standard JSON schema key instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema
from pydantic_core import core_schema as cs

ERROR_TYPE = "whole_number"
"""The pydantic error type of a value that is not an integer (`detail.errors[].type`)."""


@dataclass(frozen=True, slots=True)
class Unit:
    """What a whole number counts, as the error message names it."""

    zh: str
    en: str


FEN = Unit("整数分", "a whole number of 分")
POINTS = Unit("整数积分", "a whole number of points")
COUNT = Unit("整数", "a whole number")
ID = Unit("整数编号", "a whole-number id")


def message(unit: Unit) -> str:
    """The message of a value that is not an integer (a string, a float, a bool)."""
    return (
        f"须为{unit.zh} (JSON 整数)，不可为字符串、小数或布尔值 (must be {unit.en} (JSON integer))"
    )


@dataclass(frozen=True, slots=True)
class Whole:
    """`Annotated[int, Whole(...)]`: a JSON integer (never a string, a float or a
    bool) of `unit`, within the inclusive bounds given."""

    unit: Unit
    ge: int | None = None
    gt: int | None = None
    le: int | None = None

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return self.core_schema()

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return self.json_schema()

    def core_schema(self) -> CoreSchema:
        exact = cs.custom_error_schema(
            cs.int_schema(strict=True),
            custom_error_type=ERROR_TYPE,
            custom_error_message=message(self.unit),
        )
        return cs.chain_schema([exact, cs.int_schema(ge=self.ge, gt=self.gt, le=self.le)])

    def json_schema(self) -> JsonSchemaValue:
        out: JsonSchemaValue = {"type": "integer"}
        if self.ge is not None:
            out["minimum"] = self.ge
        if self.gt is not None:
            out["exclusiveMinimum"] = self.gt
        if self.le is not None:
            out["maximum"] = self.le
        return out

    def bounds(self) -> tuple[str, str]:
        """The bounds in words, Chinese and English ("0 至 100", "0 to 100")."""
        low = self.ge if self.ge is not None else (self.gt + 1 if self.gt is not None else None)
        if low is not None and self.le is not None:
            return f"{low} 至 {self.le}", f"{low} to {self.le}"
        if low is not None:
            return f"不小于 {low}", f"at least {low}"
        if self.le is not None:
            return f"不大于 {self.le}", f"at most {self.le}"
        return "", "any"


@dataclass(frozen=True, slots=True)
class WordOrWhole:
    """`Annotated[Literal["none", "max"] | int, WordOrWhole(("none", "max"), points(...))]`:
    one of a few words or a whole number, with one message for anything else.

    A plain union would report one error per member, under names like
    `options.points.literal['none','max']`; the cashier needs the one field and
    the choices."""

    words: tuple[str, ...]
    whole: Whole

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        choices = " / ".join(f'"{w}"' for w in self.words)
        unit = self.whole.unit
        zh, en = self.whole.bounds()
        return cs.union_schema(
            [cs.literal_schema(list(self.words)), self.whole.core_schema()],
            custom_error_type=ERROR_TYPE,
            custom_error_message=(
                f"须为 {choices} 或{unit.zh} ({zh}，JSON 整数) "
                f"(must be {choices} or {unit.en} ({en}, JSON integer))"
            ),
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        return {"anyOf": [{"type": "string", "enum": list(self.words)}, self.whole.json_schema()]}


def fen(*, ge: int | None = None, gt: int | None = None, le: int | None = None) -> Whole:
    """Money: an integer number of 分."""
    return Whole(FEN, ge=ge, gt=gt, le=le)


def points(*, ge: int | None = None, gt: int | None = None, le: int | None = None) -> Whole:
    """Points: an integer number of points (negative where an adjustment may take some)."""
    return Whole(POINTS, ge=ge, gt=gt, le=le)


def count(*, ge: int | None = None, gt: int | None = None, le: int | None = None) -> Whole:
    """Quantities, counts, line numbers, weekdays, limits, priorities."""
    return Whole(COUNT, ge=ge, gt=gt, le=le)


def ident(*, ge: int | None = None, gt: int | None = None, le: int | None = None) -> Whole:
    """A row id (BIGINT)."""
    return Whole(ID, ge=ge, gt=gt, le=le)
