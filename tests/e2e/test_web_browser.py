"""The sign-in pages in a real browser: Debian's chromium driven by Playwright
(no browser download) against `loyalpos serve` on SQLite.

Screenshots go to $LOYALPOS_SCREENSHOTS, or var/screenshots/ of the checkout;
the folder is printed (pytest -s shows it) so a person can look at them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.live import live_server

pytestmark = [pytest.mark.slow]

CHROMIUM = "/usr/bin/chromium"
SHOTS = Path(
    os.environ.get("LOYALPOS_SCREENSHOTS") or Path(__file__).parents[2] / "var" / "screenshots"
)

playwright_sync = pytest.importorskip("playwright.sync_api")


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    tmp_path = tmp_path_factory.mktemp("web")
    with live_server(f"sqlite:///{tmp_path / 'web.db'}", tmp_path) as (_proc, url, _log):
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    if not Path(CHROMIUM).exists():
        pytest.skip(f"{CHROMIUM} is missing (.ci/run installs Debian's chromium)")
    SHOTS.mkdir(parents=True, exist_ok=True)
    print(f"\nscreenshots: {SHOTS}")
    with playwright_sync.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True)
        yield b
        b.close()


@pytest.fixture
def page(browser: object, base: str) -> Iterator[object]:
    context = browser.new_context(  # type: ignore[attr-defined]
        base_url=base, viewport={"width": 1024, "height": 768}, locale="zh-CN"
    )
    yield context.new_page()
    context.close()


def _shot(page: object, name: str) -> None:
    page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _till(page: object, number: str, pin: str, store: str = "SH001") -> None:
    """Sign in at the till by keyboard alone: typed fields, Tab, and Enter."""
    p: object = page
    p.goto("/till/sign-in")  # type: ignore[attr-defined]
    p.fill("#brand", "demo")  # type: ignore[attr-defined]
    p.fill("#store", store)  # type: ignore[attr-defined]
    p.fill("#number", number)  # type: ignore[attr-defined]
    p.focus("#pin")  # type: ignore[attr-defined]
    p.keyboard.type(pin)  # type: ignore[attr-defined]
    with p.expect_navigation():  # type: ignore[attr-defined]
        p.keyboard.press("Enter")  # type: ignore[attr-defined]


def test_a_cashier_signs_in_and_sees_the_till(page: object) -> None:
    p: object = page
    p.goto("/")  # type: ignore[attr-defined]
    assert p.url.endswith("/till/sign-in")  # type: ignore[attr-defined]
    # The first field has the focus: a cashier can start typing at once.
    assert p.evaluate("document.activeElement.id") == "brand"  # type: ignore[attr-defined]
    _shot(p, "till-sign-in-zh")
    _till(p, "1001", "1234")
    assert p.url.endswith("/till")  # type: ignore[attr-defined]
    assert "SH001" in p.inner_text("header")  # type: ignore[attr-defined]
    assert "1001" in p.inner_text("#cashier")  # type: ignore[attr-defined]
    # The selling screen's scan field has the focus: the first scan needs no click.
    assert p.evaluate("document.activeElement.id") == "scan"  # type: ignore[attr-defined]
    _shot(p, "till-signed-in-zh")
    p.click("form.sign-out button")  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r"/till/sign-in$"))  # type: ignore[attr-defined]


def test_five_wrong_pins_lock_and_the_page_says_until_when(page: object) -> None:
    p: object = page
    for left in (4, 3, 2, 1):
        _till(p, "2001", "9999", store="BJ001")
        assert f"还可尝试 {left} 次" in p.inner_text("#pin-error")  # type: ignore[attr-defined]
    _till(p, "2001", "9999", store="BJ001")
    message = p.inner_text("#pin-error")  # type: ignore[attr-defined]
    assert re.search(r"已锁定至 \d\d:\d\d", message), message
    # The focus is back on the field the error is about.
    assert p.evaluate("document.activeElement.id") == "pin"  # type: ignore[attr-defined]
    _shot(p, "till-locked-zh")


def test_a_post_without_the_csrf_token_is_refused(page: object) -> None:
    p: object = page
    p.goto("/till/sign-in?lang=en")  # type: ignore[attr-defined]
    p.evaluate("document.querySelector('input[name=csrf]').remove()")  # type: ignore[attr-defined]
    p.fill("#brand", "demo")  # type: ignore[attr-defined]
    p.fill("#store", "SH001")  # type: ignore[attr-defined]
    p.fill("#number", "1001")  # type: ignore[attr-defined]
    p.fill("#pin", "1234")  # type: ignore[attr-defined]
    with p.expect_navigation() as nav:  # type: ignore[attr-defined]
        p.press("#pin", "Enter")  # type: ignore[attr-defined]
    assert nav.value.status == 403
    assert "Request refused" in p.inner_text("h1")  # type: ignore[attr-defined]
    _shot(p, "refused-en")


def test_the_english_page_on_lang_en(page: object) -> None:
    p: object = page
    p.goto("/till/sign-in?lang=en")  # type: ignore[attr-defined]
    assert p.inner_text("h1") == "Till sign-in"  # type: ignore[attr-defined]
    assert p.get_attribute("html", "lang") == "en"  # type: ignore[attr-defined]
    _till(p, "1001", "0000")
    assert "Wrong PIN: 4 tries left" in p.inner_text("#pin-error")  # type: ignore[attr-defined]
    _shot(p, "till-wrong-pin-en")


def test_hq_sign_in_as_analyst_shows_the_role(page: object) -> None:
    p: object = page
    p.goto("/console/sign-in")  # type: ignore[attr-defined]
    p.fill("#brand", "demo")  # type: ignore[attr-defined]
    p.fill("#login", "analyst")  # type: ignore[attr-defined]
    p.fill("#password", "demo-password")  # type: ignore[attr-defined]
    with p.expect_navigation():  # type: ignore[attr-defined]
        p.press("#password", "Enter")  # type: ignore[attr-defined]
    p.wait_for_url(re.compile(r"/console$"))  # type: ignore[attr-defined]
    assert "analyst" in p.inner_text("#role")  # type: ignore[attr-defined]
    assert "分析师" in p.inner_text("#role")  # type: ignore[attr-defined]
    _shot(p, "console-analyst-zh")
