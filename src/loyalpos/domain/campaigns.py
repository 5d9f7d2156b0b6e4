"""Triggered campaigns (消费后触发): which campaigns an event sets off.

Pure decisions, no I/O: the service reads the rules and the event, asks here
which campaigns match and under which key each fires, and does the effects.

The firing key is what makes a campaign fire at most once: the service stores
(campaign, key) with a unique constraint before it acts, so a retried event, or
a second event about the same thing, finds it taken.

- order triggers (`spend`, `category`, `reactivated`): `order:{order_id}`
- `first_order`: `member:{member_id}` (once per member, whatever the order)
- `tier_upgrade`: `tier:{member_id}:{to}` (once per member and tier reached)

Refunds (each campaign's `on_refund`): an order trigger does not fire for an
order fully refunded before the worker came to it (`skips`), and when its order
is fully refunded later, what it gave and is still unused is taken back
(`revokes`, `plan_revocation`; points within what the member holds,
`ledger.reclaimable`). A tier upgrade is neither: a refund does not
lower the tier, so the gift for reaching it stands.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

SPEND = "spend"
CATEGORY = "category"
FIRST_ORDER = "first_order"
TIER_UPGRADE = "tier_upgrade"
REACTIVATED = "reactivated"
ORDER_TRIGGERS = frozenset({SPEND, CATEGORY, FIRST_ORDER, REACTIVATED})


@dataclass(frozen=True, slots=True)
class Campaign:
    """The matching part of a campaign rule (the actions stay with the service)."""

    id: str
    trigger: str
    min_paid_fen: int = 0
    category: str | None = None
    to_tier: str | None = None
    dormant_days: int = 90
    stores: tuple[str, ...] = ()  # store codes; empty: every store
    skip_if_refunded: bool = True
    revoke_unused: bool = True

    def in_store(self, store: str | None) -> bool:
        return not self.stores or (store is not None and store in self.stores)


@dataclass(frozen=True, slots=True)
class OrderFacts:
    """What an `order.paid` event says about the order."""

    order_id: int
    member_id: int | None
    store: str | None
    payable_fen: int
    categories: frozenset[str]
    first_order: bool
    ordered_at: datetime
    previous_order_at: datetime | None = None


@dataclass(frozen=True, slots=True)
class TierChange:
    """What a `tier.changed` event says; `store` is where the order was, if known."""

    member_id: int
    from_tier: str | None
    to_tier: str | None
    store: str | None = None


@dataclass(frozen=True, slots=True)
class Firing:
    campaign_id: str
    key: str


def _time(value: Any) -> datetime | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def order_facts(payload: Mapping[str, Any]) -> OrderFacts:
    """Read an `order.paid` payload (see service/till/_booking.py `_book`)."""
    ordered_at = _time(payload.get("ordered_at")) or _time(payload.get("at"))
    if ordered_at is None:
        raise ValueError("order.paid payload without ordered_at")
    member = payload.get("member_id")
    return OrderFacts(
        order_id=int(payload["order_id"]),
        member_id=int(member) if member is not None else None,
        store=payload.get("store"),
        payable_fen=int(payload.get("payable_fen") or 0),
        categories=frozenset(
            str(line["category"])
            for line in payload.get("lines") or ()
            if line.get("category") and int(line.get("qty") or 0) > 0
        ),
        first_order=bool(payload.get("first_order")),
        ordered_at=ordered_at,
        previous_order_at=_time(payload.get("previous_order_at")),
    )


def tier_change(payload: Mapping[str, Any], store: str | None = None) -> TierChange:
    """Read a `tier.changed` payload."""
    return TierChange(
        member_id=int(payload["member_id"]),
        from_tier=payload.get("from"),
        to_tier=payload.get("to"),
        store=store,
    )


def is_dormant_return(
    ordered_at: datetime, previous_order_at: datetime | None, dormant_days: int
) -> bool:
    """The member had bought before, and not for `dormant_days` until this order."""
    if previous_order_at is None:
        return False
    return ordered_at - previous_order_at >= timedelta(days=dormant_days)


def order_matches(campaign: Campaign, order: OrderFacts) -> bool:
    """Does `order` set off `campaign`? Anonymous orders never do. `min_paid_fen`
    is the spend threshold, and a floor for the other order triggers too."""
    if order.member_id is None or campaign.trigger not in ORDER_TRIGGERS:
        return False
    if not campaign.in_store(order.store) or order.payable_fen < campaign.min_paid_fen:
        return False
    if campaign.trigger == SPEND:
        return campaign.min_paid_fen > 0
    if campaign.trigger == CATEGORY:
        return campaign.category is not None and campaign.category in order.categories
    if campaign.trigger == FIRST_ORDER:
        return order.first_order
    # REACTIVATED
    return is_dormant_return(order.ordered_at, order.previous_order_at, campaign.dormant_days)


def order_key(campaign: Campaign, order: OrderFacts) -> str:
    if campaign.trigger == FIRST_ORDER:
        return f"member:{order.member_id}"
    return f"order:{order.order_id}"


def order_firings(campaigns: Iterable[Campaign], order: OrderFacts) -> list[Firing]:
    """The campaigns `order` sets off, in rule order, each with its firing key."""
    return [Firing(c.id, order_key(c, order)) for c in campaigns if order_matches(c, order)]


def is_upgrade(from_tier: str | None, to_tier: str | None, thresholds: Mapping[str, int]) -> bool:
    """A move to a tier with a higher `min_spent_fen`. A tier the rules no longer
    know counts as the lowest when left, and is never an upgrade when reached."""
    if to_tier is None or to_tier not in thresholds or from_tier == to_tier:
        return False
    if from_tier is None or from_tier not in thresholds:
        return True
    return thresholds[to_tier] > thresholds[from_tier]


def tier_matches(campaign: Campaign, change: TierChange, thresholds: Mapping[str, int]) -> bool:
    if campaign.trigger != TIER_UPGRADE or not campaign.in_store(change.store):
        return False
    if campaign.to_tier is not None and campaign.to_tier != change.to_tier:
        return False
    return is_upgrade(change.from_tier, change.to_tier, thresholds)


def tier_firings(
    campaigns: Sequence[Campaign], change: TierChange, thresholds: Mapping[str, int]
) -> list[Firing]:
    """The tier-upgrade campaigns `change` sets off, each with its firing key."""
    key = f"tier:{change.member_id}:{change.to_tier}"
    return [Firing(c.id, key) for c in campaigns if tier_matches(c, change, thresholds)]


# --- refunds ---------------------------------------------------------------------

# Coupon states in which a coupon is still unused (a till's quote may hold it
# locked for a few minutes; voiding it makes that till's confirm ask again).
UNUSED_COUPON_STATES = frozenset({"issued", "locked"})


def skips(campaign: Campaign, order_refunded: bool) -> bool:
    """Whether a matching order trigger is skipped because its order was fully
    refunded before the worker came to it."""
    return order_refunded and campaign.skip_if_refunded and campaign.trigger in ORDER_TRIGGERS


def revokes(campaign: Campaign) -> bool:
    """Whether a full refund of the order takes back what the firing gave."""
    return campaign.revoke_unused and campaign.trigger in ORDER_TRIGGERS


@dataclass(frozen=True, slots=True)
class Revocation:
    """What revoking a firing does: the coupons to void, those kept (with their
    state: used, expired, voided ...), the points to reverse, and the granted
    points left standing (the member no longer holds them)."""

    void: tuple[int, ...]
    kept: tuple[tuple[int, str], ...]
    points: int
    points_kept: int


def plan_revocation(
    coupon_states: Mapping[int, str], points_left: int, points_reclaimable: int
) -> Revocation:
    """Void the firing's coupons that are still unused, keep the others; reverse
    the points it granted that are not reversed yet (`points_left`) as far as
    they can be taken back now (`points_reclaimable`: see `ledger.reclaimable`)."""
    void = tuple(sorted(c for c, s in coupon_states.items() if s in UNUSED_COUPON_STATES))
    kept = tuple(sorted((c, s) for c, s in coupon_states.items() if s not in UNUSED_COUPON_STATES))
    left = max(points_left, 0)
    points = min(left, max(points_reclaimable, 0))
    return Revocation(void, kept, points, left - points)
