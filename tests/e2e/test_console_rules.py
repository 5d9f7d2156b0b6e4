"""The console's rules in a real browser (Debian's chromium, Playwright), against
`loyalpos serve` with the demo data, on SQLite and on PostgreSQL: issue 14's
proofs (1) an operator creates a coupon template in the form (a validation
message next to a bad field first), adds a promotion, tries a cart against the
draft, publishes it with an effective time, and the till's next quote applies
it; (2) the version history shows the difference between two versions. Each
step is photographed under var/screenshots/console-<database>/ (or
$LOYALPOS_SCREENSHOTS/console-<database>/), the folder printed at the start.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.e2e.browsing import chromium, screen, served, shots_folder

pytestmark = [pytest.mark.slow]

BEANS = "6901234000054"  # 咖啡豆 250g, ¥98.00, category beans

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


class Site:
    def __init__(self, base: str, db: str) -> None:
        self.base, self.db = base, db

    def shots(self) -> Path:
        return shots_folder("console", self.db)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("console-rules")
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
    p.screenshot(path=str(site.shots() / f"{name}.png"), full_page=full)


def console_sign_in(p: Any, login: str) -> None:
    p.goto("/console/sign-in")
    p.fill("#brand", "demo")
    p.fill("#login", login)
    p.fill("#password", "demo-password")
    with p.expect_navigation():
        p.keyboard.press("Enter")
    assert p.url.endswith("/console"), p.url


def till_sign_in(p: Any) -> None:
    p.goto("/till/sign-in")
    p.fill("#brand", "demo")
    p.fill("#store", "SH001")
    p.fill("#terminal", "01")
    p.fill("#number", "1001")
    p.fill("#pin", "1234")
    with p.expect_navigation():
        p.keyboard.press("Enter")
    assert p.url.endswith("/till"), p.url
    expect(p.locator("#scan")).to_be_focused()


def test_an_operator_drafts_tries_and_publishes_and_the_till_applies_it(
    page: Any, site: Site
) -> None:
    p = page
    console_sign_in(p, "operator")
    p.click("nav.menu >> text=规则")
    expect(p.locator("h1")).to_have_text("规则")
    expect(p.locator("#versions tr[data-version='1']")).to_contain_text("已发布")
    shot(p, site, "1-01-versions")
    with p.expect_navigation():
        p.click("#new-draft")
    draft = int(p.url.rsplit("/", 1)[1])
    expect(p.locator("#status")).to_have_text("草稿")
    shot(p, site, "1-02-draft")

    # A coupon template: a bad field first, its message in Chinese next to it.
    p.click("#new-coupons")
    expect(p.locator("#id")).to_be_focused()
    p.fill("#id", "beans-20")
    p.fill("#name", "咖啡豆满80减20")
    p.select_option("#kind", "threshold")
    p.fill("#threshold_fen", "8000")
    p.fill("#amount_fen", "-20")
    p.fill("#scope_categories", "beans")
    p.fill("#valid_from", "2024-01-01T00:00")
    p.fill("#valid_to", "2030-12-31T23:59")
    with p.expect_navigation():
        p.click("#save")
    expect(p.locator("#amount_fen-error")).to_have_text("不能小于 0。")
    expect(p.locator("#amount_fen")).to_have_attribute("aria-invalid", "true")
    expect(p.locator("#amount_fen")).to_be_focused()
    shot(p, site, "1-03-coupon-refused", full=True)
    p.fill("#amount_fen", "2000")
    with p.expect_navigation():
        p.click("#save")
    expect(p.locator("#coupons-list tr[data-id='beans-20']")).to_contain_text("咖啡豆满80减20")

    # A promotion (automatic: no wallet needed), seen at the till once published.
    p.click("#new-promotions")
    p.fill("#id", "beans-9")
    p.fill("#name", "咖啡豆满90减9")
    p.select_option("#kind", "threshold")
    p.fill("#threshold_fen", "9000")
    p.fill("#amount_fen", "900")
    p.fill("#scope_categories", "beans")
    shot(p, site, "1-04-promotion-form", full=True)
    with p.expect_navigation():
        p.click("#save")
    expect(p.locator("#promotions-list tr[data-id='beans-9']")).to_contain_text("咖啡豆满90减9")
    shot(p, site, "1-05-draft-with-both")

    # Try a cart against the draft: the till's quote and explanation.
    p.select_option("#store", "SH001")
    p.fill("#lines", "beans 9800 1 beans")
    with p.expect_navigation():
        p.click("#try-form button[type=submit]")
    expect(p.locator("#tried-applied")).to_contain_text("咖啡豆满90减9")
    expect(p.locator("#tried-payable")).to_have_text("¥89.00")
    assert p.locator("#tried-explanation li").count() >= 1
    p.locator("#tried").scroll_into_view_if_needed()
    shot(p, site, "1-06-tried")

    # Publish, effective from now (the brand's time, the minute started).
    start = p.input_value("#effective_from")
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d", start), start
    p.locator("#publish-form").scroll_into_view_if_needed()
    shot(p, site, "1-07-publish")
    with p.expect_navigation():
        p.click("#publish-button")
    row = p.locator(f"#versions tr[data-version='{draft}']")
    expect(row).to_contain_text("已发布")
    expect(row).to_contain_text("operator")
    expect(p.locator("#in-force")).to_have_text(str(draft))
    shot(p, site, "1-08-published")

    # The cashier's next quote applies it.
    till_sign_in(p)
    p.keyboard.type(BEANS)
    with p.expect_response(re.compile(r"/till/api/quote$")) as answer:
        p.keyboard.press("Enter")
    assert answer.value.status == 200
    q = answer.value.json()
    assert q["rule_version"] == draft, q
    assert "beans-9" in [a["benefit"] for a in q["applied"]], q["applied"]
    expect(p.locator("#total")).to_have_text("¥89.00")
    expect(p.locator("#applied")).to_contain_text("咖啡豆满90减9")
    shot(p, site, "1-09-till-applies-it")


def test_the_history_shows_the_difference_between_two_versions(page: Any, site: Site) -> None:
    p = page
    console_sign_in(p, "analyst")
    p.goto("/console/rules")
    versions = p.locator("#versions tbody tr").count()
    assert versions >= 2, "the first test published a second version"
    expect(p.locator("#new-draft")).to_have_count(0)  # an analyst reads only
    p.select_option("#old", "1")
    p.select_option("#new", "2")
    shot(p, site, "2-01-history")
    with p.expect_navigation():
        p.click("#compare button[type=submit]")
    diff = p.locator("#diff")
    expect(diff).to_contain_text("+  name: 咖啡豆满90减9")
    expect(diff).to_contain_text("--- version 1")
    expect(diff.locator(".add").first).to_be_visible()
    shot(p, site, "2-02-difference", full=True)
    p.goto("/console/rules/2/coupons/new")
    expect(p.locator("main")).to_contain_text("没有权限")
    shot(p, site, "2-03-analyst-refused")


def test_an_earning_rule_form_says_what_is_wrong_next_to_the_field(page: Any, site: Site) -> None:
    p = page
    console_sign_in(p, "operator")
    p.goto("/console/rules")
    with p.expect_navigation():
        p.click("#new-draft")
    p.click("#new-earn")
    p.fill("#id", "tea-x2")
    p.select_option("#kind", "category_rate")
    p.fill("#multiplier", "0")
    p.fill("#scope_categories", "tea")
    with p.expect_navigation():
        p.click("#save")
    expect(p.locator("#multiplier-error")).to_have_text("必须大于 0。")
    shot(p, site, "3-01-earning-rule-refused", full=True)
    p.fill("#multiplier", "2")
    with p.expect_navigation():
        p.click("#save")
    expect(p.locator("#earn-list tr[data-id='tea-x2']")).to_contain_text("category_rate")
    p.locator("#earn").scroll_into_view_if_needed()
    shot(p, site, "3-02-earning-rule-saved")
