"""Held carts (挂单): the service and the HTTP API, on SQLite and PostgreSQL.

The `clock` fixture says 2024-01-01 04:00 UTC, i.e. 12:00 in Shanghai.
"""

from __future__ import annotations

from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from loyalpos.api.app import create_app
from loyalpos.db.tables import held_carts
from loyalpos.domain.errors import Conflict, InvalidInput, NotFound
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.loyalty import members
from loyalpos.service.till import holds
from loyalpos.service.till.holds import HoldReason, HoldStatus
from tests.conftest import Clock

PHONE = "13800138000"

CART: dict[str, Any] = {
    "lines": [
        {"sku": "latte", "category": "coffee", "name": "拿铁", "unit_price": 3200, "qty": 2},
        {"sku": "bagel", "category": "bakery", "name": "贝果", "unit_price": 1800, "qty": 1},
    ],
    "member": {"card_no": "8000000000000018"},
    "options": {"use_points": False, "skip_benefits": False},
    "overrides": [{"line_no": 1, "unit_price": 3000, "reason": "会员价"}],
    "coupons": [17, 42],
    "note": "少冰 ✓",
    "ratio": 0.1,
}


@dataclass
class World:
    brand: int
    store: int
    other_store: int
    other_brand: int
    other_brand_store: int
    member: int


@pytest.fixture
def world(ctx: Context) -> World:
    a = brands.create_brand(ctx, "a", "Brand A")
    b = brands.create_brand(ctx, "b", "Brand B")
    s1 = brands.create_store(ctx, a.id, "s1", "一号店")
    s2 = brands.create_store(ctx, a.id, "s2", "London", timezone="Europe/London")
    sb = brands.create_store(ctx, b.id, "sb", "B 店")
    m = members.register(ctx, a.id, phone=PHONE, name="张三")
    return World(a.id, s1.id, s2.id, b.id, sb.id, m.id)


def park(ctx: Context, w: World, **extra: Any) -> holds.Hold:
    args: dict[str, Any] = {
        "payload": CART,
        "reason": "call",
        "cashier": "c01",
        "terminal": "T1",
        "member_id": w.member,
    }
    args.update(extra)
    store = args.pop("store", w.store)
    return holds.hold(ctx, w.brand, store, **args)


def stored_status(ctx: Context, hold_id: int) -> str:
    with ctx.transaction() as conn:
        return str(
            conn.execute(select(held_carts.c.status).where(held_carts.c.id == hold_id)).scalar_one()
        )


# --- service ------------------------------------------------------------------


def test_hold_list_and_resume_give_the_cart_back_verbatim(ctx: Context, world: World) -> None:
    h = park(ctx, world, reason=HoldReason.MORE_ITEMS, note="去拿牛奶")
    assert h.status is HoldStatus.HELD
    assert h.reason_label == "再挑商品" and h.note == "去拿牛奶"
    assert h.member is not None and h.member.id == world.member
    assert h.member.phone == "138****8000" and h.member.name == "张三"
    assert (h.expires_at - h.created_at).total_seconds() == 120 * 60

    listed = holds.list_active(ctx, world.brand, world.store)
    assert [x.id for x in listed] == [h.id]
    assert holds.list_active(ctx, world.brand, world.other_store) == []

    resumed = holds.resume(ctx, world.brand, h.id)
    assert resumed.status is HoldStatus.RESUMED
    assert resumed.payload == CART
    assert list(resumed.payload) == list(CART)  # key order kept too
    assert resumed.member is not None and resumed.member.id == world.member
    assert resumed.closed_at == ctx.now()
    assert holds.list_active(ctx, world.brand, world.store) == []


def test_a_hold_resumes_once(ctx: Context, world: World) -> None:
    h = park(ctx, world)
    holds.resume(ctx, world.brand, h.id)
    with pytest.raises(Conflict) as err:
        holds.resume(ctx, world.brand, h.id)
    assert err.value.code == "hold_already_resumed"
    assert "already resumed" in err.value.message


def test_two_tills_resuming_at_once_only_one_wins(ctx: Context, world: World) -> None:
    h = park(ctx, world)

    def attempt(_: int) -> str:
        try:
            holds.resume(ctx, world.brand, h.id)
            return "ok"
        except Conflict as exc:
            return exc.code

    with ThreadPoolExecutor(6) as pool:
        results = sorted(pool.map(attempt, range(6)))
    assert results == ["hold_already_resumed"] * 5 + ["ok"]


def test_an_expired_hold_is_left_out_marked_and_cannot_be_resumed(
    ctx: Context, world: World, clock: Clock
) -> None:
    h = park(ctx, world)
    clock.advance(minutes=119)
    assert [x.id for x in holds.list_active(ctx, world.brand, world.store)] == [h.id]
    clock.advance(minutes=1)
    assert holds.get(ctx, world.brand, h.id).status is HoldStatus.EXPIRED  # read: no write
    assert stored_status(ctx, h.id) == "held"
    assert holds.list_active(ctx, world.brand, world.store) == []
    assert stored_status(ctx, h.id) == "expired"  # marked lazily by the listing
    with pytest.raises(Conflict) as err:
        holds.resume(ctx, world.brand, h.id)
    assert err.value.code == "hold_expired"
    assert "expired" in err.value.message and "过期" in err.value.message
    found = holds.get(ctx, world.brand, h.id)
    assert found.closed_at == found.expires_at


def test_resuming_a_lapsed_hold_marks_it_expired(ctx: Context, world: World, clock: Clock) -> None:
    h = park(ctx, world)
    clock.advance(hours=3)
    with pytest.raises(Conflict, match="expired"):
        holds.resume(ctx, world.brand, h.id)
    assert stored_status(ctx, h.id) == "expired"


def test_expiry_time_comes_from_settings(ctx: Context, world: World, clock: Clock) -> None:
    ctx.settings = ctx.settings.model_copy(update={"held_cart_minutes": 5})
    h = park(ctx, world)
    assert (h.expires_at - h.created_at).total_seconds() == 300
    clock.advance(minutes=5)
    assert holds.list_active(ctx, world.brand, world.store) == []


def test_the_expiry_job_marks_every_lapsed_hold(ctx: Context, world: World, clock: Clock) -> None:
    first = park(ctx, world)
    second = park(ctx, world, store=world.other_store)
    other = holds.hold(
        ctx,
        world.other_brand,
        world.other_brand_store,
        payload={},
        reason="other",
        cashier="x",
        terminal="y",
    )
    clock.advance(minutes=60)
    fresh = park(ctx, world)
    clock.advance(minutes=61)
    assert holds.expire_due(ctx, brand_id=world.brand) == 2
    assert stored_status(ctx, other.id) == "held"
    assert holds.expire_due(ctx) == 1
    assert holds.expire_due(ctx) == 0
    assert [stored_status(ctx, x.id) for x in (first, second, fresh)] == [
        "expired",
        "expired",
        "held",
    ]


def test_cancel(ctx: Context, world: World, clock: Clock) -> None:
    h = park(ctx, world, reason="customer_left")
    cancelled = holds.cancel(ctx, world.brand, h.id)
    assert cancelled.status is HoldStatus.CANCELLED
    assert holds.cancel(ctx, world.brand, h.id).status is HoldStatus.CANCELLED  # repeatable
    with pytest.raises(Conflict) as err:
        holds.resume(ctx, world.brand, h.id)
    assert err.value.code == "hold_cancelled"
    resumed = park(ctx, world)
    holds.resume(ctx, world.brand, resumed.id)
    with pytest.raises(Conflict) as err:
        holds.cancel(ctx, world.brand, resumed.id)
    assert err.value.code == "hold_already_resumed"
    lapsed = park(ctx, world)
    clock.advance(hours=5)
    with pytest.raises(Conflict) as err:
        holds.cancel(ctx, world.brand, lapsed.id)
    assert err.value.code == "hold_expired"


@pytest.mark.parametrize(
    ("extra", "code"),
    [
        ({"reason": "lunch"}, "invalid_reason"),
        ({"payload": [1, 2]}, "invalid_payload"),
        ({"payload": "text"}, "invalid_payload"),
        ({"payload": {"x": float("nan")}}, "invalid_payload"),
        ({"payload": {"big": "x" * (64 * 1024)}}, "payload_too_large"),
        ({"note": "n" * 501}, "invalid_input"),
        ({"cashier": "  "}, "invalid_input"),
        ({"terminal": "t" * 65}, "invalid_input"),
    ],
)
def test_bad_holds_are_refused(
    ctx: Context, world: World, extra: dict[str, Any], code: str
) -> None:
    with pytest.raises(InvalidInput) as err:
        park(ctx, world, **extra)
    assert err.value.code == code
    assert holds.list_active(ctx, world.brand, world.store) == []


def test_deeply_nested_payload_is_refused(ctx: Context, world: World) -> None:
    deep: dict[str, Any] = {}
    node = deep
    for _ in range(40):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(InvalidInput, match="nested"):
        park(ctx, world, payload=deep)


def test_holds_never_cross_brands(ctx: Context, world: World) -> None:
    h = park(ctx, world)
    for call in (holds.get, holds.resume, holds.cancel):
        with pytest.raises(NotFound) as err:
            call(ctx, world.other_brand, h.id)
        assert err.value.code == "hold_not_found"
    with pytest.raises(NotFound):
        holds.list_active(ctx, world.other_brand, world.store)
    with pytest.raises(NotFound):
        park(ctx, world, store=world.other_brand_store)
    other_member = members.register(ctx, world.other_brand, phone="13912345678", name="李四")
    with pytest.raises(NotFound) as err:
        park(ctx, world, member_id=other_member.id)
    assert err.value.code == "member_not_found"
    assert stored_status(ctx, h.id) == "held"


def test_a_hold_without_a_member(ctx: Context, world: World) -> None:
    h = park(ctx, world, member_id=None, payload={"lines": []})
    assert h.member is None
    assert holds.resume(ctx, world.brand, h.id).payload == {"lines": []}


def test_report_counts_reasons_per_store_by_local_day_and_outcome(
    ctx: Context, world: World, clock: Clock
) -> None:
    # 2024-01-01 12:00 Shanghai (04:00 UTC)
    a = park(ctx, world, reason="call")
    b = park(ctx, world, reason="call")
    park(ctx, world, reason="more_items")
    holds.resume(ctx, world.brand, a.id)
    holds.cancel(ctx, world.brand, b.id)
    london = park(ctx, world, store=world.other_store, reason="payment_issue")
    holds.resume(ctx, world.brand, london.id)
    clock.advance(hours=13)  # 17:00 UTC: 01:00 on Jan 2 in Shanghai, 17:00 Jan 1 in London
    park(ctx, world, reason="call")
    park(ctx, world, store=world.other_store, reason="call")

    def rows(start: date, end: date, **kw: Any) -> list[tuple[str, str, int, int, int, int]]:
        return [
            (r.store_code, r.reason.value, r.held, r.resumed, r.cancelled, r.expired)
            for r in holds.report(ctx, world.brand, start, end, **kw)
        ]

    jan1, jan2 = date(2024, 1, 1), date(2024, 1, 2)
    # The 13:00-old "more_items" hold lapsed at 14:00 Shanghai: reported as expired.
    assert rows(jan1, jan1) == [
        ("s1", "call", 0, 1, 1, 0),
        ("s1", "more_items", 0, 0, 0, 1),
        ("s2", "call", 1, 0, 0, 0),
        ("s2", "payment_issue", 0, 1, 0, 0),
    ]
    assert rows(jan2, jan2) == [("s1", "call", 1, 0, 0, 0)]
    assert len(rows(jan1, jan2)) == 4
    assert rows(jan1, jan2, store_id=world.store) == [
        ("s1", "call", 1, 1, 1, 0),
        ("s1", "more_items", 0, 0, 0, 1),
    ]
    assert holds.report(ctx, world.other_brand, jan1, jan2) == []
    report = holds.report(ctx, world.brand, jan1, jan1)
    assert report[0].total == 2 and report[0].reason_label == "接电话"


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2024, 1, 2), date(2024, 1, 1)),
        (date(2024, 1, 1), date(2025, 1, 1)),
        (date(1, 1, 1), date(1, 1, 2)),
        (date(9999, 12, 30), date(9999, 12, 31)),
    ],
)
def test_report_refuses_bad_ranges(ctx: Context, world: World, start: date, end: date) -> None:
    with pytest.raises(InvalidInput):
        holds.report(ctx, world.brand, start, end)


# --- HTTP API -------------------------------------------------------------------


class Api:
    """A TestClient whose every answer is checked: no 5xx, the one error shape."""

    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, method: str, url: str, key: str | None, **kwargs: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = self.client.request(method, url, headers=headers, **kwargs)
        assert response.status_code < 500, (method, url, response.text)
        assert PHONE not in response.text
        if response.status_code >= 400:
            body = response.json()
            assert set(body) == {"error"}, body
            assert set(body["error"]) == {"code", "message", "detail"}, body
            assert body["error"]["message"]
        return response

    def ok(self, method: str, url: str, key: str | None, status: int = 200, **kw: Any) -> Any:
        response = self.call(method, url, key, **kw)
        assert response.status_code == status, response.text
        return response.json()

    def error(
        self, method: str, url: str, key: str | None, status: int, code: str, **kw: Any
    ) -> dict[str, Any]:
        response = self.call(method, url, key, **kw)
        assert response.status_code == status, response.text
        error: dict[str, Any] = response.json()["error"]
        assert error["code"] == code, error
        return error


@dataclass
class Keys:
    hq: str
    cashier: str  # store s1
    other_cashier: str  # store s2
    other_brand: str


@pytest.fixture
def api(ctx: Context, world: World) -> Iterator[Api]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(client)


@pytest.fixture
def keys(ctx: Context, world: World) -> Keys:
    def key(brand: int, scope: Scope, store: int | None = None) -> str:
        return apikeys.create_key(ctx, brand, scope, "test", store_id=store).secret

    return Keys(
        key(world.brand, Scope.HQ),
        key(world.brand, Scope.CASHIER, world.store),
        key(world.brand, Scope.CASHIER, world.other_store),
        key(world.other_brand, Scope.HQ),
    )


def hold_body(**extra: Any) -> dict[str, Any]:
    return {"reason": "call", "cashier": "c01", "terminal": "T1", "cart": CART, **extra}


def test_api_hold_list_get_resume(api: Api, keys: Keys, world: World) -> None:
    url = f"/v1/stores/{world.store}/holds"
    made = api.ok(
        "POST", url, keys.cashier, 201, json=hold_body(member_id=world.member, note="电话")
    )
    assert made["status"] == "held" and made["reason_label"] == "接电话"
    assert made["member"] == {"id": world.member, "name": "张三", "phone": "138****8000"}
    assert "cart" not in made
    listed = api.ok("GET", url, keys.cashier)
    assert listed["count"] == 1 and listed["data"][0]["id"] == made["id"]
    assert api.ok("GET", url + "?terminal=T9", keys.cashier)["count"] == 0
    seen = api.ok("GET", f"/v1/holds/{made['id']}", keys.cashier)
    assert seen["cart"] == CART and seen["status"] == "held"
    resumed = api.ok("POST", f"/v1/holds/{made['id']}/resume", keys.cashier)
    assert resumed["status"] == "resumed"
    assert resumed["cart"] == CART
    assert resumed["member"]["id"] == world.member
    error = api.error(
        "POST", f"/v1/holds/{made['id']}/resume", keys.cashier, 409, "hold_already_resumed"
    )
    assert "already resumed" in error["message"]
    assert api.ok("GET", url, keys.cashier)["count"] == 0


def test_api_expired_hold_is_409_with_a_clear_message(
    api: Api, keys: Keys, world: World, clock: Clock
) -> None:
    made = api.ok("POST", f"/v1/stores/{world.store}/holds", keys.cashier, 201, json=hold_body())
    clock.advance(minutes=121)
    error = api.error("POST", f"/v1/holds/{made['id']}/resume", keys.cashier, 409, "hold_expired")
    assert "expired" in error["message"]
    assert api.ok("GET", f"/v1/holds/{made['id']}", keys.cashier)["status"] == "expired"


def test_api_cancel(api: Api, keys: Keys, world: World) -> None:
    made = api.ok("POST", f"/v1/stores/{world.store}/holds", keys.hq, 201, json=hold_body())
    assert api.ok("POST", f"/v1/holds/{made['id']}/cancel", keys.cashier)["status"] == "cancelled"
    api.error("POST", f"/v1/holds/{made['id']}/resume", keys.cashier, 409, "hold_cancelled")


def test_api_keys_act_within_their_store_and_brand(api: Api, keys: Keys, world: World) -> None:
    url = f"/v1/stores/{world.store}/holds"
    made = api.ok("POST", url, keys.cashier, 201, json=hold_body())
    hid = made["id"]
    api.error("GET", url, None, 401, "api_key_required")
    api.error("GET", url, "lp_nope_nope", 401, "api_key_invalid")
    api.error("GET", url, keys.other_cashier, 403, "wrong_store")
    api.error("POST", url, keys.other_cashier, 403, "wrong_store", json=hold_body())
    api.error("GET", f"/v1/holds/{hid}", keys.other_cashier, 403, "wrong_store")
    api.error("POST", f"/v1/holds/{hid}/resume", keys.other_cashier, 403, "wrong_store")
    api.error("POST", f"/v1/holds/{hid}/cancel", keys.other_cashier, 403, "wrong_store")
    api.error("GET", f"/v1/holds/{hid}", keys.other_brand, 404, "hold_not_found")
    api.error("POST", f"/v1/holds/{hid}/resume", keys.other_brand, 404, "hold_not_found")
    api.error("GET", url, keys.other_brand, 404, "store_not_found")
    assert api.ok("GET", url, keys.hq)["count"] == 1  # HQ acts for every store
    assert api.ok("GET", f"/v1/holds/{hid}", keys.cashier)["status"] == "held"


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        (hold_body(reason="lunch"), 422, "validation_error"),
        (hold_body(cart=[1, 2]), 422, "validation_error"),
        (hold_body(cart="x"), 422, "validation_error"),
        (hold_body(cart={"blob": "x" * 70_000}), 422, "payload_too_large"),
        (hold_body(member_id=999_999), 404, "member_not_found"),
        (hold_body(member_id=0), 422, "validation_error"),
        (hold_body(note="n" * 501), 422, "validation_error"),
        (hold_body(extra_field=1), 422, "validation_error"),
        ({"reason": "call", "cart": {}}, 422, "validation_error"),
    ],
)
def test_api_bad_holds_are_4xx(
    api: Api, keys: Keys, world: World, body: dict[str, Any], status: int, code: str
) -> None:
    api.error("POST", f"/v1/stores/{world.store}/holds", keys.cashier, status, code, json=body)


@pytest.mark.parametrize("path", ["0", "-1", str(2**63), "abc"])
def test_api_bad_ids_are_4xx(api: Api, keys: Keys, path: str) -> None:
    response = api.call("GET", f"/v1/holds/{path}", keys.hq)
    assert response.status_code in (404, 422)
    response = api.call("GET", f"/v1/stores/{path}/holds", keys.hq)
    assert response.status_code in (404, 422)


def test_api_report_needs_hq_and_counts(api: Api, keys: Keys, world: World) -> None:
    for reason in ("call", "call", "payment_issue"):
        api.ok(
            "POST",
            f"/v1/stores/{world.store}/holds",
            keys.cashier,
            201,
            json=hold_body(reason=reason),
        )
    url = "/v1/holds/report?from=2024-01-01&to=2024-01-01"
    api.error("GET", url, keys.cashier, 403, "hq_key_required")
    report = api.ok("GET", url, keys.hq)
    assert report["from"] == "2024-01-01" and report["to"] == "2024-01-01"
    assert report["total"] == 3
    assert report["by_reason"] == {
        "call": 2,
        "more_items": 0,
        "payment_issue": 1,
        "customer_left": 0,
        "other": 0,
    }
    assert [(r["store_code"], r["reason"], r["held"]) for r in report["data"]] == [
        ("s1", "call", 2),
        ("s1", "payment_issue", 1),
    ]
    assert api.ok("GET", url, keys.other_brand)["total"] == 0
    api.error(
        "GET", "/v1/holds/report?from=2024-01-02&to=2024-01-01", keys.hq, 422, "invalid_input"
    )
    api.error(
        "GET", "/v1/holds/report?from=2024-13-01&to=2024-01-01", keys.hq, 422, "validation_error"
    )
    api.error(
        "GET", "/v1/holds/report?from=0001-01-01&to=0001-01-02", keys.hq, 422, "invalid_input"
    )
    api.error("GET", "/v1/holds/report?from=2024-01-01", keys.hq, 422, "validation_error")
    api.error("GET", url + f"&store_id={world.other_brand_store}", keys.hq, 404, "store_not_found")
