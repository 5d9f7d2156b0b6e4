"""Coupon instances in members' wallets (券包) and their life cycle.

States: issued → locked (a quote reserved it for a few minutes) → used (an order
redeemed it) → issued again when a refund returns it; expired and voided end
it. Every change is a `coupon_events` row, so a coupon's history is complete.
Guarded updates (`WHERE state = ...`) make "never used twice" hold under
concurrency: of two tills racing for one coupon, one update finds nothing.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, bindparam, false, func, insert, or_, select, update

from loyalpos.db.engine import write_many
from loyalpos.db.tables import coupon_events, coupons, inserted_id
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.domain.pricing.model import Usage, WalletCoupon
from loyalpos.rules.schema import BenefitDoc, RuleSetDoc
from loyalpos.service.base.brands import load_brand
from loyalpos.service.base.context import Context
from loyalpos.service.base.outbox import EventType, emit


class State(StrEnum):
    ISSUED = "issued"
    LOCKED = "locked"
    USED = "used"
    RETURNED = "returned"
    EXPIRED = "expired"
    VOIDED = "voided"


@dataclass(frozen=True, slots=True)
class Coupon:
    id: int
    brand_id: int
    member_id: int
    template: str
    state: State
    issued_at: datetime
    valid_from: datetime | None
    expires_at: datetime | None
    source_type: str
    source_ref: str | None
    order_id: int | None
    used_at: datetime | None
    reservation_id: int | None
    locked_until: datetime | None

    def usable_by(self, reservation_id: int | None, now: datetime) -> bool:
        """Free to use now: issued, or locked by this reservation, or its lock ran out."""
        if self.expires_at is not None and self.expires_at <= now:
            return False
        if self.state is State.ISSUED:
            return True
        return self.state is State.LOCKED and (
            (reservation_id is not None and self.reservation_id == reservation_id)
            or (self.locked_until is not None and self.locked_until <= now)
        )


def _coupon(row: Any) -> Coupon:
    return Coupon(
        row.id,
        row.brand_id,
        row.member_id,
        row.template,
        State(row.state),
        row.issued_at,
        row.valid_from,
        row.expires_at,
        row.source_type,
        row.source_ref,
        row.order_id,
        row.used_at,
        row.reservation_id,
        row.locked_until,
    )


_INSERT_EVENT = insert(coupon_events).inline()


def record(
    conn: Connection,
    brand_id: int,
    coupon_id: int,
    event: str,
    now: datetime,
    *,
    order_id: int | None = None,
    refund_id: int | None = None,
    store_id: int | None = None,
    detail: str = "",
) -> None:
    write_many(
        conn,
        _INSERT_EVENT,
        [
            {
                "brand_id": brand_id,
                "coupon_id": coupon_id,
                "event": event,
                "order_id": order_id,
                "refund_id": refund_id,
                "store_id": store_id,
                "detail": detail,
                "created_at": now,
            }
        ],
    )


def _aware(value: datetime | None, zone: ZoneInfo) -> datetime | None:
    """Template times are wall-clock times of the brand unless they carry an offset."""
    if value is None:
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=zone)


def template_of(doc: RuleSetDoc, template: str) -> BenefitDoc:
    found = next((c for c in doc.coupons if c.id == template), None)
    if found is None:
        raise NotFound(
            f"券模板 {template} 不存在 (no coupon template {template} in the rules in force)",
            code="template_not_found",
            template=template,
        )
    return found


def issue(
    conn: Connection,
    brand_id: int,
    member_id: int,
    template: BenefitDoc,
    now: datetime,
    zone: ZoneInfo,
    *,
    source_type: str,
    source_ref: str | None = None,
) -> int:
    """Put one coupon of `template` into a wallet (发券) and announce it."""
    valid_from = _aware(template.valid_from, zone)
    expires_at = _aware(template.valid_to, zone)
    if template.valid_days is not None:
        by_days = now + timedelta(days=template.valid_days)
        expires_at = by_days if expires_at is None else min(expires_at, by_days)
    if expires_at is not None and expires_at <= now:
        raise InvalidInput(
            f"券模板 {template.id} 已过有效期 (template {template.id} is no longer valid)",
            code="template_expired",
            template=template.id,
        )
    coupon_id = inserted_id(
        conn.execute(
            insert(coupons).values(
                brand_id=brand_id,
                member_id=member_id,
                template=template.id,
                state=State.ISSUED.value,
                issued_at=now,
                valid_from=valid_from,
                expires_at=expires_at,
                source_type=source_type,
                source_ref=source_ref,
            )
        )
    )
    record(conn, brand_id, coupon_id, "issued", now, detail=source_ref or source_type)
    emit(
        conn,
        brand_id,
        EventType.COUPON_ISSUED,
        f"coupon:{coupon_id}",
        {
            "coupon_id": coupon_id,
            "member_id": member_id,
            "template": template.id,
            "source": source_type,
            "source_ref": source_ref,
            "expires_at": expires_at.isoformat() if expires_at else None,
        },
        now,
    )
    return coupon_id


# Built once: the till reads the wallet on every quote and member confirm, and
# building the statement cost more Python than running it.
_OPEN_COUPONS = (
    select(coupons)
    .where(
        coupons.c.member_id == bindparam("member_id"),
        coupons.c.state.in_([State.ISSUED.value, State.LOCKED.value]),
        or_(coupons.c.expires_at.is_(None), coupons.c.expires_at > bindparam("now")),
    )
    .order_by(coupons.c.id)
)


def open_coupons(conn: Connection, member_id: int, now: datetime) -> list[Coupon]:
    """Issued or locked coupons not past their expiry, in id order."""
    rows = conn.execute(_OPEN_COUPONS, {"member_id": member_id, "now": now})
    return [_coupon(r) for r in rows]


def wallet_for_engine(
    found: Sequence[Coupon], reservation_id: int | None, now: datetime, zone: ZoneInfo
) -> tuple[WalletCoupon, ...]:
    """The coupons this till may use, as the engine sees them (store-local times)."""

    def local(t: datetime | None) -> datetime | None:
        return t.astimezone(zone).replace(tzinfo=None) if t is not None else None

    return tuple(
        WalletCoupon(str(c.id), c.template, local(c.expires_at), local(c.valid_from))
        for c in found
        if c.usable_by(reservation_id, now)
    )


def usage(
    conn: Connection, member_id: int, local_now: datetime, zone: ZoneInfo
) -> dict[str, Usage]:
    """How many coupons of each template the member used today, this week, this month
    (store-local calendar), for the templates' per-member limits."""
    day_start = local_now.replace(hour=0, minute=0, second=0, microsecond=0)
    week_start = day_start - timedelta(days=day_start.weekday())
    month_start = day_start.replace(day=1)
    since = min(week_start, month_start).replace(tzinfo=zone)
    rows = conn.execute(
        select(coupons.c.template, coupons.c.used_at).where(
            coupons.c.member_id == member_id,
            coupons.c.state == State.USED.value,
            coupons.c.used_at >= since,
        )
    ).all()
    counts: dict[str, list[int]] = {}
    for template, used_at in rows:
        local = used_at.astimezone(zone).replace(tzinfo=None)
        c = counts.setdefault(template, [0, 0, 0])
        c[0] += local >= day_start
        c[1] += local >= week_start
        c[2] += local >= month_start
    return {t: Usage(d, w, m) for t, (d, w, m) in counts.items()}


def _take(
    conn: Connection,
    coupon_ids: Sequence[int],
    holder: int | None,
    now: datetime,
    **values: Any,
) -> bool:
    """Move coupons that are free for this till to a new state, all or none:
    False if any of them is no longer free (the caller's transaction rolls back)."""
    if not coupon_ids:
        return True
    changed = conn.execute(
        update(coupons).where(coupons.c.id.in_(coupon_ids), _free(holder, now)).values(**values)
    ).rowcount
    return changed == len(set(coupon_ids))


def lock(
    conn: Connection,
    coupon_ids: Sequence[int],
    reservation_id: int,
    until: datetime,
    now: datetime,
) -> bool:
    """Reserve coupons for a quote; False if another till holds one of them."""
    return _take(
        conn,
        coupon_ids,
        reservation_id,
        now,
        state=State.LOCKED.value,
        reservation_id=reservation_id,
        locked_until=until,
    )


def _free(reservation_id: int | None, now: datetime) -> Any:
    mine = coupons.c.reservation_id == reservation_id if reservation_id is not None else false()
    return and_(
        or_(coupons.c.expires_at.is_(None), coupons.c.expires_at > now),
        or_(
            coupons.c.state == State.ISSUED.value,
            and_(
                coupons.c.state == State.LOCKED.value,
                or_(mine, coupons.c.locked_until <= now),
            ),
        ),
    )


def unlock(conn: Connection, reservation_id: int) -> None:
    """Give back what a reservation held (confirm or cancel); reads no result, so
    it may run in `db.engine.deferred`."""
    write_many(conn, _UNLOCK, [{"held_by": reservation_id}])


_UNLOCK = (
    update(coupons)
    .where(
        # Not named "reservation_id": that name is the SET clause's own parameter.
        coupons.c.reservation_id == bindparam("held_by"),
        coupons.c.state == State.LOCKED.value,
    )
    .values(state=State.ISSUED.value, reservation_id=None, locked_until=None)
)


def redeem(
    conn: Connection,
    brand_id: int,
    coupon_ids: Sequence[int],
    order_id: int,
    store_id: int,
    reservation_id: int | None,
    now: datetime,
) -> bool:
    """Mark coupons used by an order (核销); False if any is no longer free."""
    taken = _take(
        conn,
        coupon_ids,
        reservation_id,
        now,
        state=State.USED.value,
        order_id=order_id,
        used_at=now,
        reservation_id=None,
        locked_until=None,
    )
    if not taken:
        return False
    for coupon_id in coupon_ids:
        record(conn, brand_id, coupon_id, "used", now, order_id=order_id, store_id=store_id)
    return True


def give_back(
    conn: Connection,
    brand_id: int,
    order_id: int,
    refund_id: int,
    store_id: int,
    now: datetime,
    only: Sequence[int] | None = None,
) -> list[int]:
    """Return an order's coupons that are still valid to the wallet (`only`
    those, when given: the refund's return policy chose them); the rest stay used."""
    conditions = [
        coupons.c.order_id == order_id,
        coupons.c.state == State.USED.value,
        or_(coupons.c.expires_at.is_(None), coupons.c.expires_at > now),
    ]
    if only is not None:
        if not only:
            return []
        conditions.append(coupons.c.id.in_(list(only)))
    rows = conn.execute(select(coupons.c.id).where(*conditions).order_by(coupons.c.id)).all()
    returned = [int(r.id) for r in rows]
    if returned:
        conn.execute(
            update(coupons)
            .where(coupons.c.id.in_(returned))
            .values(state=State.ISSUED.value, order_id=None, used_at=None)
        )
    for coupon_id in returned:
        record(
            conn,
            brand_id,
            coupon_id,
            "returned",
            now,
            order_id=order_id,
            refund_id=refund_id,
            store_id=store_id,
        )
    return returned


def void(
    conn: Connection,
    brand_id: int,
    coupon_ids: Sequence[int],
    now: datetime,
    *,
    detail: str,
    order_id: int | None = None,
    refund_id: int | None = None,
) -> list[int]:
    """Void the coupons of `coupon_ids` that are still unused (issued, or locked
    by a quote: that till's confirm then asks again), with a history entry that
    says why, and announce each; the others are left as they are. Returns the
    ids voided."""
    if not coupon_ids:
        return []
    done = conn.execute(
        update(coupons)
        .where(
            coupons.c.brand_id == brand_id,
            coupons.c.id.in_(coupon_ids),
            coupons.c.state.in_([State.ISSUED.value, State.LOCKED.value]),
        )
        .values(state=State.VOIDED.value, reservation_id=None, locked_until=None)
        .returning(coupons.c.id, coupons.c.member_id, coupons.c.template)
    ).all()
    for row in sorted(done):
        record(
            conn,
            brand_id,
            row.id,
            "voided",
            now,
            order_id=order_id,
            refund_id=refund_id,
            detail=detail,
        )
        emit(
            conn,
            brand_id,
            EventType.COUPON_VOIDED,
            f"coupon:{row.id}",
            {
                "coupon_id": row.id,
                "member_id": row.member_id,
                "template": row.template,
                "reason": detail,
                "order_id": order_id,
            },
            now,
        )
    return sorted(int(r.id) for r in done)


def by_ids(conn: Connection, brand_id: int, coupon_ids: Sequence[int]) -> dict[int, Coupon]:
    rows = conn.execute(
        select(coupons).where(coupons.c.brand_id == brand_id, coupons.c.id.in_(coupon_ids))
    )
    return {int(r.id): _coupon(r) for r in rows}


# --- use cases ---------------------------------------------------------------


def issue_to_member(
    ctx: Context,
    brand_id: int,
    member_id: int,
    template: str,
    *,
    source_ref: str | None = None,
    now: datetime | None = None,
) -> Coupon:
    """HQ issues a coupon of a template in the rules in force (手动发券)."""
    from loyalpos.service.loyalty.members import load_member
    from loyalpos.service.rulebook.rulesets import rules_at

    at = ctx.now(now)

    def run(conn: Connection) -> Coupon:
        brand = load_brand(conn, brand_id)
        load_member(conn, brand_id, member_id)
        doc = rules_at(conn, ctx, brand_id, at).document
        coupon_id = issue(
            conn,
            brand_id,
            member_id,
            template_of(doc, template),
            at,
            brand.zone,
            source_type="operator",
            source_ref=source_ref,
        )
        return _coupon(conn.execute(select(coupons).where(coupons.c.id == coupon_id)).one())

    return ctx.run(run)


def wallet(
    ctx: Context, brand_id: int, member_id: int, *, now: datetime | None = None
) -> list[Coupon]:
    """A member's open coupons (issued or locked), for the till and the member page."""
    from loyalpos.service.loyalty.members import load_member

    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        load_member(conn, brand_id, member_id)
        return open_coupons(conn, member_id, at)


def history(ctx: Context, brand_id: int, coupon_id: int) -> list[dict[str, Any]]:
    with ctx.transaction(read_only=True) as conn:
        if not by_ids(conn, brand_id, [coupon_id]):
            raise NotFound("券不存在 (coupon not found)", code="coupon_not_found")
        rows = conn.execute(
            select(coupon_events)
            .where(coupon_events.c.coupon_id == coupon_id)
            .order_by(coupon_events.c.id)
        )
        return [
            {
                "event": r.event,
                "order_id": r.order_id,
                "refund_id": r.refund_id,
                "store_id": r.store_id,
                "detail": r.detail,
                "at": r.created_at,
            }
            for r in rows
        ]


def count_by_state(conn: Connection, member_id: int) -> dict[str, int]:
    rows = conn.execute(
        select(coupons.c.state, func.count())
        .where(coupons.c.member_id == member_id)
        .group_by(coupons.c.state)
    )
    return {str(s): int(n) for s, n in rows}


def expire_coupons(
    ctx: Context, *, brand_id: int | None = None, now: datetime | None = None
) -> int:
    """Mark coupons past their expiry as expired, with an event each; idempotent.

    Expired coupons were already unusable (every read checks `expires_at`); the
    job makes the state say so, for the wallet, reports and history.
    """
    at = ctx.now(now)

    def run(conn: Connection) -> int:
        due = and_(
            coupons.c.state.in_([State.ISSUED.value, State.LOCKED.value]),
            coupons.c.expires_at <= at,
        )
        if brand_id is not None:
            due = and_(due, coupons.c.brand_id == brand_id)
        done = conn.execute(
            update(coupons)
            .where(due)
            .values(state=State.EXPIRED.value, reservation_id=None, locked_until=None)
            .returning(coupons.c.id, coupons.c.brand_id)
        ).all()
        if done:
            conn.execute(
                insert(coupon_events),
                [
                    {
                        "brand_id": b,
                        "coupon_id": c,
                        "event": "expired",
                        "detail": "",
                        "created_at": at,
                    }
                    for c, b in done
                ],
            )
        return len(done)

    return ctx.run(run)


# --- the HQ console: a member's coupons, the templates, issuing once ------------------


def of_member(ctx: Context, brand_id: int, member_id: int, *, limit: int = 50) -> list[Coupon]:
    """A member's coupons in every state, newest first, at most `limit` (1 to 500)."""
    from loyalpos.service.loyalty.members import load_member

    if not 1 <= limit <= 500:
        raise InvalidInput("limit must be between 1 and 500", field="limit")
    with ctx.transaction(read_only=True) as conn:
        load_member(conn, brand_id, member_id)
        rows = conn.execute(
            select(coupons)
            .where(coupons.c.member_id == member_id, coupons.c.brand_id == brand_id)
            .order_by(coupons.c.id.desc())
            .limit(limit)
        )
        return [_coupon(r) for r in rows]


@dataclass(frozen=True, slots=True)
class Template:
    id: str
    name: str
    kind: str


def templates_in_force(
    ctx: Context, brand_id: int, *, now: datetime | None = None
) -> list[Template]:
    """The coupon templates of the rules in force, in the rules' order."""
    from loyalpos.service.rulebook.rulesets import rules_at

    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        doc = rules_at(conn, ctx, brand_id, at).document
    return [Template(c.id, c.name or c.id, str(c.kind)) for c in doc.coupons]


@dataclass(frozen=True, slots=True)
class Issued:
    coupon: Coupon
    new: bool  # False: a coupon of this template and source_ref was there already


def issue_once_in(
    conn: Connection,
    brand_id: int,
    member_id: int,
    template: BenefitDoc,
    source_ref: str,
    at: datetime,
    zone: ZoneInfo,
) -> Issued:
    """Inside a transaction: the member's coupon of `template` from `source_ref`,
    issued now unless one is there already. The member's row is locked first,
    so two uploads of one list at once issue once."""
    from loyalpos.db.ledger_repo import lock_member
    from loyalpos.service.loyalty.members import _not_found

    if lock_member(conn, brand_id, member_id) is None:
        raise _not_found("id")
    there = conn.execute(
        select(coupons)
        .where(
            coupons.c.member_id == member_id,
            coupons.c.brand_id == brand_id,
            coupons.c.template == template.id,
            coupons.c.source_ref == source_ref,
        )
        .limit(1)
    ).first()
    if there is not None:
        return Issued(_coupon(there), new=False)
    coupon_id = issue(
        conn,
        brand_id,
        member_id,
        template,
        at,
        zone,
        source_type="operator",
        source_ref=source_ref,
    )
    row = conn.execute(select(coupons).where(coupons.c.id == coupon_id)).one()
    return Issued(_coupon(row), new=True)


def issue_once(
    ctx: Context,
    brand_id: int,
    member_id: int,
    template: str,
    source_ref: str,
    *,
    now: datetime | None = None,
) -> Issued:
    """`issue_to_member`, idempotent: a second call with the same member, template
    and `source_ref` issues nothing and answers the first coupon (`new` False)."""
    from loyalpos.service.rulebook.rulesets import rules_at

    if not source_ref or len(source_ref) > 120:
        raise InvalidInput("source_ref of 1 to 120 characters", field="source_ref")
    at = ctx.now(now)

    def run(conn: Connection) -> Issued:
        brand = load_brand(conn, brand_id)
        doc = rules_at(conn, ctx, brand_id, at).document
        found = template_of(doc, template)
        return issue_once_in(conn, brand_id, member_id, found, source_ref, at, brand.zone)

    return ctx.run(run)
