"""Reconciliation (对账) of one store day: read our booked orders, compare with the POS.

"The day" is the local calendar day in the store's time zone (the store's own,
else the brand's), by the time each order was placed (`ordered_at`), so a late
booking (补单) counts on the day it was really sold. Our amount per order is
`payable`, what was paid at checkout, before any refund; tenders are the
`order_tenders` rows of those orders.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, select

from loyalpos.db.tables import order_tenders, orders
from loyalpos.domain.errors import InvalidInput
from loyalpos.domain.reconcile import (
    BookedOrder,
    MatchedOrder,
    PosDay,
    PosOrder,
    Reconciliation,
    check_pos_day,
    reconcile,
)
from loyalpos.service.base.brands import load_brand, store_by_code, store_in_brand
from loyalpos.service.base.context import Context

EARLIEST_YEAR = 1970
LATEST_YEAR = 2199


@dataclass(frozen=True, slots=True)
class StoreDay:
    """Which store day was compared, and the UTC window it maps to."""

    store_id: int
    store_code: str
    day: date
    timezone: str
    start: datetime
    end: datetime


@dataclass(frozen=True, slots=True)
class DayReconciliation:
    store_day: StoreDay
    result: Reconciliation
    # Booked orders with `late` set (补单) among ours; informational.
    late_orders: int


def check_day(day: date, field: str = "date") -> date:
    if not EARLIEST_YEAR <= day.year <= LATEST_YEAR:
        raise InvalidInput(
            f"日期超出范围 (date must be between {EARLIEST_YEAR} and {LATEST_YEAR})", field=field
        )
    return day


def local_day_window(day: date, zone: ZoneInfo) -> tuple[datetime, datetime]:
    """[start, end) in UTC of a local calendar day (23 or 25 hours long across DST)."""
    start = datetime.combine(day, time(0), zone).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), time(0), zone).astimezone(UTC)
    return start, end


def store_zone(conn: Connection, brand_id: int, store_id: int) -> tuple[str, str]:
    """The store's code and effective time zone; NotFound outside the brand."""
    store = store_in_brand(conn, brand_id, store_id)
    return store.code, store.timezone or load_brand(conn, brand_id).timezone


def booked_orders(
    conn: Connection, brand_id: int, store_id: int, start: datetime, end: datetime
) -> list[BookedOrder]:
    """Our orders of the store placed in [start, end), each with its tenders."""
    in_window = (
        orders.c.brand_id == brand_id,
        orders.c.store_id == store_id,
        orders.c.ordered_at >= start,
        orders.c.ordered_at < end,
    )
    tenders: dict[int, dict[str, int]] = {}
    rows = conn.execute(
        select(order_tenders.c.order_id, order_tenders.c.method, order_tenders.c.amount)
        .join(orders, orders.c.id == order_tenders.c.order_id)
        .where(*in_window)
    )
    for r in rows:
        by_method = tenders.setdefault(r.order_id, {})
        by_method[r.method] = by_method.get(r.method, 0) + int(r.amount)
    found = conn.execute(
        select(orders.c.id, orders.c.order_no, orders.c.payable, orders.c.late)
        .where(*in_window)
        .order_by(orders.c.order_no)
    )
    return [
        BookedOrder(r.order_no, int(r.payable), tenders.get(r.id, {}), bool(r.late)) for r in found
    ]


def reconcile_day(
    ctx: Context, brand_id: int, store_id: int, day: date, pos: PosDay
) -> DayReconciliation:
    """Compare the POS's report of `day` with what we booked for the store that day."""
    check_day(day)
    with ctx.transaction(read_only=True) as conn:
        code, tz_name = store_zone(conn, brand_id, store_id)
        start, end = local_day_window(day, ZoneInfo(tz_name))
        ours = booked_orders(conn, brand_id, store_id, start, end)
    result = reconcile(pos, ours)
    return DayReconciliation(
        StoreDay(store_id, code, day, tz_name, start, end),
        result,
        late_orders=sum(1 for o in ours if o.late),
    )


def store_id_by_code(ctx: Context, brand_id: int, code: str) -> int:
    return store_by_code(ctx, brand_id, code).id


def as_dict(found: DayReconciliation) -> dict[str, Any]:
    """The answer as plain JSON-ready data; the API and the CLI print this shape."""
    sd, r = found.store_day, found.result
    orders_part: dict[str, Any] | None = None
    if r.orders is not None:
        o = r.orders
        orders_part = {
            "matched": [_matched(m) for m in o.matched],
            "missing_here": [
                {"order_no": p.order_no, "amount_fen": p.amount} for p in o.missing_here
            ],
            "missing_at_pos": [
                {"order_no": b.order_no, "amount_fen": b.amount, "late": b.late}
                for b in o.missing_at_pos
            ],
            "amount_differences": [_matched(m) for m in o.amount_differences],
            "listed": {"order_count": o.listed.count, "amount_fen": o.listed.amount},
            "list_matches_totals": o.list_matches_totals,
        }
    return {
        "store_id": sd.store_id,
        "store_code": sd.store_code,
        "date": sd.day.isoformat(),
        "timezone": sd.timezone,
        "window": {"start": sd.start.isoformat(), "end": sd.end.isoformat()},
        "status": "balanced" if r.balanced else "discrepancies",
        "totals": {
            "pos": {"order_count": r.totals.pos.count, "amount_fen": r.totals.pos.amount},
            "ours": {"order_count": r.totals.ours.count, "amount_fen": r.totals.ours.amount},
            "diff": {"order_count": r.totals.count_diff, "amount_fen": r.totals.amount_diff},
        },
        "tenders": [
            {"method": t.method, "pos_fen": t.pos, "ours_fen": t.ours, "diff_fen": t.diff}
            for t in r.tenders
        ],
        "orders": orders_part,
        "late_orders": found.late_orders,
    }


def _matched(m: MatchedOrder) -> dict[str, Any]:
    return {
        "order_no": m.order_no,
        "pos_fen": m.pos_amount,
        "ours_fen": m.our_amount,
        "diff_fen": m.diff,
        "late": m.late,
    }


def pos_day_from_json(data: bytes) -> tuple[date, PosDay]:
    """The POS's file for one store day (the body of POST .../reconciliation:
    docs/holds-and-reconciliation.md) read into (the day, its figures), for the
    console's upload; what cannot be read is InvalidInput on field `file`."""

    def bad(why: str) -> InvalidInput:
        return InvalidInput(f"对账文件无效 (the POS file is not valid: {why})", field="file")

    try:
        doc = json.loads(data.decode("utf-8-sig"))
    except (UnicodeDecodeError, ValueError):
        raise bad("not JSON") from None
    if not isinstance(doc, dict):
        raise bad("not a JSON object")
    unknown = set(doc) - {"date", "order_count", "amount_fen", "tenders", "orders"}
    if unknown:
        raise bad(f"unknown fields {sorted(unknown)}")
    try:
        day = check_day(date.fromisoformat(str(doc["date"])), "file")
    except KeyError:
        raise bad("no date") from None
    except ValueError:
        raise bad("date is not YYYY-MM-DD") from None

    def whole(value: Any, name: str) -> int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise bad(f"{name} must be a whole number of fen")
        return value

    if "order_count" not in doc or "amount_fen" not in doc:
        raise bad("order_count and amount_fen are required")
    tenders = doc.get("tenders") or {}
    if not isinstance(tenders, dict) or len(tenders) > 64:
        raise bad("tenders must be an object of method: fen")
    listed: tuple[PosOrder, ...] | None = None
    if doc.get("orders") is not None:
        if not isinstance(doc["orders"], list) or len(doc["orders"]) > 50_000:
            raise bad("orders must be a list of at most 50000")
        found = []
        for i, o in enumerate(doc["orders"]):
            if not isinstance(o, dict) or not isinstance(o.get("order_no"), str):
                raise bad(f"orders[{i}] needs order_no and amount_fen")
            found.append(PosOrder(o["order_no"], whole(o.get("amount_fen"), f"orders[{i}]")))
        listed = tuple(found)
    pos = PosDay(
        whole(doc["order_count"], "order_count"),
        whole(doc["amount_fen"], "amount_fen"),
        {str(k): whole(v, f"tenders.{k}") for k, v in tenders.items()},
        listed,
    )
    try:
        check_pos_day(pos)
    except InvalidInput as exc:
        raise bad(exc.message) from None
    return day, pos
