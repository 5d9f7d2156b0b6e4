"""The console's reconciliation (upload the POS's file of a store day, see the
differences) and held-carts report (by store and reason); who may see and do
what; bad input next to its field. On SQLite and PostgreSQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

import pytest

from loyalpos.service.till import holds, receipts
from tests.integration.console_helpers import Shop, open_shop


@pytest.fixture
def shop(db_url: str) -> Iterator[Shop]:
    yield from open_shop(db_url)


def upload(shop: Shop, token: str, store: int, doc: object) -> tuple[int, str]:
    body = doc if isinstance(doc, bytes) else json.dumps(doc).encode()
    answer = shop.client.post(
        "/console/reconcile",
        data={"csrf": token, "store": str(store)},
        files={"file": ("pos.json", body, "application/json")},
    )
    return answer.status_code, answer.text


def test_a_store_day_is_compared_with_the_pos_file(shop: Shop) -> None:
    sh = shop.stores["SH001"]
    paid = [receipts.receipt(shop.ctx, shop.brand_id, sh, n).payable for n in ("SH-1", "SH-2")]
    token = shop.sign_in("manager.sh001")
    doc = {
        "date": "2024-03-01",
        "order_count": 2,
        "amount_fen": sum(paid),
        "tenders": {"wechat": sum(paid)},
        "orders": [
            {"order_no": "SH-1", "amount_fen": paid[0]},
            {"order_no": "SH-2", "amount_fen": paid[1]},
        ],
    }
    status, text = upload(shop, token, sh, doc)
    assert status == 200 and 'id="reconcile-status"' in text and "已平账" in text
    doc["orders"] = [
        {"order_no": "SH-1", "amount_fen": paid[0]},
        {"order_no": "P-9", "amount_fen": 900},
    ]
    doc["amount_fen"] = paid[0] + 900
    status, text = upload(shop, token, sh, doc)
    assert status == 200 and "发现差异" in text
    assert 'data-order="P-9"' in text and 'data-order="SH-2"' in text


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        (b"not json", "file"),
        ({"date": "2024-03-01", "order_count": 1}, "file"),
        ({"date": "2024-03-01", "order_count": -1, "amount_fen": 0}, "file"),
        ({"date": "someday", "order_count": 1, "amount_fen": 0}, "file"),
        (b"", "file"),
    ],
)
def test_a_bad_file_is_said_next_to_the_field(shop: Shop, doc: object, field: str) -> None:
    token = shop.sign_in("admin")
    status, text = upload(shop, token, shop.stores["SH001"], doc)
    assert status == 400 and f'id="{field}-error"' in text, text


def test_reconciliation_is_refused_to_who_may_not(shop: Shop) -> None:
    doc = {"date": "2024-03-01", "order_count": 0, "amount_fen": 0}
    token = shop.sign_in("manager.sh001")
    status, text = upload(shop, token, shop.stores["BJ001"], doc)
    assert status == 400 and 'id="store-error"' in text
    assert "BJ001" not in shop.client.get("/console/reconcile").text
    for login in ("analyst", "operator"):
        token = shop.sign_in(login)
        assert shop.client.get("/console/reconcile").status_code == 403
        status, text = upload(shop, token, shop.stores["SH001"], doc)
        assert status == 403 and "没有权限" in text
    shop.sign_in("admin")
    status, _ = upload(shop, "wrong", shop.stores["SH001"], doc)
    assert status == 403


def park(shop: Shop, store: str, reason: str) -> None:
    holds.hold(
        shop.ctx,
        shop.brand_id,
        shop.stores[store],
        payload={"lines": []},
        reason=reason,
        cashier="1001",
        terminal="T1",
    )


def test_the_held_carts_report_by_store_and_reason(shop: Shop) -> None:
    park(shop, "SH001", "call")
    park(shop, "SH001", "call")
    park(shop, "BJ001", "more_items")
    shop.sign_in("analyst")
    text = shop.client.get("/console/holds?from=2024-03-01&to=2024-03-01").text
    rows = re.findall(
        r'data-store="(\w+)" data-reason="(\w+)"><td>\w+</td><td>[^<]+<small>\w+</small></td>\s*<td class="num">(\d+)',
        text,
    )
    assert sorted(rows) == [("BJ001", "more_items", "1"), ("SH001", "call", "2")]
    assert 'id="holds-total">3<' in text
    assert (
        'id="holds-total">0<'
        in shop.client.get("/console/holds?from=2024-02-01&to=2024-02-02").text
    )
    shop.sign_in("manager.sh001")
    text = shop.client.get("/console/holds?from=2024-03-01&to=2024-03-01").text
    assert 'data-store="BJ001"' not in text and 'id="holds-total">2<' in text
    bj = shop.stores["BJ001"]
    assert shop.client.get(f"/console/holds?store={bj}").status_code == 400


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("from=2024-02-30", "from"),
        ("from=2024-03-02&to=2024-03-01", "to"),
        ("from=2022-01-01&to=2024-03-01", "to"),
    ],
)
def test_bad_days_are_said_next_to_their_field(shop: Shop, query: str, field: str) -> None:
    shop.sign_in("admin")
    answer = shop.client.get(f"/console/holds?{query}")
    assert answer.status_code == 400 and f'id="{field}-error"' in answer.text
