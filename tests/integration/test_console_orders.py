"""The console's orders: search by store, day, number and member phone; one order
with its receipt, refunds and till events; a refund previewed then confirmed by an
administrator or the store's manager, refused to an analyst, with bad input said
next to its field. On SQLite and PostgreSQL."""

from __future__ import annotations

import re
from collections.abc import Iterator

import pytest

from loyalpos.service.till import orders, receipts
from tests.integration.console_helpers import Shop, open_shop


@pytest.fixture
def shop(db_url: str) -> Iterator[Shop]:
    yield from open_shop(db_url)


def listed(html: str) -> list[str]:
    return re.findall(r'data-order="([^"]+)"', html)


def test_search_by_store_day_number_and_phone(shop: Shop) -> None:
    shop.sign_in("admin")
    c = shop.client
    assert listed(c.get("/console/orders").text) == ["BJ-1", "SH-2", "SH-1"]
    sh = shop.stores["SH001"]
    assert listed(c.get(f"/console/orders?store={sh}").text) == ["SH-2", "SH-1"]
    assert listed(c.get("/console/orders?order_no=BJ-1").text) == ["BJ-1"]
    assert listed(c.get("/console/orders?phone=13800138000").text) == ["BJ-1", "SH-1"]
    assert listed(c.get("/console/orders?phone=13900000001").text) == []
    # 04:00 UTC is 12:00 in Shanghai on 2024-03-01.
    assert listed(c.get("/console/orders?date=2024-03-01").text) == ["BJ-1", "SH-2", "SH-1"]
    assert listed(c.get("/console/orders?date=2024-02-29").text) == []


def test_search_pages_with_a_cursor(shop: Shop) -> None:
    page = orders.search(shop.ctx, shop.brand_id, limit=2)
    assert [o.order_no for o in page.rows] == ["BJ-1", "SH-2"] and page.next_cursor
    rest = orders.search(shop.ctx, shop.brand_id, limit=2, cursor=page.next_cursor)
    assert [o.order_no for o in rest.rows] == ["SH-1"] and rest.next_cursor is None
    shop.sign_in("admin")
    first = shop.client.get("/console/orders")
    assert 'id="more"' not in first.text  # 3 orders: one page of 50


@pytest.mark.parametrize(
    ("query", "field", "message"),
    [
        ("phone=12", "phone", "手机号"),
        ("date=2024-13-01", "date", "日期"),
        ("store=999999", "store", "门店"),
        ("order_no=" + "x" * 65, "order_no", "64"),
    ],
)
def test_bad_search_input_is_said_next_to_its_field(
    shop: Shop, query: str, field: str, message: str
) -> None:
    shop.sign_in("admin")
    answer = shop.client.get(f"/console/orders?{query}")
    assert answer.status_code == 400
    found = re.search(rf'<p class="error" id="{field}-error" role="alert">([^<]+)</p>', answer.text)
    assert found and message in found.group(1), answer.text


def test_a_store_manager_sees_only_its_stores(shop: Shop) -> None:
    shop.sign_in("manager.sh001")
    c = shop.client
    assert listed(c.get("/console/orders").text) == ["SH-2", "SH-1"]
    assert listed(c.get("/console/orders?order_no=BJ-1").text) == []
    bj = shop.stores["BJ001"]
    assert c.get(f"/console/orders?store={bj}").status_code == 400
    assert c.get(f"/console/orders/{bj}/BJ-1").status_code == 404
    assert c.get(f"/console/orders/{shop.stores['SH001']}/SH-1").status_code == 200
    assert "BJ001" not in c.get("/console/orders").text


def test_the_order_view_shows_receipt_refunds_and_events(shop: Shop) -> None:
    shop.sign_in("analyst")
    answer = shop.client.get(f"/console/orders/{shop.stores['SH001']}/SH-1")
    assert answer.status_code == 200
    assert "拿铁" in answer.text and 'id="till-events"' in answer.text
    assert 'id="refund-form"' in answer.text and 'id="preview-refund"' not in answer.text
    assert shop.client.get(f"/console/orders/{shop.stores['SH001']}/nope").status_code == 404


def _form(token: str, **values: str) -> dict[str, str]:
    return {"csrf": token, **values}


def test_refund_preview_then_confirm(shop: Shop) -> None:
    token = shop.sign_in("manager.sh001")
    sh = shop.stores["SH001"]
    base = f"/console/orders/{sh}/SH-1"
    before = receipts.receipt(shop.ctx, shop.brand_id, sh, "SH-1")
    # no reason: said next to the reason, nothing refunded
    answer = shop.client.post(base + "/refund-preview", data=_form(token, qty_1="1"))
    assert answer.status_code == 400 and 'id="reason-error"' in answer.text
    # more than was bought: said next to the line's quantity
    answer = shop.client.post(
        base + "/refund-preview", data=_form(token, qty_1="5", reason="顾客退货")
    )
    assert answer.status_code == 400 and 'id="qty_1-error"' in answer.text, answer.text
    answer = shop.client.post(base + "/refund-preview", data=_form(token, qty_1="x", reason="r"))
    assert answer.status_code == 400 and 'id="qty_1-error"' in answer.text
    answer = shop.client.post(base + "/refund-preview", data=_form(token, reason="顾客退货"))
    assert answer.status_code == 400 and 'id="lines-error"' in answer.text
    # the preview books nothing
    answer = shop.client.post(
        base + "/refund-preview", data=_form(token, qty_1="1", reason="顾客退货")
    )
    assert answer.status_code == 200 and 'id="refund-preview"' in answer.text
    assert receipts.receipt(shop.ctx, shop.brand_id, sh, "SH-1").refunded == 0
    refund_no = re.search(r'name="refund_no" value="([^"]+)"', answer.text)
    assert refund_no
    form = _form(token, qty_1="1", reason="顾客退货", refund_no=refund_no.group(1))
    done = shop.client.post(base + "/refund", data=form, follow_redirects=False)
    assert done.status_code == 303 and "refunded=" in done.headers["location"]
    again = shop.client.post(base + "/refund", data=form, follow_redirects=False)
    assert again.status_code == 303  # the same refund number: replayed, refunded once
    after = receipts.receipt(shop.ctx, shop.brand_id, sh, "SH-1")
    assert after.status == "partially_refunded" and after.refunded == before.payable // 2
    made = orders.refunds_of(shop.ctx, shop.brand_id, sh, "SH-1")
    assert len(made) == 1
    assert made[0].cashier == "manager.sh001" and made[0].terminal == "console"
    view = shop.client.get(done.headers["location"])
    assert refund_no.group(1) in view.text and 'id="refund-done"' in view.text


def test_refunds_are_refused_to_who_may_not(shop: Shop) -> None:
    sh, bj = shop.stores["SH001"], shop.stores["BJ001"]
    for login in ("analyst", "operator"):
        token = shop.sign_in(login)
        answer = shop.client.post(
            f"/console/orders/{sh}/SH-1/refund", data=_form(token, qty_1="1", reason="r")
        )
        assert answer.status_code == 403 and "没有权限" in answer.text
    token = shop.sign_in("manager.sh001")
    answer = shop.client.post(
        f"/console/orders/{bj}/BJ-1/refund", data=_form(token, qty_1="1", reason="r")
    )
    assert answer.status_code == 404
    token = shop.sign_in("admin")
    answer = shop.client.post(
        f"/console/orders/{sh}/SH-1/refund", data=_form("wrong", qty_1="1", reason="r")
    )
    assert answer.status_code == 403
    for store, no in ((sh, "SH-1"), (bj, "BJ-1")):
        assert receipts.receipt(shop.ctx, shop.brand_id, store, no).refunded == 0
