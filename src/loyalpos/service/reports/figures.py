"""The figures of the console's home panel (its first report).

Each store's day is its own local day (the store's time zone, else the brand's).
Every figure is one SQL aggregate over the orders of the stores the user may
read (`reports.read`; a store manager: its stores only), grouped by store and
local day, reading orders through `ix_orders_store_time` (store_id, ordered_at):
a day is a range of `ordered_at`, so no function of the column stands in the
way of the index. The local day of an order is a CASE over the days' UTC
boundaries, computed here for each time zone (daylight saving included).

Today's figures are read on every request (an index range of one day); the days
before today, the one figure that adds up a month of orders (about 0.5 s for
300,000 orders on PostgreSQL), are kept for PAST_TTL seconds in the process.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import case, func, literal, select
from sqlalchemy.engine import Connection

from loyalpos.db.tables import order_benefits, orders, stores
from loyalpos.domain.accounts import Action
from loyalpos.service.admin.accounts import User, can, can_somewhere, require
from loyalpos.service.base.brands import Store, load_brand
from loyalpos.service.base.context import Context

DAYS = 30  # the chart's days, today included
PAST_TTL = 300.0  # seconds the days before today are kept (see _past_days)
NONE = (0, 0, 0, 0, 0)


@dataclass(frozen=True, slots=True)
class Today:
    """One store's figures for its local today."""

    orders: int = 0
    member_orders: int = 0  # orders with a member
    sales: int = 0  # fen: the sum of the orders' payable amounts
    points_issued: int = 0  # earned by its orders
    points_redeemed: int = 0  # spent on its orders
    coupons_used: int = 0  # coupons applied to its orders

    @property
    def member_share(self) -> float | None:
        """Orders with a member / all orders (None without orders)."""
        return self.member_orders / self.orders if self.orders else None


@dataclass(frozen=True, slots=True)
class Day:
    day: date
    orders: int
    sales: int


@dataclass(frozen=True, slots=True)
class StoreFigures:
    store: Store
    timezone: str
    day: date  # the store's local today
    today: Today
    days: tuple[Day, ...]  # DAYS of them, the oldest first, today last


@dataclass(frozen=True, slots=True)
class Panel:
    stores: tuple[StoreFigures, ...]
    total: Today
    # The chart: all the stores' days added up, day i of every store's calendar
    # (the same date unless the stores' time zones are on different dates).
    days: tuple[Day, ...]


def _bounds(zone: ZoneInfo, today: date, days: int) -> list[datetime]:
    """The UTC starts of the `days` local days ending `today`, and the end of today."""
    first = today - timedelta(days=days - 1)
    return [datetime.combine(first + timedelta(days=i), time(), zone) for i in range(days + 1)]


def _day_of(bounds: Sequence[datetime]) -> Any:
    """The index of an order's local day among `bounds` (0: the oldest)."""
    at = orders.c.ordered_at
    last = len(bounds) - 2
    if last == 0:
        return literal(0)
    return case(*[(at < b, i) for i, b in enumerate(bounds[1:-1])], else_=last)


Counted = dict[tuple[int, int], tuple[int, int, int, int, int]]


def _order_figures(
    conn: Connection, brand_id: int, store_ids: list[int], bounds: Sequence[datetime]
) -> Counted:
    """(store, day index) -> (orders, with a member, sales, points issued, redeemed)."""
    inner = (
        select(
            orders.c.store_id,
            _day_of(bounds).label("day"),
            orders.c.member_id,
            orders.c.payable,
            orders.c.points_earned,
            orders.c.points_redeemed,
        )
        .where(
            orders.c.brand_id == brand_id,
            orders.c.store_id.in_(store_ids),
            orders.c.ordered_at >= bounds[0],
            orders.c.ordered_at < bounds[-1],
        )
        .subquery()
    )
    rows = conn.execute(
        select(
            inner.c.store_id,
            inner.c.day,
            func.count(),
            func.count(inner.c.member_id),
            func.coalesce(func.sum(inner.c.payable), 0),
            func.coalesce(func.sum(inner.c.points_earned), 0),
            func.coalesce(func.sum(inner.c.points_redeemed), 0),
        ).group_by(inner.c.store_id, inner.c.day)
    )
    return {
        (r[0], int(r[1])): (int(r[2]), int(r[3]), int(r[4]), int(r[5]), int(r[6])) for r in rows
    }


def _past_days(
    ctx: Context, brand_id: int, zone_name: str, store_ids: list[int], bounds: list[datetime]
) -> Counted:
    """The days before today (`bounds` up to today's start), kept PAST_TTL seconds
    in this process: they change only by a late order (补单) for a past day, and
    adding up a month of a big brand's orders is the one slow figure."""
    key = ("reports.past_days", brand_id, zone_name, tuple(store_ids), len(bounds))
    first = bounds[0]

    def load() -> tuple[datetime, Counted]:
        with ctx.transaction(read_only=True) as conn:
            return first, _order_figures(conn, brand_id, store_ids, bounds)

    since, counted = ctx.remember(key, PAST_TTL, load)
    if since != first:  # a new day began: the days moved
        ctx.forget(key)
        since, counted = ctx.remember(key, PAST_TTL, load)
    return counted


def _coupons_used(
    conn: Connection, brand_id: int, store_ids: list[int], start: datetime, end: datetime
) -> dict[int, int]:
    """store -> coupons applied to its orders between `start` and `end`."""
    rows = conn.execute(
        select(orders.c.store_id, func.count())
        .select_from(order_benefits.join(orders, orders.c.id == order_benefits.c.order_id))
        .where(
            orders.c.brand_id == brand_id,
            orders.c.store_id.in_(store_ids),
            orders.c.ordered_at >= start,
            orders.c.ordered_at < end,
            order_benefits.c.coupon_id.is_not(None),
        )
        .group_by(orders.c.store_id)
    )
    return {r[0]: int(r[1]) for r in rows}


def readable_stores(conn: Connection, user: User, brand_id: int) -> list[Store]:
    """The brand's stores whose reports the user may read (a store manager: its own)."""
    rows = conn.execute(select(stores).where(stores.c.brand_id == brand_id).order_by(stores.c.id))
    found = [Store(r.id, r.brand_id, r.code, r.name, r.timezone, r.city, r.format) for r in rows]
    return [s for s in found if can(user, Action.REPORTS_READ, s.id)]


def home_panel(
    ctx: Context, user: User, brand_id: int, *, now: datetime | None = None, days: int = DAYS
) -> Panel:
    """Today's figures of every store the user may read, and the last `days` days'
    sales and orders. Forbidden `permission_denied` for a role without reports."""
    if not can_somewhere(user, Action.REPORTS_READ):
        require(user, Action.REPORTS_READ)
    at = ctx.now(now)
    with ctx.transaction(read_only=True) as conn:
        brand = load_brand(conn, brand_id)
        mine = readable_stores(conn, user, brand_id)
        by_zone: dict[str, list[Store]] = defaultdict(list)
        for s in mine:
            by_zone[s.timezone or brand.timezone].append(s)
        figures: dict[int, StoreFigures] = {}
        for zone_name, group in by_zone.items():
            zone = ZoneInfo(zone_name)
            today = at.astimezone(zone).date()
            bounds = _bounds(zone, today, days)
            ids = [s.id for s in group]
            past = _past_days(ctx, brand_id, zone_name, ids, bounds[:-1])
            today_counted = _order_figures(conn, brand_id, ids, bounds[-2:])
            coupons = _coupons_used(conn, brand_id, ids, bounds[-2], bounds[-1])
            for s in group:
                series = []
                for i in range(days - 1):
                    n, _members, sales, _earned, _spent = past.get((s.id, i), NONE)
                    series.append(Day(bounds[i].date(), n, sales))
                n, members, sales, earned, spent = today_counted.get((s.id, 0), NONE)
                series.append(Day(today, n, sales))
                figures[s.id] = StoreFigures(
                    s,
                    zone_name,
                    today,
                    Today(n, members, sales, earned, spent, coupons.get(s.id, 0)),
                    tuple(series),
                )
    ordered = tuple(figures[s.id] for s in mine)
    total = Today(
        sum(f.today.orders for f in ordered),
        sum(f.today.member_orders for f in ordered),
        sum(f.today.sales for f in ordered),
        sum(f.today.points_issued for f in ordered),
        sum(f.today.points_redeemed for f in ordered),
        sum(f.today.coupons_used for f in ordered),
    )
    brand_today = at.astimezone(brand.zone).date()
    chart = tuple(
        Day(
            brand_today - timedelta(days=days - 1 - i),
            sum(f.days[i].orders for f in ordered),
            sum(f.days[i].sales for f in ordered),
        )
        for i in range(days)
    )
    return Panel(ordered, total, chart)
