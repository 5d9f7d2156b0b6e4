"""The bodies of the member, points and coupon-wallet routes: API shapes,
deliberately not the tables."""

from __future__ import annotations

from datetime import date, datetime
from typing import Annotated, Literal

from pydantic import BaseModel, Field, StringConstraints

from loyalpos import integers as whole
from loyalpos.api.fields import (
    SINGLE_LINE,
    TEXT,
    CardNo,
    DbId,
    IsoDate,
    MemberCode,
    Operator,
    Phone,
    RuleId,
    ShortText,
)
from loyalpos.api.models import Open, Strict

# Numbers in request bodies are JSON integers only (loyalpos/integers.py):
# "100", 100.0 and true are refused, not read as 100 and 1.
Points = Annotated[int, whole.points(gt=0, le=1_000_000_000)]
SignedPoints = Annotated[int, whole.points(ge=-1_000_000_000, le=1_000_000_000)]


class IdentityIn(Strict):
    provider: Literal["wechat", "alipay"]
    kind: Literal["openid", "unionid", "buyer_id"]
    value: Annotated[str, StringConstraints(min_length=1, max_length=128), SINGLE_LINE]


class MemberCreate(Strict):
    phone: Phone
    name: Annotated[str, StringConstraints(min_length=1, max_length=100), SINGLE_LINE]
    birthday: IsoDate | None = None
    referrer_id: DbId | None = None
    store_id: DbId | None = None
    identities: Annotated[list[IdentityIn], Field(max_length=10)] = []
    claim_token: Annotated[str, StringConstraints(max_length=32), SINGLE_LINE] | None = None


class MemberPublic(BaseModel):
    id: int
    phone: str = Field(description="masked, e.g. 138****5678")
    name: str
    birthday: date | None
    card_no: str
    tier: str
    points_balance: int
    referrer_id: int | None
    store_id: int | None
    created_at: datetime


class MemberLookup(Strict):
    """Exactly one key: phone, card_no, code (dynamic member code) or an identity."""

    phone: Phone | None = None
    card_no: CardNo | None = None
    code: MemberCode | None = None
    identity: IdentityIn | None = None


class MemberCodePublic(BaseModel):
    code: str
    expires_in: int


class ClaimIn(Strict):
    token: Annotated[str, StringConstraints(min_length=4, max_length=32), SINGLE_LINE]


class ClaimCreate(Strict):
    order_ref: ShortText
    points: Points
    store_id: DbId | None = None
    description: Annotated[str, StringConstraints(max_length=200), TEXT] = ""


class ClaimToken(BaseModel):
    token: str


class ClaimPublic(BaseModel):
    member_id: int
    points: int
    order_ref: str
    entry_id: int


class ExpiryLine(BaseModel):
    expires_on: date | None = Field(description="null: never lapses")
    points: int


class BalancePublic(BaseModel):
    member_id: int
    total: int
    available: int
    pending: int
    expiring: list[ExpiryLine]


class PointsRuleOut(BaseModel):
    """An earning rule or multiplier that produced the order's points; the
    `points` of an order's rules add up to its points earned."""

    rule: str = Field(description="the earning rule's id (a coupon's template id)")
    kind: str = Field(
        description="base, category_rate, exclude, tier_multiplier, time_multiplier, "
        "coupon_multiplier, threshold_bonus or first_order_bonus"
    )
    description: str
    factor: str | None = Field(
        description="exact, as text: points per 元 of a rate, or a multiplier (1.5, 1/3)"
    )
    points: int | None = Field(description="the points it gave (rates and bonuses)")
    paid_fen: int | None = Field(description="what the lines a rate priced paid")
    zh: str
    en: str


class EntryPublic(BaseModel):
    id: int
    member_id: int
    store_id: int | None
    kind: str
    points: int
    lot_id: int | None
    reverses_entry_id: int | None
    source_type: str
    source_ref: str | None
    description: str
    operator: str | None
    reason: str | None
    created_at: datetime
    points_rules: list[PointsRuleOut] | None = Field(
        default=None,
        description="an order's earn entry (and a refund's reversal of it): the earning rules "
        "that produced the order's points",
    )


class EntriesPublic(BaseModel):
    data: list[EntryPublic]
    count: int
    next_before_id: int | None


class PointsBooking(Strict):
    points: Points
    store_id: DbId | None = None
    source_ref: ShortText | None = None
    description: Annotated[str, StringConstraints(max_length=200), TEXT] = ""
    idempotency_key: ShortText | None = None


class PointsAdjust(Strict):
    points: SignedPoints
    operator: Operator
    reason: Annotated[str, StringConstraints(min_length=1, max_length=500), TEXT]
    expires_on: IsoDate | None = None
    store_id: DbId | None = None
    idempotency_key: ShortText | None = None


class Reversal(Strict):
    points: Points | None = None
    source_ref: ShortText | None = None
    operator: Operator | None = None
    reason: Annotated[str, StringConstraints(max_length=500), TEXT] | None = None
    store_id: DbId | None = None
    idempotency_key: ShortText | None = None


class ExpiryRunPublic(BaseModel):
    as_of: date
    lots: int
    points: int
    members: int


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
