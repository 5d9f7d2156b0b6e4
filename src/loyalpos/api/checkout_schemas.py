"""Request and response bodies of the POS flow (identify, quote, confirm, refund,
late booking). Money is integer 分 (fields end in `_fen`)."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from loyalpos.api.fields import (
    SINGLE_LINE,
    TEXT,
    Code,
    IsoDateTime,
    OrderNo,
    QuoteToken,
    RuleId,
)
from loyalpos.api.schemas import CardNo, DbId, IdentityIn, MemberCode, Phone, Strict

Staff = Code
Fen = Annotated[int, Field(ge=0, le=10_000_000_000)]


class MemberRefIn(Strict):
    """Exactly one way of naming the member: id, phone, card, dynamic code or external id."""

    member_id: DbId | None = None
    phone: Phone | None = None
    card_no: CardNo | None = None
    code: MemberCode | None = None
    identity: IdentityIn | None = None


class IdentifyIn(Strict):
    store_id: DbId
    member: MemberRefIn


class LineIn(Strict):
    sku: Code
    category: Annotated[str, StringConstraints(max_length=64), SINGLE_LINE] = ""
    name: Annotated[str, StringConstraints(max_length=200), SINGLE_LINE] = ""
    unit_price_fen: Annotated[int, Field(ge=0, le=100_000_000)]
    qty: Annotated[int, Field(ge=1, le=10_000)]


class OptionsIn(Strict):
    """Cashier overrides: points to use ("max", "none" or a number), coupons forced
    or excluded by id, or skip every benefit (暂不使用权益)."""

    points: Literal["none", "max"] | Annotated[int, Field(ge=0, le=1_000_000_000)] = "none"
    strategy: Literal["max_saving", "earliest_expiry"] = "max_saving"
    force: Annotated[list[DbId], Field(max_length=20)] = []
    exclude: Annotated[list[DbId], Field(max_length=200)] = []
    skip_all: bool = False


class CartIn(Strict):
    store_id: DbId
    member: MemberRefIn | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    options: OptionsIn = OptionsIn()


class QuoteIn(CartIn):
    reserve: bool = Field(
        default=False,
        description="hold the chosen coupons and points for this till for a few minutes",
    )
    replaces: QuoteToken | None = Field(
        default=None, description="this till's previous quote_token, released first"
    )


class TenderIn(Strict):
    method: Literal["cash", "bank_card", "wechat", "alipay", "stored_value", "other"]
    amount_fen: Fen
    reference: Annotated[str, StringConstraints(max_length=128), SINGLE_LINE] | None = None


class ConfirmIn(CartIn):
    """支付成功回调: the POS's order number is the idempotency key within the store."""

    order_no: OrderNo
    coupon_ids: Annotated[list[DbId], Field(max_length=20)] = Field(
        default=[], description="the coupons the quote chose (and the customer accepted)"
    )
    points: Annotated[int, Field(ge=0, le=1_000_000_000)] = Field(
        default=0, description="points redeemed, as quoted"
    )
    tenders: Annotated[list[TenderIn], Field(min_length=1, max_length=10)]
    payer: IdentityIn | None = Field(
        default=None, description="the WeChat/Alipay payer id returned with the payment"
    )
    quote_token: QuoteToken | None = None
    cashier: Staff
    terminal: Staff
    ordered_at: IsoDateTime | None = Field(
        default=None, description="when the order happened (offline orders); default now"
    )


class LateOrderIn(ConfirmIn):
    ordered_at: IsoDateTime


class LateBatchIn(Strict):
    orders: Annotated[list[LateOrderIn], Field(min_length=1, max_length=200)]


class RefundLineIn(Strict):
    line_no: Annotated[int, Field(ge=1, le=500)]
    qty: Annotated[int, Field(ge=1, le=10_000)]


class RefundIn(Strict):
    refund_no: Code
    cashier: Staff
    lines: Annotated[list[RefundLineIn], Field(max_length=500)] = Field(
        default=[], description="empty: refund everything not yet refunded"
    )
    reason: Annotated[str, StringConstraints(max_length=200), TEXT] = ""


class Open(BaseModel):
    """Responses keep every field the service gives; the ones named are documented."""

    model_config = ConfigDict(extra="allow")


class AppliedOut(Open):
    coupon_id: str | None
    benefit: str
    kind: str
    saving_fen: int


class UnusableOut(Open):
    coupon_id: str
    template: str
    reason_code: str
    message: str
    message_en: str


class QuoteLineOut(Open):
    sku: str
    qty: int
    subtotal_fen: int
    discount_fen: int
    points_offset_fen: int
    payable_fen: int
    points_earned: int


class QuoteOut(Open):
    store_id: int
    rule_version: int
    member: dict[str, Any] | None
    subtotal_fen: int
    discount_fen: int
    points_redeemed: int
    points_offset_fen: int
    rounding_fen: int
    payable_fen: int
    points_earned: int
    applied: list[AppliedOut]
    unusable: list[UnusableOut]
    lines: list[QuoteLineOut]
    explanation: list[str]
    quote_token: str | None
    reserved_until: str | None


class ReceiptOut(Open):
    order_id: int
    order_no: str
    store_id: int
    status: str
    late: bool
    member_id: int | None
    payable_fen: int
    paid_fen: int
    points_earned: int
    points_redeemed: int
    claim_token: str | None = Field(description="print on the receipt: 先消费后建档")
    coupons_used: list[int]
    exceptions: list[dict[str, Any]]
    replayed: bool = False


class RefundOut(Open):
    refund_id: int
    refund_no: str
    order_no: str
    order_status: str
    amount_fen: int
    deduction_fen: int
    points_reversed: int
    points_returned: int
    coupons_returned: list[int]
    replayed: bool = False


class LateResultOut(Open):
    order_no: str
    outcome: Literal["booked", "replayed", "rejected"]
    receipt: ReceiptOut | None = None
    error: dict[str, Any] | None = None


class LateBatchOut(BaseModel):
    results: list[LateResultOut]
    booked: int
    replayed: int
    rejected: int
    with_exceptions: int


class IdentifyOut(Open):
    member: dict[str, Any]
    store_id: int
    points: dict[str, int]
    growth: dict[str, Any]
    tier_progress: dict[str, Any] | None
    coupons: list[dict[str, Any]]


class CouponIssueIn(Strict):
    template: RuleId
    source_ref: Annotated[str, StringConstraints(max_length=120), SINGLE_LINE] | None = None


class CouponOut(Open):
    id: int
    template: str
    state: str
    issued_at: datetime
    valid_from: datetime | None
    expires_at: datetime | None
    order_id: int | None
