"""Which characters a value from outside may hold, defined once for the API's
bodies, paths and queries (api/fields.py) and for the rule and simulation
documents (rules/schema.py).

PostgreSQL text cannot hold NUL, a receipt printer cannot print other control
characters, and a lone surrogate (`"\ud800"`, valid JSON, not valid Unicode)
cannot be encoded to UTF-8 at all: each is refused with a 422 naming the field,
never met later as a 500 from the database or the JSON encoder. Free-form JSON
(a held cart, a rule document's names and tags) is walked the same way
(`check_tree`), keys included.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import GetCoreSchemaHandler, GetJsonSchemaHandler
from pydantic.json_schema import JsonSchemaValue
from pydantic_core import CoreSchema, core_schema

_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True)
class Chars:
    """A rule on the characters of a string, as `Annotated` metadata: checked
    after the length (and the trimming of surrounding spaces, where the type asks
    for it), with a message a cashier can act on, and shown as `pattern`."""

    pattern: str  # the whole value must match (Python and ECMA regex alike)
    message: str
    compiled: re.Pattern[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "compiled", re.compile(self.pattern))

    def check(self, value: str) -> str:
        if self.compiled.fullmatch(value) is None:
            raise ValueError(self.message)
        if _SURROGATE.search(value) is not None:
            # Not in `pattern`: JSON Schema's regex dialect has no such range.
            raise ValueError(
                "含有无效字符 (contains an unpaired surrogate, which is not valid Unicode)"
            )
        return value

    def check_sent(self, value: Any) -> Any:
        """The rule on the value as sent, but for surrounding spaces: a type that
        trims (`strip_whitespace`) would also trim a trailing line break or tab,
        and `"B1\n"` must be refused, not booked as `B1`."""
        if isinstance(value, str):
            self.check(value.strip(" "))
        return value

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return core_schema.no_info_before_validator_function(
            self.check_sent,
            core_schema.no_info_after_validator_function(self.check, handler(source)),
        )

    def __get_pydantic_json_schema__(
        self, schema: CoreSchema, handler: GetJsonSchemaHandler
    ) -> JsonSchemaValue:
        found = handler(schema)
        found["pattern"] = self.pattern
        return found


SINGLE_LINE = Chars(
    r"^[^\x00-\x1f\x7f-\x9f]*$",
    "不能包含控制字符 (must not contain control characters such as NUL, tabs or line breaks)",
)
"""Names, codes, numbers, references: printable characters on one line."""

TEXT = Chars(
    r"^[^\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]*$",
    "不能包含控制字符 (must not contain control characters such as NUL; "
    "tabs and line breaks are allowed)",
)
"""Free text (a note, a reason, a description): lines and tabs, no other control
characters. `Strict` bodies hold every other string field to this rule too."""


def check_tree(value: Any, rule: Chars = TEXT) -> Any:
    """`value` with every string in it (dict keys too, at any depth) held to
    `rule`; other values pass as they are."""
    if isinstance(value, str):
        rule.check(value)
    elif isinstance(value, dict):
        for key, item in value.items():
            check_tree(key, rule)
            check_tree(item, rule)
    elif isinstance(value, list | tuple):
        for item in value:
            check_tree(item, rule)
    return value
