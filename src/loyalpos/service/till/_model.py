"""What the till sends and gets back: the requests of identify, quote and confirm,
the priced cart, and a quote's JSON. Shared by the checkout modules."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from loyalpos.domain.errors import Conflict
from loyalpos.domain.pricing import model as m
from loyalpos.rules.simulate import quote_json
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.loyalty.members import (
    Identity,
    Member,
)
from loyalpos.service.rulebook.rulesets import InForce

TENDER_METHODS = ("cash", "bank_card", "wechat", "alipay", "stored_value", "other")


@dataclass(frozen=True, slots=True)
class MemberRef:
    """Exactly one way of naming the member at the till."""

    member_id: int | None = None
    phone: str | None = None
    card_no: str | None = None
    code: str | None = None
    identity: Identity | None = None


@dataclass(frozen=True, slots=True)
class CartRequest:
    store_id: int
    lines: tuple[m.CartLine, ...]
    member: MemberRef | None = None
    options: m.Options = field(default_factory=m.Options)


@dataclass(frozen=True, slots=True)
class Tender:
    method: str
    amount: int
    reference: str | None = None


@dataclass(frozen=True, slots=True)
class ConfirmRequest:
    order_no: str
    cart: CartRequest
    tenders: tuple[Tender, ...]
    cashier: str
    terminal: str
    coupon_ids: tuple[int, ...] = ()
    points: int = 0
    payer: Identity | None = None
    quote_token: str | None = None
    # The order's own time (offline orders uploaded later); default: now.
    ordered_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class StoreRow:
    id: int
    code: str
    name: str
    zone: ZoneInfo


@dataclass(frozen=True, slots=True)
class Priced:
    """A quote and what it was computed from."""

    store: StoreRow
    member: Member | None
    rules: InForce
    quote: m.Quote
    points_available: int
    usable: tuple[wallet.Coupon, ...]


@dataclass(frozen=True, slots=True)
class QuoteResult:
    priced: Priced
    token: str | None
    expires_at: datetime | None

    def as_json(self) -> dict[str, Any]:
        return {
            **priced_json(self.priced),
            "quote_token": self.token,
            "reserved_until": self.expires_at.isoformat() if self.expires_at else None,
        }


@dataclass(frozen=True, slots=True)
class Confirmed:
    """The answer to a confirm: the receipt, and whether it was a replay."""

    receipt: dict[str, Any]
    replayed: bool


class PriceChanged(Conflict):
    """What the POS asked to book is not what the rules give now: nothing booked."""

    code = "price_changed"


def priced_json(p: Priced) -> dict[str, Any]:
    member = p.member
    body: dict[str, Any] = {
        "store_id": p.store.id,
        "rule_version": p.rules.version,
        "member": None,
        **quote_json(p.quote),
    }
    if member is not None:
        body["member"] = {
            "id": member.id,
            "name": member.name,
            "tier": member.tier,
            "points_available": p.points_available,
        }
    return body
