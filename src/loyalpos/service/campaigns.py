"""Triggered campaigns (消费后触发), run by the worker from the outbox.

`handle` is a worker hook (`service/worker.py` `HANDLERS`): it runs inside the
transaction that marks the event processed. For `order.paid` and `tier.changed`
it evaluates every campaign of the rules in force at the order's time (the pure
matching is `domain/campaigns.py`) and, for each match:

1. claims the firing: inserts `campaign_firings (brand, campaign, key)` unless it
   is there already (unique; the member row is locked first, and the insert
   sits in a savepoint, so even a racing duplicate only skips);
2. does the actions: issue the coupon templates (source "campaign"), credit the
   points (available at once), tag the member.

Claim and actions commit together with the event's mark, or not at all: a
worker that dies, or a hook that raises, leaves the event to be tried again,
and then the claims are simply made anew. A second event about the same thing
(another order of the member, a replayed tier change) finds the claim taken.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import Connection, func, insert, select
from sqlalchemy.exc import IntegrityError

from loyalpos.db import ledger_repo
from loyalpos.db.tables import campaign_firings, member_tags, orders, stores
from loyalpos.domain import campaigns as rules
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.domain.ledger import EntryKind
from loyalpos.rules.schema import CampaignDoc, RuleSetDoc
from loyalpos.service import coupons, members, points, rulesets
from loyalpos.service.brands import Brand, load_brand
from loyalpos.service.context import Context
from loyalpos.service.outbox import EventType

if TYPE_CHECKING:
    from loyalpos.service.worker import OutboxEvent

log = logging.getLogger(__name__)

SOURCE = "campaign"


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
    )


@dataclass(frozen=True, slots=True)
class Fired:
    campaign: str
    key: str
    member_id: int
    coupons: tuple[int, ...]
    points: int
    tag: str | None


def handle(ctx: Context, conn: Connection, event: OutboxEvent, now: datetime) -> None:
    """Worker hook: fire the campaigns `event` sets off (others are ignored)."""
    if event.event_type == EventType.ORDER_PAID.value:
        on_order_paid(ctx, conn, event.brand_id, event.payload, now)
    elif event.event_type == EventType.TIER_CHANGED.value:
        on_tier_changed(ctx, conn, event.brand_id, event.payload, now)


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
    return _fire_all(conn, brand_id, doc, firings, order.member_id, store_id, now)


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
) -> list[Fired]:
    if not firings:
        return []
    # Serialise with checkouts and other events of the member (points need it anyway).
    if ledger_repo.lock_member(conn, brand_id, member_id) is None:
        log.warning("campaigns: member %s of brand %s is gone; nothing fired", member_id, brand_id)
        return []
    brand = load_brand(conn, brand_id)
    by_id = {c.id: c for c in doc.campaigns}
    done = []
    for firing in firings:
        campaign = by_id[firing.campaign_id]
        if _claim(conn, brand_id, campaign.id, firing.key, member_id, now):
            done.append(_act(conn, brand, doc, campaign, firing.key, member_id, store_id, now))
    return done


def _claim(
    conn: Connection, brand_id: int, campaign: str, key: str, member_id: int, now: datetime
) -> bool:
    """Record the firing; False when it was recorded before (then do nothing)."""
    f = campaign_firings
    taken = conn.execute(
        select(f.c.id).where(
            f.c.brand_id == brand_id, f.c.campaign == campaign, f.c.event_key == key
        )
    ).first()
    if taken is not None:
        return False
    try:
        with conn.begin_nested():
            conn.execute(
                insert(f).values(
                    brand_id=brand_id,
                    campaign=campaign,
                    event_key=key,
                    member_id=member_id,
                    created_at=now,
                )
            )
    except IntegrityError:
        return False
    return True


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
    return Fired(campaign.id, key, member_id, tuple(issued), campaign.points, campaign.tag)


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
        found = [Firing(r.id, r.campaign, r.event_key, r.member_id, r.created_at) for r in rows]
    return found, total
