"""Triggered campaigns (消费后触发), run by the worker from the outbox.

`handle` is registered for `order.paid`, `tier.changed` and `order.refunded`
(`service/events/handlers.py`); the worker runs it inside the
transaction that marks the event processed. For `order.paid` and `tier.changed`
it evaluates every campaign of the rules in force at the order's time (the pure
matching is `domain/campaigns.py`) and, for each match:

1. claims the firing: inserts `campaign_firings (brand, campaign, key)` unless it
   is there already (unique; the member row is locked first, and the insert
   sits in a savepoint, so even a racing duplicate only skips);
2. does the actions: issue the coupon templates (source "campaign"), credit the
   points (available at once), tag the member; and records on the firing the
   coupons and the points entry it gave.

Claim and actions commit together with the event's mark, or not at all: a
worker that dies, or a hook that raises, leaves the event to be tried again,
and then the claims are simply made anew. A second event about the same thing
(another order of the member, a replayed tier change) finds the claim taken.

Refunds (each campaign's `on_refund`, order triggers only). An order fully
refunded before the worker came to its `order.paid` fires nothing: the firing
is recorded as `skipped`. For `order.refunded` that leaves the order fully
refunded, each firing of that order still `fired` is revoked: its unused
coupons voided, its points reversed within what the member holds (a negative
balance only where the brand allows it), and what was taken back recorded on
the firing, which becomes `revoked`. The refund and both handlers lock the
member first, so whichever of "fire" and "refund" comes second sees the other:
a firing that finds its order already refunded (and is not skipped) revokes at
once. The guarded status change (`fired` → `revoked`) makes it happen once.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum
from typing import Any

from sqlalchemy import Connection, func, insert, select, update
from sqlalchemy.exc import IntegrityError

from loyalpos.db import ledger_repo
from loyalpos.db.tables import (
    campaign_firings,
    inserted_id,
    member_tags,
    orders,
    refunds,
    stores,
)
from loyalpos.domain import campaigns as rules
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.domain.ledger import EntryKind
from loyalpos.rules.schema import CampaignDoc, RuleSetDoc
from loyalpos.service.base.brands import Brand, load_brand
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType, OutboxEvent
from loyalpos.service.events.handlers import on
from loyalpos.service.loyalty import coupons, members, points
from loyalpos.service.rulebook import rulesets

log = logging.getLogger(__name__)

SOURCE = "campaign"
REFUNDED = "refunded"  # orders.status of a fully refunded order


class FiringStatus(StrEnum):
    FIRED = "fired"
    SKIPPED = "skipped"  # its order was fully refunded before the worker came to it
    REVOKED = "revoked"  # its order was fully refunded afterwards; gifts taken back


def _rules(ctx: Context, conn: Connection, brand_id: int, when: datetime) -> RuleSetDoc:
    # The list of published versions is kept a few seconds for the till; here
    # exactness wins (an order priced by a version published just now must
    # fire that version's campaigns), and one small query per event is cheap.
    ctx.forget(("published", brand_id))
    return rulesets.rules_at(conn, ctx, brand_id, when).document


def campaign_of(doc: CampaignDoc) -> rules.Campaign:
    return rules.Campaign(
        id=doc.id,
        trigger=doc.trigger,
        min_paid_fen=doc.min_paid_fen,
        category=doc.category,
        to_tier=doc.to_tier,
        dormant_days=doc.dormant_days,
        stores=tuple(doc.stores),
        skip_if_refunded=doc.refund_policy.skip_if_refunded,
        revoke_unused=doc.refund_policy.revoke_unused,
    )


@dataclass(frozen=True, slots=True)
class Fired:
    campaign: str
    key: str
    member_id: int
    coupons: tuple[int, ...]
    points: int
    tag: str | None
    points_entry: int | None = None


@on(EventType.ORDER_PAID, EventType.TIER_CHANGED, EventType.ORDER_REFUNDED)
def handle(ctx: Context, conn: Connection, event: OutboxEvent, now: datetime) -> None:
    """Worker hook: fire the campaigns `event` sets off, or take back what they
    gave when their order is fully refunded (other events are ignored)."""
    if event.event_type == EventType.ORDER_PAID.value:
        on_order_paid(ctx, conn, event.brand_id, event.payload, now)
    elif event.event_type == EventType.TIER_CHANGED.value:
        on_tier_changed(ctx, conn, event.brand_id, event.payload, now)
    elif event.event_type == EventType.ORDER_REFUNDED.value:
        on_order_refunded(ctx, conn, event.brand_id, event.payload, now)


def on_order_paid(
    ctx: Context, conn: Connection, brand_id: int, payload: dict[str, Any], now: datetime
) -> list[Fired]:
    order = rules.order_facts(payload)
    if order.member_id is None:
        return []
    doc = _rules(ctx, conn, brand_id, order.ordered_at)
    if not doc.campaigns:
        return []
    firings = rules.order_firings([campaign_of(c) for c in doc.campaigns], order)
    store_id = payload.get("store_id")
    return _fire_all(
        conn, brand_id, doc, firings, order.member_id, store_id, now, order_id=order.order_id
    )


def on_tier_changed(
    ctx: Context, conn: Connection, brand_id: int, payload: dict[str, Any], now: datetime
) -> list[Fired]:
    order_id = payload.get("order_id")
    found = None
    if order_id is not None:
        found = conn.execute(
            select(orders.c.ordered_at, orders.c.store_id, stores.c.code)
            .join(stores, stores.c.id == orders.c.store_id)
            .where(orders.c.id == int(order_id), orders.c.brand_id == brand_id)
        ).first()
    when = found.ordered_at if found is not None else datetime.fromisoformat(payload["at"])
    change = rules.tier_change(payload, found.code if found is not None else None)
    doc = _rules(ctx, conn, brand_id, when)
    if not doc.campaigns:
        return []
    thresholds = {t.id: t.min_spent_fen for t in doc.tiers}
    firings = rules.tier_firings([campaign_of(c) for c in doc.campaigns], change, thresholds)
    store_id = found.store_id if found is not None else None
    return _fire_all(conn, brand_id, doc, firings, change.member_id, store_id, now)


def _fire_all(
    conn: Connection,
    brand_id: int,
    doc: RuleSetDoc,
    firings: list[rules.Firing],
    member_id: int,
    store_id: int | None,
    now: datetime,
    *,
    order_id: int | None = None,
) -> list[Fired]:
    """Claim and act on each firing. `order_id`: the order of order triggers,
    recorded on the firing and checked for a full refund (after the member's
    lock, which the refund takes too, so a refund is either seen here or sees
    this firing)."""
    if not firings:
        return []
    # Serialise with checkouts, refunds and other events of the member.
    if ledger_repo.lock_member(conn, brand_id, member_id) is None:
        log.warning("campaigns: member %s of brand %s is gone; nothing fired", member_id, brand_id)
        return []
    brand = load_brand(conn, brand_id)
    by_id = {c.id: c for c in doc.campaigns}
    refunded = _full_refund(conn, brand_id, order_id) if order_id is not None else None
    done = []
    for firing in firings:
        campaign = by_id[firing.campaign_id]
        policy = campaign_of(campaign)
        if refunded is not None and rules.skips(policy, True):
            skipped = _claim(
                conn,
                brand_id,
                campaign.id,
                firing.key,
                member_id,
                now,
                order_id=order_id,
                status=FiringStatus.SKIPPED,
                detail={"reason": "order_refunded", "refund_id": refunded.refund_id},
            )
            if skipped is not None:
                log.info(
                    "campaign %s skipped (%s): order %s was fully refunded before it fired",
                    campaign.id,
                    firing.key,
                    order_id,
                )
            continue
        firing_id = _claim(
            conn, brand_id, campaign.id, firing.key, member_id, now, order_id=order_id
        )
        if firing_id is None:
            continue
        fired = _act(conn, brand, doc, campaign, firing.key, member_id, store_id, now)
        conn.execute(
            update(campaign_firings)
            .where(campaign_firings.c.id == firing_id)
            .values(coupon_ids=json.dumps(list(fired.coupons)), points_entry_id=fired.points_entry)
        )
        done.append(fired)
        if refunded is not None and rules.revokes(policy):
            _revoke(conn, brand, campaign, firing_id, refunded, now)
    return done


def _claim(
    conn: Connection,
    brand_id: int,
    campaign: str,
    key: str,
    member_id: int,
    now: datetime,
    *,
    order_id: int | None = None,
    status: FiringStatus = FiringStatus.FIRED,
    detail: dict[str, Any] | None = None,
) -> int | None:
    """Record the firing and return its id; None when it was recorded before
    (then do nothing)."""
    f = campaign_firings
    taken = conn.execute(
        select(f.c.id).where(
            f.c.brand_id == brand_id, f.c.campaign == campaign, f.c.event_key == key
        )
    ).first()
    if taken is not None:
        return None
    try:
        with conn.begin_nested():
            return inserted_id(
                conn.execute(
                    insert(f).values(
                        brand_id=brand_id,
                        campaign=campaign,
                        event_key=key,
                        member_id=member_id,
                        created_at=now,
                        status=status.value,
                        order_id=order_id,
                        detail=None if detail is None else json.dumps(detail, ensure_ascii=False),
                    )
                )
            )
    except IntegrityError:
        return None


def _act(
    conn: Connection,
    brand: Brand,
    doc: RuleSetDoc,
    campaign: CampaignDoc,
    key: str,
    member_id: int,
    store_id: int | None,
    now: datetime,
) -> Fired:
    label = campaign.name or campaign.id
    issued = []
    for template_id in campaign.issue:
        try:
            template = coupons.template_of(doc, template_id)
            issued.append(
                coupons.issue(
                    conn,
                    brand.id,
                    member_id,
                    template,
                    now,
                    brand.zone,
                    source_type=SOURCE,
                    source_ref=campaign.id,
                )
            )
        except (InvalidInput, NotFound) as exc:
            # A template past its validity cannot be issued; retrying would not
            # help, and must not hold back the other actions or the queue.
            log.warning(
                "campaign %s (%s): coupon %s not issued to member %s: %s",
                campaign.id,
                key,
                template_id,
                member_id,
                exc,
            )
    entry_id = None
    if campaign.points:
        entry_id = points.credit(
            conn,
            brand,
            member_id,
            campaign.points,
            EntryKind.EARN,
            points.Source(
                SOURCE,
                campaign.id,
                f"活动 {label} 赠送积分 (campaign {campaign.id} bonus points)",
                store_id=store_id,
            ),
            now,
            pending=False,
        )
        points.announce_entry(conn, brand.id, entry_id)
    if campaign.tag:
        add_tag(conn, brand.id, member_id, campaign.tag, f"{SOURCE}:{campaign.id}", now)
    log.info("campaign %s fired (%s) for member %s", campaign.id, key, member_id)
    return Fired(
        campaign.id, key, member_id, tuple(issued), campaign.points, campaign.tag, entry_id
    )


# --- refunds ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Refunded:
    """A fully refunded order, as a revocation needs it."""

    order_id: int
    order_no: str
    store_id: int
    ordered_at: datetime
    refund_id: int | None  # the refund that completed it


def _full_refund(conn: Connection, brand_id: int, order_id: int) -> _Refunded | None:
    """The order if it is fully refunded now, else None."""
    row = conn.execute(
        select(orders.c.order_no, orders.c.store_id, orders.c.ordered_at, orders.c.status).where(
            orders.c.id == order_id, orders.c.brand_id == brand_id
        )
    ).first()
    if row is None or row.status != REFUNDED:
        return None
    last = conn.execute(
        select(func.max(refunds.c.id)).where(
            refunds.c.order_id == order_id, refunds.c.brand_id == brand_id
        )
    ).scalar_one()
    return _Refunded(order_id, row.order_no, row.store_id, row.ordered_at, last)


def on_order_refunded(
    ctx: Context, conn: Connection, brand_id: int, payload: dict[str, Any], now: datetime
) -> list[int]:
    """Revoke the firings of an order that is now fully refunded, per each
    campaign's `on_refund`; returns the ids of the firings revoked. A refund of
    an order that fired nothing costs one indexed read."""
    order_id = payload.get("order_id")
    if order_id is None:
        return []
    f = campaign_firings
    open_firings = (
        select(f.c.id, f.c.campaign, f.c.member_id)
        .where(
            f.c.brand_id == brand_id,
            f.c.order_id == int(order_id),
            f.c.status == FiringStatus.FIRED.value,
        )
        .order_by(f.c.id)
    )
    found = conn.execute(open_firings).all()
    if not found:
        return []
    for member_id in sorted({r.member_id for r in found if r.member_id is not None}):
        ledger_repo.lock_member(conn, brand_id, member_id)
    refunded = _full_refund(conn, brand_id, int(order_id))
    if refunded is None:
        return []  # a partial refund: the firings stand
    brand = load_brand(conn, brand_id)
    by_id = {c.id: c for c in _rules(ctx, conn, brand_id, refunded.ordered_at).campaigns}
    done = []
    for row in conn.execute(open_firings).all():  # again, under the member's lock
        campaign = by_id.get(row.campaign)
        if campaign is None or not rules.revokes(campaign_of(campaign)):
            continue
        if _revoke(conn, brand, campaign, row.id, refunded, now):
            done.append(int(row.id))
    return done


def _revoke(
    conn: Connection,
    brand: Brand,
    campaign: CampaignDoc,
    firing_id: int,
    refunded: _Refunded,
    now: datetime,
) -> bool:
    """Take back what a firing gave and is still unused, once (the status moves
    from fired to revoked under a guard), and record what was taken back."""
    f = campaign_firings
    claimed = conn.execute(
        update(f)
        .where(f.c.id == firing_id, f.c.status == FiringStatus.FIRED.value)
        .values(status=FiringStatus.REVOKED.value, revoked_at=now)
    ).rowcount
    if claimed != 1:
        return False
    firing = conn.execute(
        select(f.c.member_id, f.c.coupon_ids, f.c.points_entry_id).where(f.c.id == firing_id)
    ).one()
    given = [int(c) for c in json.loads(firing.coupon_ids or "[]")]
    entry = (
        ledger_repo.entry(conn, brand.id, firing.points_entry_id)
        if firing.points_entry_id is not None
        else None
    )
    left = entry.points - ledger_repo.reversed_points(conn, entry.id) if entry else 0
    states = {c.id: c.state.value for c in coupons.by_ids(conn, brand.id, given).values()}
    plan = rules.plan_revocation(
        states, left, points.reversible(conn, brand, entry.member_id, left) if entry else 0
    )
    label = campaign.name or campaign.id
    why = (
        f"活动 {label} 撤销: 订单 {refunded.order_no} 已全额退款 "
        f"(campaign {campaign.id} revoked: order {refunded.order_no} fully refunded)"
    )
    voided = coupons.void(
        conn,
        brand.id,
        plan.void,
        now,
        detail=why,
        order_id=refunded.order_id,
        refund_id=refunded.refund_id,
    )
    after = {c.id: c.state.value for c in coupons.by_ids(conn, brand.id, given).values()}
    if entry is not None and plan.points:
        reversal = points.reverse_entry(
            conn,
            brand,
            entry,
            plan.points,
            points.Source(SOURCE, campaign.id, why, store_id=refunded.store_id),
            now,
            allow_negative=True,
        )
        points.announce_entry(conn, brand.id, reversal)
    detail = {
        "reason": "order_refunded",
        "refund_id": refunded.refund_id,
        "coupons_voided": voided,
        "coupons_kept": [
            {"coupon_id": c, "state": after.get(c, "unknown")} for c in given if c not in voided
        ],
        "points_reversed": plan.points,
        "points_kept": plan.points_kept,
        "tag_kept": campaign.tag,
    }
    conn.execute(
        update(f).where(f.c.id == firing_id).values(detail=json.dumps(detail, ensure_ascii=False))
    )
    log.info(
        "campaign %s revoked for order %s: coupons %s voided, %s points reversed",
        campaign.id,
        refunded.order_id,
        voided,
        plan.points,
    )
    return True


def add_tag(
    conn: Connection, brand_id: int, member_id: int, tag: str, source: str, now: datetime
) -> bool:
    """Tag the member unless the tag is there already; True when added."""
    t = member_tags
    if conn.execute(select(t.c.id).where(t.c.member_id == member_id, t.c.tag == tag)).first():
        return False
    try:
        with conn.begin_nested():
            conn.execute(
                insert(t).values(
                    brand_id=brand_id, member_id=member_id, tag=tag, source=source, created_at=now
                )
            )
    except IntegrityError:
        return False
    return True


# --- reading ---------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class MemberTag:
    tag: str
    source: str
    created_at: datetime


@dataclass(frozen=True, slots=True)
class Firing:
    id: int
    campaign: str
    event_key: str
    member_id: int | None
    created_at: datetime
    status: str = FiringStatus.FIRED.value
    order_id: int | None = None
    coupons: tuple[int, ...] = ()  # what it issued
    points_entry_id: int | None = None  # the points it credited
    detail: dict[str, Any] | None = None  # why skipped, or what was revoked
    revoked_at: datetime | None = None


def firing_from_row(row: Any) -> Firing:
    return Firing(
        row.id,
        row.campaign,
        row.event_key,
        row.member_id,
        row.created_at,
        row.status,
        row.order_id,
        tuple(int(c) for c in json.loads(row.coupon_ids or "[]")),
        row.points_entry_id,
        json.loads(row.detail) if row.detail else None,
        row.revoked_at,
    )


def tags(ctx: Context, brand_id: int, member_id: int) -> list[MemberTag]:
    """A member's tags, oldest first; NotFound for a member of another brand."""
    members.get(ctx, brand_id, member_id)
    t = member_tags
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(t.c.tag, t.c.source, t.c.created_at)
            .where(t.c.brand_id == brand_id, t.c.member_id == member_id)
            .order_by(t.c.created_at, t.c.id)
        )
        return [MemberTag(r.tag, r.source, r.created_at) for r in rows]


def firings(
    ctx: Context,
    brand_id: int,
    *,
    campaign: str | None = None,
    member_id: int | None = None,
    before_id: int | None = None,
    limit: int = 100,
) -> tuple[list[Firing], int]:
    """Firings of the brand, newest first (page with `before_id`), and how many
    match the filters in all. A `member_id` of another brand (or of none) is
    NotFound, as everywhere, rather than an empty page."""
    f = campaign_firings
    where = [f.c.brand_id == brand_id]
    if campaign is not None:
        where.append(f.c.campaign == campaign)
    if member_id is not None:
        where.append(f.c.member_id == member_id)
    with ctx.transaction(read_only=True) as conn:
        if member_id is not None:
            members.load_member(conn, brand_id, member_id)
        total = int(conn.execute(select(func.count()).select_from(f).where(*where)).scalar_one())
        page = list(where)
        if before_id is not None:
            page.append(f.c.id < before_id)
        rows = conn.execute(select(f).where(*page).order_by(f.c.id.desc()).limit(limit))
        found = [firing_from_row(r) for r in rows]
    return found, total


def campaign_names(ctx: Context, brand_id: int, *, now: datetime | None = None) -> dict[str, str]:
    """Campaign id -> its name in the rules in force (an id no longer there: absent)."""
    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        doc = rulesets.rules_at(conn, ctx, brand_id, at).document
    return {c.id: c.name or c.id for c in doc.campaigns}
