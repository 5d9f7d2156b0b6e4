"""The HQ console's operations in a real browser (Debian's chromium, Playwright),
against `loyalpos serve` with the demo data, on SQLite and on PostgreSQL: issue
14's proofs (5) a dead webhook delivery is replayed, and (6) an analyst can read
but every form that writes is refused, a store manager sees only their stores
(and refunds one of its orders: preview, then confirm). Each step is photographed
under the folder printed at the start (var/screenshots/console-<database>/).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from loyalpos.config import Settings
from loyalpos.db.engine import make_engine
from loyalpos.domain.pricing.model import CartLine, Options
from loyalpos.domain.webhooks import RetryPolicy
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.events import webhooks, worker
from loyalpos.service.loyalty import members
from loyalpos.service.till import checkout, receipts
from tests.conftest import TEST_SECRET
from tests.e2e.browsing import chromium, screen, served, shots_folder

pytestmark = [pytest.mark.slow]

DEAD_URL = "http://127.0.0.1:9/hook"  # nothing listens on the discard port

playwright_sync = pytest.importorskip("playwright.sync_api")
expect = playwright_sync.expect


class Site:
    """The server under test, and the same database through the service layer."""

    def __init__(self, base: str, db: str, url: str) -> None:
        self.base, self.db, self.url = base, db, url
        settings = Settings(
            env="test", database_url=url, secret_key=TEST_SECRET, webhook_private_network=True
        )
        self.ctx = Context(make_engine(url), settings)
        self.brand_id = brands.brand_by_code(self.ctx, "demo").id
        self.stores = {s.code: s.id for s in brands.list_stores(self.ctx, self.brand_id)}

    def book(self, store: str, order_no: str) -> None:
        member = members.by_phone(self.ctx, self.brand_id, "13800138000").id
        cart = checkout.CartRequest(
            self.stores[store],
            (CartLine("latte", "coffee", 3200, 2, "拿铁"),),
            checkout.MemberRef(member_id=member),
            Options(),
        )
        paid = checkout.quote(self.ctx, self.brand_id, cart).as_json()["payable_fen"]
        tender = checkout.Tender("wechat", paid, f"wx-{order_no}")
        checkout.confirm(
            self.ctx,
            self.brand_id,
            checkout.ConfirmRequest(order_no, cart, (tender,), "1001", "T1"),
        )

    def shots(self) -> Path:
        return shots_folder("console", self.db)


@pytest.fixture(scope="module", params=["sqlite", "postgresql"])
def site(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Site]:
    tmp_path = tmp_path_factory.mktemp("console-ops")
    env = {"LOYALPOS_WEBHOOK_PRIVATE_NETWORK": "true"}
    with served(request.param, tmp_path, env) as (base, url):
        found = Site(base, request.param, url)
        found.book("SH001", "SH-E1")
        found.book("SH001", "SH-E2")
        found.book("BJ001", "BJ-E1")
        print(f"\nscreenshots: {found.shots()}")
        yield found
        found.ctx.engine.dispose()


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with chromium() as b:
        yield b


@pytest.fixture
def page(browser: Any, site: Site) -> Iterator[Any]:
    context = screen(browser, site.base)
    yield context.new_page()
    context.close()


def shot(p: Any, site: Site, name: str) -> None:
    p.screenshot(path=str(site.shots() / f"{name}.png"), full_page=True)


def sign_in(p: Any, login: str) -> None:
    p.goto("/console/sign-in")
    p.fill("#brand", "demo")
    p.fill("#login", login)
    p.fill("#password", "demo-password")
    with p.expect_navigation():
        p.click("button[type=submit]")
    expect(p.locator("#role")).to_be_visible()


def csrf(p: Any) -> str:
    return str(p.locator("meta[name=csrf-token]").get_attribute("content"))


def test_a_dead_webhook_delivery_is_replayed(page: Any, site: Site) -> None:
    p = page
    sign_in(p, "admin")
    p.click("nav.menu >> text=Webhook 回调")
    expect(p.locator("h1")).to_have_text("Webhook 回调")
    # a bad address first: the message next to the field
    p.fill("#url", "ftp://nowhere")
    p.check("input[name=events][value='order.paid']")
    with p.expect_navigation():
        p.click("#subscribe button[type=submit]")
    expect(p.locator("#url-error")).to_be_visible()
    shot(p, site, "01-webhook-bad-url")
    p.fill("#url", DEAD_URL)
    with p.expect_navigation():
        p.click("#subscribe button[type=submit]")
    expect(p.locator("#secret")).to_contain_text("whsec_")
    shot(p, site, "02-webhook-subscribed")
    # an order paid; the worker's one attempt finds nobody: a dead letter
    site.book("SH001", "SH-HOOK")
    worker.dispatch_outbox(site.ctx)
    with httpx.Client(timeout=2) as client:
        worker.deliver_due(site.ctx, None, client, policy=RetryPolicy(max_attempts=1))
    (dead,) = webhooks.list_deliveries(site.ctx, site.brand_id, status="dead")
    p.goto("/console/webhooks")
    p.click("#show-dead")
    row = p.locator(f"tr[data-delivery='{dead.id}']")
    expect(row).to_have_attribute("data-status", "dead")
    expect(p.locator("#delivery-list tbody tr")).to_have_count(1)
    shot(p, site, "03-webhook-dead-letter")
    with p.expect_navigation():
        row.locator("button").click()
    expect(p.locator("#said")).to_contain_text(str(dead.id))
    expect(p.locator(f"tr[data-delivery='{dead.id}']")).to_have_attribute("data-status", "pending")
    shot(p, site, "04-webhook-replayed")
    again = webhooks.get_delivery(site.ctx, site.brand_id, dead.id)
    assert (again.status.value, again.attempts) == ("pending", 0)


def test_an_analyst_reads_but_every_writing_form_is_refused(page: Any, site: Site) -> None:
    p = page
    sign_in(p, "analyst")
    p.goto("/console/orders")
    for no in ("SH-E1", "BJ-E1"):
        expect(p.locator(f"tr[data-order='{no}']")).to_be_visible()
    shot(p, site, "05-analyst-orders")
    p.click("tr[data-order='SH-E1'] a")
    expect(p.locator("#order-facts")).to_be_visible()
    expect(p.locator("#preview-refund")).to_have_count(0)
    expect(p.locator("input[name^=qty_]")).to_have_count(0)
    shot(p, site, "06-analyst-order-read-only")
    p.goto("/console/holds")
    expect(p.locator("#holds")).to_be_visible()
    # the writing pages and forms: the 'no permission' page, nothing done
    for path in ("/console/webhooks", "/console/reconcile"):
        answer = p.goto(path)
        assert answer is not None and answer.status == 403
        expect(p.locator("main")).to_contain_text("没有权限")
    shot(p, site, "07-analyst-reconcile-denied")
    token = csrf(p)
    sh = site.stores["SH001"]
    posts = [
        (f"/console/orders/{sh}/SH-E1/refund-preview", {"qty_1": "1", "reason": "x"}),
        (f"/console/orders/{sh}/SH-E1/refund", {"qty_1": "1", "reason": "x"}),
        ("/console/reconcile", {"store": str(sh)}),
        ("/console/webhooks", {"url": "https://h.example.com/x", "events": "*"}),
        ("/console/webhooks/1/disable", {}),
        ("/console/webhooks/deliveries/1/replay", {}),
    ]
    for path, form in posts:
        answer = p.request.post(path, form={"csrf": token, **form}, max_redirects=0)
        assert answer.status == 403 and "没有权限" in answer.text(), path
    assert receipts.receipt(site.ctx, site.brand_id, sh, "SH-E1").refunded == 0


def test_a_store_manager_sees_only_its_stores_and_refunds_there(page: Any, site: Site) -> None:
    p = page
    sign_in(p, "manager.sh001")
    p.goto("/console/orders")
    expect(p.locator("tr[data-order='SH-E1']")).to_be_visible()
    expect(p.locator("tr[data-order='BJ-E1']")).to_have_count(0)
    options = p.locator("#store option").all_inner_texts()
    assert any("SH001" in o for o in options) and not any("BJ001" in o for o in options)
    shot(p, site, "08-manager-orders")
    answer = p.goto(f"/console/orders/{site.stores['BJ001']}/BJ-E1")
    assert answer is not None and answer.status == 404
    shot(p, site, "09-manager-other-store-404")
    p.goto("/console/reconcile")
    options = p.locator("#store option").all_inner_texts()
    assert not any("BJ001" in o for o in options)
    # refund one unit of its own store's order: no reason first, then preview, confirm
    p.goto("/console/orders")
    p.click("tr[data-order='SH-E2'] a")
    p.fill("#qty_1", "1")
    with p.expect_navigation():
        p.click("#preview-refund")
    expect(p.locator("#reason-error")).to_be_visible()
    shot(p, site, "10-manager-refund-no-reason")
    p.fill("#qty_1", "1")
    p.fill("#reason", "顾客退货")
    with p.expect_navigation():
        p.click("#preview-refund")
    expect(p.locator("#refund-preview")).to_be_visible()
    shot(p, site, "11-manager-refund-preview")
    sh = site.stores["SH001"]
    assert receipts.receipt(site.ctx, site.brand_id, sh, "SH-E2").refunded == 0
    with p.expect_navigation():
        p.click("#confirm-refund")
    expect(p.locator("#refund-done")).to_be_visible()
    expect(p.locator("#refunds tbody tr")).to_have_count(1)
    expect(p.locator("#refunds")).to_contain_text("manager.sh001")
    shot(p, site, "12-manager-refunded")
    found = receipts.receipt(site.ctx, site.brand_id, sh, "SH-E2")
    assert found.status == "partially_refunded" and found.refunded > 0
    assert re.search(r"\?refunded=HQ", p.url)


def test_a_store_manager_reconciles_its_day_and_reads_its_held_carts(page: Any, site: Site) -> None:
    p = page
    sign_in(p, "manager.sh001")
    sh = site.stores["SH001"]
    day = receipts.receipt(site.ctx, site.brand_id, sh, "SH-E1").ordered_at.date()
    pos = {"date": day.isoformat(), "order_count": 1, "amount_fen": 900, "tenders": {"cash": 900}}
    p.goto("/console/reconcile")
    p.select_option("#store", str(sh))
    p.set_input_files(
        "#file",
        files=[{"name": "pos.json", "mimeType": "application/json", "buffer": b"{oops"}],
    )
    with p.expect_navigation():
        p.click("#reconcile-form button[type=submit]")
    expect(p.locator("#file-error")).to_be_visible()
    shot(p, site, "13-manager-reconcile-bad-file")
    p.select_option("#store", str(sh))
    body = json.dumps(pos).encode()
    p.set_input_files(
        "#file", files=[{"name": "pos.json", "mimeType": "application/json", "buffer": body}]
    )
    with p.expect_navigation():
        p.click("#reconcile-form button[type=submit]")
    expect(p.locator("#reconcile-status")).to_contain_text("发现差异")
    expect(p.locator("#tenders")).to_contain_text("wechat")
    shot(p, site, "14-manager-reconciled")
    p.click("nav.menu >> text=挂单报表")
    expect(p.locator("#holds")).to_be_visible()
    options = p.locator("#store option").all_inner_texts()
    assert not any("BJ001" in o for o in options)
    shot(p, site, "15-manager-held-carts")
