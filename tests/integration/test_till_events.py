"""Till events (service/till/till_events.py): the overrides a till records and
their report per store, kind and local day; the service and the HTTP API, on
SQLite and PostgreSQL.

The `clock` fixture says 2024-01-01 04:00 UTC: 12:00 in Shanghai, 04:00 in London.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date, datetime, timedelta
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from loyalpos.api.app import create_app
from loyalpos.db.tables import till_events as till_events_table
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.service.admin import staff
from loyalpos.service.base.context import Context
from loyalpos.service.till import till_events
from loyalpos.service.till.till_events import ReportRow, TillEventKind
from tests.conftest import Clock
from tests.integration.test_holds import Api, Keys, World, keys, world

__all__ = ["keys", "world"]

SKIPPED = TillEventKind.IDENTIFICATION_SKIPPED


def rec(ctx: Context, w: World, kind: TillEventKind | str = SKIPPED, **extra: Any) -> Any:
    args: dict[str, Any] = {
        "staff_id": None,
        "staff_number": "1001",
        "terminal": "T1",
        "reason": "顾客未携带会员码",
    }
    args.update(extra)
    store = args.pop("store", w.store)
    return till_events.record(ctx, w.brand, store, kind, **args)


def count_rows(ctx: Context) -> int:
    with ctx.transaction() as conn:
        return int(conn.execute(select(func.count()).select_from(till_events_table)).scalar_one())


def test_record_keeps_who_where_why(ctx: Context, world: World, clock: Clock) -> None:
    wang = staff.create_staff(ctx, world.brand, world.store, "1001", "小王", "482916")
    event = rec(ctx, world, order_no=" A-1 ", terminal=" 前台1 ")
    assert event.kind is SKIPPED and event.kind_label == "跳过会员识别"
    assert (event.staff_id, event.staff_number, event.terminal) == (wang.id, "1001", "前台1")
    assert (event.order_no, event.reason, event.detail) == ("A-1", "顾客未携带会员码", {})
    assert event.created_at == clock.now and event.store_id == world.store
    priced = rec(
        ctx,
        world,
        TillEventKind.MANUAL_PRICE,
        staff_number="P9",  # a POS's own number: no staff member, kept as sent
        reason="",
        detail={"sku": "X-1", "price_fen": 1250, "name": "散装糖果"},
    )
    assert priced.staff_id is None and priced.staff_number == "P9"
    assert priced.detail == {"sku": "X-1", "price_fen": 1250, "name": "散装糖果"}
    assert rec(ctx, world, "benefits_declined", reason="").reason == ""
    given = rec(ctx, world, TillEventKind.COUPON_SWITCHED, staff_id=wang.id, staff_number="1001")
    assert given.staff_id == wang.id
    assert count_rows(ctx) == 4


@pytest.mark.parametrize(
    ("kind", "extra", "code"),
    [
        ("lunch", {}, "bad_till_event_kind"),
        (SKIPPED, {"reason": "  "}, "invalid_input"),
        (SKIPPED, {"reason": "x" * 501}, "invalid_input"),
        (SKIPPED, {"reason": "a\x00b"}, "invalid_input"),
        (SKIPPED, {"staff_number": ""}, "invalid_input"),
        (SKIPPED, {"terminal": "T\n1"}, "invalid_input"),
        (SKIPPED, {"terminal": "T" * 65}, "invalid_input"),
        (SKIPPED, {"order_no": "A\x1b1"}, "invalid_input"),
        (SKIPPED, {"order_no": ""}, "invalid_input"),
        (SKIPPED, {"detail": {"k": "\x00"}}, "bad_till_event_detail"),
        (SKIPPED, {"detail": {"\ud800": 1}}, "bad_till_event_detail"),
        (SKIPPED, {"detail": {"x": float("nan")}}, "bad_till_event_detail"),
        (SKIPPED, {"detail": {"x": "y" * 5000}}, "bad_till_event_detail"),
        (SKIPPED, {"detail": {"a": [[[[[[[[[1]]]]]]]]]}}, "bad_till_event_detail"),
        (SKIPPED, {"detail": [1]}, "bad_till_event_detail"),
        ("manual_price", {"detail": {"price_fen": 100}}, "bad_till_event_detail"),
        ("manual_price", {"detail": {"sku": "A", "price_fen": -1}}, "bad_till_event_detail"),
        ("manual_price", {"detail": {"sku": "A", "price_fen": 1.5}}, "bad_till_event_detail"),
        ("manual_price", {"detail": {"code": "A", "price_fen": True}}, "bad_till_event_detail"),
        ("manual_price", {"detail": None}, "bad_till_event_detail"),
    ],
)
def test_bad_events_are_refused_and_not_kept(
    ctx: Context, world: World, kind: str, extra: dict[str, Any], code: str
) -> None:
    with pytest.raises(InvalidInput) as exc:
        rec(ctx, world, kind, **extra)
    assert exc.value.code == code
    assert count_rows(ctx) == 0


def test_record_stays_in_the_brand_and_store(ctx: Context, world: World) -> None:
    li = staff.create_staff(ctx, world.brand, world.other_store, "2001", "小李", "482916")
    with pytest.raises(NotFound) as other_brand:
        rec(ctx, world, store=world.other_brand_store)
    assert other_brand.value.code == "store_not_found"
    with pytest.raises(NotFound) as other_store:  # a staff member of another store
        rec(ctx, world, staff_id=li.id)
    assert other_store.value.code == "staff_not_found"
    # The same number at another store is not linked.
    assert rec(ctx, world, staff_number="2001").staff_id is None
    assert count_rows(ctx) == 1


def test_report_counts_per_store_kind_and_local_day(
    ctx: Context, world: World, clock: Clock
) -> None:
    # 2024-01-01 12:00 Shanghai / 04:00 London.
    rec(ctx, world)
    rec(ctx, world)
    rec(ctx, world, "benefits_declined", store=world.other_store)
    clock.advance(hours=15)  # 2024-01-02 03:00 Shanghai, 2024-01-01 19:00 London
    rec(ctx, world)
    rec(ctx, world, "coupon_switched", store=world.other_store)
    clock.advance(hours=6)  # 2024-01-02 09:00 Shanghai, 2024-01-02 01:00 London
    rec(ctx, world, "coupon_switched", store=world.other_store)

    def rows(start: date, end: date, **kw: Any) -> list[tuple[str, str, date, int]]:
        return [
            (r.store_code, r.kind.value, r.day, r.count)
            for r in till_events.report(ctx, world.brand, date_from=start, date_to=end, **kw)
        ]

    jan1, jan2 = date(2024, 1, 1), date(2024, 1, 2)
    assert rows(jan1, jan2) == [
        ("s1", "identification_skipped", jan1, 2),
        ("s1", "identification_skipped", jan2, 1),
        ("s2", "benefits_declined", jan1, 1),
        ("s2", "coupon_switched", jan1, 1),
        ("s2", "coupon_switched", jan2, 1),
    ]
    assert rows(jan2, jan2, store_id=world.other_store) == [("s2", "coupon_switched", jan2, 1)]
    assert rows(date(2023, 12, 31), date(2023, 12, 31)) == []
    report = till_events.report(ctx, world.brand, date_from=jan1, date_to=jan1)
    assert isinstance(report[0], ReportRow) and report[0].kind_label == "跳过会员识别"
    assert till_events.report(ctx, world.other_brand, date_from=jan1, date_to=jan2) == []
    with pytest.raises(NotFound):
        till_events.report(
            ctx, world.brand, store_id=world.other_brand_store, date_from=jan1, date_to=jan1
        )


def test_report_days_follow_daylight_saving(ctx: Context, world: World, clock: Clock) -> None:
    # London's clocks go back at 2024-10-27 02:00 BST: that local day is 25 hours.
    clock.now = datetime.fromisoformat("2024-10-26T23:30:00+00:00")  # 27th 00:30 BST
    rec(ctx, world, store=world.other_store)
    clock.now = datetime.fromisoformat("2024-10-27T23:30:00+00:00")  # 27th 23:30 GMT
    rec(ctx, world, store=world.other_store)
    clock.advance(hours=1)  # 28th 00:30 GMT
    rec(ctx, world, store=world.other_store)
    found = till_events.report(
        ctx,
        world.brand,
        store_id=world.other_store,
        date_from=date(2024, 10, 26),
        date_to=date(2024, 10, 28),
    )
    assert [(r.day, r.count) for r in found] == [(date(2024, 10, 27), 2), (date(2024, 10, 28), 1)]


@pytest.mark.parametrize(
    ("start", "end"),
    [
        (date(2024, 1, 2), date(2024, 1, 1)),
        (date(2024, 1, 1), date(2024, 1, 1) + timedelta(days=366)),
        (date(1, 1, 1), date(1, 1, 2)),
    ],
)
def test_report_refuses_bad_ranges(ctx: Context, world: World, start: date, end: date) -> None:
    with pytest.raises(InvalidInput):
        till_events.report(ctx, world.brand, date_from=start, date_to=end)


def test_a_full_year_report_works(ctx: Context, world: World) -> None:
    rec(ctx, world)
    found = till_events.report(
        ctx, world.brand, date_from=date(2023, 1, 2), date_to=date(2024, 1, 1)
    )
    assert [(r.day, r.count) for r in found] == [(date(2024, 1, 1), 1)]


# -- the HTTP API -----------------------------------------------------------------------


@pytest.fixture
def api(ctx: Context, world: World) -> Iterator[Api]:
    with TestClient(create_app(ctx), raise_server_exceptions=False) as client:
        yield Api(client)


def body(**extra: Any) -> dict[str, Any]:
    return {
        "kind": "identification_skipped",
        "staff_number": "1001",
        "terminal": "T1",
        "reason": "顾客不愿注册",
        **extra,
    }


def test_api_records_and_reports(api: Api, keys: Keys, world: World) -> None:
    url = f"/v1/stores/{world.store}/till-events"
    made = api.ok("POST", url, keys.cashier, 201, json=body(order_no="A-1"))
    assert made["kind"] == "identification_skipped" and made["kind_label"] == "跳过会员识别"
    assert (made["store_id"], made["order_no"], made["detail"]) == (world.store, "A-1", {})
    assert made["staff_id"] is None and made["reason"] == "顾客不愿注册"
    priced = api.ok(
        "POST",
        url,
        keys.hq,
        201,
        json=body(kind="manual_price", reason="", detail={"code": "2000001", "price_fen": 990}),
    )
    assert priced["detail"] == {"code": "2000001", "price_fen": 990}
    report_url = "/v1/till-events/report?date_from=2024-01-01&date_to=2024-01-01"
    api.error("GET", report_url, keys.cashier, 403, "hq_key_required")
    report = api.ok("GET", report_url, keys.hq)
    assert (report["date_from"], report["date_to"], report["total"]) == (
        "2024-01-01",
        "2024-01-01",
        2,
    )
    assert report["by_kind"] == {
        "identification_skipped": 1,
        "manual_price": 1,
        "benefits_declined": 0,
        "coupon_switched": 0,
    }
    assert [(r["store_code"], r["kind"], r["day"], r["count"]) for r in report["data"]] == [
        ("s1", "identification_skipped", "2024-01-01", 1),
        ("s1", "manual_price", "2024-01-01", 1),
    ]
    assert api.ok("GET", report_url + f"&store_id={world.other_store}", keys.hq)["total"] == 0
    assert api.ok("GET", report_url, keys.other_brand)["total"] == 0
    api.error(
        "GET", report_url + f"&store_id={world.other_brand_store}", keys.hq, 404, "store_not_found"
    )
    api.error(
        "GET",
        "/v1/till-events/report?date_from=2024-01-02&date_to=2024-01-01",
        keys.hq,
        422,
        "invalid_input",
    )
    api.error(
        "GET", "/v1/till-events/report?date_from=2024-01-01", keys.hq, 422, "validation_error"
    )


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (body(kind="lunch"), 422, "validation_error"),
        (body(reason=""), 422, "invalid_input"),
        (body(kind="manual_price", reason="", detail={"sku": "A"}), 422, "bad_till_event_detail"),
        (body(detail=[1]), 422, "validation_error"),
        (body(terminal="T\n1"), 422, "validation_error"),
        (body(reason="r" * 501), 422, "validation_error"),
        (body(extra=1), 422, "validation_error"),
        ({"kind": "benefits_declined"}, 422, "validation_error"),
    ],
)
def test_api_bad_events_are_4xx(
    api: Api, keys: Keys, world: World, payload: dict[str, Any], status: int, code: str
) -> None:
    url = f"/v1/stores/{world.store}/till-events"
    api.error("POST", url, keys.cashier, status, code, json=payload)


def test_api_keys_act_within_their_store_and_brand(api: Api, keys: Keys, world: World) -> None:
    url = f"/v1/stores/{world.store}/till-events"
    api.error("POST", url, None, 401, "api_key_required", json=body())
    api.error("POST", url, keys.other_cashier, 403, "wrong_store", json=body())
    api.error("POST", url, keys.other_brand, 404, "store_not_found", json=body())
    api.error("POST", "/v1/stores/0/till-events", keys.hq, 422, "validation_error", json=body())
    api.ok(
        "POST", f"/v1/stores/{world.other_store}/till-events", keys.other_cashier, 201, json=body()
    )
