"""Reconciliation (对账) of a store day: the service, the HTTP API and the CLI, on
SQLite and PostgreSQL. Orders are inserted directly (the checkout service that
writes them lives elsewhere), with every NOT NULL column filled."""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import insert
from typer.testing import CliRunner

from loyalpos.api.app import create_app
from loyalpos.cli import app as cli_app
from loyalpos.db.tables import inserted_id, order_tenders, orders
from loyalpos.domain.errors import InvalidInput, NotFound
from loyalpos.domain.reconcile import PosDay, PosOrder
from loyalpos.service.admin import apikeys
from loyalpos.service.admin.apikeys import Scope
from loyalpos.service.base import brands
from loyalpos.service.base.context import Context
from loyalpos.service.till import reconcile

SHANGHAI = ZoneInfo("Asia/Shanghai")
LONDON = ZoneInfo("Europe/London")
DAY = date(2024, 1, 1)


@dataclass
class World:
    brand: int
    store: int  # Shanghai, by the brand's zone
    london: int  # its own zone
    other_brand: int
    other_brand_store: int


@pytest.fixture
def world(ctx: Context) -> World:
    a = brands.create_brand(ctx, "a", "Brand A")
    b = brands.create_brand(ctx, "b", "Brand B")
    s1 = brands.create_store(ctx, a.id, "s1", "一号店")
    s2 = brands.create_store(ctx, a.id, "s2", "London", timezone="Europe/London")
    sb = brands.create_store(ctx, b.id, "sb", "B 店")
    return World(a.id, s1.id, s2.id, b.id, sb.id)


def book(
    ctx: Context,
    brand: int,
    store: int,
    order_no: str,
    payable: int,
    at: datetime,
    *,
    tenders: dict[str, int] | None = None,
    late: bool = False,
    refunded: int = 0,
) -> int:
    """An order row as checkout would write it, with its tenders."""
    status = (
        "paid" if refunded == 0 else "refunded" if refunded == payable else "partially_refunded"
    )
    with ctx.transaction() as conn:
        order_id = inserted_id(
            conn.execute(
                insert(orders).values(
                    brand_id=brand,
                    store_id=store,
                    order_no=order_no,
                    member_id=None,
                    status=status,
                    request_hash="0" * 64,
                    rule_version=1,
                    subtotal=payable,
                    discount=0,
                    points_redeemed=0,
                    points_offset=0,
                    rounding=0,
                    payable=payable,
                    points_earned=0,
                    refunded=refunded,
                    cashier="c01",
                    terminal="T1",
                    late=late,
                    response="{}",
                    ordered_at=at,
                    booked_at=at + timedelta(hours=30) if late else at,
                )
            )
        )
        for method, amount in (tenders if tenders is not None else {"wechat": payable}).items():
            conn.execute(
                insert(order_tenders).values(order_id=order_id, method=method, amount=amount)
            )
    return order_id


def local(
    day: date, hour: int, minute: int = 0, second: int = 0, zone: ZoneInfo = SHANGHAI
) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, second, tzinfo=zone)


@pytest.fixture
def day_of_orders(ctx: Context, world: World) -> None:
    """Store s1 on 2024-01-01 (Shanghai): four orders, plus ones just outside the day
    and ones of other stores and brands."""
    b, s = world.brand, world.store
    book(ctx, b, s, "A001", 3200, local(DAY, 0, 0, 0), tenders={"wechat": 3200})
    book(ctx, b, s, "A002", 1800, local(DAY, 12), tenders={"cash": 1000, "wechat": 800})
    book(ctx, b, s, "A003", 5000, local(DAY, 23, 59, 59), tenders={"alipay": 5000}, refunded=5000)
    book(ctx, b, s, "A004", 900, local(DAY, 15), tenders={"cash": 900}, late=True)
    book(ctx, b, s, "X-BEFORE", 100, local(DAY, 0) - timedelta(seconds=1))
    book(ctx, b, s, "X-AFTER", 100, local(DAY + timedelta(days=1), 0))
    book(ctx, b, world.london, "L001", 700, local(DAY, 12, zone=LONDON))
    book(ctx, world.other_brand, world.other_brand_store, "A001", 9999, local(DAY, 12))


POS_TOTALS = {"order_count": 4, "amount_fen": 10900}
POS_TENDERS = {"wechat": 4000, "cash": 1900, "alipay": 5000}


# --- service ------------------------------------------------------------------


def test_a_day_that_agrees_is_balanced(ctx: Context, world: World, day_of_orders: None) -> None:
    pos = PosDay(
        4,
        10900,
        POS_TENDERS,
        (
            PosOrder("A001", 3200),
            PosOrder("A002", 1800),
            PosOrder("A003", 5000),
            PosOrder("A004", 900),
        ),
    )
    found = reconcile.reconcile_day(ctx, world.brand, world.store, DAY, pos)
    assert found.result.balanced, reconcile.as_dict(found)
    out = reconcile.as_dict(found)
    assert out["status"] == "balanced"
    assert out["timezone"] == "Asia/Shanghai"
    assert out["window"] == {
        "start": "2023-12-31T16:00:00+00:00",
        "end": "2024-01-01T16:00:00+00:00",
    }
    assert [m["order_no"] for m in out["orders"]["matched"]] == ["A001", "A002", "A003", "A004"]
    assert out["late_orders"] == 1
    assert [m["late"] for m in out["orders"]["matched"]] == [False, False, False, True]


def test_differences_are_listed(ctx: Context, world: World, day_of_orders: None) -> None:
    pos = PosDay(
        4,
        10500,
        {"wechat": 4000, "cash": 1500, "card": 400, "alipay": 5000},
        (
            PosOrder("A001", 3200),
            PosOrder("A002", 1400),  # we booked 1800
            PosOrder("A003", 5000),
            PosOrder("P999", 900),  # never reached us
        ),
    )
    out = reconcile.as_dict(reconcile.reconcile_day(ctx, world.brand, world.store, DAY, pos))
    assert out["status"] == "discrepancies"
    assert out["totals"] == {
        "pos": {"order_count": 4, "amount_fen": 10500},
        "ours": {"order_count": 4, "amount_fen": 10900},
        "diff": {"order_count": 0, "amount_fen": -400},
    }
    assert {t["method"]: t["diff_fen"] for t in out["tenders"]} == {
        "alipay": 0,
        "card": 400,
        "cash": -400,
        "wechat": 0,
    }
    o = out["orders"]
    assert [m["order_no"] for m in o["matched"]] == ["A001", "A002", "A003"]
    assert o["amount_differences"] == [
        {"order_no": "A002", "pos_fen": 1400, "ours_fen": 1800, "diff_fen": -400, "late": False}
    ]
    assert o["missing_here"] == [{"order_no": "P999", "amount_fen": 900}]
    assert o["missing_at_pos"] == [{"order_no": "A004", "amount_fen": 900, "late": True}]
    assert o["list_matches_totals"] is True


def test_totals_only_when_no_list_is_sent(ctx: Context, world: World, day_of_orders: None) -> None:
    found = reconcile.reconcile_day(
        ctx, world.brand, world.store, DAY, PosDay(4, 10900, POS_TENDERS)
    )
    assert found.result.balanced
    assert reconcile.as_dict(found)["orders"] is None


def test_the_day_is_the_stores_local_day(ctx: Context, world: World, day_of_orders: None) -> None:
    # London's 2024-01-01 is 00:00-24:00 UTC; its one order is at 12:00 local.
    found = reconcile.reconcile_day(
        ctx, world.brand, world.london, DAY, PosDay(1, 700, {"wechat": 700})
    )
    assert found.result.balanced
    assert found.store_day.timezone == "Europe/London"
    assert found.store_day.start == datetime(2024, 1, 1, tzinfo=UTC)
    # The order just before Shanghai's midnight belongs to the day before.
    before = reconcile.reconcile_day(
        ctx, world.brand, world.store, DAY - timedelta(days=1), PosDay(1, 100, {"wechat": 100})
    )
    assert before.result.balanced


def test_a_daylight_saving_day_is_23_hours(ctx: Context, world: World) -> None:
    ny = brands.create_store(ctx, world.brand, "ny", "NY", timezone="America/New_York")
    spring = date(2024, 3, 10)
    book(
        ctx,
        world.brand,
        ny.id,
        "N1",
        100,
        datetime(2024, 3, 10, 23, 30, tzinfo=ZoneInfo("America/New_York")),
    )
    found = reconcile.reconcile_day(
        ctx, world.brand, ny.id, spring, PosDay(1, 100, {"wechat": 100})
    )
    assert found.store_day.end - found.store_day.start == timedelta(hours=23)
    assert found.result.balanced


def test_an_empty_day(ctx: Context, world: World) -> None:
    found = reconcile.reconcile_day(ctx, world.brand, world.store, DAY, PosDay(0, 0, {}, ()))
    assert found.result.balanced


def test_stores_of_other_brands_are_not_found(
    ctx: Context, world: World, day_of_orders: None
) -> None:
    with pytest.raises(NotFound) as err:
        reconcile.reconcile_day(ctx, world.brand, world.other_brand_store, DAY, PosDay(0, 0))
    assert err.value.code == "store_not_found"
    with pytest.raises(NotFound):
        reconcile.reconcile_day(ctx, world.brand, 10**9, DAY, PosDay(0, 0))
    # The other brand's store sees only its own A001.
    found = reconcile.reconcile_day(
        ctx, world.other_brand, world.other_brand_store, DAY, PosDay(1, 9999, {"wechat": 9999})
    )
    assert found.result.balanced


@pytest.mark.parametrize("day", [date(1, 1, 1), date(9999, 12, 31), date(1969, 12, 31)])
def test_days_out_of_range_are_invalid(ctx: Context, world: World, day: date) -> None:
    with pytest.raises(InvalidInput):
        reconcile.reconcile_day(ctx, world.brand, world.store, day, PosDay(0, 0))


# --- HTTP API -------------------------------------------------------------------


class Api:
    def __init__(self, client: TestClient) -> None:
        self.client = client

    def call(self, url: str, key: str | None, body: Any) -> httpx.Response:
        headers = {"Authorization": f"Bearer {key}"} if key else {}
        response = self.client.post(url, headers=headers, json=body)
        assert response.status_code < 500, response.text
        if response.status_code >= 400:
            error = response.json()
            assert set(error) == {"error"}
            assert set(error["error"]) == {"code", "message", "detail"}
        return response

    def ok(self, url: str, key: str, body: Any) -> Any:
        response = self.call(url, key, body)
        assert response.status_code == 200, response.text
        return response.json()

    def error(self, url: str, key: str | None, body: Any, status: int, code: str) -> Any:
        response = self.call(url, key, body)
        assert response.status_code == status, response.text
        assert response.json()["error"]["code"] == code, response.text
        return response.json()["error"]


@dataclass
class Keys:
    hq: str
    cashier: str
    london_cashier: str
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
        key(world.brand, Scope.CASHIER, world.london),
        key(world.other_brand, Scope.HQ),
    )


def body(**extra: Any) -> dict[str, Any]:
    return {"date": "2024-01-01", **POS_TOTALS, "tenders": POS_TENDERS, **extra}


def test_api_reconciles_a_store_day(
    api: Api, keys: Keys, world: World, day_of_orders: None
) -> None:
    url = f"/v1/stores/{world.store}/reconciliation"
    out = api.ok(url, keys.cashier, body())
    assert out["status"] == "balanced" and out["orders"] is None
    assert out["store_code"] == "s1" and out["date"] == "2024-01-01"
    listed = [
        {"order_no": "A001", "amount_fen": 3200},
        {"order_no": "A002", "amount_fen": 1800},
        {"order_no": "P1", "amount_fen": 5900},
    ]
    out = api.ok(url, keys.hq, body(orders=listed))
    assert out["status"] == "discrepancies"
    assert [o["order_no"] for o in out["orders"]["missing_at_pos"]] == ["A003", "A004"]
    assert out["orders"]["missing_here"] == [{"order_no": "P1", "amount_fen": 5900}]
    assert out["orders"]["listed"] == {"order_count": 3, "amount_fen": 10900}
    assert out["orders"]["list_matches_totals"] is False


def test_api_keys_act_within_their_store_and_brand(api: Api, keys: Keys, world: World) -> None:
    url = f"/v1/stores/{world.store}/reconciliation"
    api.error(url, None, body(), 401, "api_key_required")
    api.error(url, keys.london_cashier, body(), 403, "wrong_store")
    api.error(url, keys.other_brand, body(), 404, "store_not_found")
    assert api.ok(f"/v1/stores/{world.london}/reconciliation", keys.london_cashier, body())


@pytest.mark.parametrize(
    ("changes", "code"),
    [
        ({"amount_fen": -1}, "validation_error"),
        ({"amount_fen": 12.5}, "validation_error"),
        ({"amount_fen": 10**20}, "validation_error"),
        ({"order_count": -1}, "validation_error"),
        ({"tenders": {"cash": -5}}, "validation_error"),
        ({"tenders": {"": 5}}, "validation_error"),
        ({"date": "2024-02-30"}, "validation_error"),
        ({"date": "0001-01-01"}, "invalid_input"),
        ({"surprise": 1}, "validation_error"),
        ({"orders": [{"order_no": "A", "amount_fen": 1}] * 2}, "duplicate_order_no"),
        ({"orders": [{"order_no": "", "amount_fen": 1}]}, "validation_error"),
        (
            {"orders": [{"order_no": "   ", "amount_fen": 1}]},
            "validation_error",
        ),  # the one OrderNo type
        ({"orders": [{"order_no": "A"}]}, "validation_error"),
        ({"orders": {"A": 1}}, "validation_error"),
    ],
)
def test_api_bad_reports_are_422(
    api: Api, keys: Keys, world: World, changes: dict[str, Any], code: str
) -> None:
    api.error(f"/v1/stores/{world.store}/reconciliation", keys.hq, body(**changes), 422, code)


def test_api_bad_store_ids_are_4xx(api: Api, keys: Keys) -> None:
    for store in ("0", str(2**63), "x"):
        assert api.call(f"/v1/stores/{store}/reconciliation", keys.hq, body()).status_code == 422


# --- CLI --------------------------------------------------------------------------


def write(tmp_path: Path, data: Any, name: str = "pos.json") -> str:
    path = tmp_path / name
    path.write_text(data if isinstance(data, str) else json.dumps(data), encoding="utf-8")
    return str(path)


def test_cli_reconcile(
    runner: CliRunner, world: World, day_of_orders: None, tmp_path: Path
) -> None:
    file = write(
        tmp_path,
        {
            **POS_TOTALS,
            "tenders": POS_TENDERS,
            "orders": [{"order_no": "A001", "amount_fen": 3200}],
        },
    )
    result = runner.invoke(
        cli_app, ["reconcile", "--brand", "a", "--store", "s1", "--date", "2024-01-01", file]
    )
    assert result.exit_code == 0, result.output
    out = json.loads(result.stdout)
    assert out["status"] == "discrepancies"
    assert out["totals"]["diff"] == {"order_count": 0, "amount_fen": 0}
    assert [o["order_no"] for o in out["orders"]["missing_at_pos"]] == ["A002", "A003", "A004"]
    # The date may come from the file instead.
    dated = write(tmp_path, {"date": "2024-01-01", **POS_TOTALS, "tenders": POS_TENDERS}, "d.json")
    result = runner.invoke(cli_app, ["reconcile", "-b", "a", "-s", "s1", dated])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["status"] == "balanced"


@pytest.mark.parametrize(
    ("args", "content", "exit_code", "code"),
    [
        (["--store", "nope", "--date", "2024-01-01"], {**POS_TOTALS}, 1, "store_not_found"),
        (["--store", "sb", "--date", "2024-01-01"], {**POS_TOTALS}, 1, "store_not_found"),
        (["--store", "s1", "--date", "2024-01-01"], "{not json", 1, "invalid_file"),
        (["--store", "s1", "--date", "2024-01-01"], [1, 2], 1, "invalid_file"),
        (
            ["--store", "s1", "--date", "2024-01-01"],
            {"order_count": -1, "amount_fen": 0},
            1,
            "invalid_input",
        ),
        (["--store", "s1", "--date", "2024-13-01"], {**POS_TOTALS}, 2, None),
        (["--store", "s1"], {**POS_TOTALS}, 2, None),
    ],
)
def test_cli_reconcile_refuses_bad_input(
    runner: CliRunner,
    world: World,
    tmp_path: Path,
    args: list[str],
    content: Any,
    exit_code: int,
    code: str | None,
) -> None:
    file = write(tmp_path, content)
    result = runner.invoke(cli_app, ["reconcile", "--brand", "a", *args, file])
    assert result.exit_code == exit_code, result.output
    assert not isinstance(result.exception, Exception) or isinstance(result.exception, SystemExit)
    if code is not None:
        assert json.loads(result.stderr)["error"]["code"] == code
