"""The console's home panel: today's figures per store (its local day) and the
30-day chart, checked against orders booked here; who may see which stores."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta

import pytest

from loyalpos.domain.accounts import Role
from loyalpos.domain.errors import Forbidden
from loyalpos.service.admin import accounts
from loyalpos.service.base.context import Context
from loyalpos.service.reports import figures as reports
from loyalpos.service.till import checkout
from loyalpos.web import render
from tests.conftest import Clock
from tests.integration.accounts_helpers import cheap_hashes  # noqa: F401
from tests.integration.checkout_helpers import Shop, cart, confirm_request, give_coupon, open_shop
from tests.integration.console_users import PASSWORD, browser, figure

pytestmark = pytest.mark.usefixtures("cheap_hashes")

# The test clock: 2024-01-01 04:00 UTC, noon in Shanghai (the brand's zone).
NOW = datetime(2024, 1, 1, 4, 0, tzinfo=UTC)


def _book(
    ctx: Context,
    shop: Shop,
    no: str,
    store: int,
    member: int | None,
    price: int,
    *,
    at: datetime | None = None,
    coupons: tuple[int, ...] = (),
    points_used: int = 0,
    paid: int | None = None,
) -> None:
    c = cart(store, member, ("latte", price, 1))
    req = confirm_request(
        no, c, paid or price, coupon_ids=coupons, points_used=points_used, ordered_at=at
    )
    checkout.confirm(ctx, shop.brand.id, req)


def _day(ctx: Context, clock: Clock) -> Shop:
    """Store A today: a member's order with a coupon, one without a member, one at
    00:30 local (16:30 UTC the day before); yesterday 23:30 local and 5 days ago.
    Store B today: a member's order paying with points."""
    shop = open_shop(ctx)
    coupon = give_coupon(ctx, shop, "mj100-20")
    clock.now = NOW - timedelta(days=5)
    _book(ctx, shop, "A-old", shop.store_a, shop.member, 2000)
    clock.now = NOW
    _book(ctx, shop, "A-1", shop.store_a, shop.member, 12000, coupons=(coupon,), paid=10000)
    _book(ctx, shop, "A-2", shop.store_a, None, 3000)
    _book(ctx, shop, "A-3", shop.store_a, None, 1500, at=datetime(2023, 12, 31, 16, 30, tzinfo=UTC))
    _book(ctx, shop, "A-y", shop.store_a, None, 999, at=datetime(2023, 12, 31, 15, 30, tzinfo=UTC))
    _book(ctx, shop, "B-1", shop.store_b, shop.member, 5000, points_used=200, paid=4800)
    return shop


def test_today_and_the_days_come_from_the_orders_booked(ctx: Context, clock: Clock) -> None:
    shop = _day(ctx, clock)
    admin = accounts.create_user(ctx, shop.brand.id, "boss", "Boss", Role.ADMIN, PASSWORD)
    panel = reports.home_panel(ctx, admin, shop.brand.id)
    a, b = panel.stores
    assert (a.store.id, b.store.id) == (shop.store_a, shop.store_b)
    assert a.day.isoformat() == "2024-01-01"
    # 120.00 less the 满100减20 coupon = 100.00, 100 points; A-2 30.00; A-3 15.00.
    assert a.today == reports.Today(
        orders=3,
        member_orders=1,
        sales=10000 + 3000 + 1500,
        points_issued=100,
        points_redeemed=0,
        coupons_used=1,
    )
    assert a.today.member_share == pytest.approx(1 / 3)
    # B-1: 50.00, 200 points pay 2.00 (100 points a yuan): 48.00, 48 points earned.
    assert b.today == reports.Today(1, 1, 4800, 48, 200, 0)
    assert panel.total == reports.Today(4, 2, 14500 + 4800, 148, 200, 1)
    # The chart: 30 days ending today; yesterday has A-y, five days ago A-old.
    assert len(panel.days) == reports.DAYS
    assert panel.days[-1] == reports.Day(datetime(2024, 1, 1).date(), 4, 19300)
    assert panel.days[-2] == reports.Day(datetime(2023, 12, 31).date(), 1, 999)
    assert panel.days[-6] == reports.Day(datetime(2023, 12, 27).date(), 1, 2000)
    assert sum(d.orders for d in panel.days) == 6


def test_a_store_manager_sees_its_stores_only(ctx: Context, clock: Clock) -> None:
    shop = _day(ctx, clock)
    manager = accounts.create_user(
        ctx,
        shop.brand.id,
        "mgr.b",
        "B 店长",
        Role.STORE_MANAGER,
        PASSWORD,
        store_ids=[shop.store_b],
    )
    panel = reports.home_panel(ctx, manager, shop.brand.id)
    assert [f.store.id for f in panel.stores] == [shop.store_b]
    assert panel.total == reports.Today(1, 1, 4800, 48, 200, 0)
    assert sum(d.orders for d in panel.days) == 1


def test_a_disabled_user_is_refused(ctx: Context, clock: Clock) -> None:
    shop = open_shop(ctx)
    user = accounts.create_user(ctx, shop.brand.id, "ana", "Ana", Role.ANALYST, PASSWORD)
    gone = accounts.disable_user(ctx, shop.brand.id, user.id)
    with pytest.raises(Forbidden):
        reports.home_panel(ctx, gone, shop.brand.id)


def test_the_page_shows_the_figures_and_the_chart_data(ctx: Context, clock: Clock) -> None:
    shop = _day(ctx, clock)
    client = browser(ctx, shop.brand.id, "ana", Role.ANALYST)
    page = client.get("/console")
    assert page.status_code == 200
    html = page.text
    assert figure(html, "orders") == "4"
    assert figure(html, "member-share") == "50%"
    assert figure(html, "sales") == "¥193.00"
    assert figure(html, "points-issued") == "148"
    assert figure(html, "points-redeemed") == "200"
    assert figure(html, "coupons-used") == "1"
    assert figure(html, "orders", "A") == "3"
    assert figure(html, "member-share", "A") == "33%"
    assert figure(html, "sales", "B") == "48.00"
    island = re.search(r'<script type="application/json" id="chart-data">(.*?)</script>', html)
    assert island is not None
    chart = json.loads(island.group(1))
    assert chart["days"][-1] == "2024-01-01" and len(chart["days"]) == 30
    assert chart["orders"][-2:] == [1, 4] and chart["sales"][-2:] == [9.99, 193.0]
    # The chart's library: ECharts from node_modules, at a hashed, cached URL.
    if not render.vendored("echarts.min.js"):
        pytest.skip(f"no {render.NODE_MODULES}/echarts: scripts/bootstrap installs it with npm")
    src = re.search(r'src="(/static/[0-9a-f]{12}/echarts\.min\.js)"', html)
    assert src is not None
    lib = client.get(src.group(1))
    assert lib.status_code == 200 and "immutable" in lib.headers["cache-control"]
    assert b"echarts" in lib.content[:2000]


def test_a_store_managers_page_lists_its_store_only(ctx: Context, clock: Clock) -> None:
    shop = _day(ctx, clock)
    html = (
        browser(ctx, shop.brand.id, "mgr", Role.STORE_MANAGER, stores=[shop.store_a])
        .get("/console")
        .text
    )
    assert 'data-code="A"' in html and 'data-code="B"' not in html
    assert figure(html, "orders") == "3"


def test_without_node_modules_the_page_says_the_chart_is_missing(
    ctx: Context, clock: Clock, monkeypatch: pytest.MonkeyPatch
) -> None:
    shop = _day(ctx, clock)
    monkeypatch.delitem(render.STATIC, "echarts.min.js", raising=False)
    html = browser(ctx, shop.brand.id, "ana", Role.ANALYST).get("/console?lang=en").text
    assert 'id="no-chart"' in html and "ECharts" in html
    assert "echarts.min.js" not in html and 'id="chart-data"' not in html
    assert figure(html, "orders") == "4"


def test_today_is_read_every_time_the_days_before_are_kept_a_while(
    ctx: Context, clock: Clock
) -> None:
    shop = _day(ctx, clock)
    admin = accounts.create_user(ctx, shop.brand.id, "boss", "Boss", Role.ADMIN, PASSWORD)
    first = reports.home_panel(ctx, admin, shop.brand.id)
    _book(ctx, shop, "A-4", shop.store_a, None, 700)
    _book(ctx, shop, "A-y2", shop.store_a, None, 1, at=datetime(2023, 12, 31, 15, 0, tzinfo=UTC))
    second = reports.home_panel(ctx, admin, shop.brand.id)
    assert second.total.orders == first.total.orders + 1  # today: at once
    assert second.days[-2] == first.days[-2]  # yesterday: kept (PAST_TTL)
    ctx.cache.clear()  # as when PAST_TTL has passed
    third = reports.home_panel(ctx, admin, shop.brand.id)
    assert third.days[-2].orders == first.days[-2].orders + 1
    # The next local day: the days move on, whatever was kept.
    clock.now = NOW + timedelta(days=1)
    moved = reports.home_panel(ctx, admin, shop.brand.id)
    assert moved.days[-2].day.isoformat() == "2024-01-01" and moved.days[-1].orders == 0
    assert moved.days[-2].orders == third.days[-1].orders
