"""The selling screen's calls (/till/api/*) over HTTP in process, on the demo
brand, SQLite and PostgreSQL: what the script sends and what the till books,
with the staff member and the terminal of the session on every order, hold,
refund and override."""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loyalpos.api.app import create_app
from loyalpos.db.tables import order_tenders, orders
from loyalpos.service.admin import demo
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members
from loyalpos.service.rulebook import rulesets
from loyalpos.service.till import holds, receipts, till_events

LATTE = {"sku": "latte", "name": "拿铁", "category": "coffee", "unit_price_fen": 3200, "qty": 1}
BEANS = {"sku": "beans", "name": "咖啡豆", "category": "beans", "unit_price_fen": 9800, "qty": 1}


class Till:
    """A browser signed in at a till: its client and CSRF token."""

    def __init__(self, client: TestClient, csrf: str) -> None:
        self.client, self.csrf = client, csrf

    def post(self, path: str, body: dict[str, Any] | None = None) -> Any:
        return self.client.post(path, json=body or {}, headers={"X-CSRF-Token": self.csrf})

    def get(self, path: str) -> Any:
        return self.client.get(path)


def sign_in(ctx: Context, store: str = "SH001", number: str = "1001", terminal: str = "T1") -> Till:
    client = TestClient(create_app(ctx), raise_server_exceptions=False)
    page = client.get("/till/sign-in")
    found = re.search(r'name="csrf" value="([^"]+)"', page.text)
    assert found
    form = {
        "csrf": found.group(1),
        "brand": "demo",
        "store": store,
        "terminal": terminal,
        "number": number,
        "pin": "1234",
    }
    answer = client.post("/till/sign-in", data=form, follow_redirects=False)
    assert answer.status_code == 303, answer.text
    till = client.get("/till")
    token = re.search(r'<meta name="csrf-token" content="([^"]+)"', till.text)
    assert token
    return Till(client, token.group(1))


@pytest.fixture
def shop(ctx: Context) -> brands.Brand:
    return demo.seed(ctx)


@pytest.fixture
def till(ctx: Context, shop: brands.Brand) -> Iterator[Till]:
    t = sign_in(ctx)
    yield t
    t.client.close()


def member_id(ctx: Context, brand: brands.Brand, phone: str) -> int:
    return members.by_phone(ctx, brand.id, phone).id


def test_the_page_embeds_the_till_config_and_its_texts(till: Till) -> None:
    page = till.get("/till")
    assert page.status_code == 200
    assert page.headers["cache-control"] == "no-store"
    assert '"terminal": "T1"' in page.text and "识别到会员 {name}" in page.text
    english = till.get("/till?lang=en")
    assert "Member {name} identified" in english.text


def test_scan_tells_items_members_and_payment_codes_apart(
    ctx: Context, shop: brands.Brand, till: Till
) -> None:
    item = till.post("/till/api/scan", {"text": "6901234000016"}).json()
    assert item["kind"] == "gtin" and item["product"]["sku"] == "latte"
    assert item["price_fen"] == 3200
    member = till.post("/till/api/scan", {"text": "13912345678"}).json()
    assert member["kind"] == "phone" and member["member"]["member"]["name"] == "李娜"
    assert member["member"]["member"]["phone"] == "139****5678"
    assert len(member["member"]["coupons"]) == 3
    pay = till.post("/till/api/scan", {"text": "134567890123456789"}).json()
    assert pay == {"kind": "payment_code", "text": "134567890123456789", "wallet": "wechat"}
    assert "member" not in pay
    unknown = till.post("/till/api/scan", {"text": "13999999999"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "member_not_found"
    too_long = till.post("/till/api/scan", {"text": "9" * 129})
    assert too_long.status_code == 422


def test_a_member_sale_records_the_staff_member_and_the_terminal(
    ctx: Context, shop: brands.Brand, till: Till
) -> None:
    li_na = member_id(ctx, shop, "13912345678")
    cart = {"member_id": li_na, "lines": [LATTE, BEANS], "points": "none"}
    q = till.post("/till/api/quote", cart).json()
    assert q["quote_token"] and q["discount_fen"] > 0
    coupons = [int(a["coupon_id"]) for a in q["applied"] if a["coupon_id"]]
    order = {
        **cart,
        "order_no": "W-T1-0001",
        "coupon_ids": coupons,
        "points_used": 0,
        "quote_token": q["quote_token"],
        "tenders": [
            {"method": "cash", "amount_fen": q["payable_fen"], "reference": "cash_received=20000"}
        ],
    }
    booked = till.post("/till/api/orders", order)
    assert booked.status_code == 201, booked.text
    again = till.post("/till/api/orders", order)
    assert again.status_code == 200 and again.json()["replayed"] is True
    with ctx.transaction(read_only=True) as conn:
        row = conn.execute(select(orders).where(orders.c.order_no == "W-T1-0001")).one()
        tender = conn.execute(select(order_tenders).where(order_tenders.c.order_id == row.id)).one()
    assert (row.cashier, row.terminal) == ("1001", "T1")
    store = brands.store_by_code(ctx, shop.id, "SH001")
    printed = receipts.receipt(ctx, shop.id, store.id, "W-T1-0001")
    assert printed.tenders[0].received == 20000
    assert printed.tenders[0].change == 20000 - int(tender.amount)
    # The coupon the engine chose, forced: recorded as an override.
    forced = till.post(
        "/till/api/orders",
        {
            **cart,
            "lines": [LATTE],
            "force": [],
            "order_no": "W-T1-0002",
            "tenders": [{"method": "wechat", "amount_fen": 3200}],
            "skip_all": True,
        },
    )
    assert forced.status_code == 201, forced.text
    events = till_events.for_order(ctx, shop.id, store.id, "W-T1-0002")
    assert [(e.kind.value, e.staff_number, e.terminal) for e in events] == [
        ("benefits_declined", "1001", "T1")
    ]


def test_a_brand_that_requires_identification_refuses_a_skip_without_a_reason(
    ctx: Context, shop: brands.Brand, till: Till
) -> None:
    current = rulesets.versions(ctx, shop.id)[-1]
    document = rulesets.as_json(current.document)
    document["checkout"] = {"require_member": True, "skip_reasons": ["顾客未携带会员码", "其他"]}
    draft = rulesets.save_draft(ctx, shop.id, document, author="t", comment="require")
    rulesets.publish(ctx, shop.id, draft.version, by="t")
    page = till.get("/till")
    assert '"require_member": true' in page.text and "顾客未携带会员码" in page.text
    order = {
        "lines": [LATTE],
        "points": "none",
        "order_no": "W-T1-0100",
        "tenders": [{"method": "cash", "amount_fen": 3200}],
    }
    refused = till.post("/till/api/orders", order)
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "member_identification_required"
    booked = till.post("/till/api/orders", {**order, "skip_reason": "顾客未携带会员码"})
    assert booked.status_code == 201, booked.text
    store = brands.store_by_code(ctx, shop.id, "SH001")
    events = till_events.for_order(ctx, shop.id, store.id, "W-T1-0100")
    assert [(e.kind.value, e.reason) for e in events] == [
        ("identification_skipped", "顾客未携带会员码")
    ]


def test_an_unknown_item_at_a_typed_price_is_an_override(
    ctx: Context, shop: brands.Brand, till: Till
) -> None:
    line = {"sku": "12345", "name": "未知", "unit_price_fen": 1250, "qty": 2, "manual": True}
    booked = till.post(
        "/till/api/orders",
        {
            "lines": [line],
            "points": "none",
            "order_no": "W-T1-0200",
            "tenders": [{"method": "cash", "amount_fen": 2500}],
        },
    )
    assert booked.status_code == 201, booked.text
    store = brands.store_by_code(ctx, shop.id, "SH001")
    (event,) = till_events.for_order(ctx, shop.id, store.id, "W-T1-0200")
    assert event.kind.value == "manual_price"
    assert event.detail == {"sku": "12345", "price_fen": 1250, "qty": 2}


def test_holds_are_the_stores_and_resume_at_another_terminal(
    ctx: Context, shop: brands.Brand, till: Till
) -> None:
    cart = {"lines": [LATTE], "member_id": None, "points": "none", "force": [], "skip_all": False}
    held = till.post("/till/api/holds", {"reason": "call", "note": "n", "cart": cart})
    assert held.status_code == 201, held.text
    hold_id = held.json()["id"]
    assert held.json()["terminal"] == "T1" and held.json()["cashier"] == "1001"
    beijing = sign_in(ctx, store="BJ001", number="2001", terminal="B1")
    assert beijing.get("/till/api/holds").json()["data"] == []
    stolen = beijing.post(f"/till/api/holds/{hold_id}/resume")
    assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "hold_not_found"
    other = sign_in(ctx, terminal="T2")
    listed = other.get("/till/api/holds").json()["data"]
    assert [h["id"] for h in listed] == [hold_id]
    resumed = other.post(f"/till/api/holds/{hold_id}/resume")
    assert resumed.status_code == 200 and resumed.json()["cart"]["lines"][0]["sku"] == "latte"
    assert holds.get(ctx, shop.id, hold_id).status.value == "resumed"
    twice = till.post(f"/till/api/holds/{hold_id}/resume")
    assert twice.status_code == 409


def test_late_orders_are_booked_once_with_the_session_staff(
    ctx: Context, shop: brands.Brand, till: Till
) -> None:
    sale = {
        "order_no": "W-T1-OFF-1",
        "ordered_at": (ctx.now() - timedelta(hours=1)).isoformat(),
        "lines": [BEANS],
        "points": "none",
        "skip_all": True,
        "tenders": [{"method": "cash", "amount_fen": 9800}],
    }
    first = till.post("/till/api/late-orders", {"orders": [sale]}).json()["results"]
    assert [r["outcome"] for r in first] == ["booked"], first
    again = till.post("/till/api/late-orders", {"orders": [sale]}).json()["results"]
    assert [r["outcome"] for r in again] == ["replayed"]
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(select(orders).where(orders.c.order_no == "W-T1-OFF-1")).all()
    assert len(rows) == 1 and rows[0].late and rows[0].terminal == "T1"
    # A sale kept on the till after its confirm's answer was lost: it was booked
    # then (with its benefits), so the upload says it is booked, not refused.
    paid = {
        "order_no": "W-T1-LOST-1",
        "lines": [LATTE],
        "points": "none",
        "tenders": [{"method": "cash", "amount_fen": 3200}],
    }
    assert till.post("/till/api/orders", paid).status_code == 201
    kept = {**paid, "ordered_at": sale["ordered_at"], "skip_all": True}
    lost = till.post("/till/api/late-orders", {"orders": [kept]}).json()["results"]
    assert [(r["outcome"], r["receipt"]["order_no"]) for r in lost] == [("replayed", "W-T1-LOST-1")]


def test_a_refund_preview_books_nothing_and_the_refund_books_it(
    ctx: Context, shop: brands.Brand, till: Till
) -> None:
    zhang = member_id(ctx, shop, "13800138000")
    cart = {"member_id": zhang, "lines": [BEANS, LATTE], "points": "none", "skip_all": True}
    q = till.post("/till/api/quote", cart).json()
    booked = till.post(
        "/till/api/orders",
        {
            **cart,
            "order_no": "W-T1-0300",
            "tenders": [{"method": "alipay", "amount_fen": q["payable_fen"]}],
        },
    )
    assert booked.status_code == 201, booked.text
    order = till.get("/till/api/orders/W-T1-0300").json()
    assert [(x["line_no"], x["sku"], x["refunded_qty"]) for x in order["lines"]] == [
        (1, "beans", 0),
        (2, "latte", 0),
    ]
    ask = {"order_no": "W-T1-0300", "lines": [{"line_no": 1, "qty": 1}], "reason": "坏了"}
    preview = till.post("/till/api/refunds/preview", ask).json()
    assert preview["points_reversed"] > 0
    assert till.get("/till/api/orders/W-T1-0300").json()["lines"][0]["refunded_qty"] == 0
    missing = till.post("/till/api/refunds", ask)
    assert missing.status_code == 422 or missing.status_code == 400
    done = till.post("/till/api/refunds", {**ask, "refund_no": "R-0300-1"})
    assert done.status_code == 201, done.text
    assert done.json()["points_reversed"] == preview["points_reversed"]
    assert done.json()["terminal"] == "T1" and done.json()["cashier"] == "1001"
    assert till.get("/till/api/orders/W-T1-0300").json()["lines"][0]["refunded_qty"] == 1
    beijing = sign_in(ctx, store="BJ001", number="2001", terminal="B1")
    assert beijing.get("/till/api/orders/W-T1-0300").status_code == 404


def test_without_a_session_or_the_csrf_header_nothing_happens(
    ctx: Context, shop: brands.Brand, till: Till
) -> None:
    body = {"lines": [LATTE], "points": "none"}
    forged = till.client.post("/till/api/quote", json=body)
    assert forged.status_code == 403 and forged.json()["error"]["code"] == "csrf_failed"
    stranger = TestClient(create_app(ctx), raise_server_exceptions=False)
    refused = stranger.post("/till/api/quote", json=body, headers={"X-CSRF-Token": till.csrf})
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "signed_out"
    assert stranger.get("/till/api/holds").status_code == 401


@pytest.mark.parametrize(
    "body",
    [
        {"lines": []},
        {"lines": [{**LATTE, "unit_price_fen": -1}]},
        {"lines": [{**LATTE, "qty": 0}]},
        {"lines": [{**LATTE, "unit_price_fen": 1.5}]},
        {"lines": [LATTE], "points": "all"},
        {"lines": [LATTE], "member_id": 0},
        {"lines": [LATTE], "surprise": 1},
    ],
)
def test_bad_carts_are_422_with_the_field(till: Till, body: dict[str, Any]) -> None:
    answer = till.post("/till/api/quote", body)
    assert answer.status_code == 422, answer.text
    assert answer.json()["error"]["code"]
