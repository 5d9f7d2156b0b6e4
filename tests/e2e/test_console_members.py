"""The console's members part in a real browser (Debian's chromium, Playwright),
against `loyalpos serve` with the demo data, on SQLite and on PostgreSQL: issue
14's proofs (3) member 360 shows a member's lots and expiry dates, and a points
adjustment without a reason is refused; (4) a coupon issued to a CSV list of
members, repeated, issues once. Each step photographed at 1280x800 under the
folder printed at the start (var/screenshots/console-<database>/ unless
$LOYALPOS_SCREENSHOTS says otherwise)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.browsing import chromium, screen, served, shots_folder
from tests.e2e.live import DEMO_HQ_KEY

pytestmark = [pytest.mark.slow]

LI_NA, ZHANG_WEI, WANG_FANG = "13912345678", "13800138000", "13700001111"

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


class Site:
    def __init__(self, base: str, db: str) -> None:
        self.base, self.db = base, db
        self.hq = httpx.Client(
            base_url=base, headers={"Authorization": f"Bearer {DEMO_HQ_KEY}"}, timeout=10
        )

    def member_id(self, phone: str) -> int:
        found = self.hq.post("/v1/members/lookup", json={"phone": phone})
        assert found.status_code == 200, found.text
        return int(found.json()["id"])

    def points(self, member_id: int) -> int:
        got = self.hq.get(f"/v1/members/{member_id}/points")
        assert got.status_code == 200, got.text
        return int(got.json()["total"])

    def coupons(self, member_id: int, template: str) -> int:
        got = self.hq.get(f"/v1/members/{member_id}/coupons")
        assert got.status_code == 200, got.text
        return sum(1 for c in got.json() if c["template"] == template)

    def shots(self) -> Path:
        return shots_folder("console", self.db)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("console-members")
    with served(request.param, tmp_path) as (base, url):
        found = Site(base, request.param)
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
    p.screenshot(path=str(site.shots() / f"members-{name}.png"), full_page=full)


def sign_in(p: Any, login: str = "operator") -> None:
    p.goto("/console/sign-in")
    p.fill("#brand", "demo")
    p.fill("#login", login)
    p.fill("#password", "demo-password")
    with p.expect_navigation():
        p.keyboard.press("Enter")
    assert p.url.endswith("/console"), p.url


def test_member_360_shows_lots_and_lapse_dates_and_refuses_an_adjustment_without_reason(
    page: Any, site: Site
) -> None:
    p = page
    li = site.member_id(LI_NA)
    # Two more lots of 李娜's with their own lapse dates, as an import would make.
    for points, lapse in ((300, "2030-06-30"), (120, "2029-12-31")):
        booked = site.hq.post(
            f"/v1/members/{li}/points/adjust",
            json={
                "points": points,
                "reason": "迁移旧系统积分",
                "operator": "e2e",
                "expires_on": lapse,
            },
        )
        assert booked.status_code == 201, booked.text
    before = site.points(li)
    sign_in(p)
    p.click("nav.menu >> text=会员")
    expect(p.locator("#q")).to_be_focused()
    p.fill("#q", "李")
    p.keyboard.press("Enter")
    expect(p.locator(f'#found tr[data-id="{li}"]')).to_be_visible()
    shot(p, site, "1-search")
    p.click(f'#found tr[data-id="{li}"] a')
    expect(p.locator("h1")).to_contain_text("李娜")
    lots = p.locator("#lots tbody tr")
    expect(lots).to_have_count(3)
    expect(p.locator("#lots")).to_contain_text("2029-12-31")
    expect(p.locator("#lots")).to_contain_text("2030-06-30")
    expect(p.locator("#schedule")).to_contain_text("2029-12-31: 120")
    expect(p.locator("#balance")).to_have_text(str(before))
    expect(p.locator("#progress")).to_contain_text("银卡")
    expect(p.locator("#ledger")).to_contain_text("迁移旧系统积分")
    shot(p, site, "2-member-360")
    p.locator("#lots").scroll_into_view_if_needed()
    shot(p, site, "3-lots-and-adjust-form")
    # An adjustment without a reason: refused next to the field, nothing booked.
    p.fill("#points", "50")
    with p.expect_navigation():
        p.click("#adjust button[type=submit]")
    error = p.locator("#reason-error")
    expect(error).to_be_visible()
    expect(error).to_contain_text("请填写调整积分的原因")
    expect(p.locator("#reason")).to_have_attribute("aria-invalid", "true")
    expect(p.locator("#reason")).to_be_focused()
    expect(p.locator("#points")).to_have_value("50")
    p.locator("#adjust").scroll_into_view_if_needed()
    shot(p, site, "4-adjust-without-reason-refused")
    assert site.points(li) == before
    # Taking away more than the balance: refused next to the points.
    p.fill("#points", str(-(before + 1)))
    p.fill("#reason", "纠正重复积分")
    with p.expect_navigation():
        p.click("#adjust button[type=submit]")
    expect(p.locator("#points-error")).to_contain_text("积分不足")
    p.locator("#adjust").scroll_into_view_if_needed()
    shot(p, site, "5-adjust-beyond-balance-refused")
    assert site.points(li) == before
    # With a reason it is booked, and the ledger says who and why.
    p.fill("#points", "-50")
    p.fill("#reason", "纠正重复积分")
    with p.expect_navigation():
        p.click("#adjust button[type=submit]")
    expect(p.locator("p.ok")).to_contain_text("积分已调整")
    expect(p.locator("#balance")).to_have_text(str(before - 50))
    expect(p.locator("#ledger tbody tr").first).to_contain_text("纠正重复积分")
    expect(p.locator("#ledger tbody tr").first).to_contain_text("operator")
    shot(p, site, "6-adjusted")
    assert site.points(li) == before - 50


def test_a_csv_list_issued_twice_issues_once(page: Any, site: Site) -> None:
    p = page
    ids = [site.member_id(phone) for phone in (ZHANG_WEI, WANG_FANG)]
    before = [site.coupons(m, "breakfast") for m in ids]
    content = f"手机号\n{ZHANG_WEI}\n{ids[1]}\n12345\n".encode()
    sign_in(p)
    p.goto("/console/members")
    p.click("text=名单发券（CSV）")
    expect(p.locator("h1")).to_have_text("名单发券")
    # Without a file: said next to the field.
    p.select_option("#template", "breakfast")
    with p.expect_navigation():
        p.click("#upload button[type=submit]")
    expect(p.locator("#file-error")).to_contain_text("请选择 CSV 文件")
    shot(p, site, "7-list-without-file")

    def upload() -> None:
        p.select_option("#template", "breakfast")
        p.set_input_files(
            "#file", files=[{"name": "名单.csv", "mimeType": "text/csv", "buffer": content}]
        )
        with p.expect_navigation():
            p.click("#upload button[type=submit]")
        expect(p.locator("#report")).to_be_visible()

    upload()
    expect(p.locator("#issued")).to_have_text("2")
    expect(p.locator("#skipped")).to_have_text("0")
    expect(p.locator("#rejected")).to_have_text("1")
    expect(p.locator("#rejections")).to_contain_text("12345")
    shot(p, site, "8-list-first-upload")
    assert [site.coupons(m, "breakfast") for m in ids] == [n + 1 for n in before]
    upload()
    expect(p.locator("#issued")).to_have_text("0")
    expect(p.locator("#skipped")).to_have_text("2")
    shot(p, site, "9-list-second-upload-issues-nothing")
    assert [site.coupons(m, "breakfast") for m in ids] == [n + 1 for n in before]
    # The member 360 page shows the coupon once.
    p.goto(f"/console/members/{ids[0]}")
    expect(p.locator("#coupons")).to_contain_text("早餐套餐券")
    p.locator("#coupons").scroll_into_view_if_needed()
    shot(p, site, "10-member-coupons")


def test_an_analyst_is_denied_the_members_pages(page: Any, site: Site) -> None:
    p = page
    sign_in(p, "analyst")
    expect(p.locator("nav.menu")).not_to_contain_text("会员")
    p.goto("/console/members")
    expect(p.locator("h1")).to_have_text("没有权限")
    shot(p, site, "11-analyst-denied")
