"""Held carts (挂单 / 暂存): park a cart, list a store's parked carts, resume one.

A hold keeps the cashier's request as opaque JSON (lines, member reference,
options and overrides, chosen coupons) and hands it back verbatim on resume.
It moves `held -> resumed | cancelled | expired`, once: the state change is a
guarded UPDATE (`... WHERE status = 'held' AND expires_at > now`), so two tills
resuming the same hold cannot both win, on SQLite or PostgreSQL.

A hold lapses `Settings.held_cart_minutes` after it was made. Lapsed holds are
marked `expired` lazily (listing a store marks its own) and by `expire_due`, a
small job; until then every read reports them as expired already.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, and_, case, func, insert, select, update

from loyalpos.db.tables import brands, held_carts, inserted_id, members, stores
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.domain.privacy import mask_phone
from loyalpos.service.base.brands import check_store
from loyalpos.service.base.context import Context
from loyalpos.service.base.texts import checked_text, json_depth
from loyalpos.service.till.reconcile import check_day, local_day_window

MAX_PAYLOAD_BYTES = 64 * 1024
MAX_PAYLOAD_DEPTH = 32
MAX_NOTE = 500
MAX_ACTIVE_PER_STORE = 500
MAX_REPORT_DAYS = 366


class HoldReason(StrEnum):
    """Why a cart was parked; a short code kept for reporting."""

    CALL = "call"
    MORE_ITEMS = "more_items"
    PAYMENT_ISSUE = "payment_issue"
    CUSTOMER_LEFT = "customer_left"
    OTHER = "other"


REASON_LABELS: dict[HoldReason, str] = {
    HoldReason.CALL: "接电话",
    HoldReason.MORE_ITEMS: "再挑商品",
    HoldReason.PAYMENT_ISSUE: "支付问题",
    HoldReason.CUSTOMER_LEFT: "顾客暂离",
    HoldReason.OTHER: "其他",
}


class HoldStatus(StrEnum):
    HELD = "held"
    RESUMED = "resumed"
    CANCELLED = "cancelled"
    EXPIRED = "expired"


@dataclass(frozen=True, slots=True)
class HoldMember:
    id: int
    name: str
    phone: str  # masked


@dataclass(frozen=True, slots=True)
class Hold:
    id: int
    brand_id: int
    store_id: int
    member: HoldMember | None
    reason: HoldReason
    note: str
    cashier: str
    terminal: str
    status: HoldStatus
    created_at: datetime
    expires_at: datetime
    closed_at: datetime | None
    payload: dict[str, Any]

    @property
    def reason_label(self) -> str:
        return REASON_LABELS[self.reason]


@dataclass(frozen=True, slots=True)
class ReportRow:
    store_id: int
    store_code: str
    reason: HoldReason
    held: int  # still parked and not lapsed
    resumed: int
    cancelled: int
    expired: int

    @property
    def total(self) -> int:
        return self.held + self.resumed + self.cancelled + self.expired

    @property
    def reason_label(self) -> str:
        return REASON_LABELS[self.reason]


def parse_reason(value: str) -> HoldReason:
    try:
        return HoldReason(value)
    except ValueError:
        codes = ", ".join(r.value for r in HoldReason)
        raise InvalidInput(
            f"挂单原因无效 (reason must be one of: {codes})", code="invalid_reason", field="reason"
        ) from None


def encode_payload(payload: Any) -> str:
    """The payload as JSON text, refused unless it is a small JSON object."""
    if not isinstance(payload, Mapping):
        raise InvalidInput(
            "挂单内容须为 JSON 对象 (payload must be a JSON object)",
            code="invalid_payload",
            field="payload",
        )
    if json_depth(payload, MAX_PAYLOAD_DEPTH) > MAX_PAYLOAD_DEPTH:
        raise InvalidInput(
            f"挂单内容嵌套过深 (payload nested deeper than {MAX_PAYLOAD_DEPTH})",
            code="invalid_payload",
            field="payload",
        )
    try:
        text = json.dumps(payload, ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise InvalidInput(
            "挂单内容不是合法 JSON (payload is not valid JSON: no NaN/Infinity, string keys)",
            code="invalid_payload",
            field="payload",
        ) from None
    size = len(text.encode())
    if size > MAX_PAYLOAD_BYTES:
        raise InvalidInput(
            f"挂单内容过大 (payload is {size} bytes; at most {MAX_PAYLOAD_BYTES})",
            code="payload_too_large",
            field="payload",
            size=size,
            limit=MAX_PAYLOAD_BYTES,
        )
    return text


def _effective_status(row: Any, now: datetime) -> HoldStatus:
    status = HoldStatus(row.status)
    if status is HoldStatus.HELD and row.expires_at <= now:
        return HoldStatus.EXPIRED
    return status


def _select() -> Any:
    return select(
        held_carts,
        members.c.name.label("member_name"),
        members.c.phone.label("member_phone"),
    ).select_from(held_carts.outerjoin(members, members.c.id == held_carts.c.member_id))


def _hold(row: Any, now: datetime) -> Hold:
    member = None
    if row.member_id is not None:
        member = HoldMember(row.member_id, row.member_name, mask_phone(row.member_phone))
    status = _effective_status(row, now)
    closed_at = row.closed_at
    if closed_at is None and status is HoldStatus.EXPIRED:
        closed_at = row.expires_at
    return Hold(
        id=row.id,
        brand_id=row.brand_id,
        store_id=row.store_id,
        member=member,
        reason=HoldReason(row.reason),
        note=row.note,
        cashier=row.cashier,
        terminal=row.terminal,
        status=status,
        created_at=row.created_at,
        expires_at=row.expires_at,
        closed_at=closed_at,
        payload=json.loads(row.payload),
    )


def _load(conn: Connection, brand_id: int, hold_id: int, now: datetime) -> Hold:
    row = conn.execute(
        _select().where(held_carts.c.id == hold_id, held_carts.c.brand_id == brand_id)
    ).first()
    if row is None:
        raise NotFound(
            f"挂单 {hold_id} 不存在 (held cart {hold_id} not found)", code="hold_not_found"
        )
    return _hold(row, now)


def _mark_expired(conn: Connection, now: datetime, *where: Any) -> int:
    result = conn.execute(
        update(held_carts)
        .where(
            held_carts.c.status == HoldStatus.HELD.value,
            held_carts.c.expires_at <= now,
            *where,
        )
        .values(status=HoldStatus.EXPIRED.value, closed_at=held_carts.c.expires_at)
    )
    return int(result.rowcount or 0)


def hold(
    ctx: Context,
    brand_id: int,
    store_id: int,
    *,
    payload: Mapping[str, Any],
    reason: HoldReason | str,
    cashier: str,
    terminal: str,
    note: str = "",
    member_id: int | None = None,
    now: datetime | None = None,
) -> Hold:
    """Park a cart. Returns the hold; it lapses `held_cart_minutes` from now."""
    at = ctx.now(now)
    code = parse_reason(str(reason))
    text = encode_payload(payload)
    note = checked_text(note, "note", MAX_NOTE, required=False)
    cashier = checked_text(cashier, "cashier", 64, required=True)
    terminal = checked_text(terminal, "terminal", 64, required=True)
    expires_at = at + timedelta(minutes=ctx.settings.held_cart_minutes)

    def run(conn: Connection) -> Hold:
        check_store(conn, brand_id, store_id)
        if member_id is not None:
            found = conn.execute(
                select(members.c.id).where(
                    members.c.id == member_id, members.c.brand_id == brand_id
                )
            ).first()
            if found is None:
                raise NotFound(
                    f"会员 {member_id} 不存在 (member {member_id} not found)",
                    code="member_not_found",
                )
        _mark_expired(conn, at, held_carts.c.store_id == store_id)
        active = conn.execute(
            select(func.count())
            .select_from(held_carts)
            .where(
                held_carts.c.store_id == store_id,
                held_carts.c.status == HoldStatus.HELD.value,
            )
        ).scalar_one()
        if active >= MAX_ACTIVE_PER_STORE:
            raise Conflict(
                f"挂单过多，请先处理已有挂单 (store has {active} held carts; "
                f"at most {MAX_ACTIVE_PER_STORE})",
                code="too_many_holds",
                limit=MAX_ACTIVE_PER_STORE,
            )
        hold_id = inserted_id(
            conn.execute(
                insert(held_carts).values(
                    brand_id=brand_id,
                    store_id=store_id,
                    member_id=member_id,
                    reason=code.value,
                    note=note,
                    payload=text,
                    cashier=cashier,
                    terminal=terminal,
                    status=HoldStatus.HELD.value,
                    created_at=at,
                    expires_at=expires_at,
                )
            )
        )
        return _load(conn, brand_id, hold_id, at)

    return ctx.run(run)


def list_active(
    ctx: Context,
    brand_id: int,
    store_id: int,
    *,
    terminal: str | None = None,
    now: datetime | None = None,
) -> list[Hold]:
    """The store's parked carts, oldest first; lapsed ones are marked expired and left out."""
    at = ctx.now(now)

    def run(conn: Connection) -> list[Hold]:
        check_store(conn, brand_id, store_id)
        _mark_expired(
            conn, at, held_carts.c.brand_id == brand_id, held_carts.c.store_id == store_id
        )
        query = _select().where(
            held_carts.c.brand_id == brand_id,
            held_carts.c.store_id == store_id,
            held_carts.c.status == HoldStatus.HELD.value,
            held_carts.c.expires_at > at,
        )
        if terminal is not None:
            query = query.where(held_carts.c.terminal == terminal)
        rows = conn.execute(query.order_by(held_carts.c.created_at, held_carts.c.id))
        return [_hold(r, at) for r in rows]

    return ctx.run(run)


def get(ctx: Context, brand_id: int, hold_id: int, *, now: datetime | None = None) -> Hold:
    """One hold, in any state (a lapsed one reads as expired). Does not resume it."""
    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        return _load(conn, brand_id, hold_id, at)


def _closed_error(h: Hold, action: str) -> Conflict:
    if h.status is HoldStatus.RESUMED:
        return Conflict(
            f"挂单已取单，不能重复{action} (held cart {h.id} already resumed)",
            code="hold_already_resumed",
            hold_id=h.id,
            closed_at=h.closed_at,
        )
    if h.status is HoldStatus.CANCELLED:
        return Conflict(
            f"挂单已取消 (held cart {h.id} was cancelled)",
            code="hold_cancelled",
            hold_id=h.id,
            closed_at=h.closed_at,
        )
    return Conflict(
        f"挂单已过期，请重新录入商品 (held cart {h.id} expired at "
        f"{h.expires_at.isoformat()}; enter the cart again)",
        code="hold_expired",
        hold_id=h.id,
        expires_at=h.expires_at,
    )


def _close(
    ctx: Context, brand_id: int, hold_id: int, to: HoldStatus, now: datetime | None
) -> tuple[Hold, bool]:
    """Move a live hold to `to`; (the hold as it is now, whether this call moved it)."""
    at = ctx.now(now)

    def run(conn: Connection) -> tuple[Hold, bool]:
        moved = conn.execute(
            update(held_carts)
            .where(
                held_carts.c.id == hold_id,
                held_carts.c.brand_id == brand_id,
                held_carts.c.status == HoldStatus.HELD.value,
                held_carts.c.expires_at > at,
            )
            .values(status=to.value, closed_at=at)
        ).rowcount
        if not moved:
            _mark_expired(conn, at, held_carts.c.id == hold_id, held_carts.c.brand_id == brand_id)
        return _load(conn, brand_id, hold_id, at), bool(moved)

    return ctx.run(run)


def resume(ctx: Context, brand_id: int, hold_id: int, *, now: datetime | None = None) -> Hold:
    """Take a parked cart back: once. The hold comes back with its payload as parked.

    A second resume is Conflict `hold_already_resumed`; a lapsed hold is
    Conflict `hold_expired`; a cancelled one `hold_cancelled`.
    """
    found, moved = _close(ctx, brand_id, hold_id, HoldStatus.RESUMED, now)
    if not moved:
        raise _closed_error(found, "取单")
    return found


def cancel(ctx: Context, brand_id: int, hold_id: int, *, now: datetime | None = None) -> Hold:
    """Drop a parked cart. Cancelling a cancelled hold again answers it unchanged."""
    found, moved = _close(ctx, brand_id, hold_id, HoldStatus.CANCELLED, now)
    if not moved and found.status is not HoldStatus.CANCELLED:
        raise _closed_error(found, "取消")
    return found


def expire_due(ctx: Context, *, brand_id: int | None = None, now: datetime | None = None) -> int:
    """Job: mark every lapsed hold expired (of one brand, or all). Returns how many."""
    at = ctx.now(now)
    where = [] if brand_id is None else [held_carts.c.brand_id == brand_id]
    return ctx.run(lambda conn: _mark_expired(conn, at, *where))


def report(
    ctx: Context,
    brand_id: int,
    date_from: date,
    date_to: date,
    *,
    store_id: int | None = None,
    now: datetime | None = None,
) -> list[ReportRow]:
    """Holds made in the local days [date_from, date_to] (each store's time zone),
    counted per store and reason and by how they ended."""
    at = ctx.now(now)
    check_day(date_from, "from")
    check_day(date_to, "to")
    if date_to < date_from:
        raise InvalidInput("结束日期早于开始日期 (`to` is before `from`)", field="to")
    if (date_to - date_from).days >= MAX_REPORT_DAYS:
        raise InvalidInput(f"日期范围过长 (at most {MAX_REPORT_DAYS} days per report)", field="to")
    status = case(
        (
            and_(held_carts.c.status == HoldStatus.HELD.value, held_carts.c.expires_at <= at),
            HoldStatus.EXPIRED.value,
        ),
        else_=held_carts.c.status,
    ).label("effective")

    with ctx.transaction(read_only=True) as conn:
        check_store(conn, brand_id, store_id)
        query = (
            select(stores.c.id, stores.c.code, func.coalesce(stores.c.timezone, brands.c.timezone))
            .join(brands, brands.c.id == stores.c.brand_id)
            .where(stores.c.brand_id == brand_id)
        )
        if store_id is not None:
            query = query.where(stores.c.id == store_id)
        by_zone: dict[str, dict[int, str]] = {}
        for sid, code, zone in conn.execute(query):
            by_zone.setdefault(zone, {})[sid] = code
        counts: dict[tuple[int, str], dict[str, int]] = {}
        codes: dict[int, str] = {}
        for zone, store_codes in by_zone.items():
            codes.update(store_codes)
            start, _ = local_day_window(date_from, ZoneInfo(zone))
            _, end = local_day_window(date_to, ZoneInfo(zone))
            made = (
                select(held_carts.c.store_id, held_carts.c.reason, status)
                .where(
                    held_carts.c.brand_id == brand_id,
                    held_carts.c.store_id.in_(list(store_codes)),
                    held_carts.c.created_at >= start,
                    held_carts.c.created_at < end,
                )
                .subquery()
            )
            rows = conn.execute(
                select(made.c.store_id, made.c.reason, made.c.effective, func.count()).group_by(
                    made.c.store_id, made.c.reason, made.c.effective
                )
            )
            for sid, reason, effective, n in rows:
                counts.setdefault((sid, reason), {})[effective] = int(n)
    return [
        ReportRow(
            store_id=sid,
            store_code=codes[sid],
            reason=HoldReason(reason),
            held=c.get(HoldStatus.HELD.value, 0),
            resumed=c.get(HoldStatus.RESUMED.value, 0),
            cancelled=c.get(HoldStatus.CANCELLED.value, 0),
            expired=c.get(HoldStatus.EXPIRED.value, 0),
        )
        for (sid, reason), c in sorted(counts.items())
    ]
