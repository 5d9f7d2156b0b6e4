"""Issue 11, items 8 and 10, over HTTP to the real server on PostgreSQL: loose
numbers (a string of digits, an integral float, a bool) are refused with 422 at
quote, confirm, points earn and adjust, and book nothing; POST /v1/simulate
refuses deep, value-heavy and oversized documents in the error shape."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from loyalpos.integers import ERROR_TYPE
from loyalpos.rules.documents import MAX_DEPTH
from tests.e2e.live import Live

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

LOOSE = [
    ("a string of digits", "10000", "1"),
    ("an integral float", 10000.0, 1.0),
    ("a bool", True, True),
]
IDS = [what for what, _, _ in LOOSE]


@dataclass(frozen=True)
class Demo:
    live: Live
    till: httpx.Client  # the cashier key of SH001
    hq: httpx.Client
    store_id: int
    member_id: int


@pytest.fixture(scope="module")
def demo(live_pg_server: Live) -> Iterator[Demo]:
    live = live_pg_server
    with live.client(live.cashier_key) as till, live.client(live.hq_key) as hq:
        keys = hq.get("/v1/keys").json()["data"]
        store_id = next(k["store_id"] for k in keys if k["prefix"].startswith("lp_demosh001"))
        member = hq.post("/v1/members/lookup", json={"phone": "13800138000"})
        assert member.status_code == 200, member.text
        yield Demo(live, till, hq, store_id, member.json()["id"])


def _cart(demo: Demo, price: Any = 10000, qty: Any = 1) -> dict[str, Any]:
    return {
        "store_id": demo.store_id,
        "member": {"member_id": demo.member_id},
        "lines": [{"sku": "latte", "category": "coffee", "unit_price_fen": price, "qty": qty}],
    }


def _order(demo: Demo, order_no: str, **cart: Any) -> dict[str, Any]:
    return {
        **_cart(demo, **cart),
        "order_no": order_no,
        "tenders": [{"method": "cash", "amount_fen": 10000}],
        "cashier": "c01",
        "terminal": "T1",
    }


def _refused(answer: httpx.Response, field: str) -> None:
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    problem = error["detail"]["errors"][0]
    assert (problem["field"], problem["type"]) == (field, ERROR_TYPE), error
    assert "JSON integer" in error["message"] and "整数" in error["message"]


@pytest.mark.parametrize(("what", "price", "qty"), LOOSE, ids=IDS)
def test_quote_and_confirm_refuse_loose_numbers_and_book_nothing(
    demo: Demo, what: str, price: Any, qty: Any
) -> None:
    _refused(demo.till.post("/v1/quotes", json=_cart(demo, price=price)), "lines.0.unit_price_fen")
    _refused(demo.till.post("/v1/quotes", json=_cart(demo, qty=qty)), "lines.0.qty")
    tag = IDS.index(what)
    for n, body in enumerate(
        [_order(demo, f"P{tag}", price=price), _order(demo, f"Q{tag}", qty=qty)]
    ):
        field = "lines.0.unit_price_fen" if n == 0 else "lines.0.qty"
        _refused(demo.till.post("/v1/orders", json=body), field)
        looked = demo.till.get(f"/v1/stores/{demo.store_id}/orders/{body['order_no']}")
        assert looked.status_code == 404, looked.text
    # the same with integers is priced: the refusals were about the type alone
    quoted = demo.till.post("/v1/quotes", json=_cart(demo))
    assert quoted.status_code == 200 and quoted.json()["subtotal_fen"] == 10000


@pytest.mark.parametrize(("what", "points", "_qty"), LOOSE, ids=IDS)
def test_points_earn_and_adjust_refuse_loose_numbers_and_book_nothing(
    demo: Demo, what: str, points: Any, _qty: Any
) -> None:
    url = f"/v1/members/{demo.member_id}/points"
    before = demo.hq.get(url).json()["total"]
    _refused(demo.hq.post(f"{url}/earn", json={"points": points}), "points")
    adjust = {"points": points, "operator": "amy", "reason": "补录"}
    _refused(demo.hq.post(f"{url}/adjust", json=adjust), "points")
    assert demo.hq.get(url).json()["total"] == before


def test_simulate_refuses_deep_heavy_and_huge_bodies_in_the_error_shape(demo: Demo) -> None:
    headers = {"content-type": "application/json"}

    def post(body: str) -> httpx.Response:
        return demo.hq.post("/v1/simulate", content=body.encode(), headers=headers)

    deep = post('{"rules": ' + "[" * 40 + "]" * 40 + "}")
    assert deep.status_code == 422, deep.text
    assert deep.json()["error"]["code"] == "too_large"
    assert deep.json()["error"]["detail"] == {"limit": "depth", "max": MAX_DEPTH}
    deeper = post('{"rules": ' + "[" * 50_000 + "]" * 50_000 + "}")
    assert deeper.status_code == 400 and deeper.json()["error"]["code"] == "bad_request"
    heavy = post('{"rules": {}, "cart": [' + ",".join(["1"] * 200_000) + "]}")
    assert heavy.status_code == 422 and heavy.json()["error"]["detail"]["limit"] == "values"
    huge = post('{"rules": {}, "cart": "' + "x" * 2_000_000 + '"}')
    assert huge.status_code == 413 and huge.json()["error"]["code"] == "payload_too_large"
    # a loose number in the document, and then a good one: the server is fine
    cart = {"store": "SH001", "time": "2024-06-05T12:30", "lines": [_line(1250.0)]}
    loose = demo.hq.post("/v1/simulate", json={"rules": {}, "cart": cart})
    assert loose.status_code == 422
    assert loose.json()["error"]["detail"]["field"] == "cart.lines.0.unit_price_fen"
    good = demo.hq.post(
        "/v1/simulate", json={"rules": {}, "cart": {**cart, "lines": [_line(1250)]}}
    )
    assert good.status_code == 200 and good.json()["payable_fen"] == 1250
    log = demo.live.log.read_text(errors="replace")
    assert "Traceback" not in log and "Exception in ASGI application" not in log


def _line(price: Any) -> dict[str, Any]:
    return {"sku": "latte", "category": "coffee", "unit_price_fen": price, "qty": 1}
