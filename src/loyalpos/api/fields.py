"""The types of the text, date and id values a request carries, defined once.

A value is held to the same rule wherever it comes in: in a JSON body (the models
of every context's schemas.py), in a path or in a
query string. An order number is an `OrderNo` where an order is made (the confirm
body, the late orders: letters, digits and `- _ .`, so it can be a path segment);
where one is looked up (`/stores/{id}/orders/{order_no}`, a refund, a reconciliation
list) it is any one line (`Code`), so orders booked before the rule stay reachable; a
hold's terminal is a `Code` in the body that parks it and in `?terminal=` that
lists it. Anything PostgreSQL cannot store (NUL) or a till cannot print (other
control characters) is refused here with a 422 naming the field, never a 500
from the database.

Each rule is also the JSON schema's `pattern` in the OpenAPI document, so a
client (and the schemathesis run in the suite) knows it up front.
"""

from __future__ import annotations

import re
from datetime import date, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, StringConstraints
from pydantic import StringConstraints as Length

from loyalpos import integers as whole
from loyalpos.characters import SINGLE_LINE, TEXT, Chars
from loyalpos.rules.schema import Ident

__all__ = ["SINGLE_LINE", "TEXT", "Chars"]  # with the types below


ORDER_NO_CHARS = "letters A-Z a-z, digits 0-9 and - _ ."
ORDER_NO_RULE = Chars(
    r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    f"订单号只能包含字母、数字和 - _ . 且以字母或数字开头 "
    f"(an order number may contain only {ORDER_NO_CHARS}, and starts with a letter or digit)",
)

QUOTE_TOKEN_RULE = Chars(
    r"^[A-Za-z0-9_-]+$",
    "报价令牌无效 (a quote token is letters, digits, - and _, as the quote answered it)",
)

Code = Annotated[str, Length(min_length=1, max_length=64, strip_whitespace=True), SINGLE_LINE]
"""A till's code or name: sku, cashier, terminal (a hold's too), refund number."""

OrderNo = Annotated[str, Length(min_length=1, max_length=64, strip_whitespace=True), ORDER_NO_RULE]
"""The POS's order number: a path segment of `/stores/{id}/orders/{order_no}`, so a
`/` (or any character outside `ORDER_NO_CHARS`) is refused wherever one comes in."""

QuoteToken = Annotated[str, Length(min_length=1, max_length=40), QUOTE_TOKEN_RULE]
"""A quote's `quote_token` (a path segment when the till releases it)."""

ShortText = Annotated[str, Length(min_length=1, max_length=120, strip_whitespace=True), SINGLE_LINE]
"""A short reference on one line: source_ref, operator, idempotency key."""

RuleId = Ident
"""The id of something in a rule set (a coupon template, a campaign): the rule
files' own type, so a filter or an issue names them as the rules do."""

_ISO_DATE = re.compile(r"\d{4}-\d{2}-\d{2}")
_ISO_INSTANT = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}(:\d{2}(\.\d{1,6})?)?([Zz]|[+-]\d{2}(:?\d{2})?)?"
)


def _iso(pattern: re.Pattern[str], what: str) -> Any:
    def check(value: Any) -> Any:
        # pydantic would read a number ("0.5", 1700000000) as a Unix time.
        if isinstance(value, str) and pattern.fullmatch(value) is None:
            raise ValueError(f"日期格式应为 ISO 8601 (must be an ISO 8601 {what})")
        if not isinstance(value, str | date):
            raise ValueError(f"日期格式应为 ISO 8601 (must be an ISO 8601 {what} string)")
        return value

    return BeforeValidator(check)


IsoDate = Annotated[date, _iso(_ISO_DATE, "date, YYYY-MM-DD")]
"""A calendar day written `YYYY-MM-DD`, never a number."""

IsoDateTime = Annotated[datetime, _iso(_ISO_INSTANT, "date-time, e.g. 2025-01-01T09:30:00+08:00")]
"""An instant written in ISO 8601 (with its offset), never a number."""


# Row ids are BIGINT (SQLite: 64-bit rowid); a larger number is invalid input,
# not a database overflow.
MAX_ID = 2**63 - 1


DbId = Annotated[int, whole.ident(gt=0, le=MAX_ID)]


Phone = Annotated[str, StringConstraints(min_length=3, max_length=32), SINGLE_LINE]


CardNo = Annotated[str, StringConstraints(min_length=1, max_length=32), SINGLE_LINE]


MemberCode = Annotated[str, StringConstraints(min_length=1, max_length=80), SINGLE_LINE]


Operator = Annotated[
    str, StringConstraints(min_length=1, max_length=80, strip_whitespace=True), SINGLE_LINE
]
