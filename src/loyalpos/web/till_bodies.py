"""What the selling screen's script sends, validated before any service call.

A bad value is answered 422 with the field's path (api/errors maps pydantic's
errors once for the whole app), so the page can put the message next to the
field; limits are the API's own (a line's price, a quantity, 500 lines, ten
tenders)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictBool, StringConstraints

MAX_FEN = 100_000_000_00  # ¥100,000,000.00: no till line or tender is above
_Text = Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)]
_Code = Annotated[
    str, StringConstraints(min_length=1, max_length=64, strip_whitespace=True, pattern=r"^\S+$")
]
_OrderNo = Annotated[
    str, StringConstraints(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9._-]+$")
]
_Id = Annotated[int, Field(gt=0, le=2**63 - 1)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)


class ScanIn(_Body):
    text: Annotated[str, StringConstraints(max_length=128)]


class LineIn(_Body):
    sku: _Code
    name: _Text = ""
    category: Annotated[str, StringConstraints(max_length=64)] = ""
    unit_price_fen: Annotated[int, Field(ge=0, le=MAX_FEN)]
    qty: Annotated[int, Field(ge=1, le=9999)]
    manual: StrictBool = False  # rung up at a price the cashier typed


class CartIn(_Body):
    member_id: _Id | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    points: Literal["max", "none"] | Annotated[int, Field(ge=0, le=10**9)] = "max"
    force: Annotated[list[_Id], Field(max_length=20)] = []
    skip_all: StrictBool = False


class QuoteIn(CartIn):
    replaces: Annotated[str, StringConstraints(max_length=64)] | None = None


class TenderIn(_Body):
    method: Literal["cash", "bank_card", "wechat", "alipay", "other"]
    amount_fen: Annotated[int, Field(ge=0, le=MAX_FEN)]
    reference: Annotated[str, StringConstraints(max_length=128)] | None = None


class OrderIn(CartIn):
    order_no: _OrderNo
    coupon_ids: Annotated[list[_Id], Field(max_length=20)] = []
    points_used: Annotated[int, Field(ge=0, le=10**9)] = 0
    quote_token: Annotated[str, StringConstraints(max_length=64)] | None = None
    tenders: Annotated[list[TenderIn], Field(min_length=1, max_length=10)]
    ordered_at: Annotated[str, StringConstraints(max_length=40)] | None = None
    skip_reason: Annotated[str, StringConstraints(max_length=200, strip_whitespace=True)] = ""


class LateIn(_Body):
    orders: Annotated[list[OrderIn], Field(min_length=1, max_length=200)]


class ReleaseIn(_Body):
    token: Annotated[str, StringConstraints(min_length=1, max_length=64)]


class HoldIn(_Body):
    reason: Annotated[str, StringConstraints(min_length=1, max_length=32)]
    note: Annotated[str, StringConstraints(max_length=500)] = ""
    member_id: _Id | None = None
    cart: dict[str, Any]


class RefundLineIn(_Body):
    line_no: Annotated[int, Field(ge=1, le=500)]
    qty: Annotated[int, Field(ge=1, le=9999)]


class RefundIn(_Body):
    order_no: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    refund_no: _OrderNo | None = None
    lines: Annotated[list[RefundLineIn], Field(min_length=1, max_length=500)]
    reason: Annotated[str, StringConstraints(max_length=200)] = ""
