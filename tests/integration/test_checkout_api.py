"""The POS flow over HTTP with API keys: identify, quote, confirm, refund, late orders."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient

from loyalpos.api.app import create_app
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members
from tests.conftest import Clock
from tests.integration.checkout_helpers import Shop, give_coupon, open_shop


class Till:
    def __init__(self, client: TestClient, shop: Shop, keys: dict[str, str]) -> None:
        self.client = client
        self.shop = shop
        self.keys = keys

    def post(self, url: str, body: dict[str, Any], key: str = "a") -> Any:
        return self.client.post(
            url, json=body, headers={"Authorization": f"Bearer {self.keys[key]}"}
        )

    def cart(
        self, *lines: tuple[str, int, int], store: int | None = None, **extra: Any
    ) -> dict[str, Any]:
        return {
            "store_id": store or self.shop.store_a,
            "member": {"member_id": self.shop.member},
            "lines": [
                {"sku": s, "category": "food", "unit_price_fen": p, "qty": q} for s, p, q in lines
            ],
            **extra,
        }

    def confirm_body(
        self, order_no: str, cart: dict[str, Any], paid: int, **extra: Any
    ) -> dict[str, Any]:
        return {
            **cart,
            "order_no": order_no,
            "tenders": [{"method": "alipay", "amount_fen": paid, "reference": f"ali-{order_no}"}],
            "cashier": "c01",
            "terminal": "T1",
            **extra,
        }


@pytest.fixture
def till(ctx: Context) -> Iterator[Till]:
    shop = open_shop(ctx)
    keys = {
        "a": apikeys.create_key(
            ctx, shop.brand.id, Scope.CASHIER, "till A", store_id=shop.store_a
        ).secret,
        "b": apikeys.create_key(
            ctx, shop.brand.id, Scope.CASHIER, "till B", store_id=shop.store_b
        ).secret,
        "hq": apikeys.create_key(ctx, shop.brand.id, Scope.HQ, "hq").secret,
    }
    with TestClient(create_app(ctx)) as client:
        yield Till(client, shop, keys)


def test_identify_by_dynamic_code_shows_points_coupons_and_progress(
    till: Till, ctx: Context
) -> None:
    give_coupon(ctx, till.shop, "cash5")
    code, _ = members.issue_code(ctx, till.shop.brand.id, till.shop.member)
    r = till.post("/v1/identify", {"store_id": till.shop.store_a, "member": {"code": code}})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["member"]["phone"] == "138****8000"
    assert body["points"]["available"] == 1000
    assert [c["template"] for c in body["coupons"]] == ["cash5"]
    assert body["tier_progress"]["message"] == "距离金卡还需消费 ¥500.00"


def test_quote_confirm_replay_and_refund(till: Till, ctx: Context) -> None:
    coupon = give_coupon(ctx, till.shop, "mj100-20")
    cart = till.cart(("latte", 3000, 4), options={"points": "max"}, reserve=True)
    q = till.post("/v1/quotes", cart)
    assert q.status_code == 200, q.text
    quote = q.json()
    assert quote["applied"][0]["coupon_id"] == str(coupon) and quote["quote_token"]
    cart.pop("reserve")
    body = till.confirm_body(
        "POS-1",
        cart,
        quote["payable_fen"],
        coupon_ids=[coupon],
        points=quote["points_redeemed"],
        quote_token=quote["quote_token"],
    )
    first = till.post("/v1/orders", body)
    assert first.status_code == 201, first.text
    again = till.post("/v1/orders", body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    assert again.json()["order_id"] == first.json()["order_id"]
    changed = till.post("/v1/orders", {**body, "terminal": "T9"})
    assert changed.status_code == 409 and changed.json()["error"]["code"] == "order_no_reused"
    refund = till.post(
        f"/v1/stores/{till.shop.store_a}/orders/POS-1/refunds",
        {"refund_no": "R-1", "cashier": "c01", "lines": [{"line_no": 1, "qty": 4}]},
    )
    assert refund.status_code == 201, refund.text
    assert refund.json()["amount_fen"] == quote["payable_fen"]
    assert refund.json()["coupons_returned"] == [coupon]


def test_a_stale_price_is_409_with_a_fresh_quote(till: Till) -> None:
    cart = till.cart(("latte", 3000, 1))
    r = till.post("/v1/orders", till.confirm_body("POS-2", cart, 100))
    assert r.status_code == 409
    err = r.json()["error"]
    assert err["code"] == "price_changed" and err["detail"]["fresh_quote"]["payable_fen"] == 3000


def test_a_cashier_key_acts_for_its_own_store_only(till: Till) -> None:
    cart = till.cart(("latte", 3000, 1), store=till.shop.store_b)
    r = till.post("/v1/quotes", cart, key="a")
    assert r.status_code == 403 and r.json()["error"]["code"] == "wrong_store"
    assert till.post("/v1/quotes", cart, key="b").status_code == 200
    assert till.post("/v1/quotes", cart, key="hq").status_code == 200
    assert till.client.post("/v1/quotes", json=cart).status_code == 401


def test_late_orders_are_booked_with_their_time_and_exceptions(
    till: Till, ctx: Context, clock: Clock
) -> None:
    coupon = give_coupon(ctx, till.shop, "cash5")
    when = (clock.now - timedelta(hours=2)).isoformat()
    cart = till.cart(("latte", 3000, 1))
    use = till.confirm_body("OFF-1", cart, 2500, coupon_ids=[coupon], ordered_at=when)
    again = till.confirm_body("OFF-2", cart, 2500, coupon_ids=[coupon], ordered_at=when)
    r = till.post("/v1/late-orders", {"orders": [use, again]})
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["booked"], body["rejected"], body["with_exceptions"]) == (2, 0, 1)
    second = body["results"][1]["receipt"]
    assert [e["code"] for e in second["exceptions"]][0] == "coupon_unavailable"
    assert second["payable_fen"] == 3000 and second["late"] is True
    replay = till.post("/v1/late-orders", {"orders": [use]})
    assert replay.json()["replayed"] == 1


@pytest.mark.parametrize(
    "patch",
    [
        {"lines": [{"sku": "x", "unit_price_fen": -1, "qty": 1}]},
        {"lines": [{"sku": "x", "unit_price_fen": 100, "qty": 0}]},
        {"lines": [{"sku": "x", "unit_price_fen": 100, "qty": 10**9}]},
        {"lines": []},
        {"tenders": [{"method": "bitcoin", "amount_fen": 100}]},
        {"member": {"code": "garbage"}},
        {"member": {"card_no": "1234"}},
        {"ordered_at": "2024-01-01T00:00:00"},
        {"coupon_ids": ["abc"]},
    ],
)
def test_bad_input_is_a_4xx_with_the_error_shape(till: Till, patch: dict[str, Any]) -> None:
    body = {**till.confirm_body("BAD-1", till.cart(("latte", 3000, 1)), 3000), **patch}
    r = till.post("/v1/orders", body)
    assert 400 <= r.status_code < 500, r.text
    assert set(r.json()["error"]) == {"code", "message", "detail"}


def test_each_refusal_of_the_till_is_a_4xx_with_its_code(till: Till) -> None:
    shop = till.shop
    two_refs = {
        **till.cart(("latte", 3000, 1)),
        "member": {"member_id": shop.member, "phone": "13800138000"},
    }
    r = till.post("/v1/quotes", two_refs)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "member_ref_invalid")
    anonymous = {**till.cart(("latte", 3000, 1)), "member": None}
    r = till.post("/v1/orders", till.confirm_body("E-1", anonymous, 2000, points=1000))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "member_required")
    r = till.post(
        "/v1/orders",
        till.confirm_body("E-2", till.cart(("latte", 3000, 1)), 3000, quote_token="nope"),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "quote_not_found")
    assert (
        till.post(
            "/v1/orders", till.confirm_body("E-3", till.cart(("latte", 3000, 1)), 3000)
        ).status_code
        == 201
    )
    refunds = f"/v1/stores/{shop.store_a}/orders/E-3/refunds"
    for lines, status, code in [
        ([{"line_no": 2, "qty": 1}], 422, "refund_line_unknown"),
        ([{"line_no": 1, "qty": 2}], 409, "refund_exceeds_order"),
    ]:
        r = till.post(refunds, {"refund_no": f"R-{code}", "cashier": "c01", "lines": lines})
        assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert till.post(refunds, {"refund_no": "R-all", "cashier": "c01"}).status_code == 201
    r = till.post(refunds, {"refund_no": "R-again", "cashier": "c01"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "already_refunded")
    r = till.post(refunds, {"refund_no": "R-all", "cashier": "c02"})
    assert (r.status_code, r.json()["error"]["code"]) == (409, "refund_no_reused")
    missing = f"/v1/stores/{shop.store_a}/orders/NOPE/refunds"
    r = till.post(missing, {"refund_no": "R-x", "cashier": "c01"})
    assert (r.status_code, r.json()["error"]["code"]) == (404, "order_not_found")
    r = till.post(f"/v1/members/{shop.member}/coupons", {"template": "nope"}, key="hq")
    assert (r.status_code, r.json()["error"]["code"]) == (404, "template_not_found")
    for r in [
        till.post("/v1/quotes", two_refs),
        till.post(missing, {"refund_no": "R-y", "cashier": "c"}),
    ]:
        assert set(r.json()["error"]) == {"code", "message", "detail"}


def test_a_refund_records_the_cashier_and_the_till(till: Till, ctx: Context) -> None:
    """Orders and holds record who and which till; refunds do too (issue 13): the
    terminal is kept on the refund and printed on its receipt; sent again with
    another terminal it is a different request under the same refund number."""
    from sqlalchemy import select

    from loyalpos.db.tables import refunds

    cart = till.cart(("latte", 3000, 2))
    assert till.post("/v1/orders", till.confirm_body("POS-T", cart, 6000)).status_code == 201
    url = f"/v1/stores/{till.shop.store_a}/orders/POS-T/refunds"
    body = {
        "refund_no": "R-T",
        "cashier": "c02",
        "terminal": "T2",
        "lines": [{"line_no": 1, "qty": 1}],
    }
    first = till.post(url, body)
    assert first.status_code == 201, first.text
    assert (first.json()["cashier"], first.json()["terminal"]) == ("c02", "T2")
    again = till.post(url, body)
    assert again.status_code == 200 and again.json()["replayed"] is True
    other = till.post(url, {**body, "terminal": "T3"})
    assert other.status_code == 409, other.text
    bad = till.post(url, {**body, "refund_no": "R-B", "terminal": "T\x002"})
    assert bad.status_code == 422, bad.text
    assert bad.json()["error"]["code"] == "validation_error"
    plain = till.post(
        url, {"refund_no": "R-U", "cashier": "c02", "lines": [{"line_no": 1, "qty": 1}]}
    )
    assert plain.status_code == 201 and plain.json()["terminal"] is None
    with ctx.transaction(read_only=True) as conn:
        rows = conn.execute(
            select(refunds.c.refund_no, refunds.c.cashier, refunds.c.terminal).order_by(
                refunds.c.id
            )
        ).all()
    assert [tuple(r) for r in rows] == [("R-T", "c02", "T2"), ("R-U", "c02", None)]
