"""The console's home panel in a real browser (Debian's chromium, Playwright),
against `loyalpos serve` with the demo data, on SQLite and on PostgreSQL: orders
booked through the API show in today's figures (the numbers of their receipts),
and the 30-day chart is drawn by ECharts (npm, served from node_modules) on a
canvas; then the admin pages. Screenshots under var/screenshots/console-<db>/
(or $LOYALPOS_SCREENSHOTS), printed at the start."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, text

from loyalpos.web.render import NODE_MODULES, vendored
from tests.e2e.browsing import chromium, screen, served, shots_folder
from tests.e2e.live import DEMO_HQ_KEY

pytestmark = [pytest.mark.slow]

LI_NA = "13912345678"

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


class Site:
    def __init__(self, base: str, db: str, url: str) -> None:
        self.base, self.db, self.url = base, db, url
        self.hq = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {DEMO_HQ_KEY}"}, timeout=10
        )

    def shots(self) -> Path:
        return shots_folder("console", self.db)

    def store_id(self, code: str) -> int:
        engine = create_engine(self.url)
        try:
            with engine.connect() as conn:
                found = conn.execute(text("SELECT id FROM stores WHERE code = :c"), {"c": code})
                return int(found.one()[0])
        finally:
            engine.dispose()

    def book(
        self, store: str, order_no: str, price: int, *, member: bool, ago: timedelta | None = None
    ) -> dict[str, Any]:
        """A paid order at `store` through the API; its receipt."""
        cart: dict[str, Any] = {
            "store_id": self.store_id(store),
            "lines": [{"sku": "e2e-cake", "category": "bakery", "unit_price_fen": price, "qty": 1}],
        }
        if member:
            cart["member"] = {"phone": LI_NA}
        quote = self.hq.post("/v1/quotes", json=cart)
        assert quote.status_code == 200, quote.text
        coupons = [int(a["coupon_id"]) for a in quote.json()["applied"] if a["coupon_id"]]
        body = {
            **cart,
            "coupon_ids": coupons,
            "order_no": order_no,
            "tenders": [{"method": "cash", "amount_fen": quote.json()["payable_fen"]}],
            "cashier": "1001",
            "terminal": "01",
        }
        if ago is not None:
            body["ordered_at"] = (datetime.now(UTC) - ago).isoformat()
        done = self.hq.post("/v1/orders", json=body)
        assert done.status_code == 201, done.text
        receipt: dict[str, Any] = done.json()
        receipt["coupons"] = len(coupons)
        return receipt


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("console")
    with served(request.param, tmp_path) as (base, url):
        found = Site(base, request.param, url)
        print(f"\nscreenshots: {found.shots()}")
        yield found


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = screen(browser, site.base)
    yield context.new_page()
    context.close()


def shot(p: Any, site: Site, name: str, *, full: bool = False) -> None:
    p.screenshot(path=str(site.shots() / f"{name}.png"), full_page=full)


def sign_in(p: Any, login: str) -> None:
    p.goto("/console/sign-in")
    p.fill("#brand", "demo")
    p.fill("#login", login)
    p.fill("#password", "demo-password")
    with p.expect_navigation():
        p.keyboard.press("Enter")
    assert p.url.endswith("/console"), p.url


def cell(p: Any, figure: str, code: str | None = None) -> str:
    scope = f'#today tr[data-code="{code}"] ' if code else "#today-total "
    return str(p.inner_text(f'{scope}[data-figure="{figure}"]')).strip()


def test_the_home_panel_shows_todays_orders_and_draws_the_chart(page: Any, site: Site) -> None:
    if not vendored("echarts.min.js"):
        pytest.skip(f"no {NODE_MODULES}/echarts: scripts/bootstrap installs it with npm")
    p = page
    site.book("SH001", f"E2E-{site.db}-old", 4200, member=False, ago=timedelta(days=3))
    sign_in(p, "admin")
    expect(p.locator("#chart canvas")).to_have_count(1)
    shot(p, site, "01-home-before")
    before = {f: int(cell(p, f, "SH001")) for f in ("orders", "points-issued", "coupons-used")}
    sales_before = cell(p, "sales", "SH001")
    # Today at SH001: a member's order and one without; BJ001 one.
    a = site.book("SH001", f"E2E-{site.db}-1", 5800, member=True)
    b = site.book("SH001", f"E2E-{site.db}-2", 1250, member=False)
    c = site.book("BJ001", f"E2E-{site.db}-3", 3300, member=False)
    p.reload()
    expect(p.locator("#chart canvas")).to_have_count(1)
    expect(p.locator("#chart")).to_have_attribute("data-drawn", "true")
    orders = before["orders"] + 2
    assert int(cell(p, "orders", "SH001")) == orders
    assert int(cell(p, "orders", "BJ001")) >= 1
    paid = a["payable_fen"] + b["payable_fen"]
    fen = round(float(sales_before) * 100) + paid
    assert cell(p, "sales", "SH001") == f"{fen // 100}.{fen % 100:02d}"
    issued = a["points_earned"] + b["points_earned"]
    assert int(cell(p, "points-issued", "SH001")) == before["points-issued"] + issued
    assert a["points_earned"] > 0 and c["payable_fen"] == 3300
    used = a["coupons"] + b["coupons"]
    assert used > 0 and int(cell(p, "coupons-used", "SH001")) == before["coupons-used"] + used
    if before["orders"] == 0:
        assert cell(p, "member-share", "SH001") == "50%"
    # The chart's canvas has been painted (not blank).
    painted = p.evaluate(
        """() => { const c = document.querySelector('#chart canvas');
                   const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
                   let n = 0; for (let i = 3; i < d.length; i += 4) if (d[i]) n++; return n; }"""
    )
    assert painted > 1000, painted
    p.locator("#chart").scroll_into_view_if_needed()
    shot(p, site, "02-home-after-orders", full=True)


def test_a_store_manager_sees_its_store_and_manages_its_staff(page: Any, site: Site) -> None:
    p = page
    sign_in(p, "manager.sh001")
    expect(p.locator('#today tr[data-code="SH001"]')).to_have_count(1)
    expect(p.locator('#today tr[data-code="BJ001"]')).to_have_count(0)
    shot(p, site, "03-manager-home", full=True)
    p.click('nav.menu a[href="/console/staff"]')
    expect(p.locator('#staff tr[data-number="1001"]')).to_have_count(1)
    p.click("text=新增员工")
    p.fill("#number", "77")
    p.fill("#name", "小李")
    p.fill("#pin", "12")
    p.click("button[type=submit]:has-text('创建')")
    expect(p.locator("#pin-error")).to_have_text("PIN 为 4-8 位数字。")
    shot(p, site, "04-staff-pin-error")
    p.fill("#pin", "2468")
    p.click("button[type=submit]:has-text('创建')")
    expect(p.locator('#staff tr[data-number="77"]')).to_have_count(1)
    shot(p, site, "05-staff-list")


def test_an_admin_creates_a_key_and_a_user(page: Any, site: Site) -> None:
    p = page
    sign_in(p, "admin")
    p.click('nav.menu a[href="/console/keys"]')
    p.click("text=新建密钥")
    p.fill("#name", "SH001 自助机")
    p.select_option("#scope", "cashier")
    p.click("button[type=submit]:has-text('创建')")
    expect(p.locator("#store-error")).to_have_text("收银密钥需要选择门店。")
    p.select_option("#store", index=1)
    p.click("button[type=submit]:has-text('创建')")
    secret = str(p.inner_text("#secret")).strip()
    assert secret.startswith("lp_")
    shot(p, site, "06-key-secret-once")
    keys = httpx.get(
        f"{site.base}/v1/keys", headers={"Authorization": f"Bearer {secret}"}, timeout=10
    )
    assert keys.status_code == 403, keys.text  # a working key, of a cashier: not HQ's list
    assert keys.json()["error"]["code"] == "hq_key_required"
    p.click('nav.menu a[href="/console/users"]')
    p.click("text=新建用户")
    p.fill("#login", "e2e.manager")
    p.fill("#display_name", "E2E 店长")
    p.select_option("#new-role", "store_manager")
    p.fill("#password", "a-long-password")
    p.click("button[type=submit]:has-text('创建')")
    expect(p.locator("#stores-error")).to_have_text("店长至少需要一个门店。")
    shot(p, site, "07-user-stores-error")
    p.check("#stores input[type=checkbox] >> nth=0")
    p.fill("#password", "a-long-password")
    p.click("button[type=submit]:has-text('创建')")
    expect(p.locator('#users tr[data-login="e2e.manager"]')).to_have_count(1)
    shot(p, site, "08-users")
