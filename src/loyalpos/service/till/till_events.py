"""Till events: the overrides a till makes, kept for the reports.

A cashier can go around what the brand asked for; each time the till records
who, where, on which order and why, so HQ sees how often each store does it:

- `identification_skipped`: a sale without member identification where the
  brand requires it (rules `checkout.require_member`); the reason is required.
- `manual_price`: an item the catalogue does not know rung up at a typed price;
  `detail` names it (`sku` or `code`) and the price (`price_fen`).
- `benefits_declined`: the customer chose 暂不使用权益.
- `coupon_switched`: the cashier forced another coupon than the best plan's.

Events are only appended. `report` counts them per store, kind and local day
(each store's time zone, as the holds report and the reconciliation do).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import Connection, case, func, insert, select

from loyalpos.characters import SINGLE_LINE, TEXT, check_tree
from loyalpos.db.tables import brands, inserted_id, store_staff, stores, till_events
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.service.base.brands import check_store, store_in_brand
from loyalpos.service.base.context import Context
from loyalpos.service.base.texts import checked_text, json_depth
from loyalpos.service.till.reconcile import check_day, local_day_window

MAX_REASON = 500
MAX_DETAIL_BYTES = 4 * 1024
MAX_DETAIL_DEPTH = 8
MAX_REPORT_DAYS = 366


class TillEventKind(StrEnum):
    IDENTIFICATION_SKIPPED = "identification_skipped"
    MANUAL_PRICE = "manual_price"
    BENEFITS_DECLINED = "benefits_declined"
    COUPON_SWITCHED = "coupon_switched"


KIND_LABELS: dict[TillEventKind, str] = {
    TillEventKind.IDENTIFICATION_SKIPPED: "跳过会员识别",
    TillEventKind.MANUAL_PRICE: "手工输入价格",
    TillEventKind.BENEFITS_DECLINED: "暂不使用权益",
    TillEventKind.COUPON_SWITCHED: "切换优惠券",
}


@dataclass(frozen=True, slots=True)
class TillEvent:
    id: int
    brand_id: int
    store_id: int
    kind: TillEventKind
    staff_id: int | None
    staff_number: str
    terminal: str
    order_no: str | None
    reason: str
    detail: dict[str, Any]
    created_at: datetime

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


@dataclass(frozen=True, slots=True)
class ReportRow:
    """How many events of one kind a store's tills recorded on one local day."""

    store_id: int
    store_code: str
    kind: TillEventKind
    day: date
    count: int

    @property
    def kind_label(self) -> str:
        return KIND_LABELS[self.kind]


def parse_kind(value: str) -> TillEventKind:
    try:
        return TillEventKind(value)
    except ValueError:
        kinds = ", ".join(k.value for k in TillEventKind)
        raise InvalidInput(
            f"收银事件类型无效 (kind must be one of: {kinds})",
            code="bad_till_event_kind",
            field="kind",
        ) from None


def _bad_detail(message: str) -> InvalidInput:
    return InvalidInput(message, code="bad_till_event_detail", field="detail")


def _encode_detail(kind: TillEventKind, detail: Mapping[str, Any] | None) -> str:
    """`detail` as JSON text: a small JSON object; a manual price names the item
    (`sku` or `code`) and its `price_fen`."""
    if detail is None:
        detail = {}
    if not isinstance(detail, Mapping):
        raise _bad_detail("详情须为 JSON 对象 (detail must be a JSON object)")
    if json_depth(detail, MAX_DETAIL_DEPTH) > MAX_DETAIL_DEPTH:
        raise _bad_detail(f"详情嵌套过深 (detail nested deeper than {MAX_DETAIL_DEPTH})")
    try:
        check_tree(dict(detail), TEXT)  # no NUL, no lone surrogate, keys included
    except ValueError as exc:
        raise _bad_detail(f"detail: {exc}") from None
    try:
        text = json.dumps(dict(detail), ensure_ascii=False, allow_nan=False, separators=(",", ":"))
    except (TypeError, ValueError):
        raise _bad_detail("详情不是合法 JSON (detail is not valid JSON)") from None
    if len(text.encode()) > MAX_DETAIL_BYTES:
        raise _bad_detail(f"详情过大 (detail is over {MAX_DETAIL_BYTES} bytes)")
    if kind is TillEventKind.MANUAL_PRICE:
        item = detail.get("sku", detail.get("code"))
        price = detail.get("price_fen")
        if not isinstance(item, str) or not item.strip():
            raise _bad_detail("手工价格须注明商品 (a manual price names the item: `sku` or `code`)")
        if isinstance(price, bool) or not isinstance(price, int) or price < 0:
            raise _bad_detail(
                "手工价格须为非负整数分 (a manual price's `price_fen` is a whole number of fen ≥ 0)"
            )
    return text


def _event(row: Any) -> TillEvent:
    return TillEvent(
        id=row.id,
        brand_id=row.brand_id,
        store_id=row.store_id,
        kind=TillEventKind(row.kind),
        staff_id=row.staff_id,
        staff_number=row.staff_number,
        terminal=row.terminal,
        order_no=row.order_no,
        reason=row.reason,
        detail=json.loads(row.detail),
        created_at=row.created_at,
    )


def _staff_id(
    conn: Connection, brand_id: int, store_id: int, staff_id: int | None, number: str
) -> int | None:
    """The staff member given (of this store, else NotFound), or the store's staff
    member with that number if there is one (a POS may send its own numbers)."""
    s = store_staff.c
    if staff_id is not None:
        found = conn.execute(
            select(s.id).where(s.id == staff_id, s.brand_id == brand_id, s.store_id == store_id)
        ).first()
        if found is None:
            raise NotFound(
                f"员工 {staff_id} 不是本店员工 (staff member {staff_id} not found at this store)",
                code="staff_not_found",
                staff_id=staff_id,
            )
        return staff_id
    found_id = conn.execute(
        select(s.id).where(s.brand_id == brand_id, s.store_id == store_id, s.number == number)
    ).scalar()
    return None if found_id is None else int(found_id)


def record(
    ctx: Context,
    brand_id: int,
    store_id: int,
    kind: TillEventKind | str,
    *,
    staff_id: int | None,
    staff_number: str,
    terminal: str,
    reason: str = "",
    order_no: str | None = None,
    detail: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> TillEvent:
    """Record one override of a till of `store_id`; returns it.

    InvalidInput `bad_till_event_kind` for an unknown kind, `bad_till_event_detail`
    for a detail that is not a small JSON object (or a manual price without the
    item and `price_fen`); a skipped identification needs a reason. NotFound for a
    store outside the brand, or a `staff_id` not of this store. Without a
    `staff_id` the event is linked to the store's staff member with
    `staff_number`, when there is one.
    """
    at = ctx.now(now)
    code = parse_kind(str(kind))
    number = checked_text(staff_number, "staff_number", 64, required=True, rule=SINGLE_LINE)
    till = checked_text(terminal, "terminal", 64, required=True, rule=SINGLE_LINE)
    why = checked_text(
        reason,
        "reason",
        MAX_REASON,
        required=code is TillEventKind.IDENTIFICATION_SKIPPED,
        rule=TEXT,
    )
    order = (
        None
        if order_no is None
        else checked_text(order_no, "order_no", 64, required=True, rule=SINGLE_LINE)
    )
    text = _encode_detail(code, detail)

    def run(conn: Connection) -> TillEvent:
        store_in_brand(conn, brand_id, store_id)
        who = _staff_id(conn, brand_id, store_id, staff_id, number)
        event_id = inserted_id(
            conn.execute(
                insert(till_events).values(
                    brand_id=brand_id,
                    store_id=store_id,
                    kind=code.value,
                    staff_id=who,
                    staff_number=number,
                    terminal=till,
                    order_no=order,
                    reason=why,
                    detail=text,
                    created_at=at,
                )
            )
        )
        row = conn.execute(select(till_events).where(till_events.c.id == event_id)).one()
        return _event(row)

    return ctx.run(run)


def report(
    ctx: Context,
    brand_id: int,
    *,
    store_id: int | None = None,
    date_from: date,
    date_to: date,
) -> list[ReportRow]:
    """Events recorded in the local days [date_from, date_to] (each store's time
    zone), counted per store, kind and day; days without events are left out.
    Sorted by store, day, kind."""
    check_day(date_from, "date_from")
    check_day(date_to, "date_to")
    if date_to < date_from:
        raise InvalidInput(
            "结束日期早于开始日期 (`date_to` is before `date_from`)", field="date_to"
        )
    span = (date_to - date_from).days + 1
    if span > MAX_REPORT_DAYS:
        raise InvalidInput(
            f"日期范围过长 (at most {MAX_REPORT_DAYS} days per report)", field="date_to"
        )
    days = [date_from + timedelta(days=i) for i in range(span)]
    e = till_events.c

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
        found: list[ReportRow] = []
        for zone, store_codes in by_zone.items():
            windows = [local_day_window(d, ZoneInfo(zone)) for d in days]
            # The local day of each event, as its index in `days`: the windows are
            # consecutive, so the first end past the time names the day (DST-proof).
            day_no = case(
                *[(e.created_at < end, i) for i, (_, end) in enumerate(windows)],
                else_=None,
            ).label("day_no")
            made = (
                select(e.store_id, e.kind, day_no)
                .where(
                    e.brand_id == brand_id,
                    e.store_id.in_(list(store_codes)),
                    e.created_at >= windows[0][0],
                    e.created_at < windows[-1][1],
                )
                .subquery()
            )
            rows = conn.execute(
                select(made.c.store_id, made.c.kind, made.c.day_no, func.count()).group_by(
                    made.c.store_id, made.c.kind, made.c.day_no
                )
            )
            for sid, kind, day_index, n in rows:
                found.append(
                    ReportRow(
                        store_id=sid,
                        store_code=store_codes[sid],
                        kind=TillEventKind(kind),
                        day=days[int(day_index)],
                        count=int(n),
                    )
                )
    return sorted(found, key=lambda r: (r.store_id, r.day, r.kind.value))


def for_order(ctx: Context, brand_id: int, store_id: int, order_no: str) -> list[TillEvent]:
    """The overrides recorded with one order of a store, in the order they were
    made (what the order's receipt view in the console lists beside it)."""
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(till_events)
            .where(
                till_events.c.brand_id == brand_id,
                till_events.c.store_id == store_id,
                till_events.c.order_no == order_no,
            )
            .order_by(till_events.c.id)
        ).all()
    return [_event(r) for r in rows]
