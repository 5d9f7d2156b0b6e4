"""The bodies of the till's routes: identify, quote, confirm, refund, late orders
(补单), held carts (挂单) and the reconciliation of a store day (对账). Money is
integer 分 (fields end in `_fen`)."""

from __future__ import annotations

import datetime as dt
from datetime import date, datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictBool, StringConstraints

from loyalpos import integers as whole
from loyalpos.api.fields import (
    SINGLE_LINE,
    TEXT,
    CardNo,
    Code,
    DbId,
    IsoDate,
    IsoDateTime,
    MemberCode,
    OrderNo,
    Phone,
    QuoteToken,
)
from loyalpos.api.loyalty.schemas import IdentityIn, PointsRuleOut
from loyalpos.api.models import Open, Strict
from loyalpos.domain.reconcile import MAX_COUNT, MAX_FEN, PosDay, PosOrder
from loyalpos.service.till import holds, till_events
from loyalpos.service.till.holds import REASON_LABELS, HoldReason
from loyalpos.service.till.till_events import TillEventKind

Staff = Code
# Money, quantities and points are JSON integers only (loyalpos/integers.py).
Fen = Annotated[int, whole.fen(ge=0, le=10_000_000_000)]
UnitPriceFen = Annotated[int, whole.fen(ge=0, le=100_000_000)]
Qty = Annotated[int, whole.count(ge=1, le=10_000)]
POINTS_USED = whole.points(ge=0, le=1_000_000_000)
PointsUsed = Annotated[int, POINTS_USED]


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
    unit_price_fen: UnitPriceFen
    qty: Qty


class OptionsIn(Strict):
    """Cashier overrides: points to use ("max", "none" or a number), coupons forced
    or excluded by id, or skip every benefit (暂不使用权益)."""

    points: Annotated[
        Literal["none", "max"] | int, whole.WordOrWhole(("none", "max"), POINTS_USED)
    ] = "none"
    strategy: Literal["max_saving", "earliest_expiry"] = "max_saving"
    force: Annotated[list[DbId], Field(max_length=20)] = []
    exclude: Annotated[list[DbId], Field(max_length=200)] = []
    skip_all: StrictBool = False


class CartIn(Strict):
    store_id: DbId
    member: MemberRefIn | None = None
    lines: Annotated[list[LineIn], Field(min_length=1, max_length=500)]
    options: OptionsIn = OptionsIn()


class QuoteIn(CartIn):
    reserve: StrictBool = Field(
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
    points: PointsUsed = Field(default=0, description="points redeemed, as quoted")
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
    line_no: Annotated[int, whole.count(ge=1, le=500)]
    qty: Qty


class RefundIn(Strict):
    refund_no: Code
    cashier: Staff
    terminal: Staff | None = Field(default=None, description="the till the refund is made at")
    lines: Annotated[list[RefundLineIn], Field(max_length=500)] = Field(
        default=[], description="empty: refund everything not yet refunded"
    )
    reason: Annotated[str, StringConstraints(max_length=200), TEXT] = ""


class RefundPreviewIn(RefundIn):
    refund_no: Code | None = Field(  # type: ignore[assignment]
        default=None,
        description="optional: with a number already booked, the preview is that refund's replay",
    )


class AppliedOut(Open):
    coupon_id: str | None
    benefit: str
    name: str = Field(description="the template's or promotion's name, to print (8折券)")
    kind: str
    saving_fen: int


class UnusableOut(Open):
    coupon_id: str
    template: str
    name: str = Field(description="the template's name")
    reason_code: str
    message: str = Field(description="中文, for the cashier: why, and what would make it usable")
    message_en: str
    detail: dict[str, Any] = {}


class ExplanationOut(Open):
    """One step of the quote's explanation, for the cashier and the customer."""

    code: str = Field(
        description="stable, for integrators: coupon_applied, promotion_applied, member_price, "
        "points_offset, change_rounding, points_earned, earn_<kind>, ... (docs/benefit-engine.md)"
    )
    zh: str = Field(description="简体中文, with the names from the rule set (8折券 省 64.00 元)")
    en: str = Field(description="English (8折券 saves ¥64.00)")
    detail: dict[str, Any]


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
    points_rules: list[PointsRuleOut]
    explanation: list[ExplanationOut]
    debug: dict[str, Any] = Field(
        description="for developers, not for the till: how the search went "
        "(combinations_evaluated; search_complete: false only when it stopped at its "
        "budget: a legal quote, maybe not the best); may change between versions"
    )
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
    points_rules: list[PointsRuleOut] = Field(
        default=[],
        description="the earning rules behind points_earned (for an order without a member, "
        "the points its claim_token carries)",
    )
    exceptions: list[dict[str, Any]]
    replayed: bool = False


class CouponReturnOut(Open):
    coupon_id: int
    template: str
    name: str
    policy: Literal["full_refund", "threshold_broken", "never"]
    returned: bool = Field(description="given back to the wallet by this refund")
    code: str = Field(
        description="returned_order_refunded, returned_threshold_broken, kept_threshold_met, "
        "kept_until_full_refund, kept_never_returned, kept_expired, already_returned"
    )
    message: str = Field(description="中文, to print on the refund receipt")
    message_en: str
    detail: dict[str, Any] = {}


class RefundOut(Open):
    refund_id: int
    refund_no: str
    order_no: str
    order_status: str
    cashier: str | None = Field(default=None, description="who made the refund (absent before 0.2)")
    terminal: str | None = Field(default=None, description="the till it was made at, if sent")
    amount_fen: int
    deduction_fen: int
    points_reversed: int
    points_returned: int
    coupons_returned: list[int]
    coupon_returns: list[CouponReturnOut] = Field(
        default=[],
        description="every coupon the order used: whether this refund gave it back, and why",
    )
    replayed: bool = False


class RefundPreviewOut(RefundOut):
    """What the refund would answer now; nothing is booked."""

    refund_id: int | None = Field(  # type: ignore[assignment]
        description="null: nothing was booked (a replay's own id)"
    )
    refund_no: str | None = Field(  # type: ignore[assignment]
        description="as sent; null when none was sent"
    )
    preview: Literal[True] = True


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


_REASONS_DOC = ", ".join(f"`{r.value}` {REASON_LABELS[r]}" for r in HoldReason)


Terminal = Code


ReasonCode = Literal["call", "more_items", "payment_issue", "customer_left", "other"]


class HoldIn(Strict):
    reason: ReasonCode = Field(description=f"why the cart is parked: {_REASONS_DOC}")
    note: Annotated[str, StringConstraints(max_length=500), TEXT] = ""
    member_id: DbId | None = Field(default=None, description="the member on the cart, if any")
    cashier: Terminal
    terminal: Terminal
    cart: dict[str, Any] = Field(
        description="the cart request as the POS would send it (lines, member reference, "
        "options/overrides, chosen coupons); stored as is and returned verbatim on resume; "
        f"at most {holds.MAX_PAYLOAD_BYTES} bytes of JSON"
    )


class HoldMemberPublic(BaseModel):
    id: int
    name: str
    phone: str = Field(description="masked, e.g. 138****5678")


class HoldPublic(BaseModel):
    id: int
    store_id: int
    member: HoldMemberPublic | None
    reason: str
    reason_label: str
    note: str
    cashier: str
    terminal: str
    status: Literal["held", "resumed", "cancelled", "expired"]
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None


class HoldDetail(HoldPublic):
    cart: dict[str, Any]


class HoldsPublic(BaseModel):
    data: list[HoldPublic]
    count: int


class ReasonCount(BaseModel):
    store_id: int
    store_code: str
    reason: str
    reason_label: str
    total: int
    held: int
    resumed: int
    cancelled: int
    expired: int


class HoldReport(BaseModel):
    date_from: date = Field(serialization_alias="from")
    date_to: date = Field(serialization_alias="to")
    data: list[ReasonCount]
    by_reason: dict[str, int]
    total: int


# Amounts as the POS recorded them for a store day (bounds of domain/reconcile.py).
PosFen = Annotated[int, whole.fen(ge=0, le=MAX_FEN)]


Method = Annotated[str, StringConstraints(min_length=1, max_length=32), SINGLE_LINE]


class PosOrderIn(Strict):
    order_no: Code
    amount_fen: PosFen


class ReconcileIn(Strict):
    """What the POS recorded for one store day. Amounts are integer fen paid at
    checkout (before refunds)."""

    date: IsoDate = Field(description="the store's local calendar day")
    order_count: Annotated[int, whole.count(ge=0, le=MAX_COUNT)]
    amount_fen: PosFen
    tenders: Annotated[dict[Method, PosFen], Field(max_length=64)] = Field(
        default_factory=dict, description='fen per tender method, e.g. {"wechat": 12800}'
    )
    orders: Annotated[list[PosOrderIn], Field(max_length=50_000)] | None = Field(
        default=None, description="optional: the POS's orders, compared one by one"
    )

    def pos_day(self) -> PosDay:
        listed = None
        if self.orders is not None:
            listed = tuple(PosOrder(o.order_no, o.amount_fen) for o in self.orders)
        return PosDay(self.order_count, self.amount_fen, dict(self.tenders), listed)


class Figures(BaseModel):
    order_count: int
    amount_fen: int


class TotalsOut(BaseModel):
    pos: Figures
    ours: Figures
    diff: Figures = Field(description="pos - ours")


class TenderOut(BaseModel):
    method: str
    pos_fen: int
    ours_fen: int
    diff_fen: int


class MatchedOut(BaseModel):
    order_no: str
    pos_fen: int
    ours_fen: int
    diff_fen: int
    late: bool


class PosOnlyOut(BaseModel):
    order_no: str
    amount_fen: int


class OursOnlyOut(BaseModel):
    order_no: str
    amount_fen: int
    late: bool


class OrdersOut(BaseModel):
    matched: list[MatchedOut] = Field(description="on both sides (diff 0 when amounts agree)")
    missing_here: list[PosOnlyOut] = Field(description="the POS has them, we do not")
    missing_at_pos: list[OursOnlyOut] = Field(
        description="we booked them, the POS does not list them"
    )
    amount_differences: list[MatchedOut] = Field(description="matched orders whose amounts differ")
    listed: Figures = Field(description="the sum of the POS's own list")
    list_matches_totals: bool


class Window(BaseModel):
    start: str
    end: str


class ReconciliationOut(BaseModel):
    store_id: int
    store_code: str
    date: dt.date
    timezone: str
    window: Window = Field(description="the local day as UTC instants [start, end)")
    status: Literal["balanced", "discrepancies"]
    totals: TotalsOut
    tenders: list[TenderOut]
    orders: OrdersOut | None = Field(description="null when the POS sent no order list")
    late_orders: int = Field(description="our orders of the day booked late (补单)")


# -- till events: the overrides a till makes, and their report ------------------------

_KINDS_DOC = ", ".join(f"`{k.value}` {till_events.KIND_LABELS[k]}" for k in TillEventKind)
TillEventKindCode = Literal[
    "identification_skipped", "manual_price", "benefits_declined", "coupon_switched"
]


class TillEventIn(Strict):
    kind: TillEventKindCode = Field(description=f"what the till overrode: {_KINDS_DOC}")
    staff_number: Staff = Field(description="the cashier's staff number (工号)")
    terminal: Terminal
    reason: Annotated[str, StringConstraints(max_length=till_events.MAX_REASON), TEXT] = Field(
        default="", description="why; required for `identification_skipped`"
    )
    order_no: Code | None = Field(default=None, description="the order it concerns, if any")
    detail: dict[str, Any] | None = Field(
        default=None,
        description="a small JSON object; for `manual_price`: `sku` (or `code`) and "
        f"`price_fen`; at most {till_events.MAX_DETAIL_BYTES} bytes",
    )


class TillEventOut(BaseModel):
    id: int
    store_id: int
    kind: TillEventKindCode
    kind_label: str
    staff_id: int | None = Field(description="the store's staff member with that number, if any")
    staff_number: str
    terminal: str
    order_no: str | None
    reason: str
    detail: dict[str, Any]
    created_at: datetime


class TillEventCount(BaseModel):
    store_id: int
    store_code: str
    kind: TillEventKindCode
    kind_label: str
    day: date = Field(description="the store's local day")
    count: int


class TillEventReport(BaseModel):
    date_from: date
    date_to: date
    data: list[TillEventCount]
    by_kind: dict[str, int]
    total: int
