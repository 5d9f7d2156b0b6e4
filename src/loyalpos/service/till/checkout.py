"""The till's use cases: identify, quote (optionally reserving), confirm payment.
This module is their one entry point (the till's face); the work lives in the
inner rooms `_model` (the requests), `_inputs` (what pricing reads), `_quoting`
(quotes and their holds) and `_booking` (confirm, late orders, receipts).

Confirm is the one that must never go wrong: it prices the cart again inside
one transaction that holds the member's row lock, books the order, its lines
with allocated discounts, the points spent and earned, the coupons used and the
outbox events together, and stores the answer so a repeated call with the same
order number replays it. If the benefits the POS chose are no longer there
(coupon used at another store, points spent meanwhile) or the price moved, it
books nothing and answers 409 with a fresh quote.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from loyalpos.domain.checkout import progress
from loyalpos.service.base.brands import cached_brand
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import coupons as wallet
from loyalpos.service.rulebook.rulesets import rules_at
from loyalpos.service.till._booking import confirm, get_order, late_batch
from loyalpos.service.till._inputs import (
    cached_store,
    find_member_with_state,
    reading_connection,
    tiers_of,
)
from loyalpos.service.till._model import (
    CartRequest,
    Confirmed,
    ConfirmRequest,
    MemberRef,
    PriceChanged,
    QuoteResult,
    Tender,
)
from loyalpos.service.till._quoting import quote, quote_with_rules, release


def identify(
    ctx: Context, brand_id: int, store_id: int, ref: MemberRef, *, now: datetime | None = None
) -> dict[str, Any]:
    """Who is at the till: member, tier, points, usable coupons, tier progress."""
    at = ctx.now(now)
    with reading_connection(ctx) as conn:
        brand = cached_brand(ctx, conn, brand_id)
        store = cached_store(conn, ctx, brand, store_id)
        member, state = find_member_with_state(conn, ctx, brand, ref, at)
        doc = rules_at(conn, ctx, brand_id, at).document
        usable = [c for c in wallet.open_coupons(conn, member.id, at) if c.usable_by(None, at)]
    names = {c.id: c.name or c.id for c in doc.coupons}
    tiers = tiers_of(doc)
    step = progress(tiers, state.spent)
    tier_names = {t.id: t.name for t in tiers}
    return {
        "member": {
            "id": member.id,
            "name": member.name,
            "phone": member.phone_masked,
            "card_no": member.card_no,
            "tier": member.tier,
            "tier_name": tier_names.get(member.tier, member.tier),
        },
        "store_id": store.id,
        "points": {
            "total": state.total,
            "available": max(0, state.spendable - state.held_elsewhere),
            "pending": state.pending,
            "reserved_elsewhere": state.held_elsewhere,
        },
        "growth": {
            "spent_fen": state.spent,
            "orders": state.orders_count,
            "last_order_at": state.last_order_at,
        },
        "tier_progress": None
        if step is None
        else {
            "next_tier": step.next_tier,
            "shortfall_fen": step.shortfall,
            "message": step.message_zh,
            "message_en": step.message_en,
        },
        "coupons": [
            {
                "id": c.id,
                "template": c.template,
                "name": names.get(c.template, c.template),
                "expires_at": c.expires_at,
                "valid_from": c.valid_from,
            }
            for c in usable
        ],
    }


@dataclass(frozen=True, slots=True)
class TillSettings:
    """The brand's checkout settings in force (rules `checkout`, docs/simulate.md):
    whether a member must be identified before payment, and the reasons a cashier
    may give for skipping that."""

    require_member: bool
    skip_reasons: tuple[str, ...]


def till_settings(ctx: Context, brand_id: int, *, now: datetime | None = None) -> TillSettings:
    """The checkout settings of the brand's rule set in force now (the defaults
    when none is published); NotFound for an unknown brand. Reads the published
    versions through the rules cache, as a quote does."""
    at = ctx.now(now)
    with reading_connection(ctx) as conn:
        cached_brand(ctx, conn, brand_id)
        doc = rules_at(conn, ctx, brand_id, at).document
    return TillSettings(doc.checkout.require_member, tuple(doc.checkout.skip_reasons))


__all__ = [
    "CartRequest",
    "ConfirmRequest",
    "Confirmed",
    "MemberRef",
    "PriceChanged",
    "QuoteResult",
    "Tender",
    "TillSettings",
    "confirm",
    "get_order",
    "identify",
    "late_batch",
    "quote",
    "quote_with_rules",
    "release",
    "till_settings",
]
