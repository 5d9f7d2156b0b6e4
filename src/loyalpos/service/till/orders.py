"""Finding orders (订单查询) for the HQ console: by store, the store-local day,
order number and member phone, newest first, a page at a time; and the refunds
made of one order.

Pages are cut by a cursor (the last row's time and id), never an offset, so the
thousandth page costs what the first does; each filter walks an index of
`orders`: (store_id, ordered_at), (member_id, ordered_at), (brand_id,
ordered_at), (brand_id, order_no) (migration 0015).
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import and_, func, or_, select

from loyalpos.db.tables import brands, members, orders, refunds, stores
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.domain.privacy import mask_phone
from loyalpos.service.base.brands import store_in_brand
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty.phones import normalise_phone
from loyalpos.service.till.reconcile import check_day, local_day_window

PAGE = 50
MAX_ORDER_NO = 64


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: int
    store_id: int
    store_code: str
    order_no: str
    status: str
    payable: int
    refunded: int
    member_phone: str | None  # masked, as on the receipt
    cashier: str
    ordered_at: datetime  # in the store's time zone


@dataclass(frozen=True, slots=True)
class OrderPage:
    rows: tuple[OrderRow, ...]
    # The cursor of the next (older) page, or None on the last one.
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class RefundRow:
    refund_no: str
    amount: int
    deduction: int
    points_reversed: int
    points_returned: int
    cashier: str
    terminal: str | None
    created_at: datetime  # in the store's time zone


def _cursor(value: str) -> tuple[datetime, int]:
    try:
        at, _, row_id = value.partition("~")
        return datetime.fromisoformat(at), int(row_id)
    except ValueError:
        raise InvalidInput(
            "翻页参数无效 (bad page cursor)", code="bad_cursor", field="cursor"
        ) from None


def search(
    ctx: Context,
    brand_id: int,
    *,
    allowed_stores: Collection[int] | None = None,
    store_id: int | None = None,
    day: date | None = None,
    order_no: str = "",
    phone: str = "",
    cursor: str = "",
    limit: int = PAGE,
) -> OrderPage:
    """Orders of the brand matching every filter given, newest first.

    `allowed_stores`: the stores the caller may see (None: all the brand's); a
    `store_id` outside them is NotFound as one of another brand. `day` is each
    store's local calendar day. A phone that is no member's finds nothing."""
    order_no = order_no.strip()
    if len(order_no) > MAX_ORDER_NO:
        raise InvalidInput(
            f"订单号最长 {MAX_ORDER_NO} 个字符 (order number too long)",
            code="bad_order_no",
            field="order_no",
        )
    if day is not None:
        check_day(day, "date")
    if not 1 <= limit <= 200:
        raise InvalidInput("limit must be 1-200", code="invalid_limit", field="limit")
    normalised = normalise_phone(phone, ctx.settings.default_region) if phone.strip() else None
    after = _cursor(cursor) if cursor else None
    with ctx.transaction(read_only=True) as conn:
        if store_id is not None:
            store_in_brand(conn, brand_id, store_id)
            if allowed_stores is not None and store_id not in allowed_stores:
                raise NotFound(
                    f"门店 {store_id} 不存在 (store {store_id} not found)",
                    code="store_not_found",
                    field="store",
                    store_id=store_id,
                )
        zones: dict[int, tuple[str, str]] = {
            int(sid): (code, zone)
            for sid, code, zone in conn.execute(
                select(
                    stores.c.id, stores.c.code, func.coalesce(stores.c.timezone, brands.c.timezone)
                )
                .join(brands, brands.c.id == stores.c.brand_id)
                .where(stores.c.brand_id == brand_id)
            )
        }
        scope = (
            [store_id]
            if store_id is not None
            else None
            if allowed_stores is None
            else sorted(s for s in allowed_stores if s in zones)
        )
        where: list[Any] = [orders.c.brand_id == brand_id]
        if scope is not None:
            where.append(
                orders.c.store_id.in_(scope) if len(scope) != 1 else orders.c.store_id == scope[0]
            )
        if order_no:
            where.append(orders.c.order_no == order_no)
        if normalised is not None:
            member_id = conn.execute(
                select(members.c.id).where(
                    members.c.brand_id == brand_id, members.c.phone == normalised
                )
            ).scalar()
            if member_id is None:
                return OrderPage((), None)
            where.append(orders.c.member_id == member_id)
        if day is not None:
            by_zone: dict[str, list[int]] = {}
            for sid, (_, zone) in zones.items():
                if scope is None or sid in scope:
                    by_zone.setdefault(zone, []).append(sid)
            windows = []
            for zone, sids in by_zone.items():
                start, end = local_day_window(day, ZoneInfo(zone))
                windows.append(
                    and_(
                        orders.c.store_id.in_(sids),
                        orders.c.ordered_at >= start,
                        orders.c.ordered_at < end,
                    )
                )
            if not windows:
                return OrderPage((), None)
            where.append(or_(*windows) if len(windows) > 1 else windows[0])
        if after is not None:
            at, row_id = after
            where.append(
                or_(orders.c.ordered_at < at, and_(orders.c.ordered_at == at, orders.c.id < row_id))
            )
        rows = conn.execute(
            select(
                orders.c.id,
                orders.c.store_id,
                orders.c.order_no,
                orders.c.status,
                orders.c.payable,
                orders.c.refunded,
                orders.c.cashier,
                orders.c.ordered_at,
                members.c.phone,
            )
            .outerjoin(members, members.c.id == orders.c.member_id)
            .where(*where)
            .order_by(orders.c.ordered_at.desc(), orders.c.id.desc())
            .limit(limit + 1)
        ).all()
    found = tuple(
        OrderRow(
            id=int(r.id),
            store_id=int(r.store_id),
            store_code=zones[int(r.store_id)][0],
            order_no=r.order_no,
            status=r.status,
            payable=int(r.payable),
            refunded=int(r.refunded),
            member_phone=mask_phone(r.phone) if r.phone else None,
            cashier=r.cashier,
            ordered_at=r.ordered_at.astimezone(ZoneInfo(zones[int(r.store_id)][1])),
        )
        for r in rows[:limit]
    )
    more = None
    if len(rows) > limit:
        last = rows[limit - 1]
        more = f"{last.ordered_at.isoformat()}~{int(last.id)}"
    return OrderPage(found, more)


def refunds_of(ctx: Context, brand_id: int, store_id: int, order_no: str) -> list[RefundRow]:
    """The refunds made of one order of a store, oldest first (NotFound: no such order)."""
    with ctx.transaction(read_only=True) as conn:
        store = store_in_brand(conn, brand_id, store_id)
        zone = (
            store.timezone
            or conn.execute(select(brands.c.timezone).where(brands.c.id == brand_id)).scalar_one()
        )
        order_id = conn.execute(
            select(orders.c.id).where(
                orders.c.brand_id == brand_id,
                orders.c.store_id == store_id,
                orders.c.order_no == order_no,
            )
        ).scalar()
        if order_id is None:
            raise NotFound(
                f"订单 {order_no} 不存在 (order not found)",
                code="order_not_found",
                order_no=order_no,
            )
        rows = conn.execute(
            select(refunds).where(refunds.c.order_id == order_id).order_by(refunds.c.id)
        ).all()
    tz = ZoneInfo(zone)
    return [
        RefundRow(
            refund_no=r.refund_no,
            amount=int(r.amount),
            deduction=int(r.deduction),
            points_reversed=int(r.points_reversed),
            points_returned=int(r.points_returned),
            cashier=r.cashier,
            terminal=r.terminal,
            created_at=r.created_at.astimezone(tz),
        )
        for r in rows
    ]
